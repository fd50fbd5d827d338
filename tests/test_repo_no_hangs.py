"""A test that can hang is a defect: every subprocess a test starts runs under a timeout, and a
timeout fails the test with a line naming the command (tests/helpers/bounded.py). This file
holds the helper to that and the tests to it: no unbounded subprocess.run / check_output /
wait() / communicate() / join() anywhere under tests/."""
import ast
import socket
import sys
import time
from pathlib import Path

import pytest

from helpers import bounded
from metaloihi import watchdog

TESTS = Path(__file__).resolve().parent
UNBOUNDED = {("subprocess", "run"), ("subprocess", "call"), ("subprocess", "check_call"),
             ("subprocess", "check_output"), ("os", "system"), ("os", "popen")}


def _unbounded_calls(path: Path, base: Path = TESTS) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr, owner = node.func.attr, node.func.value
        has_timeout = bool(node.args) or any(k.arg == "timeout" for k in node.keywords)
        where = f"{path.relative_to(base)}:{node.lineno}"
        if isinstance(owner, ast.Name) and (owner.id, attr) in UNBOUNDED:
            found.append(f"{where}: {owner.id}.{attr} (use helpers.bounded.run)")
        elif attr in ("wait", "communicate", "join") and not has_timeout:
            found.append(f"{where}: .{attr}() without a timeout")
    return found


def test_no_test_starts_or_waits_for_a_process_without_a_timeout():
    found = [f for p in sorted(TESTS.rglob("*.py")) for f in _unbounded_calls(p)]
    assert found == []


def test_the_checker_sees_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import subprocess\nsubprocess.run(['x'])\np = subprocess.Popen(['x'])\n"
                   "p.wait()\np.communicate()\np.wait(timeout=5)\np.communicate(timeout=5)\n")
    assert _unbounded_calls(bad, tmp_path) == [
        "bad.py:2: subprocess.run (use helpers.bounded.run)",
        "bad.py:4: .wait() without a timeout", "bad.py:5: .communicate() without a timeout"]


def test_a_timeout_kills_the_child_and_what_it_started_and_fails_naming_them():
    """The child starts a grandchild in a session of its own (as torchrun starts its workers)
    and both sleep: past the limit both are gone and the test fails with the command."""
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(120)'], start_new_session=True); print(p.pid, "
            "flush=True); time.sleep(120)")
    t0 = time.time()
    with pytest.raises(pytest.fail.Exception) as failed:
        bounded.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=5,
                    what="the sleeper")
    assert time.time() - t0 < 30
    msg = str(failed.value)
    assert msg.startswith("the sleeper did not finish within 5 s (killed with its processes)")
    grandchild = int(msg.split("--- stdout tail ---\n")[1].split()[0])
    deadline = time.time() + 10
    while watchdog.state(grandchild) not in (None, "Z") and time.time() < deadline:
        time.sleep(0.1)
    assert watchdog.state(grandchild) in (None, "Z")


def test_run_returns_what_subprocess_run_returns():
    res = bounded.run([sys.executable, "-c", "import sys; print('out'); "
                       "print('err', file=sys.stderr); sys.exit(3)"],
                      capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\n")


def test_free_port_is_free():
    port = bounded.free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))
