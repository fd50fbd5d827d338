"""A watchdog for Lava runs: Lava's multiprocessing runtime waits forever when one of its worker
processes dies (e.g. killed by the OS under `ulimit -v`), and a SIGTERM to the main process
used to leave its workers (~385 MB each) and their /dev/shm segments behind.

While a command runs (`metaloihi.cli.guarded` holds one), a daemon thread polls this process's
descendants every POLL_S seconds, once Lava is imported: it records the /dev/shm segments they
map, and a worker that has died and stayed unreaped (a zombie) for GRACE_S seconds (Lava joins
its workers at once when it stops them itself) ends the run: every descendant is killed, the
recorded segments are unlinked, one line is printed, exit 1. reap() does the same cleanup for
an interrupted run (SIGINT/SIGTERM/SIGHUP). Linux only (/proc); elsewhere it does nothing.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

GRACE_S = 10.0
POLL_S = 0.5
PROC = Path("/proc")


def lava_active() -> bool:
    return "lava.magma.runtime.runtime" in sys.modules


def children(pid: int) -> list[int]:
    """Direct children of pid (all its threads')."""
    out: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            out += [int(p) for p in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], children(pid)
    while todo:
        p = todo.pop()
        if p not in found:
            found.append(p)
            todo += children(p)
    return found


def state(pid: int) -> str | None:
    """The process state letter ("Z": dead, not yet reaped), None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


def shm_segments(pid: int) -> set[str]:
    """The /dev/shm files a process maps (Lava's channels and shared arrays)."""
    try:
        text = (PROC / str(pid) / "maps").read_text()
    except OSError:
        return set()
    return {line.split(None, 5)[5].replace(" (deleted)", "") for line in text.splitlines()
            if "/dev/shm/" in line and len(line.split(None, 5)) == 6}


def _why(pid: int) -> str:
    """How a dead child ended (reaps it: the run is being torn down anyway)."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return "ended"
    if got == 0:
        return "ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hint = " (the OS's out-of-memory killer, or kill -9?)" if sig == signal.SIGKILL else ""
        return f"was killed by {signal.Signals(sig).name}{hint}"
    return f"exited with code {os.WEXITSTATUS(status)}"


INTERRUPTED = threading.Event()     # set by signals_interrupt (its .name: the signal's)
INTERRUPTED.name = ""


class Watchdog:
    def __init__(self, grace: float = GRACE_S, poll: float = POLL_S, active=lava_active):
        self.grace, self.poll, self.active = grace, poll, active
        self.segments: set[str] = set()
        self.lava_pids: set[int] = set()     # descendants seen mapping /dev/shm: Lava's
        self._dead_since: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Watchdog":
        if PROC.joinpath("self", "task").is_dir():
            self._thread = threading.Thread(target=self._loop, name="metaloihi-watchdog",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            if self.active():
                self.check()

    def check(self, now: float | None = None) -> None:
        """One look at the descendants: record their segments; abort on a dead worker."""
        now = time.monotonic() if now is None else now
        me = os.getpid()
        self._scan(me)
        for pid in children(me):
            if pid not in self.lava_pids or state(pid) != "Z":
                self._dead_since.pop(pid, None)
                continue
            since = self._dead_since.setdefault(pid, now)
            if now - since >= self.grace and INTERRUPTED.is_set():   # a signal to the group
                self.abort(f"aborted ({INTERRUPTED.name}); the Lava run is stopped", "")
            if now - since >= self.grace:
                self.abort(f"a Lava worker process (pid {pid}) {_why(pid)}, and the others "
                           f"would wait for it forever; stopped the run after {self.grace:g} s")

    def _scan(self, me: int) -> None:
        """Record the segments this process and its descendants map, and which are Lava's."""
        self.segments |= shm_segments(me)
        for pid in descendants(me):
            segs = shm_segments(pid)
            if segs:
                self.segments |= segs
                self.lava_pids.add(pid)

    def reap(self, everything: bool = False) -> tuple[int, int]:
        """Kill Lava's processes (descendants seen mapping shared memory, and theirs), unlink
        the recorded segments: (Lava processes killed, segments removed). everything: kill
        every descendant too (this process is about to exit: multiprocessing's resource
        tracker would only warn about the segments removed here)."""
        me = os.getpid()
        self._scan(me)
        procs = [p for p in descendants(me) if p in self.lava_pids]
        procs += [d for p in procs for d in descendants(p) if d not in procs]
        n_lava = len(procs)
        if everything and n_lava:
            procs += [p for p in descendants(me) if p not in procs]
        for pid in procs:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in procs:
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        gone = 0
        for seg in sorted(self.segments):
            with contextlib.suppress(OSError):
                os.unlink(seg)
                gone += 1
        return n_lava, gone

    def abort(self, message: str, prefix: str = "error: ") -> None:
        """Clean up and end this process now with exit 1: the main thread is stuck in Lava."""
        procs, segs = self.reap(everything=True)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.write(2, f"{prefix}{message}; {procs} worker process(es) killed, {segs} shared-memory "
                    f"segment(s) removed\n".encode())
        os._exit(1)


@contextlib.contextmanager
def signals_interrupt():
    """SIGTERM and SIGHUP raise Interrupted in the main thread (as SIGINT raises
    KeyboardInterrupt), so that the command's cleanup runs instead of an instant death that
    orphans Lava's workers."""
    from metaloihi.base.errors import Interrupted
    main = os.getpid()

    def handle(signum, frame):
        if os.getpid() != main:     # a forked Lava worker inherited this: end it quietly (a
            os._exit(128 + signum)  # signal to the process group reaches every worker)
        INTERRUPTED.name = signal.Signals(signum).name
        INTERRUPTED.set()           # the watchdog then reports a stuck run as interrupted
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(f"{signal.Signals(signum).name}")
    old = {}
    INTERRUPTED.clear()
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            old[sig] = signal.signal(sig, handle)
    except ValueError:          # not the main thread
        pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
