"""The loaded dataset: the client's file, its profile and the query engines over it.

Reloaded when the file at DB_PATH changes (size or mtime), so replacing the file on a running
stack is picked up without a restart.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from .columnar import ColumnarStore
from .columnar_build import BuildState, start_build
from .core.config import Settings
from .core.database import ConnectionPool, NoDataError, fingerprint, list_tables, open_readonly, quote_ident
from .profile import Profile, ProfileError, build_profile
from .sql_engine import register_functions

log = logging.getLogger("munero.dataset")


@dataclass
class Dataset:
    path: str
    fp: tuple[int, int]
    tables: list[str]
    profile: Profile
    profile_error: str | None = None
    pool: ConnectionPool = field(default=None)  # type: ignore[assignment]
    columnar: ColumnarStore | None = None  # the complete store, set by the background build
    columnar_partial: ColumnarStore | None = None  # the newest days, while the build reads the rest
    cache_state: BuildState | None = None  # None: no build was started (cache off or no usable profile)
    _filters_cache: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.pool.acquire()
        try:
            yield conn
        finally:
            self.pool.release(conn)

    def main_table_rows(self) -> tuple[str | None, int | None]:
        table = self.profile.fact_table
        if table is None:
            # The biggest table is the most telling figure we have.
            best = (None, None)
            with self.connection() as conn:
                for t in self.tables:
                    n = conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0]
                    if best[1] is None or n > best[1]:
                        best = (t, n)
            return best
        return table, self.profile.fact_rows


class DatasetManager:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._ds: Dataset | None = None
        self._lock = threading.Lock()

    def get(self) -> Dataset:
        """The current dataset; raises NoDataError when there is no usable file."""
        path = self.settings.db_path
        try:
            fp = fingerprint(path)
        except OSError:
            self._drop()
            raise NoDataError(f"no data loaded yet: no database file at {path}") from None
        ds = self._ds
        if ds is not None and ds.fp == fp and ds.path == path:
            if ds.cache_state is None:
                # Another thread loaded it and has not started the build yet: without this, the
                # status would say "off" for a moment before a build that is coming.
                self._start_cache_build(ds)
            return ds
        with self._lock:
            ds = self._ds
            if ds is None or ds.fp != fp or ds.path != path:
                ds = self._load(path, fp)
                old, self._ds = self._ds, ds
                if old is not None:
                    old.pool.close()
        self._start_cache_build(ds)
        return ds

    def _drop(self) -> None:
        with self._lock:
            if self._ds is not None:
                self._ds.pool.close()
                self._ds = None

    def _load(self, path: str, fp) -> Dataset:
        t0 = time.monotonic()
        conn = open_readonly(path)
        try:
            tables = list_tables(conn)
            err = None
            try:
                profile = build_profile(conn, self.settings.dataset_profile)
            except ProfileError as exc:
                err = str(exc)
                profile = Profile(source="override", notes=[err])
            except sqlite3.DatabaseError as exc:
                raise NoDataError(f"no data loaded yet: {path} could not be read ({type(exc).__name__})") from None
        finally:
            conn.close()
        pool = _FunctionPool(path)
        log.info("dataset loaded: tables=%d profile_source=%s usable=%s in %.0f ms",
                 len(tables), profile.source, profile.usable, (time.monotonic() - t0) * 1000)
        return Dataset(path=path, fp=fp, tables=tables, profile=profile, profile_error=err, pool=pool)

    def _start_cache_build(self, ds: Dataset) -> None:
        if not self.settings.dashboard_cache or not ds.profile.usable:
            return
        with self._lock:
            if ds.cache_state is not None:
                return
            ds.cache_state = start_build(ds, self.settings)

    def wait_for_cache(self, timeout: float = 120.0) -> bool:
        """True once the complete store answers; False when none is coming (off, failed) or on timeout."""
        ds = self.get()
        self._start_cache_build(ds)  # another thread's get() may not have started it yet
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ds.columnar is not None:
                return True
            if ds.cache_state is None or not ds.cache_state.running:
                return ds.columnar is not None
            time.sleep(0.05)
        return False


class _FunctionPool(ConnectionPool):
    def acquire(self) -> sqlite3.Connection:
        conn = super().acquire()
        register_functions(conn)
        return conn


__all__ = ["Dataset", "DatasetManager", "NoDataError", "open_readonly"]
