"""The Loihi 2 cost of a bundle: activity measured in sim/ on real tasks of its data set, turned
into energy and latency ranges with studies/loihi2_limits.py's per-op figures, beside the same
network's time on this machine's CPU (sim/ fixed and float) and a TDP-based energy estimate.

One sample runs as the on-chip session runs it (onchip/graph.py, rules/engine/chip.py): a period of
T + 1 steps, the window of T steps then the learning step. Counted per sample:
  spikes       per layer (frozen layers and head), over the window
  synops       presynaptic spikes x their fan-out (studies.chip_resources.fanout: every real
               connection, zero weights included, as a per-synapse memory processes them)
  neuron upd.  neurons x (T + 1): every neuron on chip updates every step
  learning     head synapses the learning engine visits at the epoch end (all n_in x n_out in
               Lava's model) and those whose dw can be non-zero (x1 > 0 and n != 0)
  host <-> chip  what onchip/graph.py sends through its CPU error path (ErrorPath): the
               frozen output spikes chip -> host and back host -> chip (gated, window only), the
               head's spikes chip -> host, n host -> chip (one graded value per head neuron at
               the learning step; non-zero ones counted as events), plus the input spikes
               host -> chip; and the same ports as Lava's dense vectors (values per step).
A learning shot is one presentation of a support sample with its label (the bundle shows the
support set `passes` times); an inference is a query with learning off.

A netx file (lava-dl's exporter, or `metaloihi import`) is costed the same way through the same
description (sim/network.py's SpikingNet; a bundle's net goes through from_fixed): its resources,
and per inference on a given input (or seeded random spikes) its activity measured in sim/
(network_run) over T steps (no learning step), estimates, and sim/'s CPU time (measure_net).
Counted for it besides: a netx input population's spikes (its neurons update every step, it
has no synapses); a recurrent layer's own spikes x n (its second synapse, at the step they are
sent); graded input values as one event each (studies/chip_resources.py says why); host <-> chip
the input events (spikes or graded values; for an input population, the bias values written:
the first step's non-zero ones and every change after) and the last population's spikes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.studies.chip_resources import (LayerResources, as_dicts, as_net, fanout, fits,
                                              layer_resources)
from metaloihi.studies.loihi2_limits import CLP_SNN, CpuPower, Limits, OpCosts


@dataclass
class SampleActivity:
    """Per-sample activity of one kind of sample ([S] arrays, one entry per sample)."""
    steps: int
    input_spikes: np.ndarray
    spikes: np.ndarray               # [S, layers]
    synops: np.ndarray               # [S, layers]: into layer l
    synops_per_step: np.ndarray      # [S, T + 1, layers]
    neuron_updates: np.ndarray       # [layers] per sample
    learn_all: int                   # head synapses visited per learning epoch (0: inference)
    learn_nonzero: np.ndarray        # [S]
    msgs_events: dict                # name -> [S]
    msgs_dense: int                  # values on the error path's ports per sample

    def mean(self) -> dict:
        return {"steps": self.steps, "input_spikes": float(self.input_spikes.mean()),
                "spikes": self.spikes.mean(0).tolist(), "synops": self.synops.mean(0).tolist(),
                "neuron_updates": self.neuron_updates.tolist(),
                "learning_updates_all": self.learn_all,
                "learning_updates_nonzero": float(self.learn_nonzero.mean()),
                "host_chip_events": {k: float(v.mean()) for k, v in self.msgs_events.items()},
                "host_chip_dense_values": self.msgs_dense, "samples": int(len(self.spikes))}


def net_activity(net, x: np.ndarray, pops: list[np.ndarray], extra_steps: int = 0):
    """Per-sample spikes [S, P], synaptic ops per step [S, T + extra_steps, P] and neuron
    updates [P] of net (a SpikingNet) on input x [S, T, *in], given every population's spikes
    pops[p] [S, T, ...] (P = netx input population, if any, then the layers)."""
    S, T = x.shape[:2]
    off = 1 if net.input_neuron is not None else 0
    events = [(np.asarray(p).reshape(S, T, -1) != 0) for p in pops]
    per_step = np.zeros((S, T + extra_steps, len(pops)), np.int64)
    pre = events[0] if off else (np.asarray(x).reshape(S, T, -1) != 0)
    for i, layer in enumerate(net.layers):
        src = pre if i == 0 else events[off + i - 1]
        # float64 sums are exact here (counts far below 2^53)
        ops = src.astype(np.float64) @ fanout(layer.spec).astype(np.float64)
        if layer.weight_rec is not None:              # its own spikes, fan-out n
            ops = ops + events[off + i].sum(2) * layer.n_out
        per_step[:, :T, off + i] = np.rint(ops).astype(np.int64)
    spikes = np.stack([e.reshape(S, -1).sum(1) for e in events], 1)
    sizes = ([int(np.prod(net.input_shape))] if off else []) + [l.n_out for l in net.layers]
    return spikes, per_step, np.array([n * (T + extra_steps) for n in sizes])


def sample_activity(bundle, x: np.ndarray, head_spikes: np.ndarray, labels: np.ndarray,
                    rule) -> SampleActivity:
    """Activity of samples x [S, T, *in] (bool) through bundle.net; head_spikes [S, T, n_out]
    as the session computed them (learning changes the head between samples); labels[s] >= 0
    for a learning shot (n from sf.quantised_error), -1 for an inference."""
    from metaloihi.sim import fixed
    from metaloihi.rules.soel.chip import quantised_error

    net = as_net(bundle.net)
    S, T = x.shape[:2]
    frozen = fixed.run(bundle.frozen, x, layers="all")["spikes"] if bundle.frozen else []
    post = list(frozen) + [np.asarray(head_spikes, bool)]
    spikes, per_step, updates = net_activity(net, x, post, extra_steps=1)  # + learning step
    last_in = (list(frozen) or [x])[-1].reshape(S, T, -1)
    n_in, n_out = net.layers[-1].spec.in_features, net.layers[-1].spec.out_features
    counts = post[-1].sum(1)
    x1_on = last_in.any(1).sum(1)
    learning = np.asarray(labels) >= 0
    n = np.array([quantised_error(c, int(lab), rule) for c, lab in zip(counts, labels)])
    learn_nonzero = np.where(learning, x1_on * (n != 0).sum(1), 0)
    frozen_out = last_in.reshape(S, -1).sum(1)
    events = {"input spikes host->chip": x.reshape(S, -1).sum(1),
              "frozen output spikes chip->host": frozen_out,
              "gated spikes host->chip": frozen_out,
              "head spikes chip->host": counts.sum(1),
              "n host->chip (non-zero)": np.where(learning, (n != 0).sum(1), 0)}
    return SampleActivity(steps=T + 1, input_spikes=x.reshape(S, -1).sum(1), spikes=spikes,
                          synops=per_step.sum(1), synops_per_step=per_step,
                          neuron_updates=updates,
                          learn_all=n_in * n_out if learning.any() else 0,
                          learn_nonzero=learn_nonzero, msgs_events=events,
                          msgs_dense=(2 * n_in + 2 * n_out) * (T + 1))


def inference_activity(net, x: np.ndarray, pops: list[np.ndarray]) -> SampleActivity:
    """Activity of a netx network's inferences: x [S, T, *in] as sim.network_run.run takes it,
    pops its per-population spikes."""
    S, T = x.shape[:2]
    spikes, per_step, updates = net_activity(net, x, pops)
    flat = np.asarray(x).reshape(S, T, -1)
    if net.input_neuron is not None:                  # values the host writes (bias, a_in)
        inp = (flat[:, 0] != 0).sum(1) + (flat[:, 1:] != flat[:, :-1]).sum((1, 2))
        key = "input values written host->chip"
    else:
        inp = (flat != 0).sum((1, 2))
        key = "input events host->chip"
    out = np.asarray(pops[-1]).reshape(S, -1)
    n_in, n_out = flat.shape[2], out.shape[1] // T
    return SampleActivity(steps=T, input_spikes=inp, spikes=spikes, synops=per_step.sum(1),
                          synops_per_step=per_step, neuron_updates=updates, learn_all=0,
                          learn_nonzero=np.zeros(S, np.int64),
                          msgs_events={key: inp, "output spikes chip->host":
                                       (out != 0).sum(1)},
                          msgs_dense=(n_in + n_out) * T)


def _range(act: SampleActivity, res: list[LayerResources], c: OpCosts) -> dict:
    """Energy (J) and latency (s) per sample, low and high, from per-op figures."""
    g = c.loihi2_gain.value
    syn, nu = act.synops.sum(1).mean(), act.neuron_updates.sum()
    spk = act.spikes.sum(1).mean()
    learn_lo, learn_hi = act.learn_nonzero.mean(), act.learn_all
    e_lo = (syn * c.synop_pj.value + nu * c.neuron_update_pj[0].value + spk * c.spike_pj.value
            + learn_lo * c.syn_update_pj.value) / g
    e_hi = (syn * c.synop_pj.value + nu * c.neuron_update_pj[1].value + spk * c.spike_pj.value
            + learn_hi * c.syn_update_pj.value)
    cores = np.array([r.cores for r in res], float)
    neurons = np.array([r.neurons for r in res], float)
    work = act.synops_per_step.mean(0) / cores               # [T + 1, layers] synops per core

    def latency(nu_ns, barrier_ns, learn):
        # every core works in parallel within a step, the step ends at the mesh barrier
        step = (work * c.synop_ns.value + neurons / cores * nu_ns).max(1) + barrier_ns
        return step.sum() + learn * c.syn_update_ns.value / cores[-1]

    t_lo = latency(c.neuron_update_ns[0].value, c.barrier_ns[0].value, learn_lo) / g
    t_hi = latency(c.neuron_update_ns[1].value, c.barrier_ns[1].value, learn_hi)
    return {"energy_J": [e_lo * 1e-12, e_hi * 1e-12], "latency_s": [t_lo * 1e-9, t_hi * 1e-9]}


def cpu_times(bundle, x: np.ndarray, repeats: int = 3) -> dict:
    """Seconds per inference (batch of 1, median over samples and repeats) of sim/'s fixed
    point model (sim.fixed.run) and its float model (sim.float_lif.run, float32, no grad)."""
    import torch

    from metaloihi.sim import fixed, float_lif
    from metaloihi.sim.mapping import fixed_to_float

    specs, params, neurons = fixed_to_float(bundle.net, bundle.scales, dtype=torch.float32)
    fixed.run(bundle.net, x[:1], layers="last")               # compile the numba kernels
    tf, tl = [], []
    with torch.no_grad():
        float_lif.run(specs, params, neurons, torch.from_numpy(x[:1].astype(np.float32)))
        for _ in range(repeats):
            for s in x:
                t0 = time.perf_counter()
                fixed.run(bundle.net, s[None], layers="last")
                t1 = time.perf_counter()
                float_lif.run(specs, params, neurons, torch.from_numpy(s[None].astype(
                    np.float32)))
                tl.append(time.perf_counter() - t1)
                tf.append(t1 - t0)
    return {"fixed_s": float(np.median(tf)), "float_s": float(np.median(tl))}


def measure(bundle_path: str | Path, dataset: str | None = None, split: str = "test",
            tasks: int = 3, ways: int | None = None, shots: int = 1, queries: int = 2,
            seed: int = 0, lim: Limits | None = None, costs: OpCosts | None = None,
            cpu: CpuPower | None = None, on_task=None, root: str | Path | None = None) -> dict:
    """Everything `metaloihi cost` prints: resources, measured activity per inference and per
    learning shot over `tasks` tasks of the bundle's data set, estimates, CPU times."""
    import os

    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.datasets.tasks import encoded_task
    from metaloihi.onchip.session import adapt
    from metaloihi.studies.chip_resources import head_state

    lim, costs, cpu = lim or Limits(), costs or OpCosts(), cpu or CpuPower()
    if tasks < 1:
        raise UserError(f"--tasks must be >= 1, got {tasks}")
    path = Path(bundle_path)
    if not path.is_file():
        raise UserError(f"bundle {str(path)!r} does not exist")
    b = read_bundle(path)
    res = layer_resources(b.net, lim, head=True)
    n_out = b.net[-1].spec.out_features
    ways = n_out if ways is None else ways
    if ways != n_out:
        raise UserError(f"--ways={ways} but the bundle's head has {n_out} output neurons")
    dataset = dataset or b.meta.get("dataset")
    if not dataset:
        raise UserError(f"bundle {str(path)!r} names no data set (meta 'dataset'); give "
                        "--dataset")
    ds = load_dataset(dataset, seed=seed, root=root)
    b.encode(np.zeros((0, *ds.frame_shape), np.uint8))       # refuses frames it can't take
    rng = np.random.default_rng(seed)
    learn, infer, cpu_x, session_s, rule = [], [], [], [], None
    for k in range(tasks):
        t = encoded_task(ds, split, ways, shots, queries, rng, b.encoding)
        xs, ys = np.asarray(t.support_x) != 0, np.asarray(t.support_y, np.int64)
        xq, yq = np.asarray(t.query_x) != 0, np.asarray(t.query_y, np.int64)
        r = adapt(path, xs, ys, xq, yq, backend="sim")
        rule = r.rule
        n_learn = len(r.weights_per_shot)
        passes = n_learn // max(len(xs), 1)
        x_all = np.concatenate([xs] * passes + [xq])
        lab = np.concatenate([ys] * passes + [np.full(len(xq), -1)])
        learn.append((x_all[:n_learn], r.head_spikes[:n_learn], lab[:n_learn]))
        infer.append((x_all[n_learn:], r.head_spikes[n_learn:], lab[n_learn:]))
        cpu_x.append(xq)
        session_s.append(r.seconds / len(x_all))
        if on_task is not None:
            on_task(k)
    out_act = {}
    for name, parts in (("inference", infer), ("learning_shot", learn)):
        x = np.concatenate([p[0] for p in parts])
        act = sample_activity(b, x, np.concatenate([p[1] for p in parts]),
                              np.concatenate([p[2] for p in parts]), rule)
        out_act[name] = (act, _range(act, res, costs))
    t_cpu = cpu_times(b, np.concatenate(cpu_x)[:4])
    watts = cpu.watts_per_core
    shot = out_act["learning_shot"][1]
    passes = n_learn // max(shots * ways, 1)
    per_new_class = {k: [v * passes for v in shot[k]] for k in shot}
    return {
        "bundle": str(path), "dataset": dataset, "split": split, "tasks": tasks,
        "ways": ways, "shots": shots, "queries": queries, "seed": seed, "passes": passes,
        "window": int(rule.window), "dw": rule.dw_string(),
        "resources": {"layers": as_dicts(res), "totals": fits(res, lim),
                      "head_state": head_state(b.net, rule.dw_string(), lim)},
        "activity": {k: v[0].mean() for k, v in out_act.items()},
        "estimate": {k: v[1] for k, v in out_act.items()},
        "estimate_per_shot_all_passes": per_new_class,
        "cpu": {**t_cpu, "session_per_sample_s": float(np.median(session_s)),
                "watts_per_core": list(watts),
                "energy_fixed_J": [t_cpu["fixed_s"] * w for w in watts],
                "energy_float_J": [t_cpu["float_s"] * w for w in watts],
                "model": _cpu_model(), "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
                "source": cpu.source},
        "anchor": {**CLP_SNN, "ratio_latency": [x / (CLP_SNN["latency_ms"] * 1e-3)
                                                for x in shot["latency_s"]],
                   "ratio_energy": [x / (CLP_SNN["energy_mJ"] * 1e-3)
                                    for x in shot["energy_J"]]},
        "limits": {k: vars(f) for k, f in lim.rows()},
        "op_costs": {k: vars(f) for k, f in costs.rows()},
    }


