"""Attach the on-chip learning head to any network: a bundle (ours, or the netx-layout bundle an
NIR import writes) or a netx file written by lava-dl. Layers 1..K of the file's `layer/` group
(netx's numbering: 0 is the input) stay frozen, everything after K is dropped, and a dense head
from layer K's spikes to N output neurons is added with silent start (zero weights, zero bias)
and the rule in the chip's units. The result is an ordinary bundle (bridge/bundle.py, validated
on writing and read back by read_bundle), so fit-soel, adapt, continual, deploy, cost and the
report take it unchanged.

The frozen body of a bundle is sim.fixed's CUBA conv/dense layers, which the session code runs
(sim.fixed in sim/, netx on Lava). A netx layer is taken into it when the integers netx hands to
Lava for it are exactly such a layer: read with bridge/netx_read.py (netx's own arithmetic),
dense weights after netx's shift and Lava's truncation divided back by 2^-weight_exp (exact:
the dropped bits are zero, else refused), conv weights as they are, all on the deployable grid
(even mantissas, |m| <= 254: netx then rebuilds the same integers from the bundle, as lava-dl's
exporter writes them). After writing, the learner's layers are read back through netx_read and
must equal the source's integer for integer (else a bug is reported).

Refused before any work, one line naming the layer, its type and why (sim/'s network
description runs them, but the session's frozen part does not yet; docs/attach_head.md):
an input layer with a neuron (its input is a bias image, a session feeds spikes), Dense axonal
delays and recurrent dense layers (the session's frozen part is sim.fixed, and on Lava its
from-rest reset covers u, v and one synaptic buffer per layer), conv dilation or groups, netx's
default neuron of a dense layer without one (du -1, dv 4096: outside Loihi's 12-bit decays),
weights off the deployable grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from metaloihi import rules
from metaloihi.base.atomic import regular_input
from metaloihi.base.errors import UserError
from metaloihi.base.paths import check_io
from metaloihi.bridge.bundle import NETX_BIAS_EXP, HeadParams, default_meta, read_bundle, \
    write_bundle
from metaloihi.bridge.netx_read import read_netx
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.fixed import FixedLayer
from metaloihi.sim.network import NetLayer

# the silent head's rule in the chip's units: its card's silent_rule (and SILENT_STEP)
VTH_PER_INPUT = 127    # head threshold = n_in x half the grid's edge (mantissa units)
# meta keys of a source bundle that describe its old head's rule, not the new one
OLD_HEAD_META = ("rule_fit", "rule_float", "soel_fit", "head_range")


@dataclass(frozen=True)
class Attached:
    path: Path
    layer: int                   # K, the file's layer index the head reads
    kinds: tuple[str, ...]       # the frozen layers' types (file order, flatten included)
    n_in: int
    ways: int
    vth: int
    rule: object                 # the ChipRule written
    dropped: int                 # file layers after K that were dropped
    source_kind: str             # "bundle" or "netx"


def _kinds(path: Path) -> tuple[list[str], bool]:
    """The types of the file's layer/ group in order, and whether it is one of our bundles."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"network {str(path)!r} is not an HDF5 file ({err})") from None
    with f:
        if "layer" not in f or not isinstance(f["layer"], h5py.Group) or not len(f["layer"]):
            raise UserError(f"network {str(path)!r} is not a netx network or bundle (no 'layer' "
                            "group)")
        out = []
        for i in range(len(f["layer"])):
            g = f["layer"].get(str(i))
            if g is None or "type" not in g:
                raise UserError(f"network {str(path)!r}: layer {i} has no 'type'")
            v = g["type"][()]
            v = v.reshape(-1)[0] if isinstance(v, np.ndarray) else v
            out.append(v.decode("ascii", "replace") if isinstance(v, bytes) else str(v))
        return out, "metaloihi" in f


def check_layer(kinds: list[str], k: int, path: Path) -> None:
    """K must name a population of the file after the input: one line otherwise."""
    last = len(kinds) - 1
    if not 0 <= k <= last:
        raise UserError(f"--layer {k}: {str(path)!r} has layers 0..{last} (0 is the input; "
                        f"the head reads one of layers 1..{last})")
    if kinds[k] == "input":
        raise UserError(f"--layer {k}: layer {k} (input) is the network's input, not a layer "
                        "the chip computes: a head needs at least one frozen layer before it")
    if kinds[k] == "flatten":
        raise UserError(f"--layer {k}: layer {k} (flatten) has no neurons of its own; its "
                        f"spikes are layer {k - 1}'s: give --layer {k - 1}")


