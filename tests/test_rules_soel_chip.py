"""SOEL on chip: Lava's graph (onchip/) and sim/'s bit-exact emulation (rules/soel/chip.py)
compute the same bits - output spikes every step and head weights after every shot, learning
engine and its random streams included - and the emulation is the spec's rule (rules/soel/float_form.py)
in Lava's integer units."""
import numpy as np
import pytest

from metaloihi.bridge.bundle import HeadParams, read_bundle, write_bundle
from metaloihi.rules.soel import LearntRule, to_chip
from metaloihi.bridge.export import random_float_network
from metaloihi.bridge.quantize import quantize
from metaloihi.sim.readout import predict_np
from metaloihi.sim import loihi as L
from metaloihi.rules.soel import float_form as spec
from metaloihi.rules.soel import chip as sf
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.fixed import FixedLayer

T = 16


def random_soel_bundle(path, seed, conv=True, head_exp=0, eta=0.3, theta=1.5, passes=1):
    """A random fixed-point bundle (conv or dense frozen layers, 5-way head) that is active
    enough for the error to trigger updates."""
    rng = np.random.default_rng(seed)
    if conv:
        first = ConvSpec((2, 6, 5), 3, kernel=(3, 3), stride=(1, 1), padding=(1, 1))
        bias = rng.integers(-20, 20, first.out_shape).ravel()
    else:
        first = DenseSpec(40, 30)
        bias = rng.integers(-20, 20, 30)
    d1 = DenseSpec(int(np.prod(first.out_shape)), 12)
    h = DenseSpec(12, 5)
    net = [FixedLayer(first, 2 * rng.integers(-20, 60, first.weight_shape),
                      L.LifFixed(du=400, dv=300, vth=60, bias_mant=bias, bias_exp=6)),
           FixedLayer(d1, 2 * rng.integers(-30, 60, d1.weight_shape),
                      L.LifFixed(du=400, dv=300, vth=100)),
           FixedLayer(h, 2 * rng.integers(-40, 80, h.weight_shape),
                      L.LifFixed(du=400, dv=300, vth=150 << max(head_exp, 0) >> max(-head_exp, 0),
                                 bias_mant=rng.integers(-30, 30, 5), bias_exp=3),
                      weight_exp=head_exp)]
    head = HeadParams(to_chip(LearntRule(theta=theta, eta=eta, target_on=6, target_off=1,
                                         rng_seed=int(seed) + 100, passes=passes), 1.0))
    write_bundle(path, net, head, scales=[1.0] * 3)
    in_shape = (2, 6, 5) if conv else (40,)
    return path, in_shape


def rule_for(path):
    b = read_bundle(path)
    return b, sf.rule_of(b.head.rule, T)


# --- the emulation is the spec, in Lava's units ----------------------------------------------
def test_eta_maps_to_the_nearest_step_lava_accepts():
    for eta in (0.01, 0.3, 1.0, 3.0, 37.0, 500.0):
        m, e = sf.eta_to_rule(eta)
        assert 1 <= m <= 7 and -7 <= e <= 8                        # Lava's parser's ranges
        step = m * 2.0 ** (e - 3)
        cands = [mm * 2.0 ** (ee - 3) for mm in range(1, 8) for ee in range(-7, 9)]
        assert abs(step - eta) == pytest.approx(min(abs(c - eta) for c in cands))
    assert sf.eta_to_rule(0.3) == (5, -1)                        # 5 * 2^-4 = 0.3125
    rule = sf.SoelRule(5, -1, 1.5, 6, 1, T, 0)
    assert rule.dw_string() == "5 * 2^-1 * u0 * x1 * y3 - 5 * 2^-1 * u0 * x1 * y2"


def test_pre_trace_is_the_saturating_spike_count():
    rng = np.random.default_rng(0)
    pre = rng.random((T + 1, 50)) < np.linspace(0, 1, 50)
    pre[-1] = False                                              # the gated learning step
    x = sf.pre_trace_at_epoch_end(pre, r=0.5, period=T + 1)
    np.testing.assert_array_equal(x, spec.pre_trace_np(pre))
    many = np.ones((300, 3), bool)
    assert sf.pre_trace_at_epoch_end(many, 0.5, 300).tolist() == [127, 127, 127]


