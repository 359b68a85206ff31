"""The column store on disk, under APP_STATE_DIR/cache (never next to the client data).

One directory per file identity (path, inode, size, mtime, a hash of the first and last 64 KiB,
the profile and this format's version), one .npy file per array. Loading memory-maps the arrays,
so a restart on the same file is ready in milliseconds and its pages are shared with the OS cache
instead of copied. A wipe removes the app_state volume, and with it these files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .columnar import ColumnarStore
from .rollups import Rollups

FORMAT_VERSION = 2
PREFIX = "dashboard-"


def cache_key(ds) -> str:
    h = hashlib.sha256()
    st = os.stat(ds.path)
    h.update(str(Path(ds.path).resolve()).encode())
    h.update(repr((ds.fp, st.st_ino)).encode())
    size = ds.fp[0]
    with open(ds.path, "rb") as f:
        h.update(f.read(65536))
        if size > 65536:
            f.seek(max(0, size - 65536))
            h.update(f.read(65536))
    h.update(json.dumps(asdict(ds.profile), sort_keys=True, default=str).encode())
    h.update(str(FORMAT_VERSION).encode())
    return h.hexdigest()[:32]


def cache_dir(state_dir: str, key: str) -> Path:
    return Path(state_dir) / "cache" / f"{PREFIX}{key}"


def load(path: Path, profile) -> ColumnarStore | None:
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())

    def arr(name: str) -> np.ndarray:
        return np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)

    dims, cols = meta["dims"], meta["measure_columns"]
    rollups = Rollups(meta["day0"], {d: arr(f"rollup_{i}") for i, d in enumerate(dims)}, cols)
    return ColumnarStore(
        profile, arr("day"), {d: arr(f"dim_{i}") for i, d in enumerate(dims)}, meta["values"],
        {c: arr(f"m_{i}") for i, c in enumerate(cols)}, set(meta["int_measures"]), meta["has_null"], rollups,
    )


def save(path: Path, store: ColumnarStore) -> None:
    """Written to a temporary directory renamed into place, so a crash never leaves half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    dims, cols = list(store.codes), list(store.meas)
    np.save(tmp / "day.npy", store.day)
    for i, d in enumerate(dims):
        np.save(tmp / f"dim_{i}.npy", store.codes[d])
        np.save(tmp / f"rollup_{i}.npy", store.rollups.cubes[d])
    for i, c in enumerate(cols):
        np.save(tmp / f"m_{i}.npy", store.meas[c])
    meta = {"dims": dims, "measure_columns": cols, "values": store.values, "int_measures": sorted(store.int_measures),
            "has_null": store.has_null, "day0": store.rollups.day0}
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    remove_others(path)


def remove_others(keep: Path) -> None:
    """Caches of earlier files (or formats) are dead weight in the state volume."""
    for old in keep.parent.glob(f"{PREFIX}*"):
        if old == keep:
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