def _refuse(i: int, kind: str, why: str):
    raise UserError(f"layer {i} ({kind}): {why}; cannot be a frozen layer of the learner "
                    "(docs/attach_head.md)")


def _frozen_layer(i: int, kind: str, layer: NetLayer) -> FixedLayer:
    """The sim.fixed layer that computes what netx computes for `layer`, or a one-line refusal."""
    nrn = layer.neuron
    if nrn.reset is not None:
        _refuse(i, kind, "a reset schedule (netx's reset_interval)")
    if layer.delay is not None and np.any(layer.delay != 0):
        _refuse(i, kind, "axonal delays (DelayDense): the session's frozen part runs sim.fixed, "
                "which has one step of delay per connection")
    if layer.weight_rec is not None:
        _refuse(i, kind, "a recurrent dense layer: on Lava a session's samples start from rest "
                "by zeroing u, v and one synaptic buffer per layer, not the recurrent one")
    spec = layer.spec
    if isinstance(spec, ConvSpec) and not spec.plain:
        _refuse(i, kind, f"conv dilation {spec.dilation} / groups {spec.groups}: the bundle's "
                "conv layers and sim.fixed have neither")
    if not (0 <= nrn.du < L.DECAY_UNITY and 0 <= nrn.dv < L.DECAY_UNITY and
            0 <= nrn.vth <= L.VTH_MAX):
        _refuse(i, kind, f"neuron du {nrn.du}, dv {nrn.dv}, vth {nrn.vth} outside Loihi 2's "
                f"12-bit decays / 17-bit threshold (netx's default neuron of a dense layer "
                "without one is)")
    bias = np.broadcast_to(np.asarray(nrn.bias, np.int64), (layer.n_out,))
    if np.any(bias & ((1 << NETX_BIAS_EXP) - 1)):
        _refuse(i, kind, "a bias that is not a mantissa << 6 (netx's bias exponent)")
    w = layer.weight
    if layer.weight_exp < 0:
        s = -layer.weight_exp
        if np.any(w & ((1 << s) - 1)):
            _refuse(i, kind, f"dense weights whose netx shift (weight_exp {layer.weight_exp}) "
                    "drops nonzero bits")
        w = w >> s
    elif layer.weight_exp > 0:
        w = w << layer.weight_exp
    if np.any(w % L.GRID_STEP) or np.abs(w).max(initial=0) > L.GRID_MAX:
        j = tuple(int(a) for a in np.argwhere((w % L.GRID_STEP != 0) |
                                              (np.abs(w) > L.GRID_MAX))[0])
        _refuse(i, kind, f"weight {int(w[j])} at {list(j)} is off the deployable grid (even "
                f"mantissas in [-{L.GRID_MAX}, {L.GRID_MAX}], what lava-dl's exporter writes)")
    return FixedLayer(spec, w, L.LifFixed(du=int(nrn.du), dv=int(nrn.dv), vth=int(nrn.vth),
                                          bias_mant=bias >> NETX_BIAS_EXP,
                                          bias_exp=NETX_BIAS_EXP))


def _same_integers(a: NetLayer, b: NetLayer) -> bool:
    """Whether two layers make Lava compute the same sums and neurons (weights compared as
    w 2^weight_exp, exactly)."""
    e = min(a.weight_exp, b.weight_exp)
    na, nb = a.neuron, b.neuron
    return (a.spec == b.spec and np.array_equal(a.weight << (a.weight_exp - e),
                                                b.weight << (b.weight_exp - e)) and
            (na.du, na.dv, na.vth) == (nb.du, nb.dv, nb.vth) and
            np.array_equal(np.broadcast_to(na.bias, (a.n_out,)),
                           np.broadcast_to(nb.bias, (b.n_out,))) and
            a.delay is None and b.delay is None and a.weight_rec is None and
            b.weight_rec is None)


