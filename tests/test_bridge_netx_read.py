"""netx files made by lava-dl's own exporter (slayer blocks' export_hdf5), read by
bridge/netx_read.py and run by sim/network_run.py, are identical to what lava-dl's
netx.hdf5.Network computes in Lava's fixed_pt CPU simulator: every population's spikes, u and v
at every step. Features covered: input layer as a neuron fed by its bias and as plain spikes,
graded input messages, conv with stride, padding, dilation, groups and per-channel bias,
flatten, dense with axonal delays, recurrent dense, netx's weight optimisation (shift, exponent,
bits), reset_interval/offset. Unsupported layers and files netx refuses: one-line errors."""
import h5py
import numpy as np
import pytest

from metaloihi.base.errors import UserError
from metaloihi.bridge.netx_read import read_netx
from metaloihi.sim import fixed
from metaloihi.sim.network import from_fixed
from metaloihi.sim.network_run import run

from helpers import netx_files as nf
from helpers.cli import sim_compare
from helpers.netx_files import assert_netx_sim_equals_lava, one_line, write_layers

lava = pytest.mark.lava


@lava
def test_conv_net_with_input_neuron_groups_bias_and_delays_equals_lava(tmp_path):
    """Input neuron driven by a bias image, conv stride 2 / padding 1 / groups 2 with a
    per-channel bias, conv (3, 2) kernel with stride (1, 2), flatten, dense with delays 0..5."""
    path = nf.conv_net(tmp_path / "c.net", seed=1, bias=True)
    net = read_netx(path)
    n = net.input_neuron                          # the input layer as a neuron (4 x 10 x 12)
    assert (n.du, n.dv, n.vth, n.bias.shape) == (1023, 205, 25, (480,))
    assert net.layers[0].spec.groups == 2
    # the dense layer's axonal delays, one per synapse (10 x 120), as slayer exported them
    assert [a.tolist() for a in np.unique(net.layers[2].delay, return_counts=True)] == \
        [[0, 1, 2, 4], [120, 240, 480, 360]]
    counts = assert_netx_sim_equals_lava(path, nf.rng_input((4, 10, 12), 10, kind="bias"))
    assert all(c > 0 for c in counts), counts


@lava
def test_conv_net_with_spike_input_and_dilation_equals_lava(tmp_path):
    path = nf.conv_net(tmp_path / "c.net", seed=2, input_neuron=False, groups=1, dilation=2,
                       delay=False)
    assert read_netx(path).layers[0].spec.dilation == (2, 2)
    counts = assert_netx_sim_equals_lava(path, nf.rng_input((4, 10, 12), 10, density=0.4))
    assert counts[0] > 50 and counts[1] > 20, counts


@lava
def test_recurrent_dense_chain_with_graded_input_equals_lava(tmp_path):
    """Graded input messages (1..7, input_message_bits=3) into dense -> recurrent -> dense."""
    path = nf.dense_net(tmp_path / "d.net", seed=3)
    net = read_netx(path, input_message_bits=3)
    rec = net.layers[1].weight_rec                # 12 -> 12 recurrent weights, as exported
    assert net.graded_input and rec.shape == (12, 12) and np.count_nonzero(rec) == 141
    counts = assert_netx_sim_equals_lava(path, nf.rng_input((20,), 12, kind="graded"),
                                    input_message_bits=3)
    assert all(c > 0 for c in counts), counts


@lava
def test_reset_interval_equals_lava_and_resets(tmp_path):
    path = nf.dense_net(tmp_path / "d.net", seed=3)
    x = nf.rng_input((20,), 12)
    assert_netx_sim_equals_lava(path, x, reset_interval=4, reset_offset=1)
    net = read_netx(path, reset_interval=4, reset_offset=1)
    assert [layer.neuron.reset.offset for layer in net.layers] == [2, 3, 4]   # netx: +1 a layer
    out = run(net, x, record_uv=True)
    u, v = out["u"][0][0], out["v"][0][0]         # layer 1: resets before steps 2, 6, 10
    steps = [1, 5, 9]
    assert np.all((v[steps] == u[steps]) | (v[steps] == 0))   # v restarted from 0 (no bias)
    assert np.abs(u).sum() == 855652              # integer u: sim/ == Lava above, exactly
    plain = run(read_netx(path), x, record_uv=True)
    assert not np.array_equal(plain["v"][0], out["v"][0])


def test_our_own_networks_run_the_same_through_the_description():
    """from_fixed + network_run.run == fixed.run (spikes, u, v) on a conv + dense network."""
    from metaloihi.sim.arch import paper_arch
    from helpers.random_net import calibrated_network
    rng = np.random.default_rng(0)
    specs = paper_arch((2, 12, 12), ways=4, channels=(4, 6))
    x = rng.random((2, 30, 2, 12, 12)) < 0.1
    net = calibrated_network(specs, x, rate=0.05, rng=rng, iters=8)
    a, b = fixed.run(net, x, record_uv=True), run(from_fixed(net), x, record_uv=True)
    for key in ("spikes", "u", "v"):
        for i in range(len(net)):
            np.testing.assert_array_equal(a[key][i], b[key][i], err_msg=f"{key} {i}")
    assert all(s.sum() > 0 for s in b["spikes"])


