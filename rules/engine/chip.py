"""The chip side every rule shares, bit-exact: the integer emulation of what onchip/'s Lava graph
computes around a rule's third factor, learning engine included (Lava 0.10's
LearningConnectionModelBitApproximate, read from its source: lava/magma/core/model/py/
connection.py, learning_rule_applier.py, learning/random.py).

The graph (onchip/graph.py builds it) presents samples one at a time, each in a period of
P = T + 1 Lava steps from a rested network (the host resets u, v, synaptic buffers and the pre
trace after every period):

  steps 0..T-1   the window: the frozen network runs on the sample; the error path passes the
                 frozen output spikes on to the head (LearningDense) and counts the head's spikes
  step  T        the learning step: the error path sends the rule's third factor n (computed at
                 the window's end, sent one step later: neuron -> error -> neuron in one step
                 is a cycle) and blocks the head's input, so the pre trace holds the window's
                 count only; the head neuron writes y2 = clip(n, 0, 127), y3 = clip(-n, 0, 127);
                 t_epoch = P, so the learning engine runs at this step's end with the rule's
                 dw = sum over its terms of sign mant 2^exp u0 x1 y_k.

The learning engine, as Lava's fixed-point model computes it at the end of an epoch:
  x1        pre trace: impulse 1 per spike, clipped to 127; decay with x1_tau = 65535 (tau 0
            would not mean "no decay" in this model: rows with tau 0 are zeroed across the epoch's
            history); each of the P history steps maps x -> floor(x e^(-1/tau)) + (r < frac) with
            one random r per epoch, so x = min(count, 127) unless r > 1 - x/65535 (~1e-7).
  y2, y3    3-factor traces: the values the neuron sent this step, decayed the same way with
            Lava's own 3F tau 65535 and the y generator's r.
  product   (u * x1 * y * m) >> 3 (factor widths 7 + 7 + 4 - 15), then << (e + 7), clipped to
            [-2^15 - 1, 2^15 - 1]; products summed onto w << 7 in the dw string's order,
            clipped likewise.
  rounding  w_acc / 128 -> floor + (r_w < frac) (one r_w per epoch from a generator Lava seeds
            with 2, not rng_seed), >> 7, clipped to [-256, 255]. So one weight step is
            m 2^(e-3) y x mantissa units before the stochastic rounding.
  randoms   x: default_rng(seed) (decay) / seed+1 (impulse), y: seed+2 / seed+3, each advanced
            twice per step; weights: default_rng(2), advanced once per epoch. Integer impulses
            make the impulse generators irrelevant (stochastic_round adds r < 0 = never).
The head's weights are truncated to even once, on Lava's first step (mixed sign mode, 8 bits);
learnt weights keep their LSB.

A session rule (each rule's chip.py makes one from its ChipRule and the window) has: window,
period (window + 1), rng_seed, mant, exp, terms (the dw string's products, in order: (sign, k)
for sign mant 2^exp u0 x1 y_k), third_factor(counts, label) -> n (what the error path sends).

One learning step, one home (below): `new_state` (the weights truncated, Lava's generators),
`present` (a sample's window, then its learning step), `present_frozen` (queries, one batch),
`learn_step` (the step after a window computed elsewhere: the deployment gap's float head).
The session (`run_session`), the continual study and the deployment gap fold over them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.rules.engine import PRODUCT_SHIFT
from metaloihi.sim import fixed
from metaloihi.sim import loihi as L
from metaloihi.sim.fixed import FixedLayer, Network

TRACE_MAX = 127                  # W_TRACE = 7
TRACE_TAU = 65535                # Loihi3FLearningRule's y tau; we use it for x1 too: "no decay"
ACC_SHIFT = 7                    # W_ACCUMULATOR_S - W_WEIGHTS_S = 16 - 9
ACC_LIMIT = 2 ** 15              # W_ACCUMULATOR_U
S_EXP_OFFSET = 7                 # Lava stores 2^e as s_exp = e + 7 and shifts left by s_exp
WEIGHT_RNG_SEED = 2              # ConnVarRandom(): Lava does not pass rng_seed to it
W_MIN, W_MAX = -256, 255         # clip_weights(MIXED, 8 bits)


def dw_string(mant: int, exp: int, terms) -> str:
    """Lava's dw string of terms ((sign, k), ...): sign mant 2^exp u0 x1 y_k, in that order."""
    s = f"{mant} * 2^{exp}"
    out = ""
    for i, (sign, k) in enumerate(terms):
        out += ("-" if sign < 0 else "") if i == 0 else (" - " if sign < 0 else " + ")
        out += f"{s} * u0 * x1 * y{k}"
    return out


