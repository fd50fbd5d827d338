"""NIR export of a deployed network (frozen layers + head, as sim.fixed layers).

Graph: input -> [conv{i} | (flatten ->) fc{i}] -> lif{i} -> ... -> output. Weights are in float
units: sim.mapping.fixed_to_float(net, scales), i.e. mantissa / scale (dense: Lava's effective
mantissas). With scales = 1 the units are weight mantissas (what the chip adds).

Loihi's per-step CUBA update (float units, du_f = (du + 1)/4096 with the hidden +1,
dv_f = dv/4096)
    u[t] = u[t-1] (1 - du_f) + sum_j w_ij s_j,     v[t] = v[t-1] (1 - dv_f) + u[t] + b,
    s = v > vth, then v = 0
is NIR's CubaLIF  tau_syn dI/dt = -I + w_in x,  tau_mem dv/dt = (v_leak - v) + r I
forward-Euler-discretised with step dt (seconds, default 1 ms) when
    tau_syn = dt / du_f          (so 1 - dt/tau_syn = 1 - du_f)
    w_in    = tau_syn / dt       (so the current gains exactly w.s per step)
    tau_mem = dt / dv_f          (dv = 0, no leak, has no finite tau: we write dt * 8192, a leak
                                  of half Loihi's smallest step per step; the one inexact case)
    r       = tau_mem / dt       (so v gains exactly u per step)
    v_leak  = b * tau_mem / dt   (so v gains exactly b per step: Loihi's bias goes to v)
    v_threshold = vth, v_reset = 0.
The discrete parameters do not depend on dt; a consumer with another fixed dt (snntorch assumes
1e-4 s) reads the same network from an export made with its dt.
Not expressed in NIR: Lava's one step of delay per connection (each synapse node's metadata
says loihi_delay_steps = 1: layer i's spikes are i + 1 steps later than in a consumer that
runs a whole layer chain in one step), and the integer rounding of Loihi's decays (the float
model is sim.float_lif's). Each node's metadata also holds the Loihi integers it came from.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec
from metaloihi.sim.fixed import Network
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.mapping import fixed_to_float

DV_ZERO_TAU_STEPS = 2 * L.DECAY_UNITY    # dv = 0 -> tau_mem = dt * 8192


def cuba_params(du: float, dv: float, vth: float, bias, shape: tuple, dt: float) -> dict:
    """NIR CubaLIF fields for a population of `shape` neurons (per-neuron bias in torch flatten
    order) from float-unit Loihi parameters."""
    tau_syn = dt / du
    tau_mem = dt / dv if dv > 0 else dt * DV_ZERO_TAU_STEPS
    full = lambda x: np.full(shape, x, dtype=np.float64)   # noqa: E731
    n = int(np.prod(shape))
    bias = np.broadcast_to(np.asarray(bias, np.float64), (n,)).reshape(shape)
    return dict(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt),
                v_leak=bias * tau_mem / dt,
                v_threshold=full(vth), v_reset=full(0.0), w_in=full(tau_syn / dt))


def to_nir(net: Network, scales: list[float] | None = None, dt: float = 1e-3):
    """The nir.NIRGraph of net (frozen layers and head)."""
    import nir

    if not (np.isfinite(dt) and dt > 0):
        raise UserError(f"dt must be a positive number of seconds, got {dt}")
    specs, params, neurons = fixed_to_float(net, scales)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(specs[0].in_shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for i, (spec, layer, nrn) in enumerate(zip(specs, net, neurons)):
        w = params[weight_key(i)].numpy()
        ints = {"loihi_delay_steps": 1, "weight_exp": int(layer.weight_exp)}
        if isinstance(spec, ConvSpec):
            syn = f"conv{i}"
            nodes[syn] = nir.Conv2d(input_shape=tuple(spec.in_shape[1:]), weight=w,
                                    stride=tuple(spec.stride), padding=tuple(spec.padding),
                                    dilation=(1, 1), groups=1, bias=np.zeros(w.shape[0]),
                                    metadata=ints)
        else:
            if i > 0 and isinstance(specs[i - 1], ConvSpec):
                flat = f"flatten{i}"
                nodes[flat] = nir.Flatten(input_type={"input": np.array(specs[i - 1].out_shape)},
                                          start_dim=0, end_dim=-1)
                edges.append((prev, flat))
                prev = flat
            syn = f"fc{i}"
            nodes[syn] = nir.Affine(weight=w, bias=np.zeros(w.shape[0]), metadata=ints)
        edges.append((prev, syn))
        cuba = cuba_params(float(nrn.du), float(nrn.dv), float(nrn.vth), nrn.bias,
                           tuple(spec.out_shape), dt)
        meta = {"du": int(layer.neuron.du), "dv": int(layer.neuron.dv),
                "vth": int(layer.neuron.vth), "bias_exp": int(layer.neuron.bias_exp),
                "dt": dt, "out_shape": list(spec.out_shape)}
        nodes[f"lif{i}"] = nir.CubaLIF(**cuba, metadata=meta)
        edges.append((syn, f"lif{i}"))
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([net[-1].n_out])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def write_nir(path: str | Path, net: Network, scales: list[float] | None = None,
              dt: float = 1e-3) -> Path:
    import nir

    from metaloihi.base.atomic import atomic_path, hdf5_bytes

    graph = to_nir(net, scales, dt)
    floats = [np.asarray(layer.weight, np.float64) for layer in net]    # NIR stores floats
    with atomic_path(path, "NIR graph", hdf5_bytes(floats)) as tmp:
        nir.write(str(tmp), graph)
    return Path(path)
