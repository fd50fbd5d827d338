"""Stage 2 that matches deployment, its schedule chosen on meta-validation (issue 25).

Each candidate (CANDIDATES) runs stage 2 from a stage-1 theta0 with its fitted rule
(studies/stage2_schedule.py: the deployed session in the inner loop) for a fixed number of
iterations, evaluating meta-val (150 tasks, 10 queries per class, the same tasks throughout)
every --val-every iterations. Run candidates one per process, one thread each:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stage2_schedule.py \
        --checkpoint checkpoints/demo_short/theta0.pt --out runs/stage2/demo --candidate all_3e-4

writes runs/stage2/demo/all_3e-4.json (curve, CPU seconds, best iteration, paired difference to
the start), all_3e-4_last.pt (its last iteration's meta-parameters) and, where it beat the
start, all_3e-4.pt (its best iteration's). Then

    .venv/bin/python benchmarks/stage2_schedule.py --checkpoint ... --out runs/stage2/demo \
        --collect --json checkpoints/stage2/demo_schedule.json --plot checkpoints/stage2/demo_schedule.png

picks the candidate with the best meta-val, re-tests it against the start on FRESH meta-val
tasks (a different seed: the selection's tasks would flatter it) and says whether it wins by a
paired margin (95% CI of the paired difference excludes 0). The JSON holds every curve.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from metaloihi.base.atomic import write_bytes
from metaloihi.offline import seeds
from metaloihi.studies import stage2_schedule as ss

CANDIDATES = ss.CANDIDATES
CONFIRM_SEED = 1000          # the fresh meta-val tasks of the final paired test


def run_one(args) -> None:
    torch.set_num_threads(1)
    start = ss.deployed_start(args.checkpoint)
    c = CANDIDATES[args.candidate]
    if args.iterations:
        c = dataclasses.replace(c, iterations=args.iterations)
    res = ss.run_candidate(start, c, args.val_every, args.val_tasks, args.queries)
    best, last = res.pop("_best_meta"), res.pop("_last_meta")
    res.update(checkpoint=args.checkpoint, rule=start.rule, val_tasks=args.val_tasks,
               queries=args.queries)
    args.out.mkdir(parents=True, exist_ok=True)
    from metaloihi.offline import checkpoint
    # the best iteration's (where one beat the start) and the last one's, each a checkpoint
    # like the start's with its meta-parameters replaced
    for meta, name, it in ((best, c.name, res["best_iteration"]),
                           (last, f"{c.name}_last", c.iterations)):
        if meta is None:
            continue
        st = ss.candidate_state(start, meta, res["candidate"], it)
        checkpoint.save(args.out / f"{name}.pt", st)
    write_bytes(args.out / f"{c.name}.json", (json.dumps(res, indent=1) + "\n").encode(),
                "candidate JSON")
    print(f"{c.name}: best meta-val {res['best_meta_val']:.4f} at iteration "
          f"{res['best_iteration']}; vs start {res['vs_start']['mean_pp']:+.2f} "
          f"+- {res['vs_start']['ci95_pp']:.2f} pp; {res['cpu_s_per_iteration']:.2f} CPU s/it")


def stopped_runs(out: Path, finished: set) -> list[dict]:
    """Candidates stopped before their last iteration (no JSON): their curve as far as its
    log (log_NAME.txt, the lines run_candidate prints) goes, marked "stopped"."""
    import re
    line = re.compile(r"^(\S+): iteration (\d+), ([\d.]+) CPU s, meta-val ([\d.]+) "
                      r"\(start ([\d.]+)\)$")
    runs = []
    for log in sorted(out.glob("log_*.txt")):
        name = log.stem[len("log_"):]
        if name in finished or name not in CANDIDATES:
            continue
        points = [m.groups() for m in map(line.match, log.read_text().splitlines()) if m]
        if not points:
            continue
        curve = [{"iteration": 0, "cpu_s": 0.0, "meta_val": float(points[0][4])}] + [
            {"iteration": int(i), "cpu_s": float(c), "meta_val": float(v)}
            for _, i, c, v, _ in points]
        best = max(curve, key=lambda p: p["meta_val"])
        runs.append({"candidate": dataclasses.asdict(CANDIDATES[name]), "curve": curve,
                     "stopped": f"at iteration {curve[-1]['iteration']} of "
                                f"{CANDIDATES[name].iterations} (its log)",
                     "train_cpu_s": curve[-1]["cpu_s"],
                     "best_iteration": best["iteration"], "best_meta_val": best["meta_val"],
                     "val_tasks": None})
    return runs


def collect(args) -> None:
    torch.set_num_threads(1)
    runs = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    runs += stopped_runs(args.out, {r["candidate"]["name"] for r in runs})
    if not runs:
        raise SystemExit(f"no candidate JSON in {args.out}")
    best = max(runs, key=lambda r: r["best_meta_val"])
    out = {"checkpoint": args.checkpoint, "candidates": runs, "chosen": best["candidate"]["name"],
           "chosen_best_iteration": best["best_iteration"]}
    start = ss.deployed_start(args.checkpoint)
    # why, measured at the start: the ceiling of its features on the same meta-val tasks, and
    # how much of one meta-batch's gradient is signal
    ceiling = ss.prototype_val(start, start.meta, args.val_tasks, args.queries,
                               seeds.validation(0))
    out["start_meta_val"] = runs[0]["curve"][0]["meta_val"]
    out["prototype_ceiling_meta_val"] = float(ceiling.mean())
    out["prototype_raw_meta_val"] = float(ss.prototype_val(
        start, start.meta, args.val_tasks, args.queries, seeds.validation(0), raw=True).mean())
    out["gradient_snr"] = ss.gradient_snr(start, ss.Candidate("all"), tasks=args.snr_tasks,
                                          meta_batches=(4, 16))
    if best["best_iteration"] > 0 and (args.out / f"{best['candidate']['name']}.pt").exists():
        from metaloihi.offline import checkpoint
        cand = checkpoint.load(args.out / f"{best['candidate']['name']}.pt")["meta"]
        _, mc = ss.outer_keys(start, ss.Candidate(**best["candidate"]))
        a = ss.meta_val(start, cand, mc, args.confirm_tasks, args.queries, CONFIRM_SEED)
        b = ss.meta_val(start, start.meta, start.mc, args.confirm_tasks, args.queries,
                        CONFIRM_SEED)
        out["confirm"] = {"tasks": args.confirm_tasks, "seed": CONFIRM_SEED,
                          "candidate": float(a.mean()), "start": float(b.mean()),
                          **ss.paired(a, b)}
        out["ships"] = bool(out["confirm"]["excludes_0"] and a.mean() > b.mean())
    else:
        out["ships"] = False
    print(json.dumps({k: v for k, v in out.items() if k != "candidates"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(args.json, (json.dumps(out, indent=1) + "\n").encode(), "schedule JSON")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for r in runs:
            cv = r["curve"]
            ax.plot([p["cpu_s"] for p in cv], [100 * p["meta_val"] for p in cv], marker="o",
                    ms=3, label=r["candidate"]["name"])
        ax.axhline(100 * runs[0]["curve"][0]["meta_val"], color="k", lw=0.8, ls="--",
                   label="start (stage 1 + fitted rule)")
        ax.axhline(100 * out["prototype_ceiling_meta_val"], color="grey", lw=0.8, ls=":",
                   label="prototype ceiling on the start's features")
        ax.set_xlabel("stage-2 CPU seconds (one thread)")
        ax.set_ylabel(f"meta-val accuracy, deployed session (%), {args.val_tasks} tasks")
        ax.set_title(f"Stage 2 candidates from {Path(args.checkpoint).parent.name}/"
                     f"{Path(args.checkpoint).name}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--candidate", choices=sorted(CANDIDATES))
    ap.add_argument("--iterations", type=int, help="override the candidate's iterations")
    ap.add_argument("--val-every", type=int, default=200)
    ap.add_argument("--val-tasks", type=int, default=150)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--collect", action="store_true")
    ap.add_argument("--confirm-tasks", type=int, default=300)
    ap.add_argument("--snr-tasks", type=int, default=32,
                    help="single-task meta-gradients behind the SNR")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("note: run with OMP_NUM_THREADS=1 (the CPU seconds are one thread's)",
              file=sys.stderr)
    if args.collect:
        collect(args)
    elif args.candidate:
        run_one(args)
    else:
        ap.error("give --candidate NAME or --collect")


if __name__ == "__main__":
    main()