def test_third_factor_is_the_specs_thresholded_error():
    rule = sf.SoelRule(1, 0, 2.5, 8, 1, T, 0)
    counts = np.array([0, 3, 8, 13, 1])
    n = sf.quantised_error(counts, 2, rule)
    err = spec.error_np(counts, 2, spec.SoelTargets(8, 1))
    np.testing.assert_array_equal(n, np.trunc(err / 2.5))
    assert n.tolist() == [0, 0, 0, 4, 0]
    assert sf.quantised_error(counts, -1, rule).tolist() == [0] * 5    # query: no learning


@pytest.mark.parametrize("mant,exp", [(5, -1), (1, -7), (7, 2), (3, 0)])
def test_weight_update_is_minus_step_n_x_up_to_rounding(mant, exp):
    rng = np.random.default_rng(mant * 10 + exp)
    rule = sf.SoelRule(mant, exp, 1.0, 6, 1, T, 0)
    w = 2 * rng.integers(-60, 60, (5, 30))
    x1 = rng.integers(0, 20, 30)
    n = rng.integers(-4, 5, 5)
    r_y = 0.5
    want = w - rule.step * np.outer(n, x1)
    for r_w in np.linspace(0.01, 0.99, 25):
        got = sf.learn(w, x1, n, rule, r_w, r_y)
        # away from the weight clip and from the accumulator's 2^15 (256 weight units) limit
        inside = (np.abs(want) < 250) & (np.abs(rule.step * np.outer(n, x1)) < 250)
        # the product's >> 3 loses < 2^exp (floor: biased down), stochastic rounding < 1
        assert np.all(np.abs(got - want)[inside] < 1 + 2.0 ** exp)
    # with x a multiple of 8 the >> 3 is exact and the rounding is unbiased over r_w
    x8 = 8 * (x1 // 8)
    want8 = w - rule.step * np.outer(n, x8)
    inside = (np.abs(want8) < 250) & (np.abs(rule.step * np.outer(n, x8)) < 250)
    mean = np.mean([sf.learn(w, x8, n, rule, r, r_y) for r in (np.arange(400) + 0.5) / 400],
                   axis=0)
    np.testing.assert_allclose(mean[inside], want8[inside], atol=0.01)


def test_one_learning_step_is_its_definition_step_by_step(tmp_path):
    """The chip's step (new_state, present, present_frozen), which the session, the continual
    study and the deployment gap fold over, against its definition written out sample by
    sample: the weights truncated to even once, Lava's generators read in place (one draw at
    construction; per epoch 2P draws for each trace generator, one for the weights), the
    window, n, x1 and the update, queries included as epochs with n = 0."""
    path, _ = random_soel_bundle(tmp_path / "s.h5", 6, conv=False)
    b, rule = rule_for(path)
    head = b.net[-1]
    rng = np.random.default_rng(6)
    labels = [0, 3, -1, -1, 2, 4, -1, 1, 0, -1]
    pre = rng.random((len(labels), T, head.spec.in_features)) < 0.4
    P = rule.period
    gx, gy, gw = (np.random.default_rng(s) for s in (rule.rng_seed, rule.rng_seed + 2, 2))
    for g in (gx, gy, gw):
        g.random()
    w = 2 * np.floor_divide(head.weight, 2)
    one, batched = sf.new_state(head.weight, rule), sf.new_state(head.weight, rule)
    np.testing.assert_array_equal(one.w, w)
    for k, lab in enumerate(labels):
        out, v = sf.head_window(w, head.weight_exp, head.neuron, pre[k])
        n = sf.quantised_error(out.sum(0), lab, rule)
        r_x, r_y, r_w = gx.random(2 * P)[-1], gy.random(2 * P)[-1], gw.random()
        x1 = sf.pre_trace_at_epoch_end(np.concatenate([pre[k], np.zeros((1, pre.shape[2]), bool)]),
                                       r_x, P)
        w = sf.learn(w, x1, n, rule, r_w, r_y)
        got = sf.present(one, head, pre[k], lab)
        if k == 2:                       # the query run 2..3 as one batch
            s2, v2 = sf.present_frozen(batched, head, pre[2:4])
        elif k != 3:
            sf.present(batched, head, pre[k], lab)
        for a, e in zip(got, (out, v, n)):
            np.testing.assert_array_equal(a, e, err_msg=f"sample {k}")
        np.testing.assert_array_equal(one.w, w, err_msg=f"weights after sample {k}")
        np.testing.assert_array_equal(batched.w, w, err_msg=f"batched, sample {k}")
        if k == 3:
            np.testing.assert_array_equal(s2[1], out)
            np.testing.assert_array_equal(v2[1], v)
    assert np.abs(w - sf.truncate(head.weight)).sum() > 100     # the head learnt
    assert sf.truncate(np.array([-3, -2, -1, 0, 1, 2, 3])).tolist() == [-4, -2, -2, 0, 0, 2, 2]


# --- Lava == sim, bit for bit ------------------------------------------------------------------
def assert_lava_equals_sim(path, in_shape, labels, seed, density=0.3):
    from metaloihi.onchip.graph import run_lava_session
    b, rule = rule_for(path)
    x = np.random.default_rng(seed).random((len(labels), T, *in_shape)) < density
    ours = sf.run_session(b.frozen, b.net[-1], rule, x, labels)
    lava = run_lava_session(path, rule, x, labels)
    for k in range(len(labels)):
        bad = np.argwhere(lava.head_spikes[k] != ours.head_spikes[k])
        assert bad.size == 0, f"sample {k}: output spikes differ first at step/neuron {bad[0]}"
        np.testing.assert_array_equal(lava.weights[k], ours.weights[k],
                                      err_msg=f"head weights after sample {k}")
    np.testing.assert_array_equal(lava.v_last, ours.v_last, err_msg="head v at the last step")
    assert np.count_nonzero(ours.v_last) > 0                     # the membranes are not all rested
    return ours


@pytest.mark.lava
@pytest.mark.parametrize("seed,conv,head_exp", [(3, True, 0), (4, False, 1), (5, True, -1)])
def test_lava_equals_sim_5way_1shot_on_random_bundles(tmp_path, seed, conv, head_exp):
    path, in_shape = random_soel_bundle(tmp_path / "b.h5", seed, conv, head_exp)
    labels = np.array([0, 1, 2, 3, 4, -1, -1])                   # 5 shots, 2 queries
    ours = assert_lava_equals_sim(path, in_shape, labels, seed)
    w0 = sf.truncate(read_bundle(path).net[-1].weight)
    assert np.count_nonzero(ours.n[:5]) >= 3                     # the error did trigger
    assert np.abs(ours.weights[4] - w0).sum() > 100              # and the head learnt
    assert ours.head_spikes.sum() > 20
    for k in (5, 6):                                             # learning frozen on queries
        np.testing.assert_array_equal(ours.weights[k], ours.weights[4])


@pytest.mark.lava
def test_lava_equals_sim_on_an_exported_random_float_network(tmp_path):
    specs, params, neurons = random_float_network(input_shape=(2, 10, 10), ways=5,
                                                  channels=(4, 6), kernel=3, seed=1, vth=0.5)
    q = quantize(specs, params, neurons)
    head = HeadParams(sf.ChipRule(*sf.eta_to_rule(2.0), theta=1.0, target_on=4, target_off=0,
                                  rng_seed=7))
    path = write_bundle(tmp_path / "r.h5", q.net, head, q.scales)
    labels = np.array([0, 1, 2, 3, 4, -1, -1])
    ours = assert_lava_equals_sim(path, (2, 10, 10), labels, seed=2, density=0.4)
    assert np.count_nonzero(ours.n[:5]) >= 3


@pytest.mark.lava
def test_session_predictions_identical_in_lava_and_sim(tmp_path):
    from metaloihi.datasets.tasks import support_order
    from metaloihi.onchip.session import adapt
    path, in_shape = random_soel_bundle(tmp_path / "s.h5", 8, conv=True)
    rng = np.random.default_rng(1)
    proto = rng.random((5, T, *in_shape)) < 0.3
    xs = np.array([np.logical_xor(proto[c], rng.random(proto[c].shape) < 0.05)
                   for c in range(5) for _ in range(3)])
    ys = np.repeat(np.arange(5), 3)
    xs, ys = support_order(xs, ys, 5)
    assert ys.tolist() == [0, 1, 2, 3, 4] * 3                    # shot-major
    sup, ysup, qry, yq = xs[:5], ys[:5], xs[5:9], ys[5:9]
    a = adapt(path, sup, ysup, qry, yq, backend="sim")
    b = adapt(path, sup, ysup, qry, yq, backend="lava")
    np.testing.assert_array_equal(a.head_spikes, b.head_spikes)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.query_v, b.query_v)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.predictions, predict_np(a.query_counts, a.query_v))
    assert a.accuracy == b.accuracy
    assert a.step_counts.shape == (9, T) and a.query_counts.shape == (4, 5)


