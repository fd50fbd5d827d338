"""Where `./run demo`'s time goes: the demo as a user runs it (`metaloihi demo`, default options
unless given), with Lava's host calls counted and timed: `run` (Lava steps, including each
pause), `Var.set` (the per-sample return to rest) and `Var.get` (weights and Monitor reads).
Writes a JSON beside the demo's own (the demo's time breakdown + these counts).

Run it alone on the machine: Lava's processes and sim/'s kernels share the cores.

    .venv/bin/python benchmarks/demo_profile.py [--tasks 1] [--sim-tasks 600] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from metaloihi.base.lava_support import require_lava


def instrument() -> dict:
    """Wrap Lava's host calls with counters; returns the live totals."""
    require_lava("lava.magma.core.process.process")
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.process.variable import Var
    totals = {f"{k}_{m}": 0 for k in ("run", "set", "get") for m in ("s", "calls")}

    def wrap(cls, name, key):
        f = getattr(cls, name)

        def timed(self, *a, **kw):
            t = time.perf_counter()
            try:
                return f(self, *a, **kw)
            finally:
                totals[f"{key}_s"] += time.perf_counter() - t
                totals[f"{key}_calls"] += 1
        setattr(cls, name, timed)
    wrap(AbstractProcess, "run", "run")
    wrap(Var, "set", "set")
    wrap(Var, "get", "get")
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1)
    ap.add_argument("--sim-tasks", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/demo_profile")
    ap.add_argument("--json", default=None, help="default: OUT/demo_profile.json")
    args = ap.parse_args()
    totals = instrument()
    from metaloihi.demo import run_demo
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_demo(seed=args.seed, tasks=args.tasks, sim_tasks=args.sim_tasks, out=args.out)
    out = {"command": "benchmarks/demo_profile.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "json"),
           "cores": os.cpu_count(), "wall_s": time.perf_counter() - t0,
           "host_cpu_s": time.process_time() - c0, "lava_host_calls": totals,
           "demo": {k: res[k] for k in ("timings", "on_chip", "sim", "made_by", "rule")}}
    path = Path(args.json or Path(args.out) / "demo_profile.json")
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps({"wall_s": out["wall_s"], **totals, **res["timings"]}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
