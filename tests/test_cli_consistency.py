"""One CLI, one way to say each thing (issue 22 item 6): every command that names a data set
takes `--root DIR` with the same help and hands it to datasets.load_dataset; `--device` takes
cpu, cuda and cuda:K and refuses anything else, or a GPU that is not there, in one line;
`deploy` picks its target with `--backend` alone; the `data` group's help names its commands
and data sets. Errors go through `metaloihi.cli.main` (the guard that makes them one line);
help pages through typer's CliRunner."""
import re
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from helpers.cli import run_cli
from metaloihi import cli
from metaloihi.base.errors import UserError
from metaloihi.cli.app import data_app
from metaloihi.cli.options import ROOT_HELP
from metaloihi.datasets.names import EMBEDDED, OWN, REAL

ROOT = Path(__file__).resolve().parents[1]
# the commands that name a data set, and the arguments that make each reach load_dataset
NAMING_A_DATA_SET = {"data show": ["data", "show", "nmnist"], "deploy": ["deploy", "{bundle}",
                     "--dataset", "nmnist"], "adapt": ["adapt", "{bundle}"],
                     "fit-soel": ["fit-soel", "{bundle}"], "cost": ["cost", "{bundle}"],
                     "continual": ["continual", "{bundle}"]}


def _commands(group=None, prefix=()):
    """(name path, click command) of every leaf command of the app."""
    group = group or typer.main.get_command(cli.app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), cmd


def _param(cmd, name):
    return next((p for p in cmd.params if p.name == name), None)


