"""Bit-exact integer model of what Lava 0.10's fixed_pt CPU ProcessModels compute.

Functional core: ``lif_step`` and ``step`` take explicit state and return new state; ``run``
is the fast path for feed-forward networks (layer by layer over all time steps, synaptic sums
on BLAS/torch where float represents them exactly) and agrees with ``step`` bit for bit.

Semantics, read from Lava's source (not guessed):
- Dense (PyDenseModelBitAcc): weights clipped to 8 bits by sign mode, mixed-sign weights lose
  their LSB; the integer sum over active inputs is shifted by weight_exp (arithmetic, floor).
- Conv (PyConvModelFixed): a true convolution (scipy.signal.convolve2d) that ignores weight_exp,
  wrapped to 24-bit signed. Our weights are cross-correlation kernels; the builder flips them.
- Each connection delays by one step (a_out sends the sum computed at the previous step).
- Messages travel as int32 (a channel assignment wraps).
- LIF (PyLifModelBitAcc): u = trunc(u * (4096 - du - 1) / 4096) + (a << 6) in int32, then
  Lava's 24-bit wrap (a single +-2**24 correction); v = trunc(v * (4096 - dv) / 4096) + u + bias
  in int32, clipped to +-(2**23 - 1); spike where v > vth << 6, then v = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.errors import UserError
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec, check_chain


@dataclass(frozen=True)
class FixedLayer:
    """One synapse (integer weight mantissas) followed by its LIF population."""

    spec: SynapseSpec
    weight: np.ndarray
    neuron: L.LifFixed
    weight_exp: int = 0          # Dense only: Lava's Conv CPU model ignores it, so Conv has none
    num_weight_bits: int = 8     # Dense only, Lava's Dense parameter (1..8): the weights keep
                                 # their top bits (dense_effective_weights); Conv has none

    def __post_init__(self):
        w = np.asarray(self.weight)
        if tuple(w.shape) != tuple(self.spec.weight_shape):
            raise UserError(f"weight shape {tuple(w.shape)} does not match layer "
                            f"{self.spec} (expected {self.spec.weight_shape})")
        L._check_range("weight mantissa", w, L.WEIGHT_MANT_MIN, L.WEIGHT_MANT_MAX)
        L._check_range("weight_exp", self.weight_exp, L.WEIGHT_EXP_MIN, L.WEIGHT_EXP_MAX)
        if isinstance(self.spec, ConvSpec) and self.weight_exp != 0:
            raise UserError(f"conv weight_exp={self.weight_exp}: Lava's Conv CPU model ignores "
                            "weight_exp, so a conv layer must carry its scale in vth (use 0)")
        bits = self.num_weight_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or \
                not 1 <= bits <= L.WEIGHT_BITS:
            raise UserError(f"num_weight_bits={bits!r}; expected an integer in 1..{L.WEIGHT_BITS} "
                            "(Lava's Dense)")
        if isinstance(self.spec, ConvSpec) and bits != L.WEIGHT_BITS:
            raise UserError(f"conv num_weight_bits={bits}: Lava's Conv has no such parameter "
                            f"(its weights are {L.WEIGHT_BITS}-bit)")
        object.__setattr__(self, "weight", w.astype(np.int64))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.spec.out_shape))


Network = list[FixedLayer]


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to `bits` bits."""
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def decay(x: np.ndarray, factor: int) -> np.ndarray:
    """x * factor / 4096 rounded toward zero (Lava's sign-magnitude right shift)."""
    p = x * factor
    return np.sign(p) * (np.abs(p) >> L.DECAY_BITS)


