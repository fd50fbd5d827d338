"""Fused numba kernels for the fast path of ``sim.fixed.run``: one layer over all T steps,
event-driven (work per input spike, not per synapse), with the connection's shift, wrap and
one-step delay and the LIF update folded in. Exact int64 arithmetic throughout.

They implement exactly ``fixed.synaptic_sum`` + ``fixed.lif_step`` (the reference, written with
torch and numpy and tested against Lava); tests hold the two paths equal. They exist because
the numpy step pays ~20 array passes per step and a dense conv pays for every silent synapse.
Neuron order inside: conv populations are (H, W, C), channels last, so that one input spike
adds one contiguous C_out-vector per kernel tap.
"""
from __future__ import annotations

import functools

import numba as nb
import numpy as np

from metaloihi.sim import loihi as L

_LIM = L.UV_LIMIT
_VMAX = L.UV_LIMIT - 1


@nb.njit(inline="always")
def _wrap(x, bits):
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


@nb.njit(inline="always")
def _decay(x, factor):
    p = x * factor
    if p >= 0:
        return p >> 12
    return -((-p) >> 12)


@nb.njit(inline="always")
def _accumulate_dense(row, w_t, acc):
    # w_t: [N_in, N_out]; acc[:] = sum of rows of w_t over active inputs
    acc[:] = 0
    n = acc.shape[0]
    for j in range(row.shape[0]):
        if row[j]:
            wrow = w_t[j]
            for o in range(n):
                acc[o] += wrow[o]


@functools.lru_cache(maxsize=64)
def conv_taps(in_hw, out_hw, kernel, stride, padding):
    """For each input pixel, the (output pixel, kernel tap) pairs it reaches, as CSR arrays:
    precomputed once per geometry (cached; treat as read-only) so the per-spike loop does no
    index arithmetic."""
    (h, w), (oh, ow), (kh, kw) = in_hw, out_hw, kernel
    ptr, outs, taps = [0], [], []
    for y in range(h):
        for x in range(w):
            for ky in range(kh):
                ny = y + padding[0] - ky
                if ny < 0 or ny % stride[0] or ny // stride[0] >= oh:
                    continue
                for kx in range(kw):
                    nx = x + padding[1] - kx
                    if nx < 0 or nx % stride[1] or nx // stride[1] >= ow:
                        continue
                    outs.append((ny // stride[0]) * ow + nx // stride[1])
                    taps.append(ky * kw + kx)
            ptr.append(len(outs))
    return np.array(ptr, np.int64), np.array(outs, np.int64), np.array(taps, np.int64)


@nb.njit(inline="always")
def _accumulate_conv(row, in_chw, w_k, tap_ptr, tap_out, tap_k, acc):
    # w_k: [C_in, kh*kw, C_out]; acc in (H, W, C) order; row in (H, W, C) or, for the
    # network input, torch's (C, H, W) order (saves transposing the input)
    cin, cout = w_k.shape[0], w_k.shape[2]
    npix = row.shape[0] // cin
    acc[:] = 0
    acc2 = acc.reshape((acc.shape[0] // cout, cout))
    for j in range(row.shape[0]):
        if not row[j]:
            continue
        if in_chw:
            c = j // npix
            p = j - c * npix
        else:
            c = j % cin
            p = j // cin
        for e in range(tap_ptr[p], tap_ptr[p + 1]):
            a = acc2[tap_out[e]]
            wrow = w_k[c, tap_k[e]]
            for o in range(cout):        # a row view + explicit loop: LLVM vectorises this,
                a[o] += wrow[o]          # not `acc[base + o]` nor a slice add


@nb.njit(inline="always")
def _lif_update(a_prev, u, v, shift, wrap_bits, fu, fv, bias, vth_eff, s_out):
    for i in range(u.shape[0]):
        a = np.int64(a_prev[i])
        if shift > 0:
            a = a << shift
        elif shift < 0:
            a = a >> (-shift)
        a = _wrap(a, wrap_bits)
        d = _wrap(_decay(np.int64(u[i]), fu) + _wrap(a << 6, 32), 32)
        if d > _LIM:                     # Lava's 24-bit wrap: one correction, not a modulo
            d -= 2 * _LIM
        elif d <= -_LIM:
            d += 2 * _LIM
        u[i] = d
        vv = _wrap(_decay(np.int64(v[i]), fv) + d + bias[i], 32)
        if vv > _VMAX:
            vv = _VMAX
        elif vv < -_VMAX:
            vv = -_VMAX
        if vv > vth_eff:
            s_out[i] = 1
            vv = 0
        v[i] = vv


@nb.njit(parallel=True, cache=True)
def layer_scan(in_spikes, in_chw, is_conv, w_dense, w_conv, tap_ptr, tap_out, tap_k, shift, wrap_bits, fu, fv, bias,
               vth_eff, spikes, u_rec, v_rec, record):
    """in_spikes [B, T, N_in] uint8 -> spikes [B, T, N_out] uint8 (and u/v [B, T, N_out])."""
    nbatch, nsteps, _ = in_spikes.shape
    n = spikes.shape[2]
    for b in nb.prange(nbatch):
        # u and v always fit int32 (u is int32-wrapped, v clipped to 24 bits): half the bytes
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        # the connection's buffer (one step of delay); int32 is exact: |sum| <= fan_in * 256
        a_prev = np.zeros(n, np.int32)
        a_new = np.zeros(n, np.int32)
        for t in range(nsteps):
            if is_conv:
                _accumulate_conv(in_spikes[b, t], in_chw, w_conv, tap_ptr, tap_out, tap_k, a_new)
            else:
                _accumulate_dense(in_spikes[b, t], w_dense, a_new)
            _lif_update(a_prev, u, v, shift, wrap_bits, fu, fv, bias, vth_eff, spikes[b, t])
            if record:
                u_rec[b, t] = u
                v_rec[b, t] = v
            a_prev, a_new = a_new, a_prev
