"""What made theta0: the ablation table (studies/ablation.py), deployed in sim/'s bit-exact fixed
point on the same 5-way 1-shot tasks for every row: random theta0, stage 1, MAML from random,
stage 1 + stage 2, a longer stage 1 and the same + stage 2 with the deployed session inside (the
shipped theta0s), each with the shipped theta0's on-chip rule and silent head (from its
bundle), beside the prototype ceiling on each body's features and on the raw input.

    .venv/bin/python benchmarks/ablation.py --dataset gestures [--split demo] [--tasks 600]
        [--seed 0] [--rows random,stage1,...] [--json out.json]
        [--threads 1] [--queries 10] [--shots 1] [--check-tasks 2]

--rows: row keys, comma-separated; KEY=CHECKPOINT deploys another checkpoint in that row (its
CPU seconds are then not known). The rows' checkpoints and how each was made:
checkpoints/ablation/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse_rows(text: str) -> tuple[list[str], dict]:
    keys, paths = [], {}
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        key, sep, path = item.partition("=")
        keys.append(key.strip())
        if sep:
            paths[key.strip()] = path.strip()
    return keys, paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=("gestures", "double_digits"),
                    help="the data set (its shipped theta0 gives the rule and head)")
    ap.add_argument("--split", default=None,
                    help="task split (default: demo for gestures, test for double_digits)")
    ap.add_argument("--tasks", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0, help="seed of the tasks")
    ap.add_argument("--rows", default="",
                    help="row keys, comma-separated (default: all of the data set's: random, "
                         "stage1, maml_random, stage1_stage2, then for gestures "
                         "stage1_stage2_deployed, stage1_long and stage1_long_stage2_deployed, "
                         "for double_digits stage1_stage2_remade, stage1_long and "
                         "stage1_long_stage2_deployed); "
                         "KEY=CHECKPOINT replaces a row's checkpoint")
    ap.add_argument("--extra", default="",
                    help="more rows, LABEL=CHECKPOINT comma-separated (a candidate body, "
                         "deployed like the others; its CPU seconds are not known)")
    ap.add_argument("--reference", default=None,
                    help="a checkpoint whose bundle beside it gives every row's rule and head "
                         "(default: the data set's shipped theta0)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--threads", type=int, default=1, help="torch / BLAS / numba threads")
    ap.add_argument("--queries", type=int, default=10, help="queries per class")
    ap.add_argument("--shots", type=int, default=1, help="shots per class")
    ap.add_argument("--check-tasks", type=int, default=2,
                    help="tasks per row also run through onchip.session.adapt (must agree)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)      # before numpy's and numba's first use
    import torch
    torch.set_num_threads(args.threads)
    from metaloihi.studies.ablation import format_table, run_shipped
    keys, paths = parse_rows(args.rows)
    res = run_shipped(args.dataset, tasks=args.tasks, seed=args.seed, keys=keys, paths=paths,
                      split=args.split, queries=args.queries, check_tasks=args.check_tasks,
                      shots=args.shots, extra=parse_rows(args.extra)[1],
                      reference=args.reference,
                      report=lambda s: print(s, file=sys.stderr, flush=True))
    res["command"] = " ".join(["benchmarks/ablation.py", *(argv or sys.argv[1:])])
    res["threads"] = args.threads
    print(format_table(res))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
