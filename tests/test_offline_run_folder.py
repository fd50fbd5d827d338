"""offline/run_folder.py: a training run claims its folder. A folder holding a run is refused
and left untouched, --resume needs last.pt, a second writer is refused naming the holder, and
the lock of a killed run is taken over."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import bounded
from helpers.cli import one_line_error, run_cli
from helpers.training import train_argv


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_train_refuses_a_folder_with_a_run_and_leaves_it_untouched(tmp_path, train_toml,
                                                                    capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.pt").write_bytes(b"sixty iterations of work")
    (out / "metrics.jsonl").write_text('{"stage": 2, "iteration": 0}\n')
    before = _snapshot(out)
    code, o, e = run_cli(train_argv(train_toml, out, "--set", "train.iterations=1"), capsys)
    one_line_error(code, o, e, str(out), "not empty", "best.pt", "--resume", "--overwrite")
    assert _snapshot(out) == before and not (out / ".lock").exists()


def test_resume_and_overwrite_together_are_refused(tmp_path, train_toml, capsys):
    """(--resume without last.pt: the corpus's row "train --resume without last.pt".)"""
    code, o, e = run_cli(train_argv(train_toml, tmp_path / "run", "--resume", "--overwrite"),
                         capsys)
    one_line_error(code, o, e, "at most one of --resume and --overwrite")
    assert not (tmp_path / "run").exists()


def test_a_second_writer_gets_a_clear_error_naming_the_holder(tmp_path, train_toml, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from metaloihi.offline.run_folder import RunLock; Path(sys.argv[1]).mkdir(); "
         "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)",
         str(out)], stdout=subprocess.PIPE, text=True)
    try:
        import select
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        assert ready, "the lock holder did not report within 120 s"
        assert holder.stdout.readline().strip() == "held"
        code, o, e = run_cli(train_argv(train_toml, out), capsys)
        one_line_error(code, o, e, str(out), "in use by another `metaloihi train`",
                       f"pid {holder.pid}")
    finally:
        holder.kill()
        bounded.finish(holder, 30, "the killed lock holder")
    assert sorted(p.name for p in out.iterdir()) == [".lock"]   # nothing written by us


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    from metaloihi.offline.run_folder import RunLock
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text("pid 999999 on elsewhere, since 2020-01-01T00:00:00+00:00\n")
    lock = RunLock(out).acquire()        # no flock on it: the holder is gone
    assert f"pid {os.getpid()}" in (out / ".lock").read_text()
    lock.release()
    assert not (out / ".lock").exists()
