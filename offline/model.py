"""The paper's network (table 2) built only from sim/'s float layers, its input encoding and its
logits: what offline/ trains is exactly what bridge/ maps to Loihi 2.

A model is (specs, params, neurons): sim.arch specs, a float_lif parameter dict
(``layers.{i}.weight``) and one LifFloat per layer. Nothing here holds state.

Logits: sim/readout.py (the readout rule every back end shares).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
import torch

from metaloihi.base.bounds import bounded
from metaloihi.datasets.encoding import Encoding
from metaloihi.datasets.encoding import encode as encode_frames
from metaloihi.sim import float_lif
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec, paper_arch
from metaloihi.sim.loihi import LifFloat
from metaloihi.sim.readout import logits



@dataclass(frozen=True)
class ModelConfig:
    """Architecture, neuron and input-encoding settings (one section of a training config)."""
    channels: tuple[int, ...] = bounded((32, 64, 128), 1, 4096)    # table 2
    kernel: int = bounded(5, 1, 63)
    pool: int = bounded(1, 1)        # spatial sum-pool of the input frames before binarising
    time_pool: int = bounded(1, 1)   # merge this many frame bins into one step (OR), 100 -> 50
    steps: int | None = bounded(None, 1)   # keep the last `steps` steps after time pooling
                                           # (None: all)
    du: float = bounded(0.2, 0.0, 1.0)     # current decay per step (tau_syn = 5 steps of 1 ms)
    dv: float = bounded(0.1, 0.0, 1.0)     # voltage decay per step (tau_mem = 10 steps)
    vth: float = bounded(1.0, 1e-9)
    init_rate: float = bounded(0.05, 1e-9, 1.0)   # hidden firing rate the initial weights are
                                                  # calibrated to
    head_init_rate: float = bounded(0.05, 1e-9, 1.0)
    uniform_head: bool = False  # head weights start all equal: no class preference before the
                                # inner loop (random head weights outweigh a one-shot update)


def encoding(cfg: ModelConfig) -> Encoding:
    """The input encoding of this model (datasets/encoding.py); it travels in the bundle."""
    return Encoding(pool=cfg.pool, time_pool=cfg.time_pool, steps=cfg.steps)


def input_shape(frame_shape: tuple[int, ...], cfg: ModelConfig) -> tuple[int, int, int]:
    """Per-step network input (C, H, W) for data set frames [T, 2, H, W]."""
    return encoding(cfg).input_shape(frame_shape)


def encode(x: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Data set frames [B, T, 2, H, W] (event counts) -> binary input spikes [B, T', 2, H', W']
    as float32 (spatial sum-pool, time pool, threshold > 0: datasets.encoding.encode)."""
    return torch.from_numpy(encode_frames(x, encoding(cfg)).astype(np.float32))


def build(frame_shape: tuple[int, ...], ways: int, cfg: ModelConfig
          ) -> tuple[list[SynapseSpec], list[LifFloat]]:
    """Specs (paper_arch with pooling folded into stride-2 convs) and neurons per layer."""
    specs = paper_arch(input_shape(frame_shape, cfg), ways=ways, channels=tuple(cfg.channels),
                       kernel=cfg.kernel)
    neurons = [LifFloat(du=cfg.du, dv=cfg.dv, vth=cfg.vth) for _ in specs]
    return specs, neurons


def init_params(specs: list[SynapseSpec], generator: torch.Generator,
                dtype: torch.dtype = torch.float32, uniform_head: bool = False
                ) -> dict[str, torch.Tensor]:
    """Gaussian weights with std 1/sqrt(fan_in) and a small excitatory mean (uniform_head: the
    head's weights all equal that mean); calibrate() then scales each layer so the sparse DVS
    input can drive it."""
    params = {}
    for i, spec in enumerate(specs):
        z = torch.randn(spec.weight_shape, generator=generator, dtype=dtype)
        if uniform_head and i == len(specs) - 1:
            z = torch.zeros_like(z) + 0.8   # 0.2 + 0.8 = 1 per fan-in unit: drives like the rest
        params[float_lif.weight_key(i)] = (z + 0.2) / np.sqrt(spec.fan_in)
    return params


@torch.no_grad()
def calibrate(specs, params: dict, neurons, x: torch.Tensor, rate: float, head_rate: float,
              iters: int = 12) -> dict[str, torch.Tensor]:
    """Scale each layer's weights (bisection on a log gain) so its mean firing rate on x is close
    to `rate` (the head: `head_rate`): a dead or saturated start has no surrogate signal."""
    params = dict(params)
    for i in range(len(specs)):
        target = head_rate if i == len(specs) - 1 else rate
        w0 = params[float_lif.weight_key(i)]
        lo, hi = -6.0, 8.0
        for _ in range(iters):
            mid = (lo + hi) / 2
            params[float_lif.weight_key(i)] = w0 * 2.0 ** mid
            sub = sub_params(params, 0, i + 1)
            got = float_lif.run(specs[: i + 1], sub, neurons[: i + 1], x)["spikes"][-1].mean()
            lo, hi = (lo, mid) if got > target else (mid, hi)
        params[float_lif.weight_key(i)] = w0 * 2.0 ** ((lo + hi) / 2)
    return params


def sub_params(params: dict, first: int, stop: int) -> dict:
    """The entries of layers first..stop-1, renumbered from 0 (a sub-network's dict)."""
    out = {}
    for key, val in params.items():
        at = float_lif.key_layer(key)
        if at is not None and first <= at[0] < stop:
            out[float_lif.param_key(at[0] - first, at[1])] = val
    return out


def features(specs, params: dict, neurons, x: torch.Tensor, stop: int,
             trunc: int | None) -> torch.Tensor:
    """Spikes [B, T, n] of layer stop-1 (the input of layer `stop`); x itself when stop == 0."""
    if stop == 0:
        return x.reshape(*x.shape[:2], -1)
    out = float_lif.run(specs[:stop], sub_params(params, 0, stop), neurons[:stop], x,
                        trunc=trunc)
    return out["spikes"][-1]


def forward_from(specs, params: dict, neurons, h: torch.Tensor, first: int,
                 trunc: int | None) -> torch.Tensor:
    """Logits of layers first.. on their input spikes h [B, T, n] (layer first-1's output)."""
    tail = specs[first:]
    if first > 0 and isinstance(tail[0], ConvSpec):
        h = h.reshape(*h.shape[:2], *tail[0].in_shape)
    elif first == 0:
        h = h.reshape(*h.shape[:2], *specs[0].in_shape)
    out = float_lif.run(tail, sub_params(params, first, len(specs)), neurons[first:], h,
                        trunc=trunc)
    vth = params.get(float_lif.neuron_key(len(specs) - 1, "vth"), neurons[-1].vth)
    return logits(out, vth)


def forward(specs, params: dict, neurons, x: torch.Tensor, trunc: int | None = None
            ) -> torch.Tensor:
    """Logits [B, ways] of encoded input spikes x [B, T, C, H, W]."""
    return forward_from(specs, params, neurons, x.reshape(*x.shape[:2], -1), 0, trunc)


def n_features(specs, layer: int) -> int:
    spec = specs[layer]
    return spec.in_features if isinstance(spec, DenseSpec) else prod(spec.in_shape)
