"""Run a ``sim.network.SpikingNet`` bit-exactly, layer by layer over all time steps.

Each layer's synaptic sums for every step come at once from BLAS / torch convolutions (exact:
the integer bound of every sum is checked against the float format used), are shifted, wrapped
and placed at the step they reach the neurons (one step of delay, plus the DelayDense delays);
then one numba scan runs the LIF population over time (with its reset schedule and, for a
recurrent layer, its own spikes fed back), or the sigma-delta one (sim/sdnn.py). Semantics:
sim/network.py's docstring.

A plain layer (``plain``: binary spikes into a CUBA population without reset, delays or
recurrence, its sums exact in int32, a conv's below 2^24) takes the fused event-driven kernel
our own networks use instead (sim/kernels.py's scan: synaptic sums, delay, wrap and LIF in one
pass, work per input spike), consecutive fused convs passing spikes in (H, W, C) order; an
input population's image held over the steps is one bias, not one per step. A plain conv whose
input is so active that visiting every spike costs more than a float32 convolution
(``dense_wins``: PilotNet's first layers) takes that convolution per sample instead, then the
same LIF update (kernels.sums_scan); the choice changes the speed, never a bit of the result.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim import sdnn
from metaloihi.sim.arch import ConvSpec
from metaloihi.sim.fixed import wrap_signed
from metaloihi.sim.network import Cuba, NetLayer, SpikingNet
from metaloihi.sim.sdnn import SigmaDelta

_CHUNK = 1 << 24          # output elements per synaptic-sum chunk (bounds the float buffers)


def _float_for(bound: int) -> torch.dtype | None:
    """The float type whose integer sums are exact below `bound`, or None (use int64)."""
    return torch.float32 if bound < 2 ** 24 else torch.float64 if bound < 2 ** 53 else None


def _sums(spec, w: np.ndarray, s: np.ndarray, xmax: int) -> np.ndarray:
    """Exact integer sums [N, n_out] of inputs s [N, n_in] (torch flatten order) over w."""
    bound = spec.fan_in * int(np.abs(w).max(initial=0)) * max(xmax, 1)
    dt = _float_for(bound)
    n, out = s.shape[0], int(np.prod(spec.out_shape))
    res = np.empty((n, out), np.int64)
    step = max(1, _CHUNK // max(out, 1))
    if dt is None:
        if isinstance(spec, ConvSpec):
            raise UserError(f"conv sums up to {bound} exceed float64's exact range")
        for i in range(0, n, step):
            res[i:i + step] = s[i:i + step].astype(np.int64) @ w.T
        return res
    wt = torch.from_numpy(np.ascontiguousarray(w)).to(dt)
    for i in range(0, n, step):
        x = torch.from_numpy(np.ascontiguousarray(s[i:i + step])).to(dt)
        if isinstance(spec, ConvSpec):
            y = F.conv2d(x.reshape(-1, *spec.in_shape), wt, stride=spec.stride,
                         padding=spec.padding, dilation=spec.dilation, groups=spec.groups)
        else:
            y = x @ wt.T
        res[i:i + step] = y.reshape(y.shape[0], -1).to(torch.float64).numpy().astype(np.int64)
    return res


def _shift(a: np.ndarray, exp: int) -> np.ndarray:
    return a << exp if exp > 0 else a >> (-exp)


def arrivals(layer: NetLayer, s: np.ndarray, graded: bool) -> np.ndarray:
    """What the layer's (feed-forward) synapse delivers to its neurons at each step:
    s [B, T, n_in] (spikes, or graded values) -> int64 [B, T, n_out]."""
    spec = layer.spec
    b, t, n_in = s.shape
    flat = s.reshape(b * t, n_in)
    xmax = int(np.abs(flat).max(initial=0)) if graded else 1
    out = np.zeros((b, t, layer.n_out), np.int64)
    if t < 2:
        return out                         # everything computed arrives after the last step
    if isinstance(spec, ConvSpec):
        acc = _sums(spec, layer.weight, flat, xmax)
        if graded and np.abs(acc).max(initial=0) >= 2 ** 31:
            raise UserError(f"{layer.name}: graded conv sums reach 2^31, where Lava's int32 cast "
                            "is undefined")
        out[:, 1:] = wrap_signed(acc, L.CONV_ACC_BITS).reshape(b, t, -1)[:, :-1]
        return out
    w = layer.weight
    if layer.delay is None:
        acc = _sums(spec, w, flat, xmax)
        if graded:                         # np.dot of int32 arrays wraps before the shift
            acc = wrap_signed(acc, L.CHANNEL_BITS)
        acc = wrap_signed(_shift(acc, layer.weight_exp), L.CHANNEL_BITS)
        out[:, 1:] = acc.reshape(b, t, -1)[:, :-1]
        return out
    wmax = int(np.abs(w).max(initial=0))
    if graded and wmax * xmax >= 2 ** 31:
        raise UserError(f"{layer.name}: graded inputs up to {xmax} times weights up to {wmax} "
                        "overflow DelayDense's int32 products, which sim/ does not reproduce")
    for d in np.unique(layer.delay):       # DelayDense: one shifted sum per delay value
        d = int(d)
        if d + 1 >= t:
            continue
        acc = _sums(spec, np.where(layer.delay == d, w, 0), flat, xmax)
        acc = _shift(acc, layer.weight_exp).reshape(b, t, -1)
        out[:, 1 + d:] += acc[:, : t - 1 - d]
    return wrap_signed(out, L.CHANNEL_BITS)


@nb.njit(cache=True)
def _wrap(x, bits):
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


@nb.njit(cache=True)
def _decay(x, factor):
    p = x * factor
    return p >> 12 if p >= 0 else -((-p) >> 12)


@nb.njit(parallel=True, cache=True)
def lif_scan(a, fu, fv, bias, vth_eff, interval, offset, w_rec, rec_shift, spikes, u_rec, v_rec,
             record):
    """CUBA LIF over time. a [Ba, Ta, n] arrivals and bias [Bb, Tb, n] (each broadcast over
    its size-1 axes); interval 0: no reset; w_rec [n, n] (rows: presynaptic) or [0, 0]: no
    recurrence."""
    nb_, nt, n = spikes.shape
    lim = np.int64(1) << 23
    rec = w_rec.shape[0] > 0
    for b in nb.prange(nb_):
        u = np.zeros(n, np.int64)
        v = np.zeros(n, np.int64)
        fb = np.zeros(n, np.int64)            # the recurrent synapse's buffer (one step)
        bb = np.int64(b) if bias.shape[0] > 1 else np.int64(0)
        ba = np.int64(b) if a.shape[0] > 1 else np.int64(0)
        for t in range(nt):
            if interval > 0 and (t + 1) % interval == offset % interval:
                u[:] = 0
                v[:] = 0
            tb = np.int64(t) if bias.shape[1] > 1 else np.int64(0)
            ta = np.int64(t) if a.shape[1] > 1 else np.int64(0)
            for i in range(n):
                ai = a[ba, ta, i]
                if rec:
                    ai = _wrap(ai + fb[i], 32)    # two int32 messages summed by the port
                d = _wrap(_decay(u[i], fu) + _wrap(ai << 6, 32), 32)
                if d > lim:
                    d -= 2 * lim
                elif d <= -lim:
                    d += 2 * lim
                u[i] = d
                vv = _wrap(_decay(v[i], fv) + d + bias[bb, tb, i], 32)
                vv = min(max(vv, -lim + 1), lim - 1)
                if vv > vth_eff:
                    spikes[b, t, i] = 1
                    vv = 0
                v[i] = vv
            if rec:
                fb[:] = 0
                for j in range(n):
                    if spikes[b, t, j]:
                        fb += w_rec[j]
                for i in range(n):
                    x = fb[i] << rec_shift if rec_shift > 0 else fb[i] >> (-rec_shift)
                    fb[i] = _wrap(x, 32)
            if record:
                u_rec[b, t] = u
                v_rec[b, t] = v


def population(nrn: Cuba, a: np.ndarray, bias: np.ndarray, record_uv: bool,
               w_rec: np.ndarray | None = None, rec_exp: int = 0, batch_steps=None):
    """Run one population: arrivals a [B, T, n] (or [1, 1, n] with batch_steps = (B, T): the
    same every step), bias [1 or B, 1 or T, 1 or n]; w_rec the recurrent synapse's effective
    weights [post, pre]."""
    b, t = batch_steps or a.shape[:2]
    n = a.shape[2]
    bias = np.ascontiguousarray(np.broadcast_to(bias, (*bias.shape[:2], n)), dtype=np.int64)
    spikes = np.zeros((b, t, n), np.uint8)
    u = np.zeros((b, t, n) if record_uv else (1, 1, 1), np.int64)
    v = np.zeros_like(u)
    reset = nrn.reset
    # the kernel adds row j for a spike of neuron j: [pre, post]
    wr = np.zeros((0, 0), np.int64) if w_rec is None else np.ascontiguousarray(w_rec.T)
    lif_scan(np.ascontiguousarray(a), nrn.u_factor, nrn.v_factor, bias, nrn.effective_vth,
             reset.interval if reset else 0, reset.offset if reset else 0, wr, rec_exp,
             spikes, u, v, record_uv)
    return spikes.view(bool), u, v


def _check_input(net: SpikingNet, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 3 or tuple(x.shape[2:]) != net.input_shape:
        raise UserError(f"input shape {tuple(x.shape)} must be [batch, steps, "
                        f"{', '.join(map(str, net.input_shape))}]")
    if x.dtype != bool and not np.issubdtype(x.dtype, np.integer):
        if not np.all(x == np.round(x)):
            raise UserError("input values must be integers (spikes, graded values or bias "
                            "mantissas)")
    return x.reshape(*x.shape[:2], -1)


def run(net: SpikingNet, x, record_uv: bool = False) -> dict[str, list]:
    """x [B, T, *input_shape]: spikes (nonzero = spike), graded values (net.graded_input), or
    the input population's bias mantissa per step (net.input_neuron; a sigma-delta input
    population takes the values at its a_in). Returns per population (input population first, if
    any) "spikes" bool [B, T, n] and, with record_uv, "u" and "v" int64 [B, T, n] after the
    step's update and reset, torch flatten order. A sigma-delta population records its graded
    messages (int64) as "spikes", sigma (a Delta: act) as "u" and residue as "v" (sim.sdnn).
    "paths": per layer, the path that ran it: "dense" (a float32 convolution, then the LIF
    scan), "fused" (the event-driven kernel) or "general" (sums, then the population's scan)."""
    x = _check_input(net, x)
    rec: dict[str, list] = {"spikes": [], "u": [], "v": [], "paths": []}

    def keep(s, u, v):
        rec["spikes"].append(s)
        if record_uv:
            rec["u"].append(u)
            rec["v"].append(v)

    graded = net.graded_input
    if isinstance(net.input_neuron, SigmaDelta):        # a Delta: the input is its a_in
        s, u, v = sdnn.population(net.input_neuron, x.astype(np.int64), record_uv)
        keep(s, u, v)
        graded = net.input_neuron.graded_out
    elif net.input_neuron is not None:
        b, t, n = x.shape
        held = t > 1 and np.array_equal(x[:, 1:], x[:, :-1])    # an image held: one bias
        mant = (x[:, :1] if held else x).astype(np.int64)
        if mant.size and (mant.min() < L.BIAS_MANT_MIN or mant.max() > L.BIAS_MANT_MAX):
            raise UserError(f"input bias mantissas must lie in [{L.BIAS_MANT_MIN}, "
                            f"{L.BIAS_MANT_MAX}] (13-bit), got {mant.min()}..{mant.max()}")
        s, u, v = population(net.input_neuron, np.zeros((1, 1, n), np.int64),
                             wrap_signed(mant << net.input_bias_exp, 32), record_uv,
                             batch_steps=(b, t))
        keep(s, u, v)
        graded = False
    else:
        s = x if graded else (x != 0)
    native = None                        # a fused conv's spikes in (H, W, C) order, its shape
    for layer in net.layers:
        if not graded and plain(layer):  # binary spikes into a plain CUBA layer: fused kernel
            dense = dense_wins(layer, _density(s, native))   # or, for an active conv, dense
            s, native, u, v = (_dense_conv if dense else _fused)(layer, s, native, record_uv)
            rec["paths"].append("dense" if dense else "fused")
            keep(s, u, v)
            continue
        rec["paths"].append("general")
        native = None
        a = arrivals(layer, s.astype(np.int64) if graded else (s != 0).view(np.uint8), graded)
        if isinstance(layer.neuron, SigmaDelta):
            s, u, v = sdnn.population(layer.neuron, a, record_uv)
            keep(s, u, v)
            graded = layer.neuron.graded_out
            continue
        w_rec = layer.weight_rec
        bias = np.asarray(layer.neuron.bias, np.int64).reshape(1, 1, -1)
        s, u, v = population(layer.neuron, a, bias, record_uv, w_rec, layer.weight_exp)
        keep(s, u, v)
        graded = False
    return rec


def plain(layer: NetLayer) -> bool:
    """A layer that sim.kernels' fused event-driven scan runs exactly, given binary spikes: a
    CUBA population without reset, no delays, no recurrence, int16 weights and int32 sums, and
    for a conv, sums below 2^24 (where Lava's float32 convolution is exact)."""
    from metaloihi.sim.kernels import fits
    nrn, spec = layer.neuron, layer.spec
    if not (isinstance(nrn, Cuba) and nrn.reset is None and layer.delay is None
            and layer.weight_rec is None and fits(spec, layer.weight, nrn.bias)):
        return False
    return not isinstance(spec, ConvSpec) or \
        spec.fan_in * int(np.abs(layer.weight).max(initial=0)) < 2 ** 24


def _fused(layer: NetLayer, s: np.ndarray, native, record_uv: bool):
    """One plain layer through sim.kernels.scan: binary s [B, T, n_in] (torch order), or the
    previous fused conv's spikes `native` = (uint8 in (H, W, C) order, its (C, H, W) shape).
    Returns spikes (bool, torch order), the native pair for the next layer, u, v."""
    from metaloihi.sim.kernels import hwc_to_chw, scan
    spec, nrn = layer.spec, layer.neuron
    conv = isinstance(spec, ConvSpec)
    if native is None:
        s = s if s.dtype == bool else s != 0
        native = (np.ascontiguousarray(s).view(np.uint8).reshape(*s.shape[:2], -1), None)
    shift, bits = (0, L.CONV_ACC_BITS) if conv else (layer.weight_exp, L.CHANNEL_BITS)
    out, u, v = scan(spec, layer.weight, shift, bits, nrn.u_factor, nrn.v_factor, nrn.bias,
                     nrn.effective_vth, *native, record_uv)
    if not conv:
        return out.view(bool), None, u, v
    shape = tuple(spec.out_shape)
    if record_uv:
        u, v = hwc_to_chw(u, shape), hwc_to_chw(v, shape)
    return hwc_to_chw(out, shape).view(bool), (out, shape), u, v


# One thread on the 2-core development machine, PilotNet's conv layers (2026-12-05): the fused
# kernel added 4-16 G synaptic events/s (slowest on the big first layers), torch's float32
# convolution 8-41 G multiply-adds/s, plus the sums' pass into the scan per output and step.
# Either path is exact; a wrong guess near the break-even costs little.
EVENT_RATE, MAC_RATE, ELEM_S = 12e9, 30e9, 2e-9


def _density(s: np.ndarray, native) -> float:
    """The fraction of inputs spiking, over the batch and steps."""
    a = native[0] if native is not None else s
    return float(np.count_nonzero(a)) / max(a.size, 1)


def dense_wins(layer: NetLayer, density: float) -> bool:
    """Is a plain conv cheaper as a dense float32 convolution than event by event, with this
    fraction of its inputs spiking? Events ~ density x synapses (up to the borders)."""
    spec = layer.spec
    if not isinstance(spec, ConvSpec):
        return False
    synapses = layer.n_out * (spec.in_shape[0] // spec.groups) * int(np.prod(spec.kernel))
    return density * synapses / EVENT_RATE > synapses / MAC_RATE + layer.n_out * ELEM_S


def _dense_conv(layer: NetLayer, s: np.ndarray, native, record_uv: bool):
    """One plain conv as a float32 convolution (exact: plain() bounds its sums below 2^24) per
    sample and chunk of steps, the sums fed to kernels.sums_scan. s, native as _fused takes
    them; returns spikes (bool, torch order), None (no native order), u, v."""
    from metaloihi.sim.kernels import hwc_to_chw, sums_scan
    spec, nrn = layer.spec, layer.neuron
    if native is not None:
        s = hwc_to_chw(native[0], native[1])
    u8 = np.ascontiguousarray(s).view(np.uint8) if s.dtype == bool else (s != 0).view(np.uint8)
    b, t = u8.shape[:2]
    n = layer.n_out
    wt = torch.from_numpy(np.asarray(layer.weight, np.float32))
    bias = np.broadcast_to(np.asarray(nrn.bias, np.int64), (n,)).astype(np.int32)
    spikes = np.zeros((b, t, n), np.uint8)
    u = np.zeros((b, t, n) if record_uv else (1, 1, 1), np.int64)
    v = np.zeros_like(u)
    chunk = max(1, _CHUNK // max(n, 1))
    for i in range(b):
        state = (np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int32))
        for t0 in range(0, t, chunk):
            x = torch.from_numpy(u8[i, t0:t0 + chunk]).to(torch.float32)
            y = F.conv2d(x.reshape(-1, *spec.in_shape), wt, stride=spec.stride,
                         padding=spec.padding, dilation=spec.dilation, groups=spec.groups)
            sl = slice(t0, t0 + chunk)
            sums_scan(y.reshape(y.shape[0], n).numpy(), L.CONV_ACC_BITS, nrn.u_factor,
                      nrn.v_factor, bias, nrn.effective_vth, *state, spikes[i, sl],
                      u[i, sl] if record_uv else u[0], v[i, sl] if record_uv else v[0],
                      record_uv)
    return spikes.view(bool), None, u, v
