"""Read a lava-dl netx file (.net / .h5) into sim/'s network description (sim.network), with
the numbers lava-dl 0.6's ``netx.hdf5.Network`` hands to Lava's CPU models (read from its
source, lava/lib/dl/netx/hdf5.py, blocks/process.py, utils.py):

- every `weight`, `weight_rec` and `bias` is read as ``astype(int)`` (truncation toward zero);
- Dense weights go through netx's optimize_weight_bits (a shift, weight_exp and num_weight_bits)
  and then Lava's Dense clip and truncation by sign mode (lava/utils/weightutils.py);
- CUBA / LOIHI neurons: du = iDecay - 1, dv = vDecay, vth = vThMant, bias exponent 6;
  refDelay and gradedSpike are not read by netx (no refractory period in its LIF); a dense layer
  without a neuron group gets netx's default (iDecay 0, vDecay 4096, vThMant 2^17: it never
  fires);
- an input layer with a neuron is a LIF population whose input is its bias (netx leaves its
  input port unconnected); without one, the input is spikes (or graded values) into layer 1;
- Conv: stride, padding, dilation, groups; bias per channel or per neuron; Conv's `delay` is
  not read by netx, Dense's is: clamped to 0..62 when above 62, per output, per input or per
  synapse;
- reset_interval / reset_offset (netx constructor arguments) make every neuron a LIFReset whose
  offset grows by one per layer, starting at reset_offset + 1;
- SDNN neurons (get_neuron_params): an input layer's is a Delta (fed at its a_in, as lava-dl's
  own tests feed it: netx leaves the Input block's port unconnected), one with `sigma_output` a
  Sigma, any other a SigmaDelta (act_mode ReLU whatever `activation` says: netx does not read
  it); vth = vThMant and bias (astype int32) times 2^(spike_exp 6 + state_exp 6), cum_error off,
  16 message bits, so the next synapse takes graded values; reset_interval ignored (netx warns).
Anything else is refused by one line naming the layer, before any work.
"""
from __future__ import annotations

from math import prod
from pathlib import Path

import h5py
import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim import sdnn
from metaloihi.sim.network import MAX_DELAY, Cuba, NetLayer, Reset, SpikingNet

SUPPORTED_LAYERS = ("input", "dense", "dense_rec", "conv", "flatten")
SUPPORTED_NEURONS = ("CUBA", "LOIHI", "SDNN")
SUPPORTED = ("layers input, dense, dense_rec, conv, flatten with CUBA/LOIHI/SDNN neurons")
NETX_BIAS_EXP = 6
NETX_SPIKE_EXP = NETX_STATE_EXP = 6    # netx's SDNN: spike_exp (its default) and state_exp
# netx's neuron for a dense layer without one (hdf5.py, create_dense): a non-leaky integrator
DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}


def _text(ds) -> str:
    v = ds[()]
    if isinstance(v, np.ndarray):
        v = v.reshape(-1)[0]
    return v.decode("ascii") if isinstance(v, bytes) else str(v)


class _File:
    """Errors name the file and the layer."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, i, kind, why: str):
        where = f"layer {i} ({kind})" if i is not None else "file"
        raise UserError(f"{self.path}: {where}: {why}")


def _scan(f: h5py.File, src: _File) -> list[tuple[int, str, h5py.Group]]:
    """Every layer's (index, type, group), checked for support before anything is built."""
    if "layer" not in f or not isinstance(f["layer"], h5py.Group):
        src.fail(None, None, "not a netx network (no 'layer' group)")
    layers = f["layer"]
    if sorted(layers.keys(), key=lambda k: (len(k), k)) != [str(i) for i in range(len(layers))]:
        src.fail(None, None, f"layer names {sorted(layers.keys())} are not 0..{len(layers) - 1}")
    if not len(layers):
        src.fail(None, None, "no layers")
    out = []
    for i in range(len(layers)):
        g = layers[str(i)]
        if "type" not in g:
            src.fail(i, "?", "no 'type'")
        kind = _text(g["type"])
        if kind not in SUPPORTED_LAYERS:
            src.fail(i, kind, f"not supported; supported: {SUPPORTED}")
        if "neuron" in g:
            ntype = _text(g["neuron/type"]) if "type" in g["neuron"] else "?"
            if ntype not in SUPPORTED_NEURONS:
                src.fail(i, kind, f"neuron type {ntype!r} not supported; supported: {SUPPORTED}")
            if ntype == "SDNN" and "messageBits" in g["neuron"]:
                src.fail(i, kind, "SDNN 'messageBits' not supported: netx's NetDict hands it on "
                         "as a group, not a number, and the network fails to build")
            if ntype == "SDNN" and kind == "dense_rec":
                src.fail(i, kind, f"recurrent SDNN layers not supported; supported: {SUPPORTED}")
        if "weight" in g and not isinstance(g["weight"], h5py.Dataset):
            src.fail(i, kind, "complex weights (weight/real, weight/imag) not supported; "
                     f"supported: {SUPPORTED}")
        out.append((i, kind, g))
    return out


