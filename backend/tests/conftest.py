from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[1]
REPO = BACKEND.parent
STUB = REPO / "tests" / "ollama_stub" / "stub.py"
sys.path.insert(0, str(BACKEND))
sys.path.insert(0, str(BACKEND / "scripts"))

from app.core.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402

import make_sample_db  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    def __init__(self, proc, url):
        self.proc = proc
        self.url = url

    def requests(self) -> list[dict]:
        import httpx

        return httpx.get(self.url + "/__stub/requests").json()["requests"]


def start_stub(**env) -> Stub:
    port = free_port()
    e = {**os.environ, **{k: str(v) for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, str(STUB), "--host", "127.0.0.1", "--port", str(port)], env=e,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Stub(proc, f"http://127.0.0.1:{port}")
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("stub did not start")


@pytest.fixture(scope="session")
def stub():
    s = start_stub()
    yield s
    s.proc.kill()
    s.proc.wait()


@pytest.fixture(scope="session")
def hang_stub():
    """A stub whose chat and tags calls hang (to exercise timeouts)."""
    s = start_stub(STUB_HANG_TAGS="1", STUB_HANG_SECONDS="30")
    yield s
    s.proc.kill()
    s.proc.wait()


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("sample") / "munero.sqlite"
    make_sample_db.build(str(out), rows=20000, seed=7, end=make_sample_db.date(2024, 12, 31))
    return str(out)


@pytest.fixture(scope="session")
def other_db(tmp_path_factory) -> str:
    """A differently shaped dataset: unix timestamps, no declared foreign keys, other names."""
    out = tmp_path_factory.mktemp("other") / "events.sqlite"
    conn = sqlite3.connect(out)
    conn.executescript(
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, plan TEXT, country TEXT, email TEXT);
        CREATE TABLE event_log (event_id INTEGER PRIMARY KEY, user_id INTEGER, ts INTEGER, kind TEXT,
                                duration_ms INTEGER, bytes_sent REAL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
        """
    )
    plans = ["free", "pro", "team"]
    countries = ["Kenya", "Peru", "Norway", "Vietnam"]
    conn.executemany("INSERT INTO users VALUES (?,?,?,?)",
                     [(i, plans[i % 3], countries[i % 4], f"user{i}@example.test") for i in range(1, 101)])
    kinds = ["login", "upload", "download", "share", "logout"]
    base = 1704067200  # 2024-01-01T00:00:00Z
    rows = [(i, 1 + i % 100, base + i * 3600, kinds[i % 5], 100 + (i * 37) % 900, float((i * 13) % 5000))
            for i in range(1, 5001)]
    conn.executemany("INSERT INTO event_log VALUES (?,?,?,?,?,?)", rows)
    conn.execute("INSERT INTO settings VALUES ('theme', 'dark')")
    conn.commit()
    conn.close()
    return str(out)


@pytest.fixture(scope="session")
def nodate_db(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("nodate") / "nodate.sqlite"
    conn = sqlite3.connect(out)
    conn.executescript("CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT, weight REAL);"
                       "INSERT INTO things VALUES (1, 'a', 1.5), (2, 'b', 2.5);")
    conn.close()
    return str(out)


def make_settings(tmp_path, **kw) -> Settings:
    base = dict(db_path=str(tmp_path / "missing.sqlite"), ollama_base_url="http://127.0.0.1:9", app_state_dir=str(tmp_path / "state"),
                dashboard_cache=False, llm_timeout=10.0, health_cache_seconds=0.0)
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def make_client(tmp_path):
    from fastapi.testclient import TestClient

    clients = []

    def _make(**kw):
        app = create_app(make_settings(tmp_path, **kw))
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c

    yield _make
    for c in clients:
        c.__exit__(None, None, None)
