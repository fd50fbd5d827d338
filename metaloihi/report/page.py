"""The report page: one self-contained HTML file (inline CSS, no scripts, nothing fetched)
with its PNGs next to it, referenced relatively; `build_report` reads the inputs (readers.py,
bundles.py), draws the curves (figures.py) and writes the sections. Missing inputs are
reported as "not measured"."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np

from metaloihi import __version__
from metaloihi.base.atomic import file_sha256, regular_input, write_bytes
from metaloihi.base.errors import UserError
from metaloihi.report.ablation import ablation_section, read_ablation
from metaloihi.report.bundles import bundle_summary
from metaloihi.report.continual import continual_section, read_continual
from metaloihi.report.cost import cost_section
from metaloihi.report.figures import curves_figure, run_label
from metaloihi.report.markup import NOT_MEASURED, dataset_name, esc, fmt, pct, table
from metaloihi.report.paper_table import PAPER_CITATION, accuracy_section
from metaloihi.report.readers import Inputs, as_fraction, read_eval, read_gap, read_log, read_speed

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _curves_section(logs: dict[str, list[dict]], files: dict[str, Path], png: str | None) -> str:
    if not logs:
        return (f'<section id="curves"><h2>Meta-training curves</h2><p>{NOT_MEASURED}: no '
                "training log given.</p></section>")
    rows = []
    for label, recs in logs.items():
        last = recs[-1]
        val = [(r["meta_val_acc"], r["iteration"]) for r in recs if "meta_val_acc" in r]
        best = max(val) if val else None
        learnt = sorted(k for k in last if k.startswith(("inner_lr.", "soel.")))
        tail = recs[-100:]
        rows.append((label, files[label].name, last["iteration"],
                     fmt(last.get("elapsed_s", float("nan")) / 60) if "elapsed_s" in last
                     else "—", fmt(last.get("tasks_per_s")),
                     f"{100 * best[0]:.1f}% (it. {best[1]})" if best else NOT_MEASURED,
                     f"{100 * np.mean([r.get('meta_train_acc', np.nan) for r in tail]):.1f}%",
                     "; ".join(f"{k}: {fmt(recs[0][k])} → {fmt(last[k])}" for k in learnt)
                     or "—"))
    img = (f'<img src="{esc(png)}" alt="meta-loss and meta-validation accuracy vs iteration">'
           if png else "")
    return ('<section id="curves"><h2>Meta-training curves</h2>' + img
            + table(["run", "log", "iterations", "wall (min)", "tasks/s (last)",
                      "best meta-val", "meta-train acc (last 100 it.)",
                      "learnt scalars (first → last)"], rows) + "</section>")


def _gap_section(gaps: list[tuple[Path, list[dict]]]) -> str:
    head = '<section id="gap"><h2>Deployment gap: float → fixed point → Lava</h2>'
    if not gaps:
        return head + f"<p>{NOT_MEASURED}: no deployment-gap results given (--gap).</p></section>"
    rows = []
    for path, rs in gaps:
        for r in rs:
            acc = {k: as_fraction((r.get(k) or {}).get("acc")) for k in ("float", "fixed", "lava")}
            ci = {k: as_fraction((r.get(k) or {}).get("ci95")) for k in ("float", "fixed", "lava")}
            lava = r.get("lava") or {}
            task = (f"{r['ways']}-way " if r.get("ways") else "") + \
                (f"{r['shots']}-shot" if r.get("shots") else "")
            gap = (r.get("gap_pp") or {}).get("fixed_minus_float")
            if gap is None and None not in (acc["float"], acc["fixed"]):
                gap = 100 * (acc["fixed"] - acc["float"])
            ident = lava.get("identical_to_fixed")
            agree = as_fraction((r.get("agreement") or {}).get("mean"))
            lava_cell = pct(acc["lava"], ci["lava"])
            if acc["lava"] is not None and lava.get("tasks") is not None:
                lava_cell += f" ({lava['tasks']} tasks)"
            ck = Path(r["checkpoint"]) if r.get("checkpoint") else None
            model = f"{ck.parent.name}/{ck.name}" if ck else "not recorded"
            if r.get("dataset"):
                model += f" ({dataset_name(r['dataset'])})"
            if r.get("tasks"):
                task = f"{task}, {r['tasks']} tasks" if task else f"{r['tasks']} tasks"
            notes = f"{r['notes']} ({path.name})" if r.get("notes") else path.name
            ceil = r.get("ceilings") if isinstance(r.get("ceilings"), dict) else {}
            ceil_cells = [pct(as_fraction((ceil.get(k) or {}).get("acc")),
                               as_fraction((ceil.get(k) or {}).get("ci95")))
                          if isinstance(ceil.get(k), dict) else NOT_MEASURED
                          for k in ("prototype_features", "prototype_raw")]
            rows.append((model, r.get("split") or "not recorded", task or "not recorded",
                         pct(acc["float"], ci["float"]), pct(acc["fixed"], ci["fixed"]),
                         lava_cell, *ceil_cells, NOT_MEASURED if gap is None else f"{gap:+.1f} pp",
                         NOT_MEASURED if ident is None else ("yes" if ident else "NO"),
                         NOT_MEASURED if agree is None else pct(agree), notes))
    return (head + "<p>float: offline/'s float model with float SOEL; fixed: sim/'s bit-exact "
            "Loihi 2 model of the bundle with on-chip SOEL; Lava: the same session in Lava's "
            "simulator (spikes, v and learnt weights compared with fixed's).</p>"
            + table(["checkpoint", "split", "task", "float", "fixed (sim/)", "Lava",
                      "ceiling: prototype on the head's input", "ceiling: prototype on raw input",
                      "fixed − float", "Lava == fixed", "float/fixed agree", "notes (file)"],
                     rows, "gap") + "</section>")


def _speed_section(speeds: list[tuple[Path, dict]]) -> str:
    if not speeds:
        return ('<section id="speed"><h2>sim/ vs Lava speed</h2>'
                f"<p>{NOT_MEASURED}: no speed results given (--speed).</p></section>")
    rows = []
    for path, d in speeds:
        for r in d["rows"]:
            ident = r.get("identical")
            rows.append((r.get("what", ""), f"{r['sim_s']:.4g}", f"{r['lava_s']:.4g}",
                         f"{r['lava_s'] / r['sim_s']:.0f}x",
                         NOT_MEASURED if ident is None else ("yes" if ident else "NO"),
                         d.get("machine", "not recorded"), d.get("command", ""), path.name))
    return ('<section id="speed"><h2>sim/ vs Lava speed</h2>'
            + table(["what", "sim/ (s)", "Lava (s)", "speed-up", "outputs identical",
                      "machine", "command", "from"], rows) + "</section>")


def _soel_section(logs: dict[str, list[dict]], bundles: list[dict]) -> str:
    rows = []
    for label, recs in logs.items():
        th = [r for r in recs if "soel.threshold" in r]
        if th:
            rows.append((f"training log: {label}", f"{fmt(th[0]['soel.threshold'])} → "
                         f"{fmt(th[-1]['soel.threshold'])}",
                         f"{fmt(th[0].get('soel.eta'))} → {fmt(th[-1].get('soel.eta'))}",
                         "—", "—", f"iterations {th[0]['iteration']}..{th[-1]['iteration']}"))
    for b in (b for b in bundles if b["kind"] == "bundle"):     # netx files have no head
        rows.append((f"bundle: {b['file']}", fmt(b["theta"]), fmt(b["eta"]), fmt(b["eta_mant"]),
                     f"{b['target_on']} / {b['target_off']}", b["rule"]))
    if not rows:
        return ('<section id="soel"><h2>SOEL: learnt threshold θ and step η</h2>'
                f"<p>{NOT_MEASURED}: no SOEL training log or bundle given.</p></section>")
    return ('<section id="soel"><h2>SOEL: learnt threshold θ and step η</h2>'
            "<p>Per shot: e = output spike count − target, n = trunc(e / θ), "
            "ΔW = −η n x (x: presynaptic spike count, 7-bit). θ and η are meta-learnt when the "
            "config says so; a bundle carries what the chip uses.</p>"
            + table(["from", "θ (spikes)", "η (float weight units)", "η (mantissa units)",
                      "target on / off", "on-chip rule / note"], rows, "soel")
            + "</section>")


def _bundles_section(bundles: list[dict]) -> str:
    if not bundles:
        return (f'<section id="bundles"><h2>Bundles</h2><p>{NOT_MEASURED}: no bundle given.'
                "</p></section>")
    parts = ['<section id="bundles"><h2>Bundles: layers and quantisation</h2>']
    for b in bundles:
        if b["kind"] == "netx":
            meta = [("file", b["path"]), ("kind", "netx network (lava-dl's format): no "
                                                  "learning head"),
                    ("input", f"{b['input']}, {b['input_shape']}")]
            parts.append(f"<h3>{esc(b['file'])}</h3>" + table(["field", "value"], meta, "kv"))
            parts.append(table(["#", "population", "in", "out", "weight", "weight range",
                                "zeros", "weight_exp", "scale", "du", "dv", "vth"],
                               [tuple(layer.values()) for layer in b["layers"]]))
            continue
        enc = b["encoding"]
        meta = [("file", b["path"]), ("source", b["source"] or "—"),
                ("data set", dataset_name(b["dataset"])),
                ("theta0 made by", b.get("made_by") or "not recorded"),
                ("iteration", b["iteration"] if b["iteration"] is not None else "—"),
                ("created", b["created"] or "—"),
                ("encoding", json.dumps(enc) if enc else "none (frames as they are)"),
                ("labels", ", ".join(b["labels"])), ("rng seed", b["rng_seed"]),
                ("chip rule", f"mant {b['mant']}, exp {b['exp']}, theta {fmt(b['theta'])}, "
                              f"{b['passes']} pass(es)")]
        parts.append(f"<h3>{esc(b['file'])}</h3>" + table(["field", "value"], meta, "kv"))
        parts.append(table(["#", "kind", "in", "out", "weight", "mantissa range", "zeros",
                             "weight_exp", "scale (mant/float)", "du", "dv", "vth"],
                            [tuple(layer.values()) for layer in b["layers"]]))
    return "".join(parts) + "</section>"


def _inputs_section(inputs: Inputs, figures: list[str]) -> str:
    rows = []
    for kind, p in inputs.all():
        h = file_sha256(p)[:12] if p.is_file() else "—"
        rows.append((kind, str(p), f"{p.stat().st_size:,} B" if p.is_file() else "—", h))
    figs = "".join(f'<figure><img src="{esc(f)}" alt="{esc(f)}"><figcaption>{esc(f)}'
                   "</figcaption></figure>" for f in figures)
    return ((f'<section id="figures"><h2>Figures</h2>{figs}</section>' if figs else "")
            + '<section id="inputs"><h2>Inputs</h2>'
            + (table(["kind", "file", "size", "sha256 (first 12)"], rows) if rows else
               "<p>none</p>") + "</section>")


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1200px;
color:#1c1c1c;line-height:1.4;padding:0 16px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;
margin-top:1.6em}h3{margin-bottom:.3em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
tr.paper td{background:#f6f6fb}tr.measured td{background:#eef8ee}
tr.measured td:first-child{font-weight:bold;color:#1a6b1a}
tr.paper td:first-child{color:#444a80}
table.acc td:nth-child(6),table.acc td:nth-child(7){white-space:nowrap}
table.gap td:nth-child(n+4):nth-child(-n+7){white-space:nowrap}
img{max-width:100%;border:1px solid #ddd}
figure{margin:.8em 0}
footer{margin-top:2em;color:#777;font-size:.8em}
"""


