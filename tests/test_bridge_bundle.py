"""bridge/: quantiser, deployment bundle (netx layout + head group), atomic write, validator and
the `export` / `bundle validate` commands. No Lava needed (netx itself: test_bridge_netx.py)."""
import os
import sys

import h5py
import numpy as np
import pytest

from helpers import bounded
from helpers.random_net import small_float_net
from metaloihi.bridge import bundle as B
from metaloihi.bridge.bundle import HeadParams, read_bundle, write_bundle
from metaloihi.bridge.export import random_float_network
from metaloihi.bridge.quantize import quantize
from metaloihi.bridge.validate import validate_bundle
from metaloihi.base.errors import UserError
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.rules.soel.chip import ChipRule
from metaloihi.sim.float_lif import param_key, weight_key


RULE = ChipRule(mant=5, exp=-1, theta=2.5, target_on=6, rng_seed=7, passes=3)


@pytest.fixture(scope="module")
def quantized():
    return quantize(*small_float_net())


@pytest.fixture()
def bundle_path(tmp_path, quantized):
    head = HeadParams(RULE, labels=("a", "b", "c"))
    return write_bundle(tmp_path / "b.h5", quantized.net, head, quantized.scales,
                        meta={"split": {"test": [1, 2, 3]}})


def test_quantizer_fills_the_grid_and_puts_frozen_biases_on_netx_exponent(quantized):
    specs, params, _ = small_float_net()
    for i, (layer, scale) in enumerate(zip(quantized.net, quantized.scales)):
        w = layer.weight
        assert np.all(w % 2 == 0) and np.abs(w).max() == L.GRID_MAX        # full 8-bit grid
        assert scale == pytest.approx(L.GRID_MAX / params[weight_key(i)].abs().max().item())
        bias = params[param_key(i, "bias")].numpy()
        if i < len(quantized.net) - 1:                       # frozen: mantissa << 6 (netx)
            assert layer.neuron.bias_exp == 6 and layer.weight_exp == 0
            np.testing.assert_array_equal(layer.neuron.bias_mant, np.round(bias * scale))
        assert layer.neuron.vth == round(1.0 * scale)
        assert (layer.neuron.du, layer.neuron.dv) == (818, 410)   # 0.2*4096 - 1 (+1 hidden)
    errs = quantized.errors
    # measured: weights within 0.5 LSB of the grid -> relative RMS error ~1e-2 for these shapes
    assert all(0 < e.w_rel_rms < 0.02 for e in errs)
    assert all(e.w_max_abs <= 1.0001 / e.scale for e in errs)      # half a grid step (2 units)
    assert all(e.vth_rel < 2e-3 for e in errs)
    table = quantized.table().splitlines()
    assert len(table) == 1 + 4 and "w relRMS" in table[0] and " head " in table[4]


def test_quantizer_refuses_a_bias_beyond_the_13_bit_mantissa_at_exponent_6():
    specs, params, neurons = small_float_net()
    params[param_key(1, "bias")][5] = 15.0    # x scale 364 = 5467: fits << 7, not << 6
    with pytest.raises(UserError, match="layer 1: bias 15 x scale 364.5 = 5467 does not fit "
                                        "the 13-bit bias mantissa"):
        quantize(specs, params, neurons)


def test_bundle_round_trip_is_exact_and_runs_identically(bundle_path, quantized):
    b = read_bundle(bundle_path)
    assert len(b.net) == 4 and b.scales == quantized.scales
    for a, c in zip(quantized.net, b.net):
        assert a.spec == c.spec and a.weight_exp == c.weight_exp
        np.testing.assert_array_equal(a.weight, c.weight)
        assert (a.neuron.du, a.neuron.dv, a.neuron.vth) == (c.neuron.du, c.neuron.dv, c.neuron.vth)
        np.testing.assert_array_equal(np.broadcast_to(a.neuron.effective_bias, (a.n_out,)),
                                      c.neuron.effective_bias)
    assert b.head == HeadParams(RULE, labels=("a", "b", "c")) and b.path == bundle_path
    assert b.meta["split"] == {"test": [1, 2, 3]} and b.meta["versions"]["torch"]
    x = np.random.default_rng(1).random((3, 25, 2, 12, 10)) < 0.3
    ours, back = fixed.run(quantized.net, x), fixed.run(b.net, x)
    assert sum(s.sum() for s in ours["spikes"]) > 50          # the network is active
    for s1, s2 in zip(ours["spikes"], back["spikes"]):
        np.testing.assert_array_equal(s1, s2)


def test_netx_layout_fields(bundle_path, quantized):
    with h5py.File(bundle_path) as f:
        types = [f[f"layer/{k}/type"][0].decode() for k in range(len(f["layer"]))]
        assert types == ["input", "conv", "conv", "flatten", "dense"]
        assert f["layer/0/shape"][()].tolist() == [2, 12, 10]
        conv = f["layer/1"]
        assert conv["weight"].shape == (4, 2, 3, 3) and conv["shape"][()].tolist() == [4, 6, 5]
        assert conv["bias"].shape == (5, 6, 4)                 # Lava's (W, H, C)
        n = quantized.net[0].neuron
        assert conv["neuron/iDecay"][()] == n.du + 1 and conv["neuron/vDecay"][()] == n.dv
        assert conv["neuron/vThMant"][()] == n.vth
        assert f["layer/4/weight"].shape == (10, 6 * 4 * 5)
        assert f["metaloihi/head/weight"].shape == (3, 10)


