"""What the test files share. Files mirror the packages: tests/test_<layer>_<module or topic>.py,
layer one of base, sim, datasets, rules, offline, bridge, onchip, studies, cli (metaloihi/cli/),
face (the rest of metaloihi/: demo, report, plots, watchdog) and repo (the repository as a whole:
docs, layer contracts, packaging, the suite's own rules); tests/bad_inputs/ is the corpus of
user mistakes across every layer. Helpers that are functions live in tests/helpers/.

Markers: `lava` (needs Lava; skipped with the reason where it cannot be imported) and `slow`
(over 20 s alone on 2 cores; `pytest -m "not slow"` leaves them out, CI runs everything)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("METALOIHI_CACHE",
                      os.path.join(os.path.dirname(__file__), "..", ".cache-test"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `lava` skip with the reason when Lava cannot be imported here (3.11+)."""
    from metaloihi.base.lava_support import lava_available
    if lava_available():
        return
    skip = pytest.mark.skip(reason="Lava not importable here (needs Python 3.10 + metaloihi[lava])")
    for item in items:
        if "lava" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def gestures():
    """The embedded gestures data set (frames from the test cache)."""
    from metaloihi.datasets import load_dataset
    return load_dataset("gestures")


@pytest.fixture(scope="module")
def valid_bundle(tmp_path_factory) -> Path:
    """conv(2x8x8 -> 2) -> conv(4) -> head(3), random weights (seed 1): a valid bundle, small
    enough to build in ms; tests copy it before damaging it."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 8, 8), ways=3, channels=(2, 4), seed=1)
    path, _ = export_bundle(tmp_path_factory.mktemp("valid") / "good.h5", specs, params, neurons)
    return path


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory) -> Path:
    """A random 5-way network taking the embedded digits' frames as they are (2 x 34 x 34)."""
    from metaloihi.bridge.export import export_bundle, random_float_network
    specs, params, neurons = random_float_network((2, 34, 34), ways=5, channels=(4, 8), seed=1)
    path, _ = export_bundle(tmp_path_factory.mktemp("digits") / "d.h5", specs, params, neurons)
    return path


@pytest.fixture()
def train_toml(tmp_path) -> Path:
    """helpers.training.TRAIN_TOML (the small training run) written to tmp_path/train.toml."""
    from helpers.training import TRAIN_TOML
    path = tmp_path / "train.toml"
    path.write_text(TRAIN_TOML)
    return path
