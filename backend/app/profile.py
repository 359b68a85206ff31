"""Dataset profile: which table is the fact table, its date column, measures and dimensions.

Detected from the schema and the data of ANY SQLite file, or given by the operator through
DATASET_PROFILE (a JSON string or the path of a JSON file).
"""
from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from .core.database import ColumnInfo, foreign_keys, list_base_tables, quote_ident, table_columns

NUMERIC_TYPES = ("INT", "REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL", "MONEY")
DATE_TYPES = ("DATE", "TIME")
DATE_NAME = re.compile(r"(date|time|_at$|^at_|day$|^day|created|updated|timestamp|^ts$|_ts$)", re.I)
ID_NAME = re.compile(r"(^id$|_id$|^id_|Id$|_key$|^key$|_no$|_nr$|^zip|postal|phone|^year$|^month$|^week$|^day$)")
CURRENCY_NAME = re.compile(r"(amount|revenue|sales|price|cost|total|value|turnover|income|profit|margin|eur|usd|gbp|spend|paid|fee)", re.I)
AVG_ONLY_NAME = re.compile(r"(^|_)(price|rate|ratio|pct|percent|discount|score|rating|age|lat|lon|lng|latitude|longitude)(s?$|_)", re.I)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Ratios: a value between 0 and 1 that is a share of something, shown as a percentage.
RATIO_NAME = re.compile(r"(discount|rate|ratio|share|pct|percent|percentage|margin_pct|conversion|churn|fraction)", re.I)
# Columns that are never a breakdown: people's names, contact details, addresses, free text.
PERSONAL_NAME = re.compile(
    r"(first_?name|last_?name|full_?name|sur_?name|given_?name|middle_?name|maiden|nick_?name|phone|mobile|fax|"
    r"e_?mail|address|street|postal|post_?code|zip|ssn|passport|birth|password|iban|card_?number|ip_?addr|"
    r"(customer|buyer|client|user|contact|employee|person|owner|holder|recipient|sender|rep|agent)_?name)", re.I)
CALENDAR_NAME = re.compile(r"(month|quarter|weekday|week_day|^year|day_of|^dow$|_dow$)", re.I)
FREE_TEXT_NAME = re.compile(r"(description|comment|note|remark|message|body|text|summary|url|uri|path|json|xml|html)", re.I)
PERSON_TABLE = re.compile(r"^(customer|employee|user|person|people|contact|member|client|staff|student|patient|author|"
                          r"seller|buyer|agent|rep|representative|driver|owner|account_?holder)s?$", re.I)
EVENT_DATE_BAD = re.compile(r"(birth|dob|hire|signup|sign_up|registered|joined|created|updated|modified|deleted|expir)", re.I)
PHONE_VALUE = re.compile(r"^\+?[\d\s().\-/]{7,}$")
GENERIC_COLUMN = {"name", "title", "label", "description", "type", "status", "code", "kind", "category"}
MIN_DIM_CARDINALITY = 2
MAX_DIM_CARDINALITY = 200  # categories (a country, a genre, a status)
MAX_ENTITY_CARDINALITY = 500  # the name of a looked-up thing (a product, an album): a top-N still reads well
MAX_JOIN_DEPTH = 3
SAMPLE_ROWS = 20000


@dataclass
class Join:
    """LEFT JOIN to_table ON from_alias.from_column = to_table.to_column (one hop)."""
    from_table: str
    from_column: str
    to_table: str
    to_column: str


@dataclass
class Measure:
    name: str
    label: str
    agg: str  # sum | avg | count | sql
    column: str | None
    format: str  # currency | number | count | percent (a 0..1 ratio)
    sql_text: str = ""  # only for agg == "sql": an aggregate expression over the fact table
    # When set, the measured value is the product of these fact columns (unit price x quantity);
    # `column` is then a name for it, not a column of the table.
    factors: list[str] = field(default_factory=list)
    direction: str = "neutral"  # which way is good news: up | down | neutral (no colour)

    def public(self) -> dict:
        return {"name": self.name, "label": self.label, "sql": self.display_sql(), "format": self.format,
                "direction": self.direction}

    def display_sql(self) -> str:
        if self.agg == "count":
            return "COUNT(*)"
        if self.agg == "sql":
            return self.sql_text
        if self.factors:
            return f"{self.agg.upper()}({' * '.join(self.factors)})"
        return f"{self.agg.upper()}({self.column})"


