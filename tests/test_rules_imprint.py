"""A second rule, imprint (tests/helpers/imprint/: its folder is the whole rule), registered by
these tests alone as its one line in rules.RULES would register it: rules.get finds it, a bundle
carries it (written, validated, read back), its session computes the same bits in sim/
(rules/engine/chip.py) and in Lava (rules/engine/lava.py), and a shot imprints exactly step x on
its label's row."""
import h5py
import numpy as np
import pytest

from metaloihi import rules
from metaloihi.base.errors import UserError
from metaloihi.bridge.bundle import HeadParams, read_bundle, write_bundle
from metaloihi.bridge.validate import validate_bundle
from metaloihi.rules.engine.chip import truncate
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.fixed import FixedLayer

from helpers import imprint
from helpers.random_net import calibrated_network

T, N_IN, N_HID, WAYS = 8, 12, 10, 3
RULE = imprint.ChipRule(mant=3, exp=1, rng_seed=5)      # step 3 x 2^1 = 6 mantissas per spike


@pytest.fixture
def registered(monkeypatch):
    """imprint in the registry: the line a rule adds to rules.RULES."""
    monkeypatch.setitem(rules.RULES, "imprint", "helpers.imprint")


def imprint_bundle(path):
    """A dense frozen layer firing at ~30% and a 3-way head, the imprint rule on it."""
    rng = np.random.default_rng(0)
    frozen = calibrated_network([DenseSpec(N_IN, N_HID)], rng.random((4, T, N_IN)) < 0.3,
                                rate=0.3, rng=rng)
    head = FixedLayer(DenseSpec(N_HID, WAYS), 2 * rng.integers(-4, 5, (WAYS, N_HID)),
                      L.LifFixed(du=400, dv=300, vth=400))
    return write_bundle(path, frozen + [head], HeadParams(RULE), scales=[1.0, 1.0])


def test_only_the_tests_register_it():
    assert "imprint" not in rules.RULES
    with pytest.raises(UserError, match="learning rule 'imprint'; this version has soel"):
        rules.get("imprint")


def test_a_registered_rule_is_found_and_a_bundle_carries_it(registered, tmp_path):
    assert rules.get("imprint") is imprint and rules.names() == ("imprint", "soel")
    path = imprint_bundle(tmp_path / "i.h5")
    validate_bundle(path)
    b = read_bundle(path)
    assert b.head.rule == RULE and b.head.passes == 1 and b.head.rule.step == 6.0
    with h5py.File(path, "r") as f:
        assert dict(f["metaloihi/head/rule"].attrs) == {"name": "imprint", "mant": 3, "exp": 1,
                                                        "rng_seed": 5, "passes": 1}
    with h5py.File(path, "r+") as f:                   # the card's checks guard the file
        f["metaloihi/head/rule"].attrs["mant"] = 9
    with pytest.raises(UserError, match=r"metaloihi/head/rule/mant = 9 is out of range: "
                                        r"expected an integer in \[1, 7\]"):
        validate_bundle(path)
    with pytest.raises(UserError, match=r"imprint rule exp = 9 is out of range: "
                                        r"expected an integer in \[-7, 8\]"):
        imprint.ChipRule(exp=9)
    with pytest.raises(UserError, match="'imprint' rule has no differentiable form"):
        rules.get("imprint").meta_params(None, None)


def test_one_shot_imprints_step_times_the_spike_counts_on_the_label_row(registered, tmp_path):
    b = read_bundle(imprint_bundle(tmp_path / "o.h5"))
    card, head = rules.get(b.head.rule.name), b.net[-1]
    rule = card.session_rule(b.head.rule, T)
    assert rule.dw_string() == "3 * 2^1 * u0 * x1 * y2"
    pre = np.random.default_rng(3).random((2, T, N_HID)) < 0.4
    tr = card.run_session([], head, rule, pre, np.array([1, -1]))     # a shot, then a query
    counts = pre[0].sum(0)
    want = truncate(head.weight)
    want[1] += 6 * counts
    assert (counts > 0).sum() >= 8 and counts.max() >= 4
    np.testing.assert_array_equal(tr.weights[0], want)
    np.testing.assert_array_equal(tr.weights[1], want)                 # the query learns nothing
    assert tr.n.tolist() == [[0, 8, 0], [0, 0, 0]]


@pytest.mark.lava
def test_imprint_session_in_lava_equals_sim(registered, tmp_path):
    """One shot of each class, then a query of each: output spikes every step, the head's v,
    the weights after every shot and the predictions equal in Lava (Loihi2SimCfg fixed_pt) and
    sim/, and each row gained exactly 6 x its shot's frozen output counts."""
    from metaloihi.onchip.session import adapt, same_session
    path = imprint_bundle(tmp_path / "s.h5")
    rng = np.random.default_rng(2)
    proto = rng.random((WAYS, T, N_IN)) < 0.3
    xs, xq = (np.array([np.logical_xor(p, rng.random(p.shape) < 0.05) for p in proto])
              for _ in range(2))
    ys = yq = np.arange(WAYS)
    a = adapt(path, xs, ys, xq, yq, backend="sim")
    b = adapt(path, xs, ys, xq, yq, backend="lava")
    assert same_session(a, b)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    bundle = read_bundle(path)
    counts = fixed.run(bundle.frozen, xs, layers="last")["spikes"][-1].sum(1)   # [WAYS, N_HID]
    assert counts.sum() >= 20
    np.testing.assert_array_equal(b.weights, truncate(bundle.net[-1].weight) + 6 * counts)
    assert a.head_spikes.sum() > 0 and len(set(a.predictions.tolist())) > 1
