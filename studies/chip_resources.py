"""What a bundle's network occupies on Loihi 2: per layer neurons, synapses, synaptic memory at the
bundle's 8-bit weights and the neuro-cores needed under studies/loihi2_limits.py's per-core
limits; whether it fits one chip; the learning head's extra state.

Synapses are counted two ways, since which one a board uses depends on the compiler:
  per-synapse   every real connection stored as its own synapse (what a Dense-style synaptic
                memory holds): conv: out neurons x C_in x kh x kw minus the taps that padding
                clips; this is also what a spike costs (its fan-out).
  shared        a conv's kernel stored once (C_out x C_in x kh x kw): Loihi 2 compresses
                convolutional connectivity (BRIEF), but its encoding and overhead are not
                published, so this is the lower bound of memory and cores.
The input layer's spikes come from the host (Lava's source process), so they occupy no core;
a netx input layer with a neuron (a LIF population driven by its bias) is a population on chip:
its neurons count, it has no synapses.

Every network is costed through sim/network.py's SpikingNet (our bundles through from_fixed), so
netx features count as they would on Loihi 2:
  conv dilation / groups  real connections only: a dilated tap reads input o*s - p + t*d; with
                groups, an input channel reaches out_channels / groups output channels
  recurrent     a dense_rec layer's second synapse (its own n outputs back to its n neurons):
                n x n more synapses, n more input axons, its spikes' fan-out n more ops
  delays        a dense layer with synaptic delays stores each synapse's delay beside its
                weight (Limits.delay_bits more per synapse; the dendritic accumulator's ring of
                delay slots per neuron is neuron state, not counted here)
  graded spikes (netx input_message_bits > 0) one message each, carrying its payload: the
                same synaptic ops as a binary spike (the payload multiplies the weight in the
                op) and no more synaptic memory."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec
from metaloihi.sim.network import SpikingNet, from_fixed
from metaloihi.studies.loihi2_limits import Limits


def as_net(net) -> SpikingNet:
    """A SpikingNet as it is; one of our sim.fixed networks (a bundle's net) through
    sim.network.from_fixed: one description for every cost."""
    return net if isinstance(net, SpikingNet) else from_fixed(list(net))


def _axis_fanout(n_in: int, n_out: int, k: int, s: int, p: int, d: int = 1) -> np.ndarray:
    """For one spatial axis: how many (output index, kernel tap) pairs read input index i."""
    cnt = np.zeros(n_in, np.int64)
    for o in range(n_out):
        for t in range(k):
            i = o * s - p + t * d
            if 0 <= i < n_in:
                cnt[i] += 1
    return cnt


def fanout(spec: SynapseSpec) -> np.ndarray:
    """Connections leaving each presynaptic neuron (torch flatten order of in_shape)."""
    if isinstance(spec, DenseSpec):
        return np.full(spec.in_features, spec.out_features, np.int64)
    c, h, w = spec.in_shape
    _, oh, ow = spec.out_shape
    fh = _axis_fanout(h, oh, spec.kernel[0], spec.stride[0], spec.padding[0], spec.dilation[0])
    fw = _axis_fanout(w, ow, spec.kernel[1], spec.stride[1], spec.padding[1], spec.dilation[1])
    per_pos = spec.out_channels // spec.groups * fh[:, None] * fw[None, :]
    return np.broadcast_to(per_pos, (c, h, w)).reshape(-1).astype(np.int64)


def nonzero_connections(spec: SynapseSpec, weight: np.ndarray) -> int:
    """Real connections whose weight is not zero (a sparse encoding's count)."""
    w = np.asarray(weight) != 0
    if isinstance(spec, DenseSpec):
        return int(w.sum())
    c, h, ww = spec.in_shape
    _, oh, ow = spec.out_shape
    (sh, sw), (ph, pw), (dh, dw) = spec.stride, spec.padding, spec.dilation
    # output positions each kernel tap reaches inside the (unpadded) input
    vh = np.array([sum(0 <= o * sh - ph + t * dh < h for o in range(oh))
                   for t in range(spec.kernel[0])])
    vw = np.array([sum(0 <= o * sw - pw + t * dw < ww for o in range(ow))
                   for t in range(spec.kernel[1])])
    return int((w * vh[None, None, :, None] * vw[None, None, None, :]).sum())


@dataclass
class LayerResources:
    index: int                   # population index (a netx input population is 0)
    kind: str                    # input / conv / dense / dense_rec / head
    neurons: int
    fan_in_axons: int            # presynaptic neurons (input axons the layer's cores receive)
    synapses: int                # per-synapse form: real connections
    synapses_nonzero: int
    synapses_shared: int         # kernel form (conv) = weight entries; dense: = synapses
    memory_bytes: int            # per-synapse form, weight bits + overhead
    memory_shared_bytes: int
    cores: int                   # per-synapse form
    cores_shared: int
    limited_by: str              # what sets `cores`
    name: str = ""               # the population's name (a netx file's "layer 2 (conv)")


def _cores(neurons: int, mem: int, lim: Limits) -> tuple[int, str]:
    by_n = math.ceil(neurons / lim.neurons_per_core.value)
    by_m = math.ceil(mem / lim.synapse_memory_per_core.value)
    return max(by_n, by_m, 1), ("synaptic memory" if by_m > by_n else "neurons")


def layer_resources(net, lim: Limits | None = None, head: bool = False
                    ) -> list[LayerResources]:
    """Per population of `net` (a SpikingNet, or a sim.fixed network: as_net); head: the last
    layer is our bundle's learning head."""
    lim = lim or Limits()
    net = as_net(net)
    out = []
    if net.input_neuron is not None:
        n = int(np.prod(net.input_shape))
        cores, by = _cores(n, 0, lim)
        out.append(LayerResources(0, "input", n, 0, 0, 0, 0, 0, 0, cores, cores, by, "input"))
    for i, layer in enumerate(net.layers):
        spec, n = layer.spec, layer.n_out
        bits = (lim.weight_bits.value + lim.synapse_overhead_bits.value
                + (lim.delay_bits.value if layer.delay is not None else 0))
        rec = layer.weight_rec
        syn = int(fanout(spec).sum()) + (n * n if rec is not None else 0)
        nonzero = nonzero_connections(spec, layer.weight) + (
            int(np.count_nonzero(rec)) if rec is not None else 0)
        shared = int(np.prod(spec.weight_shape)) + (n * n if rec is not None else 0)
        mem, mem_sh = math.ceil(syn * bits / 8), math.ceil(shared * bits / 8)
        cores, by = _cores(n, mem, lim)
        cores_sh, _ = _cores(n, mem_sh, lim)
        kind = ("head" if head and i == len(net.layers) - 1 else "conv"
                if isinstance(spec, ConvSpec) else "dense_rec" if rec is not None else "dense")
        out.append(LayerResources(len(out), kind, n, int(np.prod(spec.in_shape)) + (
            n if rec is not None else 0), syn, nonzero, shared, mem, mem_sh, cores, cores_sh,
            by, layer.name))
    return out


def head_state(net, dw: str, lim: Limits | None = None) -> dict:
    """The learning head's state beyond an inference layer: the pre trace x1 per input, the
    post traces y1..y3 per output neuron (lim.trace_bits each), and the learning-engine program:
    the rule's dw string, its sum-of-products terms."""
    lim = lim or Limits()
    head = net[-1]
    n_in, n_out = head.spec.in_features, head.spec.out_features
    tb = int(lim.trace_bits.value)
    trace_bits = n_in * tb + 3 * n_out * tb
    return {"pre_traces_x1": n_in, "post_traces_y1_y2_y3": 3 * n_out,
            "trace_bits_each": tb, "trace_bytes": math.ceil(trace_bits / 8),
            "learning_synapses": n_in * n_out, "dw": dw,
            # terms are joined by spaced signs (an exponent like 2^-3 has an unspaced one)
            "dw_product_terms": len([t for t in dw.replace(" - ", " + ").split(" + ")
                                     if t.strip()])}


def fits(layers: list[LayerResources], lim: Limits | None = None) -> dict:
    """Totals and whether they fit one chip (per-synapse form, and the shared lower bound)."""
    lim = lim or Limits()
    neurons = sum(r.neurons for r in layers)
    cores, cores_sh = sum(r.cores for r in layers), sum(r.cores_shared for r in layers)
    syn = sum(r.synapses for r in layers)
    fan_ok = all(r.fan_in_axons <= lim.fan_in_axons_per_core.value for r in layers)
    chip = lim.cores_per_chip.value
    return {"neurons": neurons, "synapses": syn,
            "synapses_shared": sum(r.synapses_shared for r in layers),
            "memory_bytes": sum(r.memory_bytes for r in layers),
            "memory_shared_bytes": sum(r.memory_shared_bytes for r in layers),
            "cores": cores, "cores_shared": cores_sh,
            "fan_in_within_limit": fan_ok,
            "fits_one_chip": bool(cores <= chip and neurons <= lim.neurons_per_chip.value
                                  and syn <= lim.synapses_per_chip.value and fan_ok),
            "fits_one_chip_shared": bool(cores_sh <= chip and fan_ok)}


def as_dicts(layers: list[LayerResources]) -> list[dict]:
    return [asdict(r) for r in layers]
