#!/usr/bin/env python3
"""Dashboard and chat latency on the 1M-row sample (prints p50/p95 per endpoint).

    backend/.venv/bin/python backend/bench/bench.py [--rows 1000000] [--n 60]

Builds (once) a 1M-row sample DB under backend/.bench/, starts the Ollama stub and the app with
a real uvicorn on 127.0.0.1, waits for the dashboard cache, then times sequential requests.
Also times the SQL path (cache off) for comparison and the chat overhead with an instant stub.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

BACKEND = Path(__file__).resolve().parents[1]
REPO = BACKEND.parent
sys.path.insert(0, str(BACKEND / "scripts"))
import make_sample_db  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def timed(client: httpx.Client, method: str, path: str, n: int, **kw) -> list[float]:
    out = []
    client.request(method, path, **kw).raise_for_status()  # warm-up
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.request(method, path, **kw)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def start_app(db: Path, state: Path, ollama: str, cache: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DB_PATH": str(db), "APP_STATE_DIR": str(state), "OLLAMA_BASE_URL": ollama,
           "DASHBOARD_CACHE": "true" if cache else "false", "LLM_STREAM": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=BACKEND, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/live")
    return proc, url


DASH = [
    ("test", "/api/dashboard/test", {}),
    ("profile", "/api/dashboard/profile", {}),
    ("filters", "/api/dashboard/filters", {}),
    ("kpis (90 days)", "/api/dashboard/kpis", {}),
    ("kpis (2 years, 2 filters)", "/api/dashboard/kpis", {"start": "2023-01-01", "end": "2024-12-31", "filter": ["region:Europe", "channel:Online Store"]}),
    ("timeseries day (90 days)", "/api/dashboard/timeseries", {"granularity": "day", "measure": "amount"}),
    ("timeseries week (2 years)", "/api/dashboard/timeseries", {"granularity": "week", "measure": "amount", "start": "2023-01-01"}),
    ("timeseries month (2 years, filter)", "/api/dashboard/timeseries", {"granularity": "month", "measure": "avg_amount", "start": "2023-01-01", "filter": "category:Electronics"}),
    ("top country (90 days)", "/api/dashboard/top", {"dimension": "country", "measure": "amount"}),
    ("top product (2 years, filter)", "/api/dashboard/top", {"dimension": "product", "measure": "amount", "n": 20, "start": "2023-01-01", "filter": "segment:Enterprise"}),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=60, help="requests per endpoint")
    ap.add_argument("--sql-n", type=int, default=5, help="requests per endpoint with the cache off")
    args = ap.parse_args()
    work = BACKEND / ".bench"
    work.mkdir(exist_ok=True)
    db = work / f"munero-{args.rows}.sqlite"
    if not db.exists():
        t0 = time.monotonic()
        make_sample_db.build(str(db), rows=args.rows, seed=42, end=make_sample_db.date(2024, 12, 31))
        print(f"built {db.name} in {time.monotonic() - t0:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
    state = work / "state"
    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, str(REPO / "tests" / "ollama_stub" / "stub.py"), "--port", str(stub_port)],
                            env={**os.environ, "STUB_DELAY_MS": "0"}, stderr=subprocess.DEVNULL)
    ollama = f"http://127.0.0.1:{stub_port}"
    procs = [stub]
    try:
        wait_http(ollama + "/api/version")
        # fresh cache build timing
        for f in state.glob("cache/dashboard-*"):
            f.unlink()
        app, url = start_app(db, state, ollama, cache=True)
        procs.append(app)
        c = httpx.Client(base_url=url, timeout=120)
        t0 = time.monotonic()
        while c.get("/api/dashboard/test").json().get("cache") != "ready":
            time.sleep(0.2)
        print(f"dashboard cache built from {args.rows} rows in {time.monotonic() - t0:.1f} s (from app start: profile + build)")
        print(f"\n{'endpoint (cache ready)':42s} {'p50 ms':>8s} {'p95 ms':>8s}")
        for name, path, params in DASH:
            xs = timed(c, "GET", path, args.n, params=params)
            print(f"{name:42s} {statistics.median(xs):8.1f} {pct(xs, 95):8.1f}")
        xs = timed(c, "GET", "/health", args.n)
        print(f"{'health':42s} {statistics.median(xs):8.1f} {pct(xs, 95):8.1f}")

        # chat: instant stub; trivial SQL isolates the backend's own overhead
        stub_c = httpx.Client(base_url=ollama, timeout=30)
        direct = timed(stub_c, "POST", "/api/chat", args.n, json={
            "model": "qwen2.5-coder:3b", "stream": True, "format": {"type": "object"},
            "messages": [{"role": "user", "content": "CREATE TABLE regions (region_id INTEGER, name TEXT);\n-- Question: x"}]})
        trivial = timed(c, "POST", "/api/chat/", args.n, json={"question": "__sql__SELECT name, region_id FROM regions__end__"})
        full = timed(c, "POST", "/api/chat/", max(10, args.n // 3), json={"question": "Which currency has the most quantity?"})
        print(f"\n{'chat':42s} {'p50 ms':>8s} {'p95 ms':>8s}")
        print(f"{'stub /api/chat called directly':42s} {statistics.median(direct):8.1f} {pct(direct, 95):8.1f}")
        print(f"{'POST /api/chat/ (trivial SQL)':42s} {statistics.median(trivial):8.1f} {pct(trivial, 95):8.1f}")
        print(f"{'  overhead = above - direct stub':42s} {statistics.median(trivial) - statistics.median(direct):8.1f} {pct(trivial, 95) - pct(direct, 95):8.1f}")
        print(f"{'POST /api/chat/ (stub GROUP BY on 1M rows)':42s} {statistics.median(full):8.1f} {pct(full, 95):8.1f}")
        c.close()
        app.terminate()
        app.wait()
        procs.remove(app)

        app, url = start_app(db, state, ollama, cache=False)
        procs.append(app)
        c = httpx.Client(base_url=url, timeout=300)
        print(f"\n{'endpoint (cache off: SQL on the file)':42s} {'p50 ms':>8s} {'p95 ms':>8s}")
        for name, path, params in DASH:
            xs = timed(c, "GET", path, args.sql_n, params=params)
            print(f"{name:42s} {statistics.median(xs):8.1f} {pct(xs, 95):8.1f}")
        c.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
