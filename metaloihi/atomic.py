"""Files: their content hash (file_sha256, recorded in bundles, checkpoints and reports), and
atomic writes, the one mechanism every writer uses (bundles, NIR graphs, checkpoints,
figures, reports, JSON results): write to a temporary file in the target's folder, fsync, then
os.replace, so a reader (or a kill -9) sees either the whole new file or the previous one."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from metaloihi.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str):
    """Yield a temporary path in path's folder to write `what` to; on success fsync it and
    rename it to `path` (os.replace), on any failure (an exception, Ctrl-C) delete it: `path`
    is either the whole new file or untouched. File system errors become one-line UserErrors
    naming the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {what} {str(path)!r}: it is a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {what} {str(path)!r}: {str(parent)!r} is a file, "
                                "not a folder")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {what} {str(path)!r}: cannot create its folder "
                        f"({err.strerror or err})") from None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        try:
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as err:
            first = (err.strerror or str(err) or type(err).__name__).splitlines()[0]
            raise UserError(f"cannot write {what} {str(path)!r}: {first}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes, what: str = "file") -> Path:
    """data -> path, atomically."""
    with atomic_path(path, what) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