def _ints(g, key: str, src: _File, i, kind) -> np.ndarray:
    if key not in g:
        src.fail(i, kind, f"no '{key}' (netx needs it)")
    a = np.asarray(g[key][()])
    if a.dtype.kind not in "iubf" or (a.dtype.kind == "f" and not np.all(np.isfinite(a))):
        src.fail(i, kind, f"'{key}' is not a finite number array")
    return a.astype(np.int64)            # netx: astype(int), truncation toward zero


def _pair(g, key: str, src, i, kind) -> tuple[int, int]:
    a = _ints(g, key, src, i, kind).reshape(-1)
    if a.size == 1:
        return (int(a[0]), int(a[0]))
    if a.size != 2:
        src.fail(i, kind, f"'{key}' must be one or two numbers, got {a.tolist()}")
    return (int(a[0]), int(a[1]))


def _neuron(g, src, i, kind, n: int, shape, reset: Reset | None, bias=None) -> Cuba:
    """The LIF netx builds: CUBA/LOIHI integers, bias (mantissa << 6) in torch flatten order."""
    if "neuron" in g:
        cfg = {k: g["neuron"][k][()] for k in ("iDecay", "vDecay", "vThMant") if k in g["neuron"]}
        if len(cfg) < 3:
            src.fail(i, kind, "neuron lacks iDecay, vDecay or vThMant (netx needs them)")
    elif kind in ("dense", "dense_rec"):
        cfg = DEFAULT_NEURON
    else:
        src.fail(i, kind, "no neuron group (netx needs one)")
    vals = {}
    for k in ("iDecay", "vDecay", "vThMant"):
        a = np.asarray(cfg[k])
        if a.size != 1:
            src.fail(i, kind, f"per-neuron {k} (shared_param=False) not supported: Lava's LIF "
                     "takes one value per population")
        vals[k] = int(a.reshape(-1)[0])
    mant = np.zeros(n, np.int64)
    if bias is not None:
        mant = _bias(bias, shape, src, i, kind)
    return Cuba(du=vals["iDecay"] - 1, dv=vals["vDecay"], vth=vals["vThMant"],
                bias=mant << NETX_BIAS_EXP, reset=reset)


def _is_sdnn(g) -> bool:
    return "neuron" in g and "type" in g["neuron"] and _text(g["neuron/type"]) == "SDNN"


