"""The readout rule every back end shares: class scores from the output layer's spike counts
over the window plus a membrane tie-break, ``counts + 0.49 * tanh(v_last / vth)``.

Why not the paper's output membrane potential alone: the on-chip head learns with SOEL, whose
error is a spike-count error, so the output neurons must spike; a spike count and the last
membrane value are both read on Lava (a spike monitor and a v monitor of the output LIF), and the
tie-break term lies strictly inside (-0.5, 0.5), so it only orders neurons with equal counts
(ties are frequent with few output spikes). It is differentiable everywhere: counts through the
surrogate, v_last directly (tanh rather than a clip, so a silent head with v < 0 still gets a
gradient). offline/ trains through ``logits``; sim/, bridge/, onchip/ and the studies decide with
``predict_np``, its exact integer form. ``ci95`` is the accuracy statistic over tasks.
"""
from __future__ import annotations

import numpy as np
import torch

TIE_BREAK = 0.49  # |TIE_BREAK * tanh| < 0.5 even where float tanh saturates to +-1: a
#                   membrane never outranks a difference of one spike


def logits(out: dict, vth: float | torch.Tensor) -> torch.Tensor:
    """The class scores from a float_lif.run / sim.fixed result of the output layer: spike
    counts over the window plus TIE_BREAK * tanh(v_last / vth) (module docstring).
    The one definition every back end reuses (with counts and v read from Lava)."""
    return out["counts"] + TIE_BREAK * torch.tanh(out["v_last"] / vth)


def logits_np(counts: np.ndarray, v_last: np.ndarray, vth: float) -> np.ndarray:
    """logits() for numpy counts and last membrane values (same units as vth)."""
    return np.asarray(counts, np.float64) + TIE_BREAK * np.tanh(
        np.asarray(v_last, np.float64) / vth)


def predict_np(counts: np.ndarray, v_last: np.ndarray) -> np.ndarray:
    """The class the logits rank first, as an exact rule every back end shares (float,
    sim/'s integers, Lava's monitors): the highest spike count, among equal counts the higher
    membrane v_last, then the lowest index. counts, v_last [..., n_out] -> int64 [...].
    Free of units (v_last may be float or integer mantissas), and equal to logits().argmax(-1)
    wherever float tanh keeps distinct membranes distinct (it merges them only for
    v_last / vth below about -9 in float32, -19 in float64, where this rule still orders them)."""
    counts = np.asarray(counts)
    v = np.asarray(v_last, np.float64)     # integer mantissas (< 2**24) are exact in float64
    top = counts == counts.max(axis=-1, keepdims=True)
    return np.argmax(np.where(top, v, -np.inf), axis=-1).astype(np.int64)   # first max: lowest


def ci95(values) -> tuple[float, float]:
    """Mean and 95% confidence half-width (1.96 standard errors) over tasks; nan where fewer
    than two values leave no spread to measure."""
    v = np.asarray(values, np.float64)
    if len(v) < 2:
        return float(v.mean()) if len(v) else float("nan"), float("nan")
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v)))
