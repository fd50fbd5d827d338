"""What the report shows of a deployment bundle (.h5, read with bridge.bundle.read_bundle) or of
a plain netx file (lava-dl's exporter, `metaloihi import`: read with bridge.netx_read, its
summary has kind "netx" and no head)."""
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

    from metaloihi.bridge.bundle import is_bundle

    path = Path(path)
    if not path.is_file():
        raise UserError(f"bundle {str(path)!r} does not exist")
    if not is_bundle(path):
        return netx_summary(path)
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
    return {"kind": "bundle", "file": path.name, "path": str(path), "theta": chip.theta,
            "eta": learnt.get("eta"), "eta_mant": chip.step, "target_on": chip.target_on,
            "target_off": chip.target_off, "rng_seed": chip.rng_seed, "passes": chip.passes,
            "labels": list(b.head.labels), "rule": rule_text,
            "mant": chip.mant, "exp": chip.exp, "layers": layers,
            "dataset": b.meta.get("dataset"), "source": b.meta.get("source", ""),
            "created": b.meta.get("created", ""), "iteration": b.meta.get("iteration"),
            "made_by": (b.meta.get("made_by") or {}).get("summary")
            if isinstance(b.meta.get("made_by"), dict) else None,
            "encoding": b.meta.get("encoding")}


def _dims(shape) -> str:
    return "x".join(str(s) for s in np.atleast_1d(shape))


def netx_summary(path: Path) -> dict:
    """A netx file's populations: the same columns as a bundle's layers (no float scale), the
    layer's netx features in its kind."""
    from metaloihi.bridge.netx_read import read_netx
    from metaloihi.sim.arch import ConvSpec

    net = read_netx(path)
    layers = []
    if net.input_neuron is not None:
        n = net.input_neuron
        layers.append({"index": 0, "kind": "input (neuron, driven by its bias)" if
                       hasattr(n, "du") else f"input ({type(n).__name__}: {n.kind})",
                       "in": "—", "out": _dims(net.input_shape), "weight": "—", "range": "—",
                       "zero": "—", "weight_exp": "—", "scale": "—",
                       "du": int(getattr(n, "du", 0)), "dv": int(getattr(n, "dv", 0)),
                       "vth": int(n.vth)})
    for layer in net.layers:
        spec, w, n = layer.spec, layer.weight, layer.neuron
        conv = isinstance(spec, ConvSpec)
        notes = ([f"stride {spec.stride}, padding {spec.padding}"] if conv else [])
        if conv and not spec.plain:
            notes.append(f"dilation {spec.dilation}, groups {spec.groups}")
        if layer.delay is not None:
            notes.append(f"delays {int(layer.delay.min())}..{int(layer.delay.max())}")
        if layer.weight_rec is not None:
            notes.append(f"recurrent {_dims(layer.weight_rec.shape)}")
        if getattr(n, "reset", None) is not None:
            notes.append(f"reset every {n.reset.interval} (offset {n.reset.offset})")
        layers.append({
            "index": len(layers), "kind": layer.name + (f": {'; '.join(notes)}" if notes else ""),
            "in": _dims(spec.in_shape), "out": _dims(spec.out_shape), "weight": _dims(w.shape),
            "range": f"{int(w.min())}..{int(w.max())}",
            "zero": f"{100 * float(np.mean(w == 0)):.1f}%", "weight_exp": int(layer.weight_exp),
            "scale": "—", "du": int(getattr(n, "du", 0)), "dv": int(getattr(n, "dv", 0)),
            "vth": int(n.vth)})
    return {"kind": "netx", "file": path.name, "path": str(path), "layers": layers,
            "input": ("the input population's bias" if hasattr(net.input_neuron, "du") else
                      "the input Delta's a_in" if net.input_neuron is not None else
                      "graded values" if net.graded_input else "spikes"),
            "input_shape": _dims(net.input_shape)}