def _sdnn(g, src, i, kind, n: int, shape, bias=None, is_input: bool = False) -> sdnn.SigmaDelta:
    """netx's SDNN neuron (hdf5.py get_neuron_params; lava/proc/sdn/process.py): Delta for the
    input layer, Sigma with `sigma_output`, SigmaDelta otherwise; vth and bias times 2^12."""
    scale = 1 << (NETX_SPIKE_EXP + NETX_STATE_EXP)
    nrn = g["neuron"]
    if is_input:
        kind_sd = sdnn.DELTA
    elif "sigma_output" in nrn:
        kind_sd = sdnn.SIGMA
    else:
        kind_sd = sdnn.SIGMA_DELTA
    if kind_sd == sdnn.SIGMA:
        if bias is not None:
            src.fail(i, kind, "bias on a sigma_output layer: netx's Sigma takes no bias and the "
                     "network fails to build")
        return sdnn.SigmaDelta(kind=sdnn.SIGMA, spike_exp=NETX_SPIKE_EXP,
                               state_exp=NETX_STATE_EXP)
    if "vThMant" not in nrn:
        src.fail(i, kind, "SDNN neuron lacks vThMant (netx needs it)")
    v = np.asarray(nrn["vThMant"][()])
    if v.size != 1 or v.dtype.kind not in "iubf" or not np.isfinite(v.reshape(-1)[0]):
        src.fail(i, kind, "vThMant must be one finite number (Lava's sigma-delta vth is one value)")
    v = v.reshape(-1)[0]
    # Lava's Var holds vThMant * 2^12 as int32: a float truncates toward zero there
    vth = int(v) * scale if v.dtype.kind in "iu" else int(np.trunc(float(v) * scale))
    if not sdnn.INT32_MIN <= vth <= sdnn.INT32_MAX:
        src.fail(i, kind, f"vThMant {v} times 2^12 does not fit Lava's int32 threshold")
    eff = np.zeros(1, np.int64)
    if bias is not None:
        lim = 1 << (31 - NETX_SPIKE_EXP - NETX_STATE_EXP)
        eff = _bias(bias, shape, src, i, kind, (-lim, lim - 1)) * scale
    return sdnn.SigmaDelta(kind=kind_sd, vth=vth, bias=eff, spike_exp=NETX_SPIKE_EXP,
                           state_exp=NETX_STATE_EXP)


