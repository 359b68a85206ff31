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
        self._ready: bool | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._ready is False:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=2)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS chat_history (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, "
                "question TEXT NOT NULL, sql TEXT, title TEXT, error TEXT)"
            )
            self._ready = True
            return conn
        except (OSError, sqlite3.Error) as exc:
            if self._ready is None:
                log.warning("chat history disabled: state dir not writable (%s)", type(exc).__name__)
            self._ready = False
            return None

    def record(self, question: str, result) -> None:
        with self._lock:
            conn = self._conn()
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
            finally:
                conn.close()

    def recent(self, limit: int = 50) -> list[dict]:
        with self._lock:
            conn = self._conn()
            if conn is None:
                return []
            try:
                rows = conn.execute(
                    "SELECT created_at, question, sql, title, error FROM chat_history ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            finally:
                conn.close()
        return [dict(zip(("created_at", "question", "sql", "title", "error"), r)) for r in rows]
