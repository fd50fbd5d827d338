"""lava-dl's netx loads our bundle unchanged and the network it builds computes exactly what
sim/ computes: identical spikes and membrane voltages, every frozen layer, every step, in
Lava's fixed_pt CPU simulator. Covers netx's own choices for our numbers: bias mantissa with
its fixed bias_exp 6, iDecay - 1 -> du, and its optimize_weight_bits on Dense weights (mixed,
excitatory and inhibitory sign modes, and small weights for which it picks weight_exp < 0)."""
import numpy as np
import pytest

from metaloihi.bridge.bundle import read_bundle, write_bundle
from metaloihi.bridge.netx_run import netx_network
from metaloihi.bridge.quantize import quantize
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.fixed import FixedLayer

from helpers.lava_run import run_netx
from helpers.random_net import small_float_net

pytestmark = pytest.mark.lava


def assert_netx_equals_sim(path, x):
    lava = run_netx(path, x)
    ours = fixed.run(read_bundle(path).frozen, x[None], record_uv=True)
    total = 0
    for i, (a, b) in enumerate(zip(lava["spikes"], ours["spikes"])):
        bad = np.argwhere(a != b)
        assert bad.size == 0, f"layer {i} spikes differ first at {tuple(bad[0])}"
        np.testing.assert_array_equal(lava["v"][i], ours["v"][i], err_msg=f"layer {i} v")
        total += int(a.sum())
    return total


def test_netx_built_network_equals_sim_on_a_quantised_float_network(tmp_path):
    q = quantize(*small_float_net(seed=3))
    path = write_bundle(tmp_path / "q.h5", q.net, scales=q.scales)
    rng = np.random.default_rng(0)
    for _ in range(2):                                        # two random inputs
        x = rng.random((30, 2, 12, 10)) < 0.25
        assert assert_netx_equals_sim(path, x) > 100          # the layers do spike


def test_netx_weight_optimisation_is_exact_on_our_grid(tmp_path):
    """Dense chains whose weights make optimize_weight_bits pick every sign mode and a shift:
    small even weights (max 40 -> netx stores w << 2 with weight_exp -2), excitatory only,
    inhibitory only; biases on exponent 6, decays at the extremes."""
    rng = np.random.default_rng(5)
    specs = [DenseSpec(40, 30), DenseSpec(30, 20), DenseSpec(20, 12), DenseSpec(12, 4)]
    ws = [2 * rng.integers(-20, 21, (30, 40)),               # mixed, |w| <= 40
          2 * rng.integers(0, 128, (20, 30)),                # excitatory, full range
          -2 * rng.integers(0, 128, (12, 20)),               # inhibitory (a bias drives it)
          2 * rng.integers(-127, 128, (4, 12))]
    bias = [rng.integers(-50, 51, 30), rng.integers(-50, 51, 20), rng.integers(20, 60, 12),
            rng.integers(-50, 51, 4)]
    net = [FixedLayer(s, w, L.LifFixed(du=du, dv=dv, vth=vth, bias_mant=b, bias_exp=6))
           for s, w, b, du, dv, vth in zip(specs, ws, bias, (0, 4095, 1000, 3),
                                           (4095, 0, 200, 7), (300, 900, 100, 50))]
    path = write_bundle(tmp_path / "d.h5", net)
    netx = netx_network(path)
    exps = [b.synapse.proc_params["weight_exp"] for b in netx.layers]
    assert exps == [-2, 0, 0]                                 # netx's own choice, equivalent to 0
    x = rng.random((40, 40)) < 0.3
    assert assert_netx_equals_sim(path, x) > 50
    spikes = fixed.run(net[:-1], x[None])["spikes"]
    assert all(s.sum() > 10 for s in spikes)                 # every layer is active
