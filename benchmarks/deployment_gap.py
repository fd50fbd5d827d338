"""The deployment gap of a checkpoint: the same 5-way K-shot tasks in float (float network +
float SOEL), in sim/'s bit-exact fixed point (the exported bundle), and on Lava's CPU simulator
(the first --lava-tasks tasks, which must equal fixed bit for bit). The core is
metaloihi.studies.deployment_gap (deployment_gap, format_table); --causes adds the step-by-step
ladder from float to fixed that attributes the gap.

    .venv/bin/python benchmarks/deployment_gap.py --checkpoint PATH [--tasks 100]
        [--lava-tasks 5] [--split demo] [--queries 10] [--seed 0] [--json out.json]
        [--theta T --eta E --target-on N --target-off N] [--head-range R] [--causes]
        [--shots K] [--passes P]

Exit status 1 when Lava's predictions (or spikes, v, weights) differ from fixed's.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from metaloihi.studies.deployment_gap import deployment_gap, format_table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="offline/ checkpoint (.pt)")
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--lava-tasks", type=int, default=5)
    ap.add_argument("--split", default="demo")
    ap.add_argument("--queries", type=int, default=10, help="queries per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--bundle", help="keep the exported bundle here (default: a temp file)")
    ap.add_argument("--theta", type=float,
                    help="SOEL threshold (default: the checkpoint's fit, or the fit-soel fit in "
                         "the bundle beside it; the same for --eta, --target-on, --passes)")
    ap.add_argument("--eta", type=float, help="SOEL eta, float weight units per n x")
    ap.add_argument("--target-on", type=int)
    ap.add_argument("--target-off", type=int)
    ap.add_argument("--head-range", default=None,
                    help="float |w| the head's 8-bit grid edge (mantissa 254) stands for "
                         "(default: the head's max |w|, as bridge/ exports)")
    ap.add_argument("--causes", action="store_true", help="add the float -> fixed ladder")
    ap.add_argument("--shots", type=int, default=1, help="shots per class")
    ap.add_argument("--passes", type=int, default=None,
                    help="support-set presentations (default: the checkpoint's fitted rule)")
    args = ap.parse_args(argv)
    head_range = None if args.head_range is None else float(args.head_range)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or str(Path(tmp) / "gap.h5")
        res = deployment_gap(args.checkpoint, bundle, tasks=args.tasks,
                             lava_tasks=args.lava_tasks, split=args.split, queries=args.queries,
                             seed=args.seed, theta=args.theta, eta=args.eta,
                             target_on=args.target_on, target_off=args.target_off,
                             head_range=head_range, causes=args.causes, shots=args.shots,
                             passes=args.passes,
                             report=lambda s: print(s, file=sys.stderr, flush=True))
    res["command"] = " ".join(["benchmarks/deployment_gap.py", *(argv or sys.argv[1:])])
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0 if res["lava"]["identical_to_fixed"] in (True, None) else 1


if __name__ == "__main__":
    sys.exit(main())
