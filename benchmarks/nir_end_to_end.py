"""Issue 21's second target, end to end: a network trained in snnTorch learns new classes on chip.

1. A small conv network (benchmarks/nir_import.py's model with a hidden dense layer) trained in
   snnTorch on the embedded gestures' meta-train classes only (24 classes; per class a seeded
   80/20 split of the samples: held-out samples of the training classes), one CPU thread.
2. Exported with snnTorch's `export_to_nir`, imported (bridge/nir_import.py, `metaloihi
   import`), and the deployed integers compared with snnTorch on the held-out samples
   (benchmarks/nir_import.py's import_and_gap: agreement, accuracy drop, per-layer gap,
   sim/ == Lava on the netx file).
3. attach-head at the penultimate layer (the hidden dense layer), 5 ways, the encoding the
   network was trained on; fit-soel on the val split; then 5-way 1-shot on the demo split
   (5 gestures never seen in training or validation) on --tasks tasks in sim/, beside the
   prototype ceiling on the same features and the raw-input prototype, with Lava == sim/ on
   the first task (benchmarks/attach_head.py's measure).
4. The commands a user types (`metaloihi import`, `attach-head`, `fit-soel`, `adapt`), run
   in-process on the shipped files; what each prints is kept in the JSON (docs/nir.md shows it).

Writes the JSON (every figure, the command) and, when each is under 400 KB, the .nir, the
imported netx file and the learner bundles beside it. Run:
    .venv/bin/python benchmarks/nir_end_to_end.py --out checkpoints/nir/snntorch_gestures.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import attach_head as attach_bench  # noqa: E402  (benchmarks/attach_head.py)
import nir_import as nir_bench  # noqa: E402      (benchmarks/nir_import.py)

ROOT = HERE.parent
SHIP_MAX = 400 * 1024              # files shipped beside the JSON when smaller


def data(split: str, pool: int, time_pool: int, seed: int):
    """The gestures of `split`, encoded as the learner encodes them (datasets/encoding.py):
    per class a seeded 80/20 split of its samples -> ((x, y) train, (x, y) held out), labels
    0..n-1 in the split's class order, and the class ids."""
    from metaloihi.datasets import load_dataset
    from metaloihi.datasets.encoding import Encoding, encode
    from metaloihi.datasets.framesets import split_pools
    ds = load_dataset("gestures", seed=0)
    classes = ds.split_classes(split)
    idx = np.flatnonzero(np.isin(ds.labels, classes))
    pools = split_pools(ds.labels[idx], {"train": 0.8, "test": 0.2}, seed)
    label = {int(c): i for i, c in enumerate(classes)}
    enc = Encoding(pool=pool, time_pool=time_pool)

    def xy(part):
        i = idx[part]
        return (encode(ds.frames(i), enc).astype(np.float32),
                np.array([label[int(c)] for c in ds.labels[i]], np.int64))
    return xy(pools["train"]), xy(pools["test"]), classes


def penultimate(path: Path) -> int:
    """The netx layer index of the network's penultimate population (flatten skipped)."""
    import h5py
    with h5py.File(path, "r") as f:
        kinds = [f["layer"][str(i)]["type"][()][0].decode() for i in range(len(f["layer"]))]
    pops = [i for i, k in enumerate(kinds) if k not in ("input", "flatten")]
    return pops[-2]


