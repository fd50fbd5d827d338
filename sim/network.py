"""A network description richer than ``fixed.Network``, for networks made elsewhere (netx files):
an optional input population driven through its bias, graded input messages, conv dilation and
groups, per-synapse dense delays, recurrent dense layers, LIF neurons that reset on a schedule,
and neuron integers exactly as Lava's LIF receives them (netx passes file values unchecked).

The integer semantics are those of ``sim.fixed`` (Lava 0.10's fixed_pt CPU models); what is new
here, each read from Lava's source:
- DelayDense (lava/proc/dense/models.py): a spike at step t over a synapse of delay d reaches the
  neuron at step t + 1 + d; each delay's sum is shifted by weight_exp on its own.
- LIFReset (lava/proc/lif/models.py): u and v are zeroed before the update of every step t
  (1-based) with t % interval == offset % interval.
- Graded input (num_message_bits > 0): Dense sums w * x in int32 (np.dot), then shifts; Conv sums
  in float64 and wraps to 24 bits, as for spikes.
- A recurrent dense layer is two Dense synapses into one LIF: the feed-forward one and one from the
  layer's own spikes, each delaying one step; each synapse picks its own sign mode.
- A population may instead be sigma-delta (sim.sdnn.SigmaDelta: netx's SDNN neurons); its
  messages are graded values for the next synapse, and an input Delta population takes the input
  at its a_in.
``sim.network_run.run`` runs it; ``from_fixed`` wraps one of our own networks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import DenseSpec, SynapseSpec, check_chain
from metaloihi.sim.fixed import FixedLayer, dense_effective_weights
from metaloihi.sim.sdnn import SigmaDelta

MAX_DELAY = 62            # netx clamps delays to 0..62 (DelayDense max_delay)


@dataclass(frozen=True)
class Reset:
    """LIFReset's schedule: zero u and v at the start of steps t (1-based) where
    t % interval == offset % interval."""
    interval: int
    offset: int

    def __post_init__(self):
        if self.interval < 1 or self.offset < 0:
            raise UserError(f"reset interval {self.interval} must be >= 1 and offset "
                            f"{self.offset} >= 0 (Lava's LIFReset)")


@dataclass(frozen=True)
class Cuba:
    """A CUBA LIF population's integers as Lava's LIF model uses them: decay factors
    (4096 - du - 1) and (4096 - dv), threshold vth << 6, and the bias added to v each step
    (mantissa << exponent, torch flatten order). Unlike LifFixed, out-of-range values that netx
    passes through (du -1, dv 4096, vth beyond 17 bits in its default readout neuron) are kept."""
    du: int
    dv: int
    vth: int
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    reset: Reset | None = None

    @property
    def u_factor(self) -> int:
        return L.DECAY_UNITY - (int(self.du) + L.DU_OFFSET)

    @property
    def v_factor(self) -> int:
        return L.DECAY_UNITY - int(self.dv)

    @property
    def effective_vth(self) -> int:
        return int(self.vth) << L.VTH_SHIFT

    @staticmethod
    def from_lif(n: L.LifFixed) -> "Cuba":
        return Cuba(du=int(n.du), dv=int(n.dv), vth=int(n.vth),
                    bias=np.atleast_1d(n.effective_bias).astype(np.int64))


@dataclass(frozen=True)
class NetLayer:
    """One synapse (or two, recurrent) into one CUBA (or sigma-delta) population."""
    spec: SynapseSpec
    weight: np.ndarray                    # the integers Lava multiplies, torch layout: Dense
                                          # weights after its clip and truncation (see
                                          # fixed.dense_effective_weights), Conv's as given
    neuron: Cuba | SigmaDelta
    weight_exp: int = 0                   # Dense only (Lava's Conv ignores it)
    delay: np.ndarray | None = None       # Dense only: int [out, in] in 0..62 (DelayDense)
    weight_rec: np.ndarray | None = None  # recurrent Dense: effective int [out, out], same exp
    name: str = ""                        # where it came from, e.g. "layer 2 (conv)"

    def __post_init__(self):
        w = np.asarray(self.weight, np.int64)
        if tuple(w.shape) != tuple(self.spec.weight_shape):
            raise UserError(f"{self.name or 'layer'}: weight shape {tuple(w.shape)} does not match "
                            f"{self.spec.weight_shape}")
        object.__setattr__(self, "weight", w)
        dense = isinstance(self.spec, DenseSpec)
        if not dense and (self.delay is not None or self.weight_rec is not None or
                          self.weight_exp != 0):
            raise UserError(f"{self.name or 'layer'}: delays, recurrence and weight_exp are "
                            "Dense features")
        if self.delay is not None:
            d = np.asarray(self.delay, np.int64)
            if d.shape != w.shape or d.min(initial=0) < 0 or d.max(initial=0) > MAX_DELAY:
                raise UserError(f"{self.name or 'layer'}: delays must be int [out, in] = "
                                f"{w.shape} in 0..{MAX_DELAY}")
            object.__setattr__(self, "delay", d)
        if self.weight_rec is not None:
            r = np.asarray(self.weight_rec, np.int64)
            n = self.spec.out_features
            if r.shape != (n, n):
                raise UserError(f"{self.name or 'layer'}: recurrent weight shape {r.shape}, "
                                f"expected {(n, n)}")
            object.__setattr__(self, "weight_rec", r)
        bias = np.asarray(self.neuron.bias, np.int64)
        if bias.size not in (1, self.n_out):
            raise UserError(f"{self.name or 'layer'}: {bias.size} biases for {self.n_out} neurons")

    @property
    def n_out(self) -> int:
        return int(prod(self.spec.out_shape))


@dataclass(frozen=True)
class SpikingNet:
    """Input, then layers in order. The input is either spikes (graded values with
    graded_input) into the first synapse, or, with an input population, the bias mantissa of
    that population (exponent input_bias_exp), as lava-dl's netx feeds its input layer; a
    sigma-delta input population (a Delta) takes the input values at its a_in instead."""
    input_shape: tuple[int, ...]
    layers: tuple[NetLayer, ...]
    input_neuron: Cuba | SigmaDelta | None = None
    input_bias_exp: int = 6
    graded_input: bool = False
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers and self.input_neuron is None:
            raise UserError("a network needs at least one layer")
        if self.layers:
            first = self.layers[0].spec
            ok = (prod(self.input_shape) == first.in_features if isinstance(first, DenseSpec)
                  else tuple(first.in_shape) == self.input_shape)
            if not ok:
                raise UserError(f"{self.layers[0].name or 'layer 0'} expects input "
                                f"{first.in_shape} but the network's input is {self.input_shape}")
            check_chain([layer.spec for layer in self.layers])

    @property
    def populations(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape in torch order) of every recorded population, input population first."""
        out = [("input", self.input_shape)] if self.input_neuron is not None else []
        return out + [(layer.name or f"layer {i}", tuple(layer.spec.out_shape))
                      for i, layer in enumerate(self.layers)]


def from_fixed(net: list[FixedLayer]) -> SpikingNet:
    """One of our own networks (sim.fixed) in this description: spikes in, same results."""
    layers = [NetLayer(layer.spec, dense_effective_weights(layer.weight, layer.num_weight_bits)
                       if isinstance(layer.spec, DenseSpec) else layer.weight,
                       Cuba.from_lif(layer.neuron), layer.weight_exp, name=f"layer {i}")
              for i, layer in enumerate(net)]
    return SpikingNet(tuple(net[0].spec.in_shape), tuple(layers))