def y_sent(n: np.ndarray) -> dict:
    """The y values the head neuron sends for third factor n (7-bit unsigned traces: n's sign
    picks the trace)."""
    return {2: np.clip(n, 0, TRACE_MAX), 3: np.clip(-n, 0, TRACE_MAX)}


# --- the learning engine ----------------------------------------------------------------------
class Stream:
    """One of Lava's numpy generators, read the way Lava reads it (one draw at construction,
    one per advance), in bulk."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed=seed)
        self.value = float(self._rng.random(1)[0])

    def advance(self, n: int = 1) -> float:
        if n > 0:
            self.value = float(self._rng.random(n)[-1])
        return self.value


def decay(trace: np.ndarray, r: float) -> np.ndarray:
    """LearningConnectionModelBitApproximate._decay_trace with t = 1, tau = TRACE_TAU (the
    step-by-step definition the fused scan below computes)."""
    integer_part = np.exp(-1 / np.array([[TRACE_TAU]])) * trace
    frac = integer_part % 1
    return (np.floor(integer_part) + (r < frac).astype(int)).astype(int)


_DECAY_FACTOR = float(np.exp(-1 / np.array([[TRACE_TAU]]))[0, 0])   # the float Lava multiplies by


@nb.njit(cache=True)
def _decay_scan(trace, r, factor, steps, impulse_at, trace_max):
    """`decay` at each step t = 1..steps, then +1 (up to trace_max) where impulse_at == t:
    the same float64 products and roundings as `decay` (traces are >= 0)."""
    out = trace.copy()
    for t in range(1, steps + 1):
        for i in range(out.shape[0]):
            p = factor * out[i]
            f = np.floor(p)
            out[i] = np.int64(f) + (1 if r < p - f else 0)
            if impulse_at[i] == t and out[i] < trace_max:
                out[i] += 1
    return out


def pre_trace_at_epoch_end(pre: np.ndarray, r: float, period: int) -> np.ndarray:
    """x1 at the epoch's end from pre spikes [P, n_in] (steps 1..P of the epoch)."""
    pre = np.asarray(pre, bool)
    count = pre.sum(0)
    x = np.minimum(np.maximum(count - 1, 0), TRACE_MAX).astype(np.int64)  # repeat spikes' impulses
    last = np.where(count > 0, period - np.argmax(pre[::-1], axis=0), 0)   # tx, 1-based
    return _decay_scan(x, float(r), _DECAY_FACTOR, period, last.astype(np.int64), TRACE_MAX)


def post_trace_at_epoch_end(y: np.ndarray, r: float, period: int) -> np.ndarray:
    y = np.asarray(y, np.int64)
    return _decay_scan(y, float(r), _DECAY_FACTOR, period, np.zeros(len(y), np.int64),
                       TRACE_MAX)


def learn(w: np.ndarray, x1: np.ndarray, n: np.ndarray, rule, r_w: float, r_y: float
          ) -> np.ndarray:
    """One epoch's weight update: w [n_out, n_in] int, x1 [n_in] (already at epoch end),
    n [n_out] third factor as sent; rule: a session rule (its mant, exp, terms, period).
    Returns the new weights (int64)."""
    sent = y_sent(n)
    y = {k: post_trace_at_epoch_end(sent[k], r_y, rule.period) for _, k in rule.terms}
    acc = np.asarray(w, np.int64) << ACC_SHIFT
    lo, hi = -ACC_LIMIT - 1, ACC_LIMIT - 1
    x = np.clip(x1, -128, 127)[None, :]
    for sign, k in rule.terms:                     # the dw string's product order
        prod = x * np.clip(y[k], -128, 127)[:, None] * (sign * rule.mant)
        prod = np.left_shift(np.right_shift(prod, PRODUCT_SHIFT), rule.exp + S_EXP_OFFSET)
        acc = np.clip(acc + np.clip(prod, lo, hi), lo, hi)
    q = acc / 2 ** ACC_SHIFT
    frac = q % 1
    q = (np.floor(q) + (r_w < frac).astype(int)).astype(np.int64)
    return np.clip(q, W_MIN, W_MAX)


