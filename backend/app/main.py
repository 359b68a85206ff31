"""Application factory."""
from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from .core.config import Settings, get_settings
from .core.database import NoDataError
from .core.logging import AccessLogMiddleware, setup_logging
from .dataset import DatasetManager
from .history import ChatHistory
from .llm import OllamaClient
from .routers import chat, dashboard, health
from .routers.health import LLMProbe

log = logging.getLogger("munero.app")


def create_app(settings: Settings | None = None, llm_transport=None) -> FastAPI:
    settings = settings or get_settings()
    setup_logging(settings.debug)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load the profile and start the dashboard cache in the background; a missing file is fine.
        def warm():
            try:
                app.state.datasets.get()
            except NoDataError:
                log.info("no data loaded yet")
            except Exception as exc:
                log.warning("dataset not loaded: %s", type(exc).__name__)

        threading.Thread(target=warm, name="warm", daemon=True).start()
        yield
        await app.state.llm.aclose()
        app.state.history.close()

    app = FastAPI(title="Munero backend", version="1.0.0", debug=False, lifespan=lifespan)
    app.state.settings = settings
    app.state.datasets = DatasetManager(settings)
    app.state.llm = OllamaClient(settings, transport=llm_transport)
    app.state.llm_probe = LLMProbe(settings)
    app.state.history = ChatHistory(settings.app_state_dir)

    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["GET", "POST"],
                           allow_headers=["*"])
    app.add_middleware(AccessLogMiddleware, debug_log_prompts=settings.debug_log_prompts)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)

    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.include_router(chat.router)
    return app
