"""sim/ (bit-exact) against Lava's fixed_pt CPU simulator on the same network, in one run.

The paper's 32c5-64c5-128c5 shape on a 2x32x32 input (pooling folded into stride 2) plus a
5-way dense head, 100 steps, thresholds calibrated to ~5% firing per layer. Prints per-sample
times, the ratio for one sample and the ratio per sample for a batch of 64, and checks that the
output spikes of the Lava sample are identical to sim/'s.

    .venv/bin/python benchmarks/sim_vs_lava.py [--steps 100] [--batch 64] [--rate 0.05]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from metaloihi.sim import fixed
from metaloihi.sim.arch import paper_arch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from timing import best_of  # noqa: E402  (benchmarks/timing.py, beside this script)
from helpers.lava_run import run_in_lava  # noqa: E402  (test helpers, not in the library)
from helpers.random_net import calibrated_network  # noqa: E402



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rate", type=float, default=0.05, help="input spike density and target firing rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    specs = paper_arch((2, 32, 32), ways=5)
    x = rng.random((args.batch, args.steps, 2, 32, 32)) < args.rate
    net = calibrated_network(specs, x[:4], rate=args.rate, rng=rng)
    fixed.run(net, x[:1, :2])                      # JIT warm-up, not timed

    lava_t: dict = {}
    lava_out = run_in_lava(net, x[0], record_uv=False, probe="last", timings=lava_t)
    lava_per_step = lava_t["rest_s"] / (args.steps - 1)
    lava_sample = lava_per_step * args.steps
    sim_one = best_of(lambda: fixed.run(net, x[:1], layers="last"), reps=5)
    sim_out = fixed.run(net, x[:1], layers="last")
    sim_batch = best_of(lambda: fixed.run(net, x, layers="last"), reps=3) / args.batch
    identical = bool(np.array_equal(lava_out["spikes"][0], sim_out["spikes"][-1]))
    rates = [float(s.mean()) for s in fixed.run(net, x[:8])["spikes"]]

    fig = {
        "lava_s_per_step": lava_per_step, "lava_s_per_sample": lava_sample,
        "lava_first_step_s (compile+start)": lava_t["first_step_s"],
        "sim_s_per_sample_batch1": sim_one, f"sim_s_per_sample_batch{args.batch}": sim_batch,
        "ratio_one_sample": lava_sample / sim_one,
        f"ratio_per_sample_batch{args.batch}": lava_sample / sim_batch,
        "firing_rates_per_layer": rates, "output_spikes_identical": identical,
    }
    print(f"network: 2x32x32 -> 32c5s2 -> 64c5s2 -> 128c5s2 -> dense 5, {args.steps} steps, "
          f"firing rates {', '.join(f'{r:.3f}' for r in rates)}")
    print(f"Lava fixed_pt CPU : {lava_per_step * 1e3:8.1f} ms/step  {lava_sample:8.3f} s/sample "
          f"(+{lava_t['first_step_s']:.1f} s compile/start, not counted)")
    print(f"sim/ batch 1      : {sim_one * 1e3:8.2f} ms/sample   ratio {lava_sample / sim_one:7.0f}x (target >= 100x)")
    print(f"sim/ batch {args.batch:<6d} : {sim_batch * 1e3:8.2f} ms/sample   ratio {lava_sample / sim_batch:7.0f}x (target >= 1000x)")
    print(f"output spikes identical Lava vs sim/: {identical}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=2)


if __name__ == "__main__":
    main()
