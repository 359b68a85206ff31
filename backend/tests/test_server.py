"""The real entry point: `uvicorn main:app` from backend/, configured by environment variables only."""
import os
import subprocess
import sys
import time

import httpx

from conftest import BACKEND, free_port


def test_uvicorn_main_app_reads_settings_from_the_environment(sample_db, stub, tmp_path):
    port = free_port()
    env = {**os.environ, "DB_PATH": sample_db, "OLLAMA_BASE_URL": stub.url, "APP_STATE_DIR": str(tmp_path / "state"),
           "OLLAMA_MODEL": "qwen2.5-coder:3b", "DASHBOARD_CACHE": "false", "LLM_TIMEOUT": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(BACKEND)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url + "/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["db"]["tables"] == 9
        b = httpx.post(url + "/api/chat/", json={"question": "top currencies confidential-q"}, timeout=30).json()
        assert b["error"] is None and b["rows"]
        assert httpx.get(url + "/api/dashboard/kpis", params={"filter": "country:Germany"}).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "GET /health 200" in out and "POST /api/chat/ 200" in out
    assert "confidential-q" not in out and "Germany" not in out and "SELECT" not in out
