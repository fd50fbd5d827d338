"""Subprocesses in tests end: a test that can hang is a defect. `run` is subprocess.run with a
timeout that is not optional; past it the child, everything it started (torchrun's workers
start their own sessions, Lava's workers are forked) and its process group are killed, and the
test fails with a line naming the command, the limit and the end of its output. `finish` does
the same for a Popen a test drives itself; `free_port` gives a TCP port nothing listens on."""
from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest


def free_port() -> int:
    """A port the OS hands out as free (bind to port 0): for torchrun's rendezvous, so that
    two test runs, or a port left in TIME_WAIT, never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the child, its descendants (found before the child dies: orphans are
    reparented) and, when it leads one, its process group."""
    from metaloihi.watchdog import descendants
    pids = [*descendants(proc.pid), proc.pid]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _tail(text, n: int = 2000) -> str:
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text[-n:]


def finish(proc: subprocess.Popen, timeout: float, what: str = "") -> tuple:
    """proc.communicate(timeout=timeout); past the limit the process tree is killed and the
    test fails naming `what` (default: the command) and the output's end."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        try:            # a grandchild outside the group could still hold the pipes
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out = err = None
        args = proc.args if isinstance(proc.args, str) else " ".join(map(str, proc.args))
        pytest.fail(f"{what or args} did not finish within {timeout:g} s (killed with its "
                    f"processes)\n--- stdout tail ---\n{_tail(out)}\n--- stderr tail ---\n"
                    f"{_tail(err)}", pytrace=False)


def run(cmd, *, timeout: float, check: bool = False, capture_output: bool = False,
        what: str = "", **kw) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, timeout=...) whose timeout fails the test (see `finish`). The child
    leads a new session, so the kill reaches whatever it started."""
    if capture_output:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(cmd, start_new_session=True, **kw)
    try:
        out, err = finish(proc, timeout, what)
    finally:
        if proc.poll() is None:         # an interrupt (Ctrl-C) while waiting
            _kill_tree(proc)
            proc.wait(timeout=30)
    res = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check:
        res.check_returncode()
    return res
