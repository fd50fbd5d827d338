"""A training run's folder (`metaloihi train --out`): one writer at a time, nothing of an earlier
run replaced unless asked, and a signal ends training at a checkpoint.

- claim(): a fresh run refuses a folder that already holds files unless overwrite (it then
  removes the earlier run's own files, RUN_FILES, and nothing else); --resume needs last.pt.
- The lock is an flock on <out>/.lock, held for the whole run: a second `train` on the same
  folder gets a one-line error naming the holder's PID. The kernel drops an flock when its
  process dies, so a lock file left by a kill -9 is stale by construction and simply taken over.
- GracefulStop: SIGINT/SIGTERM/SIGHUP while meta-training is at work (armed) finish the current
  iteration, save last.pt and stop; before that (stage 1, the first iteration) or on a second
  signal they abort at once (Interrupted).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import signal
import socket
import sys
from pathlib import Path

from metaloihi.base.atomic import clean_stale_temps
from metaloihi.base.errors import Interrupted, UserError

RUN_FILES = ("last.pt", "best.pt", "stage1.pt", "metrics.jsonl")
LOCK = ".lock"


class RunLock:
    """An flock held on <folder>/.lock (released by release(), or by the kernel at exit)."""

    def __init__(self, folder: Path):
        self.path = folder / LOCK
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EACCES):
                    raise UserError(f"run folder {str(self.path.parent)!r} is in use by another "
                                    f"`metaloihi train` ({self._holder()}); wait for it to end "
                                    f"or stop it (lock file {str(self.path)!r})") from None
                raise UserError(f"run folder {str(self.path.parent)!r}: cannot lock "
                                f"{str(self.path)!r} ({err.strerror or err})") from None
            # the file may have been unlinked by a releasing holder between our open and
            # flock: then our lock is on a dead inode, and we try again on the new file
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        os.ftruncate(fd, 0)
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {now}\n".encode())
        return self

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "pid unknown"
        except OSError:
            return "pid unknown"

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()          # while still held: nobody can take a lock on it now
        os.close(self.fd)
        self.fd = None


def _present(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK)


@contextlib.contextmanager
def claimed(out: str | Path, resume: bool, overwrite: bool, primary: bool = True):
    """Hold run folder `out` for one training run (see the module doc). primary: the process
    that writes (rank 0 under torchrun); the others check nothing and hold nothing. If the run
    fails before writing anything, a folder it created is removed again (no empty leftovers)."""
    if not primary:
        yield None
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"run folder {str(out)!r} is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create run folder {str(out)!r} ({err.strerror or err})") from None
    lock = RunLock(out)
    try:
        lock.acquire()
        clean_stale_temps(out)
        _check(out, resume, overwrite)
        yield lock
    except BaseException:
        lock.release()
        if created and out.is_dir() and not _present(out):
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    lock.release()


def _check(out: Path, resume: bool, overwrite: bool) -> None:
    """The folder may be written: --resume has a last.pt; a fresh run has an empty folder, or
    overwrite (the earlier run's files are removed first: a shorter new run must not leave a
    stale best.pt or stage1.pt beside its own)."""
    if resume:
        last = out / "last.pt"
        if not last.is_file():
            raise UserError(f"--resume: {str(last)!r} does not exist, nothing to resume (start "
                            "a new run with --overwrite)")
        return
    present = _present(out)
    if present and not overwrite:
        shown = ", ".join(present[:4]) + (", ..." if len(present) > 4 else "")
        raise UserError(f"run folder {str(out)!r} is not empty ({shown}): continue that run "
                        "with --resume, or replace it with --overwrite")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def _interrupted(signum: int) -> Interrupted:
    """A signal that ends the run at once (nothing saved beyond the last checkpoint)."""
    return Interrupted(f"{signal.Signals(signum).name}: training stopped at once; the "
                       "checkpoints written before stay")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class GracefulStop:
    """Context manager: while inside, STOP_SIGNALS are caught. The training loop polls
    requested() once per iteration; the first poll arms it."""

    def __init__(self):
        self.signum: int | None = None
        self.armed = False
        self._old: dict = {}

    def __enter__(self) -> "GracefulStop":
        try:
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:      # not the main thread: signals stay as they are
            self._restore()
        return self

    def __exit__(self, *exc) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum, frame) -> None:
        if not self.armed or self.signum is not None:
            raise _interrupted(signum)
        self.signum = signum
        print(f"{signal.Signals(signum).name}: finishing this iteration and saving last.pt "
              "(signal again to stop at once)", file=sys.stderr, flush=True)

    def requested(self) -> bool:
        """Whether a signal asked the run to stop (then checkpoint and stop)."""
        self.armed = True
        return self.signum is not None

    @property
    def reason(self) -> str | None:
        return None if self.signum is None else f"signal {signal.Signals(self.signum).name}"