# --- the head and the session ------------------------------------------------------------------
def head_window(w: np.ndarray, weight_exp: int, neuron: L.LifFixed, pre: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The head over one window from rest: Dense with raw (learnt) weights, one step of delay,
    then the LIF. pre [T, n_in] bool -> (spikes [T, n_out] bool, v_last [n_out] int64: the
    membrane after the window's last step, after its reset, as a Lava Monitor of v reads it).
    A batch pre [B, T, n_in] (samples with the same weights, each from rest) gives
    [B, T, n_out] and [B, n_out]."""
    pre = np.asarray(pre, bool)
    single = pre.ndim == 2
    pre = np.ascontiguousarray(pre[None] if single else pre).view(np.uint8)
    B, T = pre.shape[:2]
    n_out = w.shape[0]
    spikes = np.zeros((B, T, n_out), np.uint8)
    u, v = np.zeros((B, T, n_out), np.int64), np.zeros((B, T, n_out), np.int64)
    # sim.fixed.run's fused Dense + LIF scan, on the raw (learnt) weights: no sign-mode LSB drop;
    # one thread: a window is ~100 us of work, and waking a thread pool that shares the cores
    # with other jobs costs ~100x that
    threads = nb.get_num_threads()
    nb.set_num_threads(1)
    try:
        _scan(pre, w, weight_exp, neuron, spikes, u, v)
    finally:
        nb.set_num_threads(threads)
    out, v_last = spikes.view(bool), v[:, -1].copy()
    return (out[0], v_last[0]) if single else (out, v_last)


def _scan(pre, w, weight_exp, neuron, spikes, u, v) -> None:
    from metaloihi.sim.kernels import layer_scan
    n_out = w.shape[0]
    layer_scan(pre, True, False, np.ascontiguousarray(np.asarray(w, np.int64).T).astype(np.int16),
               np.zeros((1, 1, 1), np.int16), *(np.zeros(1, np.int64),) * 3, int(weight_exp),
               L.CHANNEL_BITS, L.DECAY_UNITY - neuron.du - L.DU_OFFSET,
               L.DECAY_UNITY - neuron.dv,
               np.broadcast_to(neuron.effective_bias, (n_out,)).astype(np.int32),
               neuron.effective_vth, spikes, u, v, True)


@dataclass
class SessionTrace:
    head_spikes: np.ndarray      # bool [samples, T, n_out], every window step
    counts: np.ndarray           # int [samples, n_out]
    weights: list[np.ndarray]    # head weights after each sample (torch order)
    n: np.ndarray                # int [samples, n_out], the third factor sent
    v_last: np.ndarray           # int [samples, n_out], head membrane at the window's last step


# --- the learning step: one home ---------------------------------------------------------------
def truncate(w: np.ndarray) -> np.ndarray:
    """The head's weights as Lava holds them from its first step on: mixed sign mode with 8
    bits drops the LSB (to the even value below, as int64); learnt weights keep their LSB."""
    return (np.asarray(w, np.int64) >> 1) << 1


@dataclass
class ChipState:
    """What the chip carries from one sample to the next: the head's weights (mantissas, torch
    order) and the learning engine's generators, advanced as Lava advances them (every sample is
    one epoch of rule.period steps: the trace generators twice per step, the weights' once)."""
    w: np.ndarray
    rule: object                 # the session rule
    x_decay: Stream              # x1's decay: default_rng(rng_seed)
    y_decay: Stream              # y2/y3's decay: default_rng(rng_seed + 2)
    w_round: Stream              # the weights' stochastic rounding: default_rng(2)


def new_state(weight: np.ndarray, rule) -> ChipState:
    """The state at a session's start: `weight` truncated (Lava's first step), fresh generators."""
    return ChipState(truncate(weight), rule, Stream(rule.rng_seed), Stream(rule.rng_seed + 2),
                     Stream(WEIGHT_RNG_SEED))


def learn_step(state: ChipState, pre: np.ndarray, counts: np.ndarray, label: int
               ) -> np.ndarray:
    """Step T of a learning sample's period, after its window: the error path's n from the
    head's spike counts and the label (the rule's third_factor), x1 from the window's pre
    spikes pre [T, n_in] (the learning step itself blocks the input), the weight update;
    state.w and the generators advance in place. Returns n."""
    rule = state.rule
    P = rule.period
    n = rule.third_factor(counts, label)
    r_x, r_y = state.x_decay.advance(2 * P), state.y_decay.advance(2 * P)
    pre = np.asarray(pre, bool)
    x1 = pre_trace_at_epoch_end(np.concatenate([pre, np.zeros((1, pre.shape[-1]), bool)]),
                                r_x, P)
    state.w = learn(state.w, x1, n, rule, state.w_round.advance(), r_y)
    return n


def present(state: ChipState, head: FixedLayer, pre: np.ndarray, label: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample's period on the head (pre [T, n_in]: the frozen network's output spikes):
    the window on the current weights, then the learning step with label >= 0; label < 0 (a
    query) only runs it. -> (spikes [T, n_out], v_last [n_out], n [n_out])."""
    if label < 0:
        out, v_last = present_frozen(state, head, np.asarray(pre)[None])
        return out[0], v_last[0], np.zeros(len(v_last[0]), np.int64)
    out, v_last = head_window(state.w, head.weight_exp, head.neuron, pre)
    return out, v_last, learn_step(state, pre, out.sum(0), label)


def present_frozen(state: ChipState, head: FixedLayer, pre: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Samples pre [B, T, n_in] that do not learn (queries), as one batch: with n = 0 the
    weights stay equal bit for bit, so this is `present` with label -1 on each in turn (the
    generators advance by B epochs). -> (spikes [B, T, n_out], v_last [B, n_out])."""
    out, v_last = head_window(state.w, head.weight_exp, head.neuron, pre)
    B, P = len(out), state.rule.period
    state.x_decay.advance(2 * P * B), state.y_decay.advance(2 * P * B)
    state.w_round.advance(B)
    return out, v_last


def run_session(frozen: Network, head: FixedLayer, rule, x: np.ndarray,
                labels: np.ndarray) -> SessionTrace:
    """Samples x [S, T, *in_shape] in order, label[s] >= 0 to learn from sample s, -1 to only
    run it (learning frozen: n = 0, weights unchanged bit for bit, generators still advance):
    `present` over the samples, each run of queries as one batch (present_frozen)."""
    x = np.asarray(x)
    T = rule.window
    if x.shape[1] != T:
        raise UserError(f"samples have {x.shape[1]} steps, the rule's window is {T}")
    pre_all = fixed.run(frozen, x, layers="last")["spikes"][-1] if frozen else \
        x.reshape(len(x), T, -1).astype(bool)
    state = new_state(head.weight, rule)
    labels = np.asarray(labels, np.int64)
    spikes, counts, ws, ns, vs = [], [], [], [], []
    k = 0
    while k < len(labels):
        if labels[k] < 0:                # a run of queries: one batch
            end = k + int(np.argmax(np.append(labels[k:] >= 0, True)))
            out, v_last = present_frozen(state, head, pre_all[k:end])
            ns += [np.zeros(len(state.w), np.int64)] * (end - k)
        else:
            end = k + 1
            out, v_last, n = present(state, head, pre_all[k], int(labels[k]))
            out, v_last = out[None], v_last[None]
            ns.append(n)
        spikes += list(out)
        counts += list(out.sum(1))
        vs += list(v_last)
        ws += [state.w.copy() for _ in range(end - k)]
        k = end
    return SessionTrace(np.array(spikes), np.array(counts), ws, np.array(ns), np.array(vs))
