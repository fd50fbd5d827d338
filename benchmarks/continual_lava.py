"""One continual-learning order on Lava's CPU simulator and on sim/: classes of the embedded double
digits (meta-test then meta-val classes, in a random order) arrive one at a time on the deployed
double-digits bundle (the checkpoint exported with the fit of the bundle beside it, as shipped)
widened to --classes head rows, each taught from its shot(s) (the bundle's
passes), the queries of every seen class classified after each arrival. Prints both accuracy
curves, the wall time of each and whether they agree bit for bit (every output spike, head v at
every window's last step, weights after every shot, every step's predictions). Not run in CI.

    .venv/bin/python benchmarks/continual_lava.py [--checkpoint checkpoints/double_digits/theta0.pt]
        [--classes 20] [--queries 1] [--shots 1] [--seed 0] [--label-only] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from metaloihi.bridge.bundle import read_bundle
from metaloihi.base.atomic import write_bytes
from metaloihi.bridge.widen import write_widened
from metaloihi.datasets.registry import load_dataset
from metaloihi.onchip.continual import continual, same_continual
from metaloihi.studies.rule_fit import export_fitted

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints/double_digits/theta0.pt"))
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--queries", type=int, default=1, help="queries per class")
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label-only", action="store_true",
                    help="the rule's label_only variant (the error path teaches the labelled "
                         "row only)")
    ap.add_argument("--json", help="write the curves, times and the verdict here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_fitted(args.checkpoint, Path(tmp) / "dd.h5")
        rows = max(args.classes, read_bundle(Path(tmp) / "dd.h5").net[-1].spec.out_features)
        b = read_bundle(write_widened(Path(tmp) / "dd.h5", Path(tmp) / "wide.h5", rows))
        if args.label_only:
            b = replace(b, head=replace(b.head, rule=replace(b.head.rule, label_only=True)))
        ds = load_dataset(b.meta["dataset"])
        rng = np.random.default_rng(args.seed)
        ids = np.concatenate([ds.split_classes("test"), ds.split_classes("val")])
        xs, xq = [], []
        for c in rng.choice(ids, args.classes, replace=False):
            idx = rng.choice(ds.class_indices(int(c)), args.shots + args.queries, replace=False)
            x = b.encode(ds.frames(np.sort(idx)))
            xs.append(x[:args.shots])
            xq.append(x[args.shots:])
        sm = continual(b, xs, xq, backend="sim")
        print(f"sim/ : {sm.seconds:7.1f} s, {len(sm.labels)} samples "
              f"({len(sm.weights_per_shot)} learning, the rest queries)")
        lv = continual(b, xs, xq, backend="lava")
        print(f"Lava : {lv.seconds:7.1f} s ({lv.seconds / len(lv.labels):.2f} s per sample)")
    print("accuracy over seen classes after each arrival (%):")
    print("  sim/:", np.round(100 * sm.accuracy, 1).tolist())
    print("  Lava:", np.round(100 * lv.accuracy, 1).tolist())
    same = same_continual(lv, sm)
    print(f"identical bit for bit (spikes, v, weights after every shot, predictions): {same}")
    if args.json:
        r = b.head.rule
        res = {"checkpoint": args.checkpoint, "classes": args.classes, "queries": args.queries,
               "shots": args.shots, "seed": args.seed, "label_only": bool(r.label_only),
               "rule": {"mant": r.mant, "exp": r.exp, "theta": r.theta,
                        "target_on": r.target_on, "passes": r.passes},
               "samples": len(lv.labels), "learning_samples": len(lv.weights_per_shot),
               "accuracy": {"sim": sm.accuracy.tolist(), "lava": lv.accuracy.tolist()},
               "seconds": {"sim": sm.seconds, "lava": lv.seconds},
               "lava_s_per_sample": lv.seconds / len(lv.labels), "identical": bool(same)}
        write_bytes(args.json, (json.dumps(res, indent=1) + "\n").encode(), "result JSON")
        print(f"wrote {args.json}")
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