@pytest.mark.lava
def test_lava_equals_sim_5way_5shot(tmp_path):
    """25 shots in shot-major order, then 2 queries: every step and every weight equal."""
    path, in_shape = random_soel_bundle(tmp_path / "f.h5", 11, conv=True, eta=0.1)
    labels = np.concatenate([np.tile(np.arange(5), 5), [-1, -1]])
    ours = assert_lava_equals_sim(path, in_shape, labels, seed=11)
    assert np.count_nonzero(ours.n[:25]) >= 10
    assert len({w.tobytes() for w in ours.weights[:25]}) >= 10   # weights keep moving


def test_eta_in_mantissa_units_does_not_depend_on_the_weight_exponent(tmp_path):
    """The learning engine updates mantissas; a float weight w is the mantissa w * scale
    whatever the exponent (it scales the synaptic sum and the neuron's units): the chip rule
    is eta * scale, and bundles whose heads differ only in the exponent store the same one."""
    chip = to_chip(LearntRule(theta=1.0, eta=0.3 / 40.0), 40.0)
    assert (chip.mant, chip.exp) == sf.eta_to_rule(0.3) == (5, -1)
    rules = {read_bundle(random_soel_bundle(tmp_path / f"e{exp}.h5", 3, head_exp=exp)[0]).head.rule
             for exp in (-2, 0, 3)}
    assert len(rules) == 1


