"""base/bounds.py: one checker, one wording, and the same numbers as the validators it replaced.

Each validator is probed at the edges of the bounds it had before (copied here as they were:
offline/config.py's RANGES, PretrainConfig's and MamlConfig's checks, the rule card's RANGES,
Config and ChipRule checks, the checkpoint reader's and the bundle validator's ranges): every
value the old check accepted is accepted, every value it refused is refused."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from metaloihi.base import bounds
from metaloihi.base.bounds import Bound
from metaloihi.base.errors import UserError
from metaloihi.bridge import checkpoint_file as cf
from metaloihi.bridge import validate
from metaloihi.offline import config
from metaloihi.offline.pretrain import PretrainConfig
from metaloihi.rules import soel

SEED_MAX = 2 ** 32 - 1
# offline/config.py's RANGES before the bounds moved onto the fields
OLD_RANGES = {
    "data.ways": (2, None), "data.shots": (1, None), "data.queries": (1, None),
    "data.seed": (0, SEED_MAX),
    "model.channels": (1, 4096), "model.kernel": (1, 63), "model.pool": (1, None),
    "model.time_pool": (1, None), "model.steps": (1, None),
    "model.du": (0.0, 1.0), "model.dv": (0.0, 1.0), "model.vth": (1e-9, None),
    "model.init_rate": (1e-9, 1.0), "model.head_init_rate": (1e-9, 1.0),
    "maml.inner_steps": (0, 1000), "maml.inner_lr": (0.0, 1e3),
    "maml.update_threshold": (0.0, 1.0), "maml.q_inner_bits": (2, 8),
    "maml.q_outer_bits": (2, 8), "maml.loss_scale": (1e-9, None),
    "train.meta_batch": (1, None), "train.iterations": (1, None), "train.outer_lr": (1e-12, 10.0),
    "train.val_every": (1, None), "train.val_tasks": (1, None),
    "train.checkpoint_every": (1, None), "train.time_limit_min": (0.0, None),
    "train.seed": (0, SEED_MAX), "train.threads": (0, 1024),
    # the card's RANGES, Config.__post_init__ (theta, eta > 0) and MamlConfig's trunc >= 1
    "rule.target_on": (0, None), "rule.target_off": (0, None), "maml.trunc": (1, None),
}
INT_KEYS = {"data.ways", "data.shots", "data.queries", "data.seed", "model.kernel", "model.pool",
            "model.time_pool", "model.steps", "maml.inner_steps", "maml.q_inner_bits",
            "maml.q_outer_bits", "train.meta_batch", "train.iterations", "train.val_every",
            "train.val_tasks", "train.checkpoint_every", "train.seed", "train.threads",
            "rule.target_on", "rule.target_off", "maml.trunc"}


def _below(x, integer):
    return x - 1 if integer else float(np.nextafter(x, -math.inf))


def _above(x, integer):
    return x + 1 if integer else float(np.nextafter(x, math.inf))


def _edges(lo, hi, integer):
    """(value, accepted) at and just beyond each bound."""
    out = []
    if lo is not None:
        out += [(lo, True), (_below(lo, integer), False)]
    if hi is not None:
        out += [(hi, True), (_above(hi, integer), False)]
    return out


def _loads(dotted: str, value) -> bool:
    sec, key = dotted.split(".")
    try:
        config.from_dict({sec: {key: [value] if key == "channels" else value}})
        return True
    except UserError as err:
        assert dotted in str(err) and "out of range" in str(err), str(err)
        return False


@pytest.mark.parametrize("dotted", sorted(OLD_RANGES))
def test_config_keys_keep_their_documented_ranges(dotted):
    lo, hi = OLD_RANGES[dotted]
    integer = dotted in INT_KEYS or dotted == "model.channels"
    for value, accepted in _edges(lo, hi, integer):
        assert _loads(dotted, value) is accepted, (dotted, value)


@pytest.mark.parametrize("key", ["theta", "eta"])
def test_the_rule_sections_theta_and_eta_stay_above_zero(key):
    assert _loads(f"rule.{key}", 5e-324) and not _loads(f"rule.{key}", 0.0)
    assert not _loads(f"rule.{key}", -1.0)


def _old_pretrain_ok(c: dict) -> bool:
    """PretrainConfig.__post_init__ as it was."""
    d = {name: f.default for name, f in PretrainConfig.__dataclass_fields__.items()} | c
    return all([d["iterations"] >= 0, d["time_limit_min"] >= 0, d["classes_per_batch"] >= 2,
                d["samples_per_class"] >= 2, d["lr"] > 0, d["ce_weight"] >= 0,
                d["proto_weight"] >= 0, d["proto_temperature"] > 0, 0 <= d["rate_low"] < 1,
                d["rate_low"] < d["rate_high"] <= 1, d["rate_weight"] >= 0,
                d["norm_weight"] >= 0, d["shift"] >= 0, d["trunc"] is None or d["trunc"] >= 1,
                d["val_every"] >= 1, d["val_tasks"] >= 1])


PRETRAIN_PROBES = [{k: v} for k in ("iterations", "shift") for v in (-1, 0, 1)] + \
    [{k: v} for k in ("classes_per_batch", "samples_per_class") for v in (1, 2, 3)] + \
    [{k: v} for k in ("val_every", "val_tasks", "trunc") for v in (0, 1, 2)] + [{"trunc": None}] + \
    [{k: v} for k in ("time_limit_min", "ce_weight", "proto_weight", "rate_weight", "norm_weight",
                      "lr", "proto_temperature") for v in (-1e-300, 0.0, 5e-324, 1.0, math.inf)] + \
    [{"rate_low": lo, "rate_high": hi} for lo in (-1e-9, 0.0, 0.5, 1.0) for hi in
     (0.0, 0.5, float(np.nextafter(0.5, 1)), 1.0, float(np.nextafter(1.0, 2)))]


@pytest.mark.parametrize("probe", PRETRAIN_PROBES, ids=[str(p) for p in PRETRAIN_PROBES])
def test_pretrain_config_accepts_exactly_what_it_did(probe):
    try:
        PretrainConfig(**probe)
        ok = True
    except UserError as err:
        assert "config key pretrain." in str(err) and " = " in str(err)
        ok = False
    assert ok is _old_pretrain_ok(probe)


INT_FIELDS = {"mant": (1, 7), "exp": (-7, 8), "target_on": (0, 2 ** 31 - 1),
              "target_off": (0, 2 ** 31 - 1), "rng_seed": (0, 2 ** 63 - 1), "passes": (1, 1000)}
BASE_RULE = dict(mant=1, exp=0, theta=1.0, target_on=8)


def _chip_ok(**over) -> bool:
    try:
        soel.ChipRule(**(BASE_RULE | over))
        return True
    except UserError as err:
        assert f"chip rule {next(iter(over))} = " in str(err), str(err)
        return False


@pytest.mark.parametrize("name", sorted(INT_FIELDS))
def test_chip_rule_integers_keep_their_ranges(name):
    lo, hi = INT_FIELDS[name]
    for value, accepted in _edges(lo, hi, True):
        assert _chip_ok(**{name: value}) is accepted, (name, value)
    assert _chip_ok(**{name: float(lo)})               # a whole float passes, as before
    assert not _chip_ok(**{name: lo + 0.5})
    assert not _chip_ok(**{name: math.nan})            # before: a ValueError, now refused
    # the bundle's attributes are checked against the same numbers
    c = validate._Checker(Path("b.h5"))
    attrs = soel.to_attrs(soel.ChipRule(**BASE_RULE))
    soel.check_attrs(c, {**attrs, name: np.asarray(lo)}, "metaloihi/head/rule")
    for bad in (lo - 1, hi + 1):
        with pytest.raises(UserError, match=rf"^bundle 'b.h5': metaloihi/head/rule/{name} = "
                                            rf"{bad} is out of range: expected an integer in "
                                            rf"\[{lo}, {hi}\]$"):
            soel.check_attrs(c, {**attrs, name: np.asarray(bad)}, "metaloihi/head/rule")


def test_chip_rule_theta_keeps_the_error_paths_range():
    lo, hi = soel.THETA_MIN, soel.THETA_MAX
    for value, accepted in _edges(lo, hi, False) + [(math.inf, False), (math.nan, False)]:
        assert _chip_ok(theta=value) is accepted, value
        c = validate._Checker(Path("b.h5"))
        try:
            soel.check_theta(c, value, "metaloihi/head/rule/theta")
            assert accepted
        except UserError as err:
            assert not accepted and "metaloihi/head/rule/theta = " in str(err)


def test_checkpoint_fields_keep_their_ranges():
    f = cf._Fields(Path("ck.pt"))

    def ok(fn, *args, **kw):
        try:
            fn(*args, **kw)
            return True
        except UserError as err:
            assert str(err).startswith("checkpoint 'ck.pt': x.") and " = " in str(err)
            return False

    assert ok(f.int_, {"k": 0}, "x", "k") and not ok(f.int_, {"k": -1}, "x", "k")
    assert ok(f.int_, {"k": 1}, "x", "k", 1) and not ok(f.int_, {"k": 0}, "x", "k", 1)
    assert not ok(f.int_, {"k": True}, "x", "k") and not ok(f.int_, {"k": 1.0}, "x", "k")
    assert ok(f.num, {"k": 5e-324}, "x", "k", positive=True)
    assert not ok(f.num, {"k": 0.0}, "x", "k", positive=True)
    assert ok(f.num, {"k": -1.0}, "x", "k") and not ok(f.num, {"k": math.inf}, "x", "k")
    assert ok(f.ints, {"k": [1, 1]}, "x", "k", 2) and not ok(f.ints, {"k": [1, 0]}, "x", "k", 2)
    assert ok(f.ints, {"k": [0, 0]}, "x", "k", 2, low=0)
    neuron = {"du": 0.0, "dv": 1.0, "vth": 5e-324, "bias": 0.0}
    assert ok(cf._neuron, f, neuron, "x.n")
    for key, value in (("du", -1e-300), ("dv", float(np.nextafter(1.0, 2))), ("vth", 0.0)):
        assert not ok(cf._neuron, f, {**neuron, key: value}, "x.n")


def test_bundle_ranges_keep_their_numbers():
    c = validate._Checker(Path("b.h5"))
    c.in_range(np.array([-256, 255]), -256, 255, "w", "an 8-bit weight mantissa")
    for bad in (-257, 256):
        with pytest.raises(UserError, match=rf"^bundle 'b.h5': w\[1\] = {bad} is out of range: "
                                            r"expected an 8-bit weight mantissa in \[-256, 255\]$"):
            c.in_range(np.array([0, bad]), -256, 255, "w", "an 8-bit weight mantissa")
    c.grid(np.array([[-254, 0, 254]]), "w")
    for bad, why in ((253, "off the grid"), (-255, "out of range"), (-3, "off the grid")):
        with pytest.raises(UserError, match=rf"w\[0, 0\] = {bad} is {why}"):
            c.grid(np.array([[bad]]), "w")
    assert c.number(np.float32(0.5), "t", Bound(0, lo_open=True)) == 0.5
    for bad, words in ((np.nan, "is not a finite number"), (0.0, "is out of range"),
                       (np.array([1.0, 2.0]), "is not one number"), ("x", "is not one number")):
        with pytest.raises(UserError, match=f"bundle 'b.h5': t = .* {words}"):
            c.number(bad, "t", Bound(0, lo_open=True))


def test_one_wording_for_every_refusal():
    with pytest.raises(UserError) as err:
        config.from_dict({"model": {"du": 2.0}})
    assert str(err.value) == "config key model.du = 2.0 is out of range: expected in [0.0, 1.0]"
    with pytest.raises(UserError) as err:
        config.from_dict({"maml": {"trunc": 0}})
    assert str(err.value) == "config key maml.trunc = 0 is out of range: expected >= 1"
    with pytest.raises(UserError) as err:
        config.from_dict({"train": {"iterations": "many"}})
    assert str(err.value) == "config key train.iterations = 'many' is not an integer"
    with pytest.raises(UserError) as err:
        PretrainConfig(rate_low=0.3, rate_high=0.2)
    assert str(err.value) == ("config key pretrain.rate_high = 0.2 is out of range: expected a "
                              "rate above pretrain.rate_low in (0.3, 1]")
    with pytest.raises(UserError) as err:
        soel.ChipRule(mant=8, exp=0, theta=1.0, target_on=8)
    assert str(err.value) == "chip rule mant = 8 is out of range: expected an integer in [1, 7]"
    with pytest.raises(UserError) as err:
        cf._Fields(Path("ck.pt")).int_({"passes": 0}, "network.rule", "passes", 1)
    assert str(err.value) == ("checkpoint 'ck.pt': network.rule.passes = 0 is out of range: "
                              "expected >= 1")
    with pytest.raises(UserError) as err:
        validate._Checker(Path("b.h5")).scalar(np.int64(4096), "layer/1/neuron/vDecay", 0, 4095)
    assert str(err.value) == ("bundle 'b.h5': layer/1/neuron/vDecay = 4096 is out of range: "
                              "expected an integer in [0, 4095]")


def test_bounds_render_and_hold_as_declared():
    assert str(Bound(0, 1)) == "in [0, 1]" and str(Bound(0, 1, lo_open=True)) == "in (0, 1]"
    assert str(Bound(1e-9)) == ">= 1e-09" and str(Bound(hi=3, hi_open=True)) == "< 3"
    assert str(Bound(-4, 4, step=2, what="a mantissa")) == "a mantissa in [-4, 4], a multiple of 2"
    b = Bound(0, 1)
    assert b.holds(0) and b.holds(1.0) and not b.holds(math.nan) and not b.holds(1 + 1e-16 * 3)
    assert Bound(0).holds(math.inf) and not Bound(0, math.inf, hi_open=True).holds(math.inf)
    assert Bound(0, 2 ** 63 - 1).holds(2 ** 63 - 1) and not Bound(0, 2 ** 63 - 1).holds(2 ** 63)
    np.testing.assert_array_equal(Bound(0, 2, step=2).mask(np.array([-2, 0, 1, 2, 4])),
                                  [False, True, False, True, False])
    assert bounds.shown(b"abc") == "'abc'" and bounds.shown(None) == "none"
    assert bounds.shown((1, 2)) == "[1, 2]" and bounds.shown(np.int64(3)) == "3"
    assert len(bounds.shown(list(range(100)))) == 60


def test_one_nan_check_for_training_and_export():
    import torch
    from metaloihi.base import torch_file
    from metaloihi.offline import checkpoint
    assert checkpoint.check_finite is torch_file.check_finite is cf.check_finite
    with pytest.raises(UserError) as err:
        torch_file.check_finite("c.pt", [("theta0.w", torch.tensor([[0.0, math.nan]]))], "stop")
    assert str(err.value) == ("checkpoint 'c.pt': theta0.w[0, 1] = nan is not a finite number "
                              "(a diverged run?); stop")
