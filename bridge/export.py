"""Float network (a checkpoint from offline/, or a random one) -> quantised -> bundle (+ NIR)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from metaloihi.bridge.bundle import HeadParams, default_meta, write_bundle
from metaloihi.bridge.quantize import Quantized, quantize
from metaloihi.base.errors import UserError
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


def from_checkpoint(path: str | Path, use_fit: bool = True
                    ) -> tuple[list, dict, list, HeadParams, dict]:
    # meta["head_range"]: the float |w| of the head grid's edge a silent-start head needs
    # (offline's soel.head_range), None: theta0's own head range
    """(specs, theta0, neurons, head params, meta) of an offline/ checkpoint (metaloihi.maml/1).
    The network's input shape comes from the checkpoint's data set (loaded through offline/).
    SOEL parameters: the checkpoint's "soel_fit" (studies/rule_fit.py, fitted on meta-val in
    fixed point) when present and use_fit, else the learnt ones, else the config's."""
    try:
        from metaloihi.offline import checkpoint, config, maml, model, train
    except ImportError as err:
        raise UserError(f"offline/ cannot be imported here ({err}); export --random works "
                        "without it") from None
    state = checkpoint.load(path)
    for key, val in state["meta"].items():
        bad = ~torch.isfinite(val.detach())
        if bad.any():
            at = [int(i) for i in torch.nonzero(bad)[0]]
            raise UserError(f"checkpoint {str(path)!r}: {key} holds "
                            f"{float(val.detach()[bad].flatten()[0])} at {at} (a diverged run?); "
                            "a network with NaN/inf parameters cannot be exported")
    cfg = config.from_dict(state["config"])
    setup = train.setup(cfg)
    theta0 = {k: v.detach().to(torch.float64) for k, v in
              maml.theta0_of(state["meta"], cfg.maml).items()}
    learnt = maml.learnt_values(state["meta"])
    head = HeadParams(soel_threshold=learnt.get("soel.threshold", cfg.maml.soel_threshold),
                      soel_eta=learnt.get("soel.eta", cfg.maml.soel_eta),
                      target_on=int(cfg.maml.soel_target_on),
                      target_off=int(cfg.maml.soel_target_off), rng_seed=int(cfg.train.seed),
                      passes=max(int(cfg.maml.inner_steps), 1)
                      if cfg.maml.inner_rule == "soel" else 1)
    meta = default_meta(source=path, split=state.get("split", {}))
    fitted = state.get("soel_fit") if use_fit else None
    if fitted:
        head = replace(head, soel_threshold=float(fitted["soel_threshold"]),
                       soel_eta=float(fitted["soel_eta"]), target_on=int(fitted["target_on"]),
                       passes=int(fitted.get("passes", head.passes)))
        meta["soel_fit"] = dict(fitted)
    meta["iteration"] = int(state.get("iteration", 0))
    meta["dataset"] = cfg.data.dataset
    meta["encoding"] = model.encoding(cfg.model).to_dict()
    meta["head_range"] = learnt.get(maml.HEAD_RANGE)
    return setup.specs, theta0, setup.neurons, head, meta


def export_bundle(out: str | Path, specs: list, params: dict, neurons: list,
                  head: HeadParams | None = None, meta: dict | None = None,
                  head_weight_exp: int | None = None, nir_path: str | Path | None = None,
                  head_range: float | None = None) -> tuple[Path, Quantized]:
    """Quantise (bridge.quantize; head_range: see there) and write the bundle (+ NIR)."""
    if head_range is None and meta:
        head_range = meta.get("head_range")
    q = quantize(specs, params, neurons, head_weight_exp=head_weight_exp,
                 head_range=head_range)
    path = write_bundle(out, q.net, head, q.scales, meta)
    if nir_path is not None:
        from metaloihi.bridge.nir_export import write_nir
        write_nir(nir_path, q.net, q.scales)
    return path, q
