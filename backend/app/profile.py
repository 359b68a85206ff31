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
MAX_DIM_CARDINALITY = 500
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
    format: str  # currency | number | count
    sql_text: str = ""  # only for agg == "sql": an aggregate expression over the fact table

    def public(self) -> dict:
        return {"name": self.name, "label": self.label, "sql": self.display_sql(), "format": self.format}

    def display_sql(self) -> str:
        if self.agg == "count":
            return "COUNT(*)"
        if self.agg == "sql":
            return self.sql_text
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
    source: str = "detected"
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
            "source": self.source,
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


def _label(name: str) -> str:
    return re.sub(r"[_\-]+", " ", name).strip().title() or name


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


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
        m = re.fullmatch(r"(.+?)_?(id|Id|ID)", c.name)
        if not m or c.pk:
            continue
        stem = m.group(1).lower().rstrip("_")
        if not stem:
            continue
        cands = [stem, stem + "s", stem + "es", stem[:-1] + "ies" if stem.endswith("y") else stem + "s"]
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


NAME_LIKE = re.compile(r"(^name$|^title$|^label$|[_ ]name$|[_ ]title$)", re.I)


def _dim_candidates(conn, table: str, cols: list[ColumnInfo], fk_cols: set[str], sample_from: str, lookup: bool = False) -> list[tuple[str, int]]:
    """Low-cardinality text columns of a table: (column, distinct count).

    On a lookup table (reached by a join) one row per entity is normal, so a unique column is kept
    when it names the entity (name, title, ..._name) and dropped otherwise (codes, SKUs)."""
    out = []
    for c in cols:
        if c.pk or c.name in fk_cols:
            continue
        if _is_numeric_type(c.decl_type) or any(k in c.decl_type for k in DATE_TYPES):
            continue
        if DATE_NAME.search(c.name) and not c.name.lower().endswith(("type", "name")):
            continue
        q = quote_ident(c.name)
        row = conn.execute(
            f"SELECT count(DISTINCT {q}), count({q}), sum(typeof({q}) = 'text'), max(length({q})) FROM ({sample_from})"
        ).fetchone()
        distinct, nonnull, texts, maxlen = row
        if not nonnull or not texts or texts < nonnull * 0.9:
            continue
        if (maxlen or 0) > 80:
            continue
        if distinct < 1 or distinct > MAX_DIM_CARDINALITY:
            continue
        if lookup:
            if distinct == nonnull and nonnull > 1 and not NAME_LIKE.search(c.name):
                continue  # a unique code of each entity, its name is the better label
        elif nonnull > 50 and distinct > nonnull * 0.5:
            continue  # nearly unique: names of individual records, not categories
        out.append((c.name, distinct))
    return out