def random_input(net, steps: int, samples: int, density: float, seed: int
                 ) -> tuple[np.ndarray, str]:
    """A seeded input [samples, steps, *in] for a netx network, and what it is: spikes at
    `density`; graded values (net.graded_input) 1..7 at `density`; for an input population, a
    bias image held over the steps, mantissas uniform in 0..2 vth (capped at 13 bits), from
    never firing to firing about every step (an SDNN input: values 0..255, held)."""
    from metaloihi.sim.network import Cuba
    rng = np.random.default_rng(seed)
    shape = (samples, steps, *net.input_shape)
    if net.input_neuron is not None and not isinstance(net.input_neuron, Cuba):
        img = rng.integers(0, 256, (samples, 1, *net.input_shape))    # an SDNN input (Delta)
        return np.repeat(img, steps, axis=1), (f"random input values 0..255 (seed {seed}) "
                                               f"held {steps} steps at the input Delta")
    if net.input_neuron is not None:
        hi = min(2 * int(net.input_neuron.vth), L.BIAS_MANT_MAX)
        img = rng.integers(0, hi + 1, (samples, 1, *net.input_shape))
        return np.repeat(img, steps, axis=1), (f"random bias image (seed {seed}), mantissas "
                                               f"0..{hi} held {steps} steps")
    x = rng.random(shape) < density
    if net.graded_input:
        return x * rng.integers(1, 8, shape), (f"random graded values 1..7 at density "
                                               f"{density:g} (seed {seed})")
    return x, f"random spikes at density {density:g} (seed {seed})"


