"""Building the column store from the client file, in the background, newest days first.

Reading 20M rows through Python's sqlite3 takes minutes, so the table is read in date windows
from the newest day back (the date index makes each window a range scan). After each window the
days read so far are published as a partial store: the dashboard's default period (the last 90
days and the 90 before them for the KPIs' comparison) is answered from memory after the first
window, and the rest of the table follows with its progress reported.

Memory stays bounded: the arrays are allocated once for the counted rows; each window is written
at the free start of them, then sorted by day into place just below the windows already read.
"""
from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from . import columnar_files
from .columnar import ColumnarStore
from .columnar_read import lower_priority, read_slice
from .rollups import build_rollups
from .sql_engine import Period, SqlEngine

log = logging.getLogger("munero.columnar")
BATCH = 50_000


@dataclass
class BuildState:
    """What the background build is doing, for /api/dashboard/test."""

    phase: str = "waiting"  # waiting, reading, summarising, saving, ready, loaded, off, failed
    rows_read: int = 0
    rows_total: int = 0
    covered_from: str | None = None
    # The first day of the newest windows (default period and the one the KPIs compare it with),
    # read first: questions about them wait for the store rather than scan the file.
    newest_from: str | None = None
    note: str = ""
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None

    @property
    def running(self) -> bool:
        return self.phase in ("waiting", "reading", "summarising", "saving")

    def public(self) -> dict:
        pct = round(100.0 * self.rows_read / self.rows_total, 1) if self.rows_total else None
        return {"phase": self.phase, "rows_read": self.rows_read, "rows_total": self.rows_total,
                "percent": pct, "covered_from": self.covered_from, "newest_from": self.newest_from,
                "seconds": self.seconds, "note": self.note}


class _Labels(dict):
    """Raw value -> code of its text label (1 and '1' are one label, as in the SQL path's output)."""

    def __init__(self):
        super().__init__()
        self[None] = -1
        self.labels: dict[str, int] = {}

    def __missing__(self, v):
        code = self.labels.setdefault(v if isinstance(v, str) else str(v), len(self.labels))
        self[v] = code
        return code


