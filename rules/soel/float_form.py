"""SOEL, the on-chip error-triggered learning rule of the output layer: the one spec.

Stewart & Neftci 2022 section 3.7 after Stewart et al. 2020. For a dense head W [n_out, n_in]
whose input spikes are the frozen network's last hidden layer:

  presentation   shots one at a time, in the task's order (shot-major: class 0..ways-1 of shot 0,
                 then shot 1, ...); each shot is one window of T steps from a rested network;
                 the weights a shot ends with are the ones the next shot runs with.
  pre trace      x_j = min(number of spikes of input j in the window, TRACE_MAX): a spike counter
                 (x1 trace with impulse 1 and no decay, reset between shots); Loihi 2's learning
                 engine holds 7-bit traces, so it saturates at 127.
  post count     c_i = number of spikes of output neuron i in the window (same LIF as inference).
  error          e_i = c_i - target_i, target_i = target_on if i is the shot's label else
                 target_off (integers): dL/ds in spike counts, what the chip can count.
  trigger        n_i = trunc(e_i / theta): zero unless |e_i| >= theta (the threshold test of the
                 rule), else the signed number of thresholds crossed (integer division toward 0).
  update         W_ij <- W_ij - eta * n_i * x_j, once at the end of the window.

Integer-friendly: c, x, e, n are small integers; eta is the only real factor (on chip a weight
mantissa step times a power of two, bridge/'s business). theta and eta are meta-learned offline.

On chip (``OnChip``, optional: ``chip=`` of adapt_np / adapt): the head deployed at `scale`
mantissa units per float weight unit (bridge/: GRID_MAX / the head's max |w|) applies eta as
the nearest step m 2^(e-3) mantissas its learning engine can express (rules/soel/chip.py's
eta_to_rule: up to ~11% off), adds at most 256 mantissas per update (16-bit accumulator) and
keeps weights in the 8-bit mantissas [-256, 255]. With `chip` the float rule does the same, so
what offline/ trains and evaluates is what the chip learns (studies/deployment_gap.py measured
these two as the software's part of the float/fixed gap: docs/deployment.md, "The deployment gap").

Two implementations that must agree: ``adapt_np`` (plain numpy reference, float64) and
``adapt`` (torch, differentiable: straight-through for trunc and the trace clip, the post
counts through the surrogate spike), which offline/'s inner loop uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metaloihi.base.errors import UserError
from metaloihi.sim import float_lif
from metaloihi.rules.soel import chip as sf
from metaloihi.sim.arch import DenseSpec
from metaloihi.sim.loihi import LifFloat

TRACE_BITS = 7
TRACE_MAX = 2 ** TRACE_BITS - 1     # 127: the learning engine's trace register


@dataclass(frozen=True)
class SoelTargets:
    """Target output spike counts per window for the labelled neuron and the others."""
    target_on: int = 8
    target_off: int = 0

    def __post_init__(self):
        for name in ("target_on", "target_off"):
            val = getattr(self, name)
            if int(val) != val or val < 0:
                raise UserError(f"SOEL {name}={val}; expected a non-negative integer count")


def _check(theta, eta) -> None:
    if float(theta) <= 0:
        raise UserError(f"soel_threshold={float(theta)}; expected > 0")


# every step m 2^(e-3) the learning engine can express, in mantissa units (sorted)
_CHIP_STEPS = np.unique([m * 2.0 ** (e - sf.PRODUCT_SHIFT) for m in range(1, sf.MANT_MAX + 1)
                         for e in range(sf.EXP_MIN, sf.EXP_MAX + 1)])


@dataclass(frozen=True)
class OnChip:
    """The chip's limits on the rule for a head deployed at `scale` mantissa units per float
    weight unit (a number, or a 0-d tensor computed outside the graph)."""
    scale: object

    def eta(self, eta):
        """eta (float weight units) as the chip applies it: the nearest expressible step
        (rules.soel.chip.eta_to_rule) / scale. Tensors: straight-through gradient."""
        if not torch.is_tensor(eta) and not torch.is_tensor(self.scale):
            m, e = sf.eta_to_rule(float(eta) * float(self.scale))
            return m * 2.0 ** (e - sf.PRODUCT_SHIFT) / float(self.scale)
        eta_t = torch.as_tensor(eta)
        scale = torch.as_tensor(self.scale, dtype=eta_t.dtype).detach()
        steps = torch.as_tensor(_CHIP_STEPS, dtype=eta_t.dtype, device=eta_t.device)
        mant = eta_t.detach() * scale
        q = steps[torch.argmin((steps - mant).abs())] / scale   # vmap-safe: no .item()
        return eta_t + (q - eta_t).detach()

    def update(self, w, dw):
        """w + dw with the accumulator's and the weights' limits: |dw| <= 256 mantissas, then
        w in [-256, 255] mantissas (the chip's stochastic rounding is not modelled)."""
        acc = sf.ACC_LIMIT / 2 ** sf.ACC_SHIFT / self.scale
        lo, hi = sf.W_MIN / self.scale, sf.W_MAX / self.scale
        if torch.is_tensor(w):
            return torch.clamp(w + torch.clamp(dw, -acc, acc), lo, hi)
        return np.clip(w + np.clip(dw, -acc, acc), lo, hi)


# --- numpy reference ------------------------------------------------------------------------
def pre_trace_np(pre_spikes: np.ndarray) -> np.ndarray:
    """[T, n_in] spikes of one window -> saturating counts 0..TRACE_MAX [n_in]."""
    return np.minimum(np.asarray(pre_spikes).sum(0), TRACE_MAX).astype(np.float64)


def error_np(counts: np.ndarray, label: int, targets: SoelTargets) -> np.ndarray:
    target = np.full(len(counts), targets.target_off, np.float64)
    target[label] = targets.target_on
    return np.asarray(counts, np.float64) - target


def delta_np(err: np.ndarray, trace: np.ndarray, theta: float, eta: float) -> np.ndarray:
    """dW = -eta * trunc(e / theta) x^T."""
    _check(theta, eta)
    n = np.trunc(err / theta)
    return -eta * np.outer(n, trace)


def head_run_np(w: np.ndarray, pre_spikes: np.ndarray, neuron: LifFloat
                ) -> tuple[np.ndarray, np.ndarray]:
    """The output LIF over one window (float, as sim.float_lif: one step of synaptic delay,
    strict threshold, reset to 0) -> (spike counts [n_out], v at the last step)."""
    n_out = w.shape[0]
    u, v = np.zeros(n_out), np.zeros(n_out)
    counts = np.zeros(n_out)
    a_next = np.zeros(n_out)
    for s_in in np.asarray(pre_spikes, np.float64):
        a, a_next = a_next, w @ s_in
        u = u * (1 - neuron.du) + a
        v = v * (1 - neuron.dv) + u + neuron.bias
        s = v > neuron.vth
        counts += s
        v = np.where(s, 0.0, v)
    return counts, v


def adapt_np(w: np.ndarray, pre_spikes: np.ndarray, labels: np.ndarray, neuron: LifFloat,
             theta: float, eta: float, targets: SoelTargets = SoelTargets(),
             passes: int = 1, chip: OnChip | None = None) -> np.ndarray:
    """The rule over shots pre_spikes [S, T, n_in] with labels [S], in order (`passes` times).
    Returns the adapted weights. chip: apply eta and the weight limits as the chip does."""
    w = np.array(w, np.float64)
    eta = eta if chip is None else chip.eta(eta)
    for _ in range(passes):
        for x, y in zip(pre_spikes, labels):
            counts, _ = head_run_np(w, x, neuron)
            dw = delta_np(error_np(counts, int(y), targets), pre_trace_np(x), theta, eta)
            w = w + dw if chip is None else chip.update(w, dw)
    return w


# --- torch, differentiable -------------------------------------------------------------------
def trunc_st(x: torch.Tensor) -> torch.Tensor:
    """trunc(x) forward, identity backward (the paper's straight-through / float division)."""
    return x + (torch.trunc(x) - x).detach()


def pre_trace(pre_spikes: torch.Tensor) -> torch.Tensor:
    """[..., T, n_in] -> saturating counts, straight-through gradient past the clip."""
    c = pre_spikes.sum(-2)
    return c + (c.clamp(max=TRACE_MAX) - c).detach()


def error(counts: torch.Tensor, labels: torch.Tensor, targets: SoelTargets) -> torch.Tensor:
    """[B, n_out] counts, [B] labels -> e = counts - target."""
    # a comparison rather than F.one_hot, which has no vmap rule (it inspects label values)
    onehot = (labels[..., None] == torch.arange(counts.shape[-1], device=counts.device)
              ).to(counts.dtype)
    return counts - (targets.target_off + (targets.target_on - targets.target_off) * onehot)


def delta(err: torch.Tensor, trace: torch.Tensor, theta, eta) -> torch.Tensor:
    """[n_out] error, [n_in] trace -> dW [n_out, n_in] = -eta * trunc_st(e / theta) x^T."""
    return -eta * torch.outer(trunc_st(err / theta), trace)


def adapt(w: torch.Tensor, pre_spikes: torch.Tensor, labels: torch.Tensor, neuron: LifFloat,
          theta, eta, targets: SoelTargets = SoelTargets(), passes: int = 1,
          trunc: int | None = None, quantize=None, chip: OnChip | None = None) -> torch.Tensor:
    """Differentiable adapt_np: w [n_out, n_in], pre_spikes [S, T, n_in], labels [S]. The post
    counts come from sim.float_lif.run (surrogate gradient, truncated BPTT `trunc`); `quantize`
    (w -> w) is applied after every update (the inner-loop Q of offline/). theta, eta may be
    tensors that require grad (meta-learned). chip: as adapt_np's (eta straight-through,
    the limits as clamps)."""
    spec = [DenseSpec(w.shape[1], w.shape[0])]
    eta = eta if chip is None else chip.eta(eta)
    for _ in range(passes):
        for s in range(pre_spikes.shape[0]):
            x = pre_spikes[s:s + 1]
            out = float_lif.run(spec, {float_lif.weight_key(0): w}, [neuron], x, trunc=trunc)
            e = error(out["counts"], labels[s:s + 1], targets)[0]
            dw = delta(e, pre_trace(x)[0], theta, eta)
            w = w + dw if chip is None else chip.update(w, dw)
            if quantize is not None:
                w = quantize(w)
    return w
