"""Issue 21's first target, measured: a small conv network trained in snnTorch on the embedded
digits (all 10 classes, a seeded 80/20 split of the samples), exported with snnTorch's own
`export_to_nir`, imported by `metaloihi import`'s code (bridge/nir_import.py), and the deployed
fixed point compared with the snnTorch model it came from.

The snnTorch model uses reset to zero (reset_mechanism="zero", reset_delay=False: what NIR's
v_reset = 0 and Loihi do) and no biases (a bias would start at step 0 in every Loihi layer,
before the layer's delayed input; see bridge/nir_read.py). Lava delays each of the L layers by
one step, so the deployed network runs the input followed by L silent steps: its output at
step t + L is snnTorch's at step t, and its spike count over T + L steps is snnTorch's over T.

Writes a JSON (the command, the figures, CPU seconds) and, when small, the .nir and the
imported netx file beside it. Run:
    .venv/bin/python benchmarks/nir_import.py --out checkpoints/nir/snntorch_digits.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_BIN = 5          # 100 frames of 1 ms -> 20 steps of 5 ms
POOL = 2                   # 34x34 -> 17x17


def data(seed: int):
    """Digits frames as binary spikes [N, 20, 2, 17, 17] (OR over 5 ms and 2x2 pixels)."""
    from metaloihi.datasets import load_dataset
    d = load_dataset("digits")
    f = d.frames(np.arange(len(d))).astype(np.uint8)
    n, t, c, h, w = f.shape
    f = f[:, : t // STEPS_PER_BIN * STEPS_PER_BIN, :, : h // POOL * POOL, : w // POOL * POOL]
    f = f.reshape(n, t // STEPS_PER_BIN, STEPS_PER_BIN, c, h // POOL, POOL, w // POOL, POOL)
    x = f.max(axis=(2, 5, 7)).astype(np.float32)
    y = np.asarray(d.labels, np.int64)
    order = np.random.default_rng(seed).permutation(n)
    cut = int(0.8 * n)
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def leaky(shape, beta: float = 0.9, output: bool = False):
    """snnTorch's Leaky as NIR and Loihi compute it: reset to zero, no reset delay."""
    import snntorch as snn
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.ones(shape),
                     reset_mechanism="zero", reset_delay=False, init_hidden=True, output=output)


def model(beta: float = 0.9, channels: int = 8, side: int = 8, hidden: int | None = None,
          out: int = 10):
    """Conv2d(2, channels, 5, p2) + AvgPool2d(2) + Leaky, Flatten, [Linear(-, hidden) + Leaky,]
    Linear(-, out) + Leaky (no biases); side: the pooled conv output's height and width."""
    n = channels * side * side
    mid = [] if hidden is None else [torch.nn.Linear(n, hidden, bias=False),
                                     leaky((hidden,), beta)]
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, channels, 5, padding=2, bias=False),
        torch.nn.AvgPool2d((2, 2)),
        leaky((channels, side, side), beta),
        torch.nn.Flatten(),
        *mid,
        torch.nn.Linear(hidden or n, out, bias=False),
        leaky((out,), beta, output=True))


def forward(net, x: torch.Tensor):
    """x [B, T, ...] -> (output spike counts [B, 10], output membrane at the last step)."""
    from snntorch import utils
    utils.reset(net)
    counts = 0
    for t in range(x.shape[1]):
        spk, mem = net(x[:, t])
        counts = counts + spk
    return counts, mem


