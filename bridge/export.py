"""Float network (a checkpoint from offline/, or a random one) -> quantised -> bundle (+ NIR)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metaloihi.bridge.bundle import HeadParams, default_meta, write_bundle
from metaloihi import rules
from metaloihi.bridge.checkpoint_file import read_checkpoint
from metaloihi.bridge.quantize import Quantized, quantize
from metaloihi.sim.arch import SynapseSpec, paper_arch
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.loihi import LifFloat


def random_float_network(input_shape: tuple[int, int, int] = (2, 32, 32), ways: int = 5,
                         channels: tuple[int, ...] = (32, 64, 128), kernel: int = 5,
                         seed: int = 0, du: float = 0.2, dv: float = 0.1, vth: float = 1.0
                         ) -> tuple[list[SynapseSpec], dict, list[LifFloat]]:
    """The paper's architecture with Gaussian weights (std 2/sqrt(fan_in)): a stand-in theta0."""
    specs = paper_arch(tuple(input_shape), ways=ways, channels=tuple(channels), kernel=kernel)
    gen = torch.Generator().manual_seed(seed)
    params = {weight_key(i): torch.randn(spec.weight_shape, generator=gen, dtype=torch.float64)
              * 2.0 / np.sqrt(spec.fan_in) for i, spec in enumerate(specs)}
    return specs, params, [LifFloat(du=du, dv=dv, vth=vth) for _ in specs]


def from_checkpoint(path: str | Path) -> tuple[list, dict, list, object, dict]:
    """(specs, theta0, neurons, float rule (its card's LearntRule), meta) of an offline/
    checkpoint, read from the file
    alone (bridge/checkpoint_file.py: the network it describes; no offline/, no data set).
    The rule: the checkpoint's, as learnt or as fitted (meta "rule_fit" then says how).
    meta["head_range"]: the float |w| of the head grid's edge a silent-start head needs (None:
    theta0's own head range)."""
    ck = read_checkpoint(path)
    rule = rules.get(ck.rule["name"]).learnt_rule(ck.rule)
    meta = default_meta(source=path, split=ck.meta["split"])
    if ck.meta["rule_fit"]:
        meta["rule_fit"] = dict(ck.meta["rule_fit"])
    for key in ("iteration", "made_by", "dataset", "splits", "encoding"):
        meta[key] = ck.meta[key]
    meta["head_range"] = ck.rule["head_range"]
    return ck.specs, ck.theta0, ck.neurons, rule, meta


def export_bundle(out: str | Path, specs: list, params: dict, neurons: list,
                  rule=None, meta: dict | None = None,
                  head_weight_exp: int | None = None, nir_path: str | Path | None = None,
                  head_range: float | None = None, labels: tuple[str, ...] = ()
                  ) -> tuple[Path, Quantized]:
    """Quantise (bridge.quantize; head_range: see there) and write the bundle (+ NIR). rule:
    the float rule (a card's LearntRule; None: the default rule's), turned into the chip's units
    at the head's scale here (meta "rule_float" records it), or a ChipRule, stored as it is."""
    if head_range is None and meta:
        head_range = meta.get("head_range")
    q = quantize(specs, params, neurons, head_weight_exp=head_weight_exp,
                 head_range=head_range)
    meta = dict(meta or {})
    rule = rule or rules.get(rules.DEFAULT).LearntRule()
    card = rules.get(rule.name)
    if isinstance(rule, card.LearntRule):     # a float rule: its card converts it, once
        meta["rule_float"] = card.provenance(rule, q.scales[-1])
        rule = card.to_chip(rule, q.scales[-1])
    if nir_path is not None:      # room for both first: a failed second write would leave one
        from metaloihi.base.atomic import check_room, hdf5_bytes
        arrays = [a for layer in q.net for a in (layer.weight, layer.neuron.effective_bias)]
        check_room(Path(out), "bundle and NIR graph", 2 * hdf5_bytes(arrays))
    path = write_bundle(out, q.net, HeadParams(rule, tuple(labels)), q.scales, meta)
    if nir_path is not None:
        from metaloihi.bridge.nir_export import write_nir
        write_nir(nir_path, q.net, q.scales)
    return path, q
