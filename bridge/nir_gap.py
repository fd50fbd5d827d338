"""The import's gap: what quantisation to Loihi 2 changed in an imported NIR network, measured.

On inputs x (spikes at the graph's input shape) the float network (bridge/nir_read.py's mapping
run in sim.float_lif: NIR's equations with Lava's timing, float64) is compared with the
deployed integers (the written netx file read back by bridge/netx_read.py and run bit-exactly by
sim/network_run.py): per population the spike-count correlation and mean rates, and the output
agreement (the class by sim/readout.py's rule, counts then last v, equal in both). Lava (netx on
Loihi2SimCfg) runs the first samples of the same file, and every population's spikes, u and v
must equal sim/'s.
"""
from __future__ import annotations

import numpy as np
import torch

from metaloihi.base.errors import UserError
from metaloihi.bridge.netx_read import read_netx
from metaloihi.sim import float_lif
from metaloihi.sim.network_run import run as run_fixed
from metaloihi.sim.readout import predict_np


def as_input(x: np.ndarray, fnet) -> np.ndarray:
    """x [B, T, *shape] at the graph's NIR input shape or Loihi's -> [B, T, *Loihi's]."""
    x = np.asarray(x)
    want = tuple(fnet.input_shape)
    for shape in (want, tuple(fnet.nir_input_shape)):
        if x.ndim == len(shape) + 2 and tuple(x.shape[2:]) == shape:
            if not np.all(np.isfinite(x)) or np.any((x != 0) & (x != 1)):
                raise UserError("inputs must be spikes (0 or 1) per step")
            return x.reshape(*x.shape[:2], *want).astype(bool)
    raise UserError(f"inputs of shape {x.shape}: expected [samples, steps, "
                    f"{', '.join(map(str, fnet.nir_input_shape))}]")


def random_spikes(fnet, samples: int, steps: int, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((samples, steps, *fnet.input_shape)) < rate


def run_float(fnet, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(spike counts per population [B, n], the output's v at the last step [B, n_out])."""
    with torch.no_grad():
        out = float_lif.run(fnet.specs, fnet.params, fnet.neurons,
                            torch.as_tensor(x, dtype=torch.float64))
    return [s.sum(dim=1).numpy() for s in out["spikes"]], out["v_last"].numpy()


def run_deployed(path, x: np.ndarray):
    """(netx description, full record, counts per population, the output's last v)."""
    desc = read_netx(path)
    rec = run_fixed(desc, x, record_uv=True)
    return desc, rec, [s.sum(axis=1) for s in rec["spikes"]], rec["v"][-1][:, -1]


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return None                                       # undefined: a silent population
    return float(np.corrcoef(a, b)[0, 1])


def measure(imp, x: np.ndarray, lava_samples: int = 2) -> dict:
    """The gap on x [B, T, *shape] (module docstring); lava_samples 0 skips Lava."""
    fnet = imp.float_net
    x = as_input(x, fnet)
    f_counts, f_v = run_float(fnet, x)
    desc, rec, q_counts, q_v = run_deployed(imp.path, x)
    f_pred, q_pred = predict_np(f_counts[-1], f_v), predict_np(q_counts[-1], q_v)
    layers = []
    for i, (fc, qc) in enumerate(zip(f_counts, q_counts)):
        e = imp.errors[i]
        layers.append({"layer": i, "nodes": fnet.names[i], "neuron": fnet.kinds[i],
                       "kind": e.kind, "weight_shape": list(e.shape), "scale": e.scale,
                       "w_rel_rms": e.w_rel_rms, "w_max_abs": e.w_max_abs,
                       "w_zero_frac": e.w_zero_frac, "vth_rel": e.vth_rel,
                       "bias_rel_rms": e.bias_rel_rms,
                       "rate_float": float(fc.mean() / x.shape[1]),
                       "rate_fixed": float(qc.mean() / x.shape[1]),
                       "count_corr": _corr(fc, qc)})
    out = {"samples": int(x.shape[0]), "steps": int(x.shape[1]), "readout": fnet.readout,
           "layers": layers, "agreement": float(np.mean(f_pred == q_pred)),
           "pred_float": f_pred.tolist(), "pred_fixed": q_pred.tolist()}
    if lava_samples > 0:
        out["lava"] = compare_lava(imp.path, desc, rec, x[:lava_samples])
    return out


def compare_lava(path, desc, rec: dict, x: np.ndarray) -> dict:
    """Lava (netx) on x against sim/'s record of the same samples: identical or not."""
    from metaloihi.bridge import netx_lava
    import time
    t0 = time.perf_counter()
    lava = netx_lava.run(path, desc, x, record_uv=True)
    same = all(np.array_equal(lava[k][i], rec[k][i][: len(x)])
               for k in ("spikes", "u", "v") for i in range(len(desc.populations)))
    return {"samples": int(len(x)), "steps": int(x.shape[1]), "identical": bool(same),
            "seconds": time.perf_counter() - t0}


def report(imp, gap: dict) -> str:
    """The gap as text: the quantisation table, then per population rates and correlation."""
    lines = [imp.table(), "",
             f"on {gap['samples']} inputs x {gap['steps']} steps (float: sim/'s float CUBA-LIF "
             f"of the graph, dt {imp.float_net.dt:g} s from {imp.float_net.dt_source}; "
             "deployed: the netx file in sim/'s integers)",
             f"{'layer':>5} {'neuron':<8} {'rate float':>10} {'rate fixed':>10} "
             f"{'count corr':>10}  nodes"]
    for r in gap["layers"]:
        corr = "n/a" if r["count_corr"] is None else f"{r['count_corr']:.4f}"
        lines.append(f"{r['layer']:>5} {r['neuron']:<8} {r['rate_float']:>10.4f} "
                     f"{r['rate_fixed']:>10.4f} {corr:>10}  {r['nodes']}")
    lines.append(f"output agreement (class by {gap['readout']}): {gap['agreement']:.1%}")
    if "lava" in gap:
        lv = gap["lava"]
        lines.append(f"sim/ == Lava on {lv['samples']} input(s) x {lv['steps']} steps, every "
                     f"population's spikes, u, v: {'identical' if lv['identical'] else 'DIFFERENT'}"
                     f" ({lv['seconds']:.1f} s in Lava)")
    return "\n".join(lines)
