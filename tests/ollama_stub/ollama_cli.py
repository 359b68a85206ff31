#!/usr/bin/env python3
"""`ollama` command for the stub image (tests only): `ollama list` and `ollama pull MODEL`,
talking to the server over its HTTP API like the real client, so the stack's healthcheck
(`ollama list`) and `docker compose exec ollama ollama pull MODEL` work unchanged on the stub.

The server address comes from OLLAMA_HOST (host:port; 0.0.0.0 means this machine), as in Ollama.
Exit status 0 on success, 1 with a message on stderr otherwise.
"""
from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def base_url() -> str:
    host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434").strip() or "127.0.0.1:11434"
    host = host.split("://", 1)[-1]
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "11434")
    if name in ("", "0.0.0.0", "::", "[::]"):
        name = "127.0.0.1"
    return f"http://{name}:{port or '11434'}"


def fail(msg: str) -> int:
    print(f"Error: {msg}", file=sys.stderr)
    return 1


def cmd_list() -> int:
    try:
        with urllib.request.urlopen(base_url() + "/api/tags", timeout=5) as r:
            models = json.load(r).get("models", [])
    except (OSError, ValueError) as e:
        return fail(f"could not connect to ollama server: {e}")
    print(f"{'NAME':<32}{'ID':<16}{'SIZE':<10}MODIFIED")
    for m in models:
        size = f"{m.get('size', 0) / 1e9:.1f} GB"
        print(f"{m.get('name', ''):<32}{str(m.get('digest', ''))[:12]:<16}{size:<10}{m.get('modified_at', '')}")
    return 0


def cmd_pull(model: str) -> int:
    req = urllib.request.Request(
        base_url() + "/api/pull",
        data=json.dumps({"model": model, "stream": True}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            for line in r:
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev.get("error"):
                    return fail(ev["error"])
                status = ev.get("status", "")
                if ev.get("total"):
                    status += f" {ev.get('completed', 0)}/{ev['total']}"
                print(status, file=sys.stderr)
                if ev.get("status") == "success":
                    return 0
    except urllib.error.HTTPError as e:
        try:
            return fail(json.loads(e.read()).get("error", str(e)))
        except ValueError:
            return fail(str(e))
    except (OSError, ValueError) as e:
        return fail(f"could not connect to ollama server: {e}")
    return fail("the pull ended without success")


def main(argv: list[str]) -> int:
    if argv[:1] in (["list"], ["ls"]) and len(argv) == 1:
        return cmd_list()
    if argv[:1] == ["pull"] and len(argv) == 2:
        return cmd_pull(argv[1])
    print("usage: ollama list | ollama pull MODEL  (stub: only these two commands)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