def test_interrupted_write_leaves_the_previous_file_and_no_temporary(bundle_path, quantized,
                                                                      monkeypatch):
    before = B.file_sha256(bundle_path)

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated, after the netx layers were written)")
    monkeypatch.setattr(B, "_write_head", boom)
    with pytest.raises(UserError, match="cannot write bundle .*b.h5.*: disk full \\(simulated"):
        write_bundle(bundle_path, quantized.net)     # the OSError, as one line naming the file
    assert B.file_sha256(bundle_path) == before
    assert os.listdir(bundle_path.parent) == [bundle_path.name]
    with pytest.raises(UserError, match="simulated"):
        write_bundle(bundle_path.parent / "new.h5", quantized.net)
    assert os.listdir(bundle_path.parent) == [bundle_path.name]


def _set(path, name, value):
    with h5py.File(path, "r+") as f:
        if name in f:
            del f[name]
        if value is not None:
            f[name] = value


def _set_attr(path, group, key, value):
    with h5py.File(path, "r+") as f:
        if value is None:
            del f[group].attrs[key]
        else:
            f[group].attrs[key] = value


def _w(path, name):
    with h5py.File(path) as f:
        return f[name][()].astype(np.int64)


CORRUPTIONS = [
    ("odd mantissa", lambda p: _set(p, "layer/2/weight", _w(p, "layer/2/weight") | 1),
     "layer/2/weight\\[0, 0, 0, 0\\] = -?\\d*[13579] is off the grid: expected a deployable weight "
     "mantissa in \\[-254, 254\\], a multiple of 2"),
    ("9-bit mantissa", lambda p: _set(p, "layer/4/weight",
                                      np.where(np.arange(120) == 7, 300, _w(p, "layer/4/weight"))),
     "layer/4/weight\\[0, 7\\] = 300 is out of range: expected an 8-bit weight mantissa in "
     "\\[-256, 255\\]"),
    ("13-bit decay", lambda p: _set(p, "layer/1/neuron/vDecay", np.int64(4096)),
     "layer/1/neuron/vDecay = 4096 is out of range: expected an integer in \\[0, 4095\\]"),
    ("iDecay 0", lambda p: _set(p, "layer/2/neuron/iDecay", np.int64(0)),
     "iDecay = 0 is out of range: expected an integer in \\[1, 4096\\]"),
    ("18-bit vth", lambda p: _set(p, "layer/4/neuron/vThMant", np.int64(2 ** 17)),
     "vThMant = 131072 is out of range: expected an integer in \\[0, 131071\\]"),
    ("bias", lambda p: _set(p, "layer/1/bias", np.full((5, 6, 4), 5000)),
     "layer/1/bias\\[0, 0, 0\\] = 5000 is out of range: expected a 13-bit bias mantissa"),
    ("missing vth", lambda p: _set(p, "layer/2/neuron/vThMant", None),
     "layer/2/neuron: required field 'vThMant' is missing"),
    ("shape chain", lambda p: _set(p, "layer/4/weight", np.zeros((10, 59), np.int16) + 2),
     "layer/4/weight: shape \\(10, 59\\) does not take 120 inputs"),
    ("NaN", lambda p: _set(p, "layer/4/weight", np.full((10, 120), np.nan)),
     "layer/4/weight: contains nan"),
    ("float weights", lambda p: _set(p, "layer/1/weight", np.ones((4, 2, 3, 3))),
     "layer/1/weight: must be integers, got dtype float64"),
    ("rule theta", lambda p: _set_attr(p, "metaloihi/head/rule", "theta", 0.0),
     "metaloihi/head/rule/theta = 0.0 is out of range: expected a threshold in spikes that "
     "the chip's error path represents in \\[0.0078125, 2147483647.0\\]"),
    ("rule mantissa", lambda p: _set_attr(p, "metaloihi/head/rule", "mant", 8),
     "metaloihi/head/rule/mant = 8 is out of range: expected an integer in \\[1, 7\\]"),
    ("rule exponent", lambda p: _set_attr(p, "metaloihi/head/rule", "exp", 9.5),
     "metaloihi/head/rule/exp = 9.5 is not one integer"),
    ("rule name", lambda p: _set_attr(p, "metaloihi/head/rule", "name", "stdp"),
     "metaloihi/head/rule/name: rule 'stdp'; this version runs 'soel'"),
    ("rule missing", lambda p: _set(p, "metaloihi/head/rule", None),
     "metaloihi/head: required field 'rule' is missing"),
    ("head input", lambda p: _set(p, "metaloihi/head/weight", np.zeros((3, 11), np.int16)),
     "metaloihi/head/weight: shape \\(3, 11\\) does not take the last frozen layer's 10"),
    ("head exp", lambda p: _set_attr(p, "metaloihi/head", "weight_exp", 9),
     "metaloihi/head/weight_exp = 9 is out of range: expected an integer in \\[-8, 7\\]"),
    ("labels", lambda p: _set(p, "metaloihi/head/labels", np.array([b"a", b"a", b"c"])),
     "metaloihi/head/labels: 3 labels for 3 output neurons \\(one distinct label each\\)"),
    ("meta", lambda p: _set_attr(p, "metaloihi/meta", "source_sha256", None),
     "metaloihi/meta: required attribute 'source_sha256' is missing"),
    ("no flatten", lambda p: _set(p, "layer/3/type", np.array([b"dense"])),
     "layer/3: required field 'weight' is missing"),
    ("format", lambda p: _set_attr(p, "metaloihi", "format", "other/9"),
     "metaloihi: format 'other/9'"),
]


