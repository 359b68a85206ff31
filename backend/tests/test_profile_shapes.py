"""Profile detection on three schemas of different shapes, generated here (scripts/make_test_schemas.py):
what a data analyst would pick as facts, dimensions, labels and formats."""
import json

import make_test_schemas
import pytest

from app.core.database import open_readonly
from app.profile import ProfileError, build_profile, detect_profile

PEOPLE_AND_CONTACTS = {"FirstName", "LastName", "first_name", "last_name", "Phone", "phone", "Fax", "Email", "email",
                       "Address", "BillingAddress", "BillingPostalCode", "PostalCode", "postal_code", "street_address",
                       "customer_email", "buyer_name", "note", "Composer"}


@pytest.fixture(scope="module")
def shape_db(tmp_path_factory):
    made = {}

    def get(kind):
        if kind not in made:
            path = tmp_path_factory.mktemp(kind) / f"{kind}.sqlite"
            make_test_schemas.BUILDERS[kind](str(path))
            made[kind] = str(path)
        return made[kind]

    return get


def by_name(items):
    return {x.name: x for x in items}


def assert_no_people_or_ids(p):
    cols = {d.column for d in p.dimensions}
    assert not cols & PEOPLE_AND_CONTACTS, cols & PEOPLE_AND_CONTACTS
    assert not any(c.lower().endswith(("id", "_key")) for c in cols)


def test_star_schema_takes_the_fact_table_and_its_date_from_the_date_dimension(shape_db):
    p = detect_profile(open_readonly(shape_db("star")))
    assert (p.fact_table, p.date_column, p.date_kind) == ("fact_sales", "full_date", "iso")
    assert [(j.from_column, j.to_table) for j in p.date_path] == [("date_key", "dim_date")]
    m = by_name(p.measures)
    assert m["rows"].label == "Sales"  # fact_ is not part of what a client calls it
    assert p.measures[1].name == "sales_amount" and m["sales_amount"].format == "currency"
    assert m["sales_amount"].direction == "up" and m["cost_amount"].direction == "down"
    # a discount in money adds up (unlike a discount rate) and rising is not good news
    assert (m["discount_amount"].agg, m["discount_amount"].format, m["discount_amount"].direction) == ("sum", "currency", "down")
    assert m["quantity"].format == "number" and m["quantity"].direction == "neutral"
    assert "revenue" not in m  # sales_amount already says what was sold
    d = by_name(p.dimensions)
    assert {"product", "brand", "product_category", "store", "city", "region", "segment"} == set(d)
    assert d["product"].label == "Product" and d["product"].column == "product_name"
    assert d["product_category"].label == "Product Category"
    assert_no_people_or_ids(p)
    # calendar parts of the date dimension are not breakdowns: the time series shows them
    assert not {"month_name", "day_of_week"} & {x.column for x in p.dimensions}
    assert any("First Name" in n and "Postal Code" in n for n in p.notes)
    assert p.currency is None


def test_normalised_camelcase_schema_uses_line_items_dated_by_their_invoice(shape_db):
    p = detect_profile(open_readonly(shape_db("chinook")))
    assert (p.fact_table, p.date_column) == ("InvoiceLine", "InvoiceDate")
    # InvoiceLine declares no keys: InvoiceId -> Invoice is inferred from the name
    assert [(j.from_column, j.to_table, j.to_column) for j in p.date_path] == [("InvoiceId", "Invoice", "InvoiceId")]
    m = by_name(p.measures)
    assert m["rows"].label == "Invoice Lines"
    assert p.measures[1].name == "revenue" and m["revenue"].factors == ["UnitPrice", "Quantity"]
    assert (m["revenue"].label, m["revenue"].format, m["revenue"].display_sql()) == ("Revenue", "currency", "SUM(UnitPrice * Quantity)")
    assert m["avg_UnitPrice"].label == "Avg Unit Price"
    d = by_name(p.dimensions)
    assert {"genre", "album", "media_type", "artist", "BillingCountry", "BillingState", "Country"} <= set(d)
    assert d["BillingCountry"].label == "Billing Country" and d["BillingState"].label == "Billing State"
    assert d["media_type"].label == "Media Type" and d["genre"].label == "Genre" and d["album"].label == "Album"
    assert [j.to_table for j in d["genre"].path] == ["Track", "Genre"]
    assert [j.to_table for j in d["artist"].path] == ["Track", "Album", "Artist"]
    assert_no_people_or_ids(p)
    assert not {"track"} & set(d)  # 600 track names: too many for a breakdown
    assert any("rather than Invoice" in n for n in p.notes) and any("Revenue is Unit Price x Quantity" in n for n in p.notes)
    assert any("Billing Postal Code" in n and "Phone" in n for n in p.notes if n.startswith("Not offered"))


