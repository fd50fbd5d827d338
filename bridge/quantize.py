"""Float network -> Loihi 2 fixed point for deployment, through sim/'s mapping only.

The mapping itself (per-layer scale that puts the largest |w| on the grid's edge, even weight
mantissas in [-254, 254], vth and bias in the same units, decays with the hidden +1 on du) is
sim.mapping.float_to_fixed. What this module adds is the one choice netx forces on the frozen
layers so that the network netx builds from the bundle computes what sim/ computes:

- bias exponent 6. netx's CUBA neuron always sets bias_exp = 6 and takes the HDF5 `bias` as the
  mantissa (lava/lib/dl/netx/hdf5.py, get_neuron_params). So a frozen layer's bias is quantised
  as round(bias * scale) << 6, i.e. to one weight-mantissa unit of the layer (13-bit signed:
  |bias * scale| <= 4095.5), instead of the finer exponent sim.mapping would pick.
- weight exponent 0. netx computes its own Dense weight exponent (optimize_weight_bits) from the
  mantissas and has no field for ours; on our even grid its choice is always equivalent to 0
  (see bridge/bundle.py). Conv layers are 0 anyway (Lava's CPU Conv ignores weight_exp).

The learning head (the last layer) lives in the bundle's own group, not in netx's layers, so it
keeps sim.mapping's bias exponent and may take a weight exponent (onchip/'s learning rule).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metaloihi.bridge.bundle import NETX_BIAS_EXP
from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, SynapseSpec
from metaloihi.sim.fixed import FixedLayer, Network
from metaloihi.sim.float_lif import layer_neuron, weight_key
from metaloihi.sim.mapping import float_to_fixed



@dataclass(frozen=True)
class LayerError:
    """How far layer i's deployed parameters are from the float ones, in float units."""
    kind: str             # conv / dense / head
    shape: tuple
    scale: float          # mantissa units per float weight unit
    weight_exp: int
    w_rel_rms: float      # ||w_q - w|| / ||w||, w_q = mantissa * 2**exp / (scale * 2**exp)
    w_max_abs: float      # max |w_q - w| in float units
    w_zero_frac: float    # fraction of weights whose mantissa is 0
    vth_rel: float        # |vth_q - vth| / vth
    bias_rel_rms: float   # ||b_q - b|| / ||b|| (0 where the float bias is 0)
    du: tuple             # (float, deployed float)
    dv: tuple


@dataclass(frozen=True)
class Quantized:
    net: Network                 # frozen layers + head (the last layer), sim.fixed layers
    scales: list[float]          # per layer, mantissa units per float weight unit
    errors: list[LayerError]

    @property
    def frozen(self) -> Network:
        return self.net[:-1]

    @property
    def head(self) -> FixedLayer:
        return self.net[-1]

    def table(self) -> str:
        return error_table(self.errors)


