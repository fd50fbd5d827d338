"""`metaloihi cost`: will the bundle fit one Loihi 2 chip, and what does one inference and one
learning shot cost there (studies/chip_cost.py), beside this machine's CPU."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app
from metaloihi.cli.options import RootOption, finite_in, io_paths, seed_option


def _si(x: float, unit: str) -> str:
    for f, p in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if abs(x) < f * 1000 or p == "":
            return f"{x / f:.3g} {p}{unit}"
    return f"{x:.3g} {unit}"


def _rng(v: list[float], unit: str) -> str:
    return f"{_si(v[0], unit)} – {_si(v[1], unit)}"


def _console():
    import sys

    from rich.console import Console
    # piped or captured output keeps whole rows (rich would squeeze the table to 80 columns)
    return Console(width=None if sys.stdout.isatty() else 180)


def _resources(con, r: dict, name: str) -> None:
    from rich.table import Table
    res = r["resources"]
    t = Table(title=f"Loihi 2 resources: {Path(name).name}")
    for c in ("layer", "kind", "neurons", "fan-in", "synapses (per-synapse)", "non-zero",
              "shared (kernel)", "memory (8-bit)", "cores", "cores (shared)", "limited by"):
        t.add_column(c, justify="right" if c not in ("kind", "limited by") else "left")
    for x in res["layers"]:
        t.add_row(str(x["index"]), x["kind"], f"{x['neurons']:,}", f"{x['fan_in_axons']:,}",
                  f"{x['synapses']:,}", f"{x['synapses_nonzero']:,}",
                  f"{x['synapses_shared']:,}", f"{x['memory_bytes'] / 1024:.1f} KiB",
                  str(x["cores"]), str(x["cores_shared"]), x["limited_by"])
    tot = res["totals"]
    t.add_row("all", "", f"{tot['neurons']:,}", "", f"{tot['synapses']:,}", "",
              f"{tot['synapses_shared']:,}", f"{tot['memory_bytes'] / 1024:.1f} KiB",
              str(tot["cores"]), str(tot["cores_shared"]), "")
    con.print(t)


def print_net_cost(r: dict) -> None:
    """What `metaloihi cost NET.net` prints (studies.chip_cost.measure_net's dict)."""
    from rich.table import Table
    con = _console()
    _resources(con, r, r["network"])
    tot = r["resources"]["totals"]
    con.print(f"fits one chip (128 cores): {'yes' if tot['fits_one_chip'] else 'NO'} "
              f"({tot['cores']} cores per-synapse, {tot['cores_shared']} with shared conv "
              "kernels)", soft_wrap=True)
    a = r["activity"]["inference"]
    t = Table(title=f"measured in sim/ on {r['samples']} input(s), {r['steps']} steps: "
              f"{r['input']}; per inference")
    t.add_column("quantity")
    t.add_column("inference", justify="right")
    rows = [("time steps", a["steps"]), ("samples measured", a["samples"])]
    rows += [(f"spikes, {p}", f"{v:,.1f}") for p, v in zip(r["populations"], a["spikes"])]
    rows += [(f"synaptic ops into {p}", f"{v:,.0f}")
             for p, v in zip(r["populations"], a["synops"])]
    rows += [("neuron updates", f"{sum(a['neuron_updates']):,}")]
    rows += [(f"host<->chip: {k}", f"{v:,.1f}") for k, v in a["host_chip_events"].items()]
    for row in rows:
        t.add_row(*(str(c) for c in row))
    con.print(t)
    e, cpu = r["estimate"]["inference"], r["cpu"]
    t = Table(title="estimates per inference (Loihi 2: dynamic energy from per-op figures; "
              "CPU: measured time, TDP-based energy estimate)")
    for c in ("", "inference", "source / assumption"):
        t.add_column(c)
    t.add_row("Loihi 2 energy", _rng(e["energy_J"], "J"),
              "Davies 2018 Table 2 (Loihi 1) ÷ 2 .. × 1; static power and host I/O excluded")
    t.add_row("Loihi 2 latency", _rng(e["latency_s"], "s"), "same, per step: max over cores "
              "+ barrier")
    t.add_row("CPU sim/ (measured)", f"{_si(cpu['sim_s'], 's')} (one input); "
              f"{_si(cpu['sim_batch_s_per_input'], 's')} per input in a batch of "
              f"{r['samples']}", "sim.network_run, one thread" if cpu["threads"] == "1" else
              f"sim.network_run, OMP_NUM_THREADS={cpu['threads']}")
    t.add_row("CPU energy (ESTIMATE)", _rng(cpu["energy_sim_J"], "J"),
              f"{cpu['watts_per_core'][0]:g}-{cpu['watts_per_core'][1]:g} W x one core "
              f"({cpu['model']}); assumed TDP")
    con.print(t)


def print_cost(r: dict) -> None:
    from rich.table import Table

    con = _console()
    res = r["resources"]
    _resources(con, r, r["bundle"])
    tot = res["totals"]
    hs = res["head_state"]
    con.print(f"fits one chip (128 cores): {'yes' if tot['fits_one_chip'] else 'NO'} "
              f"({tot['cores']} cores per-synapse, {tot['cores_shared']} with shared conv "
              f"kernels); learning head: {hs['pre_traces_x1']} x1 + {hs['post_traces_y1_y2_y3']}"
              f" y traces ({hs['trace_bits_each']}-bit, {hs['trace_bytes']} B), "
              f"{hs['learning_synapses']:,} plastic synapses, engine program dw = {hs['dw']} "
              f"({hs['dw_product_terms']} product terms)", soft_wrap=True)
    a = r["activity"]
    t = Table(title=f"measured in sim/ on {r['tasks']} task(s) of {r['dataset']}/{r['split']} "
              f"({r['ways']}-way {r['shots']}-shot, {r['passes']} passes): per sample")
    t.add_column("quantity")
    t.add_column("inference", justify="right")
    t.add_column("learning shot", justify="right")
    inf, sh = a["inference"], a["learning_shot"]
    rows = [("time steps (window + learning step)", inf["steps"], sh["steps"]),
            ("samples measured", inf["samples"], sh["samples"])]
    rows += [(f"spikes, layer {i}", f"{p:,.1f}", f"{q:,.1f}")
             for i, (p, q) in enumerate(zip(inf["spikes"], sh["spikes"]))]
    rows += [(f"synaptic ops into layer {i}", f"{p:,.0f}", f"{q:,.0f}")
             for i, (p, q) in enumerate(zip(inf["synops"], sh["synops"]))]
    rows += [("neuron updates", f"{sum(inf['neuron_updates']):,}",
              f"{sum(sh['neuron_updates']):,}"),
             ("learning-engine synapse updates (visited / dw≠0)", "0",
              f"{sh['learning_updates_all']:,} / {sh['learning_updates_nonzero']:,.1f}")]
    rows += [(f"host<->chip: {k}", f"{inf['host_chip_events'][k]:,.1f}", f"{v:,.1f}")
             for k, v in sh["host_chip_events"].items()]
    rows.append(("host<->chip: dense port values (Lava VEC_DENSE)",
                 f"{inf['host_chip_dense_values']:,}", f"{sh['host_chip_dense_values']:,}"))
    for row in rows:
        t.add_row(*(str(c) for c in row))
    con.print(t)
    e, cpu = r["estimate"], r["cpu"]
    t = Table(title="estimates per sample (Loihi 2: dynamic energy from per-op figures; CPU: "
              "measured time, TDP-based energy estimate)")
    for c in ("", "inference", "learning shot", "source / assumption"):
        t.add_column(c)
    t.add_row("Loihi 2 energy", _rng(e["inference"]["energy_J"], "J"),
              _rng(e["learning_shot"]["energy_J"], "J"),
              "Davies 2018 Table 2 (Loihi 1) ÷ 2 .. × 1; static power and host I/O excluded")
    t.add_row("Loihi 2 latency", _rng(e["inference"]["latency_s"], "s"),
              _rng(e["learning_shot"]["latency_s"], "s"), "same, per step: max over cores + "
              "barrier")
    t.add_row("CPU sim/ fixed (measured)", _si(cpu["fixed_s"], "s"), _si(
        cpu["session_per_sample_s"], "s"), "learning: sim/ session per sample (incl. I/O)")
    t.add_row("CPU sim/ float (measured)", _si(cpu["float_s"], "s"), "—", "float32, no grad")
    t.add_row("CPU energy (ESTIMATE)", _rng(cpu["energy_fixed_J"], "J") + " fixed",
              _rng([cpu["session_per_sample_s"] * w for w in cpu["watts_per_core"]], "J"),
              f"{cpu['watts_per_core'][0]:g}-{cpu['watts_per_core'][1]:g} W x one core "
              f"({cpu['model']}); assumed TDP")
    con.print(t)
    an = r["anchor"]
    con.print(f"anchor CLP-SNN on Loihi 2: {an['latency_ms']} ms, {an['energy_mJ']} mJ per "
              f"learning sample; ours per learning shot: latency x{an['ratio_latency'][0]:.2g}"
              f"-{an['ratio_latency'][1]:.2g}, energy x{an['ratio_energy'][0]:.2g}-"
              f"{an['ratio_energy'][1]:.2g} of it ({r['window'] + 1} steps per shot through "
              f"{len(res['layers'])} layers; CLP-SNN's figure is a board measurement, ours "
              f"counts dynamic per-op energy only); a new class shown {r['passes']} times costs "
              f"{_rng(r['estimate_per_shot_all_passes']['energy_J'], 'J')}", soft_wrap=True)


@app.command()
@io_paths(inputs=("bundle", "input_"), outputs=("json_out",))
def cost(
    bundle: Path = typer.Argument(..., metavar="NET", help="Deployment bundle (.h5), or a "
                                  "netx file (.net: lava-dl's exporter, `metaloihi import`)."),
    dataset: Optional[str] = typer.Option(None, help="Data set of the tasks (default: the "
                                          "bundle's meta 'dataset')."),
    split: str = typer.Option("test", help="Class split the tasks come from."),
    root: RootOption = None,
    tasks: int = typer.Option(3, min=1, help="Tasks to measure activity on."),
    queries: int = typer.Option(2, min=1, help="Query examples per class per task."),
    shots: int = typer.Option(1, min=1, help="Examples per class learnt on chip."),
    seed: int = seed_option(0, help="Seed of the tasks and the embedded data set."),
    synapse_memory_kib: Optional[float] = typer.Option(
        None, callback=finite_in(1, 1e6), help="Synaptic memory per neuro-core in KiB (unpublished for Loihi 2; default "
        "128, Loihi 1's)."),
    loihi2_gain: Optional[float] = typer.Option(
        None, callback=finite_in(1e-3, 1e3), help="Loihi 2 over Loihi 1 per-op factor of the estimate's low end (unpublished; "
        "default 2)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write every number "
                                            "here (atomic; default: none)."),
    input_: Optional[Path] = typer.Option(None, "--input", help="netx file only: input .npy "
                                          "[batch, steps, *input_shape] as `metaloihi sim` "
                                          "takes it (default: seeded random spikes, --steps "
                                          "x --samples at --density; for an input neuron, a "
                                          "random bias image held)."),
    steps: Optional[int] = typer.Option(None, min=1, help="netx file: time steps (random "
                                        "input: default 20; --input: as `metaloihi sim "
                                        "--steps`, default the input's)."),
    samples: int = typer.Option(4, min=1, help="netx file, random input: inputs measured."),
    density: float = typer.Option(0.2, min=0.0, max=1.0, help="netx file, random input: "
                                  "spike probability per input and step."),
    reset_interval: Optional[int] = typer.Option(None, min=1, help="netx's reset_interval "
                                                 "(default: none, no reset)."),
    reset_offset: int = typer.Option(0, min=0, help="netx's reset_offset."),
    input_bits: int = typer.Option(0, min=0, help="netx's input_message_bits (0: spikes)."),
) -> None:
    """Loihi 2 resources (neurons, synapses, memory, neuro-cores, fits one chip?) and the cost
    of one inference and one learning shot: activity measured in sim/ on real tasks, energy
    and latency ranges from published per-op figures, beside this CPU's time. On a netx file:
    resources, and the cost of one inference on --input (or seeded random spikes)."""
    from dataclasses import replace

    from metaloihi.base.atomic import write_bytes
    from metaloihi.studies.loihi2_limits import Figure, Limits, OpCosts

    lim, costs = Limits(), OpCosts()
    if synapse_memory_kib is not None:
        if not synapse_memory_kib > 0:
            raise UserError(f"--synapse-memory-kib must be > 0, got {synapse_memory_kib}")
        lim = replace(lim, synapse_memory_per_core=Figure(
            synapse_memory_kib * 1024, "bytes", "given on the command line", False))
    if loihi2_gain is not None:
        if not loihi2_gain >= 1:
            raise UserError(f"--loihi2-gain must be >= 1, got {loihi2_gain}")
        costs = replace(costs, loihi2_gain=Figure(loihi2_gain, "x", "given on the command "
                                                  "line", False))
    if not bundle.is_file():
        raise UserError(f"bundle {str(bundle)!r} does not exist")
    from metaloihi.bridge.bundle import is_bundle
    if not is_bundle(bundle):
        from metaloihi.bridge.deploy import load_net_input
        from metaloihi.studies.chip_cost import measure_net
        from metaloihi.bridge.netx_read import read_netx
        kw = dict(reset_interval=reset_interval, reset_offset=reset_offset,
                  input_message_bits=input_bits)
        x = None if input_ is None else load_net_input(input_, read_netx(bundle, **kw), steps)
        r = measure_net(bundle, x, steps=steps or 20, samples=samples, density=density, seed=seed,
                        lim=lim, costs=costs, input_name=None if input_ is None else
                        str(input_), **kw)
        print_net_cost(r)
    else:
        if input_ is not None:
            raise UserError("--input is for netx files; a bundle's activity comes from tasks of "
                            "its data set (--dataset, --split)")
        r = _bundle_cost(bundle, dataset, root, split, tasks, shots, queries, seed, lim, costs)
    if json_out is not None:
        write_bytes(json_out, (json.dumps(r, indent=1) + "\n").encode(), "cost JSON")
        typer.echo(f"wrote {json_out}")


def _bundle_cost(bundle, dataset, root, split, tasks, shots, queries, seed, lim, costs) -> dict:
    from rich.progress import Progress

    from metaloihi.studies.chip_cost import measure
    with Progress(transient=True) as bar:
        job = bar.add_task("tasks (sim/)", total=tasks)
        r = measure(bundle, dataset=dataset, root=root, split=split, tasks=tasks, shots=shots,
                    queries=queries, seed=seed, lim=lim, costs=costs,
                    on_task=lambda k: bar.advance(job))
    print_cost(r)
    return r
