"""The sample dataset generator is deterministic and realistic enough for the dashboard."""
import hashlib
import sqlite3

import make_sample_db


def digest(path):
    conn = sqlite3.connect(path)
    h = hashlib.sha256()
    for t in ("orders", "customers", "products", "countries"):
        for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1"):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_same_seed_gives_the_same_data_and_another_seed_differs(tmp_path):
    a, b, c = (str(tmp_path / n) for n in ("a.sqlite", "b.sqlite", "c.sqlite"))
    make_sample_db.main(["--rows", "3000", "--seed", "5", "--out", a])
    make_sample_db.main(["--rows", "3000", "--seed", "5", "--out", b])
    make_sample_db.main(["--rows", "3000", "--seed", "6", "--out", c])
    assert digest(a) == digest(b) != digest(c)


def test_sample_covers_24_months_and_is_a_valid_database(sample_db):
    conn = sqlite3.connect(sample_db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lo, hi, n = conn.execute("SELECT min(order_date), max(order_date), count(*) FROM orders").fetchone()
    assert lo.startswith("2023-01-01") and hi.startswith("2024-12-31") and n == 20000
    months = conn.execute("SELECT count(DISTINCT substr(order_date, 1, 7)) FROM orders").fetchone()[0]
    assert months == 24
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