def measure_net(path: str | Path, x: np.ndarray | None = None, steps: int = 20,
                samples: int = 4, density: float = 0.2, seed: int = 0,
                lim: Limits | None = None, costs: OpCosts | None = None,
                cpu: CpuPower | None = None, input_name: str | None = None,
                **netx_kw) -> dict:
    """`metaloihi cost NET.net`: resources, activity per inference measured in sim/ on x [S, T,
    *in] (or random_input), Loihi 2 estimates, sim/'s CPU time. netx_kw: read_netx's
    reset_interval, reset_offset, input_message_bits."""
    import os

    from metaloihi.bridge.netx_read import read_netx
    from metaloihi.sim.network_run import run

    lim, costs, cpu = lim or Limits(), costs or OpCosts(), cpu or CpuPower()
    net = read_netx(path, **netx_kw)
    if x is None:
        if steps < 1 or samples < 1 or not 0 <= density <= 1:
            raise UserError(f"--steps {steps} and --samples {samples} must be >= 1, --density "
                            f"{density} in 0..1")
        x, what = random_input(net, steps, samples, density, seed)
    else:
        what = f"given input {input_name or 'array'}"
    pops = run(net, x)["spikes"]
    act = inference_activity(net, x, pops)
    res = layer_resources(net, lim)
    est = _range(act, res, costs)
    run(net, x[:1])                                           # numba's kernels loaded
    one = []
    for s in x[:4]:
        t0 = time.perf_counter()
        run(net, s[None])
        one.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    run(net, x)
    batch = (time.perf_counter() - t0) / len(x)
    watts = cpu.watts_per_core
    t_one = float(np.median(one))
    return {
        "network": str(path), "kind": "netx", "input": what, "samples": int(len(x)),
        "steps": int(x.shape[1]), "netx_options": netx_kw,
        "populations": [name for name, _ in net.populations],
        "resources": {"layers": as_dicts(res), "totals": fits(res, lim)},
        "activity": {"inference": act.mean()}, "estimate": {"inference": est},
        "cpu": {"sim_s": t_one, "sim_batch_s_per_input": batch,
                "energy_sim_J": [t_one * w for w in watts], "watts_per_core": list(watts),
                "model": _cpu_model(), "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
                "source": cpu.source},
        "limits": {k: vars(f) for k, f in lim.rows()},
        "op_costs": {k: vars(f) for k, f in costs.rows()},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