# --- refusals: one line, before any work -------------------------------------------------------
def test_bad_files_are_refused_in_one_line(tmp_path):
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(UserError) as err:
        read_netx(junk)
    assert "not an HDF5 file" in one_line(err)
    with h5py.File(tmp_path / "empty.net", "w"):
        pass
    with pytest.raises(UserError) as err:
        read_netx(tmp_path / "empty.net")
    assert "no 'layer' group" in one_line(err)
    with pytest.raises(UserError, match="no such file"):
        read_netx(tmp_path / "absent.net")


def test_unsupported_layer_type_names_index_type_and_what_is_supported(tmp_path):
    path = write_layers(tmp_path / "p.net", [{"type": "input", "shape": [2, 4, 4]},
                                       {"type": "pool", "shape": [2, 2, 2]},
                                       {"type": "dense", "shape": [3], "weight": np.ones((3, 8))}])
    with pytest.raises(UserError) as err:
        read_netx(path)
    msg = one_line(err)
    assert "layer 1 (pool)" in msg and "supported: layers input, dense" in msg


def test_all_zero_dense_weights_are_refused_like_netx(tmp_path):
    path = write_layers(tmp_path / "z.net", [{"type": "input", "shape": [8]},
                                       {"type": "dense", "shape": [3], "weight": np.zeros((3, 8))}])
    with pytest.raises(UserError, match=r"layer 1 \(dense\): all weights are zero"):
        read_netx(path)


@lava
def test_pool_from_slayer_is_refused_and_netx_refuses_what_we_refuse(tmp_path):
    """(SDNN files are read: tests/test_sim_sdnn.py.)"""
    s = nf.slayer()
    pool = nf.export(tmp_path / "pool.net", [s.block.cuba.Pool(nf.neuron(), 2)], (2, 4, 4))
    with pytest.raises(UserError, match=r"layer 0 \(pool\): not supported"):
        read_netx(pool)
    from metaloihi.bridge.netx_lava import _network
    zero = write_layers(tmp_path / "z.net", [{"type": "input", "shape": [8]},
                                       {"type": "dense", "shape": [3], "weight": np.zeros((3, 8))}])
    with pytest.raises(Exception):
        _network(zero, None, 0, 0)                      # netx fails on it too
    with pytest.raises(UserError):
        read_netx(zero)


@lava
def test_cli_sim_compare_writes_the_trace_and_says_identical(tmp_path, capsys):
    from metaloihi import cli
    path = nf.conv_net(tmp_path / "c.net", seed=1)
    x = nf.rng_input((4, 10, 12), 6, kind="bias", batch=1)[:, 0]
    _, trace = sim_compare(path, x, tmp_path, capsys, "layer 5 (dense)", "--steps", "6")
    assert trace["1_s"].shape == (1, 6, 6, 5, 6) and trace["4_v"].shape == (1, 6, 4)
    np.testing.assert_array_equal(trace["0_u"], 0)            # the input neuron gets no a_in
    bad = ["sim", str(path), "--input", str(tmp_path / "x.npy"), "--record", "q"]
    assert cli.guarded(lambda: cli.app(args=bad, standalone_mode=False)) == 1
    assert "--record 'q'" in capsys.readouterr().err


def test_our_bundles_read_as_netx_files_run_like_their_frozen_layers(tmp_path):
    """netx reads a bundle's layer/ group: the reader's copy of netx's weight optimisation
    (small mixed weights -> shift 2, weight_exp -2; excitatory and inhibitory sign modes) and
    bias handling give exactly sim.fixed's run of the bundle's frozen layers."""
    from metaloihi.bridge.bundle import read_bundle, write_bundle
    from metaloihi.sim import loihi as L
    from metaloihi.sim.arch import ConvSpec, DenseSpec
    from metaloihi.sim.fixed import FixedLayer
    rng = np.random.default_rng(5)
    conv = ConvSpec((2, 8, 8), 3, (3, 3), stride=(2, 2), padding=(1, 1))
    specs = [conv, DenseSpec(48, 20), DenseSpec(20, 12), DenseSpec(12, 4)]
    ws = [2 * rng.integers(-60, 80, conv.weight_shape), 2 * rng.integers(-20, 21, (20, 48)),
          2 * rng.integers(0, 128, (12, 20)), -2 * rng.integers(0, 128, (4, 12))]
    net = [FixedLayer(s, w, L.LifFixed(du=300, dv=200, vth=vth, bias_exp=6,
                                       bias_mant=rng.integers(-20, 40, int(np.prod(s.out_shape)))))
           for s, w, vth in zip(specs, ws, (200, 100, 300, 50))]
    path = write_bundle(tmp_path / "b.h5", net)
    imported = read_netx(path)
    assert [layer.weight_exp for layer in imported.layers] == [0, -2, 0]
    x = rng.random((3, 30, 2, 8, 8)) < 0.3
    ours = run(imported, x, record_uv=True)
    ref = fixed.run(read_bundle(path).frozen, x, record_uv=True)
    for key in ("spikes", "u", "v"):
        for i in range(3):
            np.testing.assert_array_equal(ours[key][i], ref[key][i], err_msg=f"{key} {i}")
    assert all(s.sum() > 10 for s in ours["spikes"])