def test_single_wide_table_with_a_ratio_and_one_currency(shape_db):
    p = detect_profile(open_readonly(shape_db("giftcards")))
    assert (p.fact_table, p.date_column, p.date_path) == ("gc_sales", "sold_at", [])
    m = by_name(p.measures)
    assert m["rows"].label == "Sales"  # not "Gc Sales"
    assert (m["face_value"].label, m["face_value"].format) == ("Face Value", "currency")
    assert (m["avg_discount"].label, m["avg_discount"].format, m["avg_discount"].direction) == ("Discount", "percent", "down")
    assert "discount" not in m  # a summed ratio means nothing
    assert p.currency == "EUR"
    assert set(by_name(p.dimensions)) == {"country", "brand", "channel"}
    assert_no_people_or_ids(p)
    assert any("EUR" in n for n in p.notes) and any("Discount" in n and "percentages" in n for n in p.notes)


def test_profile_endpoint_reports_date_table_currency_and_percent(make_client, shape_db):
    c = make_client(db_path=shape_db("giftcards"))
    p = c.get("/api/dashboard/profile").json()
    assert p["currency"] == "EUR" and p["date_table"] == "gc_sales"
    assert {"name": "avg_discount", "label": "Discount", "sql": "AVG(discount)", "format": "percent", "direction": "down"} in p["measures"]
    k = {x["name"]: x for x in c.get("/api/dashboard/kpis", params={"start": "2024-01-01", "end": "2024-12-31"}).json()["kpis"]}
    assert 0 < k["avg_discount"]["value"] < 0.1 and k["avg_discount"]["format"] == "percent"


@pytest.mark.parametrize("cache", [False, True])
def test_dashboard_on_line_items_dated_through_the_header(make_client, shape_db, tmp_path, cache):
    path = shape_db("chinook")
    c = make_client(db_path=path, dashboard_cache=cache, app_state_dir=str(tmp_path / f"s{cache}"))
    if cache:
        assert c.app.state.datasets.wait_for_cache(60)
    import sqlite3

    conn = sqlite3.connect(path)
    want_total = conn.execute("SELECT round(sum(UnitPrice * Quantity), 2) FROM InvoiceLine").fetchone()[0]
    want_rock = conn.execute(
        "SELECT round(sum(l.UnitPrice * l.Quantity), 2) FROM InvoiceLine l JOIN Invoice i USING (InvoiceId) "
        "JOIN Track t USING (TrackId) JOIN Genre g USING (GenreId) WHERE g.Name = 'Rock' AND i.InvoiceDate < '2024-07-01'"
    ).fetchone()[0]
    conn.close()
    f = c.get("/api/dashboard/filters").json()
    assert f["date_min"] == "2024-01-01" and f["date_max"] <= "2024-12-31"
    all_year = {"start": "2024-01-01", "end": "2024-12-31"}
    k = {x["name"]: x for x in c.get("/api/dashboard/kpis", params=all_year).json()["kpis"]}
    assert round(k["revenue"]["value"], 2) == want_total and k["revenue"]["format"] == "currency"
    k = {x["name"]: x for x in c.get("/api/dashboard/kpis", params={"start": "2024-01-01", "end": "2024-06-30",
                                                                     "filter": "genre:Rock"}).json()["kpis"]}
    assert round(k["revenue"]["value"], 2) == want_rock
    top = c.get("/api/dashboard/top", params={**all_year, "dimension": "genre", "measure": "revenue", "n": 20}).json()
    assert len(top["items"]) == 12 and round(sum(i["value"] for i in top["items"]), 2) == want_total