def dense_effective_weights(w: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
    """Lava's clip + truncation of Dense weights by sign mode (lava.utils.weightutils): clip to
    8 bits, then drop the 8 - num_weight_bits low bits, one more in mixed mode (its sign takes
    a bit: 8 bits mixed drop the LSB). The sign mode is the weights' own (Lava's default)."""
    w = np.asarray(w, dtype=np.int64)
    drop = L.WEIGHT_BITS - int(num_weight_bits)
    if w.min() >= 0:                       # excitatory
        return (np.clip(w, 0, L.WEIGHT_MANT_MAX) >> drop) << drop
    if w.max() <= 0:                       # inhibitory
        return -((np.clip(-w, 0, L.WEIGHT_MANT_MAX) >> drop) << drop)
    w = np.clip(w, L.WEIGHT_MANT_MIN, L.WEIGHT_MANT_MAX)
    return (w >> (drop + 1)) << (drop + 1)   # mixed: one mantissa bit goes to the sign


def _exact_dtype(layer: FixedLayer, weight: np.ndarray) -> torch.dtype:
    # Sums of |w| <= fan_in * max|w| are exact in float32 below 2**24 (float64: 2**53).
    bound = layer.spec.fan_in * int(np.abs(weight).max(initial=0))
    return torch.float32 if bound < 2 ** 24 else torch.float64


def _as_tensor(x) -> torch.Tensor:
    return x if torch.is_tensor(x) else torch.from_numpy(np.ascontiguousarray(x))


def accumulate(layer: FixedLayer, spikes) -> torch.Tensor:
    """Exact integer synaptic sums (as float) of binary spikes [B, *in_shape] -> [B, n_out],
    before the connection's shift and wrap (the reference path: dense torch ops)."""
    spec = layer.spec
    s = _as_tensor(spikes)
    b = s.shape[0]
    if isinstance(spec, DenseSpec):
        w = dense_effective_weights(layer.weight, layer.num_weight_bits)
        dt = _exact_dtype(layer, w)
        return s.reshape(b, -1).to(dt) @ torch.from_numpy(w.T.copy()).to(dt)
    dt = _exact_dtype(layer, layer.weight)
    acc = F.conv2d(s.reshape(b, *spec.in_shape).to(dt), torch.from_numpy(layer.weight).to(dt),
                   stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                   groups=spec.groups)
    return acc.reshape(b, -1)


def _shift_and_wrap(layer: FixedLayer) -> tuple[int, int]:
    """(weight_exp shift, wrap bits) that the connection applies to its integer sum."""
    if isinstance(layer.spec, DenseSpec):
        return layer.weight_exp, L.CHANNEL_BITS
    return 0, L.CONV_ACC_BITS


def synaptic_sum(layer: FixedLayer, spikes) -> np.ndarray:
    """What the connection process computes from binary input spikes [B, *in_shape]: int64
    activations [B, n_out] as they arrive at the neurons (shifted, wrapped)."""
    acc = accumulate(layer, spikes).numpy().astype(np.int64)
    shift, bits = _shift_and_wrap(layer)
    acc = acc << shift if shift > 0 else acc >> (-shift)
    return wrap_signed(acc, bits)


@dataclass(frozen=True)
class LifState:
    u: np.ndarray       # int64 [B, n]
    v: np.ndarray


def lif_step(state: LifState, neuron: L.LifFixed, a_in: np.ndarray) -> tuple[LifState, np.ndarray]:
    """One Loihi 2 CUBA-LIF update on int64 arrays [B, n]; returns (new state, bool spikes)."""
    act = wrap_signed(a_in << L.ACT_SHIFT, 32)
    d = wrap_signed(decay(state.u, L.DECAY_UNITY - (neuron.du + L.DU_OFFSET)) + act, 32)
    lim = L.UV_LIMIT
    u = np.where(d > lim, d - 2 * lim, np.where(d <= -lim, d + 2 * lim, d))
    v = wrap_signed(decay(state.v, L.DECAY_UNITY - neuron.dv) + u + neuron.effective_bias, 32)
    v = np.clip(v, -lim + 1, lim - 1)
    spikes = v > neuron.effective_vth
    v = np.where(spikes, 0, v)
    return LifState(u=u, v=v), spikes


@dataclass(frozen=True)
class NetState:
    """Per layer: neuron state and the connection's buffered activation (the one-step delay)."""

    neurons: tuple[LifState, ...]
    a_buf: tuple[np.ndarray, ...]


def init_state(net: Network, batch: int) -> NetState:
    zeros = [np.zeros((batch, layer.n_out), dtype=np.int64) for layer in net]
    return NetState(neurons=tuple(LifState(z, z.copy()) for z in zeros),
                    a_buf=tuple(z.copy() for z in zeros))


def step(state: NetState, net: Network, x_t: np.ndarray) -> tuple[NetState, list[np.ndarray]]:
    """One time step of the whole network, as Lava's processes do it in one step: every
    connection sends last step's sum and computes this step's from the spikes it receives."""
    s = np.asarray(x_t)
    neurons, bufs, out = [], [], []
    for layer, ns, buf in zip(net, state.neurons, state.a_buf):
        new_buf = synaptic_sum(layer, s)
        ns, s = lif_step(ns, layer.neuron, buf)
        neurons.append(ns)
        bufs.append(new_buf)
        out.append(s)
    return NetState(tuple(neurons), tuple(bufs)), out


def check_network(net: Network, x_shape: tuple[int, ...]) -> None:
    check_chain([layer.spec for layer in net])
    for i, layer in enumerate(net):
        if isinstance(layer.spec, ConvSpec) and not layer.spec.plain:
            raise UserError(f"layer {i}: conv dilation/groups need sim.network.run (the "
                            "network description), not sim.fixed.run")
    want = tuple(net[0].spec.in_shape)
    got = tuple(x_shape[2:])
    flat_ok = isinstance(net[0].spec, DenseSpec) and int(np.prod(got)) == want[0]
    if got != want and not flat_ok:
        raise UserError(f"input shape {got} per step does not match the network's {want} "
                        "(expected input [batch, steps, *shape])")


def run(net: Network, x: np.ndarray, record_uv: bool = False, layers: str = "all"
        ) -> dict[str, list[np.ndarray]]:
    """Run a feed-forward network on binary input spikes x [B, T, *in_shape].

    Returns {"spikes": [per layer bool [B, T, n]]} and, with record_uv, "u" and "v" (int64
    [B, T, n], after the step's update and reset, as a Lava Monitor reads them), for every
    layer (layers="all") or the output layer only ("last"). Neuron order is torch's flatten
    order of out_shape. Identical to iterating ``step``, only faster.
    """
    if layers not in ("all", "last"):
        raise UserError(f"layers must be 'all' or 'last', got {layers!r}")
    from metaloihi.sim.kernels import hwc_to_chw, scan

    x = np.asarray(x)
    if x.ndim < 3:
        raise UserError(f"input must be [batch, steps, *shape], got shape {x.shape}")
    check_network(net, x.shape)
    b, t = x.shape[:2]
    rec: dict[str, list[np.ndarray]] = {"spikes": [], "u": [], "v": []}
    # binary spikes as uint8 without a copy where x is already a contiguous bool array
    s = np.ascontiguousarray(x if x.dtype == bool else x != 0).view(np.uint8).reshape(b, t, -1)
    hwc = None                           # the (C, H, W) shape s came from in (H, W, C) order
    for i, layer in enumerate(net):
        spec, neuron = layer.spec, layer.neuron
        conv = isinstance(spec, ConvSpec)
        w = layer.weight if conv else dense_effective_weights(layer.weight,
                                                              layer.num_weight_bits)
        shift, bits = _shift_and_wrap(layer)
        spikes, u, v = scan(spec, w, shift, bits, L.DECAY_UNITY - neuron.du - L.DU_OFFSET,
                            L.DECAY_UNITY - neuron.dv, neuron.effective_bias,
                            neuron.effective_vth, s, hwc, record_uv)
        hwc = tuple(spec.out_shape) if conv else None
        s = spikes
        if layers == "last" and i < len(net) - 1:
            continue
        out = [spikes.view(bool)] + ([u, v] if record_uv else [])
        if conv:
            out = [hwc_to_chw(a, spec.out_shape) for a in out]
        rec["spikes"].append(out[0])
        if record_uv:
            rec["u"].append(out[1])
            rec["v"].append(out[2])
    return rec
