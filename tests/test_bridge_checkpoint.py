"""Self-describing checkpoints: bridge/ reads the deployable network from the checkpoint file
alone (bridge/checkpoint_file.py), without offline/ and without the data set; older files are
refused with the upgrade to run, and the upgrade (studies/upgrade.py) makes export what it was
when it derived everything from the config and the data set."""
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import bounded
from metaloihi.base.errors import UserError
from metaloihi.base.torch_file import theta0_key
from metaloihi.bridge import checkpoint_file as cf
from metaloihi.bridge import export as ex
from metaloihi.bridge.bundle import read_bundle
from metaloihi.rules.soel import LearntRule
from metaloihi.sim.float_lif import head_key, weight_key
from metaloihi.offline import checkpoint, config, maml, model, train
from metaloihi.studies.upgrade import upgrade_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "checkpoints").glob("**/*.pt"))
# a small run of stage 2 with the chip's rule inside (SOEL, a fixed theta and eta)
SOEL_TOML = """
[data]
dataset = "gestures"
[model]
channels = [4, 8]
kernel = 3
pool = 4
time_pool = 5
[maml]
inner_rule = "soel"
inner_steps = 3

[rule]                  # the chip's learning rule (rules/soel)
theta = 1.5
eta = 0.002
target_on = 6
[train]
seed = 7
"""


