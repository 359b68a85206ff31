"""Dashboard queries over the profiled fact table.

Two engines answer the same questions: `SqlEngine` runs SQL on the read-only client file (always
available), `app.columnar.ColumnarStore` answers from an in-memory column cache once it is built.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .core.database import quote_ident
from .dataset import Dataset, iso_week_label
from .profile import Dimension, Measure, Profile, date_expr

GRANULARITIES = ("day", "week", "month")
MAX_FILTER_VALUES = 200


class QueryError(ValueError):
    """A bad request parameter (HTTP 422)."""


class NotUsable(Exception):
    """The dataset has no usable profile (HTTP 409)."""


@dataclass
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def public(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_filters(profile: Profile, raw: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in raw or []:
        name, sep, value = item.partition(":")
        if not sep:
            raise QueryError(f"filter {item!r} must look like <dimension>:<value>")
        if profile.dimension(name) is None:
            known = ", ".join(d.name for d in profile.dimensions) or "none"
            raise QueryError(f"unknown dimension {name!r} in filter (known: {known})")
        out.setdefault(name, []).append(value)
    return out


def parse_date(value: str | None, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise QueryError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None


def require_usable(ds: Dataset) -> Profile:
    p = ds.profile
    if not p.usable:
        raise NotUsable(" ".join(p.notes) or "no fact table with a date column was found in the dataset")
    return p


def period_label(d: date, granularity: str) -> str:
    if granularity == "day":
        return d.isoformat()
    if granularity == "month":
        return d.strftime("%Y-%m")
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


class SqlEngine:
    """Answers dashboard questions with SQL on the read-only client file."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.p = ds.profile

    # -- SQL pieces ---------------------------------------------------------------------------
    def _from(self, dims: list[Dimension]) -> tuple[str, dict[str, str]]:
        aliases: dict[tuple, str] = {}
        joins: list[str] = []
        exprs: dict[str, str] = {}
        for d in dims:
            alias = "f"
            key: tuple = ()
            for hop in d.path:
                key = key + ((hop.from_column, hop.to_table, hop.to_column),)
                if key not in aliases:
                    a = f"j{len(aliases) + 1}"
                    aliases[key] = a
                    joins.append(
                        f"LEFT JOIN {quote_ident(hop.to_table)} AS {a} ON {alias}.{quote_ident(hop.from_column)} = {a}.{quote_ident(hop.to_column)}"
                    )
                alias = aliases[key]
            exprs[d.name] = f"{alias}.{quote_ident(d.column)}"
        sql = f"FROM {quote_ident(self.p.fact_table)} AS f " + " ".join(joins)
        return sql, exprs

    def _date(self) -> str:
        return date_expr(f"f.{quote_ident(self.p.date_column)}", self.p.date_kind)

    def _date_where(self, period: Period) -> tuple[str, list]:
        col = f"f.{quote_ident(self.p.date_column)}"
        nxt = period.end + timedelta(days=1)
        if self.p.date_kind == "unix":
            return f"{col} >= ? AND {col} < ?", [_epoch(period.start), _epoch(nxt)]
        if self.p.date_kind == "unix_ms":
            return f"{col} >= ? AND {col} < ?", [_epoch(period.start) * 1000, _epoch(nxt) * 1000]
        return f"{col} >= ? AND {col} < ?", [period.start.isoformat(), nxt.isoformat()]

    def _measure_sql(self, m: Measure) -> str:
        if m.agg == "count":
            return "COUNT(*)"
        if m.agg == "sql":
            return qualify_measure_sql(m.sql_text)
        return f"{m.agg.upper()}(f.{quote_ident(m.column)})"

    def _where(self, period: Period, filters: dict[str, list[str]], exprs: dict[str, str]) -> tuple[str, list]:
        clause, params = self._date_where(period)
        parts = [clause]
        for name, values in filters.items():
            parts.append(f"{exprs[name]} IN ({','.join('?' * len(values))})")
            params.extend(values)
        return " AND ".join(parts), params

    def _dims(self, names) -> list[Dimension]:
        return [self.p.dimension(n) for n in dict.fromkeys(names)]

    # -- questions ----------------------------------------------------------------------------
    def date_range(self) -> tuple[date | None, date | None]:
        col = f"f.{quote_ident(self.p.date_column)}"
        with self.ds.connection() as conn:
            lo, hi = conn.execute(f"SELECT MIN({col}), MAX({col}) FROM {quote_ident(self.p.fact_table)} AS f").fetchone()
            if lo is None:
                return None, None
            conv = date_expr("?", self.p.date_kind)
            lo, hi = conn.execute(f"SELECT {conv}, {conv}", (lo, hi)).fetchone()
        return parse_date(lo, "date"), parse_date(hi, "date")

    def totals(self, period: Period, filters: dict[str, list[str]]) -> dict[str, float | None]:
        frm, exprs = self._from(self._dims(filters))
        where, params = self._where(period, filters, exprs)
        sel = ", ".join(self._measure_sql(m) for m in self.p.measures)
        with self.ds.connection() as conn:
            row = conn.execute(f"SELECT {sel} {frm} WHERE {where}", params).fetchone()
        return {m.name: _num(v) for m, v in zip(self.p.measures, row)}

    def timeseries(self, granularity: str, measure: Measure, period: Period, filters) -> list[tuple[str, float | None]]:
        frm, exprs = self._from(self._dims(filters))
        where, params = self._where(period, filters, exprs)
        d = self._date()
        if granularity == "week" and measure.agg != "sql":
            return self._weekly_from_days(measure, frm, where, params, d)
        key = {"day": d, "month": f"substr({d}, 1, 7)", "week": f"munero_iso_week({d})"}[granularity]
        with self.ds.connection() as conn:
            rows = conn.execute(
                f"SELECT {key} AS p, {self._measure_sql(measure)} {frm} WHERE {where} GROUP BY p ORDER BY p", params
            ).fetchall()
        return [(r[0], _num(r[1])) for r in rows if r[0] is not None]

    def _weekly_from_days(self, m: Measure, frm: str, where: str, params: list, d: str) -> list[tuple[str, float | None]]:
        """ISO weeks rolled up from per-day sums and counts (SQLite has no ISO week format)."""
        if m.agg == "count":
            parts = "COUNT(*), COUNT(*)"
        else:
            col = f"f.{quote_ident(m.column)}"
            parts = f"SUM({col}), COUNT({col})"
        with self.ds.connection() as conn:
            rows = conn.execute(f"SELECT {d} AS p, {parts} {frm} WHERE {where} GROUP BY p ORDER BY p", params).fetchall()
        weeks: dict[str, list] = {}
        for day, total, cnt in rows:
            label = iso_week_label(day)
            if label is None:
                continue
            acc = weeks.setdefault(label, [0, 0, False])
            if cnt:
                acc[0] += total
                acc[1] += cnt
            acc[2] = True
        out = []
        for label, (total, cnt, _seen) in weeks.items():
            if m.agg == "count":
                out.append((label, cnt))
            elif cnt == 0:
                out.append((label, None))
            else:
                out.append((label, _num(total / cnt if m.agg == "avg" else total)))
        return out

    def top(self, dim: Dimension, measure: Measure, n: int, period: Period, filters) -> list[tuple[str, float | None]]:
        frm, exprs = self._from(self._dims([*filters, dim.name]))
        where, params = self._where(period, filters, exprs)
        with self.ds.connection() as conn:
            rows = conn.execute(
                f"SELECT {exprs[dim.name]} AS k, {self._measure_sql(measure)} AS v {frm} WHERE {where} "
                f"GROUP BY k ORDER BY v DESC NULLS LAST, k LIMIT ?",
                [*params, n],
            ).fetchall()
        return [(_label(r[0]), _num(r[1])) for r in rows]

    def dimension_values(self, dim: Dimension, limit: int = MAX_FILTER_VALUES) -> list[str]:
        frm, exprs = self._from([dim])
        with self.ds.connection() as conn:
            rows = conn.execute(
                f"SELECT {exprs[dim.name]} AS k, COUNT(*) AS c {frm} WHERE k IS NOT NULL GROUP BY k ORDER BY c DESC, k LIMIT ?",
                (limit,),
            ).fetchall()
        return [_label(r[0]) for r in rows]