@dataclass
class Dimension:
    name: str
    label: str
    table: str
    column: str
    path: list[Join] = field(default_factory=list)

    def public(self) -> dict:
        return {"name": self.name, "label": self.label, "column": f"{self.table}.{self.column}"}


@dataclass
class Profile:
    fact_table: str | None = None
    date_column: str | None = None
    date_kind: str = "iso"  # iso | unix | unix_ms
    # When the date lives on a header table (invoice lines dated by their invoice): the joins from
    # the fact table to it; date_column is then a column of the path's last table.
    date_path: list[Join] = field(default_factory=list)
    source: str = "detected"
    currency: str | None = None  # ISO code when the profile or the data says which
    rows_label: str = "Rows"
    measures: list[Measure] = field(default_factory=list)
    dimensions: list[Dimension] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fact_rows: int = 0

    @property
    def usable(self) -> bool:
        return bool(self.fact_table and self.date_column)

    def public(self) -> dict:
        return {
            "fact_table": self.fact_table,
            "date_column": self.date_column,
            "date_table": self.date_path[-1].to_table if self.date_path else self.fact_table,
            "source": self.source,
            "currency": self.currency,
            "measures": [m.public() for m in self.measures],
            "dimensions": [d.public() for d in self.dimensions],
            "notes": list(self.notes),
        }

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)


class ProfileError(ValueError):
    pass


def words(name: str) -> list[str]:
    """snake_case, kebab, spaces and CamelCase split into words: BillingPostalCode -> Billing Postal Code."""
    out = []
    for part in re.split(r"[\s_\-.]+", name.strip()):
        out += re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", part) or ([part] if part else [])
    return out


def _label(name: str) -> str:
    """A label for people: "BillingCountry" -> "Billing Country", "unit_price" -> "Unit Price" (acronyms kept)."""
    ws = words(name)
    if not ws:
        return name
    return " ".join(w if (w.isupper() and len(w) > 1) else w[:1].upper() + w[1:].lower() for w in ws)


def _snake(name: str) -> str:
    return "_".join(w.lower() for w in words(name)) or name


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1]
    return w


def plural(phrase: str) -> str:
    """The plural of a label's last word: "billing country" -> "billing countries"."""
    head, _, last = phrase.rpartition(" ")
    low = last.lower()
    if low.endswith("y") and len(low) > 2 and low[-2] not in "aeiou":
        p = last[:-1] + "ies"
    elif low.endswith(("ss", "us", "x", "ch", "sh")):
        p = last + "es"
    elif low.endswith("s"):
        p = last
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


_MASS_NOUNS = {"log", "data", "history", "info", "information", "staff", "inventory", "stock", "news", "media"}
_TABLE_PREFIXES = {"fact", "fct", "f", "tbl", "tb", "t", "dim", "d", "raw", "stg", "src", "vw", "v"}


def table_label(table: str, singular: bool = False) -> str:
    """A table as people would call it: gc_sales -> "Sales", InvoiceLine -> "Invoice Lines",
    fact_orders -> "Orders". Short prefixes (a two-letter system code, fact_, tbl_) are dropped."""
    ws = words(table)
    while len(ws) > 1 and (ws[0].lower() in _TABLE_PREFIXES or (len(ws[0]) <= 2 and ws[0].lower() not in ("my",))):
        ws = ws[1:]
    text = _label(" ".join(ws)) if ws else _label(table)
    head, _, last = text.rpartition(" ")
    last_s = _singular(last)
    is_plural = last_s != last.lower()
    if last.lower() in _MASS_NOUNS:
        return text
    if singular:
        last = last[:1] + last_s[1:] if is_plural else last
    elif not is_plural:
        last = plural(last)
    return f"{head} {last}" if head else last


def _is_numeric_type(t: str) -> bool:
    return any(k in t for k in NUMERIC_TYPES) and "CHAR" not in t and "TEXT" not in t


def _is_id(col: ColumnInfo, fk_cols: set[str]) -> bool:
    return col.pk or col.name in fk_cols or bool(ID_NAME.search(col.name))


def _parse_date_value(v) -> str | None:
    """Return the kind of date value: iso | unix | unix_ms, or None."""
    if isinstance(v, str):
        s = v.strip()
        if ISO_DATE.match(s):
            try:
                date.fromisoformat(s[:10])
                return "iso"
            except ValueError:
                return None
        if re.fullmatch(r"\d{9,13}", s):
            v = int(s)
        else:
            return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if 1e8 <= v <= 4.2e9:
            return "unix"
        if 1e11 <= v <= 4.2e12:
            return "unix_ms"
    return None


