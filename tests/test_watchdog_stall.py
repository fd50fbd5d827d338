"""The watchdog's stall rule (metaloihi/watchdog.py): a Lava run in which no process has used
CPU for STALL_S seconds is ended in one line that names the address-space limit when one is
set (a worker that could not allocate under `ulimit -v` left the others asleep forever);
any CPU used, by a worker or the host, resets the clock."""
import pytest

from metaloihi import watchdog as wd


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
