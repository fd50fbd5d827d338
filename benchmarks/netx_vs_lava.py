"""sim/ against lava-dl's netx on Lava's fixed_pt CPU simulator, on netx files made here with
slayer's exporter, measured side by side in one run:

- pilotnet: PilotNet's shape, an input neuron fed by a 3x66x200 bias image (as lava-dl's netx
  tests feed images), five conv layers (24c5s2, 36c5s2, 48c5s2, 64c3, 64c3), flatten and four
  dense layers (100, 50, 10, 1);
- mnist: a 784-input spike stream into three dense layers (256, 128, 10).
For each: Lava's time per step for one input (its compile and start-up reported apart), sim/'s
for one input and per input in a batch, the ratios, whether the output layer's spikes of the
Lava sample equal sim/'s (the full s/u/v identity is tests/test_bridge_netx_read.py's job), and
the path sim/ took per layer (sim/network_run.py: event-driven, or a dense float32 convolution
for a busy conv).
And the floor: what any exact kernel on this core needs per input and step, from the work the
recorded spikes make (per layer, the cheaper of its synaptic events at the rate of an ideal
event-driven kernel and its synapses at the rate of a one-thread float32 matmul, both rates
measured in this run), and the largest ratio to Lava that floor allows.

    .venv/bin/python benchmarks/netx_vs_lava.py [--steps 20] [--batch 64] [--net pilotnet mnist]
        [--reps 3] [--lava-reps 1] [--batch-threads 2] [--json checkpoints/netx/netx_vs_lava.json]

Everything runs on one thread (OMP_NUM_THREADS=1 MKL_NUM_THREADS=1), sim/ included; with
--batch-threads N (and NUMBA_NUM_THREADS=N) the batch is timed again with sim/ on N threads,
since Lava's runtime already spreads its processes over the cores.

The JSON holds every figure printed, the load average before and after (other work on the
machine slows both sides, not always alike), and "rows" in the report's speed format (per
step: sim_s and lava_s), so `metaloihi report --speed` shows them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from timing import best_of  # noqa: E402  (benchmarks/timing.py, beside this script)
from helpers import netx_files as nf  # noqa: E402  (test helpers, not in the library)

from metaloihi.bridge import netx_lava  # noqa: E402
from metaloihi.bridge.netx_read import read_netx  # noqa: E402
from metaloihi.sim.network_run import run  # noqa: E402


def pilotnet(path: Path) -> tuple[Path, str]:
    s = nf.slayer()
    __import__("torch").manual_seed(0)       # the same network every run
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
    __import__("torch").manual_seed(0)
    p = nf.neuron(threshold=0.3)
    c = s.block.cuba
    blocks = [c.Input(None, delay_shift=False), c.Dense(p, 784, 256, weight_scale=3),
              c.Dense(p, 256, 128, weight_scale=3), c.Dense(p, 128, 10, weight_scale=3)]
    return nf.export(path, blocks, (784,)), "spikes"


def work_per_step(net, x: np.ndarray, spikes: list[np.ndarray]) -> tuple[list, list]:
    """Per layer, per input and step: (synaptic events, i.e. spike x synapse products an
    event-driven kernel must add, exactly, from the recorded spikes; synapses, the multiply-adds
    a dense kernel does)."""
    import torch
    import torch.nn.functional as F
    from metaloihi.sim.arch import ConvSpec
    events, synapses = [], []
    # spikes: the input neuron's (where the net has one) and every layer's
    inputs = spikes[:-1] if len(spikes) > len(net.layers) else [x] + spikes[:-1]
    for layer, s_in in zip(net.layers, inputs):
        spec = layer.spec
        s = torch.from_numpy((np.asarray(s_in) != 0).astype(np.float32))   # [B, T, ...]
        B, T = s.shape[:2]
        if isinstance(spec, ConvSpec):
            c_in, kh, kw = spec.in_shape[0] // spec.groups, *spec.kernel
            ones = torch.ones(spec.out_channels, c_in, kh, kw)
            y = F.conv2d(s.reshape(B * T, *spec.in_shape), ones, stride=spec.stride,
                         padding=spec.padding, dilation=spec.dilation, groups=spec.groups)
            events.append(float(y.sum()) / (B * T))
            synapses.append(float(y[0].numel()) * c_in * kh * kw)
        else:
            n_out = layer.weight.shape[0]
            events.append(float(s.sum()) * n_out / (B * T))
            synapses.append(float(layer.weight.size))
    return events, synapses


def machine_peaks(reps: int = 5) -> dict:
    """This core's rates, measured now: int32 adds of an ideal event-driven kernel (each event
    adds one cached weight row into an accumulator: the inner loop of any exact event-driven
    synapse, with nothing else) and float32 multiply-adds of a large one-thread matmul (a dense
    kernel's ceiling)."""
    import numba as nb
    import torch

    @nb.njit(cache=False)
    def rows_into(acc, w, rows, times):
        for _ in range(times):
            for r in rows:
                for j in range(acc.shape[0]):
                    acc[j] += w[r, j]

    adds = 0.0
    rng = np.random.default_rng(0)
    for n_out in (64, 256, 1024):           # row lengths of the layers here; weights in L2
        w = rng.integers(-255, 256, (256, n_out)).astype(np.int32)
        acc = np.zeros(n_out, np.int32)
        rows = rng.integers(0, 256, 4096)
        times = max(1, (1 << 26) // (len(rows) * n_out))
        rows_into(acc, w, rows, 1)                                # compile
        t = best_of(lambda: rows_into(acc, w, rows, times), reps)
        adds = max(adds, len(rows) * n_out * times / t)
    m = torch.randn(1024, 1024)
    t_mm = best_of(lambda: m @ m, reps)
    return {"int32_adds_per_s": adds, "f32_macs_per_s": 1024 ** 3 / t_mm,
            "int32_gadds_per_s": adds / 1e9, "f32_gmacs_per_s": 1024 ** 3 / t_mm / 1e9,
            "torch_threads": torch.get_num_threads()}



def set_threads(n: int) -> None:
    """sim/'s threads: numba's (the kernels' batch loop) and torch's (its convolutions)."""
    import numba
    import torch
    numba.set_num_threads(n)
    torch.set_num_threads(n)


def bench(name: str, path: Path, kind: str, steps: int, batch: int, reps: int,
          lava_reps: int, peaks: dict, batch_threads: int = 1) -> dict:
    if steps < 2:
        raise SystemExit("--steps must be >= 2 (Lava's first step includes its compile)")
    net = read_netx(path)
    x = nf.rng_input(net.input_shape, steps, seed=1, kind=kind, density=0.2, batch=batch)
    runs = []                  # Lava's sample, best of lava_reps (sim/'s side is a best-of too)
    for _ in range(max(1, lava_reps)):
        timings: dict = {}
        ref = netx_lava.run_sample(path, net, x[0], record_uv=False, probe="last",
                                   timings=timings)
        runs.append(timings)
    timings = min(runs, key=lambda t: t["rest_s"])
    run(net, x[:1, :2])                                       # load numba's cached kernels
    ours = run(net, x[:1])
    same = np.array_equal(ref["spikes"][0], ours["spikes"][-1])
    one = best_of(lambda: run(net, x[:1]), reps)
    many = best_of(lambda: run(net, x), reps) / batch
    many_k = None
    if batch_threads > 1:              # the batch again on more cores (Lava's runtime uses
        set_threads(batch_threads)     # a process per Lava process: it is not one thread)
        many_k = best_of(lambda: run(net, x), reps) / batch
        set_threads(1)
    lava_step = timings["rest_s"] / (steps - 1)
    sample = run(net, x[:8])
    per_events, per_synapses = work_per_step(net, x[:8], sample["spikes"])
    paths = sample["paths"]
    # the floor: each layer at the cheaper of an ideal event kernel and an ideal dense one
    floor = sum(min(e / peaks["int32_adds_per_s"], n / peaks["f32_macs_per_s"])
                for e, n in zip(per_events, per_synapses))
    events, synapses = sum(per_events), sum(per_synapses)
    rates = [float(s.mean()) for s in ours["spikes"]]
    print(f"{name}: {len(net.layers)} layers, input {net.input_shape}, {steps} steps; "
          f"firing rates per population {', '.join(f'{r:.3f}' for r in rates)}")
    print(f"  Lava (netx, fixed_pt CPU): {lava_step * 1e3:.1f} ms/step "
          f"after its first step (build {timings['build_s']:.1f} s, first step with compile "
          f"{timings['first_step_s']:.1f} s)")
    print(f"  sim/ one input:     {one / steps * 1e3:.3f} ms/step -> {lava_step * steps / one:.0f}x")
    print(f"  sim/ batch of {batch}: {many / steps * 1e3:.4f} ms/step per input -> "
          f"{lava_step * steps / many:.0f}x")
    if many_k is not None:
        print(f"  sim/ batch of {batch}, {batch_threads} threads: {many_k / steps * 1e3:.4f} ms/step "
              f"per input -> {lava_step * steps / many_k:.0f}x")
    print(f"  output spikes of the Lava sample identical to sim/'s: {same}")
    print(f"  sim/'s path per layer: {', '.join(paths)}")
    print(f"  work per input and step: {events / 1e6:.2f} M synaptic events, {synapses / 1e6:.2f} M "
          f"synapses; this core's floor {floor * 1e3:.4f} ms/step (each layer's events at "
          f"{peaks['int32_adds_per_s'] / 1e9:.1f} G adds/s or its synapses at "
          f"{peaks['f32_macs_per_s'] / 1e9:.1f} G MAC/s, the smaller) -> at most "
          f"{lava_step / floor:.0f}x; sim/'s batch runs at {events / (many / steps) / 1e9:.2f} G "
          "events/s")
    return {"net": name, "layers": len(net.layers), "input_shape": list(net.input_shape),
            "steps": steps, "batch": batch, "firing_rates": rates,
            "lava_ms_per_step": lava_step * 1e3, "lava_build_s": timings["build_s"],
            "lava_first_step_s": timings["first_step_s"],
            "lava_ms_per_step_each_run": [t["rest_s"] / (steps - 1) * 1e3 for t in runs],
            "sim_reps": reps, "ratio_one": lava_step * steps / one,
            "sim_ms_per_step_one": one / steps * 1e3,
            "sim_ms_per_step_batch": many / steps * 1e3,
            "ratio_batch": lava_step * steps / many, "identical": bool(same),
            "batch_threads": batch_threads,
            "sim_ms_per_step_batch_threads": None if many_k is None else many_k / steps * 1e3,
            "ratio_batch_threads": None if many_k is None else lava_step * steps / many_k,
            "events_per_step": events, "synapses_per_step": synapses, "paths_by_layer": paths,
            "events_per_step_by_layer": per_events, "synapses_per_step_by_layer": per_synapses,
            "floor_ms_per_step": floor * 1e3, "ratio_ceiling": lava_step / floor,
            "sim_events_per_s_batch": events / (many / steps),
            "sim_gevents_per_s_batch": events / (many / steps) / 1e9,
            "events_m_per_step_by_layer": [e / 1e6 for e in per_events],
            "synapses_m_per_step_by_layer": [n / 1e6 for n in per_synapses],
            "events_m_per_step": events / 1e6, "synapses_m_per_step": synapses / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3, help="sim/: best of this many runs")
    ap.add_argument("--lava-reps", type=int, default=1, help="Lava: best of this many runs")
    ap.add_argument("--net", nargs="+", default=["pilotnet", "mnist"],
                    choices=["pilotnet", "mnist"])
    ap.add_argument("--json", type=Path, help="Also write the figures here (atomic).")
    ap.add_argument("--batch-threads", type=int, default=1,
                    help="also time the batch with sim/ on this many threads (run with "
                         "NUMBA_NUM_THREADS at least this; everything else is one thread)")
    args = ap.parse_args()
    set_threads(1)
    makers = {"pilotnet": pilotnet, "mnist": mnist}
    load_before = os.getloadavg()
    peaks = machine_peaks()
    print(f"this core: {peaks['int32_adds_per_s'] / 1e9:.1f} G int32 adds/s (ideal event kernel: cached rows into an accumulator), "
          f"{peaks['f32_macs_per_s'] / 1e9:.1f} G float32 MAC/s (1024^3 matmul)")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.net:
            path, kind = makers[name](Path(tmp) / f"{name}.net")
            results.append(bench(name, path, kind, args.steps, args.batch, args.reps,
                                 args.lava_reps, peaks, args.batch_threads))
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    if args.json is not None:
        from metaloihi.base.atomic import write_bytes
        rows = []
        for r in results:
            rows += [{"what": f"{r['net']}: one input, per step", "identical": r["identical"],
                      "sim_s": r["sim_ms_per_step_one"] / 1e3,
                      "lava_s": r["lava_ms_per_step"] / 1e3},
                     {"what": f"{r['net']}: per input in a batch of {r['batch']}, per step",
                      "identical": r["identical"], "sim_s": r["sim_ms_per_step_batch"] / 1e3,
                      "lava_s": r["lava_ms_per_step"] / 1e3}]
            if r["ratio_batch_threads"] is not None:
                rows.append({"what": f"{r['net']}: per input in a batch of {r['batch']}, "
                                     f"{r['batch_threads']} threads, per step",
                             "identical": r["identical"],
                             "sim_s": r["sim_ms_per_step_batch_threads"] / 1e3,
                             "lava_s": r["lava_ms_per_step"] / 1e3})
        numba_threads = os.environ.get("NUMBA_NUM_THREADS", "unset")
        out = {"command": f"OMP_NUM_THREADS=1 NUMBA_NUM_THREADS={numba_threads} "
                          "MKL_NUM_THREADS=1 .venv/bin/python " + " ".join(["benchmarks/netx_vs_lava.py"]
                                                         + sys.argv[1:]),
               "machine": f"{os.cpu_count()}-core CPU ({platform.machine()}), no GPU; one "
                          "thread (and --batch-threads for the second batch figure)",
               "threads": {k: os.environ.get(k, "unset") for k in
                           ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")},
               "load_average_before": list(load_before), "load_average_after": list(load_after),
               "peaks": peaks, "nets": results, "rows": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(args.json, (json.dumps(out, indent=1) + "\n").encode(), "benchmark JSON")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
