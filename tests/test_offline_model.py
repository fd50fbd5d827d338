"""offline/model.py: input encoding, the logits rule, calibration, sub-network composition."""
import numpy as np
import torch

from metaloihi.offline import model
from metaloihi.sim import float_lif, readout


def test_encode_pools_binarises_and_merges_time_bins():
    x = torch.zeros(1, 4, 2, 4, 4)
    x[0, 0, 0, 0, 1] = 3        # step 0, pixel block (0, 0)
    x[0, 3, 1, 3, 3] = 1        # step 3, block (1, 1) of the OFF channel
    cfg = model.ModelConfig(pool=2, time_pool=2)
    y = model.encode(x, cfg)
    assert tuple(y.shape) == (1, 2, 2, 2, 2)
    assert y.sum() == 2 and y[0, 0, 0, 0, 0] == 1 and y[0, 1, 1, 1, 1] == 1
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
    assert model.input_shape((100, 2, 32, 32), cfg) == (2, 16, 16)


def test_logits_membrane_only_breaks_ties():
    out = {"counts": torch.tensor([[3.0, 3.0, 2.0, 0.0]]),
           "v_last": torch.tensor([[0.2, 0.9, 1.0, -50.0]])}
    lg = readout.logits(out, 1.0)
    assert int(lg.argmax()) == 1                   # equal counts: the fuller membrane wins
    assert float(lg[0, 2]) < float(lg[0, 0])       # a full membrane never beats one more spike
    assert float((lg - out["counts"]).abs().max()) < 0.5
    np.testing.assert_allclose(readout.logits_np(out["counts"].numpy(), out["v_last"].numpy(), 1.0),
                               lg.numpy(), rtol=1e-6)


def test_calibration_reaches_the_target_rates_and_features_compose():
    cfg = model.ModelConfig(channels=(4, 8), kernel=3)
    specs, neurons = model.build((30, 2, 8, 8), 5, cfg)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 30, 2, 8, 8, generator=g) < 0.05).float()
    p = model.calibrate(specs, model.init_params(specs, g), neurons, x, 0.05, 0.1)
    out = float_lif.run(specs, p, neurons, x)
    rates = [float(s.mean()) for s in out["spikes"]]
    assert all(abs(r - 0.05) < 0.02 for r in rates[:-1]) and abs(rates[-1] - 0.1) < 0.04, rates
    whole = model.forward(specs, p, neurons, x)
    h = model.features(specs, p, neurons, x, 2, None)
    assert torch.equal(model.forward_from(specs, p, neurons, h, 2, None), whole)
    assert torch.equal(whole, readout.logits(out, neurons[-1].vth))


def test_predict_is_counts_then_membrane_then_lowest_index():
    counts = np.array([[3, 3, 2, 0, 3],     # tie of 0, 1, 4 on counts: v decides -> 4
                       [1, 1, 1, 1, 1],     # all tied, v tied at the top between 1 and 3 -> 1
                       [0, 0, 0, 0, 0],     # silent head: v alone
                       [0, 5, 0, 0, 0]])    # one count wins whatever v says
    v = np.array([[10, 20, 9999, 0, 30],
                  [-5, 7, 3, 7, 0],
                  [-300, -200, -100, -400, -101],
                  [9999, -9999, 9999, 9999, 9999]])
    assert readout.predict_np(counts, v).tolist() == [4, 1, 2, 1]
    assert readout.predict_np(counts[0], v[0]) == 4                    # one sample
    # integers (sim/, Lava) and floats give the same answer; so does argmax of the logits
    # wherever tanh keeps the membranes apart
    rng = np.random.default_rng(0)
    c = rng.integers(0, 3, (2000, 5))
    vf = rng.normal(0, 2, (2000, 5))
    np.testing.assert_array_equal(readout.predict_np(c, vf),
                                  readout.logits_np(c, vf, 1.0).argmax(-1))
    lg = readout.logits({"counts": torch.as_tensor(c, dtype=torch.float64),
                       "v_last": torch.as_tensor(vf)}, 1.0)
    np.testing.assert_array_equal(readout.predict_np(c, vf), lg.argmax(-1).numpy())
    vi = rng.integers(-2 ** 23, 2 ** 23, (2000, 5))
    np.testing.assert_array_equal(readout.predict_np(c, vi), readout.predict_np(c, vi / 7.0))
