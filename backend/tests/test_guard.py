"""The SQL guard: each refusal has its own test, at the static layer and at execution."""
import pytest

from app.sql_guard import ExecutionError, GuardError, check_sql, execute_guarded

TABLES = ["orders", "customers", "products", "countries", "regions", "channels", "brands", "categories", "currencies"]


def run(db, sql, **kw):
    return execute_guarded(db, sql, **kw)


@pytest.mark.parametrize("sql", [
    "INSERT INTO orders (order_id) VALUES (1)",
    "UPDATE orders SET amount = 0",
    "DELETE FROM orders",
    "DROP TABLE orders",
    "CREATE TABLE x (a)",
    "CREATE INDEX i ON orders(amount)",
])
def test_guard_refuses_writes_before_execution(sql):
    with pytest.raises(GuardError, match="only SELECT"):
        check_sql(sql, TABLES)


def test_authorizer_refuses_writes_even_without_the_static_check(sample_db):
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "DELETE FROM orders")
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "CREATE TEMP TABLE t AS SELECT 1")
    assert run(sample_db, "SELECT count(*) FROM orders").rows[0][0] == 20000


def test_guard_refuses_attach(sample_db):
    with pytest.raises(GuardError):
        check_sql("ATTACH DATABASE '/tmp/x.sqlite' AS x", TABLES)
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "ATTACH DATABASE ':memory:' AS x")


def test_guard_refuses_pragma(sample_db):
    with pytest.raises(GuardError, match="PRAGMA"):
        check_sql("PRAGMA table_info(orders)", TABLES)
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "PRAGMA writable_schema = 1")
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "SELECT * FROM pragma_table_info('orders')")


def test_guard_refuses_two_statements(sample_db):
    with pytest.raises(GuardError, match="exactly one statement"):
        check_sql("SELECT 1; DELETE FROM orders", TABLES)
    with pytest.raises(ExecutionError):
        run(sample_db, "SELECT 1; SELECT 2")


def test_guard_refuses_load_extension(sample_db):
    with pytest.raises(GuardError, match="load_extension"):
        check_sql("SELECT load_extension('/tmp/evil.so')", TABLES)
    with pytest.raises(ExecutionError, match="not authorized"):
        run(sample_db, "SELECT load_extension('/tmp/evil.so')")


def test_recursive_cte_bomb_is_stopped_by_the_time_limit(sample_db):
    sql = check_sql("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", TABLES).sql
    with pytest.raises(ExecutionError, match=r"needs more time than allowed \(0.3 s\); try a shorter period or fewer groups"):
        run(sample_db, sql, timeout=0.3)


def test_huge_blob_hits_the_length_limit(sample_db):
    sql = check_sql("SELECT length(zeroblob(50000000)) AS n", TABLES).sql
    with pytest.raises(ExecutionError, match="too big"):
        run(sample_db, sql, max_length=1_000_000)
    sql = check_sql("SELECT length(replace(hex(randomblob(400000)), 'A', 'AAAAAAAAAA')) AS n", TABLES).sql
    with pytest.raises(ExecutionError, match="too big"):
        run(sample_db, sql, max_length=1_000_000)


def test_nonexistent_column_is_an_execution_error_with_sqlites_message(sample_db):
    with pytest.raises(ExecutionError, match="no such column: nope"):
        run(sample_db, check_sql("SELECT nope FROM orders", TABLES).sql)


def test_unknown_table_is_refused():
    with pytest.raises(GuardError, match="no such table: invoices"):
        check_sql("SELECT * FROM invoices", TABLES)


def test_schema_qualified_tables_are_refused():
    with pytest.raises(GuardError, match="schema-qualified"):
        check_sql("SELECT * FROM temp.orders", TABLES)


def test_cte_names_are_not_mistaken_for_missing_tables():
    out = check_sql("WITH t AS (SELECT amount FROM orders) SELECT sum(amount) FROM t", TABLES)
    assert out.tables == {"orders"}


def test_limit_is_added_when_absent_and_kept_when_present():
    added = check_sql("SELECT order_id FROM orders", TABLES, default_limit=1000)
    assert added.limit_added and added.sql == "SELECT order_id FROM orders\nLIMIT 1000"
    kept = check_sql("SELECT order_id FROM orders LIMIT 5", TABLES)
    assert not kept.limit_added and kept.sql.endswith("LIMIT 5")
    union = check_sql("SELECT name FROM brands UNION SELECT name FROM categories", TABLES)
    assert union.limit_added and union.sql.endswith("LIMIT 1000")
    commented = check_sql("SELECT order_id FROM orders -- all of them", TABLES)
    assert commented.sql.endswith("\nLIMIT 1000")


def test_added_limit_applies_to_union_and_trailing_comment(sample_db):
    sql = check_sql("SELECT name FROM brands UNION ALL SELECT name FROM categories -- both", TABLES, default_limit=7).sql
    assert len(run(sample_db, sql).rows) == 7


def test_rows_are_capped_and_flagged_truncated(sample_db):
    res = run(sample_db, "SELECT order_id FROM orders LIMIT 1000", max_rows=100)
    assert len(res.rows) == 100 and res.truncated
    res = run(sample_db, "SELECT name FROM regions", max_rows=100)
    assert len(res.rows) == 5 and not res.truncated


def test_garbage_is_refused_with_a_parse_error():
    with pytest.raises(GuardError, match="could not be parsed"):
        check_sql("SELEC FROM WHERE (", TABLES)


def test_no_limit_is_added_to_an_aggregate_only_query():
    one_row = check_sql("SELECT SUM(amount) AS total, COUNT(*) AS n FROM orders", TABLES)
    assert not one_row.limit_added and "LIMIT" not in one_row.sql
    grouped = check_sql("SELECT status, SUM(amount) FROM orders GROUP BY status", TABLES)
    assert grouped.limit_added and grouped.sql.endswith("LIMIT 1000")
    mixed = check_sql("SELECT order_id, SUM(amount) OVER () FROM orders", TABLES)
    assert mixed.limit_added


def test_a_capped_result_knows_its_true_total(sample_db):
    checked = check_sql("SELECT order_id FROM orders WHERE status = 'completed'", TABLES, default_limit=1000)
    res = run(sample_db, checked.sql, max_rows=100, count_sql=checked.base_sql)
    import sqlite3

    want = sqlite3.connect(sample_db).execute("SELECT count(*) FROM orders WHERE status = 'completed'").fetchone()[0]
    assert want > 1000 and res.truncated and len(res.rows) == 100 and res.total_rows == want
    small = run(sample_db, "SELECT name FROM regions", max_rows=100, count_sql="SELECT name FROM regions")
    assert not small.truncated and small.total_rows is None
