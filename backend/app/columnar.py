"""Column store of the fact table: answers the dashboard's questions without SQL.

The day of each row (sorted), each dimension as integer codes, each measure column as float64,
plus per day x dimension rollups (app.rollups) once the whole table is read. A question is a
slice by date, then either a sum over the rollups (no filter, or filters the rollups can answer)
or numpy masks and bincounts over the rows. Arrays may be memory-mapped files (app.columnar_files).

While the table is still being read the store covers only the most recent days (`covered_from`),
which is enough for the dashboard's default period; other periods go to SQL until it is complete.
"""
from __future__ import annotations

from datetime import date

import numpy as np

from .profile import Dimension, Measure
from .rollups import FilteredRollups, Rollups
from .sql_engine import MAX_FILTER_VALUES


class ColumnarStore:
    def __init__(self, profile, day: np.ndarray, codes: dict[str, np.ndarray], values: dict[str, list[str]],
                 measures: dict[str, np.ndarray], int_measures: set[str], has_null: dict[str, bool] | None = None,
                 rollups: Rollups | None = None, covered_from: int | None = None):
        self.p = profile
        self.day = day  # int32 proleptic ordinal, sorted ascending
        self.codes = codes  # dim name -> int16/int32 codes (-1 = NULL)
        self.values = values  # dim name -> labels by code
        self.meas = measures  # column -> float64 (NaN = NULL)
        self.int_measures = int_measures
        self.rollups = rollups
        self.covered_from = covered_from  # None: the whole table; else the first day fully read
        self.value_index = {d: {v: i for i, v in enumerate(vals)} for d, vals in values.items()}
        self.min_day = int(day[0]) if len(day) else 0
        self.max_day = int(day[-1]) if len(day) else 0
        if has_null is None:
            has_null = {c: bool(np.isnan(a).any()) for c, a in measures.items()}
        self.has_null = has_null
        self._filter_values: dict[str, list[str]] = {}
        self._filtered = FilteredRollups(self)

    @property
    def complete(self) -> bool:
        return self.covered_from is None

    def covers(self, *periods) -> bool:
        return self.complete or all(p.start.toordinal() >= self.covered_from for p in periods)

    @property
    def nbytes(self) -> dict[str, int]:
        rows = int(self.day.nbytes) + sum(int(a.nbytes) for a in self.codes.values()) + sum(int(a.nbytes) for a in self.meas.values())
        return {"rows": rows, "rollups": self.rollups.nbytes if self.rollups else 0}

    # -- building blocks ------------------------------------------------------------------------
    def _slice(self, period) -> tuple[int, int]:
        lo = int(np.searchsorted(self.day, period.start.toordinal(), side="left"))
        hi = int(np.searchsorted(self.day, period.end.toordinal(), side="right"))
        return lo, hi

    def _wanted(self, name: str, vals: list[str]) -> list[int]:
        idx = self.value_index[name]
        return sorted({idx[v] for v in vals if v in idx})

    def _mask(self, lo: int, hi: int, filters: dict[str, list[str]]) -> np.ndarray | None:
        mask = None
        for name, vals in filters.items():
            wanted = self._wanted(name, vals)
            col = self.codes[name][lo:hi]
            if not wanted:
                m = np.zeros(hi - lo, dtype=bool)
            elif len(wanted) == 1:
                m = col == wanted[0]
            else:
                m = np.isin(col, np.array(wanted, dtype=col.dtype))
            mask = m if mask is None else (mask & m)
        return mask

    def _rollups_for(self, filters: dict[str, list[str]], group: str | None = None):
        """(rollups, dimension, codes to keep or None) answering this question, or None to scan rows.

        No filter, or filters on the grouped dimension only: the store's rollups. Other filters:
        a rollup of the filtered rows, built by one scan and kept for the next questions with
        the same filters (other periods, granularities, breakdowns)."""
        if self.rollups is None:
            return None
        dims = set(filters) | ({group} if group else set())
        if len(dims) > 1:
            return self._filtered.get(filters, group), group or FilteredRollups.ALL, None
        dim = dims.pop() if dims else self.rollups.smallest_dim()
        return self.rollups, dim, (self._wanted(dim, filters[dim]) if dim in filters else None)

    def _out(self, m: Measure, v):
        if v is None:
            return None
        if isinstance(v, (float, np.floating)):
            if np.isnan(v):
                return None
            if m.agg == "sum" and m.column in self.int_measures:
                return int(round(float(v)))
            return round(float(v), 6)
        return int(v)

    def _value(self, m: Measure, rows, total, count):
        if m.agg == "count":
            return int(rows)
        if count == 0:
            return None
        return self._out(m, total / count if m.agg == "avg" else float(total))

    def _feature_value(self, m: Measure, vec: np.ndarray):
        """A measure from one rollup feature vector (rows, sums..., counts...)."""
        r = self.rollups
        if m.agg == "count":
            return int(vec[0])
        return self._value(m, vec[0], vec[r.feature(m.column, "sum")], vec[r.feature(m.column, "count")])

    def _top_values(self, name: str) -> list[str]:
        if self.rollups is not None:
            cnt = self.rollups.cubes[name][:, :-1, 0].sum(axis=0)
        else:
            codes = self.codes[name]
            valid = codes[codes >= 0]
            cnt = np.bincount(valid, minlength=len(self.values[name])) if len(valid) else np.zeros(0)
        labels = self.values[name]
        order = sorted(range(len(cnt)), key=lambda i: (-int(cnt[i]), labels[i]))
        return [labels[i] for i in order if cnt[i] > 0][:MAX_FILTER_VALUES]

    # -- questions (same interface as sql_engine.SqlEngine) ----------------------------------
    def date_range(self):
        if not len(self.day):
            return None, None
        return date.fromordinal(self.min_day), date.fromordinal(self.max_day)

    def dimension_values(self, name: str) -> list[str]:
        if name not in self._filter_values:
            self._filter_values[name] = self._top_values(name)
        return list(self._filter_values[name])

    def totals(self, period, filters) -> dict:
        found = self._rollups_for(filters)
        if found is not None:
            r, dim, codes = found
            _first, block = r.per_day(period.start.toordinal(), period.end.toordinal(), dim, codes)
            vec = block.sum(axis=0) if len(block) else np.zeros(1 + 2 * len(r.columns))
            return {m.name: self._feature_value(m, vec) for m in self.p.measures}
        return self._totals_from_rows(period, filters)

    def _totals_from_rows(self, period, filters) -> dict:
        lo, hi = self._slice(period)
        mask = self._mask(lo, hi, filters)
        idx = np.flatnonzero(mask) if mask is not None else None
        n_rows = int(hi - lo) if idx is None else int(len(idx))
        per_col: dict[str, tuple[float, int]] = {}  # column -> (sum, non-null count), shared by SUM and AVG
        out = {}
        for m in self.p.measures:
            if m.agg == "count":
                out[m.name] = n_rows
                continue
            if m.column not in per_col:
                v = self.meas[m.column][lo:hi]
                if idx is not None:
                    v = v.take(idx)
                if self.has_null[m.column]:
                    ok = ~np.isnan(v)
                    per_col[m.column] = (float(v[ok].sum()), int(ok.sum()))
                else:
                    per_col[m.column] = (float(v.sum()), int(len(v)))
            total, cnt = per_col[m.column]
            out[m.name] = self._value(m, n_rows, total, cnt)
        return out

    @staticmethod
    def _buckets(first: int, last: int, granularity: str) -> tuple[list[str], list[int]]:
        """Labels of the periods from day `first` to `last` and the first day of each."""
        labels: list[str] = []
        starts: list[int] = []
        for o in range(first, last + 1):
            d = date.fromordinal(o)
            if granularity == "day":
                lab = d.isoformat()
            elif granularity == "month":
                lab = f"{d.year:04d}-{d.month:02d}"
            else:
                y, w, _ = d.isocalendar()
                lab = f"{y}-W{w:02d}"
            if not labels or lab != labels[-1]:
                labels.append(lab)
                starts.append(o)
        return labels, starts

    def timeseries(self, granularity: str, m: Measure, period, filters) -> list[tuple[str, float | None]]:
        found = self._rollups_for(filters)
        if found is None:
            return self._timeseries_from_rows(granularity, m, period, filters)
        r, dim, codes = found
        first, block = r.per_day(period.start.toordinal(), period.end.toordinal(), dim, codes)
        if not len(block):
            return []
        labels, starts = self._buckets(first, first + len(block) - 1, granularity)
        sums = np.add.reduceat(block, np.array(starts) - first, axis=0)
        return [(labels[i], self._feature_value(m, sums[i])) for i in range(len(labels)) if sums[i][0] > 0]

    def _timeseries_from_rows(self, granularity: str, m: Measure, period, filters) -> list[tuple[str, float | None]]:
        lo, hi = self._slice(period)
        if hi <= lo:
            return []
        mask = self._mask(lo, hi, filters)
        days = self.day[lo:hi]  # sorted: every bucket is one contiguous run of rows
        labels, starts_ord = self._buckets(int(days[0]), int(days[-1]), granularity)
        nb = len(labels)
        starts = np.searchsorted(days, np.array(starts_ord, dtype=days.dtype), side="left")
        ends = np.append(starts[1:], len(days))
        nonempty = ends > starts

        def seg_sum(arr: np.ndarray) -> np.ndarray:
            out = np.zeros(nb, dtype=np.float64)
            if nonempty.any():
                out[nonempty] = np.add.reduceat(arr, starts[nonempty])
            return out

        rows = (ends - starts).astype(np.float64) if mask is None else seg_sum(mask.astype(np.float64))
        if m.agg == "count":
            return [(labels[i], int(rows[i])) for i in range(nb) if rows[i] > 0]
        v = self.meas[m.column][lo:hi]
        if self.has_null[m.column] or mask is not None:
            ok = ~np.isnan(v) if self.has_null[m.column] else np.ones(len(v), dtype=bool)
            if mask is not None:
                ok &= mask
            sums = seg_sum(np.where(ok, v, 0.0))
            cnt = seg_sum(ok.astype(np.float64))
        else:
            sums = seg_sum(v)
            cnt = ends - starts
        return [(labels[i], self._value(m, rows[i], sums[i], cnt[i])) for i in range(nb) if rows[i] > 0]

    def top(self, dim: Dimension, m: Measure, n: int, period, filters) -> list[tuple[str, float | None]]:
        labels = self.values[dim.name] + ["(none)"]
        found = self._rollups_for(filters, dim.name)
        if found is not None:
            r, _dim, codes = found
            per = r.per_value(period.start.toordinal(), period.end.toordinal(), dim.name)
            keep = per[:, 0] > 0
            if codes is not None:
                only = np.zeros(len(keep), dtype=bool)
                only[codes] = True
                keep &= only
            items = [(labels[i], self._feature_value(m, per[i])) for i in np.flatnonzero(keep)]
        else:
            items = self._top_from_rows(dim, m, period, filters, labels)
        items.sort(key=lambda kv: (kv[1] is None, -(kv[1] or 0), kv[0]))
        return items[:n]

    def _top_from_rows(self, dim: Dimension, m: Measure, period, filters, labels) -> list[tuple[str, float | None]]:
        lo, hi = self._slice(period)
        if hi <= lo:
            return []
        mask = self._mask(lo, hi, filters)
        idx = np.flatnonzero(mask) if mask is not None else None
        codes = self.codes[dim.name][lo:hi]
        if idx is not None:
            codes = codes.take(idx)
        if not len(codes):
            return []
        nv = len(self.values[dim.name])
        buckets = np.where(codes < 0, nv, codes).astype(np.intp)  # NULL gets its own bucket
        rows = np.bincount(buckets, minlength=nv + 1)
        if m.agg == "count":
            sums = cnt = rows
        else:
            v = self.meas[m.column][lo:hi]
            if idx is not None:
                v = v.take(idx)
            if self.has_null[m.column]:
                ok = ~np.isnan(v)
                sums = np.bincount(buckets, weights=np.where(ok, v, 0.0), minlength=nv + 1)
                cnt = np.bincount(buckets, weights=ok.astype(np.float64), minlength=nv + 1)
            else:
                sums = np.bincount(buckets, weights=v, minlength=nv + 1)
                cnt = rows
        return [(labels[i], self._value(m, rows[i], sums[i], cnt[i])) for i in np.flatnonzero(rows > 0)]
