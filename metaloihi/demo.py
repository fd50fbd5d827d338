"""`metaloihi demo`, until the five-way one-shot learning demo lands (issue 7): the best
end-to-end path that exists today. One example of each of the five held-out demo gestures
(embedded, generated locally) runs through the paper's conv network on sim/'s bit-exact Loihi 2
model and on Lava's own fixed_pt simulator; the output spikes must be identical."""
from __future__ import annotations

import time

import numpy as np
from rich.console import Console
from rich.table import Table

from metaloihi.errors import UserError

console = Console(stderr=False)


def run_demo(seed: int = 0, steps: int = 100, lava_samples: int = 2) -> dict:
    from metaloihi.datasets import TaskSampler, load_dataset
    from metaloihi.sim import fixed
    from metaloihi.sim.arch import paper_arch
    from metaloihi.sim.random_net import calibrated_network

    if not 1 <= steps <= 100:
        raise UserError(f"--steps must be in 1..100 (the gesture frames have 100 bins), got {steps}")
    with console.status("embedded DVS gestures (generated on first use, ~15 s, then cached)"):
        ds = load_dataset("gestures", seed=0)
    task = TaskSampler(ds, "demo", ways=5, shots=1, queries=0, seed=seed).sample()
    x = (task.support_x.numpy()[:, :steps] > 0)
    names = [ds.class_names[c] for c in task.classes] if hasattr(ds, "class_names") else \
        [str(c) for c in task.classes]
    console.print(f"[bold]metaloihi demo[/bold]: 5 held-out gestures ({', '.join(names)}), "
                  f"{x.shape[1]} steps of 1 ms, input {tuple(x.shape[2:])}")
    console.print("network: paper's 32c5-64c5-128c5 (stride-2 pooling) + 5-way head; random "
                  "theta0 with thresholds calibrated to ~5% firing (meta-trained theta0: issue 5)")
    rng = np.random.default_rng(seed)
    net = calibrated_network(paper_arch(tuple(x.shape[2:]), ways=5), x, rate=0.05, rng=rng)

    t0 = time.perf_counter()
    ours = fixed.run(net, x)
    sim_s = (time.perf_counter() - t0) / len(x)
    table = Table(title="output layer spike counts per class neuron (sim/ vs Lava)")
    table.add_column("gesture")
    table.add_column("sim/ counts")
    table.add_column("Lava counts")
    table.add_column("identical")
    lava_s, all_same = [], True
    from metaloihi.lava_support import LavaUnavailable
    for i in range(len(x)):
        counts = ours["spikes"][-1][i].sum(0)
        lava_counts, same = "-", "-"
        if i < lava_samples:
            try:
                from metaloihi.bridge.lava_net import run_in_lava
                with console.status(f"Lava fixed_pt CPU simulator: sample {i + 1} ..."):
                    t1 = time.perf_counter()
                    lv = run_in_lava(net, x[i], record_uv=False, probe="last")
                    lava_s.append(time.perf_counter() - t1)
                ok = bool(np.array_equal(lv["spikes"][0][0], ours["spikes"][-1][i]))
                all_same &= ok
                lava_counts, same = str(lv["spikes"][0][0].sum(0).tolist()), "yes" if ok else "NO"
            except LavaUnavailable as err:
                console.print(f"[yellow]Lava part skipped:[/yellow] {err}")
                lava_samples = 0
        table.add_row(names[i], str(counts.tolist()), lava_counts, same)
    console.print(table)
    console.print(f"sim/: {sim_s * 1e3:.1f} ms per sample (batch of {len(x)})"
                  + (f"; Lava: {np.mean(lava_s):.1f} s per sample incl. start-up -> "
                     f"{np.mean(lava_s) / sim_s:.0f}x" if lava_s else ""))
    if lava_s and not all_same:
        raise RuntimeError("sim/ and Lava disagree on the demo network: please report this")
    return {"sim_s_per_sample": sim_s, "lava_s_per_sample": lava_s, "identical": all_same,
            "output_spikes": int(ours["spikes"][-1].sum())}
