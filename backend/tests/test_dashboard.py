"""Dashboard endpoints on the sample DB and on a differently shaped DB, with and without the cache."""
import hashlib
import json
import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(params=[False, True], ids=["sql", "cache"])
def client(request, make_client, sample_db, stub, tmp_path):
    c = make_client(db_path=sample_db, ollama_base_url=stub.url, dashboard_cache=request.param,
                    app_state_dir=str(tmp_path / "state"))
    if request.param:
        assert c.app.state.datasets.wait_for_cache(60)
    return c


def test_dashboard_test_reports_tables_and_main_table(client):
    t = client.get("/api/dashboard/test").json()
    assert {k: t[k] for k in ("ok", "tables", "main_table", "rows")} == {"ok": True, "tables": 9, "main_table": "orders", "rows": 20000}
    assert t["cache"] in ("ready", "off")


def test_profile_endpoint_shape(client):
    p = client.get("/api/dashboard/profile").json()
    assert p["fact_table"] == "orders" and p["date_column"] == "order_date" and p["source"] == "detected"
    assert p["measures"][0] == {"name": "rows", "label": "Orders", "sql": "COUNT(*)", "format": "count", "direction": "up"}
    assert {"name": "amount", "label": "Amount", "sql": "SUM(amount)", "format": "currency", "direction": "up"} in p["measures"]
    assert {"name": "country", "label": "Country", "column": "countries.name"} in p["dimensions"]


def test_filters_list_date_range_and_values_by_frequency(client, sample_db):
    f = client.get("/api/dashboard/filters").json()
    assert f["date_min"] == "2023-01-01" and f["date_max"] == "2024-12-31"
    ch = next(d for d in f["dimensions"] if d["name"] == "channel")
    conn = sqlite3.connect(sample_db)
    expected = [r[0] for r in conn.execute(
        "SELECT c.name FROM orders o JOIN channels c USING (channel_id) GROUP BY c.name ORDER BY count(*) DESC, c.name")]
    assert ch["values"] == expected and ch["label"] == "Channel"


def test_kpis_default_to_the_last_90_days_with_previous_period(client, sample_db):
    k = client.get("/api/dashboard/kpis").json()
    assert k["period"] == {"start": "2024-10-03", "end": "2024-12-31"}
    assert k["previous_period"] == {"start": "2024-07-05", "end": "2024-10-02"}
    conn = sqlite3.connect(sample_db)
    n, amt = conn.execute("SELECT count(*), sum(amount) FROM orders WHERE order_date >= '2024-10-03' AND order_date < '2025-01-01'").fetchone()
    pn, pamt = conn.execute("SELECT count(*), sum(amount) FROM orders WHERE order_date >= '2024-07-05' AND order_date < '2024-10-03'").fetchone()
    by = {x["name"]: x for x in k["kpis"]}
    assert by["rows"]["value"] == n and by["rows"]["previous"] == pn and by["rows"]["format"] == "count"
    assert by["amount"]["value"] == pytest.approx(amt) and by["amount"]["previous"] == pytest.approx(pamt)
    assert by["amount"]["change_pct"] == pytest.approx(round((amt - pamt) / pamt * 100, 1))


def test_kpis_with_dimension_filters_and_dates(client, sample_db):
    k = client.get("/api/dashboard/kpis", params={"start": "2024-01-01", "end": "2024-03-31",
                                                   "filter": ["country:Germany", "channel:Mobile App", "channel:Online Store"]}).json()
    conn = sqlite3.connect(sample_db)
    n = conn.execute(
        "SELECT count(*) FROM orders o JOIN customers cu USING (customer_id) JOIN countries co USING (country_id) "
        "JOIN channels ch USING (channel_id) WHERE co.name = 'Germany' AND ch.name IN ('Mobile App', 'Online Store') "
        "AND o.order_date >= '2024-01-01' AND o.order_date < '2024-04-01'").fetchone()[0]
    assert next(x for x in k["kpis"] if x["name"] == "rows")["value"] == n > 0


def test_change_pct_is_null_when_previous_is_zero(client):
    k = client.get("/api/dashboard/kpis", params={"start": "2023-01-01", "end": "2023-01-31"}).json()
    rows = next(x for x in k["kpis"] if x["name"] == "rows")
    assert rows["previous"] == 0 and rows["change_pct"] is None