def _legacy(folder: Path, gestures, name: str = "old.pt", fitted: bool = False,
            **over) -> Path:
    """A checkpoint as train.py wrote them before they described their network (no
    "network"), with a learnt rule and a silent head's range in its meta."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "soel.toml").write_text(SOEL_TOML)
    cfg = config.load(str(folder / "soel.toml"), over)
    s = train.setup(cfg, gestures)
    meta = train.initial_meta(s)
    meta["soel.log_eta"] = torch.tensor(3e-3).log()
    meta[theta0_key(head_key(s.specs))].zero_()     # a silent-start head
    meta["soel.head_range"] = torch.tensor(0.02)     # as files hold it
    state = {"meta": meta, "config": config.to_dict(cfg), "iteration": 5,
             "split": {"train": [1, 2], "val": [3], "test": [4]}}
    if fitted:
        state["soel_fit"] = {"soel_threshold": 1.0, "soel_eta": 1e-3, "target_on": 12,
                             "passes": 4, "split": "val", "tasks": 2}
    checkpoint.save(folder / name, state)
    return folder / name


def _old_from_checkpoint(path, gestures):
    """What bridge/export.py's from_checkpoint returned before checkpoints described
    themselves: everything derived from the config, the data set and the meta-parameters."""
    state = checkpoint.load(path)
    cfg = config.from_dict(state["config"])
    s = train.setup(cfg, gestures)
    theta0 = {k: v.detach().to(torch.float64)
              for k, v in maml.theta0_of(state["meta"], cfg.maml).items()}
    learnt = maml.learnt_values(state["meta"])
    head = LearntRule(theta=learnt.get("soel.threshold", cfg.rule.theta),
                      eta=learnt.get("soel.eta", cfg.rule.eta),
                      target_on=int(cfg.rule.target_on),
                      target_off=int(cfg.rule.target_off), rng_seed=int(cfg.train.seed),
                      passes=max(int(cfg.maml.inner_steps), 1)
                      if cfg.maml.inner_rule == "soel" else 1)
    fitted = state.get("soel_fit") or state.get("rule_fit")    # the old record, or the new
    if fitted:
        head = replace(head, theta=float(fitted.get("soel_threshold", fitted.get("theta"))),
                       eta=float(fitted.get("soel_eta", fitted.get("eta"))),
                       target_on=int(fitted["target_on"]),
                       passes=int(fitted.get("passes", head.passes)))
    meta = {"split": state.get("split", {}), "iteration": int(state.get("iteration", 0)),
            "dataset": cfg.data.dataset, "encoding": model.encoding(cfg.model).to_dict(),
            "head_range": learnt.get("soel.head_range")}
    return s.specs, theta0, s.neurons, head, meta


def _same_export(tmp: Path, old, new) -> None:
    """Both (specs, theta0, neurons, head, meta) export to bundles equal in every array."""
    specs, theta0, neurons, head, meta = new
    o_specs, o_theta0, o_neurons, o_head, o_meta = old
    assert specs == o_specs and neurons == o_neurons and head == o_head
    assert theta0.keys() == o_theta0.keys()
    assert all(theta0[k].dtype == torch.float64 and torch.equal(theta0[k], o_theta0[k])
               for k in theta0)
    assert {k: meta.get(k) for k in o_meta} == o_meta
    a = read_bundle(ex.export_bundle(tmp / "old.h5", o_specs, o_theta0, o_neurons, o_head,
                                     {"head_range": o_meta["head_range"]})[0])
    b = read_bundle(ex.export_bundle(tmp / "new.h5", specs, theta0, neurons, head, meta)[0])
    assert a.head == b.head and np.array_equal(a.scales, b.scales) and len(a.net) == len(b.net)
    for la, lb in zip(a.net, b.net):
        assert la.spec == lb.spec and la.weight_exp == lb.weight_exp
        assert np.array_equal(la.weight, lb.weight)
        for f in ("du", "dv", "vth", "bias_mant", "bias_exp"):
            assert np.array_equal(getattr(la.neuron, f), getattr(lb.neuron, f))


def test_an_old_checkpoint_is_refused_with_the_upgrade_to_run(tmp_path, gestures):
    old = _legacy(tmp_path, gestures)
    with pytest.raises(UserError, match=r"old\.pt.*does not describe its network.*"
                                        r"metaloihi upgrade-checkpoint .*old\.pt"):
        ex.from_checkpoint(old)


@pytest.mark.parametrize("fitted, over", [
    (False, {}),
    (True, {}),                                            # the old fit-soel's "soel_fit"
    (False, {"maml.inner_rule": "sgd"}),                   # passes 1, the configured rule
    (False, {"maml.q_outer_bits": 6}),                     # theta0 exported with Q_outer
])
def test_upgrade_is_idempotent_and_export_is_what_the_old_path_gave(tmp_path, gestures,
                                                                    fitted, over):
    path = _legacy(tmp_path / "ck", gestures, fitted=fitted, **over)
    before = {k: v for k, v in checkpoint.load(path).items()}
    old = _old_from_checkpoint(path, gestures)
    assert upgrade_checkpoint(path, dataset=gestures) is True
    data = path.read_bytes()
    assert upgrade_checkpoint(path) is False and path.read_bytes() == data     # untouched
    after = checkpoint.load(path)
    # an old fit-soel's "soel_fit" is folded into network.rule and recorded as "rule_fit"
    assert set(after) == (set(before) - {"soel_fit"}) | {"network", "made_by"} | \
        ({"rule_fit"} if fitted else set())
    assert after["made_by"]["stage2_iterations"] == before["iteration"]
    assert all(torch.equal(after["meta"][k], v) for k, v in before["meta"].items())
    assert {k: after[k] for k in ("config", "split", "iteration", "versions")} == \
        {k: before[k] for k in ("config", "split", "iteration", "versions")}
    _same_export(tmp_path, old, ex.from_checkpoint(path))
    rule = after["network"]["rule"]
    assert rule["head_range"] == pytest.approx(0.02) and rule["rng_seed"] == 7
    if fitted:
        fit = after["rule_fit"]
        assert (rule["theta"], rule["eta"], rule["target_on"], rule["passes"]) == \
            (1.0, 1e-3, 12, 4) == (fit["theta"], fit["eta"], fit["target_on"], fit["passes"])
        assert fit["before"]["passes"] == 3 and fit["before"]["eta"] == pytest.approx(3e-3)
        assert fit["split"] == "val" and fit["tasks"] == 2 and "soel_fit" in fit["from"]
        assert ex.from_checkpoint(path)[4]["rule_fit"] == fit        # carried into the bundle
    else:
        assert rule["passes"] == (1 if over.get("maml.inner_rule") == "sgd" else 3)
    assert (after["network"]["theta0"] is None) == ("maml.q_outer_bits" not in over)


def test_training_describes_its_checkpoints_as_the_upgrade_does(tmp_path, gestures):
    (tmp_path / "soel.toml").write_text(SOEL_TOML)
    cfg = config.load(str(tmp_path / "soel.toml"),
                      {"train.iterations": 1, "train.val_every": 1, "train.val_tasks": 1,
                       "train.meta_batch": 1, "data.queries": 1, "rule.fit_start": False,
                       "maml.trunc": 5, "train.threads": 1, "pretrain.iterations": 1,
                       "pretrain.classes_per_batch": 4, "pretrain.val_tasks": 1})
    train.train(cfg, tmp_path / "run", progress=False, dataset=gestures)
    for name in ("stage1.pt", "best.pt", "last.pt"):
        path = tmp_path / "run" / name
        written = checkpoint.load(path)["network"]
        shutil.copy(path, tmp_path / name)
        assert upgrade_checkpoint(tmp_path / name, force=True, dataset=gestures) is True
        assert checkpoint.load(tmp_path / name)["network"] == written
        _same_export(tmp_path, _old_from_checkpoint(path, gestures), ex.from_checkpoint(path))


def _upgraded(tmp_path: Path, gestures) -> tuple[Path, dict]:
    path = _legacy(tmp_path / "ck", gestures)
    upgrade_checkpoint(path, dataset=gestures)
    return path, torch.load(path, weights_only=True)


@pytest.mark.parametrize("field, damage, message", [
    ("rule.eta", lambda n: n["rule"].update(eta="big"),
     r"network\.rule\.eta = 'big' is not a finite number"),
    ("rule.theta", lambda n: n["rule"].pop("theta"), r"network\.rule\.theta is missing"),
    ("rule.name", lambda n: n["rule"].update(name="stdp"),
     r"network\.rule\.name = 'stdp' is not one of"),
    ("rule.passes", lambda n: n["rule"].update(passes=0),
     r"network\.rule\.passes = 0 is out of range: expected >= 1"),
    ("specs", lambda n: n["specs"][1].update(in_shape=[9, 9, 9]), r"network\.specs: layer 1"),
    ("spec type", lambda n: n["specs"][0].update(type="pool"), r"network\.specs\[0\]\.type"),
    ("spec field", lambda n: n["specs"][-1].pop("out_features"),
     r"network\.specs\[2\]\.out_features is missing"),
    ("input_shape", lambda n: n.update(input_shape=[2, 4, 9]), r"network\.input_shape"),
    ("frame_shape", lambda n: n.update(frame_shape=[100, 2, 64, 64]), r"network\.frame_shape"),
    ("encoding", lambda n: n["encoding"].update(pool=0), r"network\.encoding: .*pool=0"),
    ("neurons", lambda n: n["neurons"].pop(),
     r"network\.neurons = .* is not a non-empty list of 3"),
    ("neuron field", lambda n: n["neurons"][1].update(vth=float("nan")),
     r"network\.neurons\[1\]\.vth = nan is not a finite number"),
    ("ways", lambda n: n["dataset"].update(ways=7),
     r"network\.dataset\.ways = 7 is not the head's"),
    ("split", lambda n: n["dataset"]["splits"].pop("val"),
     r"network\.dataset\.splits\.val is missing"),
    ("format", lambda n: n.update(format="x/9"), r"network\.format = 'x/9' is not"),
    ("theta0", lambda n: n.update(theta0={weight_key(0): torch.zeros(1)}),
     r"network\.theta0\.layers\.0\.weight has shape \[1\]"),
])
def test_a_bad_description_field_is_named(tmp_path, gestures, field, damage, message):
    path, state = _upgraded(tmp_path, gestures)
    damage(state["network"])
    torch.save(state, path)
    with pytest.raises(UserError, match=message) as err:
        ex.from_checkpoint(path)
    assert "old.pt" in str(err.value)
    with pytest.raises(UserError, match=message):
        upgrade_checkpoint(path)                  # a damaged description is not papered over
    assert upgrade_checkpoint(path, force=True, dataset=gestures) is True
    ex.from_checkpoint(path)


def test_upgrade_names_the_file_and_the_config_key_it_cannot_read(tmp_path, gestures):
    path = _legacy(tmp_path, gestures)
    state = torch.load(path, weights_only=True)
    state["config"]["train"]["learning_rate"] = 0.1
    torch.save(state, path)
    with pytest.raises(UserError, match=r"old\.pt.*unknown config key train\.learning_rate"):
        upgrade_checkpoint(path)


def test_a_checkpoint_holding_objects_is_refused_unread(tmp_path, gestures):
    import argparse
    path, state = _upgraded(tmp_path, gestures)
    state["network"]["rule"]["eta"] = argparse.Namespace(eta=1)
    torch.save(state, path)
    with pytest.raises(UserError, match=r"refused.*weights_only=True"):
        cf.read_checkpoint(path)


EXPORT = """
import json, runpy, sys
sys.argv = ["metaloihi", "export", "--checkpoint", sys.argv[1], "--out", sys.argv[2]]
try:
    runpy.run_module("metaloihi", run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules
                                                  if m.startswith("metaloihi"))}))
