"""attach-head measured: the on-chip learning head attached to a network trained elsewhere, deployed
5-way 1-shot in sim/'s bit-exact fixed point, beside the prototype ceiling on the same features
and the raw-input prototype, with Lava == sim/ on the first task.

    .venv/bin/python benchmarks/attach_head.py [--network PATH | --checkpoint PATH] [--layers 3,2]
        [--data NAME --pool P --time-pool T] [--tasks 600] [--fit-tasks 40] [--split demo]
        [--seed 0] [--lava-tasks 1] [--json checkpoints/attach_head/attach_head_demo.json]

The network: a bundle or netx file (--network; an imported NIR graph's netx file is one; a
netx file records no data set or encoding: --data, --pool and --time-pool give them, as
attach-head's options do), else the shipped demo checkpoint exported as `metaloihi export`
does (--checkpoint, default checkpoints/demo/theta0.pt). measure() is the same for
benchmarks/nir_end_to_end.py. Per layer K (--layers, the file's netx numbering): attach-head with
its defaults (bridge/attach_head.py: silent 5-way head, its trained head dropped), then fit-soel
(studies/rule_fit.py) on meta-validation tasks of the network's data set, then the same tasks
for every row (studies/ablation.py's task draws, frozen features once per distinct sample, the
head's bit-exact session per task): the attached head with the default rule and with the fitted
rule, the prototype ceiling (cosine) on the spikes entering the head, and the raw-input
prototype; for a bundle also its own head and rule as exported (the reference). The first
--lava-tasks tasks of the first K's fitted learner run on Lava and must equal sim/ in every
spike, v, weight and prediction (exit 1 otherwise).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", help="a bundle or netx file (default: --checkpoint exported)")
    ap.add_argument("--checkpoint", default="checkpoints/demo/theta0.pt")
    ap.add_argument("--layers", default="3,2", help="K values, comma-separated")
    ap.add_argument("--data", default=None, help="data set (default: the bundle's)")
    ap.add_argument("--pool", type=int, default=None, help="a netx file's input encoding: "
                    "frames' spatial pool (attach-head --pool)")
    ap.add_argument("--time-pool", type=int, default=None, help="... and time pool "
                    "(attach-head --time-pool)")
    ap.add_argument("--split", default="demo", help="task split")
    ap.add_argument("--tasks", type=int, default=600)
    ap.add_argument("--fit-tasks", type=int, default=40, help="fit-soel's meta-val tasks")
    ap.add_argument("--queries", type=int, default=10, help="queries per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lava-tasks", type=int, default=1)
    ap.add_argument("--json", default="checkpoints/attach_head/attach_head_demo.json")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import torch
    torch.set_num_threads(1)
    from metaloihi.base.atomic import file_sha256, write_bytes
    t_all, c_all = time.perf_counter(), time.process_time()
    work = Path(tempfile.mkdtemp(prefix="attach-head-"))
    if args.network:
        net = Path(args.network)
        source = {"network": str(net), "network_sha256": file_sha256(net)}
    else:
        from metaloihi.bridge.export import export_bundle, from_checkpoint
        net = work / "network.h5"
        specs, theta0, neurons, rule, meta = from_checkpoint(ROOT / args.checkpoint)
        export_bundle(net, specs, theta0, neurons, rule=rule, meta=meta)
        source = {"checkpoint": args.checkpoint,
                  "checkpoint_sha256": file_sha256(ROOT / args.checkpoint),
                  "exported_as": f"metaloihi export --checkpoint {args.checkpoint}"}
    encoding = None
    if args.pool is not None or args.time_pool is not None:     # as attach-head's CLI records it
        encoding = {"pool": args.pool or 1, "time_pool": args.time_pool or 1, "steps": None}
    out = {"format": "metaloihi.attach_head/1",
           "command": ".venv/bin/python benchmarks/attach_head.py " + " ".join(
               argv if argv is not None else sys.argv[1:]),
           "source": source,
           **measure(net, [int(v) for v in args.layers.split(",")], args.data, args.split,
                     args.tasks, args.fit_tasks, args.queries, args.seed, args.lava_tasks,
                     encoding, work)}
    out["cpu_s"], out["wall_s"] = time.process_time() - c_all, time.perf_counter() - t_all
    path = ROOT / args.json if not Path(args.json).is_absolute() else Path(args.json)
    write_bytes(path, (json.dumps(out, indent=1) + "\n").encode(), "result")
    print(f"wrote {path}")
    return 0 if out["lava_identical"] else 1


def measure(net: Path, ks: list[int], data: str | None, split: str, tasks: int,
            fit_tasks: int, queries: int, seed: int, lava_tasks: int,
            encoding: dict | None = None, work: Path | None = None) -> dict:
    """Per K: attach-head (defaults), fit-soel, the rows of the module docstring on the same
    tasks; Lava == sim/ on the first lava_tasks tasks of the first K's fitted learner.
    data: the data set (None: the bundle's, else digits); encoding: a netx file's (attach-head
    --pool/--time-pool); work: where the learners are written (learner_K{k}[_fit].h5)."""
    import numpy as np
    from metaloihi.bridge.attach_head import attach_head
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.onchip.session import adapt, same_session
    from metaloihi.sim.prototype import prototype_accuracy
    from metaloihi.sim.readout import ci95
    from metaloihi.studies.ablation import (draw_tasks, encoded, frozen_features, head_session,
                                            rule_record)
    from metaloihi.studies.rule_fit import fit_bundle
    work = Path(work or tempfile.mkdtemp(prefix="attach-head-"))
    import h5py
    with h5py.File(net, "r") as f:
        is_bundle = "metaloihi" in f
    ref = read_bundle(net) if is_bundle else None
    name = data or (ref.meta.get("dataset") if ref else None) or "digits"
    ds = load_dataset(name, seed=0)
    ways = 5
    ts = draw_tasks(ds, split, tasks, ways, 1, queries, seed)
    uniq = ts.distinct
    s_at, q_at = np.searchsorted(uniq, ts.support), np.searchsorted(uniq, ts.query)

    def acc(values) -> dict:
        m, c = ci95([float(v) for v in values])
        return {"acc": m, "ci95": None if np.isnan(c) else c}

    def deployed(bundle, feats) -> list[float]:
        return [float(np.mean(head_session(bundle, feats[s_at[i]], ts.support_y[i],
                                           feats[q_at[i]]) == ts.query_y[i]))
                for i in range(len(ts))]

    layers = []
    first = None
    for k in ks:
        c0 = time.process_time()
        learner = work / f"learner_K{k}.h5"
        a = attach_head(net, k, ways, learner, meta={"dataset": name, **(
            {"encoding": encoding} if encoding else {})})
        fitted = work / f"learner_K{k}_fit.h5"
        fit, _ = fit_bundle(learner, out=fitted, tasks=fit_tasks, dataset=ds)
        c_fit = time.process_time() - c0
        b0, b1 = read_bundle(learner), read_bundle(fitted)
        c1 = time.process_time()
        feats = frozen_features(b1, ds, uniq)
        counts = feats.sum(1).astype(np.float64)
        proto = [prototype_accuracy(counts[s_at[i]], ts.support_y[i], counts[q_at[i]],
                                    ts.query_y[i], ways) for i in range(len(ts))]
        d0, d1 = deployed(b0, feats), deployed(b1, feats)
        layers.append({
            "layer": k, "frozen": list(a.kinds), "head_inputs": a.n_in, "vth": a.vth,
            "rule_default": rule_record(b0), "rule_fitted": rule_record(b1), "fit": fit,
            "deployed_default_rule": acc(d0), "deployed_fitted_rule": acc(d1),
            "prototype_features": acc(proto),
            "fitted_minus_ceiling_pp": acc(100 * (np.array(d1) - np.array(proto))),
            "features_mean_spikes": float(counts.mean()),
            "cpu_s": {"attach_and_fit": c_fit, "measure": time.process_time() - c1},
            "per_task_fitted": [round(v, 4) for v in d1]})
        print(f"K={k} ({' -> '.join(a.kinds)}, head {a.n_in}->{ways}): default rule "
              f"{np.mean(d0):.4f}, fitted {np.mean(d1):.4f}, prototype ceiling "
              f"{np.mean(proto):.4f}", flush=True)
        first = first or fitted
    raw = np.concatenate([x.reshape(len(x), x.shape[1], -1).sum(1)
                          for _, x in encoded(read_bundle(first), ds, uniq)]).astype(np.float64)
    proto_raw = [prototype_accuracy(raw[s_at[i]], ts.support_y[i], raw[q_at[i]],
                                    ts.query_y[i], ways) for i in range(len(ts))]
    reference = None
    if ref is not None:
        reference = {"rule": rule_record(ref), "deployed": acc(deployed(
            ref, frozen_features(ref, ds, uniq)))}
    # Lava == sim/ on the first tasks of the first K's fitted learner
    lava = []
    b = read_bundle(first)
    for i in range(lava_tasks):
        xs, xq = (b.encode(np.ascontiguousarray(ds.frames(part)))
                  for part in (ts.support[i], ts.query[i]))
        c0, w0 = time.process_time(), time.perf_counter()
        lv = adapt(b, xs, ts.support_y[i], xq, ts.query_y[i], backend="lava")
        w_lava, c_lava = time.perf_counter() - w0, time.process_time() - c0
        w0 = time.perf_counter()
        sm = adapt(b, xs, ts.support_y[i], xq, ts.query_y[i], backend="sim")
        lava.append({"task": i, "identical": same_session(sm, lv), "accuracy": lv.accuracy,
                     "lava_wall_s": w_lava, "lava_main_cpu_s": c_lava,
                     "sim_wall_s": time.perf_counter() - w0,
                     "samples": int(len(xs) * b.head.passes + len(xq))})
        print(f"Lava task {i}: identical to sim/: {lava[-1]['identical']}, accuracy "
              f"{lv.accuracy:.3f}, Lava {w_lava:.1f} s", flush=True)
    return {
        "dataset": name, "split": split, "ways": ways, "shots": 1,
        "queries": queries, "tasks": tasks, "seed": seed,
        "tasks_sha256": ts.sha256(), "distinct_samples": int(len(uniq)),
        "layers": layers, "prototype_raw": acc(proto_raw), "reference_own_head": reference,
        "lava": lava, "lava_identical": all(r["identical"] for r in lava),
        "notes": "deployed: sim/'s bit-exact session (== Lava); the learner's head silent "
                 "(zero weights) with attach-head's defaults, then fit-soel on meta-val; "
                 "prototype ceilings: cosine nearest prototype on the head's input spike "
                 "counts and on the raw encoded input; cpu_s: this process's CPU seconds "
                 "(Lava's worker processes not included: lava_wall_s)"}


if __name__ == "__main__":
    sys.exit(main())
