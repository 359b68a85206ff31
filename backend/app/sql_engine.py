"""SQL over the profiled fact table: the engine that always answers dashboard questions.

Below both the dashboard service and the column cache: the service asks it questions, the cache
reads the fact rows through it once to build its arrays. It knows the dataset only by its profile
and its connections, so the dataset module (which starts the cache build) can sit above it.
"""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Protocol

from .core.database import quote_ident
from .profile import Dimension, Measure, Profile, date_expr

MAX_FILTER_VALUES = 200


class FactSource(Protocol):
    """What the engines need of a loaded dataset (app.dataset.Dataset is one)."""

    profile: Profile

    def connection(self) -> AbstractContextManager[sqlite3.Connection]: ...


class QueryError(ValueError):
    """A bad request parameter (HTTP 422)."""


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


def parse_date(value: str | None, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise QueryError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from None


def iso_week_label(d: str | None) -> str | None:
    if not d:
        return None
    try:
        y, w, _ = date.fromisoformat(d[:10]).isocalendar()
    except ValueError:
        return None
    return f"{y}-W{w:02d}"


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the engine's queries call; every pooled connection needs them."""
    conn.create_function("munero_iso_week", 1, iso_week_label, deterministic=True)


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


class SqlEngine:
    """Answers dashboard questions with SQL on the read-only client file."""

    def __init__(self, ds: FactSource):
        self.ds = ds
        self.p = ds.profile

    # -- SQL pieces ---------------------------------------------------------------------------
    def _from(self, dims: list[Dimension], table: str | None = None) -> tuple[str, dict[str, str]]:
        """FROM the fact table with the joins the dimensions need, and always those to the date
        (when it lives on a header table). Returns the SQL and each dimension's expression.

        From another `table` (a lookup from a hop's table on): only the dimensions' joins."""
        aliases: dict[tuple, str] = {}
        joins: list[str] = []
        exprs: dict[str, str] = {}

        def walk(path) -> str:
            alias = "f"
            key: tuple = ()
            for hop in path:
                key = key + ((hop.from_column, hop.to_table, hop.to_column),)
                if key not in aliases:
                    a = f"j{len(aliases) + 1}"
                    aliases[key] = a
                    joins.append(
                        f"LEFT JOIN {quote_ident(hop.to_table)} AS {a} ON {alias}.{quote_ident(hop.from_column)} = {a}.{quote_ident(hop.to_column)}"
                    )
                alias = aliases[key]
            return alias

        if table is None:
            walk(self.p.date_path)  # first, so the date's table is always j<number of hops>
        for d in dims:
            exprs[d.name] = f"{walk(d.path)}.{quote_ident(d.column)}"
        sql = f"FROM {quote_ident(table or self.p.fact_table)} AS f " + " ".join(joins)
        return sql, exprs

    def _date_col(self) -> str:
        """The date column's SQL (in a query built with _from, which joins the date's table first)."""
        alias = f"j{len(self.p.date_path)}" if self.p.date_path else "f"
        return f"{alias}.{quote_ident(self.p.date_column)}"

    def _date(self) -> str:
        return date_expr(self._date_col(), self.p.date_kind)

    def _date_where(self, period: Period) -> tuple[str, list]:
        col = self._date_col()
        nxt = period.end + timedelta(days=1)
        if self.p.date_kind == "unix":
            return f"{col} >= ? AND {col} < ?", [_epoch(period.start), _epoch(nxt)]
        if self.p.date_kind == "unix_ms":
            return f"{col} >= ? AND {col} < ?", [_epoch(period.start) * 1000, _epoch(nxt) * 1000]
        return f"{col} >= ? AND {col} < ?", [period.start.isoformat(), nxt.isoformat()]

    def value_sql(self, column_key: str) -> str:
        """The per-row value behind a measure's column: the column, or the product of its factors."""
        m = next((m for m in self.p.measures if m.column == column_key and m.factors), None)
        if m is not None:
            return " * ".join(f"f.{quote_ident(c)}" for c in m.factors)
        return f"f.{quote_ident(column_key)}"

    def _measure_sql(self, m: Measure) -> str:
        if m.agg == "count":
            return "COUNT(*)"
        if m.agg == "sql":
            return qualify_measure_sql(m.sql_text)
        return f"{m.agg.upper()}({self.value_sql(m.column)})"

    def _where(self, period: Period, filters: dict[str, list[str]], exprs: dict[str, str]) -> tuple[str, list]:
        clause, params = self._date_where(period)
        parts = [clause]
        for name, values in filters.items():
            parts.append(f"{exprs[name]} IN ({','.join('?' * len(values))})")
            params.extend(values)
        return " AND ".join(parts), params

    def _dims(self, names) -> list[Dimension]:
        return [self.p.dimension(n) for n in dict.fromkeys(names)]

    def fact_columns_between(self, keys: list[str], measures: list[str], period: Period) -> tuple[str, list]:
        """The day (as a Julian day number), the given raw key columns and the measures' per-row
        values (value_sql) of each fact row in the period, joining only what the date needs.

        With the same date test as every question here. The column store resolves dimensions
        itself (lookup_sql): eight joins per row made SQLite read 30-80k rows/s, a plain range
        scan reads several times more."""
        frm, _ = self._from([])  # the joins to the date's table, when it lives on a header
        where, params = self._date_where(period)
        select = ([f"julianday({self._date()})"] + [f"f.{quote_ident(c)}" for c in keys]
                  + [self.value_sql(c) for c in measures])
        return f"SELECT {', '.join(select)} {frm} WHERE {where}", params

    def lookup_sql(self, dims: list[Dimension]) -> str:
        """For dimensions reached through the same first hop: each key of the hop's table and the
        dimensions' values for it, by the same LEFT JOINs the questions use from the fact table."""
        hop = dims[0].path[0]
        rest = [replace(d, path=d.path[1:]) for d in dims]
        frm, exprs = self._from(rest, table=hop.to_table)
        select = [f"f.{quote_ident(hop.to_column)}"] + [exprs[d.name] for d in rest]
        return f"SELECT {', '.join(select)} {frm}"

    # -- questions ----------------------------------------------------------------------------
    def date_range(self) -> tuple[date | None, date | None]:
        frm, _ = self._from([])
        col = self._date_col()
        with self.ds.connection() as conn:
            lo, hi = conn.execute(f"SELECT MIN({col}), MAX({col}) {frm}").fetchone()
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
            col = self.value_sql(m.column)
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
                f"GROUP BY k ORDER BY ROUND(v, 6) DESC NULLS LAST, k LIMIT ?",  # ties as shown (6 decimals) go by label
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
