"""The column store's build: newest days first, partial stores that answer like SQL, honest status."""

from app.columnar_build import BuildState, build_columnar
from app.core.config import Settings
from app.dataset import DatasetManager
from app.sql_engine import Period, SqlEngine
from test_dashboard import _close


def _dataset(sample_db, tmp_path, **kw):
    s = Settings(db_path=sample_db, app_state_dir=str(tmp_path / "state"), dashboard_cache=False, **kw)
    return DatasetManager(s).get(), s


def test_partial_stores_cover_the_newest_days_and_answer_like_sql(sample_db, tmp_path):
    ds, s = _dataset(sample_db, tmp_path, dashboard_cache_first_days=180, dashboard_cache_chunk_days=90)
    partials = []
    state = BuildState()
    store = build_columnar(ds, s, state, lambda st, final=False: None if final else partials.append(st))
    assert state.phase == "ready" and store.complete and store.rollups is not None
    assert len(partials) >= 4  # 180 days, then 90-day windows back over two years
    starts = [p.covered_from for p in partials]
    assert starts == sorted(starts, reverse=True) and starts[0] == store.max_day - 179
    sql = SqlEngine(ds)
    dim = ds.profile.dimensions[0]
    m = next(x for x in ds.profile.measures if x.agg == "sum")
    for part in partials[:2]:
        assert part.rollups is None and not part.complete
        end = store.date_range()[1]
        per = Period(end.fromordinal(part.covered_from), end)
        value = sql.dimension_values(dim)[0]
        for flt in ({}, {dim.name: [value]}):
            assert _close(part.totals(per, flt), sql.totals(per, flt))
            assert _close(part.timeseries("week", m, per, flt), sql.timeseries("week", m, per, flt))
            assert _close(part.top(ds.profile.dimensions[-1], m, 5, per, flt), sql.top(ds.profile.dimensions[-1], m, 5, per, flt))
        assert part.covers(per) and not part.covers(Period(per.start.fromordinal(part.covered_from - 1), end))


def test_a_table_above_the_row_limit_is_off_with_the_reason_and_never_building(make_client, sample_db, tmp_path):
    c = make_client(db_path=sample_db, dashboard_cache=True, dashboard_cache_max_rows=1000)
    assert c.app.state.datasets.wait_for_cache(10) is False
    t = c.get("/api/dashboard/test").json()
    assert t["cache"] == "off" and t["cache_build"]["phase"] == "off"
    assert "DASHBOARD_CACHE_MAX_ROWS" in t["cache_build"]["note"]
    assert c.get("/api/dashboard/kpis").status_code == 200  # SQL answers


def test_status_reports_what_was_built_and_its_memory(make_client, sample_db, tmp_path):
    c = make_client(db_path=sample_db, dashboard_cache=True)
    assert c.app.state.datasets.wait_for_cache(60)
    t = c.get("/api/dashboard/test").json()
    assert t["cache"] == "ready" and t["cache_build"]["phase"] == "ready" and t["cache_build"]["percent"] == 100.0
    st = t["cache_store"]
    assert st["rows"] == 20000 and st["complete"] is True and st["rollups"] is True
    assert st["bytes"]["rows"] == 20000 * (4 + 2 * st["dimensions"] + 8 * st["measure_columns"])
    assert 0 < st["bytes"]["rollups"] and t["process_rss_bytes"] > 0


def test_a_failed_build_leaves_sql_answering_and_says_so(make_client, sample_db, tmp_path, monkeypatch):
    import app.columnar_build as cb

    def boom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(cb, "build_rollups", boom)
    c = make_client(db_path=sample_db, dashboard_cache=True)
    assert c.app.state.datasets.wait_for_cache(60) is False
    t = c.get("/api/dashboard/test").json()
    assert t["cache"] == "off" and t["cache_build"] == {**t["cache_build"], "phase": "failed", "note": "MemoryError"}
    assert c.get("/api/dashboard/kpis").status_code == 200


def test_filtered_rollups_are_reused_per_filter_set_and_kept_within_budget(sample_db, tmp_path, monkeypatch):
    from app.rollups import FilteredRollups

    ds, s = _dataset(sample_db, tmp_path)
    store = build_columnar(ds, s, BuildState(), lambda st, final=False: None)
    f = FilteredRollups(store)
    a = f.get({"region": ["Europe"], "channel": ["Online Store"]}, None)
    assert f.get({"channel": ["Online Store"], "region": ["Europe", "Europe"]}, None) is a  # same set, other order
    assert f.get({"region": ["Europe"], "channel": ["Online Store"]}, "product") is not a
    monkeypatch.setattr(FilteredRollups, "BUDGET", a.nbytes)
    f.get({"region": ["Asia Pacific"], "channel": ["Online Store"]}, None)
    assert len(f._cache) == 1  # the least recently used went


