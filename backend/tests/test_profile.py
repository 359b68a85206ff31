"""Dataset profile detection on the sample schema and on differently shaped SQLite files."""
import json

from app.core.database import open_readonly
from app.profile import build_profile, detect_profile


def names(items):
    return [x.name for x in items]


def test_sample_profile_finds_orders_dates_measures_and_joined_dimensions(sample_db):
    p = detect_profile(open_readonly(sample_db))
    assert (p.fact_table, p.date_column, p.date_kind, p.source) == ("orders", "order_date", "iso", "detected")
    m = names(p.measures)
    assert m[0] == "rows" and m[1] == "amount"
    assert {"amount", "amount_local", "quantity", "avg_unit_price", "avg_discount"} <= set(m)
    assert not any("id" in x for x in m)
    dims = {d.name: d for d in p.dimensions}
    assert {"status", "channel", "product", "segment", "brand", "category", "country", "region", "currency"} <= set(dims)
    assert [j.to_table for j in dims["region"].path] == ["customers", "countries", "regions"]
    # unique codes and names of individual customers are not breakdowns
    assert not {"iso_code", "sku", "company_name", "customer"} & set(dims)
    # the notes say which table holds the facts and why some columns are not breakdowns
    assert p.notes[0].startswith("Facts: orders (20,000 rows)")
    assert any(n.startswith("Breakdowns: ") for n in p.notes)


def test_unix_timestamps_and_implicit_id_joins_are_detected(other_db):
    p = detect_profile(open_readonly(other_db))
    assert (p.fact_table, p.date_column, p.date_kind) == ("event_log", "ts", "unix")
    assert {"duration_ms", "bytes_sent"} <= set(names(p.measures))
    dims = {d.name: d for d in p.dimensions}
    assert set(dims) == {"kind", "plan", "country"}
    assert dims["plan"].path[0].to_table == "users" and dims["plan"].path[0].from_column == "user_id"


def test_no_date_column_is_explained_in_notes(nodate_db):
    p = detect_profile(open_readonly(nodate_db))
    assert p.fact_table is None and p.date_column is None
    assert "no table has a date column" in " ".join(p.notes).lower()


def test_override_from_json_string(other_db):
    spec = {"fact_table": "event_log", "date_column": "ts", "date_format": "unix",
            "measures": [{"name": "seconds", "label": "Seconds", "sql": "SUM(duration_ms) / 1000.0", "format": "number"},
                         {"name": "bytes", "sql": "SUM(bytes_sent)"}],
            "dimensions": [{"name": "plan", "column": "users.plan"}, {"name": "kind", "label": "Event kind"}]}
    p = build_profile(open_readonly(other_db), json.dumps(spec))
    assert p.source == "override"
    assert names(p.measures) == ["rows", "seconds", "bytes"]
    assert p.measure("seconds").agg == "sql" and p.measure("bytes").agg == "sum"
    assert p.dimension("plan").path[0].to_table == "users"
    assert p.dimension("kind").label == "Event kind"


def test_override_from_a_file_path(other_db, tmp_path):
    f = tmp_path / "profile.json"
    f.write_text(json.dumps({"fact_table": "event_log", "date_column": "ts", "measures": [], "dimensions": []}))
    p = build_profile(open_readonly(other_db), str(f))
    assert p.source == "override" and p.date_kind == "unix" and names(p.measures) == ["rows"]
