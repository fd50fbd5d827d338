"""The layer contracts (.importlinter): imports only go down the pipeline, and a deliberately
added upward import makes import-linter fail, naming the contract and the line.

import-linter walks the root package's folder, but the repo keeps each subpackage in its own
root folder (pyproject's package-dir), so the check runs on a copy laid out as the wheel is."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import bounded

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _package_tree(dst: Path) -> Path:
    """Copy every module to where the wheel puts it: dst/metaloihi/<subpackage>/*.py."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    for package, folder in mapping.items():
        src = ROOT / folder
        for f in src.rglob("*.py"):
            out = dst.joinpath(*package.split("."), f.relative_to(src))
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, out)
    return dst


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return bounded.run([str(LINT), "--config", str(ROOT / ".importlinter"), "--no-cache"],
                       cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path) -> Path:
    if not LINT.exists():
        pytest.skip(f"{LINT} missing: install metaloihi[dev]")
    return _package_tree(tmp_path)


def test_every_layer_contract_is_kept(tree):
    res = _lint(tree)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Contracts: 4 kept, 0 broken." in res.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("bridge/quantize.py", "from metaloihi.offline import model",
     "bridge/ and onchip/ read checkpoints as files, never through offline/"),
    ("sim/fixed.py", "from metaloihi.datasets import tasks",
     "Layers import only downward"),
    ("base/atomic.py", "from metaloihi.sim import loihi", "Layers import only downward"),
    ("offline/model.py", "import lava.magma.core.run_conditions",
     "Lava is imported only by bridge/, onchip/ and a rule's lava module"),
    # a rule's card is read by every stage: Lava there would reach offline/
    ("rules/soel/__init__.py", "import lava.magma.core.run_conditions",
     "Lava is imported only by bridge/, onchip/ and a rule's lava module"),
    ("rules/soel/chip.py", "from metaloihi.bridge import bundle", "Layers import only downward"),
])
def test_an_added_upward_import_breaks_a_contract(tree, module, line, contract):
    package, name = module.rsplit("/", 1)
    target = tree / "metaloihi" / package / name
    target.write_text(target.read_text() + f"\n\ndef _upward():\n    {line}\n")
    res = _lint(tree)
    assert res.returncode == 1
    broken = res.stdout.split("Broken contracts", 1)[1]
    mod = f"metaloihi.{package.replace('/', '.')}" + ("" if name == "__init__.py" else
                                                     f".{name[:-3]}")
    assert contract in broken and f"{mod} ->" in broken, res.stdout
