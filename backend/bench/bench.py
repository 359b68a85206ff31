#!/usr/bin/env python3
"""Dashboard latency, column store build and restart time and memory, on a generated file.

    backend/.venv/bin/python backend/bench/bench.py [--rows 1000000] [--n 60] [--data-dir DIR] [--sql-n 0]

Builds (once) the sample DB with --rows orders under --data-dir (default backend/.bench/), starts
the Ollama stub and the app with a real uvicorn on 127.0.0.1 and a fresh state dir, and prints:
when the first dashboard is served from memory and when the whole table is (build time), p50/p95
per endpoint over 90 days and 2 years with 0, 1 and 2 filters, RSS, then the same after a restart
on the same file (restart time), then the SQL path (cache off) for reference unless --sql-n 0.
Run it niced on a shared machine: `nice -n 10 ...`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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


NINETY = {}  # the endpoints' default period: the last 90 days of the data
TWO_YEARS = {"start": "2023-01-01", "end": "2024-12-31"}
FILTERS = {"no filter": {}, "1 filter": {"filter": ["segment:Enterprise"]},
           "2 filters": {"filter": ["region:Europe", "channel:Online Store"]}}
ENDPOINTS = [
    ("kpis", "/api/dashboard/kpis", {}),
    ("timeseries", "/api/dashboard/timeseries", {"measure": "amount"}),
    ("top product", "/api/dashboard/top", {"dimension": "product", "measure": "amount", "n": 20}),
]


def dash_cases() -> list[tuple[str, str, dict]]:
    cases = [("test", "/api/dashboard/test", {}), ("profile", "/api/dashboard/profile", {}),
             ("filters", "/api/dashboard/filters", {})]
    for period, pparams, gran in (("90 days", NINETY, "day"), ("2 years", TWO_YEARS, "week")):
        for fname, fparams in FILTERS.items():
            for name, path, params in ENDPOINTS:
                extra = {"granularity": gran} if name == "timeseries" else {}
                cases.append((f"{name} ({period}, {fname})", path, {**params, **extra, **pparams, **fparams}))
    return cases


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


DATA_END = make_sample_db.date(2024, 12, 31)  # the generated files' last day
# The default view: the last 90 days, compared by the KPIs with the 90 before.
DEFAULT_FROM = (DATA_END - make_sample_db.timedelta(days=179)).isoformat()


def children_hwm(pid: int) -> dict[int, float]:
    """Peak RSS (MiB) of each child process of pid: the store build's readers."""
    out = {}
    for st in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = st.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out[int(st.parent.name)] = rss_mib(int(st.parent.name), "VmHWM")
        except (OSError, ValueError, IndexError):
            pass
    return out


def open_dashboard(url: str, t0: float) -> dict:
    """What a browser opening the dashboard right at start asks (profile and filters, then the
    default view's KPIs, weekly series and a top-N, each at once), and when each answered (s)."""
    from concurrent.futures import ThreadPoolExecutor

    def get(path, params=None):
        with httpx.Client(base_url=url, timeout=600) as c:
            c.get(path, params=params).raise_for_status()
        return time.monotonic() - t0

    with ThreadPoolExecutor(4) as ex:
        meta = [ex.submit(get, "/api/dashboard/profile"), ex.submit(get, "/api/dashboard/filters")]
        out = {"filters": max(f.result() for f in meta)}
        view = {"kpis": ex.submit(get, "/api/dashboard/kpis"),
                "timeseries": ex.submit(get, "/api/dashboard/timeseries", {"granularity": "week", "measure": "amount"}),
                "top": ex.submit(get, "/api/dashboard/top", {"dimension": "product", "measure": "amount", "n": 11})}
        out.update({k: f.result() for k, f in view.items()})
    return out


def wait_cache(c: httpx.Client, t0: float, pid: int, timeout: float = 3600) -> dict:
    """Seconds from t0 until the first (partial) store answers, until it covers the default view
    (the KPIs' 180 days), and until the complete one does; and the default view's request times
    right when it is covered."""
    out: dict = {"first": None, "dashboard": None, "default_ms": None, "readers_mib": {}}
    while time.monotonic() - t0 < timeout:
        for k, v in children_hwm(pid).items():
            out["readers_mib"][k] = max(v, out["readers_mib"].get(k, 0))
        t = c.get("/api/dashboard/test").json()
        now = time.monotonic() - t0
        if out["first"] is None and t.get("cache_store"):
            out["first"] = now
        covered = (t.get("cache_build") or {}).get("covered_from")
        if out["dashboard"] is None and (t.get("cache") == "ready" or (t.get("cache_store") and covered and covered <= DEFAULT_FROM)):
            out["dashboard"] = now
            out["default_ms"] = {name: timed(c, "GET", path, 1, params=params)[0]
                                 for name, path, params in dash_cases() if "90 days, no filter" in name}
        if t.get("cache") == "ready":
            out["full"] = time.monotonic() - t0
            return out
        if t.get("cache") == "off":
            raise RuntimeError(f"no cache: {t.get('cache_build')}")
        time.sleep(0.2)
    raise RuntimeError("cache not ready in time")