def cli_run(argv: list[str]) -> dict:
    """One `metaloihi` command in-process: its argv (as `./run ...`), exit code and output."""
    from metaloihi import cli
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        try:
            cli.main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    res = {"command": "./run " + " ".join(str(a) for a in argv), "exit": code,
           "output": buf.getvalue(), "wall_s": time.perf_counter() - t0}
    print(res["command"] + "\n" + res["output"], flush=True)
    if code:
        raise SystemExit(f"{res['command']} exited {code}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="checkpoints/nir/snntorch_gestures.json")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--pool", type=int, default=2, help="frames' spatial pool (32 -> 16)")
    ap.add_argument("--time-pool", type=int, default=5, help="frames' time pool (100 -> 20)")
    ap.add_argument("--tasks", type=int, default=600)
    ap.add_argument("--fit-tasks", type=int, default=40, help="fit-soel's meta-val tasks")
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--lava-samples", type=int, default=1, help="held-out inputs Lava runs "
                    "through the imported netx file")
    ap.add_argument("--lava-tasks", type=int, default=1, help="tasks of the fitted learner "
                    "Lava runs (at the end)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch.set_num_threads(1)
    from metaloihi.base.atomic import write_bytes

    out = Path(args.out)
    out = out if out.is_absolute() else ROOT / out
    cpu0, wall0 = time.process_time(), time.perf_counter()
    (xtr, ytr), (xte, yte), classes = data("train", args.pool, args.time_pool, args.seed)
    side = xtr.shape[-1] // 2                                   # after the conv's AvgPool2d(2)
    torch.manual_seed(args.seed)                                # the initial weights
    net = nir_bench.model(channels=args.channels, side=side, hidden=args.hidden,
                          out=len(classes))
    losses = nir_bench.train(net, xtr, ytr, args.epochs, args.seed)
    cpu_train = time.process_time() - cpu0
    print(f"trained: {args.epochs} epochs, {cpu_train:.1f} CPU s, loss {losses[-1]:.4f}",
          flush=True)
    gap = nir_bench.import_and_gap(net, xte, yte, out, args.lava_samples)
    netx = out.with_suffix(".h5")
    k = penultimate(netx)
    print(f"import: agreement {gap['agreement_deployed_vs_snntorch']:.4f}, accuracy "
          f"{gap['accuracy_snntorch']:.4f} -> {gap['accuracy_deployed']:.4f}", flush=True)

    # the commands a user types, on the shipped files (the learners written to a temp dir)
    work = Path(tempfile.mkdtemp(prefix="nir-e2e-"))
    learner, fitted = work / "learner.h5", work / "fitted.h5"
    rel = lambda p: os.path.relpath(p, ROOT)         # noqa: E731
    cli = [
        cli_run(["import", rel(out.with_suffix(".nir")), "--out", work / "net.h5",
                 "--lava-samples", 0]),
        cli_run(["attach-head", rel(netx), "--layer", k, "--ways", 5, "--out", learner,
                 "--data", "gestures", "--pool", args.pool, "--time-pool", args.time_pool]),
        cli_run(["adapt", learner, "--split", "demo"]),
        cli_run(["fit-soel", learner, "--out", fitted, "--tasks", args.fit_tasks]),
        cli_run(["adapt", fitted, "--split", "demo"])]
    same_netx = _same_layers(work / "net.h5", netx)

    # 5-way 1-shot on the demo split, every row on the same tasks; Lava at the end
    encoding = {"pool": args.pool, "time_pool": args.time_pool, "steps": None}
    meas = attach_bench.measure(netx, [k], "gestures", "demo", args.tasks, args.fit_tasks,
                                args.queries, args.seed, args.lava_tasks, encoding, work)
    lay = meas["layers"][0]
    # `adapt --split demo` (seed 0) is the first task of the stream: the same accuracy
    first = [float(c["output"].split("accuracy ")[1].split()[0]) for c in cli[2::2]]
    first_task = {"adapt_default": first[0], "adapt_fitted": first[1],
                  "measure_fitted_task0": lay["per_task_fitted"][0]}
    shipped = {}
    for name, src in (("nir", out.with_suffix(".nir")), ("netx", netx),
                      ("learner", learner), ("learner_fitted", fitted)):
        size = os.path.getsize(src)
        dst = out.with_name(out.stem + {"nir": ".nir", "netx": ".h5", "learner": "_learner.h5",
                                        "learner_fitted": "_learner_fitted.h5"}[name])
        if size < SHIP_MAX:
            if src != dst:
                shutil.copyfile(src, dst)
            shipped[name] = {"path": rel(dst), "bytes": size}
        else:
            shipped[name] = {"path": None, "bytes": size, "why": "over 400 KB: not shipped"}
            if src == dst:
                shutil.move(src, work / src.name)
    res = {
        "format": "metaloihi.nir_end_to_end/1",
        "command": ".venv/bin/python benchmarks/nir_end_to_end.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "data": {"dataset": "gestures", "train_classes": [int(c) for c in classes],
                 "train": int(len(xtr)), "held_out": int(len(xte)),
                 "input": list(xtr.shape[2:]), "steps": int(xtr.shape[1]),
                 "encoding": encoding,
                 "split": "the 24 meta-train classes only; per class a seeded 80/20 split of "
                          "its 30 samples (datasets.framesets.split_pools)"},
        "model": f"Conv2d(2,{args.channels},5,p2) AvgPool2d(2) Leaky | Flatten "
                 f"Linear({args.channels * side * side},{args.hidden}) Leaky | "
                 f"Linear({args.hidden},{len(classes)}) Leaky; beta 0.9, threshold 1, reset "
                 "to zero, no bias",
        "epochs": args.epochs, "seed": args.seed, "train_loss": losses,
        "cpu_seconds_train": cpu_train, "threads": 1,
        "import": {k2: v for k2, v in gap.items()},
        "import_cli_equals_benchmark": same_netx,
        "head_layer": k,
        "attach_head": meas,
        "first_task": first_task,
        "cli": cli,
        "shipped": shipped,
        "cpu_seconds_total": time.process_time() - cpu0,
        "wall_seconds_total": time.perf_counter() - wall0,
        "notes": "import: snnTorch (float32, as trained) against the deployed integers "
                 "(sim/, == Lava) on the held-out samples of the training classes; "
                 "attach_head: benchmarks/attach_head.py's rows on the demo split; cpu "
                 "seconds: this process (Lava's workers not counted)"}
    write_bytes(out, (json.dumps(res, indent=1) + "\n").encode(), "benchmark JSON")
    print(f"wrote {out}")
    ok = (meas["lava_identical"] and (gap["lava"] or {}).get("identical", True) and same_netx
          and first[1] == round(lay["per_task_fitted"][0], 3))
    return 0 if ok else 1


def _same_layers(a: Path, b: Path) -> bool:
    """Whether two netx files hold the same layer/ group (the CLI's import == the API's)."""
    import h5py

    def items(path):
        with h5py.File(path, "r") as f:
            out = {}
            f["layer"].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(
                o, h5py.Dataset) else None)
            return out
    x, y = items(a), items(b)
    return x.keys() == y.keys() and all(np.array_equal(x[n], y[n]) for n in x)


if __name__ == "__main__":
    raise SystemExit(main())
