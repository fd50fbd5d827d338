"""Figures: the one-shot learning demo's PNG, and `save_figure`, which every figure of the
package (the demo's, the report's) is written through. Agg only (no display needed), written
atomically (a temporary file in the same folder, then os.replace).

`demo_figure` draws one PNG with four panels:
  (a) the support shots as event frames (summed over time, ON red / OFF blue, as
      `metaloihi data show` draws them), titled with their labels;
  (b) the query confusion matrix (counts; rows true class, columns predicted);
  (c) the head's weight change after - before, an image [ways x n_in] on a diverging scale
      (every output neuron a row: SOEL changes whole rows, where the error fired);
  (d) the output layer's spikes while learning: the shots' windows one after another on one
      time axis, shot boundaries marked, each shot's labelled neuron shaded and its spikes red.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from metaloihi.base.atomic import atomic_path
from metaloihi.base.errors import UserError


def _shape_error(name: str, want: str, got) -> UserError:
    return UserError(f"demo_figure: {name} must be {want}, got shape {tuple(np.shape(got))}")


def _check(shots, labels, confusion, weights_before, weights_after, head_spikes_learning,
           class_names) -> tuple:
    names = [str(c) for c in class_names]
    ways = len(names)
    if ways < 1:
        raise UserError("demo_figure: class_names is empty; expected one name per output neuron")
    shots = np.asarray(shots)
    if shots.ndim != 5 or shots.shape[2] != 2 or 0 in shots.shape:
        raise _shape_error("shots", "[shots, T, 2, H, W] event frames", shots)
    n = shots.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"demo_figure: labels must be {n} integers (one per shot), got shape "
                        f"{labels.shape} dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= ways:
        raise UserError(f"demo_figure: labels must be in 0..{ways - 1} (class_names has {ways}), "
                        f"got {labels.min()}..{labels.max()}")
    confusion = np.asarray(confusion)
    if confusion.shape != (ways, ways):
        raise _shape_error("confusion", f"[{ways}, {ways}] (ways x ways, true x predicted)",
                           confusion)
    if np.any(confusion < 0):
        raise UserError("demo_figure: confusion holds negative counts")
    wb, wa = np.asarray(weights_before, np.float64), np.asarray(weights_after, np.float64)
    if wb.ndim != 2 or wb.shape[0] != ways:
        raise _shape_error("weights_before", f"[{ways}, n_in] (ways x inputs)", wb)
    if wa.shape != wb.shape:
        raise _shape_error("weights_after", f"{list(wb.shape)} like weights_before", wa)
    spikes = np.asarray(head_spikes_learning)
    if spikes.ndim != 3 or spikes.shape[0] < n or spikes.shape[0] % n or \
            spikes.shape[2] != ways or spikes.shape[1] < 1:
        raise _shape_error("head_spikes_learning", f"bool [passes * {n}, T, {ways}] (passes x "
                           "shots x steps x ways)", spikes)
    return shots, labels, confusion, wb, wa, spikes != 0, names


def demo_figure(path: str | Path, shots: np.ndarray, labels: Sequence[int],
                confusion: np.ndarray, weights_before: np.ndarray, weights_after: np.ndarray,
                head_spikes_learning: np.ndarray, class_names: Sequence[str],
                title: str = "") -> Path:
    """Write the demo's four-panel PNG to `path` (atomically) and return the path.

    shots                 [S, T, 2, H, W] event frames of the support shots, in presentation
                          order (channel 0 OFF, 1 ON); any numeric dtype
    labels                [S] int, class index (0..ways-1) of each shot
    confusion             [ways, ways] query counts, rows = true class, columns = predicted
    weights_before/after  [ways, n_in] head weights before and after learning (mantissas or
                          float, torch order [out, in])
    head_spikes_learning  bool [passes * S, T', ways]: the output layer's spikes during each
                          shot's window, every pass (SessionResult.head_spikes[:passes * S]);
                          T' may differ from T
    class_names           ways names, output neuron i = class_names[i]
    title                 figure title (e.g. data set, bundle, backend, accuracy)

    A shape that does not fit raises metaloihi.base.errors.UserError naming the argument."""
    from matplotlib.figure import Figure     # no pyplot: no global backend state, Agg canvas

    from metaloihi.datasets.show import event_image

    shots, labels, confusion, wb, wa, spikes, names = _check(
        shots, labels, confusion, weights_before, weights_after, head_spikes_learning,
        class_names)
    n, ways = shots.shape[0], len(names)
    fig = Figure(figsize=(13.5, 11.0), dpi=100)
    # three bands, placed explicitly: the rotated class names under (b) need their own room
    cols = min(n, 10)                  # many shots (K-shot): rows of ten
    rows = -(-n // cols)
    g_a = fig.add_gridspec(rows, cols, wspace=0.08, hspace=0.35, left=0.1, right=0.94,
                           top=0.905, bottom=0.7)
    g_bc = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.45], wspace=0.3, left=0.1, right=0.94,
                            top=0.63, bottom=0.38)
    g_d = fig.add_gridspec(1, 1, left=0.1, right=0.94, top=0.25, bottom=0.06)
    fig.suptitle(title or "one-shot learning on chip", fontsize=13, y=0.985)
    fig.text(0.02, 0.935, "(a) support shots, in the order presented (events summed over time, "
             "ON red, OFF blue)", fontsize=11, fontweight="bold", ha="left", va="bottom")

    # (a) shots
    small = n > 5
    for i in range(n):
        ax = fig.add_subplot(g_a[i // cols, i % cols])
        ax.imshow(event_image(shots[i]), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{i + 1}: {names[labels[i]]}" if small else
                     f"shot {i + 1}: {names[labels[i]]}", fontsize=6 if small else 9)
        if rows == 1:
            ax.set_xlabel(f"{int(shots[i].sum())} events", fontsize=6 if small else 8)

    # (b) confusion matrix
    ax = fig.add_subplot(g_bc[0, 0])
    total = int(confusion.sum())
    acc = np.trace(confusion) / total if total else float("nan")
    ax.imshow(confusion, cmap="Blues", vmin=0, vmax=max(confusion.max(), 1))
    for (r, c), v in np.ndenumerate(confusion):
        ax.text(c, r, f"{int(v)}", ha="center", va="center", fontsize=9,
                color="white" if v > 0.6 * max(confusion.max(), 1) else "black")
    ax.set_xticks(range(ways))
    ax.set_yticks(range(ways))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"(b) queries: {total}, accuracy {100 * acc:.1f}%", fontsize=11,
                 fontweight="bold", loc="left")

    # (c) head weight changes
    ax = fig.add_subplot(g_bc[0, 1])
    dw = wa - wb
    lim = float(np.abs(dw).max()) or 1.0
    im = ax.imshow(dw, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto",
                   interpolation="nearest")
    ax.set_yticks(range(ways))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel(f"input (head presynaptic neuron, {dw.shape[1]})")
    changed = np.count_nonzero(dw)
    ax.set_title(f"(c) head weight change, after - before ({changed} of {dw.size} changed)",
                 fontsize=11, fontweight="bold", loc="left")
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label("dw")

    # (d) output spike raster during learning, every pass: the head starts silent, so the
    # first pass is the labelled rows' potentiation; the passes after it show the head firing
    ax = fig.add_subplot(g_d[0, 0])
    T, passes = spikes.shape[1], spikes.shape[0] // n
    span = n * T                        # one pass, shots concatenated
    first = next((p for p in range(passes) if spikes[p * n:(p + 1) * n].any()), None)
    for k in range(passes * n):
        s = k % n
        ax.axhspan(labels[s] - 0.45, labels[s] + 0.45, xmin=k / (passes * n),
                   xmax=(k + 1) / (passes * n), color="#ffe08a", zorder=0)
        t, j = np.nonzero(spikes[k])
        hit = j == labels[s]
        ax.scatter(k * T + t[~hit], j[~hit], marker="|", s=30, color="black", lw=0.7, zorder=2)
        ax.scatter(k * T + t[hit], j[hit], marker="|", s=30, color="#d62728", lw=0.9, zorder=3)
    for p in range(passes):
        if p:
            ax.axvline(p * span - 0.5, color="0.35", lw=1, ls="--", zorder=1)
        right = int(sum(spikes[p * n + s, :, labels[s]].sum() for s in range(n)))
        wrong = int(spikes[p * n:(p + 1) * n].sum()) - right
        ax.text(p * span + span / 2, 1.01, f"pass {p + 1}: {right} / {wrong}"
                + (" (first spikes)" if p == first and passes > 1 else ""),
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.5, passes * span - 0.5)
    ax.set_ylim(ways - 0.5, -0.5)
    ax.set_yticks(range(ways))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xticks([])
    ax.set_xlabel(f"{passes} pass(es) of the {n} shots, {T} steps each (pass k: spikes of the "
                  "shot's labelled neuron / of the others)")
    ax.set_title("(d) output spikes while learning (shaded, red: the shot's labelled neuron)",
                 fontsize=11, fontweight="bold", loc="left", pad=16)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """A matplotlib Figure -> PNG at path via a temporary file in the same folder and os.replace."""
    with atomic_path(path, "figure") as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def continual_figure(res: dict, out_png: str | Path) -> Path:
    """Accuracy over seen classes vs classes seen, and the first five classes' accuracy as
    later classes arrive, one line per row."""
    from matplotlib.figure import Figure     # no pyplot: no global backend state, Agg canvas
    fig = Figure(figsize=(11, 4))
    a, b = fig.subplots(1, 2)
    x = np.arange(1, res["classes"] + 1)
    for name, r in res["rows"].items():
        acc, ci = np.array(r["accuracy"]), np.array([c or 0 for c in r["ci95"]])
        a.plot(x, 100 * acc, label=name)
        a.fill_between(x, 100 * (acc - ci), 100 * (acc + ci), alpha=0.2)
        b.plot(x, 100 * np.array(r["first5"]), label=name)
    a.set(xlabel="classes seen", ylabel="accuracy over seen classes (%)",
          title=f"{res['dataset']}: {res['orders']} orders, {res['shots']}-shot")
    b.set(xlabel="classes seen", ylabel="accuracy on the first 5 classes (%)",
          title="forgetting")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, out_png)