def print_table(title: str, c: httpx.Client, n: int) -> None:
    print(f"\n{title:46s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, path, params in dash_cases():
        xs = timed(c, "GET", path, n, params=params)
        print(f"{name:46s} {statistics.median(xs):8.1f} {pct(xs, 95):8.1f}", flush=True)


def print_cold(c: httpx.Client, n: int) -> None:
    """Filter sets never asked before: what the first view with new filters costs."""
    filters = c.get("/api/dashboard/filters").json()["dimensions"]
    vals = {d["name"]: d["values"] for d in filters}
    combos = [[f"country:{a}", f"channel:{b}"] for a in vals.get("country", []) for b in vals.get("channel", [])]
    print(f"\n{'first request with a new filter set':46s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, path, params in ENDPOINTS:
        for period, pparams in (("90 days", NINETY), ("2 years", TWO_YEARS)):
            xs = []
            for flt in combos[:n]:
                extra = {"granularity": "week"} if name == "timeseries" else {}
                t0 = time.perf_counter()
                r = c.get(path, params={**params, **extra, **pparams, "filter": flt})
                xs.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            combos = combos[n:] + combos[:n]  # the next endpoint gets filter sets not seen yet
            print(f"{name + ' (' + period + ', 2 filters, cold)':46s} {statistics.median(xs):8.1f} {pct(xs, 95):8.1f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=60, help="requests per endpoint")
    ap.add_argument("--sql-n", type=int, default=5, help="requests per endpoint with the cache off (0: skip)")
    ap.add_argument("--chat", action="store_true", help="also time the chat overhead")
    ap.add_argument("--data-dir", default=str(BACKEND / ".bench"), help="where the generated files are kept")
    args = ap.parse_args()
    work = Path(args.data_dir)
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"munero-{args.rows}.sqlite"
    if not db.exists():
        t0 = time.monotonic()
        make_sample_db.build(str(db), rows=args.rows, seed=42, end=make_sample_db.date(2024, 12, 31))
        print(f"built {db.name} in {time.monotonic() - t0:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
    state = work / f"state-{args.rows}"
    stub_port = free_port()
    stub = subprocess.Popen([sys.executable, str(REPO / "tests" / "ollama_stub" / "stub.py"), "--port", str(stub_port)],
                            env={**os.environ, "STUB_DELAY_MS": "0"}, stderr=subprocess.DEVNULL)
    ollama = f"http://127.0.0.1:{stub_port}"
    procs = [stub]
    print(f"{args.rows} rows, {db.stat().st_size / 1e6:.0f} MB file, {os.cpu_count()} cores")
    try:
        wait_http(ollama + "/api/version")
        shutil.rmtree(state / "cache", ignore_errors=True)  # a fresh build
        t0 = time.monotonic()
        app, url = start_app(db, state, ollama, cache=True)
        procs.append(app)
        c = httpx.Client(base_url=url, timeout=600)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as ex:
            opened = ex.submit(open_dashboard, url, t0)
            w = wait_cache(c, t0, app.pid)
            opened = opened.result()
        print(f"new file: a browser opening the dashboard at start has all of it {max(opened.values()):.1f} s after "
              f"start (" + ", ".join(f"{k} {v:.1f} s" for k, v in opened.items()) + ")")
        print(f"  store: first charts (newest 90 days) from memory {w['first']:.1f} s after start, also the "
              f"KPIs' comparison (180 days) {w['dashboard']:.1f} s, whole table in {w['full']:.1f} s; "
              f"peak RSS {rss_mib(app.pid, 'VmHWM'):.0f} MiB (reader processes: "
              f"{', '.join(f'{v:.0f}' for v in w['readers_mib'].values()) or 'none'} MiB each at most)")
        print("  the default view right then: " + ", ".join(f"{k.split(' (')[0]} {v:.0f} ms" for k, v in w["default_ms"].items()))
        print_table("endpoint (store built)", c, args.n)
        print_cold(c, 20)
        info = c.get("/api/dashboard/test").json()
        print(f"store: {json.dumps(info.get('cache_store'))}")
        print(f"RSS after the queries: {rss_mib(app.pid):.0f} MiB (peak {rss_mib(app.pid, 'VmHWM'):.0f} MiB)")
        if args.chat:
            chat_overhead(c, ollama, args.n)
        c.close()
        app.terminate()
        app.wait()
        procs.remove(app)

        t0 = time.monotonic()
        app, url = start_app(db, state, ollama, cache=True)
        procs.append(app)
        c = httpx.Client(base_url=url, timeout=600)
        full = wait_cache(c, t0, app.pid)["full"]
        print(f"\nrestart on the same file: store ready {full:.1f} s after start (process start included)")
        print_table("endpoint (after restart, memory-mapped)", c, args.n)
        print(f"RSS after the queries: {rss_mib(app.pid):.0f} MiB (peak {rss_mib(app.pid, 'VmHWM'):.0f} MiB)")
        c.close()
        app.terminate()
        app.wait()
        procs.remove(app)

        if args.sql_n:
            app, url = start_app(db, state, ollama, cache=False)
            procs.append(app)
            c = httpx.Client(base_url=url, timeout=600)
            print_table("endpoint (cache off: SQL on the file)", c, args.sql_n)
            c.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    return 0


def chat_overhead(c: httpx.Client, ollama: str, n: int) -> None:
    """Chat with an instant stub; trivial SQL isolates the backend's own overhead."""
    stub_c = httpx.Client(base_url=ollama, timeout=30)
    direct = timed(stub_c, "POST", "/api/chat", n, json={
        "model": "qwen2.5-coder:3b", "stream": True, "format": {"type": "object"},
        "messages": [{"role": "user", "content": "CREATE TABLE regions (region_id INTEGER, name TEXT);\n-- Question: x"}]})
    trivial = timed(c, "POST", "/api/chat/", n, json={"question": "__sql__SELECT name, region_id FROM regions__end__"})
    print(f"\n{'chat':46s} {'p50 ms':>8s} {'p95 ms':>8s}")
    print(f"{'stub /api/chat called directly':46s} {statistics.median(direct):8.1f} {pct(direct, 95):8.1f}")
    print(f"{'POST /api/chat/ (trivial SQL)':46s} {statistics.median(trivial):8.1f} {pct(trivial, 95):8.1f}")


if __name__ == "__main__":
    raise SystemExit(main())
