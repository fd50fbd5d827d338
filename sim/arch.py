"""Network descriptions shared by the float and the fixed-point models.

A network is a list of synapse specs, each followed by a LIF population. Tensors are in torch's
layout: a sample is [C, H, W] (conv) or [N] (dense); conv weights are [C_out, C_in, kh, kw] and
act as cross-correlation (the Lava builder flips them for Lava's true convolution).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from metaloihi.base.errors import UserError


@dataclass(frozen=True)
class ConvSpec:
    in_shape: tuple[int, int, int]          # (C, H, W)
    out_channels: int
    kernel: tuple[int, int] = (5, 5)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)   # torch's meaning; netx files carry them
    groups: int = 1

    def __post_init__(self):
        if self.groups < 1 or self.in_shape[0] % self.groups or self.out_channels % self.groups:
            raise UserError(f"conv groups={self.groups} must divide in channels "
                            f"{self.in_shape[0]} and out channels {self.out_channels}")

    @property
    def plain(self) -> bool:
        """No dilation and no groups: what our own networks, fixed.run's kernels and the
        bundle's writer handle."""
        return tuple(self.dilation) == (1, 1) and self.groups == 1

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        kh = self.dilation[0] * (self.kernel[0] - 1) + 1
        kw = self.dilation[1] * (self.kernel[1] - 1) + 1
        oh = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise UserError(f"conv kernel {self.kernel} with stride {self.stride}, padding "
                            f"{self.padding} and dilation {self.dilation} does not fit input "
                            f"shape {self.in_shape}")
        return (self.out_channels, oh, ow)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_shape[0] // self.groups, *self.kernel)

    @property
    def fan_in(self) -> int:
        return self.in_shape[0] // self.groups * self.kernel[0] * self.kernel[1]


@dataclass(frozen=True)
class DenseSpec:
    in_features: int
    out_features: int

    @property
    def in_shape(self) -> tuple[int]:
        return (self.in_features,)

    @property
    def out_shape(self) -> tuple[int]:
        return (self.out_features,)

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)

    @property
    def fan_in(self) -> int:
        return self.in_features


SynapseSpec = ConvSpec | DenseSpec


def check_chain(specs: list[SynapseSpec]) -> None:
    """Each layer's input must be the previous layer's output (dense layers flatten)."""
    if not specs:
        raise UserError("a network needs at least one layer")
    for i in range(1, len(specs)):
        prev, cur = specs[i - 1].out_shape, specs[i].in_shape
        if isinstance(specs[i], DenseSpec):
            ok = prod(prev) == cur[0]
        else:
            ok = tuple(prev) == tuple(cur)
        if not ok:
            raise UserError(f"layer {i} expects input {cur} but layer {i - 1} gives {prev}")


def paper_arch(input_shape: tuple[int, int, int] = (2, 32, 32), ways: int = 5,
               channels: tuple[int, ...] = (32, 64, 128), kernel: int = 5) -> list[SynapseSpec]:
    """The paper's 32c5-64c5-128c5 + dense head (table 2), with each 2x2 pooling folded into
    its conv as stride 2 ("same" padding): max pooling of spikes has no Lava/netx process and a
    fixed average-pool conv would add a LIF population (and a step of delay) per pooling; a
    strided conv downsamples as much and is learnt."""
    specs: list[SynapseSpec] = []
    shape = tuple(input_shape)
    if kernel > max(shape[1:]):          # a kernel wider than the image it looks at: mostly padding
        raise UserError(f"kernel {kernel} is larger than the network's {shape[1]}x{shape[2]} "
                        f"input; expected <= {max(shape[1:])}")
    for ch in channels:
        spec = ConvSpec(in_shape=shape, out_channels=ch, kernel=(kernel, kernel), stride=(2, 2),
                        padding=(kernel // 2, kernel // 2))
        specs.append(spec)
        shape = spec.out_shape
    specs.append(DenseSpec(prod(shape), ways))
    return specs


# A synapse spec as plain values (a checkpoint's network.specs): per "type", its fields in order,
# each (how many integers, None: one; the lowest allowed). spec_to_dict writes them,
# spec_from_dict reads them back; bridge/checkpoint_file.py checks each field first, naming it.
SPEC_FIELDS: dict[str, dict[str, tuple[int | None, int]]] = {
    "conv": {"in_shape": (3, 1), "out_channels": (None, 1), "kernel": (2, 1),
             "stride": (2, 1), "padding": (2, 0)},
    "dense": {"in_features": (None, 1), "out_features": (None, 1)},
}
_SPEC_TYPES = {"conv": ConvSpec, "dense": DenseSpec}


def spec_to_dict(spec) -> dict:
    """A synapse spec as plain values (SPEC_FIELDS; spec_from_dict reads them back)."""
    kind = next((k for k, cls in _SPEC_TYPES.items() if isinstance(spec, cls)), None)
    if kind is None:
        raise TypeError(f"not a synapse spec: {spec!r}")
    if kind == "conv" and not spec.plain:
        raise UserError(f"a checkpoint cannot describe conv dilation {spec.dilation} or "
                        f"groups {spec.groups} (netx imports only)")
    out = {"type": kind}
    for key, (count, _) in SPEC_FIELDS[kind].items():
        val = getattr(spec, key)
        out[key] = int(val) if count is None else [int(v) for v in val]
    return out


def spec_from_dict(d: dict) -> SynapseSpec:
    """The synapse spec of spec_to_dict's dict (fields as SPEC_FIELDS; a reader of untrusted
    files checks them first: bridge/checkpoint_file.py)."""
    kind = d["type"]
    return _SPEC_TYPES[kind](**{key: d[key] if count is None else tuple(d[key])
                                for key, (count, _) in SPEC_FIELDS[kind].items()})
