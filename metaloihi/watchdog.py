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
# a Lava run in which no process (workers, host minus this thread) used any CPU for this long
# is stuck: e.g. a worker that could not allocate under `ulimit -v` left the others waiting
STALL_S = float(os.environ.get("METALOIHI_STALL_S", "60"))
STALL_CPU_S = 0.02
PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def memory_limit() -> str:
    """The address-space limit (ulimit -v) in words, when one is set ("" otherwise): the usual
    reason a MemoryError, a dead or a stalled worker comes long before the machine is full."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return ""
    return f" (address-space limit `ulimit -v` {soft // 1024} KiB = {soft / 2 ** 30:.1f} GiB)"


def cpu_seconds(path: Path) -> float:
    """utime + stime of a /proc stat file (a process's or one thread's), 0 if it is gone."""
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


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


def _memory_hint() -> str:
    limit = memory_limit()
    return (f"; under the {limit.strip(' ()')} a Lava worker that cannot allocate memory dies "
            "or stalls: raise the limit") if limit else ""


class Watchdog:
    def __init__(self, grace: float = GRACE_S, poll: float = POLL_S, active=lava_active):
        self.grace, self.poll, self.active = grace, poll, active
        self.segments: set[str] = set()
        self.lava_pids: set[int] = set()     # descendants seen mapping /dev/shm: Lava's
        self._dead_since: dict[int, float] = {}
        self._cpu: tuple[float, float] | None = None     # (CPU seconds seen, when it last grew)
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
                           f"would wait for it forever; stopped the run after {self.grace:g} s"
                           + _memory_hint())
        self._check_progress(me, now)

    def _check_progress(self, me: int, now: float) -> None:
        """Abort a Lava run in which nothing has used CPU for STALL_S seconds."""
        alive = [p for p in self.lava_pids if state(p) not in (None, "Z")]
        if not alive:                   # no run under way (or a dead worker: handled above)
            self._cpu = None
            return
        used = sum(cpu_seconds(PROC / str(p) / "stat") for p in alive)
        used += cpu_seconds(PROC / str(me) / "stat") - cpu_seconds(
            PROC / str(me) / "task" / str(threading.get_native_id()) / "stat")
        if self._cpu is None or abs(used - self._cpu[0]) > STALL_CPU_S:
            self._cpu = (used, now)
        elif now - self._cpu[1] >= STALL_S:
            self.abort(f"the Lava run made no progress for {STALL_S:g} s (every process asleep)"
                       + (_memory_hint() or "; a worker may have failed to start"))

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
