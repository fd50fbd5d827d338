"""Fused numba kernels for the fast path of ``sim.fixed.run``: one layer over all T steps,
event-driven (work per input spike, not per synapse), with the connection's shift, wrap and
one-step delay and the LIF update folded in. Exact int64 arithmetic throughout.

They implement exactly ``fixed.synaptic_sum`` + ``fixed.lif_step`` (the reference, written with
torch and numpy and tested against Lava); tests hold the two paths equal. ``sums_scan`` is the
same LIF update fed by dense sums, for a conv whose input is so active that a float32
convolution costs less than visiting every spike (sim/network_run.py chooses). They exist because
the numpy step pays ~20 array passes per step and a dense conv pays for every silent synapse.
Neuron order inside: conv populations are (H, W, C), channels last, so that one input spike
adds one contiguous C_out-vector per kernel tap.
"""
from __future__ import annotations

import functools
import weakref

import numba as nb
import numpy as np

from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, SynapseSpec

_LIM = L.UV_LIMIT
_VMAX = L.UV_LIMIT - 1
_EMPTY2, _EMPTY3 = np.zeros((1, 1), np.int16), np.zeros((1, 1, 1), np.int16)


@nb.njit(inline="always")
def _wrap(x, bits):
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


@nb.njit(inline="always")
def _decay(x, factor):
    # x * factor / 4096 rounded toward zero, without a branch ((p + 4095) >> 12 is
    # -((-p) >> 12) for p < 0), so that the neuron loop vectorises
    p = x * factor
    return (p + ((p >> 63) & 4095)) >> 12


@nb.njit(inline="always")
def _add_rows(a, w, rows, k, col):
    # a[:] += sum over q < k of w[rows[q], col]: four rows per pass, then two, then one (their
    # int32 sum first: exact, a subset of the synapses' sum, which int32 holds), so `a` is
    # loaded and stored a quarter as often; w [N, C, n] int16 (dense: [N_in, 1, N_out])
    n = a.shape[0]
    q = 0
    while q + 3 < k:
        w0, w1 = w[rows[q], col], w[rows[q + 1], col]
        w2, w3 = w[rows[q + 2], col], w[rows[q + 3], col]
        for o in range(n):               # a row view + explicit loop: LLVM vectorises this
            a[o] += (np.int32(w0[o]) + np.int32(w1[o])) + (np.int32(w2[o]) + np.int32(w3[o]))
        q += 4
    if q + 1 < k:
        w0, w1 = w[rows[q], col], w[rows[q + 1], col]
        for o in range(n):
            a[o] += np.int32(w0[o]) + np.int32(w1[o])
        q += 2
    if q < k:
        w0 = w[rows[q], col]
        for o in range(n):
            a[o] += w0[o]


@nb.njit(inline="always")
def _accumulate_dense(row, w_t, acc, active):
    # w_t: [N_in, 1, N_out]; acc[:] = sum of rows of w_t over active inputs
    k = 0
    for j in range(row.shape[0]):        # the active inputs' indices, branch-free
        active[k] = j
        k += row[j] != 0
    acc[:] = 0
    _add_rows(acc, w_t, active, k, 0)


