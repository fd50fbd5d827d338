"""On-disk cache of generated frame arrays: deterministic bytes, atomic writes, versioned names.

Format (".mlf"): magic line, 8-byte little-endian header length, a JSON header listing each
array's name, dtype, shape and byte offset, then the raw C-order arrays. Unlike np.savez (a zip
with timestamps) the same arrays always give the same bytes, so "same seed -> same file" is
checkable with a hash. Files are written to a temporary name in the cache folder and moved into
place with os.replace, so a killed run never leaves a half-written cache behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from metaloihi.base.errors import UserError

MAGIC = b"METALOIHI-FRAMES-1\n"


def cache_dir() -> Path:
    """$METALOIHI_CACHE, else ~/.cache/metaloihi (created on demand)."""
    env = os.environ.get("METALOIHI_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "metaloihi"
    if path.exists() and not path.is_dir():
        raise UserError(f"cache folder {str(path)!r} ({'$METALOIHI_CACHE' if env else 'default'}) "
                        "exists and is not a folder; point METALOIHI_CACHE at a folder")
    return path


def cache_key(params: dict) -> str:
    """A short stable hash of JSON-able parameters (generator version included by callers)."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
    """Write arrays (+ JSON meta) atomically to path; returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries, offset = [], 0
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        entries.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape),
                        "offset": offset})
        offset += arr.nbytes
    header = json.dumps({"arrays": entries, "meta": meta or {}}, sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(len(header).to_bytes(8, "little"))
            f.write(header)
            for arr in arrays.values():
                f.write(np.ascontiguousarray(arr).tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by save_arrays -> (arrays, meta); UserError if it is not one."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: cannot read cache file ({err.strerror})") from None
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 8:
        raise UserError(f"{path}: not a metaloihi frame cache (bad magic); delete it")
    start = len(MAGIC) + 8
    n = int.from_bytes(data[len(MAGIC):start], "little")
    try:
        header = json.loads(data[start:start + n])
    except ValueError:
        raise UserError(f"{path}: corrupt cache header; delete it") from None
    body = start + n
    arrays = {}
    try:                                  # a valid magic with a damaged header: rebuilt too
        entries = [(str(e["name"]), np.dtype(e["dtype"]), [int(d) for d in e["shape"]],
                    int(e["offset"])) for e in header["arrays"]]
        meta = dict(header["meta"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: corrupt cache header; delete it") from None
    for name, dtype, shape, offset in entries:
        if min(shape, default=0) < 0 or offset < 0:
            raise UserError(f"{path}: corrupt cache header (array {name!r}: shape {shape}, "
                            f"offset {offset}); delete it")
        count = int(np.prod(shape, dtype=np.int64))
        end = body + offset + count * dtype.itemsize
        if end > len(data):
            raise UserError(f"{path}: truncated cache file ({len(data)} bytes, array "
                            f"{name!r} needs {end}); delete it")
        arrays[name] = np.frombuffer(data, dtype, count, body + offset).reshape(shape)
    return arrays, meta


def cached(name: str, params: dict, build: Callable[[], tuple[dict, dict]],
           use_cache: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Load <cache>/<name>-<hash(params)>.mlf, or build() -> (arrays, meta), save and return.

    params must include everything the bytes depend on (generator version, seed, sizes)."""
    if not use_cache:
        return build()
    path = cache_dir() / f"{name}-{cache_key(params)}.mlf"
    if path.exists():
        try:
            return load_arrays(path)
        except UserError:
            pass  # a damaged cache is rebuilt, not fatal
    arrays, meta = build()
    save_arrays(path, arrays, meta)
    return arrays, meta