class _Arrays:
    """The store's arrays being filled: rows [0, w) are the window being read, [pos, n) are done."""

    def __init__(self, n: int, ndims: int, ncols: int):
        self.n = n
        self.day = np.empty(n, dtype=np.int32)
        self.codes = [np.empty(n, dtype=np.int16) for _ in range(ndims)]
        self.meas = [np.empty(n, dtype=np.float64) for _ in range(ncols)]
        self.pos = n

    def _all(self):
        return [self.day, *self.codes, *self.meas]

    def make_room(self, w: int, k: int) -> None:
        """More rows than counted (the table grew): grow the free middle."""
        if w + k <= self.pos:
            return
        grow = max(w + k - self.pos, self.n // 4, BATCH)
        done = self.n - self.pos

        def grown(a):
            b = np.empty(self.n + grow, dtype=a.dtype)
            b[:w] = a[:w]
            b[self.n + grow - done:] = a[self.pos:]
            return b

        self.day = grown(self.day)
        self.codes = [grown(c) for c in self.codes]
        self.meas = [grown(m) for m in self.meas]
        self.pos += grow
        self.n += grow

    def widen(self, j: int) -> None:
        """A dimension with more labels than int16 holds."""
        if self.codes[j].dtype != np.int32:
            self.codes[j] = self.codes[j].astype(np.int32)

    def place(self, w: int, lo_ord: int, hi_ord: int) -> int:
        """Sort the window's rows by day and move them below the rows already placed."""
        d = self.day[:w]
        sel = np.flatnonzero((d >= lo_ord) & (d <= hi_ord))  # a date SQLite compares in range but cannot parse
        sel = sel[np.argsort(d[sel], kind="stable")]
        k = len(sel)
        for a in self._all():
            a[self.pos - k:self.pos] = a[:w][sel]  # fancy indexing copies first, so overlap is safe
        self.pos -= k
        return k


class _Lookup:
    """One fact column read per row -> the codes of the dimensions it gives.

    A dimension on the fact table is the column itself; the dimensions reached through one first
    hop share its key column and a table from each key to their values (SqlEngine.lookup_sql)."""

    def __init__(self, column: str, dims: list[int], maps: list[_Labels], rows: list[tuple] | None = None):
        self.column = column
        self.dims = dims
        self.direct = maps[dims[0]] if rows is None else None
        if rows is not None:
            self.index: dict = {}
            tables: list[list[int]] = [[] for _ in dims]
            for r in rows:
                if r[0] is None or r[0] in self.index:  # NULL never joins; a duplicate key keeps its first row
                    continue
                self.index[r[0]] = len(self.index)
                for t, j, v in zip(tables, dims, r[1:]):
                    t.append(maps[j][v])
            self.miss = len(self.index)
            self.tables = [np.array(t + [-1], dtype=np.int32) for t in tables]  # no match: NULL, as LEFT JOIN
            self.dense = None
            if self.index and all(type(k) is int for k in self.index) and 0 <= min(self.index) and max(self.index) < 50_000_000:
                self.dense = np.full(max(self.index) + 1, self.miss, dtype=np.intp)
                self.dense[list(self.index)] = list(self.index.values())

    def codes(self, raw) -> list[np.ndarray]:
        if self.direct is not None:
            mp = self.direct
            return [np.array([mp[v] for v in raw], dtype=np.int32)]
        if self.dense is not None:
            # Integer keys (the usual foreign key): one array lookup instead of a dict lookup a row.
            arr = np.array(raw)
            if arr.dtype.kind == "i" and len(arr) and 0 <= arr.min() and arr.max() < len(self.dense):
                idx = self.dense[arr]
                return [t[idx] for t in self.tables]
        get, miss = self.index.get, self.miss
        idx = np.array([get(v, miss) for v in raw], dtype=np.intp)
        return [t[idx] for t in self.tables]


def _lookups(p, eng: SqlEngine, conn, maps: list[_Labels]) -> list[_Lookup]:
    groups: dict[tuple, list[int]] = {}
    out = []
    for j, d in enumerate(p.dimensions):
        if not d.path:
            out.append(_Lookup(d.column, [j], maps))
        else:
            h = d.path[0]
            groups.setdefault((h.from_column, h.to_table, h.to_column), []).append(j)
    for (col, _t, _c), js in groups.items():
        rows = conn.execute(eng.lookup_sql([p.dimensions[j] for j in js])).fetchall()
        out.append(_Lookup(col, js, maps, rows))
    return out


def _take(res: dict, arrays: _Arrays, w: int, lookups: list[_Lookup], maps: list[_Labels],
          int_cols: set[str], cols: list[str]) -> int:
    """One slice's arrays (app.columnar_read) written at arrays[w:]; how many rows."""
    k = len(res["day"])
    if not k:
        return 0
    arrays.make_room(w, k)
    arrays.day[w:w + k] = res["day"]
    for lk, (distinct, ids) in zip(lookups, res["keys"]):
        for j, codes in zip(lk.dims, lk.codes(distinct)):
            if len(maps[j].labels) > 32000:
                arrays.widen(j)
            arrays.codes[j][w:w + k] = np.asarray(codes)[ids]
    for j, c in enumerate(cols):
        arrays.meas[j][w:w + k] = res["meas"][j]
        if not res["ints"][j]:
            int_cols.discard(c)
    return k


class _Readers:
    """Date slices read by worker processes (app.columnar_read), in order, a few ahead.

    Workers: DASHBOARD_CACHE_WORKERS, default one per core; 0 reads in the build's own thread."""

    def __init__(self, settings):
        self.nice = settings.dashboard_cache_nice
        self.pause = settings.dashboard_cache_pause_ms / 1000
        n = settings.dashboard_cache_workers
        self.workers = (os.cpu_count() or 1) if n is None else n
        self.pool = None
        if self.workers > 0:
            pool = None
            try:
                pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=lower_priority, initargs=(self.nice,))
                pool.submit(os.getpid).result(timeout=120)
                self.pool = pool
            except Exception as exc:  # no processes here (limits, no /dev/shm): read in this thread
                log.info("dashboard cache: no reader processes (%s), reading in the build thread", type(exc).__name__)
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                self.workers = 0

    def slices(self, start, end) -> list[Period]:
        """A window cut into slices small enough to keep the workers busy and the results small."""
        span = (end - start).days + 1
        step = max(1, -(-span // (4 * max(self.workers, 1))))
        out, d = [], start
        while d <= end:
            out.append(Period(d, min(end, d + timedelta(days=step - 1))))
            d += timedelta(days=step)
        return out

    def read(self, jobs: list[tuple]):
        """read_slice(*job) for each job, yielded in order."""
        for res in self._read(jobs):
            yield res
            if self.pause:
                time.sleep(self.pause)

    def _read(self, jobs: list[tuple]):
        if self.pool is None:
            for job in jobs:
                yield read_slice(*job)
            return
        pending: deque = deque()
        it = iter(jobs)
        for job in itertools.islice(it, self.workers + 1):
            pending.append(self.pool.submit(read_slice, *job))
        while pending:
            res = pending.popleft().result()
            job = next(it, None)
            if job is not None:
                pending.append(self.pool.submit(read_slice, *job))
            yield res

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _store(p, arrays: _Arrays, maps: list[_Labels], cols: list[str], int_cols: set[str], **kw) -> ColumnarStore:
    sl = slice(arrays.pos, arrays.n)
    return ColumnarStore(
        p, arrays.day[sl], {d.name: arrays.codes[j][sl] for j, d in enumerate(p.dimensions)},
        {d.name: list(maps[j].labels) for j, d in enumerate(p.dimensions)},
        {c: arrays.meas[j][sl] for j, c in enumerate(cols)}, set(int_cols), **kw)


def build_columnar(ds, settings, state: BuildState, publish) -> ColumnarStore | None:
    """The complete store (loaded from the state dir or built).

    `publish(store, final)` receives each partial store, then the complete one before the phase says so.
    """
    p = ds.profile
    t0 = time.monotonic()
    if p.fact_rows > settings.dashboard_cache_max_rows:
        state.phase, state.note = "off", f"{p.fact_rows} rows is above DASHBOARD_CACHE_MAX_ROWS ({settings.dashboard_cache_max_rows})"
        return None
    path = None
    try:
        path = columnar_files.cache_dir(settings.app_state_dir, columnar_files.cache_key(ds))
        store = columnar_files.load(path, p)
        if store is not None:
            state.rows_read = len(store.day)
            state.rows_total = state.rows_read
            state.seconds = round(time.monotonic() - t0, 3)
            log.info("dashboard cache loaded in %.0f ms", (time.monotonic() - t0) * 1000)
            publish(store, final=True)
            state.phase = "loaded"
            return store
    except (OSError, ValueError, KeyError) as exc:
        log.info("dashboard cache not loaded (%s), rebuilding", type(exc).__name__)

    eng = SqlEngine(ds)
    lo, hi = eng.date_range()
    cols = sorted({m.column for m in p.measures if m.agg in ("sum", "avg")})
    maps = [_Labels() for _ in p.dimensions]
    arrays = _Arrays(max(p.fact_rows, 1), len(p.dimensions), len(cols))
    int_cols = set(cols)
    state.rows_total = p.fact_rows
    if hi is not None:
        state.newest_from = (hi - timedelta(days=settings.dashboard_cache_first_days
                                            + settings.dashboard_cache_chunk_days - 1)).isoformat()
    state.phase = "reading"
    end, span = hi, settings.dashboard_cache_first_days
    with ds.connection() as conn:
        lookups = _lookups(p, eng, conn, maps)
    keys = [lk.column for lk in lookups]
    readers = _Readers(settings)
    try:
        while lo is not None and end >= lo:
            start = max(lo, end - timedelta(days=span - 1))
            jobs = [(ds.path, *eng.fact_columns_between(keys, cols, part), len(keys), len(cols))
                    for part in readers.slices(start, end)]
            w = 0
            for res in readers.read(jobs):
                k = _take(res, arrays, w, lookups, maps, int_cols, cols)
                w += k
                state.rows_read += k
            arrays.place(w, start.toordinal(), end.toordinal())
            state.covered_from = start.isoformat()
            if start > lo:
                publish(_store(p, arrays, maps, cols, int_cols, covered_from=start.toordinal()))
            end, span = start - timedelta(days=1), settings.dashboard_cache_chunk_days
    finally:
        readers.close()
    state.phase = "summarising"
    partial = _store(p, arrays, maps, cols, int_cols)
    rollups = build_rollups(partial.day, partial.codes, {d: len(v) for d, v in partial.values.items()},
                            partial.meas, partial.has_null)
    store = _store(p, arrays, maps, cols, int_cols, has_null=partial.has_null, rollups=rollups)
    log.info("dashboard cache built: %d rows in %.0f ms", len(store.day), (time.monotonic() - t0) * 1000)
    if path is not None:
        state.phase = "saving"
        try:
            columnar_files.save(path, store)
        except OSError as exc:
            log.info("dashboard cache not saved (%s)", type(exc).__name__)
    state.rows_read = len(store.day)
    state.seconds = round(time.monotonic() - t0, 3)
    publish(store, final=True)
    state.phase = "ready"
    return store


def start_build(ds, settings) -> BuildState:
    state = BuildState()

    def publish(store, final=False):
        if final:
            ds.columnar = store
        else:
            ds.columnar_partial = store

    def run():
        lower_priority(settings.dashboard_cache_nice)  # this thread: the rollups and sorting
        try:
            build_columnar(ds, settings, state, publish)
        except Exception as exc:  # the SQL path keeps answering
            state.phase, state.note = "failed", type(exc).__name__
            log.warning("dashboard cache not built: %s", type(exc).__name__)
        finally:
            ds.columnar_partial = None

    threading.Thread(target=run, name="dashboard-cache", daemon=True).start()
    return state