@pytest.fixture(scope="module")
def nmnist_bundle(tmp_path_factory):
    """A 5-way random bundle whose meta names a real data set (nmnist): the commands that
    default to the bundle's data set need --root for it."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=5, channels=(2,), seed=0)
    path, _ = export_bundle(tmp_path_factory.mktemp("root") / "b.h5", specs, params, neurons,
                            meta={"dataset": "nmnist"})
    return path


# --- --root -----------------------------------------------------------------------------------
def test_every_command_naming_a_data_set_takes_root_with_the_one_help():
    cmds = dict(_commands())
    naming = {n for n, c in cmds.items() if _param(c, "dataset") is not None}
    assert naming >= {*NAMING_A_DATA_SET, "evaluate"}
    for name in naming - {"evaluate"}:
        root = _param(cmds[name], "root")
        assert root is not None, f"{name} has no --root"
        assert (root.opts, root.metavar, root.default) == (["--root"], "DIR", None), name
        assert root.help == f"{ROOT_HELP} (default: none).", name
    # evaluate's default is the checkpoint's data.root; the words are the same
    assert _param(cmds["evaluate"], "root").help == (f"{ROOT_HELP} (default: the checkpoint's "
                                                     "data.root).")
    assert ROOT_HELP == ("Folder of a real data set's recordings (nmnist, double_nmnist, "
                         "dvs_gesture, asl_dvs, double_asl_dvs, nomniglot; read as published, "
                         "never downloaded) or of your own (events: one subfolder per class); "
                         "the embedded ones (digits, double_digits, gestures) take none")


@pytest.mark.parametrize("name", list(NAMING_A_DATA_SET))
def test_root_reaches_load_dataset(name, nmnist_bundle, tmp_path, capsys, monkeypatch):
    """The folder given is the one load_dataset gets, for the data set named (or the
    bundle's): the fake loader stops the command there with a line naming both."""
    seen = []

    def fake(dataset, seed=0, root=None, **kw):
        seen.append((dataset, root))
        raise UserError(f"stop: {dataset} from {root}")
    monkeypatch.setattr("metaloihi.datasets.registry.load_dataset", fake)
    argv = [a.format(bundle=nmnist_bundle) for a in NAMING_A_DATA_SET[name]]
    code, _, err = run_cli([*argv, "--root", tmp_path / "N-MNIST"], capsys)
    assert (code, err) == (1, f"error: stop: nmnist from {tmp_path / 'N-MNIST'}\n")
    assert seen == [("nmnist", tmp_path / "N-MNIST")]


@pytest.mark.parametrize("name", ["adapt", "fit-soel", "cost", "continual"])
def test_a_real_data_set_without_root_says_to_give_it(name, nmnist_bundle, capsys):
    argv = [a.format(bundle=nmnist_bundle) for a in NAMING_A_DATA_SET[name]]
    code, _, err = run_cli(argv, capsys)
    assert (code, err) == (1, "error: data set 'nmnist' reads recordings from a local folder; "
                              "give its path (--root DIR; nothing is downloaded)\n")


def test_deploy_root_without_dataset_is_refused(nmnist_bundle, tmp_path, capsys):
    code, _, err = run_cli(["deploy", nmnist_bundle, "--root", tmp_path, "--backend", "sim"],
                           capsys)
    assert (code, err) == (1, f"error: --root {str(tmp_path)!r} is the folder of --dataset's "
                              "recordings; give --dataset NAME too\n")


def test_an_embedded_data_set_given_root_is_refused(nmnist_bundle, tmp_path, capsys):
    code, _, err = run_cli(["cost", nmnist_bundle, "--dataset", "digits", "--root", tmp_path],
                           capsys)
    assert (code, err) == (1, "error: data set 'digits' is generated locally; it takes no "
                              "folder (no --root)\n")


# --- --device ---------------------------------------------------------------------------------
@pytest.fixture
def two_gpus(monkeypatch):
    """torch as on a machine with two GPUs (parsing and routing only: nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def fake_runs(monkeypatch):
    """train and evaluate record the device they were given instead of running."""
    seen = {}

    def train(cfg, out, **kw):
        seen["train"] = cfg.train.device
        return {"iterations": 0, "wall_s": 0.0, "stopped": "test", "best_val": 0.0,
                "best_iteration": 0, "out": str(out)}

    def evaluate(*args, device, **kw):
        seen["evaluate"] = device
        return []
    monkeypatch.setattr("metaloihi.offline.train.train", train)
    monkeypatch.setattr("metaloihi.offline.evaluate.evaluate", evaluate)
    return seen


DEVICE_ARGV = {"train": ["train", "--out", "{tmp}/run"], "evaluate": ["evaluate", "{tmp}/x.pt"]}


@pytest.mark.parametrize("command", list(DEVICE_ARGV))
@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:1"])
def test_device_takes_cpu_cuda_and_cuda_k(command, device, two_gpus, fake_runs, tmp_path,
                                          capsys):
    argv = [a.format(tmp=tmp_path) for a in DEVICE_ARGV[command]]
    code, _, err = run_cli([*argv, "--device", device], capsys)
    assert (code, err) == (0, "")
    assert fake_runs == {command: device}


@pytest.mark.parametrize("command", list(DEVICE_ARGV))
@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cuda:-1", "cuda:", "CPU", "cuda:1:0"])
def test_a_bad_device_is_one_line_naming_it(command, device, fake_runs, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in DEVICE_ARGV[command]]
    code, out, err = run_cli([*argv, "--device", device], capsys)
    assert (code, out, err) == (1, "", f"error: --device={device!r}; expected cpu, cuda or "
                                       "cuda:K (K: a GPU index)\n")
    assert fake_runs == {}                              # refused before any work


@pytest.mark.parametrize("command", list(DEVICE_ARGV))
def test_cuda_where_torch_finds_no_gpu_says_so_in_one_line(command, fake_runs, tmp_path,
                                                           capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    argv = [a.format(tmp=tmp_path) for a in DEVICE_ARGV[command]]
    code, _, err = run_cli([*argv, "--device", "cuda:1"], capsys)
    assert (code, err) == (1, "error: --device='cuda:1' but torch.cuda.is_available() is False "
                              "here (torch (CUDA 12.1) finds no usable GPU); use cpu\n")
    monkeypatch.setattr(torch.version, "cuda", None)
    code, _, err = run_cli([*argv, "--device", "cuda"], capsys)
    assert (code, err) == (1, "error: --device='cuda' but torch.cuda.is_available() is False "
                              "here (this torch is a CPU-only build); use cpu\n")
    assert fake_runs == {}


def test_a_gpu_index_beyond_the_gpus_names_the_ones_there(two_gpus, fake_runs, tmp_path,
                                                          capsys):
    code, _, err = run_cli(["evaluate", tmp_path / "x.pt", "--device", "cuda:2"], capsys)
    assert (code, err) == (1, "error: --device='cuda:2' but torch sees 2 GPU(s) here (cuda:0 "
                              "to cuda:1)\n")


def test_every_device_option_is_the_shared_one():
    from metaloihi.cli.options import DEVICE_HELP
    found = {name: (p.opts, p.metavar, p.default, p.help) for name, cmd in _commands()
             if (p := _param(cmd, "device")) is not None}
    assert DEVICE_HELP == ("Torch device: cpu, cuda or cuda:K (the K-th GPU); cuda needs a CUDA "
                           "build of torch and a GPU, never falls back to the CPU")
    assert found == {
        "train": (["--device"], "cpu|cuda|cuda:K", None,
                  f"{DEVICE_HELP} (default: the config's train.device, cpu)."),
        "evaluate": (["--device"], "cpu|cuda|cuda:K", "cpu", f"{DEVICE_HELP} (default: cpu).")}


# --- deploy: --backend is the one way to pick the target --------------------------------------
def test_deploy_has_backend_and_no_hw(nmnist_bundle, capsys):
    deploy = dict(_commands())["deploy"]
    assert _param(deploy, "hw") is None
    assert _param(deploy, "backend").opts == ["--backend"]
    code, _, err = run_cli(["deploy", nmnist_bundle, "--backend", "board"], capsys)
    assert (code, err) == (1, "error: Invalid value for '--backend': 'board' is not one of "
                              "'sim', 'lava', 'loihi2'. (see 'metaloihi deploy --help')\n")
    code, out, err = run_cli(["deploy", nmnist_bundle, "--hw"], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: No such option: --hw") and err.count("\n") == 1, err


def test_no_page_shows_the_removed_hw_option():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    shown = [f"{p.relative_to(ROOT)}:{k}" for p in pages if p.is_file()
             for k, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"--hw\b", line)]
    assert shown == []


# --- the data group -----------------------------------------------------------------------------
def test_data_help_names_its_commands_and_data_sets():
    res = CliRunner().invoke(cli.app, ["data", "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    commands = [c.name for c in data_app.registered_commands]
    assert commands == ["show", "events"]
    about = " ".join(res.output.split("Options")[0].split())   # the group's own text
    assert ("Commands: show (a PNG grid of a data set's samples), events (check a folder of "
            "your own recordings and write its settings).") in about
    assert f"Embedded (generated here, cached, no files): {', '.join(EMBEDDED)}." in about
    assert (f"Real recordings (read from --root DIR, never downloaded): {', '.join(REAL)}."
            in about)
    assert f"Your own recordings (--root DIR, one subfolder per class): {', '.join(OWN)}." \
        in about
    top = CliRunner().invoke(cli.app, ["--help"], env={"COLUMNS": "400"})
    row = next(ln for ln in top.output.splitlines() if ln.lstrip("│ ").startswith("data "))
    assert all(name in row for name in (*commands, *EMBEDDED, *REAL, *OWN)), row
