"""The nearest-prototype readout: the ceiling every head rule is read against (a prototype on the
raw input or on a network's penultimate spike counts), shared by offline/'s stage 1 and
evaluation and onchip/'s deployment gap."""
from __future__ import annotations

import numpy as np

from metaloihi.base.errors import UserError


def prototype_accuracy(counts_s: np.ndarray, ys: np.ndarray, counts_q: np.ndarray,
                       yq: np.ndarray, ways: int, metric: str = "cosine") -> float:
    """Nearest-prototype accuracy of one task on given features (cosine or dot product)."""
    protos = np.stack([counts_s[ys == c].mean(0) for c in range(ways)]).astype(np.float64)
    q = np.asarray(counts_q, np.float64)
    if metric == "cosine":
        protos = protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    elif metric != "dot":
        raise UserError(f"prototype metric {metric!r}; expected 'cosine' or 'dot'")
    return float(np.mean(np.argmax(q @ protos.T, 1) == yq))
