from __future__ import annotations

import os

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request

from ..core.database import NoDataError
from ..dashboard import DashboardService, NotUsable, QueryError

router = APIRouter(prefix="/api/dashboard")


def _dataset(request: Request):
    try:
        return request.app.state.datasets.get()
    except NoDataError as exc:
        raise HTTPException(503, str(exc)) from None


def _service(request: Request) -> DashboardService:
    ds = _dataset(request)
    try:
        return DashboardService(ds)
    except NotUsable as exc:
        raise HTTPException(409, f"the dashboard cannot be shown for this dataset: {exc}") from None


def _call(fn, *args):
    try:
        return fn(*args)
    except QueryError as exc:
        raise HTTPException(422, str(exc)) from None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@router.get("/test")
def test(request: Request):
    ds = _dataset(request)
    table, rows = ds.main_table_rows()
    state = ds.cache_state
    if ds.columnar is not None:
        cache = "ready"
    elif state is not None and state.running:
        cache = "building"  # only while the build thread is at work
    else:
        cache = "off"
    out = {"ok": True, "tables": len(ds.tables), "main_table": table, "rows": rows, "cache": cache}
    if state is not None:
        store = ds.columnar or ds.columnar_partial
        out["cache_build"] = state.public()
        out["cache_store"] = None if store is None else {
            "rows": int(len(store.day)), "dimensions": len(store.codes), "measure_columns": len(store.meas),
            "rollups": store.rollups is not None, "complete": store.complete,
            "bytes": store.nbytes, "memory_mapped": isinstance(store.day, np.memmap)}
        out["process_rss_bytes"] = _rss_bytes()
    return out


@router.get("/profile")
def profile(request: Request):
    return _dataset(request).profile.public()


@router.get("/filters")
def filters(request: Request):
    return _service(request).filters()


@router.get("/kpis")
def kpis(request: Request, start: str | None = None, end: str | None = None, filter: list[str] = Query(default=[])):
    svc = _service(request)
    return _call(svc.kpis, start, end, filter)


@router.get("/timeseries")
def timeseries(request: Request, granularity: str = "day", measure: str | None = None, start: str | None = None,
               end: str | None = None, filter: list[str] = Query(default=[])):
    svc = _service(request)
    return _call(svc.timeseries, granularity, measure, start, end, filter)


@router.get("/top")
def top(request: Request, dimension: str | None = None, measure: str | None = None, n: int = 10,
        start: str | None = None, end: str | None = None, filter: list[str] = Query(default=[])):
    svc = _service(request)
    return _call(svc.top, dimension, measure, n, start, end, filter)
