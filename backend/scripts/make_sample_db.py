#!/usr/bin/env python3
"""Build a deterministic, realistic sales dataset as a SQLite file.

    python3 scripts/make_sample_db.py --rows 300000 --seed 42 --out munero.sqlite

Orders over 24 months with products (brands, categories), customers (segments, countries,
regions), sales channels and currencies. `unit_price` and `amount` are in EUR, `amount_local` is
the amount in the order's currency. The same --rows/--seed always give the same file
content. Standard library only, so it runs anywhere python3 does.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import sys
import time
from datetime import date, timedelta

REGIONS = ["Europe", "North America", "Asia Pacific", "Latin America", "Middle East & Africa"]
# name, iso, region index, currency, weight
COUNTRIES = [
    ("Germany", "DE", 0, "EUR", 14), ("France", "FR", 0, "EUR", 10), ("United Kingdom", "GB", 0, "GBP", 11),
    ("Italy", "IT", 0, "EUR", 6), ("Spain", "ES", 0, "EUR", 6), ("Netherlands", "NL", 0, "EUR", 5),
    ("Sweden", "SE", 0, "SEK", 3), ("Poland", "PL", 0, "PLN", 3), ("Switzerland", "CH", 0, "CHF", 3),
    ("United States", "US", 1, "USD", 18), ("Canada", "CA", 1, "CAD", 5), ("Mexico", "MX", 3, "MXN", 3),
    ("Brazil", "BR", 3, "BRL", 4), ("Argentina", "AR", 3, "USD", 1), ("Chile", "CL", 3, "USD", 1),
    ("Japan", "JP", 2, "JPY", 6), ("Australia", "AU", 2, "AUD", 4), ("Singapore", "SG", 2, "SGD", 2),
    ("India", "IN", 2, "INR", 4), ("South Korea", "KR", 2, "USD", 2), ("United Arab Emirates", "AE", 4, "AED", 2),
    ("South Africa", "ZA", 4, "USD", 2), ("Saudi Arabia", "SA", 4, "USD", 1), ("Egypt", "EG", 4, "USD", 1),
]
CURRENCIES = [
    ("EUR", "Euro", 1.0), ("USD", "US Dollar", 0.92), ("GBP", "Pound Sterling", 1.17), ("SEK", "Swedish Krona", 0.088),
    ("PLN", "Polish Zloty", 0.23), ("CHF", "Swiss Franc", 1.04), ("CAD", "Canadian Dollar", 0.68),
    ("MXN", "Mexican Peso", 0.054), ("BRL", "Brazilian Real", 0.18), ("JPY", "Japanese Yen", 0.0062),
    ("AUD", "Australian Dollar", 0.61), ("SGD", "Singapore Dollar", 0.69), ("INR", "Indian Rupee", 0.011),
    ("AED", "UAE Dirham", 0.25),
]
CATEGORIES = {
    "Gift Cards": (25, 150), "Electronics": (40, 900), "Home & Kitchen": (15, 300), "Fashion": (10, 250),
    "Beauty": (8, 120), "Sports & Outdoors": (15, 400), "Toys & Games": (10, 150), "Books": (5, 60),
    "Travel Experiences": (80, 1500), "Food & Beverage": (5, 90),
}
BRANDS = [
    "Northwind", "Aurora", "Bluepeak", "Cobalt", "Driftwood", "Emberline", "Fjord", "Granite", "Helix",
    "Ironbark", "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchid", "Pinecrest", "Quarry",
    "Redwood", "Solstice", "Tidewater", "Umbra", "Vantage", "Willow", "Zephyr",
]
NOUNS = ["Voucher", "Headphones", "Kettle", "Jacket", "Serum", "Backpack", "Puzzle", "Novel", "Weekend Trip",
         "Coffee Box", "Speaker", "Blender", "Sneakers", "Perfume", "Tent", "Board Game", "Cookbook", "Spa Day",
         "Tea Set", "Smartwatch", "Pan Set", "Scarf", "Lipstick", "Bike Light", "Drone", "Atlas", "Wine Tasting"]
ADJ = ["Classic", "Premium", "Essential", "Deluxe", "Compact", "Signature", "Everyday", "Pro", "Eco", "Limited"]
CHANNELS = [("Online Store", 45), ("Mobile App", 25), ("Corporate Sales", 15), ("Partner Marketplace", 10), ("Retail Store", 5)]
SEGMENTS = [("Consumer", 60), ("Small Business", 25), ("Enterprise", 10), ("Public Sector", 5)]
STATUSES = [("completed", 90), ("refunded", 4), ("cancelled", 3), ("pending", 3)]
COMPANY_A = ["Alpine", "Bright", "Cedar", "Delta", "Evergreen", "First", "Golden", "Harbor", "Island", "Jade",
             "Keystone", "Lakeside", "Metro", "Noble", "Oak", "Prime", "Quest", "River", "Summit", "True"]
COMPANY_B = ["Trading", "Partners", "Holdings", "Group", "Retail", "Solutions", "Services", "Logistics", "Works", "Labs"]

SCHEMA = """
CREATE TABLE regions (
    region_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE currencies (
    currency_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    eur_rate REAL NOT NULL
);
CREATE TABLE countries (
    country_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    iso_code TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions(region_id),
    currency_code TEXT NOT NULL REFERENCES currencies(currency_code)
);
CREATE TABLE categories (
    category_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE brands (
    brand_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    brand_id INTEGER NOT NULL REFERENCES brands(brand_id),
    category_id INTEGER NOT NULL REFERENCES categories(category_id),
    list_price REAL NOT NULL
);
CREATE TABLE channels (
    channel_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    company_name TEXT NOT NULL,
    segment TEXT NOT NULL,
    country_id INTEGER NOT NULL REFERENCES countries(country_id),
    signup_date TEXT NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    order_date TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    product_id INTEGER NOT NULL REFERENCES products(product_id),
    channel_id INTEGER NOT NULL REFERENCES channels(channel_id),
    currency_code TEXT NOT NULL REFERENCES currencies(currency_code),
    status TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    discount REAL NOT NULL,
    amount REAL NOT NULL,
    amount_local REAL NOT NULL
);
"""


def build(out: str, rows: int, seed: int, end: date, months: int = 24, customers: int | None = None) -> None:
    rnd = random.Random(seed)
    tmp = out + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.executescript(SCHEMA)
    rate = {c: r for c, _n, r in CURRENCIES}
    conn.executemany("INSERT INTO regions VALUES (?,?)", [(i + 1, n) for i, n in enumerate(REGIONS)])
    conn.executemany("INSERT INTO currencies VALUES (?,?,?)", CURRENCIES)
    conn.executemany(
        "INSERT INTO countries VALUES (?,?,?,?,?)",
        [(i + 1, n, iso, reg + 1, cur) for i, (n, iso, reg, cur, _w) in enumerate(COUNTRIES)],
    )
    cats = list(CATEGORIES)
    conn.executemany("INSERT INTO categories VALUES (?,?)", [(i + 1, n) for i, n in enumerate(cats)])
    conn.executemany("INSERT INTO brands VALUES (?,?)", [(i + 1, n) for i, n in enumerate(BRANDS)])
    products = []
    names = set()
    for pid in range(1, 241):
        cat = rnd.randrange(len(cats))
        lo, hi = CATEGORIES[cats[cat]]
        while True:
            name = f"{rnd.choice(BRANDS)} {rnd.choice(ADJ)} {rnd.choice(NOUNS)}"
            if name not in names:
                names.add(name)
                break
        brand = BRANDS.index(name.split(" ")[0]) + 1
        price = round(math.exp(rnd.uniform(math.log(lo), math.log(hi))), 2)
        products.append((pid, f"SKU-{pid:05d}", name, brand, cat + 1, price))
    conn.executemany("INSERT INTO products VALUES (?,?,?,?,?,?)", products)
    conn.executemany("INSERT INTO channels VALUES (?,?)", [(i + 1, n) for i, (n, _w) in enumerate(CHANNELS)])

    # exactly `months` calendar months ending with end's month
    y, m = end.year, end.month - (months - 1)
    while m <= 0:
        m += 12
        y -= 1
    start = date(y, m, 1)
    ndays = (end - start).days + 1
    n_customers = customers or max(200, min(20000, rows // 30))
    cw = [w for *_x, w in COUNTRIES]
    seg_names = [s for s, _ in SEGMENTS]
    seg_w = [w for _, w in SEGMENTS]
    cust = []
    cust_country = []
    for cid in range(1, n_customers + 1):
        country = rnd.choices(range(len(COUNTRIES)), cw)[0]
        seg = rnd.choices(seg_names, seg_w)[0]
        signup = start - timedelta(days=rnd.randrange(0, 900))
        cust.append((cid, f"{rnd.choice(COMPANY_A)} {rnd.choice(COMPANY_B)} {cid}", seg, country + 1, signup.isoformat()))
        cust_country.append(country)
    conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?)", cust)

    # Day weights: growth over time, weekly pattern, December peak.
    day_w = []
    for d in range(ndays):
        day = start + timedelta(days=d)
        w = 1.0 + 0.6 * d / ndays
        w *= (0.75 if day.weekday() >= 5 else 1.0)
        w *= 1.5 if day.month == 12 else (1.2 if day.month == 11 else 1.0)
        day_w.append(w)
    cum_day = []
    acc = 0.0
    for w in day_w:
        acc += w
        cum_day.append(acc)
    # Customers and products have skewed popularity.
    cust_w = [1.0 / (i + 1) ** 0.6 for i in range(n_customers)]
    rnd.shuffle(cust_w)
    prod_w = [1.0 / (i + 1) ** 0.8 for i in range(len(products))]
    rnd.shuffle(prod_w)
    ch_w = [w for _, w in CHANNELS]
    st_names = [s for s, _ in STATUSES]
    st_w = [w for _, w in STATUSES]
    days_s = rnd.choices(range(ndays), cum_weights=cum_day, k=rows)
    days_s.sort()
    cust_s = rnd.choices(range(n_customers), cust_w, k=rows)
    prod_s = rnd.choices(range(len(products)), prod_w, k=rows)
    ch_s = rnd.choices(range(len(CHANNELS)), ch_w, k=rows)
    st_s = rnd.choices(st_names, st_w, k=rows)
    day_iso = [(start + timedelta(days=d)).isoformat() for d in range(ndays)]

    def gen():
        r = rnd.random
        for i in range(rows):
            c = cust_s[i]
            p = products[prod_s[i]]
            cur = COUNTRIES[cust_country[c]][3]
            qty = 1 + int(r() ** 3 * 9)
            disc = 0.0 if r() < 0.7 else round(r() * 0.25, 2)
            unit = p[5]  # list price in EUR
            amount = round(qty * unit * (1 - disc), 2)
            amount_local = round(amount / rate[cur], 2)
            hh = int(r() * 24)
            mm = int(r() * 60)
            ts = f"{day_iso[days_s[i]]} {hh:02d}:{mm:02d}:00"
            yield (i + 1, ts, c + 1, p[0], ch_s[i] + 1, cur, st_s[i], qty, unit, disc, amount, amount_local)

    with conn:
        conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", gen())
    conn.execute("CREATE INDEX orders_order_date ON orders(order_date)")
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--rows", type=int, default=300_000, help="number of orders (default 300000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="munero.sqlite", help="output file (replaced atomically)")
    ap.add_argument("--end", default="2024-12-31", help="last day of the dataset (ISO date)")
    ap.add_argument("--months", type=int, default=24)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    build(args.out, args.rows, args.seed, date.fromisoformat(args.end), args.months)
    print(f"wrote {args.out}: {args.rows} orders in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
