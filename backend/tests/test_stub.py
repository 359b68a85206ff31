"""The Ollama stub speaks Ollama's API shapes (used by the stack and frontend tests too)."""
import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "ollama_stub"))
import stub as stubmod  # noqa: E402

from conftest import start_stub  # noqa: E402


def test_tags_version_show_and_root(stub):
    assert httpx.get(stub.url + "/").text == "Ollama is running"
    assert httpx.get(stub.url + "/api/version").json() == {"version": "0.12.3"}
    models = httpx.get(stub.url + "/api/tags").json()["models"]
    assert models[0]["name"] == "qwen2.5-coder:3b" and models[0]["details"]["family"] == "qwen2"
    assert httpx.post(stub.url + "/api/show", json={"model": "qwen2.5-coder:3b"}).json()["details"]["format"] == "gguf"
    r = httpx.post(stub.url + "/api/show", json={"model": "nope:1b"})
    assert r.status_code == 404 and r.json() == {"error": "model 'nope:1b' not found"}


def test_chat_with_unknown_model_is_404_in_ollamas_words(stub):
    r = httpx.post(stub.url + "/api/chat", json={"model": "mistral", "messages": []})
    assert r.status_code == 404 and r.json() == {"error": 'model "mistral" not found, try pulling it first'}


def test_pull_streams_progress_and_adds_the_model():
    s = start_stub(STUB_MODELS="")
    try:
        assert httpx.get(s.url + "/api/tags").json() == {"models": []}
        with httpx.stream("POST", s.url + "/api/pull", json={"model": "qwen2.5-coder:3b"}) as r:
            lines = [json.loads(x) for x in r.iter_lines() if x]
        assert lines[0] == {"status": "pulling manifest"} and lines[-1] == {"status": "success"}
        prog = [x for x in lines if "completed" in x]
        assert prog[-1]["completed"] == prog[-1]["total"]
        assert [m["name"] for m in httpx.get(s.url + "/api/tags").json()["models"]] == ["qwen2.5-coder:3b"]
        with httpx.stream("POST", s.url + "/api/pull", json={"model": "nonexistent:7b"}) as r:
            lines = [json.loads(x) for x in r.iter_lines() if x]
        assert lines[-1] == {"error": "pull model manifest: file does not exist"}
    finally:
        s.proc.kill()
        s.proc.wait()


def test_chat_streams_ndjson_ending_with_done(stub):
    msgs = [{"role": "user", "content": "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, total REAL);\n-- Question: by region"}]
    with httpx.stream("POST", stub.url + "/api/chat", json={"model": "qwen2.5-coder:3b", "messages": msgs, "format": "json"}) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(x) for x in r.iter_lines() if x]
    assert all(not x["done"] for x in lines[:-1]) and lines[-1]["done"] and lines[-1]["done_reason"] == "stop"
    answer = json.loads("".join(x["message"]["content"] for x in lines))
    assert answer == {"sql": 'SELECT "region" AS "region", SUM("total") AS total_total FROM "sales" GROUP BY "region" ORDER BY 2 DESC LIMIT 10',
                      "chart_type": "bar", "x": "region", "y": "total_total", "title": "total_total by region"}


def test_generate_answers_in_response(stub):
    r = httpx.post(stub.url + "/api/generate", json={"model": "qwen2.5-coder:3b", "prompt": "CREATE TABLE t (a TEXT, b REAL);", "stream": False, "format": "json"})
    assert r.status_code == 200 and json.loads(r.json()["response"])["sql"].startswith("SELECT")


def test_schema_parser_reads_the_sample_schema(sample_db):
    import sqlite3

    ddl = "\n".join(r[0] for r in sqlite3.connect(sample_db).execute("SELECT sql FROM sqlite_master WHERE type='table'"))
    tables = dict(stubmod.parse_tables(ddl))
    assert len(tables) == 9 and [c for c, _ in tables["orders"]][:3] == ["order_id", "order_date", "customer_id"]
    ans = stubmod.build_answer(ddl, "revenue per month")
    assert ans["chart_type"] == "line" and "substr(\"order_date\", 1, 7)" in ans["sql"]