def _bias(b: np.ndarray, shape: tuple, src, i, kind, limits=None) -> np.ndarray:
    """netx's broadcast (blocks/process.py, _neuron) into torch flatten order; limits: the
    allowed range, default the LIF's 13-bit mantissa."""
    n = prod(shape)
    if len(shape) == 1:
        if b.size not in (1, n):
            src.fail(i, kind, f"{b.size} biases for {n} neurons")
        out = np.broadcast_to(b.reshape(-1), (n,))
    elif list(b.shape) == list(shape[::-1]):           # per neuron, Lava's (W, H, C)
        out = b.transpose(2, 1, 0).reshape(-1)
    elif b.ndim >= 1 and b.shape[0] == shape[0]:       # per channel
        out = np.repeat(b.reshape(-1)[: shape[0]], n // shape[0])
    else:
        src.fail(i, kind, f"bias of shape {b.shape} does not broadcast to {shape} (netx refuses)")
    lo, hi = limits or (L.BIAS_MANT_MIN, L.BIAS_MANT_MAX)
    if out.min(initial=0) < lo or out.max(initial=0) > hi:
        what = "beyond 13 bits" if limits is None else f"outside [{lo}, {hi}] (SDNN: bias * 2^12 " \
            "must fit Lava's int32)"
        src.fail(i, kind, f"bias mantissa {what} ({out.min()}..{out.max()}) not supported")
    return np.ascontiguousarray(out, np.int64)


def netx_weight_bits(w: np.ndarray, src, i, kind) -> tuple[np.ndarray, int, int]:
    """netx's optimize_weight_bits (netx/utils.py): (shifted weights, num_weight_bits,
    weight_exp). Mixed-sign matrices beyond [-256, 254] are clipped, as netx does."""
    w = np.asarray(w, np.int64)
    if w.max() > 254 and w.min() < 0 or w.min() < -256 and w.max() > 0:
        w = np.clip(w, -256, 254)
    hi, lo = int(w.max()), int(w.min())
    if hi == 0 and lo == 0:
        src.fail(i, kind, "all weights are zero: netx's optimize_weight_bits takes log2(inf) "
                 "and fails")
    signed = int(hi >= 0 and lo < 0)
    if signed:
        scale = min(127 / hi if hi > 0 else np.inf, -128 / lo)
    else:
        scale = -256 / lo if hi < 0 else 255 / hi
    scale_bits = int(np.floor(np.log2(scale))) + signed
    if scale_bits < 0:
        src.fail(i, kind, f"weights {lo}..{hi} exceed 8 bits; netx cannot shift them into range")
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    return w << scale_bits, 8 - scale_bits - n, -scale_bits


def lava_dense_weights(w: np.ndarray, num_weight_bits: int, src, i, kind) -> np.ndarray:
    """What Lava's Dense multiplies: clip to 8 bits and drop 8 - num_weight_bits low bits (one
    more in mixed sign mode), the sign mode being the weights' own (lava/utils/weightutils.py)."""
    inhib = w.max() <= 0 and w.min() < 0
    mixed = int(w.max() > 0 and w.min() < 0)
    drop = L.WEIGHT_BITS - int(num_weight_bits) + mixed
    if not 0 <= drop <= L.WEIGHT_BITS:
        src.fail(i, kind, f"num_weight_bits {num_weight_bits} not supported")
    a = -w if inhib else w
    a = np.clip(a, -(1 << 8) * mixed, (1 << 8) - 1)
    a = (a >> drop) << drop
    return -a if inhib else a


def _delay(g, w_shape, src, i, kind) -> np.ndarray | None:
    if "delay" not in g:
        return None
    d = np.asarray(g["delay"][()], np.float64)
    if not np.all(np.isfinite(d)):
        src.fail(i, kind, "delays are not finite")
    if d.size and d.max() > MAX_DELAY:                  # netx clamps (with a warning)
        d = np.clip(d, 0, MAX_DELAY)
    if d.size and d.min() < 0:
        src.fail(i, kind, "negative delays not supported (Lava's DelayDense drops them)")
    out, inn = w_shape
    if d.ndim == 0:
        d = np.full(w_shape, d)
    elif d.ndim == 1 and d.size == out:                 # netx checks per output first
        d = np.repeat(d.reshape(-1, 1), inn, axis=1)
    elif d.ndim == 1 and d.size == inn:
        d = np.repeat(d.reshape(1, -1), out, axis=0)
    elif d.shape != tuple(w_shape):
        src.fail(i, kind, f"delay of shape {d.shape} does not fit weights {w_shape} (netx "
                 "refuses)")
    return d.astype(np.int64)


def read_netx(path: str | Path, reset_interval: int | None = None, reset_offset: int = 0,
              input_message_bits: int = 0) -> SpikingNet:
    """The network netx.hdf5.Network(path, reset_interval=..., reset_offset=...,
    input_message_bits=...) builds, as sim.network.SpikingNet. One-line UserError for anything
    not supported or that netx refuses."""
    path = Path(path)
    src = _File(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path}: not an HDF5 file ({err})") from None
    with f:
        entries = _scan(f, src)
        return _build(entries, src, path, reset_interval, reset_offset, input_message_bits)


def _build(entries, src, path, reset_interval, reset_offset, input_message_bits) -> SpikingNet:
    if reset_interval is not None and (reset_interval < 1 or reset_offset < 0):
        raise UserError(f"reset_interval {reset_interval} must be >= 1, reset_offset >= 0")
    offset = reset_offset + 1                  # netx: time starts from 1 in hardware
    def reset():
        return None if reset_interval is None else Reset(reset_interval, offset)
    input_shape, input_neuron, layers = None, None, []
    shape = None                               # what the next layer receives (torch order)
    pop = False                                # is that a population (netx connects its port)?
    flatten_next = False
    for i, kind, g in entries:
        if kind == "input":
            if i != 0 or layers or input_shape is not None:
                src.fail(i, kind, "an input layer must come first")
            if "shape" in g:
                input_shape = tuple(int(s) for s in _ints(g, "shape", src, i, kind).reshape(-1))
            if "neuron" in g:
                if input_shape is None:
                    src.fail(i, kind, "input neuron without a shape")
                for key in ("weight", "bias"):          # netx: int(...), then never applied
                    if key in g and np.asarray(g[key][()]).size != 1:
                        src.fail(i, kind, f"an input '{key}' of more than one value: netx's "
                                 "int() of it fails")
                if _is_sdnn(g):
                    input_neuron = _sdnn(g, src, i, kind, prod(input_shape), input_shape,
                                         is_input=True)
                else:
                    input_neuron = _neuron(g, src, i, kind, prod(input_shape), input_shape,
                                           reset())
                offset += 1
                pop = True
            shape = input_shape
            continue
        if kind == "flatten":
            flatten_next = True
            continue
        name = f"layer {i} ({kind})"
        if kind == "conv":
            if shape is None or len(shape) != 3:
                src.fail(i, kind, f"needs a (C, H, W) input before it, got {shape} (netx "
                         "cannot infer its input shape)")
            w = _ints(g, "weight", src, i, kind)
            w = w.reshape(w.shape[:4])
            spec = ConvSpec(in_shape=shape, out_channels=w.shape[0], kernel=tuple(w.shape[2:4]),
                            stride=_pair(g, "stride", src, i, kind),
                            padding=_pair(g, "padding", src, i, kind),
                            dilation=_pair(g, "dilation", src, i, kind),
                            groups=int(_ints(g, "groups", src, i, kind).reshape(-1)[0]))
            if tuple(w.shape) != spec.weight_shape:
                src.fail(i, kind, f"weight shape {w.shape} does not fit input {shape} and groups")
            out = tuple(int(s) for s in _ints(g, "shape", src, i, kind).reshape(-1))
            if out != tuple(spec.out_shape):
                src.fail(i, kind, f"shape {out} but the convolution gives {spec.out_shape} "
                         "(netx refuses)")
            bias = _ints(g, "bias", src, i, kind) if "bias" in g else None
            nrn = (_sdnn(g, src, i, kind, prod(out), out, bias) if _is_sdnn(g) else
                   _neuron(g, src, i, kind, prod(out), out, reset(), bias))
            layers.append(NetLayer(spec, w, nrn, name=name))
        else:                                   # dense, dense_rec
            n = prod(int(s) for s in _ints(g, "shape", src, i, kind).reshape(-1))
            w = _ints(g, "weight", src, i, kind)
            w = w.reshape(n, -1) if w.ndim == 1 else w
            if w.ndim != 2 or w.shape[0] != n:
                src.fail(i, kind, f"weight shape {w.shape} does not fit {n} neurons")
            if pop and len(shape) == 3 and not flatten_next:
                src.fail(i, kind, f"follows a {shape} population without a flatten layer "
                         "(netx cannot connect it)")
            if shape is not None and prod(shape) != w.shape[1]:
                src.fail(i, kind, f"takes {w.shape[1]} inputs but gets {prod(shape)}")
            rec = None
            if kind == "dense_rec":
                r = _ints(g, "weight_rec", src, i, kind)
                r = r.reshape(n, -1) if r.ndim == 1 else r
                if r.shape != (n, n):
                    src.fail(i, kind, f"weight_rec shape {r.shape}, expected {(n, n)}")
                if "delay" in g:
                    src.fail(i, kind, f"delays on a recurrent layer not supported; supported: "
                             f"{SUPPORTED}")
                both, bits, exp = netx_weight_bits(np.hstack([w, r]), src, i, kind)
                w, rec = both[:, : w.shape[1]], lava_dense_weights(both[:, w.shape[1]:], bits,
                                                                   src, i, kind)
            else:
                w, bits, exp = netx_weight_bits(w, src, i, kind)
            delay = _delay(g, w.shape, src, i, kind) if kind == "dense" else None
            bias = _ints(g, "bias", src, i, kind) if "bias" in g else None
            nrn = (_sdnn(g, src, i, kind, n, (n,), bias) if _is_sdnn(g) else
                   _neuron(g, src, i, kind, n, (n,), reset(), bias))
            spec = DenseSpec(w.shape[1], n)
            layers.append(NetLayer(spec, lava_dense_weights(w, bits, src, i, kind), nrn,
                                   weight_exp=exp, delay=delay, weight_rec=rec, name=name))
            if input_shape is None and len(layers) == 1:
                input_shape = (w.shape[1],)
            shape, pop = (n,), True
            flatten_next = False
            offset += 1
            continue
        shape, pop = tuple(spec.out_shape), True
        flatten_next = False
        offset += 1
    if input_shape is None:
        src.fail(None, None, "no input layer and no dense first layer: the input shape is unknown")
    if layers and input_neuron is None and isinstance(layers[0].spec, DenseSpec):
        input_shape = (layers[0].spec.in_features,)   # netx's inp is the dense's flat port
    return SpikingNet(input_shape, tuple(layers), input_neuron=input_neuron,
                      input_bias_exp=NETX_BIAS_EXP, graded_input=input_message_bits > 0,
                      source=str(path))
