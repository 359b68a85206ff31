"""Three small SQLite files of shapes the sample database does not have, for the tests.

- star:      a star schema with snake_case names (fact_sales keyed to dim_date, dim_product,
             dim_store and dim_customer; the date only on dim_date);
- chinook:   a normalised schema with CamelCase names like the Chinook sample (Invoice and
             InvoiceLine, Track, Genre, Album, Artist, MediaType, Customer, Employee with names,
             phones and addresses; the date only on the invoice header);
- giftcards: one wide table (gc_sales) with a discount ratio, a single-valued currency column,
             e-mails, buyers' names and free-text notes.

Deterministic for a seed. `python make_test_schemas.py --kind chinook --out /tmp/c.sqlite`.
"""
from __future__ import annotations

import argparse
import random
import sqlite3
from datetime import date, timedelta

COUNTRIES = ["Germany", "France", "Brazil", "Canada", "United States", "India", "Portugal", "Czech Republic",
             "Norway", "Chile", "Australia", "Poland"]
CITIES = {c: [f"{c[:3]}-City {i}" for i in range(1, 4)] for c in COUNTRIES}
FIRST = ["Anna", "Luis", "Mark", "Helena", "Frank", "Jack", "Ana", "Eduardo", "Daan", "Kara", "Ellie", "Madalena"]
LAST = ["Smith", "Gonçalves", "Köhler", "Tremblay", "Philips", "Peeters", "Nielsen", "Silva", "Mitchell", "Murray"]
START = date(2024, 1, 1)
DAYS = 365


def _phone(r: random.Random) -> str:
    return f"+{r.randint(1, 99)} ({r.randint(10, 99)}) {r.randint(1000, 9999)}-{r.randint(1000, 9999)}"


def _day(r: random.Random, sparse: bool = False) -> date:
    # Sparse data leaves whole days empty: a chart must not join across them.
    d = r.randrange(DAYS)
    if sparse and d % 3 == 1:
        d -= 1
    return START + timedelta(days=d)


