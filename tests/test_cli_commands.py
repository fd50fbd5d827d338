"""The command line (metaloihi/cli/): every command's --help names its defaults and units, --seed
changes what it should (and only that), --device reaches training and evaluation, `deploy` runs
a bundle in Lava's CPU simulator with the output spike counts sim/ computes, and `adapt` /
`deploy --dataset` take their samples from datasets/. (User mistakes on every command:
tests/bad_inputs/.)"""
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers.cli import run_cli
from metaloihi.base.torch_file import theta0_key
from metaloihi.offline import checkpoint
from metaloihi.base.errors import UserError
from metaloihi.sim.float_lif import weight_key

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

COMMANDS = [["data", "show"], ["train"], ["evaluate"], ["export"], ["bundle", "validate"],
            ["deploy"], ["adapt"], ["fit-soel"], ["continual"], ["cost"]]
# (command, option) -> a unit or range word its help must carry
UNITS = {("deploy", "--steps"): "1 ms each", ("deploy", "--rate"): "per input neuron and step",
         ("train", "--set"): "minutes", ("adapt", "--queries"): "per class",
         ("adapt", "--shots"): "per class", ("evaluate", "--shots"): "per class",
         ("evaluate", "--pretrain-iterations"): "Adam steps", ("evaluate", "--pretrain-minutes"):
         "minutes", ("export", "--input-shape"):
         "channels, pixels", ("data", "--per-class"): "per class"}


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_names_every_default_and_unit(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")          # one line per option
    code, out, _ = run_cli([*command, "--help"], capsys)
    assert code == 0
    options = [ln for ln in out.splitlines() if ln.lstrip("│ ").startswith("--")
               and not ln.lstrip("│ ").startswith("--help")]
    assert options or command == ["bundle", "validate"]
    for line in options:
        assert "default" in line, f"{command}: no default named in {line.strip()!r}"
        name = line.lstrip("│ ").split()[0]
        unit = UNITS.get((command[0], name))
        assert unit is None or unit in line, (name, unit, line)
    if command[0] in ("train", "evaluate"):
        assert "cpu|cuda|cuda:K" in out
    seeded = {"data", "train", "evaluate", "export", "deploy", "adapt", "fit-soel", "continual",
              "cost"}
    assert ("--seed" in out) == (command[0] in seeded)


# --- --seed does something real ---------------------------------------------------------------
def _weights(path):
    with h5py.File(path, "r") as f:
        return f["layer/1/weight"][()]


def test_export_seed_draws_the_weights(tmp_path, capsys):
    small = ["export", "--random", "--input-shape", "2,8,8", "--channels", "2", "--ways", "2"]
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert run_cli([*small, "--seed", seed, "--out", tmp_path / f"{name}.h5"], capsys)[0] == 0
    a, b, c = (_weights(tmp_path / f"{n}.h5") for n in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_train_seed_and_device_reach_the_config_and_theta0(tmp_path, train_toml, capsys):
    base = ["train", "--config", train_toml, "--no-progress", "--set", "train.iterations=1",
            "--set", "train.val_tasks=2"]
    for name, extra in (("s0", []), ("s5", ["--seed", "5", "--device", "cpu"])):
        code, _, err = run_cli([*base, *extra, "--out", tmp_path / name], capsys)
        assert code == 0, err
    s0, s5 = (checkpoint.load(tmp_path / n / "last.pt") for n in ("s0", "s5"))
    assert s0["config"]["train"]["seed"] == 0 and s5["config"]["train"]["seed"] == 5
    assert s5["config"]["train"]["device"] == "cpu"
    key = theta0_key(weight_key(0))
    assert not torch.equal(s0["meta"][key], s5["meta"][key])


def test_evaluate_device_reaches_the_evaluation(tmp_path, capsys, monkeypatch):
    seen = {}
    def fake(paths, tasks, shots, split, baselines, iters, seed, report, device,
             pretrain_minutes):
        seen.update(device=device, seed=seed, shots=shots, minutes=pretrain_minutes)
        return []
    monkeypatch.setattr("metaloihi.offline.evaluate.evaluate", fake)
    code, _, err = run_cli(["evaluate", tmp_path / "x.pt", "--device", "cpu", "--seed", "9",
                        "--shots", "1,2", "--pretrain-minutes", "0.5",
                        "--out", tmp_path / "rows.json"], capsys)
    assert code == 0, err
    assert seen == {"device": "cpu", "seed": 9, "shots": (1, 2), "minutes": 0.5}
    assert json.loads((tmp_path / "rows.json").read_text()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu(tmp_path, train_toml, capsys):
    base = ["train", "--config", train_toml, "--no-progress", "--set", "train.iterations=2",
            "--set", "train.val_tasks=2", "--set", 'train.dtype="float64"']
    for dev in ("cpu", "cuda"):
        code, _, err = run_cli([*base, "--device", dev, "--out", tmp_path / dev], capsys)
        assert code == 0, err
    a, b = (checkpoint.load(tmp_path / d / "last.pt") for d in ("cpu", "cuda"))
    assert b["config"]["train"]["device"] == "cuda"
    for k in a["meta"]:
        assert torch.allclose(a["meta"][k], b["meta"][k], rtol=1e-6, atol=1e-9), k


# --- deploy -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deploy_bundle(tmp_path_factory):
    """A random 3-way network on 2 x 8 x 8 input (channels 4, 8; seed 3)."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(4, 8), seed=3)
    path, _ = export_bundle(tmp_path_factory.mktemp("deploy") / "d.h5", specs, params, neurons)
    return path


def test_smoke_input_is_seeded(deploy_bundle):
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.deploy import smoke_input
    b = read_bundle(deploy_bundle)
    a, a2, c = (smoke_input(b, 2, 12, 0.3, s) for s in (0, 0, 1))
    assert a.shape == (2, 12, 2, 8, 8) and np.array_equal(a, a2) and not np.array_equal(a, c)


def test_deploy_on_the_sim_target_needs_no_lava_and_prints_sim_counts(deploy_bundle, tmp_path,
                                                                      capsys):
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.target import run_config
    from metaloihi.sim import fixed
    x = np.random.default_rng(4).random((2, 12, 2, 8, 8)) < 0.4
    np.save(tmp_path / "x.npy", x)
    code, out, err = run_cli(["deploy", deploy_bundle, "--input", tmp_path / "x.npy", "--backend",
                          "sim"], capsys)
    assert code == 0, err
    counts = fixed.run(read_bundle(deploy_bundle).net, x, layers="last")["spikes"][-1].sum(1)
    assert out.splitlines()[0].startswith("sim/ (bit-exact model): 2 sample(s)")
    for k, c in enumerate(counts):
        assert f"sample {k}: output spike counts {c.tolist()}" in out
    assert "identical" not in out                         # nothing else ran to compare with
    with pytest.raises(UserError, match="backend 'sim' runs without Lava"):
        run_config("sim")
    with pytest.raises(UserError, match="backend 'board'; expected one of sim, lava, loihi2"):
        run_config("board")


@pytest.mark.lava
def test_deploy_runs_lava_and_prints_the_counts_sim_computes(deploy_bundle, tmp_path, capsys):
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.sim import fixed
    x = np.random.default_rng(4).random((2, 12, 2, 8, 8)) < 0.4
    np.save(tmp_path / "x.npy", x)
    code, out, err = run_cli(["deploy", deploy_bundle, "--input", tmp_path / "x.npy"], capsys)
    assert code == 0, err
    counts = fixed.run(read_bundle(deploy_bundle).net, x, layers="last")["spikes"][-1].sum(1)
    assert counts.sum() > 0                      # a run where spikes reach the output
    assert out.splitlines()[0].startswith("Loihi2SimCfg (fixed_pt): 2 sample(s)")
    for k, c in enumerate(counts):
        assert f"sample {k}: output spike counts {c.tolist()}" in out
    assert "sim/ (bit-exact model): identical, spike for spike" in out


# --- adapt and deploy --dataset draw their samples with datasets/ -----------------------------
def test_adapt_learns_the_task_encoded_task_draws(digits_bundle, capsys):
    """adapt's task is datasets.tasks.encoded_task's: the same spikes, order and labels as
    sample_task + the bundle's encoding + support_order gave, and the accuracy the session
    computes on them."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.tasks import encoded_task, sample_task, support_order
    from metaloihi.onchip.session import adapt
    code, out, err = run_cli(["adapt", digits_bundle, "--dataset", "digits", "--shots", "2",
                          "--queries", "2", "--seed", "0"], capsys)
    assert code == 0, err
    b, ds = read_bundle(digits_bundle), load_dataset("digits", seed=0)
    new = encoded_task(ds, "test", 5, 2, 2, np.random.default_rng(0), b.encoding)
    old = sample_task(ds, "test", 5, 2, 2, np.random.default_rng(0))
    xs, ys = support_order(b.encode(old.support_x), old.support_y.numpy(), 5)
    assert np.array_equal(new.support_x, xs) and np.array_equal(new.support_y, ys)
    assert np.array_equal(new.query_x, b.encode(old.query_x))
    assert np.array_equal(new.query_y, old.query_y.numpy())
    res = adapt(digits_bundle, new.support_x, new.support_y, new.query_x, new.query_y)
    assert out.startswith(f"5-way 2-shot on digits/test (sim): accuracy {res.accuracy:.3f} on "
                          "10 queries")


def test_fit_soel_writes_the_fitted_rule_into_a_new_bundle(digits_bundle, tmp_path, capsys):
    """fit-soel reads a bundle and writes one (never a checkpoint): the best row's rule, in the
    chip's units, with the fit's provenance; the input bundle is left as it was."""
    from metaloihi.bridge.bundle import read_bundle
    before = digits_bundle.read_bytes()
    out = tmp_path / "fitted.h5"
    code, text, err = run_cli(["fit-soel", digits_bundle, "--out", out, "--dataset", "digits",
                           "--split", "train", "--tasks", "1", "--queries", "1"], capsys)
    assert code == 0, err
    assert digits_bundle.read_bytes() == before
    b = read_bundle(out)
    fit = b.meta["rule_fit"]
    rule = b.head.rule
    assert (rule.mant, rule.exp, rule.theta, rule.target_on, rule.passes) == (
        fit["mant"], fit["exp"], fit["theta"], fit["target_on"], fit["passes"])
    assert rule.step == fit["step"] == rule.mant * 2.0 ** (rule.exp - 3)
    assert fit["split"] == "train" and fit["tasks"] == 1
    assert f"wrote {out}: theta {rule.theta:g}, step {rule.step:g}" in text
    code, _, err = run_cli(["fit-soel", digits_bundle, "--dataset", "digits", "--tasks", "1"],
                           capsys)
    assert code == 1 and "no split 'val'" in err and digits_bundle.read_bytes() == before


def test_deploy_dataset_refuses_more_samples_than_the_split_has(digits_bundle, capsys):
    code, _, err = run_cli(["deploy", digits_bundle, "--dataset", "digits", "--samples", "100000"],
                           capsys)
    assert code == 1 and "100000 samples asked of split 'test' of 'digits'" in err
    assert "Traceback" not in err


@pytest.mark.lava
def test_deploy_dataset_runs_the_samples_split_samples_draws(digits_bundle, capsys):
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.tasks import split_samples
    code, out, err = run_cli(["deploy", digits_bundle, "--dataset", "digits", "--samples", "2",
                          "--seed", "5"], capsys)
    assert code == 0, err
    ds = load_dataset("digits")
    pick = split_samples(ds, "test", 2, np.random.default_rng(5))
    assert ds.split_classes("test").size and len(set(pick)) == 2
    for k, i in enumerate(pick):
        assert f"sample {k} ({ds.class_names[int(ds.labels[i])]}): output spike counts" in out
    assert "2 sample(s) of digits/test, 100 steps each" in out
    assert "sim/ (bit-exact model): identical, spike for spike" in out


def test_evaluate_dataset_and_root_reach_the_evaluation(tmp_path, capsys, monkeypatch):
    """evaluate reads a user's folder like adapt does (--dataset/--root), and --seed < 0 is a
    usage error, not an internal one."""
    seen = {}
    def fake(paths, tasks, shots, split, baselines, iters, seed, report, device,
             pretrain_minutes, data=None):
        seen.update(data=data)
        return []
    monkeypatch.setattr("metaloihi.offline.evaluate.evaluate", fake)
    code, _, err = run_cli(["evaluate", tmp_path / "x.pt", "--dataset", "double_nmnist",
                        "--root", tmp_path / "nmnist"], capsys)
    assert code == 0, err
    assert seen["data"] == {"dataset": "double_nmnist", "root": str(tmp_path / "nmnist")}
    code, _, err = run_cli(["evaluate", tmp_path / "x.pt", "--seed", "-1"], capsys)
    assert code == 1 and "seed" in err and "Traceback" not in err   # usage errors exit 1
