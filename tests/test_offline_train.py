"""offline/train.py, config.py, checkpoint.py: configs, checkpoints, exact resume, resume after
kill -9, torchrun all-reduce == one process."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import bounded
from metaloihi.base.errors import UserError
from metaloihi.offline import checkpoint, config, maml, train

ROOT = Path(__file__).resolve().parents[1]
# torchrun's processes give up on a peer after this long (init_process_group's timeout)
DIST_ENV = {"OMP_NUM_THREADS": "1", "METALOIHI_DIST_TIMEOUT_S": "120"}
TINY = """
[data]
dataset = "gestures"
queries = 1
[model]
channels = [4, 8]
kernel = 3
pool = 4
time_pool = 5
uniform_head = true
[maml]
trunc = 5
loss_scale = 0.1
[train]
meta_batch = 2
iterations = 6
val_every = 3
val_tasks = 4
checkpoint_every = 2
threads = 1
"""


@pytest.fixture(scope="module")
def gestures():
    from metaloihi.datasets import load_dataset
    return load_dataset("gestures")


def tiny_cfg(tmp_path, **over):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return config.load(str(path), over)


def test_every_shipped_config_loads_and_unknown_keys_are_named(tmp_path):
    names = config.shipped()
    assert {"demo", "demo_soel", "demo_fomaml", "gestures", "double_digits"} <= set(names)
    for n in names:
        assert config.load(n).data.ways == 5
    bad = tmp_path / "bad.toml"
    bad.write_text("[maml]\ninner_stepz = 2\n")
    with pytest.raises(UserError, match="maml.inner_stepz"):
        config.load(str(bad))
    bad.write_text("[optim]\nlr = 2\n")
    with pytest.raises(UserError, match="optim"):
        config.load(str(bad))
    with pytest.raises(UserError, match="no config named 'nope'"):
        config.load("nope")


def test_training_writes_tensor_only_checkpoints_and_resume_is_exact(tmp_path, gestures):
    cfg = tiny_cfg(tmp_path)
    full = train.train(cfg, tmp_path / "full", progress=False, dataset=gestures)
    assert full["iterations"] == 6
    state = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    assert state["iteration"] == 6 and state["config"] == config.to_dict(cfg)
    assert state["split"]["test"] == [5, 9, 19, 22, 24, 27, 29, 32, 35, 38]
    assert set(state["versions"]) == {"metaloihi", "torch", "python"}
    assert state["network"]["format"] == "metaloihi.network/1"   # tests/test_bridge_checkpoint
    assert (tmp_path / "full" / "best.pt").exists()
    lines = [json.loads(ln) for ln in (tmp_path / "full" / "metrics.jsonl").read_text().split("\n")
             if ln]
    # iteration 0: the start validated (a candidate for best.pt), then 6 meta-batches
    assert [r["iteration"] for r in lines] == [0, 1, 2, 3, 4, 5, 6]
    assert "meta_val_acc" in lines[0] and "meta_val_acc" in lines[3]
    assert "inner_lr.2" in lines[1]                                   # head of 3 layers
    # 4 iterations, then resume to 6: identical meta-parameters and optimiser state
    half = tiny_cfg(tmp_path, **{"train.iterations": 4})
    train.train(half, tmp_path / "split", progress=False, dataset=gestures)
    train.train(cfg, tmp_path / "split", resume=True, progress=False, dataset=gestures)
    a = checkpoint.load(tmp_path / "full" / "last.pt")["meta"]
    b = checkpoint.load(tmp_path / "split" / "last.pt")["meta"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_learn_head_init_false_keeps_the_calibrated_head(tmp_path, gestures):
    cfg = tiny_cfg(tmp_path, **{"maml.learn_head_init": False, "train.iterations": 3})
    s = train.setup(cfg, gestures)
    start = train.initial_meta(s)
    assert "theta0.layers.2.weight" not in maml.learnable(start, cfg.maml)
    train.train(cfg, tmp_path / "run", progress=False, dataset=gestures)
    end = checkpoint.load(tmp_path / "run" / "last.pt")["meta"]
    assert torch.equal(end["theta0.layers.2.weight"], start["theta0.layers.2.weight"])
    assert not torch.equal(end["theta0.layers.1.weight"], start["theta0.layers.1.weight"])


def test_evaluate_rows_with_baselines_and_a_timed_pretraining(tmp_path, gestures):
    from metaloihi.offline.evaluate import evaluate
    train.train(tiny_cfg(tmp_path), tmp_path / "run", progress=False, dataset=gestures)
    rows = evaluate([tmp_path / "run" / "best.pt"], tasks=6, shots=(1, 2),
                    pretrain_minutes=0.02, report=lambda r: None)
    assert [r["shots"] for r in rows] == [1, 2] * 6
    # what made theta0, from its record (the tiny config has no stage 1), then how it adapts
    from metaloihi.offline import checkpoint
    made = checkpoint.load(tmp_path / "run" / "best.pt")["made_by"]
    assert made["stage1"] is False
    assert rows[0]["name"] == (f"theta0 {made['label']}, adapted as in MAML SGD-inner, "
                               "gestures, adapt=head: run/best.pt")
    assert rows[2]["name"].startswith("prototype (cosine) on the penultimate counts of run/")
    assert rows[4]["name"] == "prototype (cosine) on the raw encoded input, no learning"
    assert rows[6]["name"] == "random init + same inner loop"
    pre = rows[8]["name"]           # "pretrained (non-meta, N steps of 16, 0.0 min) + ..."
    assert pre.startswith("pretrained (non-meta, ") and int(pre.split(", ")[1].split()[0]) >= 1
    assert rows[10]["name"].startswith("pretrained (non-meta, ") and "prototype" in rows[10]["name"]
    for r in rows:
        assert r["tasks"] == 6 and 0.0 <= r["acc"] <= 1.0 and r["ci95"] >= 0.0
        # accuracies are means over 6 tasks of 5 queries each: multiples of 1/30
        assert abs(r["acc"] * 30 - round(r["acc"] * 30)) < 1e-6


def test_resume_after_kill_9_loses_at_most_one_checkpoint_interval(tmp_path):
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(TINY.replace("iterations = 6", "iterations = 10000"))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "metaloihi", "train", "--config", str(cfg_path), "--out",
           str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log, lines = out / "metrics.jsonl", 0
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            lines = len(log.read_text().splitlines()) if log.exists() else 0
            if lines >= 7:
                break
            time.sleep(0.2)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        _, err = bounded.finish(proc, 60, "the training to be killed")
    assert lines >= 7, f"training logged {lines} of 7 lines in 300 s: {err[-2000:]!r}"
    assert proc.returncode == -signal.SIGKILL
    saved = checkpoint.load(out / "last.pt")["iteration"]
    logged = len((out / "metrics.jsonl").read_text().splitlines())
    assert saved >= 6 and logged - 1 - saved <= 2  # checkpoint_every = 2; line 0: the start
    target = saved + 3
    res = bounded.run(cmd + ["--resume", "--set", "maml.trunc=4"], cwd=ROOT,
                      capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "another config" in res.stderr   # not the same run
    res = bounded.run(cmd + ["--resume", "--set", f"train.iterations={target}"], cwd=ROOT,
                      capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    its = [json.loads(ln)["iteration"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert its == list(range(0, target + 1))
    assert checkpoint.load(out / "last.pt")["iteration"] == target


def test_the_process_group_timeout_comes_from_the_environment(monkeypatch):
    from datetime import timedelta
    monkeypatch.delenv("METALOIHI_DIST_TIMEOUT_S", raising=False)
    assert train.dist_timeout() == timedelta(seconds=1800)          # torch's own default
    monkeypatch.setenv("METALOIHI_DIST_TIMEOUT_S", "2.5")
    assert train.dist_timeout() == timedelta(seconds=2.5)
    for bad in ("0", "-3", "inf", "nan", "ten"):
        monkeypatch.setenv("METALOIHI_DIST_TIMEOUT_S", bad)
        with pytest.raises(UserError) as err:
            train.dist_timeout()
        assert str(err.value) == f"METALOIHI_DIST_TIMEOUT_S={bad!r}; expected seconds > 0"


def test_two_gloo_processes_give_the_one_process_meta_gradient(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from offline_ddp_worker import synthetic_setup
    s, meta, batch = synthetic_setup()
    grads, loss, _ = maml.meta_gradient(meta, batch, s.specs, s.neurons, s.cfg.maml,
                                        s.cfg.train.mode)
    out = tmp_path / "ddp.pt"
    env = {**os.environ, **DIST_ENV}
    res = bounded.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                       f"--master_port={bounded.free_port()}",
                       str(ROOT / "tests" / "offline_ddp_worker.py"), str(out)], cwd=ROOT,
                      capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = torch.load(out, weights_only=True)
    assert got["world"] == 2
    assert abs(float(got["loss"]) - float(loss.mean())) < 1e-12
    for k in grads:
        assert torch.allclose(got["grads"][k], grads[k], atol=1e-12, rtol=1e-10), k


def test_torchrun_train_command_matches_one_process(tmp_path):
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text(TINY.replace('mode = "loop"', "").replace("iterations = 6",
                                                                   "iterations = 3"))
    base = ["-m", "metaloihi", "train", "--config", str(cfg_path), "--no-progress",
            "--set", 'train.dtype="float64"']
    env = {**os.environ, **DIST_ENV}
    one = bounded.run([sys.executable, *base, "--out", str(tmp_path / "one")], cwd=ROOT,
                      capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    two = bounded.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                       f"--master_port={bounded.free_port()}", *base,
                       "--out", str(tmp_path / "two")],
                      cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    a = checkpoint.load(tmp_path / "one" / "last.pt")["meta"]
    b = checkpoint.load(tmp_path / "two" / "last.pt")["meta"]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-10, rtol=1e-8), k
