"""The report's figure: meta-training curves (meta-loss, meta-val accuracy, learnt SOEL
scalars) from the training logs, one colour per run."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure     # no pyplot: no global backend state, Agg canvas

from metaloihi.plots import save_figure


def run_label(path: Path) -> str:
    """'runs/demo/metrics.jsonl' -> 'demo'; 'checkpoints/x/demo_soel_metrics.jsonl.gz' ->
    'demo_soel'."""
    stem = path.name.split(".")[0]
    stem = re.sub(r"_?metrics$", "", stem)
    return stem or path.parent.name


def _running_mean(y: np.ndarray, w: int) -> np.ndarray:
    return np.convolve(y, np.ones(w) / w, mode="valid")


def curves_figure(logs: dict[str, list[dict]], path: Path) -> Path:
    """Meta-loss (raw faint, running mean solid) and meta-val accuracy vs iteration, one colour
    per run; a third panel with SOEL theta and eta where a log has them."""
    soel = {k: v for k, v in logs.items() if any("soel.threshold" in r for r in v)}
    n = 3 if soel else 2
    fig = Figure(figsize=(5.2 * n, 4.2), dpi=100)
    axes = fig.subplots(1, n)
    colours = [f"C{i}" for i in range(10)]
    for (label, recs), col in zip(logs.items(), colours * 10):
        it = np.array([r["iteration"] for r in recs])
        loss = np.array([r.get("meta_loss", np.nan) for r in recs], float)
        w = max(1, min(100, len(recs) // 20))
        axes[0].plot(it, loss, color=col, alpha=0.18, lw=0.6)
        if len(recs) >= w:
            axes[0].plot(it[w - 1:], _running_mean(loss, w), color=col, lw=1.6,
                         label=f"{label} (mean of {w})")
        val = [(r["iteration"], r["meta_val_acc"]) for r in recs if "meta_val_acc" in r]
        if val:
            vi, va = np.array(val).T
            axes[1].plot(vi, 100 * va, "o-", color=col, ms=3, lw=1.4, label=f"{label}")
        tr = np.array([r.get("meta_train_acc", np.nan) for r in recs], float)
        if len(recs) >= w:
            axes[1].plot(it[w - 1:], 100 * _running_mean(tr, w), color=col, lw=0.8, ls=":",
                         alpha=0.8)
        if label in soel:
            th = [(r["iteration"], r["soel.threshold"], r.get("soel.eta", np.nan))
                  for r in recs if "soel.threshold" in r]
            si, st, se = np.array(th).T
            axes[2].plot(si, st, color=col, lw=1.5, label=f"{label}: θ")
            axes[2].plot(si, se, color=col, lw=1.5, ls="--", label=f"{label}: η")
    axes[0].set(xlabel="iteration", ylabel="meta-loss (query cross-entropy)", title="meta-loss")
    axes[1].set(xlabel="iteration", ylabel="accuracy (%)",
                title="meta-val accuracy (dots), meta-train (dotted)")
    for ax in axes[:2]:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if soel:
        axes[2].set(xlabel="iteration", ylabel="value (log scale)", yscale="log",
                    title="SOEL threshold θ and step η, learnt")
        axes[2].grid(alpha=0.3, which="both")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)

