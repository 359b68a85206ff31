"""In-memory column cache of the fact table for fast dashboard queries.

Built once per dataset (in a background thread) with one read of the fact table and its joins:
the day of each row (sorted), each dimension as integer codes, each measure column as float64.
Every dashboard question is then a slice by date plus numpy masks and bincounts, fast enough for
p95 < 100 ms on a million rows. The arrays are saved under APP_STATE_DIR (never next to the client
data), keyed by the file's path, size, mtime, a hash of its first and last 64 KiB and the profile,
so a restart loads them instead of reading the fact table again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from .profile import Dimension, Measure
from .sql_engine import MAX_FILTER_VALUES, SqlEngine

log = logging.getLogger("munero.columnar")
FORMAT_VERSION = 1


def _cache_key(ds) -> str:
    h = hashlib.sha256()
    h.update(str(Path(ds.path).resolve()).encode())
    h.update(repr(ds.fp).encode())
    size = ds.fp[0]
    with open(ds.path, "rb") as f:
        h.update(f.read(65536))
        if size > 65536:
            f.seek(max(0, size - 65536))
            h.update(f.read(65536))
    h.update(json.dumps(asdict(ds.profile), sort_keys=True, default=str).encode())
    h.update(str(FORMAT_VERSION).encode())
    return h.hexdigest()[:32]


class ColumnarStore:
    def __init__(self, profile, day: np.ndarray, codes: dict[str, np.ndarray], values: dict[str, list[str]],
                 measures: dict[str, np.ndarray], int_measures: set[str]):
        self.p = profile
        self.day = day  # int32 proleptic ordinal, sorted ascending
        self.codes = codes  # dim name -> int32 codes (-1 = NULL)
        self.values = values  # dim name -> labels by code
        self.meas = measures  # column -> float64 (NaN = NULL)
        self.int_measures = int_measures
        self.value_index = {d: {v: i for i, v in enumerate(vals)} for d, vals in values.items()}
        self.min_day = int(day[0]) if len(day) else 0
        self.max_day = int(day[-1]) if len(day) else 0
        self._filter_values = {d: self._top_values(d) for d in codes}
        self.has_null = {c: bool(np.isnan(a).any()) for c, a in measures.items()}

    # -- building blocks ------------------------------------------------------------------------
    def _slice(self, period) -> tuple[int, int]:
        lo = int(np.searchsorted(self.day, period.start.toordinal(), side="left"))
        hi = int(np.searchsorted(self.day, period.end.toordinal(), side="right"))
        return lo, hi

    def _mask(self, lo: int, hi: int, filters: dict[str, list[str]]) -> np.ndarray | None:
        mask = None
        for name, vals in filters.items():
            idx = self.value_index[name]
            wanted = [idx[v] for v in vals if v in idx]
            col = self.codes[name][lo:hi]
            if not wanted:
                m = np.zeros(hi - lo, dtype=bool)
            elif len(wanted) == 1:
                m = col == wanted[0]
            else:
                m = np.isin(col, np.array(wanted, dtype=col.dtype))
            mask = m if mask is None else (mask & m)
        return mask

    def _agg(self, m: Measure, lo, hi, mask, buckets=None, nb=None):
        """Aggregate one measure over the selection; per bucket when buckets is given."""
        if m.agg == "count":
            if buckets is None:
                return int(hi - lo if mask is None else int(mask.sum()))
            return np.bincount(buckets, minlength=nb).astype(np.int64)
        v = self.meas[m.column][lo:hi]
        if mask is not None:
            v = v[mask]
        ok = ~np.isnan(v)
        if buckets is None:
            n = int(ok.sum())
            if n == 0:
                return None
            s = float(v[ok].sum())
            return s / n if m.agg == "avg" else s
        vv = np.where(ok, v, 0.0)
        sums = np.bincount(buckets, weights=vv, minlength=nb)
        cnt = np.bincount(buckets, weights=ok.astype(np.float64), minlength=nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = sums / cnt if m.agg == "avg" else sums
        out = np.where(cnt > 0, out, np.nan)
        return out

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

    def _top_values(self, name: str) -> list[str]:
        codes = self.codes[name]
        valid = codes[codes >= 0]
        if not len(valid):
            return []
        cnt = np.bincount(valid, minlength=len(self.values[name]))
        labels = self.values[name]
        order = sorted(range(len(cnt)), key=lambda i: (-int(cnt[i]), labels[i]))
        return [labels[i] for i in order if cnt[i] > 0][:MAX_FILTER_VALUES]

    # -- questions (same interface as sql_engine.SqlEngine) ----------------------------------
    def date_range(self):
        if not len(self.day):
            return None, None
        return date.fromordinal(self.min_day), date.fromordinal(self.max_day)

    def dimension_values(self, name: str) -> list[str]:
        return list(self._filter_values[name])

    def totals(self, period, filters) -> dict:
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
            if cnt == 0:
                out[m.name] = None
            else:
                out[m.name] = self._out(m, total / cnt if m.agg == "avg" else total)
        return out

    def timeseries(self, granularity: str, m: Measure, period, filters) -> list[tuple[str, float | None]]:
        lo, hi = self._slice(period)
        if hi <= lo:
            return []
        mask = self._mask(lo, hi, filters)
        days = self.day[lo:hi]  # sorted: every bucket is one contiguous run of rows
        first, last = int(days[0]), int(days[-1])
        labels: list[str] = []
        starts_ord: list[int] = []
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
                starts_ord.append(o)
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
        out = []
        for i in range(nb):
            if rows[i] <= 0:
                continue
            if cnt[i] == 0:
                out.append((labels[i], None))
            else:
                out.append((labels[i], self._out(m, sums[i] / cnt[i] if m.agg == "avg" else sums[i])))
        return out

    def top(self, dim: Dimension, m: Measure, n: int, period, filters) -> list[tuple[str, float | None]]:
        lo, hi = self._slice(period)
        if hi <= lo:
            return []
        mask = self._mask(lo, hi, filters)
        codes = self.codes[dim.name][lo:hi]
        if mask is not None:
            codes = codes[mask]
        if not len(codes):
            return []
        nv = len(self.values[dim.name])
        buckets = np.where(codes < 0, nv, codes)  # NULL gets its own bucket
        vals = self._agg(m, lo, hi, mask, buckets, nv + 1)
        present = np.bincount(buckets, minlength=nv + 1) > 0
        labels = self.values[dim.name] + ["(none)"]
        items = [(labels[i], self._out(m, vals[i])) for i in range(nv + 1) if present[i]]
        items.sort(key=lambda kv: (kv[1] is None, -(kv[1] or 0), kv[0]))
        return items[:n]


def _load(path: Path, profile) -> ColumnarStore | None:
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    with np.load(path, allow_pickle=False) as z:
        day = z["day"]
        codes = {d: z[f"dim_{i}"] for i, d in enumerate(meta["dims"])}
        meas = {c: z[f"m_{i}"] for i, c in enumerate(meta["measure_columns"])}
    return ColumnarStore(profile, day, codes, meta["values"], meas, set(meta["int_measures"]))


def _save(path: Path, store: ColumnarStore) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = list(store.codes)
    cols = list(store.meas)
    arrays = {"day": store.day}
    arrays.update({f"dim_{i}": store.codes[d] for i, d in enumerate(dims)})
    arrays.update({f"m_{i}": store.meas[c] for i, c in enumerate(cols)})
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    meta = {"dims": dims, "measure_columns": cols, "values": store.values, "int_measures": sorted(store.int_measures)}
    mtmp = path.with_suffix(".json.tmp")
    mtmp.write_text(json.dumps(meta))
    os.replace(tmp, path)
    os.replace(mtmp, path.with_suffix(".json"))
    for old in path.parent.glob("dashboard-*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)


def build_columnar(ds, settings) -> ColumnarStore | None:
    p = ds.profile
    if not p.usable or p.fact_rows > settings.dashboard_cache_max_rows:
        return None
    t0 = time.monotonic()
    cache_path = None
    try:
        cache_path = Path(settings.app_state_dir) / "cache" / f"dashboard-{_cache_key(ds)}.npz"
        store = _load(cache_path, p)
        if store is not None:
            log.info("dashboard cache loaded in %.0f ms", (time.monotonic() - t0) * 1000)
            return store
    except (OSError, ValueError, KeyError) as exc:
        log.info("dashboard cache not loaded (%s), rebuilding", type(exc).__name__)

    cols = sorted({m.column for m in p.measures if m.agg in ("sum", "avg")})
    sql = SqlEngine(ds).fact_rows_sql(cols)
    day_cache: dict[str, int] = {}
    raw_maps: list[dict] = [dict() for _ in p.dimensions]
    n_est = max(p.fact_rows, 1)
    day = np.empty(n_est, dtype=np.int32)
    codes = [np.empty(n_est, dtype=np.int32) for _ in p.dimensions]
    meas = [np.empty(n_est, dtype=np.float64) for _ in cols]
    int_cols = set(cols)
    n = 0
    nd = len(p.dimensions)
    with ds.connection() as conn:
        cur = conn.execute(sql)
        while True:
            batch = cur.fetchmany(50000)
            if not batch:
                break
            k = len(batch)
            if n + k > len(day):  # the table grew since it was counted
                grow = n + k - len(day) + 50000
                day = np.concatenate([day, np.empty(grow, dtype=np.int32)])
                codes = [np.concatenate([c, np.empty(grow, dtype=np.int32)]) for c in codes]
                meas = [np.concatenate([m, np.empty(grow, dtype=np.float64)]) for m in meas]
            cols_t = list(zip(*batch))
            dd = []
            for s in cols_t[0]:
                o = day_cache.get(s)
                if o is None:
                    try:
                        o = date.fromisoformat(s[:10]).toordinal() if s else -1
                    except (TypeError, ValueError):
                        o = -1
                    day_cache[s] = o
                dd.append(o)
            day[n:n + k] = dd
            for j in range(nd):
                # Raw values (None included) get codes in order of appearance; labels are made
                # text and NULL becomes -1 when the store is assembled.
                mp = raw_maps[j]
                setd = mp.setdefault
                codes[j][n:n + k] = [setd(v, len(mp)) for v in cols_t[1 + j]]
            for j, c in enumerate(cols):
                raw = cols_t[1 + nd + j]
                if c in int_cols and not all(type(v) is int or v is None for v in raw):
                    int_cols.discard(c)
                try:
                    meas[j][n:n + k] = np.array(raw, dtype=np.float64)  # None -> NaN
                except (TypeError, ValueError):
                    meas[j][n:n + k] = np.array([np.nan if v is None or isinstance(v, (str, bytes)) else v for v in raw], dtype=np.float64)
            n += k
    # Raw values -> text labels (1 and '1' are one label, as in the SQL path's output); NULL -> -1.
    dim_maps: list[dict] = []
    for j in range(nd):
        labels: dict[str, int] = {}
        remap = np.empty(max(len(raw_maps[j]), 1), dtype=np.int32)
        for v, code in raw_maps[j].items():
            if v is None:
                remap[code] = -1
            else:
                remap[code] = labels.setdefault(v if isinstance(v, str) else str(v), len(labels))
        codes[j][:n] = remap[codes[j][:n]] if n else codes[j][:n]
        dim_maps.append(labels)
    day = day[:n]
    keep = day >= 0  # rows without a parseable date never match a date range
    order = np.argsort(day, kind="stable")
    order = order[keep[order]]
    def compact(a: np.ndarray, nvalues: int) -> np.ndarray:
        return a.astype(np.int16) if nvalues < 32000 else a

    store = ColumnarStore(
        p,
        day[order],
        {d.name: compact(codes[j][:n][order], len(dim_maps[j])) for j, d in enumerate(p.dimensions)},
        {d.name: list(dim_maps[j]) for j, d in enumerate(p.dimensions)},
        {c: meas[j][:n][order] for j, c in enumerate(cols)},
        int_cols,
    )
    log.info("dashboard cache built: %d rows in %.0f ms", n, (time.monotonic() - t0) * 1000)
    if cache_path is not None:
        try:
            _save(cache_path, store)
        except OSError as exc:
            log.info("dashboard cache not saved (%s)", type(exc).__name__)
    return store