def build_star(path: str, seed: int = 1, rows: int = 4000) -> None:
    r = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE dim_date (date_key INTEGER PRIMARY KEY, full_date TEXT NOT NULL, year INTEGER, month INTEGER,
                               month_name TEXT, day_of_week TEXT);
        CREATE TABLE dim_product (product_key INTEGER PRIMARY KEY, product_name TEXT, category TEXT, brand TEXT, sku TEXT);
        CREATE TABLE dim_store (store_key INTEGER PRIMARY KEY, store_name TEXT, city TEXT, region TEXT, street_address TEXT);
        CREATE TABLE dim_customer (customer_key INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT,
                                   phone TEXT, postal_code TEXT, segment TEXT);
        CREATE TABLE fact_sales (sales_id INTEGER PRIMARY KEY,
                                 date_key INTEGER REFERENCES dim_date(date_key),
                                 product_key INTEGER REFERENCES dim_product(product_key),
                                 store_key INTEGER REFERENCES dim_store(store_key),
                                 customer_key INTEGER REFERENCES dim_customer(customer_key),
                                 quantity INTEGER, unit_price REAL, sales_amount REAL, cost_amount REAL, discount_amount REAL);
        """
    )
    for i in range(DAYS):
        d = START + timedelta(days=i)
        conn.execute("INSERT INTO dim_date VALUES (?,?,?,?,?,?)",
                     (int(d.strftime("%Y%m%d")), d.isoformat(), d.year, d.month, d.strftime("%B"), d.strftime("%A")))
    cats = ["Toys", "Garden", "Kitchen", "Books", "Sports", "Music"]
    brands = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell"]
    conn.executemany("INSERT INTO dim_product VALUES (?,?,?,?,?)",
                     [(i, f"Product {i:03d}", cats[i % 6], brands[i % 8], f"SKU-{i:05d}") for i in range(1, 81)])
    regions = ["North", "South", "East", "West"]
    conn.executemany("INSERT INTO dim_store VALUES (?,?,?,?,?)",
                     [(i, f"Store {i:02d}", f"City {i % 9}", regions[i % 4], f"{i} Main Street") for i in range(1, 25)])
    segs = ["Retail", "Business", "Education"]
    conn.executemany("INSERT INTO dim_customer VALUES (?,?,?,?,?,?,?)",
                     [(i, r.choice(FIRST), r.choice(LAST), f"c{i}@example.test", _phone(r), f"{r.randint(10000, 99999)}",
                       segs[i % 3]) for i in range(1, 301)])
    out = []
    for i in range(1, rows + 1):
        d = _day(r)
        q = r.randint(1, 5)
        price = round(r.uniform(2, 80), 2)
        amount = round(q * price, 2)
        out.append((i, int(d.strftime("%Y%m%d")), r.randint(1, 80), r.randint(1, 24), r.randint(1, 300), q, price, amount,
                    round(amount * 0.6, 2), round(amount * r.choice([0, 0, 0.05, 0.1]), 2)))
    conn.executemany("INSERT INTO fact_sales VALUES (?,?,?,?,?,?,?,?,?,?)", out)
    conn.commit()
    conn.close()


def build_chinook(path: str, seed: int = 2) -> None:
    r = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE Artist (ArtistId INTEGER PRIMARY KEY, Name NVARCHAR(120));
        CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title NVARCHAR(160) NOT NULL,
                            ArtistId INTEGER NOT NULL REFERENCES Artist(ArtistId));
        CREATE TABLE Genre (GenreId INTEGER PRIMARY KEY, Name NVARCHAR(120));
        CREATE TABLE MediaType (MediaTypeId INTEGER PRIMARY KEY, Name NVARCHAR(120));
        CREATE TABLE Track (TrackId INTEGER PRIMARY KEY, Name NVARCHAR(200) NOT NULL,
                            AlbumId INTEGER REFERENCES Album(AlbumId),
                            MediaTypeId INTEGER NOT NULL REFERENCES MediaType(MediaTypeId),
                            GenreId INTEGER REFERENCES Genre(GenreId),
                            Composer NVARCHAR(220), Milliseconds INTEGER NOT NULL, Bytes INTEGER, UnitPrice NUMERIC(10,2) NOT NULL);
        CREATE TABLE Employee (EmployeeId INTEGER PRIMARY KEY, LastName NVARCHAR(20) NOT NULL, FirstName NVARCHAR(20) NOT NULL,
                               Title NVARCHAR(30), ReportsTo INTEGER REFERENCES Employee(EmployeeId),
                               BirthDate DATETIME, HireDate DATETIME, Address NVARCHAR(70), City NVARCHAR(40),
                               State NVARCHAR(40), Country NVARCHAR(40), PostalCode NVARCHAR(10), Phone NVARCHAR(24),
                               Fax NVARCHAR(24), Email NVARCHAR(60));
        CREATE TABLE Customer (CustomerId INTEGER PRIMARY KEY, FirstName NVARCHAR(40) NOT NULL, LastName NVARCHAR(20) NOT NULL,
                               Company NVARCHAR(80), Address NVARCHAR(70), City NVARCHAR(40), State NVARCHAR(40),
                               Country NVARCHAR(40), PostalCode NVARCHAR(10), Phone NVARCHAR(24), Fax NVARCHAR(24),
                               Email NVARCHAR(60) NOT NULL, SupportRepId INTEGER REFERENCES Employee(EmployeeId));
        CREATE TABLE Invoice (InvoiceId INTEGER PRIMARY KEY, CustomerId INTEGER NOT NULL REFERENCES Customer(CustomerId),
                              InvoiceDate DATETIME NOT NULL, BillingAddress NVARCHAR(70), BillingCity NVARCHAR(40),
                              BillingState NVARCHAR(40), BillingCountry NVARCHAR(40), BillingPostalCode NVARCHAR(10),
                              Total NUMERIC(10,2) NOT NULL);
        -- No declared keys here: the joins are inferred from the <Table>Id names.
        CREATE TABLE InvoiceLine (InvoiceLineId INTEGER PRIMARY KEY, InvoiceId INTEGER NOT NULL, TrackId INTEGER NOT NULL,
                                  UnitPrice NUMERIC(10,2) NOT NULL, Quantity INTEGER NOT NULL);
        CREATE TABLE Playlist (PlaylistId INTEGER PRIMARY KEY, Name NVARCHAR(120));
        CREATE TABLE PlaylistTrack (PlaylistId INTEGER NOT NULL REFERENCES Playlist(PlaylistId),
                                    TrackId INTEGER NOT NULL REFERENCES Track(TrackId), PRIMARY KEY (PlaylistId, TrackId));
        """
    )
    conn.executemany("INSERT INTO Artist VALUES (?,?)", [(i, f"Artist {i}") for i in range(1, 26)])
    conn.executemany("INSERT INTO Album VALUES (?,?,?)", [(i, f"Album {i}", 1 + i % 25) for i in range(1, 61)])
    genres = ["Rock", "Jazz", "Metal", "Alternative & Punk", "Blues", "Latin", "Reggae", "Pop", "Soundtrack", "Classical",
              "Electronica", "Hip Hop"]
    conn.executemany("INSERT INTO Genre VALUES (?,?)", list(enumerate(genres, 1)))
    media = ["MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file", "Purchased AAC audio file",
             "AAC audio file"]
    conn.executemany("INSERT INTO MediaType VALUES (?,?)", list(enumerate(media, 1)))
    tracks = []
    for i in range(1, 601):
        price = 1.99 if i % 10 == 0 else 0.99
        tracks.append((i, f"Track {i}", 1 + i % 60, 1 + (i * 7) % 5, 1 + (i * 5) % 12,
                       f"{r.choice(FIRST)} {r.choice(LAST)}, {r.choice(FIRST)} {r.choice(LAST)}",
                       r.randint(120000, 420000), r.randint(2_000_000, 12_000_000), price))
    conn.executemany("INSERT INTO Track VALUES (?,?,?,?,?,?,?,?,?)", tracks)
    emp = [(1, "Adams", "Andrew", "General Manager", None), (2, "Edwards", "Nancy", "Sales Manager", 1),
           (3, "Peacock", "Jane", "Sales Support Agent", 2), (4, "Park", "Margaret", "Sales Support Agent", 2),
           (5, "Johnson", "Steve", "Sales Support Agent", 2), (6, "Mitchell", "Michael", "IT Manager", 1),
           (7, "King", "Robert", "IT Staff", 6), (8, "Callahan", "Laura", "IT Staff", 6)]
    conn.executemany("INSERT INTO Employee VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     [(i, ln, fn, t, rep, f"19{60 + i}-0{1 + i % 9}-1{i % 9} 00:00:00", f"2002-0{1 + i % 9}-14 00:00:00",
                       f"{i}0 Jasper Ave NW", "Calgary" if i % 2 else "Edmonton", "AB", "Canada", f"T2P {i}N{i}",
                       _phone(r), _phone(r), f"{fn.lower()}@chinookcorp.test") for i, ln, fn, t, rep in emp])
    customers = []
    for i in range(1, 60):
        country = COUNTRIES[i % len(COUNTRIES)]
        customers.append((i, r.choice(FIRST), r.choice(LAST), f"Company {i}" if i % 5 == 0 else None,
                          f"{r.randint(1, 999)} {r.choice(LAST)} Street", CITIES[country][i % 3],
                          f"{country[:2].upper()}-{i % 4}", country, f"{r.randint(10000, 99999)}", _phone(r), None,
                          f"customer{i}@example.test", 3 + i % 3))
    conn.executemany("INSERT INTO Customer VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", customers)
    by_id = {c[0]: c for c in customers}
    lines = []
    line_id = 0
    for inv in range(1, 401):
        cid = 1 + (inv * 7) % 59
        c = by_id[cid]
        d = _day(r, sparse=True)
        n = r.choice([1, 2, 2, 4, 6, 9])
        total = 0.0
        for _ in range(n):
            line_id += 1
            tid = r.randint(1, 600)
            price = tracks[tid - 1][8]
            q = r.choice([1, 1, 1, 2])
            total += price * q
            lines.append((line_id, inv, tid, price, q))
        conn.execute("INSERT INTO Invoice VALUES (?,?,?,?,?,?,?,?,?)",
                     (inv, cid, f"{d.isoformat()} 00:00:00", c[4], c[5], c[6], c[7], c[8], round(total, 2)))
    conn.executemany("INSERT INTO InvoiceLine VALUES (?,?,?,?,?)", lines)
    conn.executemany("INSERT INTO Playlist VALUES (?,?)", [(1, "Music"), (2, "Movies"), (3, "90’s Music")])
    conn.executemany("INSERT INTO PlaylistTrack VALUES (?,?)", [(1 + t % 3, t) for t in range(1, 601)])
    conn.commit()
    conn.close()


