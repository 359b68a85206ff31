"""Ollama client: /api/chat (streaming NDJSON or single JSON), /api/tags, /api/version."""
from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
import httpx

from .core.config import Settings

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "sql": {"type": "string"},
        "chart_type": {"type": "string", "enum": ["bar", "line", "pie", "scatter", "table", "kpi"]},
        "x": {"type": "string"},
        "y": {"type": "string"},
        "title": {"type": "string"},
    },
    "required": ["sql", "chart_type", "x", "y", "title"],
}


class LLMError(Exception):
    """Base class; `message` is safe to show to the user (no data in it)."""

    status = 200

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LLMUnavailable(LLMError):
    status = 503


class ModelNotFound(LLMError):
    status = 503


class LLMTimeout(LLMError):
    pass


class LLMBadOutput(LLMError):
    pass


@dataclass
class ChatAnswer:
    content: str
    done_reason: str | None


def model_matches(wanted: str, present: str) -> bool:
    def norm(n: str) -> str:
        return n if ":" in n else n + ":latest"

    return norm(wanted) == norm(present)


def pull_hint(model: str) -> str:
    return f"model \"{model}\" is not available in Ollama: pull it first (ollama pull {model})"


class OllamaClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.s = settings
        self.base = settings.ollama_base_url.rstrip("/")
        self.model = settings.ollama_model
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        # One client (connection pool, TLS context) for the app's lifetime: creating one per call
        # costs several milliseconds.
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(base_url=self.base, transport=self._transport,
                                           limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30))
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def tags(self, timeout: float) -> list[str]:
        with anyio.fail_after(timeout + 0.2):
            r = await self._client().get("/api/tags", timeout=httpx.Timeout(timeout))
        r.raise_for_status()
        return [m.get("name") or m.get("model") for m in r.json().get("models", [])]

    async def version(self, timeout: float) -> str | None:
        with anyio.fail_after(timeout + 0.2):
            r = await self._client().get("/api/version", timeout=httpx.Timeout(timeout))
        r.raise_for_status()
        return r.json().get("version")

    def _payload(self, messages: list[dict], stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": messages,
            "stream": stream,
            "format": ANSWER_SCHEMA,
            "options": {"temperature": 0, "num_ctx": self.s.llm_num_ctx},
        }

    async def chat(self, messages: list[dict]) -> ChatAnswer:
        """One chat call; raises LLMError subclasses with user-safe messages."""
        stream = self.s.llm_stream
        budget = self.s.llm_timeout
        timeout = httpx.Timeout(budget, connect=min(5.0, budget))
        try:
            with anyio.fail_after(budget):
                c = self._client()
                if stream:
                    return await self._chat_stream(c, messages, timeout)
                else:
                    r = await c.post("/api/chat", json=self._payload(messages, False), timeout=timeout)
                    self._raise_for_status(r.status_code, r.content)
                    data = _json(r.content)
                    if "error" in data:
                        raise LLMBadOutput(f"the model returned an error: {_short(data['error'])}")
                    return ChatAnswer(content=(data.get("message") or {}).get("content", ""), done_reason=data.get("done_reason"))
        except TimeoutError:
            raise LLMTimeout(f"the model did not answer within {budget:g} s (LLM_TIMEOUT)") from None
        except httpx.TimeoutException:
            raise LLMTimeout(f"the model did not answer within {budget:g} s (LLM_TIMEOUT)") from None
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"the model server at {self.base} is not reachable ({type(exc).__name__})") from None

    async def _chat_stream(self, c: httpx.AsyncClient, messages: list[dict], timeout: httpx.Timeout) -> ChatAnswer:
        parts: list[str] = []
        done_reason = None
        async with c.stream("POST", "/api/chat", json=self._payload(messages, True), timeout=timeout) as r:
            if r.status_code != 200:
                body = await r.aread()
                self._raise_for_status(r.status_code, body)
            async for line in r.aiter_lines():
                line = line.strip()
                if not line:
                    continue
                data = _json(line.encode())
                if "error" in data:
                    raise LLMBadOutput(f"the model failed while answering: {_short(data['error'])}")
                msg = data.get("message") or {}
                parts.append(msg.get("content") or "")
                if data.get("done"):
                    done_reason = data.get("done_reason")
                    break
            else:
                if done_reason is None:
                    raise LLMBadOutput("the model's answer ended early (no final message)")
        return ChatAnswer(content="".join(parts), done_reason=done_reason)

    def _raise_for_status(self, status: int, body: bytes) -> None:
        if status == 200:
            return
        err = ""
        try:
            err = str(json.loads(body).get("error", ""))
        except (ValueError, AttributeError):
            pass
        if status == 404 and "not found" in err:
            raise ModelNotFound(pull_hint(self.model))
        raise LLMUnavailable(f"the model server answered HTTP {status}: {_short(err) or 'no detail'}")


def _json(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except ValueError:
        raise LLMBadOutput("the model server sent a response that is not JSON") from None
    if not isinstance(data, dict):
        raise LLMBadOutput("the model server sent an unexpected response")
    return data


def _short(s: str) -> str:
    return str(s)[:200]
