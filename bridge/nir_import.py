"""An NIR graph -> Loihi 2 fixed point -> a netx file (lava-dl's ``netx.hdf5.Network`` loads it,
``metaloihi sim`` runs it, ``metaloihi attach-head`` puts a learning head on it).

bridge/nir_read.py maps the graph onto Loihi's CUBA LIF in float units (its docstring states
where NIR and Loihi differ); here each population is quantised through sim/ only
(sim.mapping.float_to_fixed: per-layer scale, weights on the even 8-bit grid, vth and bias in
the same units, decays on 12 bits) with the choices netx forces, as bridge/quantize.py makes
them for a bundle's frozen layers: weight exponent 0 and the bias on netx's exponent 6
(quantize.netx_bias). Unlike a trained bundle, an imported network has thresholds and biases
that the weight scale must leave room for: a layer's grid edge stands for
max(max |w|, vth x 254 / (2^17 - 1), max |bias| x 254 / 4095), so vth fits its 17 bits and
the bias its 13-bit mantissa at exponent 6 (the weights lose resolution only where needed).
An output integrator (LI, I, CubaLI) gets vth = 2^17 - 1: it does not spike unless v saturates.

Why a plain netx file and not our bundle: every layer (the last dense one too) stays a netx
layer, so lava-dl's netx builds the whole network and `metaloihi sim --compare` holds it
against Lava; the learning head and its rule are attach-head's to add (issue 21 item 3), on
whichever layer the user picks. Our provenance sits in the `nir_import` group, which netx
does not read (it reads layer/ only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from metaloihi.base.atomic import atomic_path, hdf5_bytes
from metaloihi.base.errors import UserError
from metaloihi.base.paths import check_io
from metaloihi.bridge.bundle import default_meta, write_netx_layers
from metaloihi.bridge.nir_read import INTEGRATORS, FloatNet, read_nir
from metaloihi.bridge.quantize import LayerError, error_table, layer_error, netx_bias
from metaloihi.sim import loihi as L
from metaloihi.sim.fixed import FixedLayer, Network
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.mapping import float_to_fixed

GROUP = "nir_import"
FORMAT = "metaloihi.nir_import/1"


@dataclass(frozen=True)
class Imported:
    float_net: FloatNet
    net: Network                 # sim.fixed layers, as written (netx layout)
    scales: list[float]          # per layer, mantissa units per float weight unit
    errors: list[LayerError]
    path: Path | None = None

    def table(self) -> str:
        return error_table(self.errors)


def _ranges(fnet: FloatNet) -> list[float]:
    """Per layer the float |w| the grid's edge (mantissa 254) stands for (module docstring)."""
    out = []
    for i, nrn in enumerate(fnet.neurons):
        w = fnet.params[weight_key(i)].numpy()
        edge = float(np.abs(w).max(initial=0.0))
        if edge == 0:
            raise UserError(f"layer {i} ({fnet.names[i]}): all weights are zero (netx cannot "
                            "load an all-zero layer)")
        if np.isfinite(nrn.vth):
            edge = max(edge, nrn.vth * L.GRID_MAX / L.VTH_MAX)
        b = float(np.abs(np.asarray(nrn.bias)).max(initial=0.0))
        edge = max(edge, b * L.GRID_MAX / (L.BIAS_MANT_MAX - 0.5))
        out.append(edge * (1 + 1e-9))           # rounding must not push anything past its edge
    return out


def quantize_nir(fnet: FloatNet) -> tuple[Network, list[float], list[LayerError]]:
    """The float network on Loihi 2's integers (netx's exponents), with the error per layer."""
    integ = [k in INTEGRATORS for k in fnet.kinds]
    mapped = [replace(n, vth=0.0) if it else n for n, it in zip(fnet.neurons, integ)]
    try:
        net, scales = float_to_fixed(fnet.specs, fnet.params, mapped, ranges=_ranges(fnet))
    except UserError as err:
        raise UserError(f"cannot map onto Loihi 2: {err}") from None
    out: Network = []
    errors: list[LayerError] = []
    for i, (layer, scale, nrn_f) in enumerate(zip(net, scales, fnet.neurons)):
        bias_f = np.broadcast_to(np.asarray(nrn_f.bias, np.float64), (layer.n_out,))
        mant, bexp = netx_bias(i, bias_f, scale, layer.n_out)
        vth = L.VTH_MAX if integ[i] else layer.neuron.vth
        nrn = L.LifFixed(du=layer.neuron.du, dv=layer.neuron.dv, vth=vth, bias_mant=mant,
                         bias_exp=bexp)
        out.append(FixedLayer(layer.spec, layer.weight, nrn, weight_exp=0))
        errors.append(layer_error(out[-1], scale, fnet.params[weight_key(i)].numpy(), bias_f,
                                  0.0 if integ[i] else float(nrn_f.vth), float(nrn_f.du),
                                  float(nrn_f.dv)))
    return out, list(scales), errors


def write_netx(path: str | Path, net: Network, meta: dict) -> Path:
    """net as a netx file (input layer with the shape, a flatten before a dense after a conv,
    bridge/bundle.py's layer writer), atomically; meta goes to the `nir_import` group."""
    arrays = [a for layer in net for a in (layer.weight, layer.neuron.effective_bias)]
    with atomic_path(path, "netx network", hdf5_bytes(arrays)) as tmp:
        with h5py.File(tmp, "w") as f:
            write_netx_layers(f, net)
            ours = f.create_group(GROUP)
            ours.attrs["format"] = FORMAT
            for key, val in meta.items():
                ours.attrs[key] = json.dumps(val)
    return Path(path)


def read_meta(path: str | Path) -> dict:
    """The `nir_import` group of a file this module wrote ({} for any other netx file)."""
    with h5py.File(path, "r") as f:
        if GROUP not in f:
            return {}
        return {k: json.loads(v) for k, v in f[GROUP].attrs.items() if k != "format"}


def import_nir(graph: str | Path, out: str | Path, dt: float | None = None,
               input_shape: tuple[int, ...] | None = None) -> Imported:
    """Read, map, quantise and write `graph` to `out` (a netx file). Every refusal comes
    before anything is written; `out` may not be the graph itself."""
    graph, out = Path(graph), Path(out)
    check_io({"graph": graph}, {"--out": out})
    fnet = read_nir(graph, dt=dt, input_shape=input_shape)
    net, scales, errors = quantize_nir(fnet)
    meta = {**default_meta(source=graph), "dt": fnet.dt, "dt_source": fnet.dt_source,
            "scales": scales, "layers": fnet.names, "neurons": fnet.kinds,
            "readout": fnet.readout, "nir_input_shape": list(fnet.nir_input_shape),
            "notes": fnet.notes}
    path = write_netx(out, net, meta)
    return Imported(fnet, net, scales, errors, path)
