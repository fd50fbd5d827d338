"""The bit-exact model's arithmetic, rule by rule, with numbers worked out by hand from Lava's
source; and the fast event-driven path (numba) against the numpy/torch reference step."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaloihi.base.errors import UserError
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec, paper_arch


def one_step(u, v, a, **kw):
    state = fixed.LifState(np.array([[u]], np.int64), np.array([[v]], np.int64))
    new, s = fixed.lif_step(state, L.LifFixed(**kw), np.array([[a]], np.int64))
    return int(new.u[0, 0]), int(new.v[0, 0]), bool(s[0, 0])


def test_current_decay_has_hidden_plus_one_and_rounds_toward_zero():
    # du=0 still decays by 1/4096: 4096 * 4095 / 4096 = 4095
    assert one_step(4096, 0, 0, du=0, vth=L.VTH_MAX)[0] == 4095
    # -4097 * 4095 / 4096 = -4095.999.. -> -4095 (sign-magnitude shift), not floor's -4096
    assert one_step(-4097, 0, 0, du=0, vth=L.VTH_MAX)[0] == -4095
    # du=4095: factor 0, u is the new input alone, shifted left by 6
    assert one_step(123456, 0, 5, du=4095, vth=L.VTH_MAX)[0] == 5 << 6


def test_voltage_decay_has_no_offset_and_adds_u_and_unshifted_bias():
    # dv=0: no decay; v = v + u + (bias_mant << bias_exp)
    u, v, _ = one_step(0, 1000, 1, du=4095, dv=0, vth=L.VTH_MAX, bias_mant=3, bias_exp=2)
    assert (u, v) == (64, 1000 + 64 + 12)
    # dv=2048 halves: -1001 * 2048 / 4096 = -500.5 -> -500
    assert one_step(0, -1001, 0, du=4095, dv=2048, vth=L.VTH_MAX)[1] == -500


def test_u_takes_lavas_single_24_bit_correction():
    lim = 2 ** 23
    # input lands u just above +2**23: one wrap to the negative side
    a = (lim + 64) >> 6
    assert one_step(0, 0, a, du=4095, vth=L.VTH_MAX)[0] == lim + 64 - 2 * lim
    # exactly 2**23 is kept (the check is strict), exactly -2**23 becomes +2**23
    assert one_step(0, 0, lim >> 6, du=4095, vth=L.VTH_MAX)[0] == lim
    assert one_step(0, 0, -(lim >> 6), du=4095, vth=L.VTH_MAX)[0] == lim


def test_v_clips_to_23_bits_and_threshold_is_strict():
    lim = 2 ** 23
    # the largest threshold (131071 << 6 = 2**23 - 64) is below the clip, so a clipped v spikes
    assert one_step(0, lim - 10, 100, du=4095, vth=L.VTH_MAX) == (6400, 0, True)
    assert one_step(0, -lim + 10, -100, du=4095, vth=L.VTH_MAX)[1] == -lim + 1
    # v == vth << 6 does not spike; one more does, and v resets to 0
    assert one_step(0, 0, 10, du=4095, vth=10) == (640, 640, False)
    assert one_step(0, 1, 10, du=4095, vth=10) == (640, 0, True)


def test_dense_drops_lsb_of_mixed_sign_weights_and_floors_the_exponent_shift():
    np.testing.assert_array_equal(fixed.dense_effective_weights(np.array([3, -3, 255, -256])),
                                  [2, -4, 254, -256])
    np.testing.assert_array_equal(fixed.dense_effective_weights(np.array([3, 255])), [3, 255])
    np.testing.assert_array_equal(fixed.dense_effective_weights(np.array([-3, -255])), [-3, -255])
    layer = fixed.FixedLayer(DenseSpec(2, 1), np.array([[-3, 0]]), L.LifFixed(), weight_exp=-1)
    assert fixed.synaptic_sum(layer, np.array([[1, 0]]))[0, 0] == -2    # floor(-3 / 2)


def test_each_connection_delays_by_one_step():
    net = [fixed.FixedLayer(DenseSpec(1, 1), np.array([[10]]), L.LifFixed(du=4095, dv=4095, vth=1)),
           fixed.FixedLayer(DenseSpec(1, 1), np.array([[10]]), L.LifFixed(du=4095, dv=4095, vth=1))]
    x = np.zeros((1, 6, 1), bool)
    x[0, 0] = True
    rec = fixed.run(net, x, record_uv=True)
    assert rec["spikes"][0][0, :, 0].tolist() == [0, 1, 0, 0, 0, 0]
    assert rec["spikes"][1][0, :, 0].tolist() == [0, 0, 1, 0, 0, 0]
    assert rec["u"][0][0, 1, 0] == 10 << 6


@pytest.mark.parametrize("field,value", [("du", 4096), ("dv", -1), ("vth", 2 ** 17),
                                         ("bias_mant", 5000), ("bias_exp", 8)])
def test_out_of_range_neuron_parameters_name_the_field_and_value(field, value):
    with pytest.raises(UserError, match=f"{field}={value} is out of range"):
        L.LifFixed(**{field: value})


def test_bad_layers_and_inputs_get_clear_errors():
    with pytest.raises(UserError, match="weight mantissa=300"):
        fixed.FixedLayer(DenseSpec(2, 1), np.array([[300, 0]]), L.LifFixed())
    with pytest.raises(UserError, match="conv weight_exp=2"):
        fixed.FixedLayer(ConvSpec((1, 4, 4), 1, (3, 3)), np.ones((1, 1, 3, 3), int),
                         L.LifFixed(), weight_exp=2)
    net = [fixed.FixedLayer(DenseSpec(4, 2), np.ones((2, 4), int), L.LifFixed())]
    with pytest.raises(UserError, match=r"input shape \(5,\)"):
        fixed.run(net, np.zeros((1, 3, 5)))


@st.composite
def extreme_network(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    convs = draw(st.integers(0, 2))
    shape, net = (draw(st.integers(1, 3)), draw(st.integers(5, 9)), draw(st.integers(5, 9))), []
    for _ in range(convs):
        k = draw(st.integers(1, 3))
        spec = ConvSpec(shape, draw(st.integers(1, 5)), (k, k), (draw(st.integers(1, 2)),) * 2,
                        (draw(st.integers(0, k - 1)),) * 2)
        net.append((spec, 0))
        shape = spec.out_shape
    n_in = int(np.prod(shape))
    for n_out in draw(st.lists(st.integers(1, 12), min_size=1, max_size=2)):
        net.append((DenseSpec(n_in, n_out), draw(st.integers(-8, 7))))
        n_in = n_out
    layers = []
    for spec, e in net:
        n = int(np.prod(spec.out_shape))
        w = rng.choice([-256, 255, 0, *rng.integers(-256, 256, 5)], size=spec.weight_shape)
        nrn = L.LifFixed(du=int(rng.choice([0, 4095, rng.integers(4096)])),
                         dv=int(rng.choice([0, 4095, rng.integers(4096)])),
                         vth=int(rng.choice([0, 1, L.VTH_MAX, rng.integers(1, 2000)])),
                         bias_mant=rng.integers(-4096, 4096, n) * rng.integers(0, 2),
                         bias_exp=int(rng.integers(0, 8)))
        layers.append(fixed.FixedLayer(spec, w, nrn, weight_exp=e))
    x = rng.random((draw(st.integers(1, 3)), 30, *layers[0].spec.in_shape)) < rng.random()
    return layers, x


@settings(max_examples=60, deadline=None, derandomize=True)
@given(extreme_network())
def test_fast_event_driven_path_equals_reference_step(case):
    net, x = case
    fast = fixed.run(net, x, record_uv=True)
    state = fixed.init_state(net, x.shape[0])
    for t in range(x.shape[1]):
        state, out = fixed.step(state, net, x[:, t])
        for i, layer_state in enumerate(state.neurons):
            np.testing.assert_array_equal(fast["spikes"][i][:, t], out[i])
            np.testing.assert_array_equal(fast["u"][i][:, t], layer_state.u)
            np.testing.assert_array_equal(fast["v"][i][:, t], layer_state.v)


def test_paper_arch_shapes():
    specs = paper_arch((2, 32, 32), ways=5)
    assert [s.out_shape for s in specs] == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (5,)]