def date_expr(column_sql: str, kind: str) -> str:
    """SQL expression giving 'YYYY-MM-DD' for a date column of the given kind."""
    if kind == "unix":
        return f"date({column_sql}, 'unixepoch')"
    if kind == "unix_ms":
        return f"date({column_sql} / 1000, 'unixepoch')"
    return f"substr({column_sql}, 1, 10)"


def _date_kind(conn: sqlite3.Connection, table: str, col: ColumnInfo) -> str | None:
    typed = any(k in col.decl_type for k in DATE_TYPES)
    named = bool(DATE_NAME.search(col.name))
    if not typed and not named and col.decl_type not in ("", "TEXT") and not _is_numeric_type(col.decl_type):
        return None
    rows = conn.execute(
        f"SELECT {quote_ident(col.name)} FROM {quote_ident(table)} WHERE {quote_ident(col.name)} IS NOT NULL LIMIT 50"
    ).fetchall()
    if not rows:
        return None
    kinds = {_parse_date_value(r[0]) for r in rows}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is None:
        return None
    if kind in ("unix", "unix_ms") and not (typed or named):
        return None  # a big integer that is not obviously a timestamp
    return kind


def _numeric_by_values(conn: sqlite3.Connection, table: str, col: str) -> bool:
    rows = conn.execute(
        f"SELECT typeof({quote_ident(col)}) FROM {quote_ident(table)} WHERE {quote_ident(col)} IS NOT NULL LIMIT 200"
    ).fetchall()
    return bool(rows) and all(r[0] in ("integer", "real") for r in rows)


def _row_count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0]