"""


@pytest.mark.parametrize("name", [p.relative_to(ROOT / "checkpoints").as_posix()
                                  for p in SHIPPED] + ["fresh"])
def test_export_runs_without_offline_or_the_data_set(tmp_path, gestures, name):
    """`metaloihi export --checkpoint C` with the data cache empty: nothing of offline/ or of
    the data set code is imported, nothing is cached, and the bundle is the old path's."""
    path = ROOT / "checkpoints" / name if name != "fresh" else _upgraded(tmp_path, gestures)[0]
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    env = {**os.environ, "METALOIHI_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    res = bounded.run([sys.executable, "-c", EXPORT, str(path), str(tmp_path / "b.h5")],
                      env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if name == "ablation/dd_maml_random.pt":
        # trained with an SGD inner step: its own rule (the config's eta) is far off the chip's
        # steps, so export refuses it in one line (the ablation deploys it with another rule)
        assert out["code"] == 1 and "outside the chip's steps" in res.stdout + res.stderr, \
            res.stdout + res.stderr
    else:
        assert out["code"] in (0, None), res.stdout + res.stderr
    assert "metaloihi.bridge.export" in out["modules"]
    assert not [m for m in out["modules"] if m.startswith("metaloihi.offline")]
    assert "metaloihi.datasets.registry" not in out["modules"]
    assert list(cache.iterdir()) == []
    # one file that `train` wrote, against the old path, in-process (the shipped demo theta0 is
    # a stage-2 candidate: its record holds the deployed session it trained with, which its
    # config does not say, so the old path cannot give its rule)
    if name == "demo_long/theta0.pt":
        old = _old_from_checkpoint(path, gestures)
        _same_export(tmp_path, old, ex.from_checkpoint(path))


def test_a_described_checkpoint_still_holding_soel_fit_reads_as_its_upgrade(tmp_path, gestures):
    """Files written between described checkpoints and bundle fits (the shipped ones were):
    network.rule as learnt plus "soel_fit". The reader folds the fit in (rules/soel/legacy.py)
    exactly as upgrade-checkpoint does in the file."""
    path = _legacy(tmp_path / "ck", gestures, fitted=True)
    soel_fit = checkpoint.load(path)["soel_fit"]
    upgrade_checkpoint(path, dataset=gestures)
    upgraded = checkpoint.load(path)
    mid = dict(upgraded)
    mid["network"] = {**mid["network"], "rule": {**mid["network"]["rule"],
                                                 **mid.pop("rule_fit")["before"]}}
    mid["soel_fit"] = soel_fit
    old = tmp_path / "mid.pt"
    checkpoint.save(old, mid)
    a, b = cf.read_checkpoint(old), cf.read_checkpoint(path)
    assert a.rule == b.rule and a.meta["rule_fit"] == b.meta["rule_fit"] == upgraded["rule_fit"]
    *net, meta = ex.from_checkpoint(path)
    drop = ("source", "source_sha256", "created")           # the two files differ in these
    _same_export(tmp_path, (*net, {k: v for k, v in meta.items() if k not in drop}),
                 ex.from_checkpoint(old))
    assert upgrade_checkpoint(old) is True
    again = checkpoint.load(old)
    assert "soel_fit" not in again and again["rule_fit"] == upgraded["rule_fit"]
    assert again["network"]["rule"] == upgraded["network"]["rule"]


def test_old_formats_are_read_only_by_the_readers_fallbacks():
    """rules/soel/legacy.py, the one home of old formats, is imported by the readers of
    configs, checkpoints and bundles (and their validator) only."""
    import metaloihi
    root = Path(metaloihi.__file__).resolve().parent.parent
    folders = ("base", "sim", "rules", "datasets", "offline", "bridge", "onchip", "studies",
               "metaloihi")
    users = sorted(str(p.relative_to(root)) for d in folders for p in (root / d).rglob("*.py")
                   if any(s in p.read_text() for s in ("soel import legacy",
                                                       "soel.legacy import")))
    assert users == ["bridge/bundle.py", "bridge/checkpoint_file.py", "bridge/validate.py",
                     "offline/config.py"]
