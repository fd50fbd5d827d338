"""`metaloihi continual`: classes learnt on chip one at a time (onchip/continual.py), measured over
many class orders beside the prototype ceiling and the float rule (studies/continual.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Literal, Optional

import typer

from metaloihi.base.errors import UserError
from metaloihi.cli.app import app
from metaloihi.cli.options import RootOption, io_paths, seed_option


@app.command()
@io_paths(inputs=("bundle",), outputs=("json_out", "plot_out", "save_bundle"))
def continual(
    bundle: Path = typer.Argument(..., help="Deployment bundle (.h5); a head with fewer rows "
                                  "than --classes is widened in memory with silent rows."),
    dataset: Optional[str] = typer.Option(None, help="Data set (default: the bundle's)."),
    root: RootOption = None,
    splits: str = typer.Option("test,val", help="Class splits the classes come from, "
                               "comma-separated (classes unseen in meta-training)."),
    classes: int = typer.Option(20, min=1, help="Classes arriving one at a time per order."),
    orders: int = typer.Option(100, min=1, help="Random class orders (sim/)."),
    shots: int = typer.Option(1, min=1, help="Shots per class (taught once, never revisited)."),
    queries: int = typer.Option(10, min=1, help="Query samples per class, classified after "
                                "every arrival."),
    passes: Optional[int] = typer.Option(None, min=1, help="Presentations of each new class's "
                                         "shots (default: the bundle's)."),
    variant: List[str] = typer.Option(["chip"], help="Error-path variant(s) of the rule: 'chip' "
                                      "(the bundle's rule, every row learns) or 'label_only' "
                                      "(the rule's label_only field: only the labelled row "
                                      "learns); repeat to compare."),
    backend: Literal["sim", "lava"] = typer.Option("sim", help="'lava': also run the first "
                                                   "order through Lava's CPU simulator, with "
                                                   "the last --variant, and check it equals "
                                                   "sim/ bit for bit (slow: use few classes "
                                                   "and queries)."),
    seed: int = seed_option(0, help="Seed of the class orders and samples."),
    references: bool = typer.Option(True, help="Also the prototype ceiling and the float "
                                    "rule on the same tasks."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results here (default: none) "
                                            "(atomic)."),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="Write the curves here (PNG; default: none)."),
    save_bundle: Optional[Path] = typer.Option(None, help="Also write the bundle as measured "
                                               "(the head widened to --classes rows, the rule "
                                               "with the last --variant), ready for `adapt` "
                                               "and Lava (default: none)."),
) -> None:
    """Continual on-chip learning: accuracy on all seen classes as classes arrive one at a
    time, and the first five classes' accuracy as later ones arrive (forgetting)."""
    import numpy as np

    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.bridge.widen import widen
    from metaloihi.datasets.registry import load_dataset
    from metaloihi.studies import continual as study
    b = read_bundle(bundle)
    parts = tuple(s.strip() for s in splits.split(",") if s.strip())
    study.check_splits(b, parts)
    n_out = b.net[-1].spec.out_features
    if n_out < classes:
        b = widen(b, classes)
        typer.echo(f"head widened from {n_out} to {classes} rows (the added rows silent)")
    name = dataset or b.meta.get("dataset")
    if not name:
        raise UserError("the bundle names no data set; give --dataset")
    ds = load_dataset(name, seed=seed, root=root)
    res = study.continual_study(b, ds, classes=classes, orders=orders, shots=shots,
                                queries=queries, seed=seed, splits=parts,
                                variants=tuple(variant), passes=passes, references=references)
    res["bundle"] = str(bundle)
    typer.echo(study.format_table(res))
    if backend == "lava":
        from metaloihi.onchip.continual import continual as session, same_continual
        pick = np.random.default_rng(seed)
        ids = np.concatenate([ds.split_classes(s) for s in parts])
        order = pick.choice(ids, classes, replace=False)
        xs, xq = [], []
        for c in order:
            idx = pick.choice(ds.class_indices(int(c)), shots + queries, replace=False)
            x = b.encode(ds.frames(np.sort(idx)))
            xs.append(x[:shots])
            xq.append(x[shots:])
        from dataclasses import replace
        bv = replace(b, head=replace(b.head, rule=replace(
            b.head.rule, label_only=study.VARIANTS[variant[-1]])))
        lv = session(bv, xs, xq, backend="lava", passes=passes)
        sm = session(bv, xs, xq, backend="sim", passes=passes)
        same = same_continual(lv, sm)
        res["lava"] = {"classes": classes, "queries": queries, "identical_to_sim": same,
                       "variant": variant[-1],
                       "accuracy": [float(a) for a in lv.accuracy], "seconds": lv.seconds}
        typer.echo(f"Lava, one order of {classes} classes: accuracy after each arrival "
                   f"{np.round(100 * lv.accuracy, 1).tolist()}; identical to sim/ (every "
                   f"spike, v, weight after every shot, prediction): {same} ({lv.seconds:.0f} s)")
    if save_bundle is not None:
        from dataclasses import replace

        from metaloihi.bridge.bundle import write_bundle
        head = replace(b.head, rule=replace(b.head.rule, label_only=study.VARIANTS[variant[-1]]))
        typer.echo(f"wrote {write_bundle(save_bundle, b.net, head, b.scales, b.meta)}")
    if json_out is not None:
        typer.echo(f"wrote {study.write_json(res, json_out)}")
    if plot_out is not None:
        from metaloihi.plots import continual_figure
        typer.echo(f"wrote {continual_figure(res, plot_out)}")
    if backend == "lava" and not res["lava"]["identical_to_sim"]:
        raise typer.Exit(2)