def build_giftcards(path: str, seed: int = 3, rows: int = 3000) -> None:
    r = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE gc_sales (id INTEGER PRIMARY KEY, sold_at TEXT NOT NULL, country TEXT, brand TEXT, channel TEXT,
                               currency TEXT, face_value REAL, discount REAL, customer_email TEXT, buyer_name TEXT,
                               note TEXT, card_code TEXT);
        """
    )
    countries = ["Germany", "France", "Spain", "Italy", "Netherlands", "Austria", "Belgium", "Ireland", "Portugal",
                 "Finland", "Greece", "Slovakia", "Estonia"]
    brands = ["Amazon", "Zalando", "IKEA", "Spotify", "Netflix", "Steam", "Apple", "Google Play"]
    out = []
    for i in range(1, rows + 1):
        d = _day(r)
        name = f"{r.choice(FIRST)} {r.choice(LAST)}"
        out.append((i, f"{d.isoformat()}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00", r.choice(countries),
                    r.choice(brands), r.choice(["Web", "App", "Partner"]), "EUR", r.choice([10, 15, 25, 50, 100]),
                    r.choice([0.0, 0.025, 0.05, 0.055, 0.075, 0.1]), f"buyer{i % 700}@example.test", name,
                    r.choice(["", "Gift for a birthday, please wrap it nicely and add a card with a message",
                              "Corporate order for the team event at the end of the quarter, invoice to follow"]),
                    f"GC-{i:08d}"))
    conn.executemany("INSERT INTO gc_sales VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", out)
    conn.commit()
    conn.close()


BUILDERS = {"star": build_star, "chinook": build_chinook, "giftcards": build_giftcards}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=sorted(BUILDERS), required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    BUILDERS[a.kind](a.out)


if __name__ == "__main__":
    main()
