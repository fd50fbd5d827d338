import os

import pytest

os.environ.setdefault("METALOIHI_CACHE", os.path.join(os.path.dirname(__file__), "..", ".cache-test"))


def pytest_collection_modifyitems(config, items):
    """Tests marked `lava` skip with the reason when Lava cannot be imported here (3.11+)."""
    from metaloihi.base.lava_support import lava_available
    if lava_available():
        return
    skip = pytest.mark.skip(reason="Lava not importable here (needs Python 3.10 + metaloihi[lava])")
    for item in items:
        if "lava" in item.keywords:
            item.add_marker(skip)