@pytest.mark.parametrize("gran,pattern", [("day", r"^\d{4}-\d{2}-\d{2}$"), ("week", r"^\d{4}-W\d{2}$"), ("month", r"^\d{4}-\d{2}$")])
def test_timeseries_labels_per_granularity(client, gran, pattern):
    t = client.get("/api/dashboard/timeseries", params={"granularity": gran, "measure": "rows", "start": "2023-12-25", "end": "2024-02-10"}).json()
    assert t["granularity"] == gran and t["measure"] == "rows"
    labels = [p["period"] for p in t["points"]]
    assert labels == sorted(labels) and all(re.match(pattern, x) for x in labels)
    assert sum(p["value"] for p in t["points"]) == client.get(
        "/api/dashboard/kpis", params={"start": "2023-12-25", "end": "2024-02-10"}).json()["kpis"][0]["value"]
    if gran == "week":
        assert labels[0] == "2023-W52" and "2024-W01" in labels


def test_timeseries_month_values_match_sql(client, sample_db):
    t = client.get("/api/dashboard/timeseries", params={"granularity": "month", "measure": "amount", "start": "2023-01-01", "end": "2024-12-31"}).json()
    conn = sqlite3.connect(sample_db)
    exp = conn.execute("SELECT substr(order_date,1,7), sum(amount) FROM orders GROUP BY 1 ORDER BY 1").fetchall()
    assert [p["period"] for p in t["points"]] == [e[0] for e in exp]
    assert [p["value"] for p in t["points"]] == pytest.approx([e[1] for e in exp])


def test_top_n_breakdown_is_ordered_and_capped(client, sample_db):
    t = client.get("/api/dashboard/top", params={"dimension": "country", "measure": "amount", "n": 5,
                                                  "start": "2023-01-01", "end": "2024-12-31"}).json()
    assert t["dimension"] == "country" and t["measure"] == "amount" and len(t["items"]) == 5
    conn = sqlite3.connect(sample_db)
    exp = conn.execute("SELECT co.name, sum(amount) FROM orders JOIN customers USING (customer_id) JOIN countries co USING (country_id) "
                       "GROUP BY 1 ORDER BY 2 DESC LIMIT 5").fetchall()
    assert [i["label"] for i in t["items"]] == [e[0] for e in exp]
    assert [i["value"] for i in t["items"]] == pytest.approx([e[1] for e in exp])


def test_top_with_filter_on_another_dimension(client):
    t = client.get("/api/dashboard/top", params={"dimension": "category", "measure": "rows", "filter": "region:Europe"}).json()
    assert t["items"] and all(isinstance(i["value"], int) for i in t["items"])


def test_unknown_dimension_in_filter_is_422_naming_it(client):
    r = client.get("/api/dashboard/kpis", params={"filter": "planet:Mars"})
    assert r.status_code == 422 and "planet" in r.json()["detail"]


def test_bad_parameters_are_422_with_plain_messages(client):
    for params in ({"granularity": "hour"},):
        r = client.get("/api/dashboard/timeseries", params=params)
        assert r.status_code == 422 and "granularity" in r.json()["detail"]
    r = client.get("/api/dashboard/top", params={"measure": "nope"})
    assert r.status_code == 422 and "nope" in r.json()["detail"]
    r = client.get("/api/dashboard/kpis", params={"start": "yesterday"})
    assert r.status_code == 422 and "start" in r.json()["detail"]
    r = client.get("/api/dashboard/top", params={"dimension": "galaxy"})
    assert r.status_code == 422 and "galaxy" in r.json()["detail"]


# -- other shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cache", [False, True])
def test_dashboard_adapts_to_a_differently_shaped_dataset(make_client, other_db, tmp_path, cache):
    c = make_client(db_path=other_db, dashboard_cache=cache, app_state_dir=str(tmp_path / f"s{cache}"))
    if cache:
        assert c.app.state.datasets.wait_for_cache(60)
    f = c.get("/api/dashboard/filters").json()
    assert f["date_min"] == "2024-01-01" and f["date_max"] == "2024-07-27"
    assert {d["name"] for d in f["dimensions"]} == {"kind", "plan", "country"}
    k = c.get("/api/dashboard/kpis", params={"start": "2024-01-01", "end": "2024-12-31"}).json()
    assert k["kpis"][0] == {"name": "rows", "label": "Event Log", "value": 5000, "previous": 0, "change_pct": None, "format": "count",
                           "direction": "up"}
    top = c.get("/api/dashboard/top", params={"dimension": "plan", "measure": "duration_ms", "start": "2024-01-01"}).json()
    assert [i["label"] for i in top["items"]] and len(top["items"]) == 3
    ts = c.get("/api/dashboard/timeseries", params={"granularity": "month", "measure": "rows", "start": "2024-01-01"}).json()
    assert ts["points"][0] == {"period": "2024-01", "value": 743}  # 2024-01-01T01:00 .. 2024-01-31T23:00, hourly


