"""Loihi 2's published per-core / per-chip limits and the per-operation energy and time figures the
cost estimate (studies/chip_cost.py) uses, each with its source. A figure Intel has not
published is an explicit assumption (`published=False`), its reason in `source`, and every
figure is a parameter: `Limits(**{...})` / `OpCosts(...)` with other numbers changes the estimate.

Sources, abbreviated in the fields below:
  BRIEF   Intel Labs, "Taking Neuromorphic Computing to the Next Level with Loihi 2", technology
          brief (2021), Loihi vs Loihi 2 comparison table.
  LAVA    lava-nc 0.10, lava/magma/compiler/subcompilers/constants.py (NUM_VIRTUAL_CORES_L2).
  NENGO   nengo-loihi, nengo_loihi/block.py: MAX_COMPARTMENTS 1024, MAX_IN_AXONS 4096,
          MAX_OUT_AXONS 4096, MAX_SYNAPSE_BITS 1048576 per core (Loihi 1).
  DAVIES  M. Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning",
          IEEE Micro 38(1), 2018, Table 2 (Loihi 1, 14 nm, per-operation energy and time).
  ARS     Ars Technica, "Understanding neuromorphic computing and why Intel's excited about it"
          (2021-09), p. 2: Loihi 2 doubles neuron-update performance and speeds spike
          generation ten-fold over Loihi 1 (Intel's statement; no per-op energy is given).
  CLP     E. Hajizada et al., "Online continual learning on Intel Loihi 2 via a co-designed
          spiking neural network" (CLP-SNN), arXiv:2511.01553v2: 0.33 ms and 0.05 mJ per
          learning sample on Loihi 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    source: str
    published: bool = True       # False: an assumption; `source` says why and from what


def _f(value, unit, source, published=True):
    return field(default_factory=lambda: Figure(value, unit, source, published))


@dataclass(frozen=True)
class Limits:
    """Per-core and per-chip limits of Loihi 2 used to place a bundle's layers."""
    cores_per_chip: Figure = _f(128, "neuro-cores", "BRIEF (128 neuro-cores); LAVA "
                                "NUM_VIRTUAL_CORES_L2 = 128")
    neurons_per_chip: Figure = _f(1_048_576, "neurons", "BRIEF: 'up to 1 million' neurons per "
                                  "chip (1,048,576 = 128 cores x 8192)")
    neurons_per_core: Figure = _f(8192, "neurons", "BRIEF: 1M neurons / 128 cores = 8192 per "
                                  "core (Loihi 1: 1024, NENGO MAX_COMPARTMENTS)")
    synapses_per_chip: Figure = _f(120_000_000, "synapses", "BRIEF: up to 120 million synapses "
                                   "per chip (at the smallest weight precision)")
    memory_per_core: Figure = _f(192 * 1024, "bytes", "BRIEF: 192 KB per neuro-core, flexibly "
                                 "allocated among synapses, neuron state and routing")
    synapse_memory_per_core: Figure = _f(
        131_072, "bytes", "NOT PUBLISHED for Loihi 2 (its 192 KB are allocated flexibly): we "
        "assume Loihi 1's synaptic memory, 1,048,576 bits per core (NENGO MAX_SYNAPSE_BITS)",
        False)
    synapse_overhead_bits: Figure = _f(
        0, "bits per synapse", "NOT PUBLISHED: Loihi 2's synapse encoding (index/format bits "
        "beside the weight); 0 counts weight bits only, a lower bound on memory", False)
    fan_in_axons_per_core: Figure = _f(
        4096, "input axons", "NOT PUBLISHED for Loihi 2: assumed Loihi 1's 4096 input axons per "
        "core (NENGO MAX_IN_AXONS)", False)
    fan_out_axons_per_core: Figure = _f(
        4096, "output axons", "NOT PUBLISHED for Loihi 2: assumed Loihi 1's 4096 output axons "
        "per core (NENGO MAX_OUT_AXONS)", False)
    delay_bits: Figure = _f(
        6, "bits per synapse", "NOT PUBLISHED: Loihi 2's synaptic delay encoding; a synapse with "
        "a delay stores it beside its weight, counted as the 6 bits of the range lava-dl's netx "
        "and Lava's DelayDense allow (0..62)", False)
    weight_bits: Figure = _f(8, "bits", "BRIEF: weights of 1-8 bits, signed or unsigned; the "
                             "bundle's mantissas are 8-bit (Lava Dense num_weight_bits <= 8)")
    trace_bits: Figure = _f(7, "bits", "Lava 0.10 learning engine W_TRACE = 7 (x1, y1..y3 "
                            "clipped to 127: rules/engine/chip.py TRACE_MAX)")

    def rows(self) -> list[tuple[str, Figure]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class OpCosts:
    """Energy (pJ) and time (ns) per operation. Loihi 2's per-op figures are not published, so
    the range is Loihi 1's measured ones (DAVIES, the high end) and those divided by
    `loihi2_gain` (the low end)."""
    synop_pj: Figure = _f(23.6, "pJ per synaptic op", "DAVIES Table 2: synaptic spike op, "
                          "minimum energy")
    syn_update_pj: Figure = _f(120.0, "pJ per synapse update", "DAVIES Table 2: synaptic "
                               "update (learning) energy")
    neuron_update_pj: tuple[Figure, Figure] = field(default_factory=lambda: (
        Figure(52.0, "pJ per neuron update", "DAVIES Table 2: neuron update, inactive"),
        Figure(81.0, "pJ per neuron update", "DAVIES Table 2: neuron update, active")))
    spike_pj: Figure = _f(1.7, "pJ per spike", "DAVIES Table 2: within-tile spike energy "
                          "(tile hops not counted: placement is not modelled)")
    synop_ns: Figure = _f(3.5, "ns per synaptic op", "DAVIES Table 2: synaptic spike op time")
    syn_update_ns: Figure = _f(6.1, "ns per synapse update", "DAVIES Table 2: synaptic update "
                               "time")
    neuron_update_ns: tuple[Figure, Figure] = field(default_factory=lambda: (
        Figure(5.3, "ns per neuron update", "DAVIES Table 2: neuron update time, inactive"),
        Figure(8.4, "ns per neuron update", "DAVIES Table 2: neuron update time, active")))
    barrier_ns: tuple[Figure, Figure] = field(default_factory=lambda: (
        Figure(113.0, "ns per time step", "DAVIES Table 2: mesh-wide barrier sync, minimum"),
        Figure(465.0, "ns per time step", "DAVIES Table 2: mesh-wide barrier sync, 32 tiles")))
    loihi2_gain: Figure = _f(
        2.0, "x", "NOT PUBLISHED per operation: the low end divides Loihi 1's energy and time "
        "per op by this factor, Intel's stated 2x neuron-update speed-up (ARS); "
        "host <-> chip I/O and static power are not counted", False)

    def rows(self) -> list[tuple[str, Figure]]:
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                out += [(f"{f.name} ({'low' if i == 0 else 'high'})", x) for i, x in enumerate(v)]
            else:
                out.append((f.name, v))
        return out


@dataclass(frozen=True)
class CpuPower:
    """The CPU energy estimate: time x watts of the one core sim/ runs on (single-threaded).
    /proc/cpuinfo of the development machine names only 'Intel(R) Xeon(R) Processor' (a VM), so
    the TDP is an assumption: a server Xeon's 150-250 W over 20-40 cores."""
    watts_per_core: tuple[float, float] = (4.0, 12.0)
    source: str = ("ASSUMPTION: server Xeon TDP 150-250 W shared by 20-40 cores -> ~4-12 W per "
                   "core; one core busy (OMP/NUMBA threads = 1); idle/uncore power not counted")


# The sanity anchor: CLP-SNN measured on a Loihi 2 board, per learning sample (CLP).
CLP_SNN = {"latency_ms": 0.33, "energy_mJ": 0.05,
           "source": "CLP: Hajizada et al., arXiv:2511.01553v2, abstract (Loihi 2, OpenLORIS)"}
