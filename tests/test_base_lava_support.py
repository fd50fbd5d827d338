"""base/lava_support.py: Lava is imported lazily and only where deployed; without it, one clear
error naming the Python version and the extra to install."""
import sys

import pytest

from helpers import bounded
from metaloihi.base import lava_support


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
