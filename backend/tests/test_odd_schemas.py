"""Odd but real-world shapes must not break the dashboard: quoted names, text numbers, empty files."""
import sqlite3

import pytest


@pytest.fixture
def odd_db(tmp_path):
    path = tmp_path / "odd.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE "Store ""Main"" List" ("Store Id" INTEGER PRIMARY KEY, "Store Name" TEXT);
        CREATE TABLE "Order Lines" ("Line Id" INTEGER PRIMARY KEY, "Store Id" INTEGER REFERENCES "Store ""Main"" List"("Store Id"),
                                    "Sold At" DATETIME, "Net Value" NUMERIC, colour TEXT, notes);
        CREATE VIEW v_lines AS SELECT * FROM "Order Lines";
        """
    )
    conn.executemany('INSERT INTO "Store ""Main"" List" VALUES (?, ?)', [(1, "North's"), (2, 'South "B"')])
    conn.executemany('INSERT INTO "Order Lines" VALUES (?,?,?,?,?,?)',
                     [(i, 1 + i % 2, f"2024-03-{1 + i % 28:02d}T10:00:00Z", str(i * 1.5) if i % 3 else i, None if i % 5 == 0 else ["red", "blue"][i % 2], None)
                      for i in range(1, 400)])
    conn.commit()
    conn.close()
    return str(path)


@pytest.mark.parametrize("cache", [False, True])
def test_quoted_names_text_numbers_and_nulls(make_client, odd_db, tmp_path, cache):
    c = make_client(db_path=odd_db, dashboard_cache=cache, app_state_dir=str(tmp_path / f"st{cache}"))
    if cache:
        assert c.app.state.datasets.wait_for_cache(60)
    p = c.get("/api/dashboard/profile").json()
    assert p["fact_table"] == "Order Lines" and p["date_column"] == "Sold At"
    assert {d["name"] for d in p["dimensions"]} == {"colour", "Store Name"}
    assert "Net Value" in {m["name"] for m in p["measures"]}
    top = c.get("/api/dashboard/top", params={"dimension": "colour", "measure": "rows", "start": "2024-01-01"}).json()
    assert {i["label"] for i in top["items"]} == {"red", "blue", "(none)"}
    assert sum(i["value"] for i in top["items"]) == 399
    k = c.get("/api/dashboard/kpis", params={"start": "2024-03-01", "end": "2024-03-31", "filter": 'Store Name:South "B"'}).json()
    assert k["kpis"][0]["value"] == 200
    ts = c.get("/api/dashboard/timeseries", params={"granularity": "week", "measure": "Net Value", "start": "2024-03-01"}).json()
    assert ts["points"] and all(p["value"] is not None for p in ts["points"])


def test_empty_database_file_explains_itself(make_client, tmp_path):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()  # a zero-byte file is a valid empty database
    c = make_client(db_path=str(path))
    assert c.get("/api/dashboard/test").json()["tables"] == 0
    p = c.get("/api/dashboard/profile").json()
    assert p["fact_table"] is None and "no tables" in p["notes"][0]
    assert c.get("/api/dashboard/kpis").status_code == 409


def test_wal_mode_file_is_read_without_creating_files_beside_it(make_client, tmp_path, sample_db):
    import shutil

    src = tmp_path / "src.sqlite"
    shutil.copy(sample_db, src)
    conn = sqlite3.connect(src)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    conn.close()  # checkpoints and removes -wal/-shm
    client = tmp_path / "client"
    client.mkdir()
    shutil.copy(src, client / "munero.sqlite")
    c = make_client(db_path=str(client / "munero.sqlite"), dashboard_cache=True, app_state_dir=str(tmp_path / "st"))
    assert c.get("/api/dashboard/test").json()["rows"] == 20000
    assert c.app.state.datasets.wait_for_cache(60)
    assert c.get("/api/dashboard/kpis").status_code == 200
    assert [p.name for p in client.iterdir()] == ["munero.sqlite"]