def test_dataset_without_dates_answers_409_and_explains(make_client, nodate_db):
    c = make_client(db_path=nodate_db)
    p = c.get("/api/dashboard/profile").json()
    assert p["fact_table"] is None and p["notes"]
    r = c.get("/api/dashboard/kpis")
    assert r.status_code == 409 and "date column" in r.json()["detail"]
    assert c.get("/api/dashboard/test").json() == {"ok": True, "tables": 1, "main_table": "things", "rows": 2, "cache": "off"}


def test_override_profile_from_env_setting(make_client, other_db):
    spec = {"fact_table": "event_log", "date_column": "ts",
            "measures": [{"name": "seconds", "label": "Seconds", "sql": "SUM(duration_ms) / 1000.0", "format": "number"}],
            "dimensions": [{"name": "plan", "column": "users.plan"}]}
    c = make_client(db_path=other_db, dataset_profile=json.dumps(spec))
    assert c.get("/api/dashboard/profile").json()["source"] == "override"
    k = c.get("/api/dashboard/kpis", params={"start": "2024-01-01", "filter": "plan:pro"}).json()
    assert [x["name"] for x in k["kpis"]] == ["rows", "seconds"]
    conn = sqlite3.connect(other_db)
    exp = conn.execute("SELECT sum(duration_ms) / 1000.0 FROM event_log e JOIN users u ON u.id = e.user_id WHERE u.plan = 'pro'").fetchone()[0]
    assert k["kpis"][1]["value"] == pytest.approx(exp)


def test_invalid_override_is_explained(make_client, other_db):
    c = make_client(db_path=other_db, dataset_profile='{"fact_table": "nope", "date_column": "ts"}')
    p = c.get("/api/dashboard/profile").json()
    assert p["fact_table"] is None and "nope" in p["notes"][0]
    assert c.get("/api/dashboard/kpis").status_code == 409


# -- no data, read-only ---------------------------------------------------------------------------

def test_missing_database_says_no_data_loaded_yet_and_app_still_runs(make_client, tmp_path, stub):
    c = make_client(db_path=str(tmp_path / "absent.sqlite"), ollama_base_url=stub.url)
    for path in ("/api/dashboard/test", "/api/dashboard/kpis", "/api/dashboard/profile", "/api/chat/examples"):
        r = c.get(path)
        assert r.status_code == 503 and r.json()["detail"].startswith("no data loaded yet"), path
    assert c.post("/api/chat/", json={"question": "x"}).status_code == 503
    h = c.get("/health")
    assert h.status_code == 503 and h.json()["db"] == {"ok": False, "tables": 0} and h.json()["llm"]["ok"] is True


def test_a_file_that_is_not_sqlite_counts_as_no_data(make_client, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    r = make_client(db_path=str(bad)).get("/api/dashboard/test")
    assert r.status_code == 503 and "no data loaded yet" in r.json()["detail"]


def test_database_file_appearing_later_is_picked_up(make_client, tmp_path, sample_db):
    target = tmp_path / "late.sqlite"
    c = make_client(db_path=str(target))
    assert c.get("/api/dashboard/test").status_code == 503
    target.write_bytes(Path(sample_db).read_bytes())
    assert c.get("/api/dashboard/test").json()["rows"] == 20000


def test_client_file_is_never_modified(make_client, tmp_path, sample_db, stub):
    db = tmp_path / "client" / "munero.sqlite"
    db.parent.mkdir()
    db.write_bytes(Path(sample_db).read_bytes())
    db.chmod(0o444)
    before = sha(db)
    mtime = db.stat().st_mtime_ns
    c = make_client(db_path=str(db), ollama_base_url=stub.url, dashboard_cache=True, app_state_dir=str(tmp_path / "state"))
    assert c.app.state.datasets.wait_for_cache(60)
    for path in ("/api/dashboard/filters", "/api/dashboard/kpis", "/api/dashboard/timeseries", "/api/dashboard/top"):
        assert c.get(path).status_code == 200
    assert c.post("/api/chat/", json={"question": "__sql__DELETE FROM orders__end__ ro-check"}).status_code == 200
    assert sha(db) == before and db.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in db.parent.iterdir()) == ["munero.sqlite"]  # no journal, wal or cache beside it
    assert list((tmp_path / "state" / "cache").glob("dashboard-*/day.npy"))


