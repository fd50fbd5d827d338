"""The report's "Ablation: what made theta0" section: `benchmarks/ablation.py --json` files (the
dict studies/ablation.py's ablation returns), read and checked, as one table per file."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.report.markup import NOT_MEASURED, dataset_name, esc, pct, table
from metaloihi.report.readers import _load_json, is_number

FORMAT = "metaloihi.ablation/1"
RULE_KEYS = ("mant", "exp", "theta", "target_on", "target_off", "passes")


def _fraction(where: str, key: str, part) -> None:
    if not isinstance(part, dict) or not is_number(part.get("acc")) \
            or not 0 <= part["acc"] <= 1:
        raise UserError(f"{where}: {key}.acc must be a fraction in [0, 1], got "
                        f"{part.get('acc') if isinstance(part, dict) else part!r}")
    ci = part.get("ci95")
    if ci is not None and (not is_number(ci) or ci < 0):
        raise UserError(f"{where}: {key}.ci95 must be a number >= 0 or null, got {ci!r}")


def read_ablation(path: str | Path) -> dict:
    """The JSON of `benchmarks/ablation.py --json`; a missing or malformed key raises UserError
    naming the file and the key."""
    path = Path(path)
    res = _load_json(path, "ablation JSON")
    where = f"ablation JSON {str(path)!r}"
    if not isinstance(res, dict) or res.get("format") != FORMAT:
        raise UserError(f"{where}: expected an object with format {FORMAT!r} (studies/"
                        "ablation.py)")
    if not isinstance(res.get("tasks"), int) or res["tasks"] < 1:
        raise UserError(f"{where}: 'tasks' must be an integer >= 1, got {res.get('tasks')!r}")
    rule = res.get("rule")
    if not isinstance(rule, dict) or any(not is_number(rule.get(k)) for k in RULE_KEYS):
        raise UserError(f"{where}: 'rule' must hold numbers {', '.join(RULE_KEYS)}")
    _fraction(where, "prototype_raw", res.get("prototype_raw"))
    rows = res.get("rows")
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{where}: expected a non-empty list 'rows'")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("label"), str):
            raise UserError(f"{where}: rows[{i}] must be an object with a 'label'")
        for key in ("deployed", "prototype_features"):
            _fraction(where, f"rows[{i}].{key}", row.get(key))
        cpu = row.get("cpu_s")
        if cpu is not None and (not is_number(cpu) or cpu < 0):
            raise UserError(f"{where}: rows[{i}].cpu_s must be seconds >= 0 or null, got "
                            f"{cpu!r}")
    return res


def ablation_section(items: list[tuple[Path, dict]]) -> str:
    head = '<section id="ablation"><h2>Ablation: what made theta0</h2>'
    if not items:
        return (head + f"<p>{NOT_MEASURED}: no <code>benchmarks/ablation.py --json</code> file "
                "given.</p></section>")
    parts = [head, "<p>Each row is a body (the frozen layers) made a different way, deployed in "
             "sim/'s bit-exact fixed point (what Lava computes) with the shipped theta0's "
             "on-chip rule and silent head, identical in every row, on the same tasks; the "
             "ceiling is a nearest prototype (cosine) on the spike counts entering the head. "
             "CPU seconds: what made the body, from its training logs.</p>"]
    for path, res in items:
        r = res["rule"]
        rows = []
        for row in res["rows"]:
            d = row.get("minus_stage1_pp")
            diff = (f"{d['mean']:+.1f} ± {d['ci95']:.1f} pp" if isinstance(d, dict)
                    and is_number(d.get("mean")) and is_number(d.get("ci95")) else "—")
            cpu = (f"{row['cpu_s']:.0f}" if is_number(row.get("cpu_s"))
                   else row.get("cpu_note") or NOT_MEASURED)
            rec = row.get("made_by_record")
            record = rec.get("label", "—") if isinstance(rec, dict) else "—"
            rows.append((row["label"], row.get("made", ""), record,
                         pct(row["deployed"]["acc"], row["deployed"].get("ci95")),
                         pct(row["prototype_features"]["acc"],
                             row["prototype_features"].get("ci95")), diff, cpu))
        rows.append(("raw-input prototype (no body)", "—", "—", "—",
                     pct(res["prototype_raw"]["acc"], res["prototype_raw"].get("ci95")), "—",
                     "—"))
        parts.append(f"<h3>{esc(path.name)}: {esc(dataset_name(res.get('dataset')))}, split "
                     f"{esc(str(res.get('split', '?')))}, {esc(str(res.get('ways', '?')))}-way "
                     f"{esc(str(res.get('shots', '?')))}-shot, {res['tasks']} tasks (seed "
                     f"{esc(str(res.get('seed', '?')))})</h3>")
        parts.append(f"<p>Rule in every row (from {esc(str(r.get('from', '?')))}): "
                     f"mant {esc(r['mant'])}, exp {esc(r['exp'])}, theta {esc(r['theta'])}, "
                     f"target {esc(r['target_on'])}/{esc(r['target_off'])}, "
                     f"{esc(r['passes'])} passes.</p>")
        parts.append(table(["row", "how the body was made", "its checkpoint's record",
                            "deployed (sim/)",
                            "ceiling: prototype on its features", "minus stage 1 (paired)",
                            "CPU s that made the body"], rows, "ablation"))
    return "".join(parts) + "</section>"
