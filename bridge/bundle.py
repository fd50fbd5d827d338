"""The deployment bundle: one HDF5 file that lava-dl's netx loads as the frozen network, plus our
own group for the learning head and the provenance.

Layout (FORMAT below). Shapes in netx's files are written (C, H, W); netx reverses them to Lava's
(W, H, C). Conv weights are torch's cross-correlation kernels [C_out, C_in, kh, kw]; netx flips
and transposes them for Lava's true convolution itself (hdf5.py, create_conv).

  layer/0                 type "input", shape [C, H, W] (or [N]): only the input shape, no neuron
  layer/k (conv)          type "conv", shape [C, H, W] (output), weight int [C_out, C_in, kh, kw],
                          stride [sh, sw], padding [ph, pw], dilation [1, 1], groups 1,
                          bias int [W, H, C] (per neuron, Lava order: netx passes it through),
                          neuron/{type "CUBA", iDecay = du + 1, vDecay = dv, vThMant = vth,
                          refDelay 1}
  layer/k (flatten)       type "flatten": before the first dense after a conv; netx connects
                          out.transpose([2, 1, 0]).flatten(), i.e. torch's (C, H, W) order
  layer/k (dense)         type "dense", shape [N], weight int [N, N_in] (torch order), bias int
                          [N], neuron/{...}
  metaloihi               attrs format; scales float64 [layers incl. head]
  metaloihi/head          the learning head, a Dense after the last frozen layer (its input is
                          that layer's spikes in torch flatten order, as netx's flatten gives):
                          weight int [N, N_in] (mantissas), bias_mant int [N]; attrs weight_exp,
                          du, dv, vth, bias_exp (Lava LIF units, not netx's); labels (strings)
  metaloihi/head/rule     the on-chip rule in the chip's units (rules.soel.ChipRule), attrs:
                          name "soel", mant (1..7), exp (-7..8): dw = mant 2^exp (u0 x1 y3 -
                          u0 x1 y2); theta (spikes), target_on, target_off (spikes), rng_seed,
                          passes (support-set presentations)
  metaloihi/meta          attrs, each a JSON text: source_sha256, source, split, versions,
                          created (UTC ISO), and whatever the caller adds (export: rule_float,
                          the float rule the chip rule was computed from)

Format /1 (older files) stored the rule in float units (head attrs soel_threshold, soel_eta,
target_on, ..., and a learning_rule group); read_bundle converts it once, as export would have
(rules/soel/legacy.py, the one home of old formats).

netx reads only layer/ (hdf5.Network._create), so our group is invisible to it. What netx does
with our numbers: bias -> bias_mant with bias_exp 6 (the quantiser puts frozen biases there);
iDecay - 1 -> du; Dense weights go through its optimize_weight_bits: for our grid (even
mantissas, |m| <= 254) it picks weight << s with weight_exp = -s and num_weight_bits such that
Lava's truncation drops only zero bits, so sum(w << s) >> s == sum(w): exactly weight_exp 0.
(An all-zero Dense matrix makes it take log2(inf): the validator refuses one.)
Conv has no weight exponent in netx (Lava's Conv ignores it on CPU).
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from metaloihi import __version__
from metaloihi.base.atomic import atomic_path, file_sha256, hdf5_bytes
from metaloihi.base.errors import UserError
from metaloihi import rules
from metaloihi.rules import soel
from metaloihi.rules.soel import legacy
from metaloihi.bridge.validate import FORMAT, FORMAT_V1, validate_bundle
from metaloihi.datasets.encoding import Encoding, encode
from metaloihi.sim import loihi as L
from metaloihi.sim.arch import ConvSpec, DenseSpec
from metaloihi.sim.fixed import FixedLayer, Network

NETX_BIAS_EXP = 6


@dataclass(frozen=True)
class HeadParams:
    """What the on-chip learning of the head needs besides its weights and neuron."""
    rule: object                     # the rule's ChipRule (rules/<name>): the chip's units
    labels: tuple[str, ...] = ()     # class name of output neuron i (empty: 0..N-1)

    @property
    def passes(self) -> int:         # presentations of the support set (the chip learns on each)
        return self.rule.passes


@dataclass(frozen=True)
class Bundle:
    net: Network                 # frozen layers + head (last), sim.fixed layers
    head: HeadParams
    scales: list[float]          # per layer, mantissa units per float weight unit
    meta: dict
    path: Path | None = None     # the file it was read from (netx builds Lava's layers from it)

    @property
    def frozen(self) -> Network:
        return self.net[:-1]

    @property
    def encoding(self):
        """How event frames become this network's input spikes (meta "encoding"; absent in a
        bundle of a random network: frames are used as they are, spike where count > 0)."""
        return Encoding.from_dict(self.meta.get("encoding"))

    def encode(self, frames) -> np.ndarray:
        """Frames [B, T, 2, H, W] -> bool input spikes [B, T', *in_shape], checked against the
        network's input shape."""
        x = encode(frames, self.encoding)
        want = tuple(self.net[0].spec.in_shape)
        if tuple(x.shape[2:]) != want:
            raise UserError(f"frames {tuple(np.shape(frames))[1:]} encode to input "
                            f"{tuple(x.shape[2:])} per step; the bundle's network takes {want}")
        return x


def write_netx_str(g: h5py.Group, name: str, value: str) -> None:
    g.create_dataset(name, (1,), "S10", [value.encode("ascii")])   # as lava-dl's slayer writes it


def _lava_order(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Per-neuron values in torch flatten order of (C, H, W) -> an array [W, H, C]."""
    return a.reshape(shape).transpose(2, 1, 0) if len(shape) == 3 else a.reshape(shape)


def _neuron(g: h5py.Group, layer: FixedLayer) -> None:
    nrn = layer.neuron
    if int(nrn.bias_exp) != NETX_BIAS_EXP and np.any(np.asarray(nrn.bias_mant) != 0):
        raise UserError(f"frozen layer {layer.spec}: bias_exp={nrn.bias_exp}, but netx fixes the "
                        f"bias exponent at {NETX_BIAS_EXP}; quantise with bridge.quantize")
    n = g.create_group("neuron")
    write_netx_str(n, "type", "CUBA")
    n.create_dataset("iDecay", data=np.int64(nrn.du + L.DU_OFFSET))   # netx: du = iDecay - 1
    n.create_dataset("vDecay", data=np.int64(nrn.dv))
    n.create_dataset("vThMant", data=np.int64(nrn.vth))
    n.create_dataset("refDelay", data=np.int64(1))
    shape = tuple(layer.spec.out_shape)
    bias = np.broadcast_to(np.asarray(nrn.bias_mant, np.int64), (layer.n_out,))
    g.create_dataset("bias", data=_lava_order(np.ascontiguousarray(bias), shape).astype(np.int32))


def write_netx_layer(g: h5py.Group, layer: FixedLayer) -> None:
    spec = layer.spec
    if layer.weight_exp != 0:
        raise UserError(f"frozen layer {spec}: weight_exp={layer.weight_exp}; netx has no field "
                        "for it (only the head may have one)")
    if isinstance(spec, ConvSpec) and not spec.plain:
        raise UserError(f"frozen layer {spec}: a bundle holds conv layers without dilation "
                        "or groups")
    write_netx_str(g, "type", "conv" if isinstance(spec, ConvSpec) else "dense")
    g.create_dataset("shape", data=np.array(spec.out_shape, np.int64))
    g.create_dataset("weight", data=layer.weight.astype(np.int16))
    if isinstance(spec, ConvSpec):
        g.create_dataset("stride", data=np.array(spec.stride, np.int64))
        g.create_dataset("padding", data=np.array(spec.padding, np.int64))
        g.create_dataset("dilation", data=np.array([1, 1], np.int64))
        g.create_dataset("groups", data=np.int64(1))
    _neuron(g, layer)


def _write_head(g: h5py.Group, layer: FixedLayer, head: HeadParams) -> None:
    if not isinstance(layer.spec, DenseSpec):
        raise UserError(f"the head must be a dense layer, got {layer.spec}")
    nrn = layer.neuron
    g.create_dataset("weight", data=layer.weight.astype(np.int16))
    g.create_dataset("bias_mant", data=np.broadcast_to(
        np.asarray(nrn.bias_mant, np.int64), (layer.n_out,)).astype(np.int32))
    g.attrs.update(weight_exp=int(layer.weight_exp), du=int(nrn.du), dv=int(nrn.dv),
                   vth=int(nrn.vth), bias_exp=int(nrn.bias_exp))
    labels = list(head.labels) or [str(i) for i in range(layer.n_out)]
    g.create_dataset("labels", data=np.array(labels, dtype=h5py.string_dtype()))
    g.create_group("rule").attrs.update(rules.get(head.rule.name).to_attrs(head.rule))


def default_meta(source: str | Path | None = None, split: dict | None = None) -> dict:
    import torch   # only for its version string: torch is slow to import

    try:
        from importlib.metadata import version
        lava_v = f"lava-nc {version('lava-nc')}, lava-dl {version('lava-dl')}"
    except Exception:  # noqa: BLE001 - Lava is optional
        lava_v = "absent"
    return {"source_sha256": file_sha256(source) if source else "",
            "source": str(source or ""), "split": split or {},
            "versions": {"metaloihi": __version__, "lava": lava_v, "torch": torch.__version__,
                         "h5py": h5py.__version__},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def write_netx_layers(f: h5py.File, net: Network) -> None:
    """net as netx's layer/ group: an input layer with the shape, a flatten before a dense
    layer that follows a conv, then each layer."""
    layers = f.create_group("layer")
    g = layers.create_group("0")
    write_netx_str(g, "type", "input")
    g.create_dataset("shape", data=np.array(net[0].spec.in_shape, np.int64))
    k, prev_conv = 1, False
    for layer in net:
        if isinstance(layer.spec, DenseSpec) and prev_conv:
            write_netx_str(layers.create_group(str(k)), "type", "flatten")
            k += 1
        write_netx_layer(layers.create_group(str(k)), layer)
        k += 1
        prev_conv = isinstance(layer.spec, ConvSpec)


def write_bundle(path: str | Path, net: Network, head: HeadParams | None = None,
                 scales: list[float] | None = None, meta: dict | None = None) -> Path:
    """Write net (frozen layers then the head) atomically: a temporary file in the same folder,
    fsync, os.replace. An interrupted write leaves no file at `path` (or the previous one)."""
    if len(net) < 2:
        raise UserError(f"a bundle needs at least one frozen layer and a head, got {len(net)}")
    scales = [1.0] * len(net) if scales is None else [float(s) for s in scales]
    if len(scales) != len(net):
        raise UserError(f"{len(net)} layers but {len(scales)} scales")
    head = head or HeadParams(soel.to_chip(soel.LearntRule(), scales[-1]))   # the default rule
    meta = {**default_meta(), **(meta or {})}
    check_bundle_target(path)
    arrays = [a for layer in net for a in (layer.weight, layer.neuron.effective_bias)]
    with atomic_path(path, "bundle", hdf5_bytes(arrays)) as tmp:
        with h5py.File(tmp, "w") as f:
            write_netx_layers(f, net[:-1])
            ours = f.create_group("metaloihi")
            ours.attrs["format"] = FORMAT
            ours.create_dataset("scales", data=np.array(scales, np.float64))
            _write_head(ours.create_group("head"), net[-1], head)
            m = ours.create_group("meta")
            for key, val in meta.items():
                m.attrs[key] = json.dumps(val)      # every value as JSON: one rule to read back
    return Path(path)


# --- reading ------------------------------------------------------------------------------------
def _torch_order(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return a.transpose(2, 1, 0).ravel() if len(shape) == 3 else a.ravel()


def read_bundle(path: str | Path) -> Bundle:
    """Validate (bridge.validate, first violation raises UserError), then return the fixed
    Network (frozen layers + head), the head's learning parameters, scales and metadata."""
    validate_bundle(path)
    net: Network = []
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        shape = tuple(int(s) for s in layers["0/shape"][()])
        for k in range(1, len(layers)):
            g = layers[str(k)]
            kind = g["type"][0].decode()
            if kind == "flatten":
                continue
            w = g["weight"][()].astype(np.int64)
            if kind == "conv":
                spec = ConvSpec(in_shape=shape, out_channels=w.shape[0], kernel=tuple(w.shape[2:]),
                                stride=tuple(int(s) for s in g["stride"][()]),
                                padding=tuple(int(p) for p in g["padding"][()]))
            else:
                spec = DenseSpec(int(np.prod(shape)), w.shape[0])
            out = tuple(spec.out_shape)
            n = g["neuron"]
            nrn = L.LifFixed(du=int(n["iDecay"][()]) - L.DU_OFFSET, dv=int(n["vDecay"][()]),
                             vth=int(n["vThMant"][()]),
                             bias_mant=_torch_order(g["bias"][()].astype(np.int64), out),
                             bias_exp=NETX_BIAS_EXP)
            net.append(FixedLayer(spec, w, nrn, weight_exp=0))
            shape = out
        ours = f["metaloihi"]
        h = ours["head"]
        a = h.attrs
        w = h["weight"][()].astype(np.int64)
        nrn = L.LifFixed(du=int(a["du"]), dv=int(a["dv"]), vth=int(a["vth"]),
                         bias_mant=h["bias_mant"][()].astype(np.int64), bias_exp=int(a["bias_exp"]))
        net.append(FixedLayer(DenseSpec(int(np.prod(shape)), w.shape[0]), w, nrn,
                              weight_exp=int(a["weight_exp"])))
        scales = [float(s) for s in ours["scales"][()]]
        rule = legacy.rule_v1(a, scales[-1]) if ours.attrs["format"] == FORMAT_V1 else \
            _rule(h["rule"].attrs)
        head = HeadParams(rule, labels=tuple(s.decode() if isinstance(s, bytes) else str(s)
                                             for s in h["labels"][()]))
        meta = {key: json.loads(val) for key, val in ours["meta"].attrs.items()}
    return Bundle(net, head, scales, meta, Path(path))


def _rule(a):
    name = a["name"]
    return rules.get(name.decode() if isinstance(name, bytes) else str(name)).from_attrs(a)


def check_bundle_target(path: str | Path) -> None:
    """A bundle replaces only a bundle: an existing checkpoint or other file at `path` is a
    UserError (call it before the work that makes the bundle)."""
    if Path(path).is_file() and not is_bundle(path):
        raise UserError(f"{str(path)!r} exists and is not a bundle; a bundle replaces only a "
                        "bundle: remove it or give another path")


def is_bundle(path: str | Path) -> bool:
    """Whether `path` is one of our bundles (HDF5 with our metaloihi group) rather than a plain
    netx file; False for anything else (its reader then says what is wrong with it)."""
    try:
        with h5py.File(path, "r") as f:
            return "metaloihi" in f
    except OSError:
        return False


def as_bundle(bundle: "Bundle | str | Path") -> Bundle:
    """A Bundle as given, or read (and validated) from its file: APIs take either, once."""
    return bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