def test_cache_is_saved_in_the_state_dir_and_reloaded(make_client, tmp_path, sample_db):
    state = tmp_path / "state"
    c1 = make_client(db_path=sample_db, dashboard_cache=True, app_state_dir=str(state))
    assert c1.app.state.datasets.wait_for_cache(60)
    first = c1.get("/api/dashboard/top", params={"dimension": "brand"}).json()
    assert [p.name for p in (state / "cache").iterdir()] == [f.name for f in (state / "cache").glob("dashboard-*")]
    assert len(list((state / "cache").iterdir())) == 1  # one directory of arrays for the one file
    c2 = make_client(db_path=sample_db, dashboard_cache=True, app_state_dir=str(state))
    assert c2.app.state.datasets.wait_for_cache(60)
    t = c2.get("/api/dashboard/test").json()
    assert t["cache_build"]["phase"] == "loaded" and t["cache_store"]["memory_mapped"] is True
    assert c2.get("/api/dashboard/top", params={"dimension": "brand"}).json() == first


def _close(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=2e-6)  # both round to 6 decimals
    return a == b


@pytest.mark.parametrize("db", ["sample_db", "other_db"])
def test_cache_and_sql_paths_give_the_same_answers(make_client, tmp_path, request, db, monkeypatch):
    import app.rollups

    monkeypatch.setattr(app.rollups, "ROW_CHUNK", 3000)  # rollups summed over several chunks, as at 20M rows
    path = request.getfixturevalue(db)
    sql = make_client(db_path=path, dashboard_cache=False, app_state_dir=str(tmp_path / "a"))
    # Small read windows so the build goes through many of them, as on a 20M-row file.
    col = make_client(db_path=path, dashboard_cache=True, app_state_dir=str(tmp_path / "b"),
                      dashboard_cache_first_days=20, dashboard_cache_chunk_days=7)
    assert col.app.state.datasets.wait_for_cache(60)
    ranges = [{}, {"start": "2023-01-01", "end": "2024-12-31"}, {"start": "2024-02-10", "end": "2024-03-20"},
              {"start": "2022-06-01", "end": "2023-01-10"}]
    assert _same_answers(sql, col, ranges) > 100


@pytest.mark.parametrize("kind", ["star", "chinook", "giftcards"])
def test_cache_and_sql_give_the_same_answers_on_other_schema_shapes(make_client, tmp_path, kind):
    """A date on a header or date table (reached through a key) and revenue as price x quantity."""
    import make_test_schemas

    path = str(tmp_path / f"{kind}.sqlite")
    make_test_schemas.BUILDERS[kind](path)
    sql = make_client(db_path=path, dashboard_cache=False, app_state_dir=str(tmp_path / "a"))
    col = make_client(db_path=path, dashboard_cache=True, app_state_dir=str(tmp_path / "b"),
                      dashboard_cache_first_days=20, dashboard_cache_chunk_days=30)
    assert col.app.state.datasets.wait_for_cache(60)
    assert col.get("/api/dashboard/test").json()["cache_build"]["phase"] == "ready"
    f = sql.get("/api/dashboard/filters").json()
    lo, hi = date.fromisoformat(f["date_min"]), date.fromisoformat(f["date_max"])
    mid = lo + (hi - lo) / 2
    ranges = [{}, {"start": lo.isoformat(), "end": hi.isoformat()},
              {"start": (mid - timedelta(days=40)).isoformat(), "end": mid.isoformat()}]
    assert _same_answers(sql, col, ranges) > 50


def _same_answers(sql, col, ranges) -> int:
    """Every endpoint's answer from both clients, for several filter sets and `ranges`; how many."""
    prof = sql.get("/api/dashboard/profile").json()
    assert prof == col.get("/api/dashboard/profile").json()
    dims = [d["name"] for d in prof["dimensions"]]
    values = {d["name"]: d["values"] for d in sql.get("/api/dashboard/filters").json()["dimensions"]}
    combos = [[], [f"{dims[0]}:{values[dims[0]][0]}"],
              [f"{dims[-1]}:{values[dims[-1]][0]}", f"{dims[-1]}:{values[dims[-1]][-1]}", f"{dims[0]}:{values[dims[0]][-1]}"],
              [f"{dims[0]}:no such value"]]
    assert sql.get("/api/dashboard/filters").json() == col.get("/api/dashboard/filters").json()
    checked = 0
    for flt in combos:
        for rng in ranges:
            q = {**rng, "filter": flt}
            paths = [("/api/dashboard/kpis", q)]
            ms = [prof["measures"][0]] + [m for m in prof["measures"] if m["sql"].startswith(("SUM", "AVG"))][:3]
            for m in ms:
                for g in ("day", "week", "month"):
                    paths.append(("/api/dashboard/timeseries", {**q, "granularity": g, "measure": m["name"]}))
                for d in dims:
                    paths.append(("/api/dashboard/top", {**q, "dimension": d, "measure": m["name"], "n": 7}))
            for p, params in paths:
                a = sql.get(p, params=params).json()
                b = col.get(p, params=params).json()
                assert _close(a, b), (p, params, a, b)
                checked += 1
    return checked
