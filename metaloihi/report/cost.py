"""The report's "Loihi 2 cost" section: per bundle (or netx file) the page lists, its Loihi 2
resources (studies/chip_resources.py, computed here: no simulation) and, where `metaloihi cost --json`
wrote `<bundle stem>.cost.json` beside it, the measured activity and the energy / latency
estimates."""
from __future__ import annotations

import json
from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.report.markup import NOT_MEASURED, esc, table


def cost_json_of(bundle: Path) -> Path:
    return bundle.with_name(bundle.stem + ".cost.json")


def _si(x: float, unit: str) -> str:
    for f, p in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if abs(x) < f * 1000 or p == "":
            return f"{x / f:.3g} {p}{unit}"
    return f"{x:.3g} {unit}"


def _rng(v, unit: str) -> str:
    return f"{_si(v[0], unit)} – {_si(v[1], unit)}"


def _measured_net(r: dict, path: Path) -> str:
    """A netx file's `metaloihi cost --json`: one inference."""
    e, cpu, a = r["estimate"]["inference"], r["cpu"], r["activity"]["inference"]
    rows = [("time steps", a["steps"]), ("spikes (all populations)", f"{sum(a['spikes']):,.0f}"),
            ("synaptic ops", f"{sum(a['synops']):,.0f}"),
            ("neuron updates", f"{sum(a['neuron_updates']):,}"),
            ("Loihi 2 energy (estimate)", _rng(e["energy_J"], "J")),
            ("Loihi 2 latency (estimate)", _rng(e["latency_s"], "s")),
            ("CPU sim/ (measured, one input)", _si(cpu["sim_s"], "s")),
            ("CPU energy (TDP estimate)", _rng(cpu["energy_sim_J"], "J"))]
    note = f"Measured on {r['samples']} input(s): {esc(r['input'])}."
    return (table(["per inference", "inference"], rows) + f"<p>{note} From "
            f"{esc(path.name)}.</p>")


def _measured(path: Path) -> str:
    try:
        r = json.loads(path.read_text())
        if r.get("kind") == "netx":
            return _measured_net(r, path)
        e, cpu, an = r["estimate"], r["cpu"], r["anchor"]
        inf, sh = r["activity"]["inference"], r["activity"]["learning_shot"]
        rows = [("time steps", inf["steps"], sh["steps"]),
                ("spikes (all layers)", f"{sum(inf['spikes']):,.0f}", f"{sum(sh['spikes']):,.0f}"),
                ("synaptic ops", f"{sum(inf['synops']):,.0f}", f"{sum(sh['synops']):,.0f}"),
                ("neuron updates", f"{sum(inf['neuron_updates']):,}",
                 f"{sum(sh['neuron_updates']):,}"),
                ("learning-engine updates (visited / dw≠0)", "0",
                 f"{sh['learning_updates_all']:,} / {sh['learning_updates_nonzero']:,.1f}"),
                ("Loihi 2 energy (estimate)", _rng(e["inference"]["energy_J"], "J"),
                 _rng(e["learning_shot"]["energy_J"], "J")),
                ("Loihi 2 latency (estimate)", _rng(e["inference"]["latency_s"], "s"),
                 _rng(e["learning_shot"]["latency_s"], "s")),
                ("CPU sim/ fixed / float (measured)",
                 f"{_si(cpu['fixed_s'], 's')} / {_si(cpu['float_s'], 's')}",
                 _si(cpu["session_per_sample_s"], "s")),
                ("CPU energy (TDP estimate)", _rng(cpu["energy_fixed_J"], "J"), "—")]
        note = (f"Measured on {r['tasks']} task(s) of {esc(r['dataset'])}/{esc(r['split'])}; "
                f"anchor CLP-SNN {an['latency_ms']} ms, {an['energy_mJ']} mJ per learning "
                f"sample: ours ×{an['ratio_latency'][0]:.2g}–{an['ratio_latency'][1]:.2g} "
                f"(latency), ×{an['ratio_energy'][0]:.2g}–{an['ratio_energy'][1]:.2g} (energy).")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        raise UserError(f"cost JSON {str(path)!r} is not `metaloihi cost --json` output: "
                        f"{err}") from None
    return (table(["per sample", "inference", "learning shot"], rows) + f"<p>{note} From "
            f"{esc(path.name)}.</p>")


def cost_section(bundles: list) -> str:
    from metaloihi.bridge.bundle import is_bundle, read_bundle
    from metaloihi.bridge.netx_read import read_netx
    from metaloihi.studies.chip_resources import fits, layer_resources

    head = '<section id="cost"><h2>Loihi 2 cost</h2>'
    if not bundles:
        return head + f"<p>{NOT_MEASURED}: no bundle given.</p></section>"
    parts = [head, "<p>Resources under Loihi 2's per-core limits (docs/cost.md for each "
             "limit's source); activity and estimates from "
             "<code>metaloihi cost BUNDLE --json BUNDLE_STEM.cost.json</code>.</p>"]
    for p in bundles:
        p = Path(p)
        ours = is_bundle(p)
        res = layer_resources(read_bundle(p).net if ours else read_netx(p), head=ours)
        tot = fits(res)
        rows = [(r.index, r.kind if ours else r.name, f"{r.neurons:,}", f"{r.synapses:,}",
                 f"{r.synapses_shared:,}",
                 f"{r.memory_bytes / 1024:.1f} KiB", r.cores, r.cores_shared, r.limited_by)
                for r in res]
        rows.append(("all", "", f"{tot['neurons']:,}", f"{tot['synapses']:,}",
                     f"{tot['synapses_shared']:,}", f"{tot['memory_bytes'] / 1024:.1f} KiB",
                     tot["cores"], tot["cores_shared"],
                     "fits one chip" if tot["fits_one_chip"] else "does NOT fit one chip"))
        parts.append(f"<h3>{esc(p.name)}</h3>" + table(
            ["#", "kind", "neurons", "synapses (per-synapse)", "shared (kernel)",
             "memory (8-bit)", "cores", "cores (shared)", "limited by"], rows))
        cj = cost_json_of(p)
        parts.append(_measured(cj) if cj.is_file() else
                     f"<p>Activity and estimates: {NOT_MEASURED} (no {esc(cj.name)}).</p>")
    return "".join(parts) + "</section>"
