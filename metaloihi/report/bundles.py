"""What the report shows of a deployment bundle (.h5, read with bridge.bundle.read_bundle)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metaloihi.base.errors import UserError


def bundle_summary(path: str | Path) -> dict:
    """What the page shows of a bundle: head (the chip rule as stored, and the float eta it came
    from where the bundle records it), layers."""
    from metaloihi.bridge.bundle import read_bundle
    from metaloihi.rules.soel import chip as sf
    from metaloihi.sim.arch import ConvSpec

    path = Path(path)
    if not path.is_file():
        raise UserError(f"bundle {str(path)!r} does not exist")
    b = read_bundle(path)
    head = b.net[-1]
    steps = (b.meta.get("encoding") or {}).get("steps")
    chip = b.head.rule
    rule = sf.rule_of(chip, int(steps or 0))
    rule_text = f"dw = {rule.dw_string()}  (step {rule.step:g} mantissa per n·x)"
    learnt = b.meta.get("rule_float") or {}      # absent in bundles older than format /2
    layers = []
    for i, layer in enumerate(b.net):
        w = layer.weight
        nrn = layer.neuron
        layers.append({
            "index": i, "kind": "head" if i == len(b.net) - 1 else
            ("conv" if isinstance(layer.spec, ConvSpec) else "dense"),
            "in": "x".join(str(s) for s in np.atleast_1d(layer.spec.in_shape)),
            "out": "x".join(str(s) for s in np.atleast_1d(layer.spec.out_shape)),
            "weight": "x".join(str(s) for s in w.shape),
            "range": f"{int(w.min())}..{int(w.max())}",
            "zero": f"{100 * float(np.mean(w == 0)):.1f}%",
            "weight_exp": int(layer.weight_exp), "scale": f"{b.scales[i]:.4g}",
            "du": int(nrn.du), "dv": int(nrn.dv), "vth": int(nrn.vth)})
    return {"file": path.name, "path": str(path), "theta": chip.theta,
            "eta": learnt.get("eta"), "eta_mant": chip.step, "target_on": chip.target_on,
            "target_off": chip.target_off, "rng_seed": chip.rng_seed, "passes": chip.passes,
            "labels": list(b.head.labels), "rule": rule_text,
            "mant": chip.mant, "exp": chip.exp, "layers": layers,
            "dataset": b.meta.get("dataset"), "source": b.meta.get("source", ""),
            "created": b.meta.get("created", ""), "iteration": b.meta.get("iteration"),
            "made_by": (b.meta.get("made_by") or {}).get("summary")
            if isinstance(b.meta.get("made_by"), dict) else None,
            "encoding": b.meta.get("encoding")}