@pytest.mark.lava
def test_multi_pass_session_lava_equals_sim(tmp_path):
    """The bundle's passes (3): the support set shown three times, learning on each; output
    spikes every step, head v, the weights after every one of the 15 shots and the predictions
    equal in Lava and sim/, and the later passes do change the weights."""
    from metaloihi.onchip.session import adapt, same_session
    path, in_shape = random_soel_bundle(tmp_path / "p.h5", 21, conv=True, passes=3)
    assert read_bundle(path).head.passes == 3
    rng = np.random.default_rng(4)
    proto = rng.random((5, T, *in_shape)) < 0.3
    noisy = lambda c: np.logical_xor(proto[c], rng.random(proto[c].shape) < 0.08)  # noqa: E731
    xs = np.array([noisy(c) for c in range(5)])
    xq = np.array([noisy(c) for c in range(5) for _ in range(2)])
    ys, yq = np.arange(5), np.repeat(np.arange(5), 2)
    a = adapt(path, xs, ys, xq, yq, backend="sim")
    b = adapt(path, xs, ys, xq, yq, backend="lava")
    assert len(a.weights_per_shot) == 15 and same_session(a, b)
    np.testing.assert_array_equal(a.head_spikes, b.head_spikes)
    one = adapt(path, xs, ys, xq, yq, backend="sim", passes=1)
    assert not np.array_equal(a.weights, one.weights)            # passes 2 and 3 learnt more
    np.testing.assert_array_equal(one.weights_per_shot[4], a.weights_per_shot[4])


def test_fused_traces_and_batched_head_equal_the_step_by_step_forms(tmp_path):
    """The session's fast forms (numba trace decay, the head window as sim.fixed's fused scan,
    a batch of queries at once) compute what the step-by-step definitions compute."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        pre, r = rng.random((51, 64)) < rng.random() * 0.6, float(rng.random())
        count = pre.sum(0)
        x = np.minimum(np.maximum(count - 1, 0), sf.TRACE_MAX)[None, :]
        last = np.where(count > 0, 51 - np.argmax(pre[::-1], axis=0), 0)
        for t in range(1, 52):                   # Lava's per-step decay, then the impulses
            x = sf._decay(x, r)
            x[0, last == t] = np.minimum(x[0, last == t] + 1, sf.TRACE_MAX)
        np.testing.assert_array_equal(sf.pre_trace_at_epoch_end(pre, r, 51), x[0])
        y = rng.integers(0, sf.TRACE_MAX + 1, 7)
        want = y[None, :]
        for _ in range(51):
            want = sf._decay(want, r)
        np.testing.assert_array_equal(sf.post_trace_at_epoch_end(y, r, 51), want[0])
    path, _ = random_soel_bundle(tmp_path / "h.h5", 3, conv=False)
    head = read_bundle(path).net[-1]
    w = rng.integers(-256, 256, head.weight.shape)
    pre = rng.random((6, T, head.spec.in_features)) < 0.4
    batch_s, batch_v = sf.head_window(w, head.weight_exp, head.neuron, pre)
    for k in range(6):
        s, v = sf.head_window(w, head.weight_exp, head.neuron, pre[k])
        np.testing.assert_array_equal(batch_s[k], s)
        np.testing.assert_array_equal(batch_v[k], v)
    # not an empty check: 301 output spikes, and 12 of the 30 last-step v not zero
    assert batch_s.sum() == 301 and np.count_nonzero(batch_v) == 12
