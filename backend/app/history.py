"""Chat history under APP_STATE_DIR (kept apart from the client's data; a wipe removes both)."""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("munero.history")


class ChatHistory:
    def __init__(self, state_dir: str):
        self.path = Path(state_dir) / "chat_history.sqlite"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._disabled = False

    def _db(self) -> sqlite3.Connection | None:
        """The open connection (callers hold the lock); None when the state dir is not writable."""
        if self._disabled:
            return None
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=2, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # no fsync per answer; WAL keeps it consistent
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS chat_history (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
                    "question TEXT NOT NULL, sql TEXT, title TEXT, error TEXT)"
                )
                conn.commit()
                self._conn = conn
            except (OSError, sqlite3.Error) as exc:
                log.warning("chat history disabled: state dir not writable (%s)", type(exc).__name__)
                self._disabled = True
                return None
        return self._conn

    def record(self, question: str, result) -> None:
        with self._lock:
            conn = self._db()
            if conn is None:
                return
            try:
                with conn:
                    conn.execute(
                        "INSERT INTO chat_history (created_at, question, sql, title, error) VALUES (?,?,?,?,?)",
                        (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), question, result.sql, result.title, result.error),
                    )
            except sqlite3.Error as exc:
                log.warning("chat history not recorded (%s)", type(exc).__name__)

    def recent(self, limit: int = 50) -> list[dict]:
        with self._lock:
            conn = self._db()
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT created_at, question, sql, title, error FROM chat_history ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(zip(("created_at", "question", "sql", "title", "error"), r)) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
