"""sim/ against Lava's own fixed_pt CPU simulator: identical spikes, u and v, every layer,
every step. Networks are drawn by hypothesis (a bounded, derandomised number of examples so CI
stays fast and reproducible) and include the extremes where integer semantics bite."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec

from helpers.lava_run import assert_sim_identical_to_lava
from helpers.random_net import calibrated_network

pytestmark = pytest.mark.lava
LAVA_SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


@st.composite
def neuron(draw, n):
    extreme = st.sampled_from([0, 4095])
    du = draw(st.one_of(extreme, st.integers(0, 4095)))
    dv = draw(st.one_of(extreme, st.integers(0, 4095)))
    vth = draw(st.one_of(st.sampled_from([0, 1, L.VTH_MAX]), st.integers(1, 3000)))
    bias_exp = draw(st.integers(0, 7))
    seed = draw(st.integers(0, 2 ** 31))
    scale = draw(st.sampled_from([0, 20, 4095]))
    bias = np.random.default_rng(seed).integers(-scale, scale + 1, size=n)
    return L.LifFixed(du=du, dv=dv, vth=vth, bias_mant=np.clip(bias, -4096, 4095),
                      bias_exp=bias_exp)


@st.composite
def weights(draw, shape):
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    mode = draw(st.sampled_from(["mixed", "excitatory", "inhibitory", "limits"]))
    if mode == "limits":        # only the 8-bit extremes
        return rng.choice([L.WEIGHT_MANT_MIN, L.WEIGHT_MANT_MAX, 0], size=shape)
    w = rng.integers(L.WEIGHT_MANT_MIN, L.WEIGHT_MANT_MAX + 1, size=shape)
    return {"mixed": w, "excitatory": np.abs(w).clip(0, 255), "inhibitory": -np.abs(w).clip(0, 255)}[mode]


@st.composite
def dense_chain(draw):
    sizes = draw(st.lists(st.integers(1, 24), min_size=3, max_size=4))
    net = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        spec = DenseSpec(n_in, n_out)
        net.append(fixed.FixedLayer(spec, draw(weights(spec.weight_shape)), draw(neuron(n_out)),
                                    weight_exp=draw(st.integers(-8, 7))))
    steps = draw(st.integers(50, 70))
    density = draw(st.sampled_from([0.05, 0.3, 0.9]))
    x = np.random.default_rng(draw(st.integers(0, 2 ** 31))).random((steps, sizes[0])) < density
    return net, x


@st.composite
def conv_stack(draw):
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(6, 12)), draw(st.integers(6, 12))
    shape, net = (c, h, w), []
    for _ in range(draw(st.integers(1, 2))):
        k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
        k = (min(k[0], shape[1]), min(k[1], shape[2]))
        spec = ConvSpec(shape, draw(st.integers(1, 4)), k,
                        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                        padding=(draw(st.integers(0, k[0] - 1)), draw(st.integers(0, k[1] - 1))))
        n = int(np.prod(spec.out_shape))
        net.append(fixed.FixedLayer(spec, draw(weights(spec.weight_shape)), draw(neuron(n))))
        shape = spec.out_shape
    head = DenseSpec(int(np.prod(shape)), draw(st.integers(1, 5)))
    net.append(fixed.FixedLayer(head, draw(weights(head.weight_shape)), draw(neuron(head.out_features)),
                                weight_exp=draw(st.integers(-3, 3))))
    x = np.random.default_rng(draw(st.integers(0, 2 ** 31))).random((50, c, h, w)) < 0.3
    return net, x


@LAVA_SETTINGS
@given(dense_chain())
def test_dense_lif_chains_identical_to_lava(case):
    assert_sim_identical_to_lava(*case)


@LAVA_SETTINGS
@given(conv_stack())
def test_conv_lif_stacks_identical_to_lava(case):
    assert_sim_identical_to_lava(*case)


def test_u_wraps_v_clips_and_int32_overflows_identical_to_lava():
    """Hand-built extremes: 8-bit limit weights with weight_exp 7 over a fan-in of 2400, so the
    synaptic input overflows int32 after Lava's << 6, u takes Lava's 24-bit wrap, v clips."""
    rng = np.random.default_rng(7)
    big = DenseSpec(2400, 6)
    w = np.full(big.weight_shape, 255)
    w[3:] = -256
    hidden = fixed.FixedLayer(big, w, L.LifFixed(du=0, dv=0, vth=L.VTH_MAX), weight_exp=7)
    head = fixed.FixedLayer(DenseSpec(6, 3), rng.integers(-256, 256, (3, 6)),
                            L.LifFixed(du=4095, dv=4095, vth=0, bias_mant=4095, bias_exp=7))
    x = rng.random((60, 2400)) < 0.6
    _, ours = assert_sim_identical_to_lava([hidden, head], x)
    u, v = ours["u"][0], ours["v"][0]
    act = (w * (x[:, None, :])).sum(-1).astype(np.int64) << 7
    assert (np.abs(act << 6) > 2 ** 31).any(), "case must overflow int32 after the << 6"
    assert (np.abs(v) == L.UV_LIMIT - 1).any(), "case must clip v"
    assert np.abs(u).max() > 2 ** 20


def test_conv_matches_lava_convolution_orientation_exactly():
    """An asymmetric kernel on one input pixel: the output pattern must be Lava's, not mirrored."""
    spec = ConvSpec((1, 7, 7), 1, (3, 3), stride=(1, 1), padding=(1, 1))
    w = np.arange(9).reshape(1, 1, 3, 3) * 2 + 2
    net = [fixed.FixedLayer(spec, w, L.LifFixed(du=4095, dv=4095, vth=L.VTH_MAX))]
    x = np.zeros((50, 1, 7, 7), bool)
    x[0, 0, 2, 4] = True
    lava, ours = assert_sim_identical_to_lava(net, x)
    # correlation: out[y, x] = sum in[y+ky-1, x+kx-1] w[ky, kx]; u holds (w << 6) decayed once
    u1 = ours["u"][0][0, 1].reshape(7, 7)
    assert u1[2 - 1 + 1, 4 - 1 + 1] == w[0, 0, 1, 1] << 6      # centre tap
    assert u1[1, 3] == w[0, 0, 2, 2] << 6                       # the input is at the +1,+1 tap


def test_wrap_signed_24_equals_lavas_signed_clamp():
    from metaloihi.base.lava_support import require_lava
    signed_clamp = require_lava("lava.proc.conv.utils").signed_clamp
    x = np.random.default_rng(0).integers(-2 ** 30, 2 ** 30, size=10000)
    np.testing.assert_array_equal(fixed.wrap_signed(x, 24), signed_clamp(x, bits=24))


def test_paper_shaped_conv_network_with_realistic_activity_identical_to_lava():
    """The paper's three strided 5x5 conv layers + dense head (channels shrunk for CI time),
    thresholds calibrated to ~5% firing, so every layer is active and none saturates."""
    from metaloihi.sim.arch import paper_arch
    rng = np.random.default_rng(3)
    specs = paper_arch((2, 16, 16), ways=5, channels=(4, 8, 8))
    x = rng.random((2, 60, 2, 16, 16)) < 0.05
    net = calibrated_network(specs, x, rate=0.05, rng=rng)
    _, ours = assert_sim_identical_to_lava(net, x[0])
    rates = [s.mean() for s in ours["spikes"]]
    assert all(0.005 < r < 0.3 for r in rates), rates
