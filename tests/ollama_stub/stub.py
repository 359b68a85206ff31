#!/usr/bin/env python3
"""A small Ollama API stub for tests (standard library only).

    python3 stub.py --host 0.0.0.0 --port 11434

Implements the parts of Ollama's HTTP API the product uses, with Ollama's response and error
shapes: GET /, GET /api/tags, GET /api/version, POST /api/show, POST /api/chat,
POST /api/generate, POST /api/pull, GET /api/ps. Answers to /api/chat are a deterministic, valid SQLite query
built from the CREATE TABLE statements found in the prompt. See README.md for the switches.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "0.12.3"
DEFAULT_MODELS = "qwen2.5-coder:3b"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _norm(name: str) -> str:
    return name if ":" in name else name + ":latest"


class State:
    def __init__(self) -> None:
        raw = os.environ.get("STUB_MODELS", DEFAULT_MODELS)
        self.models = [_norm(m.strip()) for m in raw.split(",") if m.strip()]
        self.delay = float(os.environ.get("STUB_DELAY_MS", "0") or 0) / 1000.0
        self.hang_seconds = float(os.environ.get("STUB_HANG_SECONDS", "3600") or 3600)
        self.requests: list[dict] = []
        # Models a generation has loaded (listed by /api/ps), and the figures they report.
        self.loaded: list[str] = []
        self.eval_tps = float(os.environ.get("STUB_EVAL_TPS", "0") or 0)
        self.load_ms = float(os.environ.get("STUB_LOAD_MS", "1.234567") or 0)
        self.vram = os.environ.get("STUB_VRAM", "none")
        self.lock = threading.Lock()

    def has(self, name: str) -> bool:
        return _norm(name) in self.models

    def record(self, path: str, body: dict) -> None:
        with self.lock:
            self.requests.append({"path": path, "body": body})
            del self.requests[:-50]


STATE = State()


# ---------------------------------------------------------------------------------------------
# Building a query from the schema in the prompt

CREATE_RE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\"`\[]?)([A-Za-z_][\w ]*?)\1\s*\(", re.I)
NUMERIC = ("INT", "REAL", "FLOA", "DOUB", "NUM", "DEC")
CONSTRAINT = re.compile(r"^(PRIMARY|FOREIGN|UNIQUE|CHECK|CONSTRAINT)\b", re.I)


def parse_tables(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    tables = []
    for m in CREATE_RE.finditer(text):
        name = m.group(2)
        depth, i, start = 1, m.end(), m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        body = text[start:i - 1]
        cols, part, d = [], "", 0
        for ch in body + ",":
            if ch == "," and d == 0:
                part = part.strip()
                if part and not CONSTRAINT.match(part):
                    bits = part.split()
                    cname = bits[0].strip('"`[]')
                    ctype = bits[1].upper() if len(bits) > 1 else ""
                    cols.append((cname, ctype))
                part = ""
                continue
            d += {"(": 1, ")": -1}.get(ch, 0)
            part += ch
        tables.append((name, cols))
    return tables


def _is_id(name: str) -> bool:
    n = name.lower()
    return n == "id" or n.endswith("_id") or n.endswith("id") and name[-2:] == "Id"


def _is_date(name: str, ctype: str) -> bool:
    return "DATE" in ctype or "TIME" in ctype or bool(re.search(r"(date|_at$|time|day|^ts$|_ts$)", name, re.I))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_answer(prompt: str, question: str, bad: bool = False) -> dict:
    tables = parse_tables(prompt)
    if not tables:
        return {"sql": "SELECT 1 AS value", "chart_type": "kpi", "x": "", "y": "value", "title": "Value"}
    name, cols = max(tables, key=lambda t: len(t[1]))  # the widest table looks like the fact table
    texts = [c for c, t in cols if not _is_id(c) and not _is_date(c, t) and not any(k in t for k in NUMERIC)]
    nums = [c for c, t in cols if not _is_id(c) and not _is_date(c, t) and any(k in t for k in NUMERIC)]
    dates = [c for c, t in cols if _is_date(c, t) and not any(k in t for k in NUMERIC)]
    value = f"SUM({_q(nums[0])})" if nums else "COUNT(*)"
    vname = "total_" + nums[0] if nums else "row_count"
    if bad:
        value, vname = "SUM(stub_nonexistent_column)", "broken"
    q = question.lower()
    if dates and re.search(r"(month|over time|trend|per month|monthly)", q):
        sql = (f"SELECT substr({_q(dates[0])}, 1, 7) AS month, {value} AS {vname} FROM {_q(name)} "
               f"GROUP BY month ORDER BY month")
        return {"sql": sql, "chart_type": "line", "x": "month", "y": vname, "title": f"{vname} by month"}
    if texts:
        sql = (f"SELECT {_q(texts[0])} AS {_q(texts[0])}, {value} AS {vname} FROM {_q(name)} "
               f"GROUP BY {_q(texts[0])} ORDER BY 2 DESC LIMIT 10")
        return {"sql": sql, "chart_type": "bar", "x": texts[0], "y": vname, "title": f"{vname} by {texts[0]}"}
    sql = f"SELECT {value} AS {vname} FROM {_q(name)}"
    return {"sql": sql, "chart_type": "kpi", "x": "", "y": vname, "title": vname}


def answer_for(messages: list[dict]) -> tuple[dict | None, str]:
    """(answer, mode) for a chat request. mode is one of the magic switches or 'normal'."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    last = users[-1] if users else ""
    question_line = re.findall(r"Question:\s*(.*)", prompt)
    question = question_line[-1] if question_line else last
    feedback = any(re.search(r"\berror\b", u, re.I) for u in users[1:]) or (
        len(users) > 1 and "Question:" not in last)
    for mode in ("__hang__", "__midstream_error__", "__length__", "__not_json__"):
        if mode in prompt:
            return None, mode
    if "__bad_sql__" in prompt and not feedback:
        return build_answer(prompt, question, bad=True), "bad_sql"
    # The latest question's query wins over one earlier in the conversation's history.
    forced = ([m for m in re.finditer(r"__sql__(.*?)__end__", prompt, re.S)] or [None])[-1]
    if forced and (not feedback or "__stubborn__" in prompt):
        chart = re.search(r"__chart_(bar|line|pie|kpi|table)__", prompt)
        ans = {"sql": forced.group(1).strip(), "chart_type": chart.group(1) if chart else "table", "x": "", "y": "",
               "title": "Forced query"}
        if chart:
            cols = re.findall(r"\bAS\s+(\w+)", ans["sql"], re.I)
            if len(cols) >= 2:
                ans["x"], ans["y"] = cols[0], cols[1]
        return ans, "forced"
    return build_answer(prompt, question), "normal"