def test_the_build_reads_in_worker_processes_below_the_backends_priority(tmp_path):
    import os

    from app.columnar_build import _Readers

    s = Settings(db_path=str(tmp_path / "none.sqlite"), dashboard_cache_workers=2, dashboard_cache_nice=7)
    readers = _Readers(s)
    try:
        assert readers.workers == 2
        assert readers.pool.submit(os.getpriority, os.PRIO_PROCESS, 0).result(60) >= 7
        assert os.getpid() not in {readers.pool.submit(os.getpid).result(60) for _ in range(4)}
    finally:
        readers.close()
    assert _Readers(Settings(db_path="x", dashboard_cache_workers=0)).pool is None  # read in the build thread


def test_lower_priority_renices_only_the_calling_thread():
    import os
    import threading

    from app.columnar_read import lower_priority

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []

    def run():
        lower_priority(max(mine, 0) + 3)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [max(mine, 0) + 3]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_a_build_in_the_build_thread_equals_one_in_workers(sample_db, tmp_path):
    stores = []
    for workers in (0, 2):
        ds, s = _dataset(sample_db, tmp_path / str(workers), dashboard_cache_workers=workers,
                         dashboard_cache_first_days=30, dashboard_cache_chunk_days=45)
        stores.append(build_columnar(ds, s, BuildState(), lambda st, final=False: None))
    a, b = stores
    assert (a.day == b.day).all() and a.values == b.values and a.int_measures == b.int_measures
    for d in a.codes:
        assert (a.codes[d] == b.codes[d]).all()
    for c in a.meas:
        assert ((a.meas[c] == b.meas[c]) | (a.meas[c] != a.meas[c])).all()


def test_progress_while_building_counts_rows_read_of_the_total(make_client, sample_db):
    import time

    c = make_client(db_path=sample_db, dashboard_cache=True, dashboard_cache_workers=0, dashboard_cache_pause_ms=40,
                    dashboard_cache_first_days=30, dashboard_cache_chunk_days=60)
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = c.get("/api/dashboard/test").json()
        if t["cache"] == "ready":
            break
        assert t["cache"] == "building"
        b = t["cache_build"]
        if b["phase"] == "reading" and b["rows_read"]:
            assert b["rows_total"] == 20000 and 0 < b["rows_read"] <= 20000
            assert b["percent"] == round(100 * b["rows_read"] / 20000, 1)
            seen.append((b["rows_read"], b["covered_from"]))
        time.sleep(0.05)
    assert t["cache"] == "ready" and t["cache_build"]["percent"] == 100.0
    assert len(seen) >= 3 and seen == sorted(seen, key=lambda x: x[0])  # it only grows
    assert seen[0][0] < 20000 / 2  # the first figures come early, not at the end
    dates = [d for _, d in seen if d]
    assert dates == sorted(dates, reverse=True)  # covered from ever earlier days


def test_while_building_the_default_view_waits_for_the_newest_days_and_older_periods_go_to_sql(make_client, sample_db, tmp_path):
    import time
    from datetime import date

    sql = make_client(db_path=sample_db, dashboard_cache=False, app_state_dir=str(tmp_path / "a"))
    c = make_client(db_path=sample_db, dashboard_cache=True, dashboard_cache_workers=0, dashboard_cache_pause_ms=100,
                    app_state_dir=str(tmp_path / "b"))
    old = {"start": "2023-01-01", "end": "2023-03-31"}
    assert c.get("/api/dashboard/kpis", params=old).json() == sql.get("/api/dashboard/kpis", params=old).json()
    assert c.get("/api/dashboard/test").json()["cache"] == "building"  # SQL answered, without waiting
    t0 = time.monotonic()
    got = c.get("/api/dashboard/kpis").json()  # 90 days and the 90 before: the first two windows
    b = c.get("/api/dashboard/test").json()["cache_build"]
    assert b["phase"] == "reading" and b["covered_from"] <= (date.fromisoformat(got["period"]["start"])).isoformat()
    assert got == sql.get("/api/dashboard/kpis").json() and time.monotonic() - t0 < 30
    assert c.get("/api/dashboard/filters").json()["dimensions"]


def test_without_reader_processes_the_build_reads_in_its_own_thread(sample_db, tmp_path, monkeypatch):
    import app.columnar_build as cb

    class NoProcesses:
        def __init__(self, *a, **k):
            raise OSError("no processes here")

    monkeypatch.setattr(cb, "ProcessPoolExecutor", NoProcesses)
    ds, s = _dataset(sample_db, tmp_path, dashboard_cache_workers=2)
    readers = cb._Readers(s)
    assert readers.pool is None and readers.workers == 0
    state = BuildState()
    assert build_columnar(ds, s, state, lambda st, final=False: None).complete and state.phase == "ready"
