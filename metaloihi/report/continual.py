"""The report's "Continual on-chip learning" section: `metaloihi continual --json` files (the dict
studies/continual.py's continual_study returns), read and checked, as a table and a figure."""
from __future__ import annotations

from pathlib import Path

from metaloihi.base.errors import UserError
from metaloihi.report.markup import NOT_MEASURED, esc, fmt, table
from metaloihi.report.readers import _load_json, is_number

STEPS = (5, 10, 20, 36, 50)


def read_continual(path: str | Path) -> dict:
    """The JSON of `metaloihi continual --json`; a missing key or a curve of the wrong length
    raises UserError naming the file and the key."""
    path = Path(path)
    res = _load_json(path, "continual-learning JSON")
    where = f"continual-learning JSON {str(path)!r}"
    if not isinstance(res, dict) or not isinstance(res.get("rows"), dict) or not res["rows"]:
        raise UserError(f"{where}: expected an object with a non-empty 'rows' table")
    C = res.get("classes")
    if not isinstance(C, int) or C < 1:
        raise UserError(f"{where}: 'classes' must be an integer >= 1, got {C!r}")
    for name, row in res["rows"].items():
        acc = row.get("accuracy") if isinstance(row, dict) else None
        if not isinstance(acc, list) or len(acc) != C or not all(is_number(a) for a in acc):
            raise UserError(f"{where}: rows.{name}.accuracy must be {C} numbers")
        for key in ("ci95", "first5"):
            if not isinstance(row.get(key), list) or len(row[key]) != C:
                raise UserError(f"{where}: rows.{name}.{key} must be a list of {C}")
    return res


def continual_section(items: list[tuple[Path, dict]], out_dir: Path) -> str:
    head = '<section id="continual"><h2>Continual on-chip learning</h2>'
    if not items:
        return (head + f"<p>{NOT_MEASURED}: no <code>metaloihi continual --json</code> file "
                "given.</p></section>")
    from metaloihi.plots import continual_figure
    parts = [head, "<p>Classes arrive one at a time, each taught by its shot(s) on chip; after "
             "every arrival the queries of all classes seen so far are classified. Mean over "
             "class orders (± 95% CI); the prototype row is the ceiling of any head rule on the "
             "same frozen features.</p>"]
    for k, (path, res) in enumerate(items):
        C = res["classes"]
        steps = [s for s in STEPS if s <= C] or [C]
        rows = []
        for name, r in res["rows"].items():
            f = r.get("forgetting_pp") or {}
            gap = r.get("worst_gap_pp")
            rows.append((name, *(f"{100 * r['accuracy'][s - 1]:.1f}%" for s in steps),
                         fmt(gap) + (" pp" if is_number(gap) else ""),
                         f"{fmt(f.get('mean'))} ± {fmt(f.get('ci95'))} pp" if f else "—"))
        png = f"continual_{k}.png"
        continual_figure(res, out_dir / png)
        parts.append(f"<h3>{esc(path.name)}: {esc(str(res.get('dataset', '')))}, {C} classes, "
                     f"{esc(str(res.get('orders', '?')))} orders, "
                     f"{esc(str(res.get('shots', '?')))}-shot</h3>")
        f0 = next(iter(res["rows"].values())).get("forgetting_pp") or {}
        parts.append(table(["row", *(f"after {s}" for s in steps), "worst gap to ceiling",
                            f"first 5 classes: loss, step {f0.get('from_step', '?')} → "
                            f"{f0.get('to_step', '?')}"], rows))
        parts.append(f'<figure><img src="{png}" alt="continual learning curves"></figure>')
    return "".join(parts) + "</section>"
