"""`metaloihi data show`: a PNG grid of samples, event frames summed over time, ON red / OFF blue."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError


MAX_GRID = 64      # rows or columns of the grid: beyond that the figure takes minutes to draw
                  # and no cell is readable


def event_image(frames: np.ndarray) -> np.ndarray:
    """Frames [T, 2, H, W] -> RGB image [H, W, 3] in [0, 1]: ON counts red, OFF counts blue.

    Each channel is scaled by its 99th percentile so a few hot pixels do not wash it out."""
    summed = frames.astype(np.float32).sum(axis=0)  # [2, H, W]
    rgb = np.zeros(summed.shape[1:] + (3,), np.float32)
    for ch, col in ((1, 0), (0, 2)):  # channel 1 = ON -> red, channel 0 = OFF -> blue
        s = summed[ch]
        top = np.percentile(s[s > 0], 99) if (s > 0).any() else 1.0
        rgb[..., col] = np.clip(s / max(top, 1e-6), 0, 1)
    return rgb


def show_dataset(name: str, out, per_class: int = 4, n_classes: int = 8, seed: int = 0,
                 dataset=None) -> Path:
    """Write a PNG grid (one row per class, per_class samples each) of data set `name`.

    Classes and samples are drawn with `seed`; `dataset` may be passed to skip loading."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metaloihi.datasets.registry import load_dataset

    if not 1 <= per_class <= MAX_GRID or not 1 <= n_classes <= MAX_GRID:
        raise UserError(f"data show: per_class={per_class}, classes={n_classes}; "
                        f"expected both in [1, {MAX_GRID}]")
    if Path(out).suffix.lower() not in ("", ".png"):
        raise UserError(f"data show: --out {str(out)!r} must be a .png file (PNG is written)")
    ds = dataset if dataset is not None else load_dataset(name)
    rng = np.random.default_rng(seed)
    present = np.unique(ds.labels)
    classes = np.sort(rng.choice(present, min(n_classes, len(present)), replace=False))
    t, _, h, w = ds.frame_shape
    cell = 1.6
    fig, axes = plt.subplots(len(classes), per_class, squeeze=False,
                             figsize=(cell * per_class * max(w / h, 1) ** 0.5 + 1.5,
                                      cell * len(classes) + 0.6))
    for row, c in enumerate(classes):
        idx = ds.class_indices(int(c))
        pick = np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False))
        frames = ds.frames(pick)
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(pick):
                ax.imshow(event_image(frames[col]), interpolation="nearest")
                n_ev = int(frames[col].sum())
                ax.set_xlabel(f"#{pick[col]}  {n_ev} ev", fontsize=6)
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(ds.class_names[int(c)], fontsize=7, rotation=0, ha="right",
                                va="center")
    fig.suptitle(f"{ds.name}: {t} bins summed, ON red / OFF blue, frames {t}x2x{h}x{w}",
                 fontsize=9)
    fig.tight_layout()
    from metaloihi.base.atomic import atomic_path
    out = Path(out)
    try:
        # format given: matplotlib would otherwise append ".png" to a name without a suffix,
        # and the file written would not be the one named
        with atomic_path(out, "figure") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return out
