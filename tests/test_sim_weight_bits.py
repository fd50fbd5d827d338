"""sim/'s FixedLayer.num_weight_bits: Lava's Dense keeps only the top
num_weight_bits of its 8-bit weights (one fewer in mixed sign mode). Checked against
lava.utils.weightutils' own clip + truncate (no Lava process needed) and, where Lava runs,
against Lava's Dense, every bit width 1-7, every sign mode, with u wrapping and v clipping in
the fast path."""
import numpy as np
import pytest

from metaloihi.base.errors import UserError
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec


def _weights(mode: str, shape, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).integers(-256, 256, size=shape)
    return {"mixed": w, "excitatory": np.abs(w).clip(0, 255),
            "inhibitory": -np.abs(w).clip(0, 255)}[mode]


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("mode", ["mixed", "excitatory", "inhibitory"])
def test_effective_weights_equal_lavas_clip_and_truncate(bits, mode):
    weightutils = pytest.importorskip("lava.utils.weightutils")
    w = _weights(mode, (40, 30), bits)
    sign = weightutils.determine_sign_mode(w)
    want = weightutils.truncate_weights(weightutils.clip_weights(w, sign, num_bits=8), sign, bits)
    np.testing.assert_array_equal(fixed.dense_effective_weights(w, bits), want)


def test_eight_bits_is_the_old_behaviour_and_fewer_bits_drop_low_bits():
    w = np.array([3, -3, 255, -256, 100])
    np.testing.assert_array_equal(fixed.dense_effective_weights(w), [2, -4, 254, -256, 100])
    np.testing.assert_array_equal(fixed.dense_effective_weights(w, 4), [0, -32, 224, -256, 96])
    np.testing.assert_array_equal(fixed.dense_effective_weights(np.array([255, 17]), 3),
                                  [224, 0])


def test_num_weight_bits_is_checked():
    spec = DenseSpec(3, 2)
    nrn = L.LifFixed(du=0, dv=0, vth=10)
    for bad in (0, 9, 2.5, True):
        with pytest.raises(UserError, match="num_weight_bits"):
            fixed.FixedLayer(spec, np.ones((2, 3), int), nrn, num_weight_bits=bad)
    conv = ConvSpec((1, 4, 4), 2, (3, 3))
    with pytest.raises(UserError, match="conv num_weight_bits=6: Lava's Conv has no such"):
        fixed.FixedLayer(conv, np.ones(conv.weight_shape, int), nrn, num_weight_bits=6)


def test_fewer_bits_change_what_sim_computes():
    rng = np.random.default_rng(3)
    spec = DenseSpec(20, 4)
    w = _weights("mixed", spec.weight_shape, 3)
    x = rng.random((1, 30, 20)) < 0.5
    nrn = L.LifFixed(du=100, dv=100, vth=500)
    runs = [fixed.run([fixed.FixedLayer(spec, w, nrn, num_weight_bits=b)], x, record_uv=True)
            for b in (8, 3)]
    assert not np.array_equal(runs[0]["u"][0], runs[1]["u"][0])
    # the 3-bit layer is the 8-bit layer on pre-truncated weights
    pre = fixed.FixedLayer(spec, fixed.dense_effective_weights(w, 3), nrn)
    np.testing.assert_array_equal(fixed.run([pre], x, record_uv=True)["u"][0], runs[1]["u"][0])


@pytest.mark.lava
@pytest.mark.parametrize("bits", range(1, 8))
def test_dense_with_fewer_weight_bits_identical_to_lava(bits):
    from helpers.lava_run import assert_sim_identical_to_lava
    rng = np.random.default_rng(100 + bits)
    mode = ["mixed", "excitatory", "inhibitory"][bits % 3]
    a, b = DenseSpec(12, 9), DenseSpec(9, 4)
    net = [fixed.FixedLayer(a, _weights(mode, a.weight_shape, bits), L.LifFixed(
               du=800, dv=300, vth=40 * bits), weight_exp=2, num_weight_bits=bits),
           fixed.FixedLayer(b, _weights("mixed", b.weight_shape, bits + 50), L.LifFixed(
               du=4095, dv=200, vth=300, bias_mant=3, bias_exp=2), num_weight_bits=bits)]
    assert_sim_identical_to_lava(net, rng.random((40, 12)) < 0.4)


@pytest.mark.lava
@pytest.mark.parametrize("bits", [2, 5])
def test_u_wraps_and_v_clips_with_fewer_bits_in_the_fast_path(bits):
    """Limit weights, weight_exp 7, fan-in 2400: u takes Lava's 24-bit wrap and v clips, in
    fixed.run (the fast path) as in Lava and in fixed.step."""
    from helpers.lava_run import assert_sim_identical_to_lava
    rng = np.random.default_rng(bits)
    big = DenseSpec(2400, 6)
    w = np.full(big.weight_shape, 255)
    w[3:] = -256
    hidden = fixed.FixedLayer(big, w, L.LifFixed(du=0, dv=0, vth=L.VTH_MAX), weight_exp=7,
                              num_weight_bits=bits)
    head = fixed.FixedLayer(DenseSpec(6, 3), rng.integers(-256, 256, (3, 6)),
                            L.LifFixed(du=4095, dv=4095, vth=0, bias_mant=4095, bias_exp=7),
                            num_weight_bits=bits)
    _, ours = assert_sim_identical_to_lava([hidden, head], rng.random((40, 2400)) < 0.6)
    u, v = ours["u"][0], ours["v"][0]
    assert (np.abs(v) == L.UV_LIMIT - 1).any(), "case must clip v"
    assert np.abs(u).max() > 2 ** 20
