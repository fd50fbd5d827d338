"""metaloihi/plots.py: the demo's figure renders a non-trivial PNG of the size documented, and
arguments of the wrong shape or labels out of range are named before anything is written."""
import numpy as np
import pytest

from helpers.images import png_colours
from metaloihi.base.errors import UserError
from metaloihi.plots import demo_figure

WAYS, SHOTS, T, N_IN = 5, 5, 20, 48
NAMES = ["clap_2", "wave_right_2", "circle_ccw_1x_left", "roll_forward", "drums_2"]


def demo_args(**override):
    rng = np.random.default_rng(0)
    shots = (rng.random((SHOTS, T, 2, 16, 16)) < 0.05).astype(np.uint8)
    spikes = rng.random((SHOTS, T, WAYS)) < 0.1
    wb = rng.integers(-50, 50, (WAYS, N_IN)) * 2
    wa = wb + (rng.random((WAYS, N_IN)) < 0.3) * rng.integers(-8, 8, (WAYS, N_IN)) * 2
    args = dict(shots=shots, labels=np.arange(SHOTS), confusion=rng.integers(0, 6, (WAYS, WAYS)),
                weights_before=wb, weights_after=wa, head_spikes_learning=spikes,
                class_names=NAMES, title="synthetic")
    args.update(override)
    return args


def test_demo_figure_renders_a_nontrivial_png(tmp_path):
    out = demo_figure(tmp_path / "sub" / "demo.png", **demo_args())
    assert out == tmp_path / "sub" / "demo.png" and out.stat().st_size > 30_000
    from PIL import Image
    with Image.open(out) as im:
        assert im.size == (1350, 1100)
    assert png_colours(out) > 200          # event frames, colormaps, raster: many colours
    assert [p.name for p in out.parent.iterdir()] == ["demo.png"]   # no temp file left


@pytest.mark.parametrize("arg, bad", [
    ("shots", np.zeros((SHOTS, T, 3, 16, 16))),
    ("labels", np.arange(SHOTS - 1)),
    ("confusion", np.zeros((WAYS, WAYS - 1), int)),
    ("weights_before", np.zeros((WAYS + 1, N_IN))),
    ("weights_after", np.zeros((WAYS, N_IN + 1))),
    ("head_spikes_learning", np.zeros((SHOTS, T, WAYS - 1), bool)),
])
def test_demo_figure_bad_shape_names_the_argument(tmp_path, arg, bad):
    with pytest.raises(UserError, match=arg):
        demo_figure(tmp_path / "x.png", **demo_args(**{arg: bad}))
    assert not (tmp_path / "x.png").exists()


def test_demo_figure_label_out_of_range(tmp_path):
    with pytest.raises(UserError, match="labels must be in 0..4"):
        demo_figure(tmp_path / "x.png", **demo_args(labels=np.array([0, 1, 2, 3, 5])))