def _np(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def rel_rms(err: np.ndarray, ref: np.ndarray) -> float:
    den = float(np.sqrt(np.mean(ref ** 2))) if ref.size else 0.0
    num = float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def netx_bias(i: int, bias: np.ndarray, units: float, n: int) -> tuple[np.ndarray, int]:
    """Float bias -> (mantissa, 6): the bias on netx's fixed exponent."""
    # effective bias (v units) = bias * units << ACT_SHIFT = mantissa << NETX_BIAS_EXP
    mant = np.round(np.broadcast_to(bias, (n,)) * units * 2.0 ** (L.ACT_SHIFT - NETX_BIAS_EXP))
    if mant.min(initial=0) < L.BIAS_MANT_MIN or mant.max(initial=0) > L.BIAS_MANT_MAX:
        j = int(np.argmax(np.abs(mant)))
        raise UserError(f"layer {i}: bias {float(np.ravel(bias)[j % np.size(bias)]):.4g} x scale "
                        f"{units:.4g} = {int(mant[j])} does not fit the 13-bit bias mantissa "
                        f"[{L.BIAS_MANT_MIN}, {L.BIAS_MANT_MAX}] at netx's bias exponent 6")
    return mant.astype(np.int64), NETX_BIAS_EXP


def quantize(specs: list[SynapseSpec], params: dict, neurons: list[L.LifFloat],
             head_weight_exp: int | None = None, head_range: float | None = None
             ) -> Quantized:
    """Map a float network (sim.float_lif's params dict + LifFloat per layer; the last layer is
    the learning head) to the deployment's fixed-point Network and report the error per layer.
    head_weight_exp: the head's Dense weight exponent (only the head may have one); None: 0, or
    the first of -1..-7 whose scale fits the head's threshold in 17 bits (a head of small
    weights, e.g. theta0's uniform head early in training, has a scale that would not).
    head_range: the float |weight| the head's grid edge (mantissa 254) stands for; None: the
    head's max |w|. SOEL learns the head on chip inside [-256, 255] mantissas, so a head whose
    learnt weights outgrow theta0's range needs a larger one (studies/deployment_gap.py measures it)."""
    if len(specs) < 2:
        raise UserError(f"a deployable network needs frozen layers and a head, got "
                        f"{len(specs)} layer(s)")
    for key, val in params.items():
        a = _np(val)
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            at = [int(i) for i in np.argwhere(~np.isfinite(a))[0]]
            raise UserError(f"parameter {key} holds {a[~np.isfinite(a)].ravel()[0]} at {at}; "
                            "a network with NaN/inf parameters cannot be quantised")
    ranges = [None] * (len(specs) - 1) + [head_range]
    tries = range(0, -8, -1) if head_weight_exp is None else [int(head_weight_exp)]
    for k, exp in enumerate(tries):
        exps = [0] * (len(specs) - 1) + [exp]
        try:
            net, scales = float_to_fixed(specs, params, neurons, weight_exps=exps, ranges=ranges)
            break
        except UserError:
            if k == len(tries) - 1:
                raise
    out: Network = []
    errors: list[LayerError] = []
    for i, (layer, scale) in enumerate(zip(net, scales)):
        like = torch.zeros((), dtype=torch.float64)
        p = layer_neuron(i, neurons[i], params, like)
        bias_f = _np(p.bias)
        units = scale * 2.0 ** layer.weight_exp
        nrn = layer.neuron
        if i < len(net) - 1:           # frozen: on netx's bias exponent
            mant, bexp = netx_bias(i, bias_f, units, layer.n_out)
            nrn = L.LifFixed(du=nrn.du, dv=nrn.dv, vth=nrn.vth, bias_mant=mant, bias_exp=bexp)
            layer = FixedLayer(layer.spec, layer.weight, nrn, weight_exp=0)
        out.append(layer)
        errors.append(layer_error(layer, scale, _np(params[weight_key(i)]), bias_f,
                                  float(_np(p.vth).ravel()[0]), float(_np(p.du).ravel()[0]),
                                  float(_np(p.dv).ravel()[0]), head=i == len(net) - 1))
    return Quantized(out, list(scales), errors)


def layer_error(layer: FixedLayer, scale: float, w: np.ndarray, bias_f: np.ndarray,
                vth_f: float, du_f: float, dv_f: float, head: bool = False) -> LayerError:
    """How far the deployed layer is from its float parameters (vth_f <= 0: not compared)."""
    nrn = layer.neuron
    units = scale * 2.0 ** layer.weight_exp
    w_q = layer.weight / scale
    b_q = nrn.effective_bias / (units * 2 ** L.ACT_SHIFT)
    b_ref = np.broadcast_to(bias_f, b_q.shape)
    return LayerError(
        kind="head" if head else ("conv" if isinstance(layer.spec, ConvSpec) else "dense"),
        shape=tuple(layer.spec.weight_shape), scale=float(scale),
        weight_exp=int(layer.weight_exp),
        w_rel_rms=rel_rms(w_q - w, w), w_max_abs=float(np.abs(w_q - w).max(initial=0)),
        w_zero_frac=float(np.mean(layer.weight == 0)),
        vth_rel=abs(nrn.vth / units - vth_f) / vth_f if vth_f > 0 else 0.0,
        bias_rel_rms=rel_rms(b_q - b_ref, b_ref),
        du=(du_f, L.du_to_float(nrn.du)), dv=(dv_f, L.dv_to_float(nrn.dv)))


def error_table(errors: list[LayerError]) -> str:
    head = (f"{'layer':>5} {'kind':<5} {'weight shape':<18} {'scale':>8} {'exp':>3} "
            f"{'w relRMS':>9} {'w max':>9} {'w=0':>6} {'vth rel':>8} {'b relRMS':>8} "
            f"{'du f->q':>13} {'dv f->q':>13}")
    rows = [head]
    for i, e in enumerate(errors):
        rows.append(f"{i:>5} {e.kind:<5} {'x'.join(map(str, e.shape)):<18} {e.scale:>8.3g} "
                    f"{e.weight_exp:>3} {e.w_rel_rms:>9.2e} {e.w_max_abs:>9.2e} "
                    f"{e.w_zero_frac:>6.1%} {e.vth_rel:>8.1e} {e.bias_rel_rms:>8.1e} "
                    f"{e.du[0]:>6.4f}>{e.du[1]:<6.4f} {e.dv[0]:>6.4f}>{e.dv[1]:<6.4f}")
    return "\n".join(rows)