# ---------------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server_version = "ollama-stub/" + VERSION
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Many small NDJSON writes: without this, Nagle + delayed ACK add ~40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet unless asked
        if os.environ.get("STUB_VERBOSE"):
            sys.stderr.write("stub: " + (fmt % args) + "\n")

    # -- helpers ----------------------------------------------------------------------------
    def _send_json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, obj) -> None:
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _body(self) -> dict | None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": "invalid character looking for beginning of value"})
            return None
        if not isinstance(body, dict):
            self._send_json(400, {"error": "json: cannot unmarshal into Go value of type api.ChatRequest"})
            return None
        return body

    # -- routes -----------------------------------------------------------------------------
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", "17")
        self.end_headers()

    def do_GET(self):
        if self.path in ("/", ""):
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/api/version":
            self._send_json(200, {"version": VERSION})
        elif self.path == "/api/tags":
            if os.path.exists(os.environ.get("STUB_HANG_TAGS_FILE", "/nonexistent-stub-flag")) or os.environ.get("STUB_HANG_TAGS"):
                time.sleep(STATE.hang_seconds)
            self._send_json(200, {"models": [self._model_entry(m) for m in STATE.models]})
        elif self.path == "/api/ps":
            self._send_json(200, {"models": [self._loaded_entry(m) for m in STATE.loaded]})
        elif self.path == "/__stub/requests":
            with STATE.lock:
                self._send_json(200, {"requests": list(STATE.requests)})
        else:
            self._send_json(404, {"error": "404 page not found"} if False else {"error": "not found"})

    def do_DELETE(self):
        if self.path == "/api/delete":
            body = self._body()
            if body is None:
                return
            name = body.get("model") or body.get("name") or ""
            if not STATE.has(name):
                self._send_json(404, {"error": f"model '{name}' not found"})
                return
            STATE.models.remove(_norm(name))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send_json(404, {"error": "not found"})

    def do_POST(self):
        body = self._body()
        if body is None:
            return
        STATE.record(self.path, body)
        if self.path == "/api/chat":
            self._chat(body, generate=False)
        elif self.path == "/api/generate":
            self._chat(body, generate=True)
        elif self.path == "/api/show":
            self._show(body)
        elif self.path == "/api/pull":
            self._pull(body)
        else:
            self._send_json(404, {"error": "not found"})

    @staticmethod
    def _model_entry(name: str) -> dict:
        digest = hashlib.sha256(name.encode()).hexdigest()
        return {
            "name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 1929912432, "digest": digest,
            "details": {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
                        "parameter_size": "3.1B", "quantization_level": "Q4_K_M"},
        }

    def _loaded_entry(self, name: str) -> dict:
        entry = self._model_entry(name)
        size = entry["size"]
        share = {"full": 1.0, "partial": 0.6}.get(STATE.vram, 0.0)
        entry.update({"expires_at": "2099-01-01T00:00:00Z", "size_vram": int(size * share), "context_length": 8192})
        return entry

    def _show(self, body: dict) -> None:
        name = body.get("model") or body.get("name") or ""
        if not STATE.has(name):
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        self._send_json(200, {
            "modelfile": f"FROM {name}\n", "parameters": "stop \"<|im_end|>\"", "template": "{{ .Prompt }}",
            "details": self._model_entry(_norm(name))["details"],
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
            "capabilities": ["completion", "tools", "insert"], "modified_at": "2025-01-01T00:00:00Z",
        })

    def _pull(self, body: dict) -> None:
        name = body.get("model") or body.get("name") or ""
        stream = body.get("stream", True)
        if not name:
            self._send_json(400, {"error": "model is required"})
            return
        if "nonexistent" in name:
            if stream:
                self._start_stream()
                self._chunk({"status": "pulling manifest"})
                self._chunk({"error": "pull model manifest: file does not exist"})
                self._end_stream()
            else:
                self._send_json(500, {"error": "pull model manifest: file does not exist"})
            return
        digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
        total = 1929912432
        steps = [{"status": "pulling manifest"}]
        for frac in (0, 0.25, 0.5, 0.75, 1.0):
            steps.append({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": int(total * frac)})
        steps += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
        if _norm(name) not in STATE.models:
            STATE.models.append(_norm(name))
        if not stream:
            self._send_json(200, {"status": "success"})
            return
        self._start_stream()
        for s in steps:
            if STATE.delay:
                time.sleep(STATE.delay)
            self._chunk(s)
        self._end_stream()

    def _chat(self, body: dict, generate: bool) -> None:
        name = body.get("model") or ""
        if not name:
            self._send_json(400, {"error": "model is required"})
            return
        if not STATE.has(name):
            self._send_json(404, {"error": f"model \"{name}\" not found, try pulling it first"})
            return
        stream = body.get("stream", True)
        if generate:
            messages = [{"role": "system", "content": body.get("system", "")}, {"role": "user", "content": body.get("prompt", "")}]
        else:
            messages = body.get("messages") or []
            if not isinstance(messages, list):
                self._send_json(400, {"error": "messages must be a list"})
                return
        if STATE.delay:
            time.sleep(STATE.delay)
        answer, mode = answer_for(messages)
        if mode == "__hang__":
            time.sleep(STATE.hang_seconds)
            answer = build_answer("", "")
        content = json.dumps(answer) if answer is not None else ""
        done_reason = "stop"
        if mode == "__length__":
            content = json.dumps(build_answer("\n".join(str(m.get("content", "")) for m in messages), ""))[:25]
            done_reason = "length"
        elif mode == "__not_json__":
            content = "Sure! Here is the query you asked for."
        if body.get("format") in (None, "") and answer is not None and mode == "normal":
            content = "```sql\n" + answer["sql"] + "\n```"
        created = _now()
        eval_count = max(1, len(content) // 4)
        # STUB_EVAL_TPS: report that generation speed (else 2 ms for the whole answer).
        eval_duration = int(eval_count / STATE.eval_tps * 1e9) if STATE.eval_tps > 0 else 2000000
        final = {
            "model": name, "created_at": created, "done": True, "done_reason": done_reason,
            "total_duration": 123456789, "load_duration": int(STATE.load_ms * 1e6), "prompt_eval_count": 512,
            "prompt_eval_duration": 1000000, "eval_count": eval_count, "eval_duration": eval_duration,
        }
        with STATE.lock:
            if _norm(name) not in STATE.loaded:
                STATE.loaded.append(_norm(name))
        if mode == "__midstream_error__":
            if not stream:
                self._send_json(500, {"error": "an error was encountered while running the model: unexpected EOF"})
                return
            self._start_stream()
            self._chunk(self._piece(name, generate, content[:10]))
            self._chunk({"error": "an error was encountered while running the model: unexpected EOF"})
            self._end_stream()
            return
        if not stream:
            if generate:
                out = {**final, "response": content}
            else:
                out = {**final, "message": {"role": "assistant", "content": content}}
            self._send_json(200, out)
            return
        self._start_stream()
        for i in range(0, len(content), 12):
            self._chunk(self._piece(name, generate, content[i:i + 12]))
        last = {**final, "response": ""} if generate else {**final, "message": {"role": "assistant", "content": ""}}
        self._chunk(last)
        self._end_stream()

    @staticmethod
    def _piece(name: str, generate: bool, text: str) -> dict:
        if generate:
            return {"model": name, "created_at": _now(), "response": text, "done": False}
        return {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": text}, "done": False}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Ollama API stub for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=11434)
    args = ap.parse_args(argv)
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    print(f"ollama stub listening on {args.host}:{srv.server_address[1]}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
