"""Sigma-delta neurons as Lava 0.10's fixed_pt CPU models compute them (lava/proc/sdn/process.py
and models.py), the way lava-dl's netx builds them (spike_exp 6, state_exp 6, cum_error off,
ReLU activation). Every state is an int32 array in Lava, so every sum here wraps to 32 bits.

- SigmaDelta (a hidden layer): sigma += a_in; act = max(sigma + bias, 0);
  delta = act - act_prev + residue; s = delta if |delta| >= vth else 0 (|.| of int32: -2^31
  stays negative); residue = delta - s; the message sent is s >> state_exp. vth and bias are
  the file's values times 2^(spike_exp + state_exp).
- Delta (an input layer): the same delta encoding of act = a_in << (spike_exp + state_exp).
- Sigma (an output layer, "sigma_output"): sigma += a_in, sent as it is.

Recorded per step, after the update: the message s (int), "u" = sigma (Delta: act) and
"v" = residue (Sigma: 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from metaloihi.base.errors import UserError

SIGMA_DELTA, DELTA, SIGMA = "sigma_delta", "delta", "sigma"
KINDS = (SIGMA_DELTA, DELTA, SIGMA)
_CODE = {SIGMA_DELTA: 0, DELTA: 1, SIGMA: 2}
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class SigmaDelta:
    """One sigma-delta population. vth and bias are the effective int32 values Lava holds
    (already times 2^(spike_exp + state_exp)); graded_out: the next synapse reads the messages
    as values (num_message_bits > 0), not as spikes."""
    kind: str = SIGMA_DELTA
    vth: int = 0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    spike_exp: int = 6
    state_exp: int = 6
    graded_out: bool = True

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"sigma-delta kind {self.kind!r}: one of {', '.join(KINDS)}")
        b = np.asarray(self.bias, np.int64)
        if not INT32_MIN <= int(self.vth) <= INT32_MAX or (
                b.size and (b.min() < INT32_MIN or b.max() > INT32_MAX)):
            raise UserError("sigma-delta vth and bias must fit Lava's int32 state")
        if not (0 <= self.state_exp < 32 and 0 <= self.spike_exp + self.state_exp < 32):
            raise UserError(f"spike_exp {self.spike_exp} / state_exp {self.state_exp} out of range")
        object.__setattr__(self, "bias", b)

    @property
    def input_shift(self) -> int:
        """Delta's a_in is shifted left by this before encoding."""
        return int(self.spike_exp + self.state_exp)


@nb.njit(cache=True)
def _w32(x):
    return ((x + (np.int64(1) << 31)) & ((np.int64(1) << 32) - 1)) - (np.int64(1) << 31)


@nb.njit(parallel=True, cache=True)
def sd_scan(a, kind, bias, vth, state_exp, s_out, u_rec, v_rec, record):
    """a [B, T, n]: what reaches a_in each step (int32 values; for a Delta already shifted);
    bias [n]; kind 0 SigmaDelta, 1 Delta, 2 Sigma. Writes s_out [B, T, n] and, with record,
    u_rec (sigma, or act for a Delta) and v_rec (residue)."""
    nb_, nt, n = a.shape
    lo = -(np.int64(1) << 31)
    for b in nb.prange(nb_):
        sigma = np.zeros(n, np.int64)
        act = np.zeros(n, np.int64)
        res = np.zeros(n, np.int64)
        for t in range(nt):
            for i in range(n):
                if kind == 2:
                    sigma[i] = _w32(sigma[i] + a[b, t, i])
                    s_out[b, t, i] = sigma[i]
                    continue
                if kind == 1:
                    new = a[b, t, i]
                else:
                    sigma[i] = _w32(sigma[i] + a[b, t, i])
                    new = _w32(sigma[i] + bias[i])
                    if new < 0:
                        new = 0
                d = _w32(new - act[i] + res[i])
                mag = d if d >= 0 else (-d if d != lo else d)   # np.abs of int32
                s = d if mag >= vth else np.int64(0)
                res[i] = _w32(d - s)
                act[i] = new
                s_out[b, t, i] = s >> state_exp
            if record:
                u_rec[b, t] = act if kind == 1 else sigma
                v_rec[b, t] = res


def population(nrn: SigmaDelta, a: np.ndarray, record: bool):
    """Run one sigma-delta population on a_in values a [B, T, n] (int64 holding int32 values;
    for a Delta, its raw input). Returns (messages int64, u, v) as sd_scan records them."""
    b, t, n = a.shape
    if nrn.kind == DELTA:
        big = 1 << (31 - nrn.input_shift)
        if a.size and (a.min() < -big or a.max() >= big):
            raise UserError(f"sigma-delta input values must lie in [{-big}, {big - 1}]: Lava's "
                            f"Delta shifts them left by {nrn.input_shift} in int32, got "
                            f"{a.min()}..{a.max()}")
        a = a << nrn.input_shift
    bias = np.ascontiguousarray(np.broadcast_to(nrn.bias.reshape(-1), (n,)), np.int64)
    s = np.zeros((b, t, n), np.int64)
    u = np.zeros((b, t, n) if record else (1, 1, 1), np.int64)
    v = np.zeros_like(u)
    sd_scan(np.ascontiguousarray(a, np.int64), _CODE[nrn.kind], bias, int(nrn.vth),
            int(nrn.state_exp), s, u, v, record)
    return s, u, v
