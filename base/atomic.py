"""Files: their content hash (file_sha256, recorded in bundles, checkpoints and reports), and
atomic writes, the one mechanism every writer uses (bundles, NIR graphs, checkpoints,
figures, reports, JSON results): write to a temporary file in the target's folder, fsync, then
os.replace, so a reader (or a kill -9) sees either the whole new file or the previous one.

os.replace swaps directory entries, so it is only ever done over a regular file (or nothing):
a character device (/dev/null, /dev/full), a FIFO, a socket or "-" as a target is refused,
never replaced. A symlink to a regular file is followed (the link stays, its target is
replaced). Temporary files are named .<name>.tmp<PID>; ones left by a killed process (its PID
gone) are removed the next time that target is written (clean_stale_temps)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError

NAME_MAX = 255      # bytes in one file name on every file system we write to (ext4, xfs, tmpfs)
_TMP = re.compile(r"^\.(?P<stem>.*)\.tmp(?P<pid>\d+)$")


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def regular_input(path: str | Path, what: str) -> Path:
    """path, checked to be an existing regular file (after symlinks): a FIFO or a device given
    as an input would block forever or read garbage, so it is refused by name."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):     # the latter: a file as a folder
        raise UserError(f"{what} {str(path)!r} does not exist") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {str(path)!r}: {err.strerror or err}") from None
    kind = _kind(mode)
    if kind is not None:
        raise UserError(f"{what} {str(path)!r} is {kind}, expected a regular file")
    return path


def _target(path: Path, what: str) -> Path:
    """The regular file (or free name) an atomic write may replace; anything else refused."""
    if str(path) == "-":
        raise UserError(f"cannot write {what} to '-' (standard output): give a file path")
    if path.is_symlink() and path.exists():
        path = Path(os.path.realpath(path))
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path
    except OSError as err:
        raise UserError(f"cannot write {what} {str(path)!r}: {err.strerror or err}") from None
    kind = _kind(mode)
    if kind == "a folder":
        raise UserError(f"cannot write {what} {str(path)!r}: it is a folder")
    if kind is not None:
        raise UserError(f"cannot write {what} {str(path)!r}: it is {kind}, not a regular file "
                        "(an atomic write replaces only regular files)")
    return path


def temp_name(path: Path) -> Path:
    """The temporary file for `path` in its folder. A name near the 255-byte limit gets a
    shortened one (stem cut, plus a hash of the whole name so two long names never share it)."""
    name = f".{path.name}.tmp{os.getpid()}"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:12]
        name = f".{path.name[:100]}~{digest}.tmp{os.getpid()}"
    return path.with_name(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | Path, name: str | None = None) -> list[Path]:
    """Delete temporary files in `folder` (of target `name`, or of any target) whose writer
    process is gone: a kill -9 mid-write leaves one, and nothing else would ever remove it."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    own = temp_name(folder / name).name if name else None
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        if not m or int(m["pid"]) == os.getpid() or _alive(int(m["pid"])):
            continue
        if own is not None and _TMP.match(own)["stem"] != m["stem"]:
            continue
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
    return removed


def _check_parents(path: Path, what: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot write {what} {str(path)!r}: {str(parent)!r} is a file, "
                                "not a folder")
            return
        if parent.is_symlink():     # a dangling link as a folder
            raise UserError(f"cannot write {what} {str(path)!r}: {str(parent)!r} is a broken "
                            "link")


def _write_failure(err: BaseException) -> str | None:
    """A writer's failure that is the file system's fault, in one line; None for anything else
    (a bug). torch.save reports a full disk or an unwritable file as a RuntimeError."""
    if isinstance(err, OSError):
        return (err.strerror or str(err) or type(err).__name__).splitlines()[0]
    text = " ".join(str(err).split())
    if isinstance(err, RuntimeError) and re.search(
            r"file write failed|unexpected pos|cannot be opened|PytorchStreamWriter", text):
        return text
    return None


def _disk_full(folder: Path) -> bool:
    """Whether the folder's file system has (almost) no room left: torch's message for a full
    disk ("unexpected pos 448 vs 342") does not say so."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


def hdf5_bytes(arrays) -> int:
    """A generous size estimate of an HDF5 file holding `arrays` (data plus 1 MiB of metadata)."""
    return sum(np.asarray(a).nbytes for a in arrays) + (1 << 20)


def check_room(path: Path, what: str, need: int) -> None:
    """Refuse before writing when the folder's file system lacks twice `need` bytes: libhdf5
    can crash (SIGSEGV) instead of raising when a write hits a full disk."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free < 2 * need:
        raise UserError(f"cannot write {what} {str(path)!r}: No space left on device (needs "
                        f"{2 * need // 1024} KiB free to write safely, {free // 1024} KiB free)")


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str, need_bytes: int | None = None):
    """Yield a temporary path in path's folder to write `what` to; on success fsync it and
    rename it to `path` (os.replace), on any failure (an exception, Ctrl-C) delete it: `path`
    is either the whole new file or untouched. File system errors (read-only folder, full
    disk, name too long) become one-line UserErrors naming the file. need_bytes: the size the
    writer may need (HDF5 writers: hdf5_bytes), checked against the free space first."""
    path = _target(Path(path), what)
    _check_parents(path, what)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {what} {str(path)!r}: cannot create its folder "
                        f"({err.strerror or err})") from None
    if need_bytes is not None:
        check_room(path, what, need_bytes)
    clean_stale_temps(path.parent, path.name)
    tmp = temp_name(path)
    try:
        try:
            # created before the writer runs: a read-only folder or a full inode table fails
            # here as an OSError, whatever library the writer uses
            with open(tmp, "wb"):
                pass
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as err:
            why = _write_failure(err)
            if why is None:
                raise
            if _disk_full(path.parent) and "space" not in why:
                why = f"No space left on device ({why})"
            raise UserError(f"cannot write {what} {str(path)!r}: {why}") from None
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
