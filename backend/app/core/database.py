"""Read-only access to the client's SQLite file.

The client file is never written: every connection is opened with a `file:...?mode=ro` URI and
nothing here creates tables, indexes or journals in it.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


class NoDataError(Exception):
    """No usable database file at the configured path."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fingerprint(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns)


def open_readonly(path: str) -> sqlite3.Connection:
    """Open the SQLite file read-only. Raises NoDataError when it is missing or not a database."""
    p = Path(path)
    if not p.is_file():
        raise NoDataError(f"no data loaded yet: no database file at {path}")
    uri = "file:" + quote(str(p.resolve())) + "?mode=ro"
    if _is_wal_without_log(p):
        # A WAL-mode file needs -shm/-wal files beside it even to read, which a read-only volume
        # cannot hold. With no -wal file all content is in the main file: read it as immutable.
        uri += "&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NoDataError(f"no data loaded yet: {path} is not a readable SQLite database ({type(exc).__name__})") from None
    return conn


def _is_wal_without_log(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    wal = len(header) == 20 and header[:16] == b"SQLite format 3\x00" and header[18] == 2 and header[19] == 2
    return wal and not Path(str(p) + "-wal").exists()


def list_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def list_base_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


@dataclass
class ColumnInfo:
    name: str
    decl_type: str
    pk: bool
    notnull: bool


def table_columns(conn: sqlite3.Connection, table: str) -> list[ColumnInfo]:
    cols = []
    for _cid, name, ctype, notnull, _default, pk in conn.execute(f"PRAGMA table_info({quote_ident(table)})"):
        cols.append(ColumnInfo(name=name, decl_type=(ctype or "").upper(), pk=bool(pk), notnull=bool(notnull)))
    return cols


def foreign_keys(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, str]]:
    """(from_column, to_table, to_column) per declared foreign key."""
    out = []
    for row in conn.execute(f"PRAGMA foreign_key_list({quote_ident(table)})"):
        # id, seq, table, from, to, on_update, on_delete, match
        to_col = row[4]
        out.append((row[3], row[2], to_col))
    return out


class ConnectionPool:
    """A small pool of read-only connections for one database file (thread safe)."""

    def __init__(self, path: str, size: int = 4):
        self.path = path
        self._free: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._size = size

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._free:
                return self._free.pop()
        return open_readonly(self.path)

    def release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if len(self._free) < self._size:
                self._free.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for c in self._free:
                c.close()
            self._free.clear()
