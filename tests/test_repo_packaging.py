"""The wheel installs ONE import package, metaloihi, with every root folder as a subpackage,
nothing generic (sim, datasets, ...) at the top of site-packages, and the demo's shipped theta0 as
package data: installed outside the checkout, `metaloihi demo --backend sim` runs from it.

The wheel is built from a copy of the files the build reads (pyproject.toml, README.md, the
package folders), so a stale build/ folder in the checkout never leaks into it. Run time: ~2 s
for the wheel and the install, ~30 s for the installed demo on 2 busy cores (most of it
generating the embedded gestures into the empty data cache)."""
import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import bounded

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
SUBPACKAGES = ["base", "sim", "datasets", "offline", "bridge", "onchip", "studies"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in set(SETUPTOOLS["package-dir"].values()):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    bounded.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-q", "-w", str(out), str(src)], check=True, capture_output=True, timeout=600)
    (whl,) = out.glob("metaloihi-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed with `pip install --target` into a folder outside the checkout."""
    target = tmp_path_factory.mktemp("site")
    bounded.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                 str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    return target


def _env(target: Path, tmp: Path) -> dict:
    """A bare environment: the install target first on the path, the data cache empty."""
    return {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp),
            "METALOIHI_CACHE": str(tmp / "cache"), "MPLCONFIGDIR": str(tmp / "mpl"),
            "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def test_wheel_holds_only_the_metaloihi_package_with_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"metaloihi", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for package, folder in SETUPTOOLS["package-dir"].items():
        for src in (ROOT / folder).rglob("*.py"):    # subpackages too (metaloihi/cli/, ...)
            if "__pycache__" in src.parts:
                continue
            dst = "/".join([*package.split("."), *src.relative_to(ROOT / folder).parts])
            assert dst in names, f"{src.relative_to(ROOT)} not in wheel (pyproject `packages`?)"


def test_wheel_ships_the_demo_theta0_and_bundle_and_no_other_checkpoint_file(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n for n in names if n.startswith("metaloihi/checkpoints/"))
    assert shipped == ["metaloihi/checkpoints/__init__.py", "metaloihi/checkpoints/demo/bundle.h5",
                       "metaloihi/checkpoints/demo/theta0.pt"]


def test_installed_wheel_imports_subpackages_from_itself(installed, tmp_path):
    target = installed
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")
                  and p.name != "bin") == ["metaloihi"]
    code = ("import importlib.util, metaloihi, metaloihi.sim.fixed, metaloihi.datasets.tasks;"
            "print(metaloihi.__file__); print(metaloihi.sim.fixed.__file__);"
            "print(importlib.util.find_spec('sim'), importlib.util.find_spec('datasets'))")
    res = bounded.run([sys.executable, "-c", code], capture_output=True, text=True,
                      env=_env(target, tmp_path), cwd=tmp_path, check=True, timeout=120)
    init, fixed_py, generic = res.stdout.splitlines()
    assert init.startswith(str(target)) and fixed_py.startswith(str(target))
    assert generic == "None None"


@pytest.mark.slow                      # 36 s alone on 2 cores (the data set is made afresh)
def test_installed_demo_runs_from_the_shipped_theta0_outside_the_checkout(installed, tmp_path):
    """`pip install` + `metaloihi demo`: cwd a temp folder, the data cache empty, the package
    and its theta0 found in the install target, never in the checkout. (What the demo computes
    and prints is test_face_demo.py's: here only where it runs from.)"""
    work = tmp_path / "work"
    work.mkdir()
    res = bounded.run([sys.executable, "-m", "metaloihi", "demo", "--backend", "sim",
                       "--tasks", "1", "--sim-tasks", "20", "--out", "out"], capture_output=True, text=True,
                      env={**_env(installed, tmp_path), "COLUMNS": "120"}, cwd=work,
                      timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert re.search(r"learnt on chip \(SOEL head\)\s+sim/, 1 task\s+\d+\.\d%", res.stdout), \
        res.stdout[-3000:]
    result = json.loads((work / "out" / "demo_seed0.json").read_text())
    theta0 = Path(result["checkpoint"])
    assert theta0.is_file() and theta0.is_relative_to(installed), theta0
    assert not theta0.resolve().is_relative_to(ROOT)
    assert (installed / "metaloihi" / "checkpoints" / "demo" / "theta0.pt").samefile(theta0)
    # the installed theta0 is the checkout's, byte for byte
    assert theta0.read_bytes() == (ROOT / "checkpoints" / "demo" / "theta0.pt").read_bytes()
    assert os.listdir(tmp_path / "cache"), "the demo's data set was not cached in the temp dir"