def test_override_still_wins_and_can_name_the_currency(shape_db):
    spec = {"fact_table": "gc_sales", "date_column": "sold_at", "currency": "usd", "rows_label": "Cards",
            "measures": [{"name": "fv", "label": "Face value", "sql": "SUM(face_value)", "format": "currency"}],
            "dimensions": [{"name": "brand"}]}
    p = build_profile(open_readonly(shape_db("giftcards")), json.dumps(spec))
    assert (p.source, p.currency, p.measures[0].label) == ("override", "USD", "Cards")
    assert [x.name for x in p.measures] == ["rows", "fv"] and [x.name for x in p.dimensions] == ["brand"]


@pytest.mark.parametrize("cache", [False, True])
def test_daily_series_has_every_day_of_the_range_with_zero_for_days_without_sales(make_client, shape_db, tmp_path, cache):
    c = make_client(db_path=shape_db("chinook"), dashboard_cache=cache, app_state_dir=str(tmp_path / f"z{cache}"))
    if cache:
        assert c.app.state.datasets.wait_for_cache(60)
    jan = {"start": "2024-01-01", "end": "2024-01-31"}
    pts = c.get("/api/dashboard/timeseries", params={**jan, "granularity": "day", "measure": "revenue"}).json()["points"]
    assert [p["period"] for p in pts] == [f"2024-01-{d:02d}" for d in range(1, 32)]
    zeros = [p["period"] for p in pts if p["value"] == 0]
    assert "2024-01-02" in zeros and len(zeros) >= 10  # the generator leaves every third day without invoices
    k = {x["name"]: x for x in c.get("/api/dashboard/kpis", params=jan).json()["kpis"]}
    assert round(sum(p["value"] for p in pts), 2) == round(k["revenue"]["value"], 2)
    avg = c.get("/api/dashboard/timeseries", params={**jan, "granularity": "day", "measure": "avg_UnitPrice"}).json()["points"]
    assert len(avg) == 31 and avg[1]["value"] is None  # an average of nothing is no value, not 0


def test_override_can_date_line_items_by_their_header(make_client, shape_db):
    spec = {"fact_table": "InvoiceLine", "date_column": "Invoice.InvoiceDate",
            "measures": [{"name": "sales", "label": "Sales", "sql": "SUM(UnitPrice * Quantity)", "format": "currency"}],
            "dimensions": [{"name": "genre", "column": "Genre.Name"}]}
    c = make_client(db_path=shape_db("chinook"), dataset_profile=json.dumps(spec))
    p = c.get("/api/dashboard/profile").json()
    assert (p["source"], p["date_table"], p["date_column"]) == ("override", "Invoice", "InvoiceDate")
    k = c.get("/api/dashboard/kpis", params={"start": "2024-01-01", "end": "2024-12-31"}).json()["kpis"]
    import sqlite3

    want = sqlite3.connect(shape_db("chinook")).execute("SELECT round(sum(UnitPrice * Quantity), 2) FROM InvoiceLine").fetchone()[0]
    assert round(k[1]["value"], 2) == want
    with pytest.raises(ProfileError, match="'Nope' is not a column of Invoice"):
        build_profile(open_readonly(shape_db("chinook")), json.dumps({**spec, "date_column": "Invoice.Nope"}))


def test_series_with_nothing_matching_stays_empty_rather_than_a_flat_zero(make_client, shape_db):
    c = make_client(db_path=shape_db("chinook"))
    r = c.get("/api/dashboard/timeseries", params={"granularity": "day", "start": "2024-01-01", "end": "2024-01-31",
                                                   "filter": "genre:No such genre"}).json()
    assert r["points"] == []
