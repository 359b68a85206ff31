from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from ..copilot import Copilot, example_questions
from ..core.database import NoDataError
from ..llm import LLMError, model_matches, pull_hint

router = APIRouter(prefix="/api/chat")


class Turn(BaseModel):
    role: str
    content: str = ""


class ChatRequest(BaseModel):
    question: str = ""
    history: list[Turn] | None = None


@router.get("/test")
async def chat_test(request: Request):
    st = request.app.state
    s = st.settings
    out = {"ok": False, "reachable": False, "model": s.ollama_model, "model_present": False, "version": None, "error": None}
    try:
        names = await st.llm.tags(min(5.0, s.llm_timeout))
        out["reachable"] = True
        out["version"] = await st.llm.version(min(5.0, s.llm_timeout))
    except Exception as exc:
        out["error"] = f"the model server at {s.ollama_base_url} is not reachable ({type(exc).__name__})" if not out["reachable"] \
            else f"the model server answered unexpectedly ({type(exc).__name__})"
        return out
    out["model_present"] = any(model_matches(s.ollama_model, n) for n in names if n)
    if not out["model_present"]:
        out["error"] = pull_hint(s.ollama_model)
    out["ok"] = out["model_present"]
    return out


@router.get("/examples")
async def examples(request: Request):
    try:
        ds = await asyncio.to_thread(request.app.state.datasets.get)
    except NoDataError as exc:
        raise HTTPException(503, str(exc)) from None
    return {"questions": example_questions(ds)}


@router.post("/")
@router.post("", include_in_schema=False)
async def chat(body: ChatRequest, request: Request):
    question = body.question.strip()
    if not question:
        raise HTTPException(422, "question must not be empty")
    if len(question) > 2000:
        raise HTTPException(422, "question is too long (2000 characters at most)")
    st = request.app.state
    try:
        ds = await asyncio.to_thread(st.datasets.get)
    except NoDataError as exc:
        raise HTTPException(503, str(exc)) from None
    history = [t.model_dump() for t in body.history or []]
    try:
        result = await Copilot(st.settings, ds, st.llm).answer(question, history)
    except LLMError as exc:
        if exc.status == 503:
            raise HTTPException(503, exc.message) from None
        return {"sql": None, "columns": [], "rows": [], "row_count": 0, "truncated": False,
                "chart": {"type": "table", "x": None, "y": None, "series": None}, "title": None, "error": exc.message}
    await asyncio.to_thread(st.history.record, question, result)
    return result.public()


@router.get("/history")
async def history(request: Request, limit: int = 50):
    items = await asyncio.to_thread(request.app.state.history.recent, max(1, min(limit, 200)))
    return {"items": items}
