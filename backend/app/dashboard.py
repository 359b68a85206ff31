"""Dashboard queries over the profiled fact table.

Two engines answer the same questions: `app.sql_engine.SqlEngine` runs SQL on the read-only client
file (always available, and the reference), `app.columnar.ColumnarStore` answers from the column
store once it is built, or from the part already read while the periods asked for lie in it. The
service here picks one per request and shapes the responses.
"""
from __future__ import annotations

import time
from datetime import date, timedelta

from .dataset import Dataset
from .profile import Measure, Profile
from .sql_engine import Period, QueryError, SqlEngine, parse_date

WAIT_FOR_NEWEST = 60.0  # seconds a question about the newest days waits for the store's first part

GRANULARITIES = ("day", "week", "month")


class NotUsable(Exception):
    """The dataset has no usable profile (HTTP 409)."""


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



# ---------------------------------------------------------------------------------------------
# The service used by the router: chooses the engine, computes periods, shapes responses.

class DashboardService:
    def __init__(self, ds: Dataset):
        self.ds = ds
        self.p = require_usable(ds)
        self.sql = SqlEngine(ds)

    def engine(self, periods: list[Period], measures: list[Measure] | None = None):
        if any(m.agg == "sql" for m in (measures or self.p.measures)):
            return self.sql
        return self._store_for(periods) or self.sql

    def _store_for(self, periods: list[Period] | None, wait: bool = True):
        """The store, or the part of it already read when it covers `periods` (None: any part).

        While the build reads the newest days first, a question about them waits for that part
        (at most WAIT_FOR_NEWEST seconds) instead of scanning the file beside the build: on a
        20M-row file one such scan takes longer than reading the part, and slows the build."""
        deadline = time.monotonic() + WAIT_FOR_NEWEST
        while True:
            if self.ds.columnar is not None:
                return self.ds.columnar
            part = self.ds.columnar_partial
            if part is not None and (periods is None or part.covers(*periods)):
                return part
            state = self.ds.cache_state
            if not wait or state is None or not state.running or time.monotonic() > deadline:
                return None
            early = state.newest_from  # None until the build knows the date range: wait for it
            if periods is not None and early is not None and any(p.start.isoformat() < early for p in periods):
                return None
            time.sleep(0.05)

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
        # While the store is read, the values seen in the newest days stand in for the whole
        # table's: a scan per dimension of a 20M-row file would hold the first page for minutes.
        col = self._store_for(None)
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
        eng = self.engine([cur])
        # The period compared with: from the store when it holds those days; while the build is
        # still reading them, SQL sums them (one range scan, no rows to Python) rather than the
        # whole answer waiting for the build to get there.
        before_eng = eng if eng is self.sql else (self._store_for([prev], wait=False) or self.sql)
        now = eng.totals(cur, filters)
        before = before_eng.totals(prev, filters)
        kpis = []
        for m in self.p.measures:
            v, pv = now.get(m.name), before.get(m.name)
            if m.agg == "count":
                v = v or 0
                pv = pv or 0
            change = None
            if v is not None and pv not in (None, 0):
                change = round((v - pv) / abs(pv) * 100.0, 1)
            kpis.append({"name": m.name, "label": m.label, "value": v, "previous": pv, "change_pct": change, "format": m.format,
                         "direction": m.direction})
        return {"period": cur.public(), "previous_period": prev.public(), "kpis": kpis}

    def timeseries(self, granularity, measure, start, end, raw_filters) -> dict:
        if granularity not in GRANULARITIES:
            raise QueryError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
        filters = parse_filters(self.p, raw_filters)
        m = self.measure(measure)
        per = self.period(start, end)
        pts = self.engine([per], [m]).timeseries(granularity, m, per, filters)
        pts = self._zero_filled(pts, granularity, m, per)
        return {"granularity": granularity, "measure": m.name, "points": [{"period": k, "value": v} for k, v in pts]}

    def _zero_filled(self, pts, granularity: str, m: Measure, per: Period):
        """Every period of the range that the data covers, so a chart's axis is real time: a day
        without sales is 0 for counts and sums (an average has no value there: null)."""
        lo, hi = self.date_range()
        if lo is None or hi is None or not pts:
            return pts  # nothing matched: the client says so rather than drawing a flat zero
        start, end = max(per.start, lo), min(per.end, hi)
        if start > end:
            return pts
        have = dict(pts)
        empty = 0 if m.agg in ("count", "sum") else None
        out, seen = [], set()
        d = start
        step = timedelta(days=1)
        while d <= end:
            label = period_label(d, granularity)
            if label not in seen:
                seen.add(label)
                out.append((label, have.get(label, empty)))
            d += step
        extra = [kv for kv in pts if kv[0] not in seen]  # never drop what the engine found
        return sorted(out + extra) if extra else out

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
        items = self.engine([per], [m]).top(d, m, n, per, filters)
        return {"dimension": d.name, "measure": m.name, "items": [{"label": k, "value": v} for k, v in items]}
