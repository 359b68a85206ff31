from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..core.database import NoDataError
from ..llm import OllamaClient, model_matches

router = APIRouter()


class LLMProbe:
    """Cached /api/tags probe with a short timeout, so /health answers fast even if Ollama hangs."""

    def __init__(self, settings):
        self.s = settings
        self._at = 0.0
        self._value: dict | None = None
        self._lock = asyncio.Lock()

    async def get(self, client: OllamaClient) -> dict:
        now = time.monotonic()
        if self._value is not None and now - self._at < self.s.health_cache_seconds:
            return self._value
        async with self._lock:
            if self._value is not None and time.monotonic() - self._at < self.s.health_cache_seconds:
                return self._value
            value = {"ok": False, "model": self.s.ollama_model, "model_present": False}
            try:
                names = await client.tags(self.s.health_probe_timeout)
                present = any(model_matches(self.s.ollama_model, n) for n in names if n)
                value = {"ok": present, "model": self.s.ollama_model, "model_present": present}
            except Exception:
                pass
            self._value, self._at = value, time.monotonic()
            return value


@router.get("/health")
async def health(request: Request):
    st = request.app.state
    db = {"ok": False, "tables": 0}
    try:
        ds = await asyncio.to_thread(st.datasets.get)
        db = {"ok": True, "tables": len(ds.tables)}
    except NoDataError:
        pass
    llm = await st.llm_probe.get(st.llm)
    ok = db["ok"] and llm["ok"]
    return JSONResponse({"status": "ok" if ok else "degraded", "db": db, "llm": llm}, status_code=200 if ok else 503)


@router.get("/health/live")
async def live():
    """Liveness only (the process serves HTTP); used by the container HEALTHCHECK."""
    return {"status": "alive"}