def train(net, x, y, epochs: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        total = 0.0
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            counts, _ = forward(net, xt[idx])
            loss = torch.nn.functional.cross_entropy(counts * 0.5, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        losses.append(total / len(xt))
    return losses


def import_and_gap(net, xte: np.ndarray, yte: np.ndarray, out: Path,
                   lava_samples: int) -> dict:
    """Export `net` with snnTorch's export_to_nir to out.nir, import it (bridge/nir_import.py,
    what `metaloihi import` runs) to out.h5, and compare the deployed integers (sim/,
    bit-exact) and the import's float model with snnTorch on the inputs xte [N, T, ...]
    (labels yte): accuracies, agreements, the per-layer gap, sim/ == Lava on lava_samples."""
    from snntorch.export_nir import export_to_nir
    import nir
    from metaloihi.base.atomic import atomic_path
    from metaloihi.bridge import nir_gap
    from metaloihi.bridge.nir_import import import_nir
    from metaloihi.sim.readout import predict_np
    with torch.no_grad():
        counts, mem = forward(net, torch.from_numpy(xte))
    pred_snn = predict_np(counts.numpy(), mem.numpy())
    graph = export_to_nir(net, torch.zeros(1, *xte.shape[2:]), ignore_dims=[0])
    nir_path = out.with_suffix(".nir")
    with atomic_path(nir_path, "NIR graph") as tmp:
        nir.write(str(tmp), graph)
    imp = import_nir(nir_path, out.with_suffix(".h5"))
    layers = len(imp.net)
    # Lava's per-layer delay: L silent steps after the input (module docstring)
    xp = np.concatenate([xte, np.zeros((len(xte), layers, *xte.shape[2:]), xte.dtype)], axis=1)
    gap = nir_gap.measure(imp, xp, lava_samples=lava_samples)
    pred_fixed, pred_float = np.asarray(gap["pred_fixed"]), np.asarray(gap["pred_float"])
    acc = lambda p: float(np.mean(p == yte))     # noqa: E731
    return {
        "accuracy_snntorch": acc(pred_snn), "accuracy_float_sim": acc(pred_float),
        "accuracy_deployed": acc(pred_fixed),
        "accuracy_drop_pp": 100 * (acc(pred_snn) - acc(pred_fixed)),
        "agreement_deployed_vs_snntorch": float(np.mean(pred_fixed == pred_snn)),
        "agreement_float_sim_vs_snntorch": float(np.mean(pred_float == pred_snn)),
        "agreement_deployed_vs_float_sim": gap["agreement"],
        "layers": gap["layers"], "lava": gap.get("lava"),
        "sizes_bytes": {"nir": os.path.getsize(nir_path),
                        "netx": os.path.getsize(out.with_suffix(".h5"))}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="checkpoints/nir/snntorch_digits.json")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lava-samples", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from metaloihi.base.atomic import write_bytes

    out = Path(args.out)
    cpu0 = time.process_time()
    (xtr, ytr), (xte, yte) = data(args.seed)
    torch.manual_seed(args.seed)            # the initial weights
    net = model()
    losses = train(net, xtr, ytr, args.epochs, args.seed)
    cpu_train = time.process_time() - cpu0
    gap = import_and_gap(net, xte, yte, out, args.lava_samples)
    res = {
        "command": "python benchmarks/nir_import.py " + " ".join(argv or sys.argv[1:]),
        "data": {"dataset": "digits", "train": int(len(xtr)), "test": int(len(xte)),
                 "input": list(xte.shape[2:]), "steps": int(xte.shape[1]),
                 "split": "seeded 80/20 over samples, all 10 classes"},
        "model": "Conv2d(2,8,5,p2) AvgPool2d(2) Leaky | Flatten Linear(512,10) Leaky; "
                 "beta 0.9, threshold 1, reset to zero, no bias",
        "epochs": args.epochs, "train_loss": losses,
        **{k: v for k, v in gap.items() if k != "sizes_bytes"},
        "cpu_seconds_train": cpu_train, "cpu_seconds_total": time.process_time() - cpu0,
        "sizes_bytes": gap["sizes_bytes"],
        "threads": 1,
    }
    write_bytes(out, (json.dumps(res, indent=1) + "\n").encode(), "benchmark JSON")
    print(json.dumps({k: v for k, v in res.items() if k not in ("layers", "train_loss")},
                     indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
