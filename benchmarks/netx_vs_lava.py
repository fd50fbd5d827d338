"""sim/ against lava-dl's netx on Lava's fixed_pt CPU simulator, on netx files made here with
slayer's exporter, measured side by side in one run:

- pilotnet: PilotNet's shape, an input neuron fed by a 3x66x200 bias image (as lava-dl's netx
  tests feed images), five conv layers (24c5s2, 36c5s2, 48c5s2, 64c3, 64c3), flatten and four
  dense layers (100, 50, 10, 1);
- mnist: a 784-input spike stream into three dense layers (256, 128, 10).
For each: Lava's time per step for one input (its compile and start-up reported apart), sim/'s
for one input and per input in a batch, the ratios, and whether the output layer's spikes of
the Lava sample equal sim/'s (the full s/u/v identity is tests/test_netx_import.py's job).

    .venv/bin/python benchmarks/netx_vs_lava.py [--steps 20] [--batch 64] [--net pilotnet mnist]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import netx_files as nf  # noqa: E402  (test helpers, not in the library)

from metaloihi.bridge import netx_lava  # noqa: E402
from metaloihi.bridge.netx_read import read_netx  # noqa: E402
from metaloihi.sim.network_run import run  # noqa: E402


def pilotnet(path: Path) -> tuple[Path, str]:
    s = nf.slayer()
    p = nf.neuron(threshold=0.2, current_decay=0.5, voltage_decay=0.1)
    c = s.block.cuba
    blocks = [c.Input(p),
              c.Conv(p, 3, 24, 5, stride=2, weight_scale=3),
              c.Conv(p, 24, 36, 5, stride=2, weight_scale=3),
              c.Conv(p, 36, 48, 5, stride=2, weight_scale=3),
              c.Conv(p, 48, 64, 3, weight_scale=3),
              c.Conv(p, 64, 64, 3, weight_scale=3),
              c.Flatten(),
              c.Dense(p, 64 * 1 * 18, 100, weight_scale=3),
              c.Dense(p, 100, 50, weight_scale=3),
              c.Dense(p, 50, 10, weight_scale=3),
              c.Dense(p, 10, 1, weight_scale=3)]
    return nf.export(path, blocks, (3, 66, 200)), "bias"


def mnist(path: Path) -> tuple[Path, str]:
    s = nf.slayer()
    p = nf.neuron(threshold=0.3)
    c = s.block.cuba
    blocks = [c.Input(None, delay_shift=False), c.Dense(p, 784, 256, weight_scale=3),
              c.Dense(p, 256, 128, weight_scale=3), c.Dense(p, 128, 10, weight_scale=3)]
    return nf.export(path, blocks, (784,)), "spikes"


def best_of(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(name: str, path: Path, kind: str, steps: int, batch: int, reps: int) -> dict:
    net = read_netx(path)
    x = nf.rng_input(net.input_shape, steps, seed=1, kind=kind, density=0.2, batch=batch)
    timings: dict = {}
    ref = netx_lava.run_sample(path, net, x[0], record_uv=False, probe="last", timings=timings)
    run(net, x[:1, :2])                                       # load numba's cached kernels
    ours = run(net, x[:1])
    same = np.array_equal(ref["spikes"][0], ours["spikes"][-1])
    one = best_of(lambda: run(net, x[:1]), reps)
    many = best_of(lambda: run(net, x), max(1, reps // 2)) / batch
    if steps < 2:
        raise SystemExit("--steps must be >= 2 (Lava's first step includes its compile)")
    lava_step = timings["rest_s"] / (steps - 1)
    rates = [float(s.mean()) for s in ours["spikes"]]
    print(f"{name}: {len(net.layers)} layers, input {net.input_shape}, {steps} steps; "
          f"firing rates per population {', '.join(f'{r:.3f}' for r in rates)}")
    print(f"  Lava (netx, fixed_pt CPU): {lava_step * 1e3:.1f} ms/step "
          f"after its first step (build {timings['build_s']:.1f} s, first step with compile "
          f"{timings['first_step_s']:.1f} s)")
    print(f"  sim/ one input:     {one / steps * 1e3:.3f} ms/step -> {lava_step * steps / one:.0f}x")
    print(f"  sim/ batch of {batch}: {many / steps * 1e3:.4f} ms/step per input -> "
          f"{lava_step * steps / many:.0f}x")
    print(f"  output spikes of the Lava sample identical to sim/'s: {same}")
    return {"net": name, "lava_ms_per_step": lava_step * 1e3, "ratio_one": lava_step * steps / one,
            "sim_ms_per_step_one": one / steps * 1e3, "sim_ms_per_step_batch": many / steps * 1e3,
            "ratio_batch": lava_step * steps / many, "identical": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--net", nargs="+", default=["pilotnet", "mnist"],
                    choices=["pilotnet", "mnist"])
    args = ap.parse_args()
    makers = {"pilotnet": pilotnet, "mnist": mnist}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.net:
            path, kind = makers[name](Path(tmp) / f"{name}.net")
            bench(name, path, kind, args.steps, args.batch, args.reps)


if __name__ == "__main__":
    main()
