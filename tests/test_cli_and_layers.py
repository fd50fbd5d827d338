"""The package face: CLI exit codes, the lazy and optional Lava import."""
import sys

import pytest

from helpers import bounded
from metaloihi.base import lava_support
from metaloihi.cli import main


def run_cli(*args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def test_version_exits_0(capsys):
    assert run_cli("version") == 0
    assert "metaloihi 0.1.0" in capsys.readouterr().out


def test_typo_in_command_exits_1_with_one_line_no_traceback(capsys):
    assert run_cli("trian") == 1
    err = capsys.readouterr().err
    assert "No such command 'trian'" in err and "Traceback" not in err


def test_user_error_exits_1_with_one_line(capsys):
    assert run_cli("demo", "--backend", "loihi") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: backend 'loihi'; expected one of sim, lava, loihi2"]


def test_sim_datasets_offline_do_not_import_lava():
    code = ("import sys, metaloihi.sim.fixed, metaloihi.sim.kernels, metaloihi.datasets.tasks, "
            "metaloihi.offline; print(sorted(m for m in sys.modules if m.split('.')[0] == 'lava'))")
    out = bounded.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                      timeout=120)
    assert out.stdout.strip() == "[]"


def test_missing_lava_raises_one_clear_error(monkeypatch):
    def broken(name):
        raise ImportError(f"No module named '{name}'")
    monkeypatch.setattr(lava_support.importlib, "import_module", broken)
    with pytest.raises(lava_support.LavaUnavailable, match=r"Python 3\.10 only.*metaloihi\[lava\]"):
        lava_support.require_lava("lava.proc.lif.process")
    assert lava_support.lava_available() is False
