"""Operational logging only: method, path, status, timings, error classes.

Query strings are never logged (dashboard filters carry data values); uvicorn's access log is
replaced by `AccessLogMiddleware` for that reason.
"""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("munero.access")
err_log = logging.getLogger("munero.app")


def setup_logging(debug: bool) -> None:
    root = logging.getLogger("munero")
    if not any(getattr(h, "_munero", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        h._munero = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # uvicorn's access log prints the query string: off.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request URL at INFO: keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class AccessLogMiddleware:
    def __init__(self, app, debug_log_prompts: bool = False):
        self.app = app
        self.debug_log_prompts = debug_log_prompts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}
        started = {"v": False}

        async def _send(msg):
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
                started["v"] = True
            await send(msg)

        try:
            await self.app(scope, receive, _send)
        except Exception as exc:
            # Never re-raised: the server would log the message and traceback, which may carry
            # data (SQL, values). The class is logged; the traceback only when prompts may be.
            if self.debug_log_prompts:
                err_log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            else:
                err_log.error("unhandled error on %s %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__)
            if not started["v"]:
                status["code"] = 500
                body = b'{"detail":"internal error"}'
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            log.info("%s %s %d %.1fms", scope.get("method"), scope.get("path"), status["code"], (time.perf_counter() - t0) * 1000)