def qualify_measure_sql(sql_text: str) -> str:
    """Qualify bare column names of an operator-given aggregate with the fact alias `f`."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql_text, read="sqlite")
    for col in tree.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier("f"))
    return tree.sql(dialect="sqlite")


def _num(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return round(float(v), 6) if isinstance(v, float) else v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _label(v) -> str:
    if v is None:
        return "(none)"
    return str(v)


# ---------------------------------------------------------------------------------------------
# The service used by the router: chooses the engine, computes periods, shapes responses.

class DashboardService:
    def __init__(self, ds: Dataset):
        self.ds = ds
        self.p = require_usable(ds)
        self.sql = SqlEngine(ds)

    def engine(self, measures: list[Measure] | None = None):
        col = self.ds.columnar
        if col is not None and all(m.agg != "sql" for m in (measures or self.p.measures)):
            return col
        return self.sql

    def date_range(self) -> tuple[date | None, date | None]:
        col = self.ds.columnar
        if col is not None:
            return col.date_range()
        with self.ds._lock:
            cached = (self.ds._filters_cache or {}).get("range")
        if cached is None:
            cached = self.sql.date_range()
            with self.ds._lock:
                self.ds._filters_cache = {**(self.ds._filters_cache or {}), "range": cached}
        return cached

    def period(self, start: str | None, end: str | None) -> Period:
        s = parse_date(start, "start")
        e = parse_date(end, "end")
        if e is None:
            _lo, hi = self.date_range()
            e = hi or date.today()
        if s is None:
            s = e - timedelta(days=89)
        if s > e:
            raise QueryError("start must not be after end")
        return Period(s, e)

    def measure(self, name: str | None) -> Measure:
        if not name:
            return self.default_measure()
        m = self.p.measure(name)
        if m is None:
            raise QueryError(f"unknown measure {name!r} (known: {', '.join(x.name for x in self.p.measures)})")
        return m

    def default_measure(self) -> Measure:
        for m in self.p.measures:
            if m.agg == "sum" and m.format == "currency":
                return m
        return next((m for m in self.p.measures if m.agg != "count"), self.p.measures[0])

    # -- responses ------------------------------------------------------------------------------
    def filters(self) -> dict:
        lo, hi = self.date_range()
        col = self.ds.columnar
        dims = []
        for d in self.p.dimensions:
            if col is not None:
                values = col.dimension_values(d.name)
            else:
                with self.ds._lock:
                    values = (self.ds._filters_cache or {}).get(("values", d.name))
                if values is None:
                    values = self.sql.dimension_values(d)
                    with self.ds._lock:
                        self.ds._filters_cache = {**(self.ds._filters_cache or {}), ("values", d.name): values}
            dims.append({"name": d.name, "label": d.label, "values": values})
        return {"date_min": lo.isoformat() if lo else None, "date_max": hi.isoformat() if hi else None, "dimensions": dims}

    def kpis(self, start, end, raw_filters) -> dict:
        filters = parse_filters(self.p, raw_filters)
        cur = self.period(start, end)
        prev = cur.previous()
        eng = self.engine()
        now = eng.totals(cur, filters)
        before = eng.totals(prev, filters)
        kpis = []
        for m in self.p.measures:
            v, pv = now.get(m.name), before.get(m.name)
            if m.agg == "count":
                v = v or 0
                pv = pv or 0
            change = None
            if v is not None and pv not in (None, 0):
                change = round((v - pv) / abs(pv) * 100.0, 1)
            kpis.append({"name": m.name, "label": m.label, "value": v, "previous": pv, "change_pct": change, "format": m.format})
        return {"period": cur.public(), "previous_period": prev.public(), "kpis": kpis}

    def timeseries(self, granularity, measure, start, end, raw_filters) -> dict:
        if granularity not in GRANULARITIES:
            raise QueryError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
        filters = parse_filters(self.p, raw_filters)
        m = self.measure(measure)
        per = self.period(start, end)
        pts = self.engine([m]).timeseries(granularity, m, per, filters)
        return {"granularity": granularity, "measure": m.name, "points": [{"period": k, "value": v} for k, v in pts]}

    def top(self, dimension, measure, n, start, end, raw_filters) -> dict:
        d = self.p.dimension(dimension or "")
        if d is None:
            if not dimension and self.p.dimensions:
                d = self.p.dimensions[0]
            else:
                known = ", ".join(x.name for x in self.p.dimensions) or "none"
                raise QueryError(f"unknown dimension {dimension!r} (known: {known})")
        if n < 1 or n > 100:
            raise QueryError("n must be between 1 and 100")
        filters = parse_filters(self.p, raw_filters)
        m = self.measure(measure)
        per = self.period(start, end)
        items = self.engine([m]).top(d, m, n, per, filters)
        return {"dimension": d.name, "measure": m.name, "items": [{"label": k, "value": v} for k, v in items]}
