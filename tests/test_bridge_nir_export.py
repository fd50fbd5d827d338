"""NIR export: the graph reads back with nir.read with the documented parameter mapping, and a
framework that consumes NIR (snntorch's import_from_nir) runs it exactly as sim/'s float model
of the same deployed network, spike for spike (shifted by Lava's one-step delay per layer)."""
import nir
import numpy as np
import pytest
import torch

from metaloihi.bridge.nir_export import DV_ZERO_TAU_STEPS, write_nir
from metaloihi.bridge.quantize import quantize
from metaloihi.sim import float_lif
from metaloihi.sim import loihi as L
from metaloihi.sim.mapping import fixed_to_float

from helpers.random_net import small_float_net


@pytest.fixture(scope="module")
def deployed():
    return quantize(*small_float_net(seed=2, bias=0.0))


def test_nir_round_trip_shapes_and_parameters(tmp_path, deployed):
    path = write_nir(tmp_path / "n.nir", deployed.net, deployed.scales, dt=1e-3)
    g = nir.read(str(path))
    assert [(a, b) for a, b in g.edges] == [
        ("input", "conv0"), ("conv0", "lif0"), ("lif0", "conv1"), ("conv1", "lif1"),
        ("lif1", "flatten2"), ("flatten2", "fc2"), ("fc2", "lif2"), ("lif2", "fc3"),
        ("fc3", "lif3"), ("lif3", "output")]
    assert isinstance(g.nodes["conv0"], nir.Conv2d) and isinstance(g.nodes["fc3"], nir.Affine)
    assert g.nodes["input"].input_type["input"].tolist() == [2, 12, 10]
    assert g.nodes["flatten2"].output_type["output"].tolist() == [120]
    assert g.nodes["output"].output_type["output"].tolist() == [3]
    for i, (layer, scale) in enumerate(zip(deployed.net, deployed.scales)):
        syn = g.nodes[f"conv{i}" if i < 2 else f"fc{i}"]
        np.testing.assert_array_equal(syn.weight, layer.weight / scale)   # even grid: exact
        lif = g.nodes[f"lif{i}"]
        assert lif.tau_syn.shape == tuple(layer.spec.out_shape)
        du, dv = (layer.neuron.du + 1) / 4096, layer.neuron.dv / 4096
        np.testing.assert_allclose(1e-3 / lif.tau_syn, du, rtol=1e-12)      # 1 - dt/tau = 1 - du
        np.testing.assert_allclose(1e-3 / lif.tau_mem, dv, rtol=1e-12)
        np.testing.assert_allclose(lif.w_in * 1e-3 / lif.tau_syn, 1.0, rtol=1e-12)
        np.testing.assert_allclose(lif.r * 1e-3 / lif.tau_mem, 1.0, rtol=1e-12)
        np.testing.assert_allclose(lif.v_threshold, layer.neuron.vth / scale, rtol=1e-12)
        assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
        assert lif.metadata["du"] == layer.neuron.du and lif.metadata["vth"] == layer.neuron.vth
    assert g.nodes["conv1"].stride.tolist() == [1, 1]
    assert g.nodes["conv0"].padding.tolist() == [1, 1]


def test_bias_and_no_leak_map_to_v_leak_and_a_finite_tau(tmp_path):
    q = quantize(*small_float_net(seed=2, bias=0.05))
    q.net[1] = type(q.net[1])(q.net[1].spec, q.net[1].weight,
                              L.LifFixed(du=5, dv=0, vth=9, bias_mant=q.net[1].neuron.bias_mant,
                                         bias_exp=6))
    g = nir.read(str(write_nir(tmp_path / "b.nir", q.net, q.scales, dt=1e-3)))
    lif = g.nodes["lif1"]
    np.testing.assert_allclose(lif.tau_mem, 1e-3 * DV_ZERO_TAU_STEPS)
    b = q.net[1].neuron.effective_bias / (q.scales[1] * 64)                  # float units
    np.testing.assert_allclose((lif.v_leak * 1e-3 / lif.tau_mem).ravel(), b, rtol=1e-12)


def test_snntorch_imports_it_and_runs_it_as_sims_float_model(tmp_path, deployed):
    import snntorch.utils
    from snntorch.import_nir import import_from_nir

    # snntorch fixes dt = 1e-4 s; the discrete parameters do not depend on dt
    g = nir.read(str(write_nir(tmp_path / "s.nir", deployed.net, deployed.scales, dt=1e-4)))
    model = import_from_nir(g)
    for i, layer in enumerate(deployed.net):
        m = getattr(model, f"lif{i}")
        assert float(m.alpha) == pytest.approx(1 - (layer.neuron.du + 1) / 4096, abs=1e-7)
        assert float(m.beta) == pytest.approx(1 - layer.neuron.dv / 4096, abs=1e-7)
        assert float(m.threshold) == pytest.approx(layer.neuron.vth / deployed.scales[i])
    steps, n_layers = 40, len(deployed.net)
    x = np.random.default_rng(4).random((steps, 2, 12, 10)) < 0.3
    specs, params, neurons = fixed_to_float(deployed.net, deployed.scales)
    ref = float_lif.run(specs, params, neurons, torch.as_tensor(x[None], dtype=torch.float64))
    ref = ref["spikes"][-1][0].numpy()
    with torch.no_grad():
        snntorch.utils.reset(model)
        out = np.stack([model(torch.as_tensor(x[t], dtype=torch.float32))[0].numpy()
                        for t in range(steps)])
    assert ref.sum() > 10
    # Lava delays each of the n_layers connections by one step; snntorch does not
    np.testing.assert_array_equal(out[: steps - n_layers], ref[n_layers:])