def attach_head(net: str | Path, layer: int, ways: int, out: str | Path, rule: str = "soel",
                seed: int = 0, vth: int | None = None, step: float | None = None,
                labels: tuple[str, ...] = (), meta: dict | None = None) -> Attached:
    """Write `out`: the network at `net` frozen up to file layer `layer`, with a silent dense
    head of `ways` neurons learning by `rule` on chip (its card's silent_rule). vth: the head's
    threshold mantissa (None: VTH_PER_INPUT x its inputs, at most 17 bits); step: the rule's
    weight step in mantissa units per n x (the nearest the chip has; None: the card's
    SILENT_STEP); seed: the learning engine's rng_seed.
    meta: added to the learner's metadata (e.g. dataset, encoding for a netx file)."""
    src = regular_input(net, "network")
    out = Path(out)
    check_io({"network": src}, {"--out": out})
    if int(ways) < 1:
        raise UserError(f"--ways {ways}: expected >= 1 output neuron")
    if rule not in rules.RULES:
        raise UserError(f"--rule {rule!r}: this version has {', '.join(rules.names())}")
    card = rules.get(rule)
    if not hasattr(card, "silent_rule"):
        raise UserError(f"--rule {rule!r}: its card (rules/{rule}) has no silent_rule, the "
                        "silent-start head attach-head writes")
    if labels and len(labels) != ways:
        raise UserError(f"{len(labels)} labels for {ways} output neurons")
    kinds, is_bundle = _kinds(src)
    check_layer(kinds, int(layer), src)
    source = read_bundle(src) if is_bundle else None      # validated: the first violation
    desc = read_netx(src)                                 # netx's integers, one-line refusals
    if desc.input_neuron is not None:
        _refuse(0, kinds[0], "an input layer with a neuron is driven by a bias image, but a "
                "session presents binary input spikes")
    # file index -> network layer (read_netx names them "layer i (kind)")
    index = {int(lay.name.split()[1]): j for j, lay in enumerate(desc.layers)}
    body = [_frozen_layer(i, kinds[i], desc.layers[index[i]]) for i in sorted(index)
            if i <= layer]
    n_in = body[-1].n_out
    vth = min(L.VTH_MAX, VTH_PER_INPUT * n_in) if vth is None else int(vth)
    if not 1 <= vth <= L.VTH_MAX:
        raise UserError(f"--vth {vth}: expected a threshold mantissa in 1..{L.VTH_MAX} (17 bits)")
    chip = card.silent_rule(card.SILENT_STEP if step is None else step, int(seed))
    last = body[-1].neuron
    head = FixedLayer(DenseSpec(n_in, ways), np.zeros((ways, n_in), np.int64),
                      L.LifFixed(du=last.du, dv=last.dv, vth=vth, bias_mant=0, bias_exp=0))
    # scales: mantissa units per float unit; the head's float threshold is 1 (export's
    # convention), a netx body has no float network (1.0)
    scales = (list(source.scales[:len(body)]) if source else [1.0] * len(body)) + [float(vth)]
    info = {"source": str(src), "source_kind": "bundle" if is_bundle else "netx",
            "layer": int(layer), "layers": kinds[: layer + 1], "dropped": len(kinds) - 1 - layer,
            "ways": int(ways), "rule": rule, "seed": int(seed), "vth": vth,
            "step": float(chip.step)}
    base = {k: v for k, v in (source.meta if source else {}).items()
            if k not in OLD_HEAD_META and k not in ("created", "versions")}
    m = {**base, **default_meta(source=src, split=base.get("split")), **(meta or {}),
         "attach_head": info,
         # a silent-start head's grid edge in float units: fit-soel searches around its step
         "head_range": L.GRID_MAX / float(vth)}
    path = write_bundle(out, body + [head], HeadParams(chip, tuple(labels)), scales, m)
    _check_same(src, desc, path, sorted(i for i in index if i <= layer), index)
    return Attached(path, int(layer), tuple(k for k in kinds[: layer + 1] if k != "input"),
                    n_in, int(ways), vth, chip,
                    len(kinds) - 1 - layer, info["source_kind"])


def _check_same(src: Path, desc, out: Path, files: list[int], index: dict) -> None:
    """The learner's frozen layers, as netx builds them, equal the source's: else a bug."""
    read_bundle(out)                                   # the validator and the reader accept it
    got = read_netx(out)
    want = [desc.layers[index[i]] for i in files]
    if len(got.layers) != len(want) or not all(_same_integers(a, b)
                                               for a, b in zip(got.layers, want)):
        out.unlink()
        raise RuntimeError(f"attach-head: the learner's frozen layers differ from {src}'s as "
                           "netx builds them (a bug in metaloihi)")