def build_report(out_dir: str | Path, inputs: Inputs,
                 title: str = "metaloihi report") -> Path:
    """Read the inputs, write out_dir/index.html (+ curves.png, copied figures); return the
    HTML path. Each file is written atomically; a bad input raises UserError naming it."""
    out_dir = Path(out_dir)
    labels: dict[str, list[dict]] = {}
    files: dict[str, Path] = {}
    for p in inputs.logs:
        label = run_label(Path(p))
        while label in labels:
            label += "'"
        labels[label], files[label] = read_log(p), Path(p)
    evals = [r for p in inputs.evals for r in read_eval(p)]
    bundles = [bundle_summary(p) for p in inputs.bundles]
    gaps = [(Path(p), read_gap(p)) for p in inputs.gaps]
    speeds = [(Path(p), read_speed(p)) for p in inputs.speeds]
    continual = [(Path(p), read_continual(p)) for p in inputs.continual]
    ablation = [(Path(p), read_ablation(p)) for p in inputs.ablation]
    for p in inputs.figures:
        with open(regular_input(p, "figure"), "rb") as fh:
            if fh.read(8) != PNG_MAGIC:
                raise UserError(f"figure {str(p)!r} is not a PNG file")
    out_dir.mkdir(parents=True, exist_ok=True)
    png = None
    if labels:
        curves_figure(labels, out_dir / "curves.png")
        png = "curves.png"
    figures = []
    for p in inputs.figures:
        name = f"figure_{len(figures)}_{Path(p).name}"
        write_bytes(out_dir / name, Path(p).read_bytes(), "report figure")
        figures.append(name)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    body = (f"<h1>{esc(title)}</h1><p class=\"sub\">metaloihi {esc(__version__)}, generated "
            f"{esc(now)}. Paper: {esc(PAPER_CITATION)}.</p>"
            + accuracy_section(evals) + _curves_section(labels, files, png)
            + _gap_section(gaps) + ablation_section(ablation) + _speed_section(speeds)
            + _soel_section(labels, bundles)
            + _bundles_section(bundles) + cost_section(inputs.bundles)
            + continual_section(continual, out_dir)
            + _inputs_section(inputs, figures)
            + "<footer>Written by <code>metaloihi report</code>; self-contained (no scripts, "
            "nothing fetched), images next to this file.</footer>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n")
    return write_bytes(out_dir / "index.html", page.encode("utf-8"), "report")
