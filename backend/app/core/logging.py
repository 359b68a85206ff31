"""Operational logging only: method, path, status, timings, error classes.

Query strings are never logged (dashboard filters carry data values); uvicorn's access log is
replaced by `AccessLogMiddleware` for that reason.
"""
from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("munero.access")


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
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def _send(msg):
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, _send)
        finally:
            log.info("%s %s %d %.1fms", scope.get("method"), scope.get("path"), status["code"], (time.perf_counter() - t0) * 1000)
