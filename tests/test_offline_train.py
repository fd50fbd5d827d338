"""offline/train.py and config.py: configs, tensor-only checkpoints, exact resume, evaluation rows,
torchrun all-reduce == one process. (Interrupted runs: test_offline_resume.py.)"""
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from helpers import bounded
from helpers.training import TRAIN_TOML
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import theta0_key
from metaloihi.offline import checkpoint, config, maml, train
from metaloihi.sim.float_lif import head_key, weight_key

ROOT = Path(__file__).resolve().parents[1]
# torchrun's processes give up on a peer after this long (init_process_group's timeout)
DIST_ENV = {"OMP_NUM_THREADS": "1", "METALOIHI_DIST_TIMEOUT_S": "120"}


def train_config(path, **over):
    """The small training run's config (helpers.training), with dotted overrides."""
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


def test_training_writes_tensor_only_checkpoints_and_resume_is_exact(tmp_path, train_toml,
                                                                     gestures):
    cfg = train_config(train_toml)
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
    half = train_config(train_toml, **{"train.iterations": 4})
    train.train(half, tmp_path / "split", progress=False, dataset=gestures)
    train.train(cfg, tmp_path / "split", resume=True, progress=False, dataset=gestures)
    a = checkpoint.load(tmp_path / "full" / "last.pt")["meta"]
    b = checkpoint.load(tmp_path / "split" / "last.pt")["meta"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_learn_head_init_false_keeps_the_calibrated_head(tmp_path, train_toml, gestures):
    cfg = train_config(train_toml, **{"maml.learn_head_init": False, "train.iterations": 3})
    s = train.setup(cfg, gestures)
    start = train.initial_meta(s)
    head = theta0_key(head_key(s.specs))
    assert head not in maml.learnable(start, cfg.maml)
    train.train(cfg, tmp_path / "run", progress=False, dataset=gestures)
    end = checkpoint.load(tmp_path / "run" / "last.pt")["meta"]
    assert torch.equal(end[head], start[head])
    body = theta0_key(weight_key(1))
    assert not torch.equal(end[body], start[body])


def test_evaluate_rows_with_baselines_and_a_timed_pretraining(tmp_path, train_toml,
                                                              gestures):
    from metaloihi.offline.evaluate import evaluate
    train.train(train_config(train_toml), tmp_path / "run", progress=False, dataset=gestures)
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
    # right answers of 30 (6 tasks x 5 queries), measured: theta0 and the random init are one
    # network here (best.pt is the start: 6 iterations never beat it); the float32 model may
    # move one query with another CPU's sums. The timed rows (8-11) depend on the steps done.
    assert [r["acc"] * 30 for r in rows[:8]] == pytest.approx([10, 12, 18, 16, 14, 19, 10, 12],
                                                              abs=1)
    assert [r["acc"] for r in rows[:2]] == [r["acc"] for r in rows[6:8]]
    for r in rows:
        assert r["tasks"] == 6
        # accuracies are means over 6 tasks of 5 queries each: multiples of 1/30
        assert abs(r["acc"] * 30 - round(r["acc"] * 30)) < 1e-6


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


def test_torchrun_train_command_matches_one_process(tmp_path, train_toml):
    cfg_path = train_toml
    cfg_path.write_text(TRAIN_TOML.replace('mode = "loop"', "").replace("iterations = 6",
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