@pytest.mark.parametrize("name,corrupt,message", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_validator_names_the_violation(bundle_path, name, corrupt, message):
    assert validate_bundle(bundle_path).startswith("valid: b.h5: 4 netx layers")
    corrupt(bundle_path)
    with pytest.raises(UserError, match=message):
        validate_bundle(bundle_path)
    with pytest.raises(UserError):           # the reader refuses it too
        read_bundle(bundle_path)


def test_validator_reports_the_first_of_several_violations(bundle_path):
    _set(bundle_path, "layer/4/neuron/vThMant", np.int64(2 ** 20))
    _set(bundle_path, "layer/1/neuron/vDecay", np.int64(-1))
    with pytest.raises(UserError, match="layer/1/neuron/vDecay = -1 is out of range"):
        validate_bundle(bundle_path)


def _cli(*args):
    return bounded.run([sys.executable, "-m", "metaloihi", *args], capture_output=True,
                       text=True, timeout=120)


def test_cli_export_random_then_validate(tmp_path):
    out = tmp_path / "r.h5"
    r = _cli("export", "--random", "--out", str(out), "--input-shape", "2,16,16",
             "--channels", "4,8", "--ways", "3", "--nir", str(tmp_path / "r.nir"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "kind", "weight"] and len(lines) >= 4
    assert "valid: r.h5: 2 netx layers (conv -> conv), head 128->3" in r.stdout
    assert (tmp_path / "r.nir").is_file()
    r = _cli("bundle", "validate", str(out))
    assert r.returncode == 0 and r.stdout.startswith("valid: r.h5")
    _set(out, "layer/1/neuron/vThMant", np.int64(-5))
    r = _cli("bundle", "validate", str(out))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "layer/1/neuron/vThMant = -5" in r.stderr
    r = _cli("export", "--out", str(out))
    assert r.returncode == 1 and "exactly one of --checkpoint PATH or --random" in r.stderr


def test_random_float_network_is_the_paper_arch():
    specs, params, neurons = random_float_network((2, 32, 32), ways=5)
    assert [tuple(params[weight_key(i)].shape) for i in range(4)] == [
        (32, 2, 5, 5), (64, 32, 5, 5), (128, 64, 5, 5), (5, 2048)]


def _as_format_1(path, theta: float, eta: float) -> None:
    """Rewrite a bundle's head as format /1 stored it: the rule in float units."""
    with h5py.File(path, "r+") as f:
        f["metaloihi"].attrs["format"] = "metaloihi.bundle/1"
        h = f["metaloihi/head"]
        if "rule" in h:
            del h["rule"]
            h.create_group("learning_rule").attrs["dw"] = "old text, never read"
        h.attrs.update(soel_threshold=theta, soel_eta=eta, target_on=6, target_off=0,
                       rng_seed=7)                        # no passes: the oldest files had none


def test_a_format_1_bundle_is_read_with_its_rule_converted_once(bundle_path, quantized):
    scale = quantized.scales[-1]
    _as_format_1(bundle_path, theta=2.5, eta=0.3 / scale)          # 0.3 mantissa units per n x
    assert validate_bundle(bundle_path).startswith("valid: b.h5")
    rule = read_bundle(bundle_path).head.rule
    assert rule == ChipRule(mant=5, exp=-1, theta=2.5, target_on=6, rng_seed=7, passes=1)
    assert rule.step == 0.3125                                    # 5 * 2^(-1-3): nearest to 0.3
    _as_format_1(bundle_path, theta=2.5, eta=1e300)
    with pytest.raises(UserError, match="metaloihi/head/soel_eta: 1e\\+300 x scale .* more than "
                                        "16x outside the chip's steps"):
        read_bundle(bundle_path)


def test_the_chip_rule_refuses_what_the_learning_engine_cannot_run():
    with pytest.raises(UserError, match="chip rule mant = 0 is out of range: expected an "
                                        "integer in \\[1, 7\\]"):
        ChipRule(mant=0, exp=0, theta=1.0, target_on=8)
    with pytest.raises(UserError, match="chip rule theta = 0.001 is out of range"):
        ChipRule(mant=1, exp=0, theta=1e-3, target_on=8)
