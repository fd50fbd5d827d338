"""A signal to the whole process group during a Lava run (Ctrl-C in a terminal, a CI job's
SIGTERM) ends the command in one line: Lava's forked workers exit quietly (they inherited the
CLI's handler), the main process or its watchdog reaps them and their shared memory, exit 1."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import bounded

pytestmark = pytest.mark.lava


def _shm() -> set:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_group_during_a_lava_run_is_one_line_and_leaves_nothing(
        sig, tmp_path):
    from metaloihi.base.lava_support import lava_available
    if not lava_available():
        pytest.skip("needs Lava")
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    bundle, _ = export_bundle(tmp_path / "b.h5", specs, params, neurons)
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


def test_a_lava_run_under_a_memory_limit_ends_in_one_line_naming_it(tmp_path):
    """`ulimit -v 4 GiB`: Lava's workers cannot allocate; the run used to sleep forever. The
    watchdog ends it (a dead worker, or no CPU used for METALOIHI_STALL_S) in one line that
    names the limit, and leaves no shared memory."""
    import resource
    from metaloihi.base.lava_support import lava_available
    if not lava_available():
        pytest.skip("needs Lava")
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    bundle, _ = export_bundle(tmp_path / "b.h5", specs, params, neurons)
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
