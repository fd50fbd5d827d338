"""metaloihi/watchdog.py: a Lava run ends, in one line, however it goes wrong, and leaves no
process or shared memory behind. The stall rule: a run in which no process has used CPU for
STALL_S seconds is ended naming the address-space limit when one is set (a worker that could
not allocate under `ulimit -v` left the others asleep forever); any CPU used, by a worker or
the host, resets the clock. A dead child that is not Lava's is ignored; a dead Lava worker
ends the run; a signal to the command or to its whole process group (Ctrl-C in a terminal,
a CI job's SIGTERM) reaps the workers and their segments, exit 1."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import bounded
from metaloihi import watchdog as wd

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dog(monkeypatch):
    d = wd.Watchdog()
    d.lava_pids = {101, 102}
    cpu = {"t": 5.0}
    monkeypatch.setattr(wd, "state", lambda pid: "S")
    monkeypatch.setattr(wd, "cpu_seconds", lambda path: cpu["t"] if "101" in str(path) else 0.0)
    aborted = []
    monkeypatch.setattr(d, "abort", lambda message, prefix="error: ": aborted.append(message))
    return d, cpu, aborted


def test_no_cpu_for_stall_s_ends_the_run_and_names_the_memory_limit(dog, monkeypatch):
    d, cpu, aborted = dog
    monkeypatch.setattr(wd, "memory_limit", lambda: " (address-space limit `ulimit -v` 4 GiB)")
    d._check_progress(1, now=0.0)
    d._check_progress(1, now=wd.STALL_S - 1)
    assert aborted == []
    d._check_progress(1, now=wd.STALL_S)
    assert len(aborted) == 1 and f"no progress for {wd.STALL_S:g} s" in aborted[0]
    assert "ulimit -v" in aborted[0] and "raise the limit" in aborted[0]


def test_any_cpu_resets_the_clock_and_no_live_worker_is_no_stall(dog, monkeypatch):
    d, cpu, aborted = dog
    monkeypatch.setattr(wd, "memory_limit", lambda: "")
    d._check_progress(1, now=0.0)
    for k in range(1, 6):                        # 0.1 s of CPU every STALL_S - 1 seconds
        cpu["t"] += 0.1
        d._check_progress(1, now=k * (wd.STALL_S - 1))
    assert aborted == []
    d._check_progress(1, now=6 * (wd.STALL_S - 1) + wd.STALL_S)
    assert len(aborted) == 1 and "failed to start" in aborted[0]
    monkeypatch.setattr(wd, "state", lambda pid: None)          # the run ended
    d._check_progress(1, now=1e6)
    assert len(aborted) == 1 and d._cpu is None


# --- real processes -------------------------------------------------------------------
def test_watchdog_ignores_dead_children_that_are_not_lavas(monkeypatch):
    dog = wd.Watchdog(grace=0.0)
    aborted = []
    monkeypatch.setattr(dog, "abort", aborted.append)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while wd.state(child.pid) != "Z" and time.time() < deadline:
        time.sleep(0.05)
    try:
        assert wd.state(child.pid) == "Z"
        dog.check(now=0.0)
        dog.check(now=100.0)
        assert aborted == []                    # not seen mapping shared memory: not Lava's
        dog.lava_pids.add(child.pid)
        dog.check(now=200.0)
        assert len(aborted) == 1 and f"pid {child.pid}" in aborted[0]
        assert "exited with code 0" in aborted[0]
    finally:
        bounded.finish(child, 30, "python -c pass")


def _lava_deploy(bundle: Path) -> tuple[subprocess.Popen, list[int], set[str]]:
    """A long `deploy` of a small bundle in Lava, once its workers are up: (process, Lava's
    processes, the /dev/shm segments they map)."""
    # as a terminal's Ctrl-C reaches it: a test run started in the background (`cmd &` in a
    # non-interactive shell) ignores SIGINT, and the child would inherit that
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", "deploy", str(bundle),
                             "--samples", "500", "--steps", "200"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        lava = [p for p in wd.descendants(proc.pid) if wd.shm_segments(p)]
        if len(lava) >= 3:
            time.sleep(2)
            break
        time.sleep(0.2)
    lava = [p for p in wd.descendants(proc.pid) if wd.shm_segments(p)]
    segments = set().union(*(wd.shm_segments(p) for p in lava)) if lava else set()
    assert lava and segments, "Lava's workers did not start"
    return proc, lava, segments


def _nothing_left(procs: list[int], segments: set[str]) -> None:
    time.sleep(0.5)
    assert [p for p in procs if wd.state(p) not in (None, "Z")] == []
    assert [s for s in segments if os.path.exists(s)] == []


@pytest.mark.lava
def test_a_dead_lava_worker_ends_the_run_with_a_line_and_nothing_left(valid_bundle):
    proc, lava, segments = _lava_deploy(valid_bundle)
    try:
        os.kill(max(lava), signal.SIGKILL)          # as the OS kills one under ulimit -v
        t0 = time.time()
        _, err = bounded.finish(proc, 120, "the deploy whose Lava worker was killed")
    finally:
        proc.kill()
    assert proc.returncode == 1 and time.time() - t0 < 60
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith(f"error: a Lava worker process (pid {max(lava)}) was killed by "
                               "SIGKILL")
    assert "worker process(es) killed" in lines[0] and "segment(s) removed" in lines[0]
    _nothing_left(lava, segments)


@pytest.mark.lava
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_a_lava_run_reaps_its_workers_and_shared_memory(valid_bundle, sig):
    proc, lava, segments = _lava_deploy(valid_bundle)
    try:
        proc.send_signal(sig)
        _, err = bounded.finish(proc, 60, f"the Lava deploy after {signal.Signals(sig).name}")
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("aborted"), err[-3000:]
    assert "Traceback" not in err
    _nothing_left(lava, segments)


# --- a signal to the whole process group ------------------------------------------------
def _shm() -> set:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.lava
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_group_during_a_lava_run_is_one_line_and_leaves_nothing(
        sig, valid_bundle):
    bundle = valid_bundle
    before = _shm()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", "deploy", str(bundle),
                             "--backend", "lava", "--steps", "100000", "--samples", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    deadline = time.monotonic() + 120
    while not (_shm() - before) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)                   # Lava's channels exist: its workers are running
    assert proc.poll() is None, "the run ended before the signal"
    time.sleep(2)
    os.killpg(proc.pid, sig)
    _, err = bounded.finish(proc, 120, "deploy --backend lava after a signal")
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("aborted") and "Traceback" not in err
    assert not (_shm() - before), "shared memory left behind"
    left = bounded.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True,
                       timeout=30)
    assert left.stdout.strip() == "", f"processes left in the session: {left.stdout}"


@pytest.mark.slow                      # 20-74 s alone on 2 cores (dead worker or stall)
@pytest.mark.lava
def test_a_lava_run_under_a_memory_limit_ends_in_one_line_naming_it(valid_bundle):
    """`ulimit -v 4 GiB`: Lava's workers cannot allocate; the run used to sleep forever. The
    watchdog ends it (a dead worker, or no CPU used for METALOIHI_STALL_S) in one line that
    names the limit, and leaves no shared memory."""
    import resource
    bundle = valid_bundle
    before = _shm()
    limit = 4 << 30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
           "METALOIHI_STALL_S": "15"}
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", "deploy", str(bundle),
                             "--backend", "lava", "--steps", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
                            preexec_fn=cap)
    _, err = bounded.finish(proc, 240, "deploy --backend lava under ulimit -v")
    lines = err.strip().splitlines()
    if proc.returncode == 0:
        pytest.skip("Lava ran within 4 GiB of address space here")
    assert proc.returncode == 1 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith("error: ") and "ulimit -v" in lines[0], lines[0]
    assert not (_shm() - before), "shared memory left behind"
