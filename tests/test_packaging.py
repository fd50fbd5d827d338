"""The wheel installs ONE import package, metaloihi, with every root folder as a subpackage,
and nothing generic (sim, datasets, ...) at the top of site-packages."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["base", "sim", "datasets", "offline", "bridge", "onchip", "studies"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (whl,) = out.glob("metaloihi-*.whl")
    return whl


def test_wheel_holds_only_the_metaloihi_package_with_every_module(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"metaloihi", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for folder in SUBPACKAGES:
        for src in (ROOT / folder).glob("*.py"):
            assert f"metaloihi/{folder}/{src.name}" in names, f"{folder}/{src.name} not in wheel"
    for src in (ROOT / "metaloihi").glob("*.py"):
        assert f"metaloihi/{src.name}" in names


def test_installed_wheel_imports_subpackages_from_itself(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")
                  and p.name != "bin") == ["metaloihi"]
    code = ("import importlib.util, metaloihi, metaloihi.sim.fixed, metaloihi.datasets.tasks;"
            "print(metaloihi.__file__); print(metaloihi.sim.fixed.__file__);"
            "print(importlib.util.find_spec('sim'), importlib.util.find_spec('datasets'))")
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=True)
    init, fixed_py, generic = res.stdout.splitlines()
    assert init.startswith(str(target)) and fixed_py.startswith(str(target))
    assert generic == "None None"