def detect_profile(conn: sqlite3.Connection) -> Profile:
    prof = Profile()
    tables = list_base_tables(conn)
    if not tables:
        prof.notes.append("The database has no tables.")
        return prof
    cols_by_table = {t: table_columns(conn, t) for t in tables}
    pks = {t: [c.name for c in cols if c.pk] for t, cols in cols_by_table.items()}
    fks: dict[str, list[tuple[str, str, str]]] = {}
    for t in tables:
        declared = [fk for fk in foreign_keys(conn, t) if fk[1] in cols_by_table]
        declared = [(f, tt, tc if tc else (pks[tt][0] if len(pks[tt]) == 1 else f)) for f, tt, tc in declared]
        seen = {f for f, _, _ in declared}
        implicit = [fk for fk in _implicit_fks(conn, t, cols_by_table[t], tables, pks) if fk[0] not in seen]
        fks[t] = declared + implicit

    candidates = []
    date_only = []
    for t in tables:
        cols = cols_by_table[t]
        fk_cols = {f for f, _, _ in fks[t]}
        dates = []
        for c in cols:
            k = _date_kind(conn, t, c)
            if k:
                dates.append((c, k))
        if not dates:
            continue
        nums = []
        for c in cols:
            if _is_id(c, fk_cols) or any(c.name == d.name for d, _ in dates):
                continue
            if _is_numeric_type(c.decl_type) or (c.decl_type == "" and _numeric_by_values(conn, t, c.name)):
                nums.append(c)
        n = _row_count(conn, t)
        (candidates if nums else date_only).append((n, t, dates, nums))

    if not candidates and not date_only:
        prof.notes.append(
            "No table has a date column (ISO text dates or unix timestamps), so there is no time axis: "
            "set DATASET_PROFILE to choose the fact table and its date column."
        )
        return prof
    if candidates:
        n, fact, dates, nums = max(candidates, key=lambda x: x[0])
    else:
        n, fact, dates, nums = max(date_only, key=lambda x: x[0])
        prof.notes.append(f"Table {fact} has a date column but no numeric columns: only row counts are shown.")
    prof.fact_table = fact
    prof.fact_rows = n

    # Prefer a column whose name says "date", then typed dates, then the first.
    def date_rank(item):
        c, _k = item
        name = c.name.lower()
        return (
            0 if ("date" in name or name in ("day", "ts", "timestamp")) else 1,
            0 if any(k in c.decl_type for k in DATE_TYPES) else 1,
            0 if not re.search(r"(updated|modified|deleted)", name) else 1,
        )

    dcol, dkind = sorted(dates, key=date_rank)[0]
    prof.date_column = dcol.name
    prof.date_kind = dkind

    rows_label = _label(fact)
    prof.measures.append(Measure(name="rows", label=rows_label, agg="count", column=None, format="count"))
    used = {"rows"}
    sums, avgs = [], []
    for c in nums:
        fmt = "currency" if CURRENCY_NAME.search(c.name) else "number"
        if not AVG_ONLY_NAME.search(c.name):
            name = c.name if c.name not in used else f"sum_{c.name}"
            used.add(name)
            sums.append(Measure(name=name, label=_label(c.name), agg="sum", column=c.name, format=fmt))
        name = f"avg_{c.name}"
        if name not in used:
            used.add(name)
            avgs.append(Measure(name=name, label="Avg " + _label(c.name), agg="avg", column=c.name, format=fmt))
    # Money first: the most useful headline figure on a sales-like table.
    sums.sort(key=lambda m: 0 if m.format == "currency" else 1)
    prof.measures.extend(sums + avgs)

    # Dimensions: on the fact table, then on tables reachable by joins (breadth first).
    fact_fk_cols = {f for f, _, _ in fks[fact]}
    sample_fact = f"SELECT * FROM {quote_ident(fact)} LIMIT {SAMPLE_ROWS}"
    dims: list[Dimension] = []
    names: set[str] = set()
    distinct_of: dict[tuple[str, str], int] = {}

    def add_dim(table: str, column: str, path: list[Join]):
        base = column
        if column.lower() in ("name", "title", "label", "description") or column.lower() == f"{_singular(table)}_name":
            base = _singular(table)
        name = base if base not in names and base != "rows" else f"{_singular(table)}_{column}"
        if name in names:
            return
        names.add(name)
        dims.append(Dimension(name=name, label=_label(name), table=table, column=column, path=path))

    for col, nd in _dim_candidates(conn, fact, cols_by_table[fact], fact_fk_cols | {dcol.name}, sample_fact):
        distinct_of[(fact, col)] = nd
        add_dim(fact, col, [])

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
                for col, nd in _dim_candidates(conn, to_t, cols_by_table[to_t], tfk, f"SELECT * FROM {quote_ident(to_t)} LIMIT {SAMPLE_ROWS}", lookup=True):
                    distinct_of[(to_t, col)] = nd
                    add_dim(to_t, col, p)
        frontier = nxt
    # Most useful first (a client shows the first one by default): about ten values fill a top-10
    # chart best; then fewer joins.
    import math

    card = {id(d): distinct_of.get((d.table, d.column), 10) for d in dims}
    dims.sort(key=lambda d: (round(abs(math.log(max(card[id(d)], 1) / 10.0)), 1), len(d.path)))
    prof.dimensions = dims
    if not dims:
        prof.notes.append("No low-cardinality text column was found for breakdowns; only totals and time series are shown.")
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
    if dcol not in cols:
        raise ProfileError(f"DATASET_PROFILE: date_column {dcol!r} is not a column of {fact}")
    prof.date_column = dcol
    kind = spec.get("date_format") or _date_kind(conn, fact, cols[dcol]) or "iso"
    if kind not in ("iso", "unix", "unix_ms"):
        raise ProfileError("DATASET_PROFILE: date_format must be iso, unix or unix_ms")
    prof.date_kind = kind
    prof.fact_rows = _row_count(conn, fact)
    prof.measures.append(Measure(name="rows", label=spec.get("rows_label") or _label(fact), agg="count", column=None, format="count"))
    for m in spec.get("measures", []):
        name = m["name"]
        if name == "rows":
            continue
        sql = m.get("sql", "")
        mm = _SIMPLE_AGG.match(sql)
        fmt = m.get("format", "number")
        label = m.get("label") or _label(name)
        if mm:
            agg = mm.group(1).lower()
            col = mm.group(2).strip('"')
            if col == "*":
                prof.measures.append(Measure(name=name, label=label, agg="count", column=None, format=fmt))
                continue
            if col not in cols:
                raise ProfileError(f"DATASET_PROFILE: measure {name!r} uses unknown column {col!r}")
            prof.measures.append(Measure(name=name, label=label, agg=agg, column=col, format=fmt))
        else:
            prof.measures.append(Measure(name=name, label=label, agg="sql", column=None, format=fmt, sql_text=sql))
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