def _implicit_fks(conn, table: str, cols: list[ColumnInfo], tables: list[str], pks: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """`<x>_id` columns that match a table named x / xs / xes / x->ies with a single-column key."""
    out = []
    lower = {t.lower(): t for t in tables}
    for c in cols:
        m = re.fullmatch(r"(.+?)_?(id|Id|ID|key|Key|KEY)", c.name)
        if not m or c.pk:
            continue
        stem = m.group(1).lower().rstrip("_")
        if not stem:
            continue
        bases = [stem, stem[:-1] + "ies" if stem.endswith("y") else stem + "s", stem + "es", stem + "s"]
        cands = bases + [f"{pre}{b}" for pre in ("dim_", "d_", "dim") for b in bases[:2]] + [b.replace("_", "") for b in bases[:2]]
        for cand in cands:
            t = lower.get(cand)
            if t and t != table:
                tcols = [x.name for x in table_columns(conn, t)]
                target = None
                if c.name in tcols:
                    target = c.name
                elif len(pks.get(t, [])) == 1:
                    target = pks[t][0]
                elif "id" in tcols:
                    target = "id"
                if target:
                    out.append((c.name, t, target))
                break
    return out


NAME_LIKE = re.compile(r"((?i:^name$|^title$|^label$|[_ ]name$|[_ ]title$)|[a-z]Name$|[a-z]Title$)")


@dataclass
class DimCandidate:
    column: str
    distinct: int
    entity: bool  # the name of each row of a looked-up table (a product's name)


def _skip_reason(table: str, col: str, values_sample: list) -> str | None:
    """Why a text column is not a breakdown, in a few words for the profile notes; None if it may be one."""
    low = col.lower()
    if PERSONAL_NAME.search(col) or PERSONAL_NAME.search(_snake(col)):
        return "names of people, contact details or addresses"
    if FREE_TEXT_NAME.search(_snake(col)) and low not in ("type", "status"):
        return "free text"
    if PERSON_TABLE.match(_snake(table)) and NAME_LIKE.search(col) and "company" not in low:
        return "names or job titles of people"
    texts = [v for v in values_sample if isinstance(v, str)]
    if texts:
        if sum("@" in v for v in texts) > len(texts) * 0.5:
            return "names of people, contact details or addresses"
        if sum(bool(PHONE_VALUE.match(v)) for v in texts) > len(texts) * 0.5:
            return "names of people, contact details or addresses"
    return None


def _direction(name: str, fmt: str) -> str:
    """Which way is good news: costs and discounts rising are not; money and counts rising are;
    anything else is left uncoloured."""
    if COST_NAME.search(_snake(name)):
        return "down"
    return "up" if fmt in ("currency", "count") else "neutral"


def _dim_candidates(conn, table: str, cols: list[ColumnInfo], fk_cols: set[str], sample_from: str,
                    lookup: bool = False, skipped: dict[str, list[str]] | None = None) -> list[DimCandidate]:
    """Text columns of a table that make good breakdowns.

    About 2-200 distinct values for categories. On a lookup table (reached by a join) one row per
    entity is normal, so a unique column is kept when it names the entity (name, title, ..._name; up
    to 500 values, a top-N of products still reads well) and dropped otherwise (codes, SKUs).
    People's names, contact details, addresses and free text are never offered (`skipped` collects
    them by reason for the notes)."""
    out = []
    for c in cols:
        if c.pk or c.name in fk_cols or ID_NAME.search(c.name) and not PERSONAL_NAME.search(c.name):
            continue
        if _is_numeric_type(c.decl_type) or any(k in c.decl_type for k in DATE_TYPES):
            continue
        if DATE_NAME.search(c.name) and not c.name.lower().endswith(("type", "name")):
            continue
        if CALENDAR_NAME.search(_snake(c.name)):
            continue  # a calendar's parts (month names, weekdays): the time series shows those
        q = quote_ident(c.name)
        row = conn.execute(
            f"SELECT count(DISTINCT {q}), count({q}), sum(typeof({q}) = 'text'), max(length({q})), avg(length({q})) FROM ({sample_from})"
        ).fetchone()
        distinct, nonnull, texts, maxlen, avglen = row
        if not nonnull or not texts or texts < nonnull * 0.9:
            continue
        sample = [r[0] for r in conn.execute(f"SELECT {q} FROM ({sample_from}) WHERE {q} IS NOT NULL LIMIT 50")]
        reason = _skip_reason(table, c.name, sample)
        if reason is None and ((maxlen or 0) > 80 or (avglen or 0) > 40):
            reason = "free text"
        if reason:
            if skipped is not None:
                skipped.setdefault(reason, []).append(_label(c.name))
            continue
        entity = False
        if lookup:
            if distinct == nonnull and nonnull > 1:
                if not NAME_LIKE.search(c.name):
                    continue  # a unique code of each entity, its name is the better label
                entity = True
        elif nonnull > 50 and distinct > nonnull * 0.5:
            continue  # nearly unique: names of individual records, not categories
        limit = MAX_ENTITY_CARDINALITY if entity else MAX_DIM_CARDINALITY
        if distinct < MIN_DIM_CARDINALITY or distinct > limit:
            continue
        out.append(DimCandidate(c.name, distinct, entity))
    return out


def _ratio_column(conn, table: str, col: str) -> bool:
    """A share between 0 and 1 (discount 0.05, conversion rate 0.31) by its name and its values."""
    if not RATIO_NAME.search(_snake(col)):
        return False
    q = quote_ident(col)
    lo, hi = conn.execute(f"SELECT min({q}), max({q}) FROM (SELECT {q} FROM {quote_ident(table)} LIMIT {SAMPLE_ROWS})").fetchone()
    try:
        return lo is not None and float(lo) >= 0 and float(hi) <= 1
    except (TypeError, ValueError):
        return False


def _single_currency(conn, table: str, cols: list[ColumnInfo]) -> str | None:
    """The one ISO currency code of a `currency` column, when all rows have the same."""
    for c in cols:
        if re.fullmatch(r"(currency|currency_?code|ccy|cur)", c.name, re.I):
            q = quote_ident(c.name)
            vals = conn.execute(f"SELECT DISTINCT {q} FROM (SELECT {q} FROM {quote_ident(table)} LIMIT {SAMPLE_ROWS}) LIMIT 2").fetchall()
            if len(vals) == 1 and isinstance(vals[0][0], str) and re.fullmatch(r"[A-Za-z]{3}", vals[0][0]):
                return vals[0][0].upper()
    return None


_PRICE = re.compile(r"^(unit_?price|price|unit_?cost|price_?each|item_?price|sale_?price|selling_?price)$", re.I)
_QTY = re.compile(r"^(quantity|qty|units|quantity_?ordered|qty_?ordered|amount_?units|count)$", re.I)
COST_NAME = re.compile(r"(cost|discount|refund|return|churn|expense|fee|tax|loss|bounce|latency|duration|delay|error|defect|complaint|cancel)", re.I)


def _date_rank(item):
    """Prefer a column whose name says "date", then typed dates, then events over birth/hire/update dates."""
    c, _k = item
    name = c.name.lower()
    return (
        0 if not EVENT_DATE_BAD.search(name) else 1,
        0 if ("date" in name or name in ("day", "ts", "timestamp")) else 1,
        0 if any(k in c.decl_type for k in DATE_TYPES) else 1,
    )


def _measure_columns(conn, t: str, cols: list[ColumnInfo], fk_cols: set[str], date_names: set[str]) -> list[ColumnInfo]:
    nums = []
    for c in cols:
        if _is_id(c, fk_cols) or c.name in date_names:
            continue
        if _is_numeric_type(c.decl_type) or (c.decl_type == "" and _numeric_by_values(conn, t, c.name)):
            nums.append(c)
    return nums


def detect_profile(conn: sqlite3.Connection) -> Profile:
    prof = Profile()
    tables = list_base_tables(conn)
    if not tables:
        prof.notes.append("The database has no tables.")
        return prof
    cols_by_table = {t: table_columns(conn, t) for t in tables}
    pks = {t: [c.name for c in cols if c.pk] for t, cols in cols_by_table.items()}
    fks: dict[str, list[tuple[str, str, str]]] = {}
    declared_of: dict[str, set[tuple[str, str, str]]] = {}
    for t in tables:
        declared = [fk for fk in foreign_keys(conn, t) if fk[1] in cols_by_table]
        declared = [(f, tt, tc if tc else (pks[tt][0] if len(pks[tt]) == 1 else f)) for f, tt, tc in declared]
        declared_of[t] = set(declared)
        seen = {f for f, _, _ in declared}
        implicit = [fk for fk in _implicit_fks(conn, t, cols_by_table[t], tables, pks) if fk[0] not in seen]
        fks[t] = declared + implicit

    own_dates: dict[str, list[tuple[ColumnInfo, str]]] = {}
    for t in tables:
        own_dates[t] = [(c, k) for c in cols_by_table[t] if (k := _date_kind(conn, t, c))]

    def reached_date(t: str) -> tuple[list[Join], ColumnInfo, str] | None:
        """The date of a row: its own, else its header's through a foreign key (up to 2 hops)."""
        if own_dates[t]:
            c, k = sorted(own_dates[t], key=_date_rank)[0]
            if not EVENT_DATE_BAD.search(c.name):
                return [], c, k
        frontier: list[tuple[str, list[Join]]] = [(t, [])]
        seen = {t}
        for _hop in range(2):
            nxt = []
            for tt, path in frontier:
                for f, to_t, to_c in fks[tt]:
                    if to_t in seen or (pks.get(to_t) != [to_c] and (f, to_t, to_c) not in declared_of[tt]):
                        continue  # only to one row (a key): a date through a non-key would repeat rows
                    seen.add(to_t)
                    p = path + [Join(tt, f, to_t, to_c)]
                    good = [d for d in own_dates[to_t] if not EVENT_DATE_BAD.search(d[0].name)]
                    if good:
                        c, k = sorted(good, key=_date_rank)[0]
                        return p, c, k
                    nxt.append((to_t, p))
            frontier = nxt
        if own_dates[t]:
            c, k = sorted(own_dates[t], key=_date_rank)[0]
            return [], c, k
        return None

    candidates = []
    date_only = []
    for t in tables:
        fk_cols = {f for f, _, _ in fks[t]}
        reach = reached_date(t)
        if reach is None:
            continue
        nums = _measure_columns(conn, t, cols_by_table[t], fk_cols, {c.name for c, _ in own_dates[t]})
        n = _row_count(conn, t)
        (candidates if nums else date_only).append((n, t, reach, nums))

    if not candidates and not date_only:
        prof.notes.append(
            "No table has a date column (ISO text dates or unix timestamps), so there is no time axis: "
            "set DATASET_PROFILE to choose the fact table and its date column."
        )
        return prof
    # The most granular table with numbers that reaches a date: invoice lines over invoices.
    if candidates:
        n, fact, reach, nums = max(candidates, key=lambda x: (x[0], -len(x[2][0])))
    else:
        n, fact, reach, nums = max(date_only, key=lambda x: (x[0], -len(x[2][0])))
        prof.notes.append(f"Table {fact} has a date but no numeric columns: only row counts are shown.")
    date_path, dcol, dkind = reach
    prof.fact_table = fact
    prof.fact_rows = n
    prof.date_column = dcol.name
    prof.date_kind = dkind
    prof.date_path = date_path
    prof.rows_label = table_label(fact)
    others = sorted((c for c in candidates if c[1] != fact), key=lambda x: -x[0])
    why = f"Facts: {fact} ({n:,} rows), the most detailed table with numbers that has a date"
    if others:
        why += f" (rather than {', '.join(o[1] for o in others[:3])})"
    if date_path:
        hops = " -> ".join(f"{j.to_table} via {j.from_column}" for j in date_path)
        why += f"; its date is {date_path[-1].to_table}.{dcol.name}, reached through {hops}"
    else:
        why += f"; its date is {dcol.name}"
    prof.notes.append(why + ".")

    prof.measures.append(Measure(name="rows", label=prof.rows_label, agg="count", column=None, format="count",
                                 direction="up"))
    used = {"rows"}
    sums, avgs = [], []
    ratios = []
    for c in nums:
        ratio = _ratio_column(conn, fact, c.name)
        fmt = "percent" if ratio else ("currency" if CURRENCY_NAME.search(c.name) else "number")
        direction = _direction(c.name, fmt)
        if ratio:
            ratios.append(_label(c.name))
        money_total = bool(re.search(r"(^|_)(amount|value|total|sum|cost)s?$", _snake(c.name)))  # discount_amount adds up
        if not ratio and (money_total or not AVG_ONLY_NAME.search(_snake(c.name))):
            name = c.name if c.name not in used else f"sum_{c.name}"
            used.add(name)
            sums.append(Measure(name=name, label=_label(c.name), agg="sum", column=c.name, format=fmt, direction=direction))
        name = f"avg_{c.name}"
        if name not in used:
            used.add(name)
            label = _label(c.name) if ratio else "Avg " + _label(c.name)
            avgs.append(Measure(name=name, label=label, agg="avg", column=c.name, format=fmt, direction=direction))
    # Unit price x quantity is revenue when no money column says so already.
    price = next((c.name for c in nums if _PRICE.match(c.name) or _PRICE.match(_snake(c.name))), None)
    qty = next((c.name for c in nums if _QTY.match(c.name) or _QTY.match(_snake(c.name))), None)
    if price and qty and not any(m.format == "currency" for m in sums) and "revenue" not in used:
        used.add("revenue")
        sums.insert(0, Measure(name="revenue", label="Revenue", agg="sum", column=f"{price}*{qty}", format="currency",
                               factors=[price, qty], direction="up"))
        prof.notes.append(f"Revenue is {_label(price)} x {_label(qty)} of each {table_label(fact, singular=True).lower()}.")
    if ratios:
        prof.notes.append(f"{', '.join(ratios)}: ratios between 0 and 1, averaged and shown as percentages.")
    # Money first: the most useful headline figure on a sales-like table.
    sums.sort(key=lambda m: 0 if m.format == "currency" else 1)
    prof.measures.extend(sums + avgs)

    # Dimensions: on the fact table, then on tables reachable by joins (breadth first). The date's
    # header table counts as reachable like any other.
    fact_fk_cols = {f for f, _, _ in fks[fact]}
    sample_fact = f"SELECT * FROM {quote_ident(fact)} LIMIT {SAMPLE_ROWS}"
    dims: list[Dimension] = []
    names: set[str] = set()
    labels: set[str] = set()
    distinct_of: dict[tuple[str, str], int] = {}
    skipped: dict[str, list[str]] = {}

    def add_dim(table: str, cand: DimCandidate, path: list[Join]):
        column = cand.column
        low = column.lower()
        tname = table_label(table, singular=True)
        who = tname  # the looked-up thing as the facts call it: SupportRepId -> Employee is "Support Rep"
        if path:
            fk = path[-1].from_column
            role = re.sub(r"(_?(id|Id|ID|key|Key|KEY))$", "", fk).strip()
            if role and role != fk and _snake(role) not in (_snake(tname), _snake(_singular(table)), _snake(table)):
                who = _label(role)
        if cand.entity and (low in GENERIC_COLUMN or low == f"{_singular(table)}_name" or _snake(column) in (
                f"{_snake(tname)}_name", f"{_snake(tname)}_title")):
            base, label = _snake(who), who  # Genre.Name -> "genre"
        elif path and low in GENERIC_COLUMN:
            base, label = f"{_snake(who)}_{_snake(column)}", f"{who} {_label(column)}"
        else:
            base, label = column, _label(column)
        if low in ("name", "title", "label") and not path:
            base, label = _snake(tname), tname
        tname = who
        name = base if base not in names and base != "rows" else f"{_snake(tname)}_{_snake(column)}"
        if label in labels:
            label = f"{tname} {_label(column)}"
        if name in names or label in labels:
            return
        names.add(name)
        labels.add(label)
        dims.append(Dimension(name=name, label=label, table=table, column=column, path=path))

    for cand in _dim_candidates(conn, fact, cols_by_table[fact], fact_fk_cols | {dcol.name}, sample_fact, skipped=skipped):
        distinct_of[(fact, cand.column)] = cand.distinct
        add_dim(fact, cand, [])

    visited = {fact}
    frontier: list[tuple[str, list[Join]]] = [(fact, [])]
    for _depth in range(MAX_JOIN_DEPTH):
        nxt = []
        for t, path in frontier:
            for from_col, to_t, to_col in fks[t]:
                if to_t in visited:
                    continue
                visited.add(to_t)
                p = path + [Join(t, from_col, to_t, to_col)]
                nxt.append((to_t, p))
                tfk = {f for f, _, _ in fks[to_t]}
                sample = f"SELECT * FROM {quote_ident(to_t)} LIMIT {SAMPLE_ROWS}"
                for cand in _dim_candidates(conn, to_t, cols_by_table[to_t], tfk, sample, lookup=True, skipped=skipped):
                    distinct_of[(to_t, cand.column)] = cand.distinct
                    add_dim(to_t, cand, p)
        frontier = nxt
    # Most useful first (a client shows the first one by default): about ten values fill a top-10
    # chart best; then fewer joins.
    import math

    card = {id(d): distinct_of.get((d.table, d.column), 10) for d in dims}
    # Cities and states come after countries and categories of the same size: a coarser first view.
    fine = re.compile(r"(city|state|town|province|county|district|zip|postal)", re.I)
    dims.sort(key=lambda d: (round(abs(math.log(max(card[id(d)], 1) / 10.0)), 1) + (0.5 if fine.search(d.column) else 0),
                             len(d.path)))
    prof.dimensions = dims
    if dims:
        prof.notes.append("Breakdowns: " + ", ".join(f"{d.label} ({card[id(d)]})" for d in dims)
                          + " - text columns with about 2 to 200 distinct values, on the facts or joined to them.")
    else:
        prof.notes.append("No low-cardinality text column was found for breakdowns; only totals and time series are shown.")
    for reason, cols in skipped.items():
        uniq = list(dict.fromkeys(cols))
        prof.notes.append(f"Not offered as breakdowns ({reason}): {', '.join(uniq[:8])}{', ...' if len(uniq) > 8 else ''}.")

    # Currency: one code in a currency column of the facts or a joined table.
    for t in [fact] + [j.to_table for j in date_path] + list(dict.fromkeys(j.to_table for d in dims for j in d.path)):
        code = _single_currency(conn, t, cols_by_table[t])
        if code:
            prof.currency = code
            prof.notes.append(f"Amounts are in {code} (the {t} table's currency column has that one value).")
            break
    return prof


# ---------------------------------------------------------------------------------------------
# Operator override

def _load_override(raw: str) -> dict:
    raw = raw.strip()
    if raw.startswith("{"):
        return json.loads(raw)
    return json.loads(Path(raw).read_text())


_SIMPLE_AGG = re.compile(r"^\s*(SUM|AVG|COUNT)\s*\(\s*(\*|\"?[A-Za-z_][A-Za-z0-9_ ]*\"?)\s*\)\s*$", re.I)


def _path_to(conn, fact: str, table: str) -> list[Join] | None:
    """Shortest join path from the fact table to a table (declared or `<x>_id` foreign keys)."""
    tables = list_base_tables(conn)
    cols_by_table = {t: table_columns(conn, t) for t in tables}
    pks = {t: [c.name for c in cols if c.pk] for t, cols in cols_by_table.items()}
    frontier = [(fact, [])]
    seen = {fact}
    while frontier:
        nxt = []
        for t, path in frontier:
            edges = [(f, tt, tc or (pks[tt][0] if len(pks.get(tt, [])) == 1 else f)) for f, tt, tc in foreign_keys(conn, t)]
            edges += _implicit_fks(conn, t, cols_by_table[t], tables, pks)
            for f, tt, tc in edges:
                if tt in seen or tt not in cols_by_table:
                    continue
                p = path + [Join(t, f, tt, tc)]
                if tt == table:
                    return p
                seen.add(tt)
                nxt.append((tt, p))
        frontier = nxt
    return None


def profile_from_override(conn: sqlite3.Connection, raw: str) -> Profile:
    try:
        spec = _load_override(raw)
    except (OSError, ValueError) as exc:
        raise ProfileError(f"DATASET_PROFILE is not valid JSON or not a readable file ({type(exc).__name__})") from None
    tables = list_base_tables(conn)
    prof = Profile(source="override")
    fact = spec.get("fact_table")
    if fact not in tables:
        raise ProfileError(f"DATASET_PROFILE: fact_table {fact!r} is not a table of the database")
    prof.fact_table = fact
    cols = {c.name: c for c in table_columns(conn, fact)}
    dcol = spec.get("date_column")
    dtable = fact
    if isinstance(dcol, str) and dcol not in cols and "." in dcol:
        # "Invoice.InvoiceDate": the date of a header table, joined like a dimension
        dtable, _, dcol = dcol.rpartition(".")
        if dtable not in tables:
            raise ProfileError(f"DATASET_PROFILE: date_column's table {dtable!r} is not a table of the database")
        found = _path_to(conn, fact, dtable)
        if found is None:
            raise ProfileError(f"DATASET_PROFILE: no join path from {fact} to {dtable} for the date column")
        prof.date_path = found
    dcols = {c.name: c for c in table_columns(conn, dtable)}
    if dcol not in dcols:
        raise ProfileError(f"DATASET_PROFILE: date_column {dcol!r} is not a column of {dtable}")
    prof.date_column = dcol
    kind = spec.get("date_format") or _date_kind(conn, dtable, dcols[dcol]) or "iso"
    if kind not in ("iso", "unix", "unix_ms"):
        raise ProfileError("DATASET_PROFILE: date_format must be iso, unix or unix_ms")
    prof.date_kind = kind
    prof.fact_rows = _row_count(conn, fact)
    prof.rows_label = spec.get("rows_label") or table_label(fact)
    cur = spec.get("currency")
    if cur is not None and not (isinstance(cur, str) and re.fullmatch(r"[A-Za-z]{3}", cur)):
        raise ProfileError("DATASET_PROFILE: currency must be a 3-letter ISO code such as EUR")
    prof.currency = cur.upper() if cur else None
    prof.measures.append(Measure(name="rows", label=prof.rows_label, agg="count", column=None, format="count"))
    for m in spec.get("measures", []):
        name = m["name"]
        if name == "rows":
            continue
        sql = m.get("sql", "")
        mm = _SIMPLE_AGG.match(sql)
        fmt = m.get("format", "number")
        if fmt not in ("currency", "number", "count", "percent"):
            raise ProfileError(f"DATASET_PROFILE: measure {name!r} has format {fmt!r}; use currency, number, count or percent")
        label = m.get("label") or _label(name)
        direction = m.get("direction") or _direction(name, fmt)
        if direction not in ("up", "down", "neutral"):
            raise ProfileError(f"DATASET_PROFILE: measure {name!r} has direction {direction!r}; use up, down or neutral")
        if mm:
            agg = mm.group(1).lower()
            col = mm.group(2).strip('"')
            if col == "*":
                prof.measures.append(Measure(name=name, label=label, agg="count", column=None, format=fmt, direction=direction))
                continue
            if col not in cols:
                raise ProfileError(f"DATASET_PROFILE: measure {name!r} uses unknown column {col!r}")
            prof.measures.append(Measure(name=name, label=label, agg=agg, column=col, format=fmt, direction=direction))
        else:
            prof.measures.append(Measure(name=name, label=label, agg="sql", column=None, format=fmt, sql_text=sql, direction=direction))
    for d in spec.get("dimensions", []):
        name = d["name"]
        column = d.get("column") or name
        table, _, col = column.rpartition(".")
        table = table or fact
        if table not in tables or col not in {c.name for c in table_columns(conn, table)}:
            raise ProfileError(f"DATASET_PROFILE: dimension {name!r} uses unknown column {column!r}")
        path: list[Join] = []
        if table != fact:
            found = _path_to(conn, fact, table)
            if found is None:
                raise ProfileError(f"DATASET_PROFILE: no join path from {fact} to {table} for dimension {name!r}")
            path = found
        prof.dimensions.append(Dimension(name=name, label=d.get("label") or _label(name), table=table, column=col, path=path))
    prof.notes.append("Profile set by DATASET_PROFILE.")
    return prof


def build_profile(conn: sqlite3.Connection, override: str = "") -> Profile:
    if override.strip():
        return profile_from_override(conn, override)
    return detect_profile(conn)


def profile_to_json(p: Profile) -> str:
    return json.dumps(asdict(p))
