"""HTML building blocks shared by the report's sections: every text that reaches the page is
escaped by `esc`; numbers and accuracies are printed one way."""
from __future__ import annotations

import html
from typing import Iterable, Sequence

from metaloihi.report.readers import DATASET_NAMES, is_number

NOT_MEASURED = "not measured"


def esc(v) -> str:
    """Every text that reaches the page goes through here."""
    return html.escape(str(v), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r in rows:
        attrs = ""
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], dict):
            r, extra = r
            attrs = "".join(f' {k}="{esc(v)}"' for k, v in extra.items())
        body.append(f"<tr{attrs}>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
    return (f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def pct(acc, ci=None) -> str:
    if acc is None:
        return NOT_MEASURED
    if ci is None or not is_number(ci):
        return f"{100 * acc:.1f}%"
    return f"{100 * acc:.1f} ± {100 * ci:.1f}%"


def fmt(x) -> str:
    """Numbers as the page prints them (4 significant digits)."""
    return f"{x:.4g}" if is_number(x) else (NOT_MEASURED if x is None else str(x))


def dataset_name(key: str | None) -> str:
    return DATASET_NAMES.get(key, key) if key else "not recorded"


