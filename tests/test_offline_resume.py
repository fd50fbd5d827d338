"""Interrupted training continues exactly (offline/train.py): the metrics log is append-only and
its torn last line is dropped with a warning; SIGINT/SIGTERM/SIGHUP save last.pt and exit 1
with a line; the same seed gives byte-identical checkpoints; and kill -9 at random moments
followed by --resume ends bit for bit where an uninterrupted run ends (a resume with another
config is refused)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import bounded
from helpers.cli import one_line_error, run_cli
from helpers.training import TRAIN_TOML, train_argv
from metaloihi.base.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


# --- metrics.jsonl is append-only; a torn tail is dropped with a warning --------------
def _log(path: Path, records: list[dict], tail: bytes = b"") -> bytes:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail
    path.write_bytes(data)
    return data


def test_trim_log_cuts_only_the_uncovered_tail_in_place(tmp_path):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    recs = ([{"stage": 1, "iteration": i} for i in range(1, 4)]
            + [{"stage": 2, "iteration": 0, "rule_start": {"eta": 1.0}},
               {"stage": 2, "iteration": 0, "meta_val_acc": 0.2}]
            + [{"stage": 2, "iteration": i} for i in range(1, 8)])
    data = _log(path, recs)
    inode = path.stat().st_ino
    _trim_log(path, 4)
    kept = path.read_bytes()
    assert data.startswith(kept) and path.stat().st_ino == inode     # cut, never rewritten
    its = [json.loads(ln) for ln in kept.decode().splitlines()]
    assert its == recs[:9]              # stage 1, rule start, iteration 0, 1..4


def test_trim_log_drops_a_torn_last_line_with_a_warning(tmp_path, capsys):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    recs = [{"stage": 2, "iteration": i} for i in range(3)]
    data = _log(path, recs, tail=b'{"stage": 2, "iteration": 3, "meta_lo')
    _trim_log(path, 5)
    assert path.read_bytes() == data[: data.rindex(b"\n") + 1]
    err = capsys.readouterr().err
    assert "warning" in err and "metrics.jsonl" in err and "torn last line (37 bytes" in err


def test_trim_log_refuses_a_damaged_line_before_the_end(tmp_path):
    from metaloihi.offline.train import _trim_log
    path = tmp_path / "metrics.jsonl"
    data = _log(path, [{"stage": 2, "iteration": 0}]) + b"garbage\n" + b'{"iteration": 1}\n'
    path.write_bytes(data)
    with pytest.raises(UserError, match="line 2 is not a JSON record"):
        _trim_log(path, 5)
    assert path.read_bytes() == data


def test_resume_after_a_torn_append_continues_the_log(tmp_path, train_toml, capsys):
    out = tmp_path / "run"
    code, o, e = run_cli(train_argv(train_toml, out, "--set", "train.iterations=4"), capsys)
    assert code == 0, e
    log = out / "metrics.jsonl"
    covered = log.read_bytes()
    with open(log, "ab") as fh:
        fh.write(b'{"stage": 2, "iteration": 5, "meta_loss": 0.')     # a kill mid-append
    code, o, e = run_cli(train_argv(train_toml, out, "--resume"), capsys)
    assert code == 0, e
    assert "dropped a torn last line" in e and "Traceback" not in e
    data = log.read_bytes()
    assert data.startswith(covered)
    assert [json.loads(ln)["iteration"] for ln in data.decode().splitlines()] == \
        list(range(0, 7))
    # and a fresh run on it is refused; --overwrite replaces it
    code, o, e = run_cli(train_argv(train_toml, out, "--set", "train.iterations=1"), capsys)
    one_line_error(code, o, e, "not empty")
    assert log.read_bytes() == data
    code, o, e = run_cli(train_argv(train_toml, out, "--set", "train.iterations=1",
                                    "--overwrite"), capsys)
    assert code == 0, e
    assert [json.loads(ln)["iteration"] for ln in log.read_text().splitlines()] == [0, 1]
    assert torch.load(out / "last.pt", weights_only=True)["iteration"] == 1


# --- SIGINT/SIGTERM/SIGHUP save last.pt, then exit 1 with a line ---------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_training_saves_last_pt(tmp_path, train_toml, sig):
    train_toml.write_text(TRAIN_TOML.replace("iterations = 6", "iterations = 10000")
                          .replace("checkpoint_every = 2", "checkpoint_every = 1000"))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "metaloihi", *train_argv(train_toml, out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            log = out / "metrics.jsonl"
            if log.exists() and len(log.read_text().splitlines()) >= 4:
                break
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = bounded.finish(proc, 120, f"training after {signal.Signals(sig).name}")
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    last = torch.load(out / "last.pt", weights_only=True)["iteration"]
    logged = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text()
              .splitlines()]
    assert last >= 3 and logged[-1] == last          # nothing done after the checkpoint is lost
    name = signal.Signals(sig).name
    assert stderr.strip().splitlines()[-1] == (f"stopped by {name} at iteration {last}: "
                                               f"{out / 'last.pt'} saved; continue with --resume")
    assert f"(stopped: signal {name})" in stdout
    assert not (out / ".lock").exists()


# --- determinism, and kill -9 at random moments then --resume, measured -------------
def _meta_and_opt(path: Path) -> tuple[dict, dict]:
    state = torch.load(path, weights_only=True)
    return state["meta"], state["optimizer"]["state"]


def _same_tensors(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            if not _same_tensors(x, y):
                return False
        elif not torch.equal(torch.as_tensor(x), torch.as_tensor(y)):
            return False
    return True


def test_same_seed_twice_gives_identical_checkpoints(tmp_path, train_toml, capsys):
    for name in ("a", "b"):
        code, o, e = run_cli(train_argv(train_toml, tmp_path / name), capsys)
        assert code == 0, e
    for f in ("last.pt", "best.pt"):
        ma, oa = _meta_and_opt(tmp_path / "a" / f)
        mb, ob = _meta_and_opt(tmp_path / "b" / f)
        assert _same_tensors(ma, mb) and _same_tensors(oa, ob), f
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_three_random_kill_9s_then_resume_equal_an_uninterrupted_run(tmp_path, train_toml,
                                                                      capsys):
    """Kill -9 at three random moments (seeded; METALOIHI_KILLS=N for more), --resume each
    time: the final tensors equal an uninterrupted run's bit for bit, at most one checkpoint
    interval (2) is redone per kill, and the log holds each iteration once. A resume with
    another config is refused and leaves the run as it was."""
    kills = int(os.environ.get("METALOIHI_KILLS", "3"))
    total = 8 * kills
    train_toml.write_text(TRAIN_TOML.replace("iterations = 6", f"iterations = {total}"))
    code, o, e = run_cli(train_argv(train_toml, tmp_path / "whole"), capsys)
    assert code == 0, e
    out = tmp_path / "killed"
    rng = np.random.default_rng(15)
    redone, done_before = [], 0
    for kill in range(kills + 1):
        argv = train_argv(train_toml, out) + (["--resume"] if kill else [])
        proc = subprocess.Popen([sys.executable, "-m", "metaloihi", *argv], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kill == kills:                               # the last run goes to the end
            _, err = bounded.finish(proc, 300, "the last resumed run")
            assert proc.returncode == 0, err
            break
        target = done_before + int(rng.integers(2, 6))  # a random iteration to die after
        deadline = time.time() + 300
        log = out / "metrics.jsonl"
        while time.time() < deadline and proc.poll() is None:
            lines = log.read_text().splitlines() if log.exists() else []
            if len(lines) - 1 >= target:
                time.sleep(float(rng.uniform(0, 0.3)))     # a random moment within it
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = bounded.finish(proc, 60, "the run to be killed")
        assert proc.returncode == -signal.SIGKILL, f"the run ended by itself: {err[-2000:]}"
        logged = len(log.read_text().splitlines()) - 1
        saved = torch.load(out / "last.pt", weights_only=True)["iteration"]
        redone.append(logged - saved)
        done_before = saved
    print(f"{kills} kill -9s: iterations redone after each {redone}")
    assert all(0 <= r <= 2 for r in redone), redone
    its = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert its == list(range(total + 1))
    mw, ow = _meta_and_opt(tmp_path / "whole" / "last.pt")
    mk, ok = _meta_and_opt(out / "last.pt")
    assert _same_tensors(mw, mk) and _same_tensors(ow, ok)
    before = (out / "last.pt").read_bytes()
    code, o, e = run_cli(train_argv(train_toml, out, "--resume", "--set", "maml.trunc=4"), capsys)
    one_line_error(code, o, e, "--resume", "another config")
    assert (out / "last.pt").read_bytes() == before
