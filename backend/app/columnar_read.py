"""Reading one slice of the fact table into arrays, in a worker process of the column store build.

Python's sqlite3 makes an object of every value it returns; at 20M rows that is most of the
build's time, and in the backend's own process it holds the interpreter lock that the requests
need too. So the build hands date slices to worker processes (as many as there are cores), at a
lower CPU priority than the backend, and each returns compact arrays: the day of each row, each
key column as ids into the distinct values it met, and each measure's value as float64.

Nothing here knows the profile: the SQL and what its columns are come from the build.
"""
from __future__ import annotations

import os

import numpy as np

JULIAN_ORDINAL = 1721424.5  # julianday(d) - d.toordinal() for any date d
BATCH = 20_000  # rows per fetch: at 20M rows a reader peaks near 190 MiB (100_000: 240-270 MiB)


def lower_priority(nice: int) -> None:
    """At least `nice` for the calling thread (os.getpid() in a worker is its only thread)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        import threading

        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        pass  # not allowed here: the build still runs, at the backend's priority


def read_slice(db_path: str, sql: str, params: list, nkeys: int, ncols: int) -> dict:
    """Rows of `sql` as {"day": int32, "keys": [(distinct values, int32 ids)], "meas": [float64],
    "ints": [bool: every value an integer or NULL]}. Columns: julianday, keys, then measures."""
    from .core.database import open_readonly

    conn = open_readonly(db_path)
    try:
        days, ids, meas = [], [[] for _ in range(nkeys)], [[] for _ in range(ncols)]
        seen = [dict() for _ in range(nkeys)]
        ints = [True] * ncols
        cur = conn.execute(sql, params)
        while True:
            batch = cur.fetchmany(BATCH)
            if not batch:
                break
            cols = np.array(batch, dtype=object)
            if cols.ndim != 2:  # a batch of one column's tuples stays 2-D; guard anything else
                cols = cols.reshape(len(batch), -1)
            jd = _floats(cols[:, 0])
            days.append(np.where(np.isnan(jd), -1, jd - JULIAN_ORDINAL).astype(np.int32))
            for i in range(nkeys):
                mp = seen[i]
                ids[i].append(np.fromiter((mp.setdefault(v, len(mp)) for v in cols[:, 1 + i]),
                                          dtype=np.int32, count=len(batch)))
            for j in range(ncols):
                raw = cols[:, 1 + nkeys + j]
                if ints[j] and not all(type(v) is int or v is None for v in raw):
                    ints[j] = False
                meas[j].append(_floats(raw))
    finally:
        conn.close()

    def cat(parts, dtype):
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    return {"day": cat(days, np.int32),
            "keys": [(list(seen[i]), cat(ids[i], np.int32)) for i in range(nkeys)],
            "meas": [cat(meas[j], np.float64) for j in range(ncols)], "ints": ints}


def _floats(raw: np.ndarray) -> np.ndarray:
    try:
        return raw.astype(np.float64)  # None -> NaN
    except (TypeError, ValueError):  # text that is not a number, or a blob: no value
        return np.array([np.nan if v is None or isinstance(v, (str, bytes)) else v for v in raw], dtype=np.float64)