@functools.lru_cache(maxsize=64)
def conv_taps(in_hw, out_hw, kernel, stride, padding, dilation=(1, 1)):
    """For each input pixel, the (output pixel, kernel tap) pairs it reaches, as CSR arrays:
    precomputed once per geometry (cached; treat as read-only) so the per-spike loop does no
    index arithmetic. Output o reads input o * stride - padding + tap * dilation."""
    (h, w), (oh, ow), (kh, kw) = in_hw, out_hw, kernel
    ptr, outs, taps = [0], [], []
    for y in range(h):
        for x in range(w):
            for ky in range(kh):
                ny = y + padding[0] - ky * dilation[0]
                if ny < 0 or ny % stride[0] or ny // stride[0] >= oh:
                    continue
                for kx in range(kw):
                    nx = x + padding[1] - kx * dilation[1]
                    if nx < 0 or nx % stride[1] or nx // stride[1] >= ow:
                        continue
                    outs.append((ny // stride[0]) * ow + nx // stride[1])
                    taps.append(ky * kw + kx)
            ptr.append(len(outs))
    return np.array(ptr, np.int64), np.array(outs, np.int64), np.array(taps, np.int64)


@nb.njit(inline="always")
def _accumulate_conv(row, in_chw, w_k, tap_ptr, tap_out, tap_k, acc, active):
    # w_k: [C_in, kh*kw, C_out]; acc in (H, W, C) order; row in (H, W, C) or, for the
    # network input, torch's (C, H, W) order (saves transposing the input). Per input pixel,
    # its active channels reach the same (output pixel, tap) pairs: their rows are summed
    # together into each output pixel's C_out-vector
    cin, cout = w_k.shape[0], w_k.shape[2]
    npix = row.shape[0] // cin
    acc[:] = 0
    acc2 = acc.reshape((acc.shape[0] // cout, cout))
    for p in range(npix):
        k = 0
        for c in range(cin):
            active[k] = c
            k += row[c * npix + p if in_chw else p * cin + c] != 0
        if k == 0:
            continue
        for e in range(tap_ptr[p], tap_ptr[p + 1]):
            _add_rows(acc2[tap_out[e]], w_k, active, k, tap_k[e])


@nb.njit(inline="always")
def _lif_update(a_prev, u, v, shift, wrap_bits, fu, fv, bias, vth_eff, s_out):
    # branch-free per neuron (selects, min/max) so that the loop vectorises
    up = shift if shift > 0 else 0
    down = -shift if shift < 0 else 0
    for i in range(u.shape[0]):
        a = _wrap((np.int64(a_prev[i]) << up) >> down, wrap_bits)
        d = _wrap(_decay(np.int64(u[i]), fu) + _wrap(a << 6, 32), 32)
        # Lava's 24-bit wrap: one correction, not a modulo
        d = d - 2 * _LIM if d > _LIM else (d + 2 * _LIM if d <= -_LIM else d)
        u[i] = d
        vv = _wrap(_decay(np.int64(v[i]), fv) + d + bias[i], 32)
        vv = min(max(vv, -_VMAX), _VMAX)
        fire = vv > vth_eff
        s_out[i] = fire
        v[i] = 0 if fire else vv


@nb.njit(parallel=True, cache=True)
def layer_scan(in_spikes, in_chw, is_conv, w_dense, w_conv, tap_ptr, tap_out, tap_k, shift,
               wrap_bits, fu, fv, bias, vth_eff, spikes, u_rec, v_rec, record):
    """in_spikes [B, T, N_in] uint8 -> spikes [B, T, N_out] uint8 (and u/v [B, T, N_out]);
    w_dense [N_in, N_out] (contiguous) or w_conv [C_in, taps, C_out], int16."""
    nbatch, nsteps, _ = in_spikes.shape
    n = spikes.shape[2]
    for b in nb.prange(nbatch):
        # u and v always fit int32 (u is int32-wrapped, v clipped to 24 bits): half the bytes
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        # the connection's buffer (one step of delay); int32 is exact: |sum| <= fan_in * 256
        a_prev = np.zeros(n, np.int32)
        a_new = np.zeros(n, np.int32)
        active = np.empty(in_spikes.shape[2], np.int64)       # scratch: active indices
        w3 = w_dense.reshape((w_dense.shape[0], 1, w_dense.shape[1]))
        for t in range(nsteps):
            if is_conv:
                _accumulate_conv(in_spikes[b, t], in_chw, w_conv, tap_ptr, tap_out, tap_k, a_new,
                                 active)
            else:
                _accumulate_dense(in_spikes[b, t], w3, a_new, active)
            _lif_update(a_prev, u, v, shift, wrap_bits, fu, fv, bias, vth_eff, spikes[b, t])
            if record:
                u_rec[b, t] = u
                v_rec[b, t] = v
            a_prev, a_new = a_new, a_prev


@nb.njit(cache=True)
def sums_scan(sums, wrap_bits, fu, fv, bias, vth_eff, u, v, a_prev, spikes, u_rec, v_rec,
              record):
    """One sample's LIF over steps from synaptic sums computed densely elsewhere (a float32
    convolution, exact below 2^24): sums [T, n] arrive one step later, wrapped to wrap_bits;
    bias [n] int32; u, v, a_prev [n] int32: the state, carried from the previous chunk of
    steps and updated; spikes [T, n] uint8 and, with record, u/v [T, n] out. The same
    ``_lif_update`` as ``layer_scan``: only where the sums come from differs."""
    nt, n = sums.shape
    for t in range(nt):
        _lif_update(a_prev, u, v, 0, wrap_bits, fu, fv, bias, vth_eff, spikes[t])
        if record:
            u_rec[t] = u
            v_rec[t] = v
        for i in range(n):
            a_prev[i] = np.int32(sums[t, i])


_MEMO: dict = {}


def _memo(arrays: tuple, key, make):
    """make() once per (arrays, key) while those array objects live (a network run again and
    again pays its weight layout once): keyed by identity, checked through weak references."""
    k = (tuple(id(a) for a in arrays), key)
    hit = _MEMO.get(k)
    if hit is not None and all(r() is a for r, a in zip(hit[0], arrays)):
        return hit[1]
    if len(_MEMO) > 512:
        _MEMO.clear()
    val = make()
    _MEMO[k] = (tuple(weakref.ref(a) for a in arrays), val)
    return val


def fits(spec: SynapseSpec, weight: np.ndarray, bias: np.ndarray) -> bool:
    """Can ``scan`` run this layer exactly: int16 weights, int32 sums and biases?"""
    def check():
        wmax = int(np.abs(weight).max(initial=0))
        return (wmax < 1 << 15 and spec.fan_in * wmax < 1 << 31
                and int(np.abs(bias).max(initial=0)) < 1 << 31)
    return _memo((weight, bias), ("fits", spec), check)


def _conv_weights(spec: ConvSpec, weight: np.ndarray) -> np.ndarray:
    """torch [C_out, C_in / groups, kh, kw] -> int16 [C_in, kh * kw, C_out], groups expanded
    to the full connection (zeros between groups: exact, they add nothing)."""
    w = np.asarray(weight)
    g = spec.groups
    if g > 1:
        oc, icg = w.shape[:2]
        ocg = oc // g
        full = np.zeros((oc, icg * g, *w.shape[2:]), w.dtype)
        for k in range(g):
            full[k * ocg:(k + 1) * ocg, k * icg:(k + 1) * icg] = w[k * ocg:(k + 1) * ocg]
        w = full
    c = w.shape[1]
    return np.ascontiguousarray(w.transpose(1, 2, 3, 0).reshape(c, -1, w.shape[0])).astype(
        np.int16)


def scan(spec: SynapseSpec, weight: np.ndarray, shift: int, bits: int, fu: int, fv: int,
         bias: np.ndarray, vth_eff: int, s: np.ndarray, in_hwc: tuple | None, record_uv: bool):
    """One layer with binary spikes in, over all steps: ``layer_scan`` set up. weight: the
    integers Lava multiplies (torch layout; Dense: after its clip and truncation); shift, bits:
    the connection's weight_exp and wrap; fu, fv: decay factors; bias int [n or 1] in torch
    order; s uint8 [B, T, n_in], in (H, W, C) order where in_hwc gives the (C, H, W) shape it
    came from (a conv layer's output), else torch order. Returns spikes uint8 and, with
    record_uv, u and v int64 [B, T, n] in the layer's own order: (H, W, C) for a conv."""
    b, t = s.shape[:2]
    n = int(np.prod(spec.out_shape))
    bias = np.asarray(bias)
    w_dense, w_conv, taps, bias_k = _memo((weight, bias), ("layout", spec, in_hwc),
                                          lambda: _layout(spec, weight, bias, in_hwc))
    spikes = np.zeros((b, t, n), np.uint8)
    u = np.zeros((b, t, n) if record_uv else (1, 1, 1), np.int64)
    v = np.zeros_like(u)
    layer_scan(s, in_hwc is None, isinstance(spec, ConvSpec), w_dense, w_conv, *taps, shift,
               bits, fu, fv, bias_k, vth_eff, spikes, u, v, record_uv)
    return spikes, u, v


def _layout(spec: SynapseSpec, weight: np.ndarray, bias: np.ndarray, in_hwc):
    """The kernel's arrays: dense weights [N_in, N_out] or conv [C_in, taps, C_out] (int16),
    conv taps, the bias (int32) in the population's order."""
    n = int(np.prod(spec.out_shape))
    bias = np.broadcast_to(np.asarray(bias, np.int64), (n,)).astype(np.int32)
    if isinstance(spec, ConvSpec):
        c, h, w = spec.in_shape
        oc, oh, ow = spec.out_shape
        taps = conv_taps((h, w), (oh, ow), tuple(spec.kernel), tuple(spec.stride),
                         tuple(spec.padding), tuple(spec.dilation))
        bias = np.ascontiguousarray(bias.reshape(oc, oh, ow).transpose(1, 2, 0).ravel())
        return _EMPTY2, _conv_weights(spec, weight), taps, bias
    w_eff = np.asarray(weight)
    if in_hwc is not None:               # columns to the (H, W, C) order the input arrives in
        w_eff = w_eff.reshape(spec.out_features, *in_hwc).transpose(0, 2, 3, 1)
    w_dense = np.ascontiguousarray(w_eff.reshape(spec.weight_shape).T).astype(np.int16)
    return w_dense, _EMPTY3, (np.zeros(1, np.int64),) * 3, bias


def hwc_to_chw(a: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """[B, T, H * W * C] -> [B, T, C * H * W] (torch order)."""
    b, t = a.shape[:2]
    c, h, w = shape
    return a.reshape(b, t, h, w, c).transpose(0, 1, 4, 2, 3).reshape(b, t, -1)
