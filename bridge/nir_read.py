"""Read an NIR graph (``nir.read``) and map it onto what Loihi 2's CUBA LIF computes: a float
network in sim/'s description (synapse specs, sim.float_lif's params dict, one LifFloat per
population), ready for bridge/nir_import.py to quantise through sim/loihi.py.

Every check runs before any work: the whole graph is refused by one line naming the node, its
type and why (a UserError) for a node type outside SUPPORTED, a branch, a cycle (recurrence), a
node without an edge in or out, an edge to a missing node, a shape that does not fit, a
non-finite parameter, a reset or leak Loihi lacks.

The graph must be a chain Input -> (linear nodes -> one neuron node)+ -> Output. The linear
nodes between two populations (Affine, Linear, Conv1d, Conv2d, Flatten, SumPool2d, AvgPool2d,
Scale) are composed into ONE Loihi synapse: a Dense matrix when they contain an Affine or
Linear, else one convolution (a pooling folds into the conv before or after it, or becomes a
fixed conv of its own; the composite is checked against the nodes on a random input). The
composite's constant part (Affine and conv biases) becomes the population's bias.

Semantics (continuous NIR -> Loihi's discrete steps of dt seconds, forward Euler as the NIR
reference simulators and snnTorch/Norse do):
- LIF  tau dv/dt = (v_leak - v) + r I: dv = dt/tau, I scaled by r dt/tau (into the weights),
  bias v_leak dt/tau per step; Loihi's du is 1 (no current state: u = the input).
- CubaLIF  tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = (v_leak - v) + r I: du = dt/tau_syn,
  dv = dt/tau_mem, the input scaled by (w_in dt/tau_syn)(r dt/tau_mem), bias v_leak dt/tau_mem.
- IF / I  dv/dt = r I: no leak (dv = 0); the input is scaled by r per step, not r dt: the
  per-step convention of the frameworks that export IF (Sinabs, snnTorch read r = 1 as unity).
- LI / I / CubaLI are output integrators: they never spike (Loihi vth at its 17-bit maximum),
  the class is read from their membrane at the last step; only the last population may be one.
- Reset: NIR resets v to v_reset; Loihi resets to 0 in the step it spikes, so v_reset must be
  0 (snnTorch's import_from_nir reads every exported neuron as reset-to-zero too; a network
  trained with snnTorch's default reset by subtraction is imported as reset-to-zero). u (the
  synaptic current) is not reset, on Loihi as in NIR.
- Threshold: spike where v > v_threshold (strict), as Lava. Per-neuron thresholds, taus of one
  value per population (Lava's LIF has one du, dv, vth per population); per-neuron thresholds
  and input gains are folded into a Dense row or a conv channel where they vary only there.
- A constant input (Affine or conv bias b) enters Loihi as a bias on v: exact for LIF and IF
  (du = 1), for CubaLIF the steady state b / du, so the first tau_syn/dt steps differ.
- Timing: NIR's nodes act within a step; Lava delays every connection by one step, so layer k's
  spikes come k steps later than in NIR. The float model the gap compares against (sim.float_lif)
  has Lava's timing; a comparison with a framework's own run pads the input by one silent step
  per layer (bridge/nir_gap.py).
- Delay nodes are refused: NIR delays a whole signal, netx's DelayDense delays each synapse of a
  Dense; a Delay right before a neuron could become one, not implemented yet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.atomic import regular_input
from metaloihi.base.errors import UserError
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec
from metaloihi.sim.float_lif import weight_key
from metaloihi.sim.loihi import LifFloat

LINEAR = ("Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale")
SPIKING = ("LIF", "CubaLIF", "IF")
INTEGRATORS = ("LI", "I", "CubaLI")
SUPPORTED = ("Input, Output, " + ", ".join(LINEAR) + ", " + ", ".join(SPIKING + INTEGRATORS))
DEFAULT_DT = 1e-4          # snnTorch's export writes tau = dt / (1 - beta) with dt = 1e-4
MAX_DENSE = 1 << 24        # weights of one composed Dense matrix (its float64 copy: 128 MiB)


@dataclass(frozen=True)
class FloatNet:
    """An NIR graph as sim/'s float network: specs + params + neurons, one per population."""
    input_shape: tuple[int, ...]          # Loihi's (C, H, W) or (N,) (Conv1d input: (C, 1, L))
    specs: list[SynapseSpec]
    params: dict                          # layers.{i}.weight, float64 tensors
    neurons: list[LifFloat]               # vth = inf for an output integrator
    names: list[str]                      # per population: the NIR nodes it came from
    kinds: list[str]                      # per population: the NIR neuron type
    dt: float
    dt_source: str                        # where dt came from (flag, metadata, default)
    nir_input_shape: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def readout(self) -> str:
        """"spikes": the class is the output's spike count; "membrane": its v at the last step."""
        return "membrane" if self.kinds[-1] in INTEGRATORS else "spikes"


class _Fail:
    def __init__(self, path):
        self.path = path

    def __call__(self, name, node, why: str):
        kind = node if isinstance(node, str) else type(node).__name__
        raise UserError(f"{self.path}: node {name!r} ({kind}): {why}")


# --- reading ------------------------------------------------------------------------------------
def _prescan(path: Path, fail: _Fail) -> None:
    """Name an unknown node type before nir.read's bare assertion does."""
    import nir.ir as ir
    known = set(ir.__all__)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise UserError(f"{path}: not an NIR (HDF5) file ({err})") from None
    with f:
        if "node" not in f or "nodes" not in f["node"]:
            raise UserError(f"{path}: not an NIR graph (no node/nodes group)")
        for name, g in f["node/nodes"].items():
            t = g["type"][()] if isinstance(g, h5py.Group) and "type" in g else b"?"
            t = t.decode() if isinstance(t, bytes) else str(t)
            if t not in known:
                fail(name, t, f"not an NIR node type; supported: {SUPPORTED}")


def read_graph(path: str | Path):
    """nir.read, with its failures as one-line errors naming the file."""
    import nir
    path = regular_input(path, "NIR graph")
    fail = _Fail(path)
    _prescan(path, fail)
    try:
        try:
            return nir.read(str(path))
        except ValueError as err:
            graph = _without_sample_batch(nir, path, err)
            if graph is None:
                raise
            return graph
    except ValueError as err:           # nir's own type inference: name the receiving node
        m = re.search(r"type mismatch: (\S+)\.output: (.*) -> (\S+)\.input: (.*)", str(err))
        if not m:
            raise UserError(f"{path}: NIR cannot read it ({str(err).splitlines()[0]})") from None
        with h5py.File(path, "r") as f:
            kind = f[f"node/nodes/{m[3]}/type"][()]
        fail(m[3], kind.decode() if isinstance(kind, bytes) else str(kind),
             f"takes {m[4].strip()} but node {m[1]!r} gives {m[2].strip()} (shape mismatch)")
    except (KeyError, TypeError, AssertionError, OSError) as err:
        raise UserError(f"{path}: NIR cannot read it ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'no message'})") from None


def _without_sample_batch(nir, path: Path, err: ValueError):
    """The graph with the leading 1 of its Input's and Output's shapes dropped, when that 1 is
    what fails the type check: nirtorch-based exporters (Norse's to_nir) record the sample
    data's batch of one there ([1, 16] feeding an Affine that takes [16]). Accepted only when
    the types then all agree; None otherwise (nir's own error is reported)."""
    m = re.search(r"type mismatch: (\S+)\.output: (.*) -> (\S+)\.input: (.*)", str(err))
    if not m:
        return None
    given, wanted = ([int(v) for v in re.findall(r"-?\d+", t)] for t in (m[2], m[4]))
    if given != [1] + wanted and wanted != [1] + given:
        return None
    graph = nir.read(str(path), type_check=False)
    for node in graph.nodes.values():
        if isinstance(node, (nir.Input, nir.Output)):
            shape = np.asarray(node.input_type.get("input", []))
            if shape.ndim == 1 and len(shape) >= 2 and shape[0] == 1:
                node.input_type, node.output_type = {"input": shape[1:]}, {"output": shape[1:]}
    try:
        graph.check_types()
    except ValueError:
        return None
    return graph


def _arrays(node) -> dict[str, np.ndarray]:
    out = {}
    for key, val in vars(node).items():
        if key in ("input_type", "output_type", "metadata"):
            continue
        if torch.is_tensor(val):
            val = val.detach().cpu().numpy()
        if isinstance(val, np.ndarray) and val.dtype.kind in "fiu":
            out[key] = val.astype(np.float64)
    return out


def _chain(graph, fail: _Fail) -> list[tuple[str, object]]:
    """The nodes in order from the one Input to the one Output; everything else refused."""
    import nir
    nodes, edges = graph.nodes, list(graph.edges)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                other = b if end == a else a
                fail(other, nodes[other] if other in nodes else "?",
                     f"has an edge to {end!r}, which is not a node of the graph")
    succ = {k: [] for k in nodes}
    pred = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    for name, node in nodes.items():
        kind = type(node).__name__
        if isinstance(node, nir.NIRGraph):
            fail(name, node, "a subgraph (snnTorch's RLeaky/RSynaptic export recurrence this "
                 "way): recurrent layers are not supported by the NIR import")
        if kind not in ("Input", "Output") + LINEAR + SPIKING + INTEGRATORS:
            why = ("Loihi delays per synapse (netx DelayDense), NIR per signal: not supported "
                   "yet" if kind == "Delay" else "not supported")
            fail(name, node, f"{why}; supported: {SUPPORTED}")
        for key, a in _arrays(node).items():
            if not np.all(np.isfinite(a)):
                at = [int(i) for i in np.argwhere(~np.isfinite(a))[0]]
                fail(name, node, f"{key} holds {a[~np.isfinite(a)].ravel()[0]} at {at}")
        if kind != "Input" and not pred[name]:
            fail(name, node, "no edge leads into it (missing edge)")
        if kind != "Output" and not succ[name]:
            fail(name, node, "no edge leaves it (missing edge)")
        if len(succ[name]) > 1:
            fail(name, node, f"feeds {len(succ[name])} nodes ({', '.join(succ[name])}): "
                 "branches are not supported (the import takes a chain of layers)")
        if len(pred[name]) > 1:
            fail(name, node, f"receives {len(pred[name])} edges ({', '.join(pred[name])}): "
                 "merges and recurrent edges are not supported")
    inputs = [k for k, v in nodes.items() if type(v).__name__ == "Input"]
    outputs = [k for k, v in nodes.items() if type(v).__name__ == "Output"]
    # nir.read gives a node without an edge in (out) an Input "input_<node>" (Output "output_")
    for k in inputs if len(inputs) > 1 else []:
        if k == f"input_{succ[k][0]}":
            fail(succ[k][0], nodes[succ[k][0]], "no edge leads into it (missing edge)")
    for k in outputs if len(outputs) > 1 else []:
        if k == f"output_{pred[k][0]}":
            fail(pred[k][0], nodes[pred[k][0]], "no edge leaves it (missing edge)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{fail.path}: the graph has {len(inputs)} Input and {len(outputs)} "
                        "Output nodes; the import takes exactly one of each")
    order, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            fail(cur, nodes[cur], "lies on a cycle (recurrent edges are not supported)")
        seen.add(cur)
        order.append((cur, nodes[cur]))
        if cur == outputs[0]:
            break
        cur = succ[cur][0]
    rest = [k for k in nodes if k not in seen]
    if rest:
        fail(rest[0], nodes[rest[0]], "lies on a cycle or off the input-to-output chain "
             "(recurrent edges are not supported)")
    return order


# --- linear nodes as torch functions on [B, *shape] (NIR's shapes, no batch) ----------------------
def _pair(v, n=2) -> tuple:
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        return tuple([int(a[0])] * n)
    return tuple(int(x) for x in a[:n])


def _shape_of(t) -> tuple | None:
    if t is None:
        return None
    v = t.get("input") if isinstance(t, dict) else t
    if v is None:
        return None
    v = np.asarray(v).reshape(-1)
    return tuple(int(s) for s in v) if v.size else None


def _padding(node, kernel, name, fail):
    p = node.padding
    if isinstance(p, str):
        if p == "valid":
            return (0,) * len(kernel)
        if p == "same" and all(k % 2 for k in kernel) and np.all(np.asarray(node.stride) == 1):
            return tuple(k // 2 for k in kernel)
        fail(name, node, f"padding {p!r} not supported (give numbers, or 'same' with odd "
             "kernels and stride 1)")
    return _pair(p, len(kernel))


def _linear_op(name, node, shape: tuple, fail):
    """(function x -> y over [B, *shape], output shape, has_dense) of one linear node."""
    kind = type(node).__name__
    dt = torch.float64
    if kind in ("Affine", "Linear"):
        w = torch.as_tensor(np.asarray(node.weight, np.float64))
        if w.ndim != 2:
            fail(name, node, f"weight of shape {tuple(w.shape)}; the import takes 2-D weights")
        if len(shape) != 1 or shape[0] != w.shape[1]:
            fail(name, node, f"takes {w.shape[1]} inputs but receives shape {shape} (shape "
                 "mismatch; a Flatten node flattens a conv's output)")
        b = torch.as_tensor(np.asarray(node.bias, np.float64)) if kind == "Affine" else None
        if b is not None and b.numel() != w.shape[0]:
            fail(name, node, f"{b.numel()} biases for {w.shape[0]} outputs")
        return (lambda x: x @ w.T + (b if b is not None else 0)), (int(w.shape[0]),), True
    if kind in ("Conv1d", "Conv2d"):
        w = torch.as_tensor(np.asarray(node.weight, np.float64))
        d = 1 if kind == "Conv1d" else 2
        if w.ndim != d + 2 or len(shape) != d + 1:
            fail(name, node, f"weight of shape {tuple(w.shape)} on input {shape}: a {kind} "
                 f"takes a ({'C, L' if d == 1 else 'C, H, W'}) input (shape mismatch)")
        groups = int(np.asarray(node.groups).reshape(-1)[0])
        if shape[0] != w.shape[1] * groups:
            fail(name, node, f"weight of shape {tuple(w.shape)} with groups {groups} takes "
                 f"{w.shape[1] * groups} channels but receives {shape[0]} (shape mismatch)")
        kernel = tuple(w.shape[2:])
        stride, dil = _pair(node.stride, d), _pair(node.dilation, d)
        pad = _padding(node, kernel, name, fail)
        b = torch.as_tensor(np.asarray(node.bias, np.float64)).reshape(-1)
        if b.numel() not in (1, w.shape[0]):
            fail(name, node, f"{b.numel()} biases for {w.shape[0]} channels")
        conv = F.conv1d if d == 1 else F.conv2d
        fn = lambda x: conv(x, w, b.expand(w.shape[0]), stride, pad, dil, groups)  # noqa: E731
        try:
            out = tuple(fn(torch.zeros(1, *shape, dtype=dt)).shape[1:])
        except RuntimeError as err:
            fail(name, node, f"does not fit its input {shape} ({str(err).splitlines()[0]})")
        return fn, out, False
    if kind in ("SumPool2d", "AvgPool2d"):
        if len(shape) != 3:
            fail(name, node, f"pools a (C, H, W) input but receives {shape} (shape mismatch)")
        k, s = _pair(node.kernel_size), _pair(node.stride)
        p = _pair(node.padding)
        mul = 1.0 if kind == "AvgPool2d" else float(k[0] * k[1])
        fn = lambda x: F.avg_pool2d(x, k, s, p) * mul   # noqa: E731
        try:
            out = tuple(fn(torch.zeros(1, *shape, dtype=dt)).shape[1:])
        except RuntimeError as err:
            fail(name, node, f"does not fit its input {shape} ({str(err).splitlines()[0]})")
        return fn, out, False
    if kind == "Flatten":
        s0, s1 = int(node.start_dim), int(node.end_dim)
        s0 = s0 + len(shape) if s0 < 0 else s0
        s1 = s1 + len(shape) if s1 < 0 else s1
        if not 0 <= s0 <= s1 < len(shape):
            fail(name, node, f"start_dim {node.start_dim}, end_dim {node.end_dim} do not fit "
                 f"its input {shape} (dims exclude the batch)")
        out = shape[:s0] + (prod(shape[s0:s1 + 1]),) + shape[s1 + 1:]
        return (lambda x: x.reshape(x.shape[0], *out)), out, False
    if kind == "Scale":
        sc = torch.as_tensor(np.asarray(node.scale, np.float64))
        try:
            out = tuple(torch.broadcast_shapes(sc.shape, shape))
        except RuntimeError:
            out = None
        if out != tuple(shape):
            fail(name, node, f"scale of shape {tuple(sc.shape)} does not fit its input {shape}")
        return (lambda x: x * sc), shape, False
    raise AssertionError(kind)


# --- composing a segment of linear nodes into one synapse --------------------------------------
def _compose(ops):
    def fn(x):
        for f in ops:
            x = f(x)
        return x
    return fn


def _dense(fn, in_shape, out_shape, label, fail, node):
    n_in, n_out = prod(in_shape), prod(out_shape)
    if n_in * n_out > MAX_DENSE:
        fail(label, node, f"composes into a Dense of {n_out}x{n_in} weights, beyond "
             f"{MAX_DENSE}")
    with torch.no_grad():
        b = fn(torch.zeros(1, *in_shape, dtype=torch.float64)).reshape(-1)
        cols = fn(torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape))
        w = (cols.reshape(n_in, -1) - b).T.contiguous()
    return DenseSpec(n_in, n_out), w, b.numpy()


def _conv(segment, in_shape, out_shape, label, fail, node):
    """One convolution equal to the segment's conv/pool/scale nodes (checked on a random input).
    Only the first node may pad; strides multiply, kernels grow by (k - 1) x earlier strides."""
    import nir
    geo = []                                  # (kernel, stride, padding) per spatial op
    for name, nd, _ in segment:
        if isinstance(nd, (nir.Conv2d, nir.Conv1d)):
            k = tuple(np.asarray(nd.weight).shape[2:])
            d = _pair(nd.dilation, len(k))
            k = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
            geo.append((name, nd, k, _pair(nd.stride, len(k)), _padding(nd, k, name, fail)))
        elif isinstance(nd, (nir.SumPool2d, nir.AvgPool2d)):
            geo.append((name, nd, _pair(nd.kernel_size), _pair(nd.stride), _pair(nd.padding)))
    if not geo:
        fail(label, node, "a population fed only by Flatten/Scale nodes after a population: "
             "Loihi needs a synapse (Affine, Linear, Conv, pooling) between two populations")
    for name, nd, _, _, p in geo[1:]:
        if any(p):
            fail(name, nd, f"padding {p} after another conv or pooling without a neuron "
                 "between: not expressible as one Loihi convolution")
    one_d = len(in_shape) == 2
    dims = 1 if one_d else 2
    kernel, stride, jump = [1] * dims, [1] * dims, [1] * dims
    for _, _, k, s, _ in geo:
        for a in range(dims):
            kernel[a] += (k[a] - 1) * jump[a]
            jump[a] *= s[a]
    stride, pad0 = tuple(jump), tuple(geo[0][4])
    c_in, c_out = in_shape[0], out_shape[0]
    # the composite without the first node's padding: its kernel is its response at output 0
    probe = (c_in, *kernel)
    unpadded = []
    for name, nd, op in segment:
        if nd is geo[0][1] and any(pad0):
            op = _linear_op(name, _unpadded(nd), probe, fail)[0]
        unpadded.append(op)
    f0 = _compose(unpadded)
    n = prod(probe)
    try:
        with torch.no_grad():
            z = f0(torch.zeros(1, *probe, dtype=torch.float64))
            resp = f0(torch.eye(n, dtype=torch.float64).reshape(n, *probe)) - z
    except RuntimeError:
        fail(label, node, "its conv/pooling/scale nodes are not one convolution: not "
             "expressible as one Loihi synapse")
    with torch.no_grad():
        w = resp.reshape(n, c_out, -1)[:, :, 0].T.reshape(c_out, c_in, *kernel)
        bias_map = _compose([f for _, _, f in segment])(
            torch.zeros(1, *in_shape, dtype=torch.float64))[0]
    b = bias_map.reshape(c_out, -1)
    if not torch.allclose(b, b[:, :1].expand_as(b), rtol=1e-9, atol=1e-12):
        fail(label, node, "a bias that varies within a channel (padding before a pooling): "
             "not expressible as one Loihi convolution")
    b = b[:, 0]
    shape2 = (c_in, 1, in_shape[1]) if one_d else tuple(in_shape)
    w2 = w.reshape(c_out, c_in, 1, kernel[0]) if one_d else w
    spec = ConvSpec(in_shape=shape2, out_channels=c_out, kernel=tuple(w2.shape[2:]),
                    stride=(1, stride[0]) if one_d else stride,
                    padding=(0, pad0[0]) if one_d else pad0)
    if prod(spec.out_shape) != prod(out_shape):
        fail(label, node, f"the composed convolution gives {spec.out_shape}, the nodes "
             f"{out_shape}: not expressible as one Loihi convolution")
    x = (torch.rand(2, *in_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
         < 0.5).to(torch.float64)
    want = _compose([f for _, _, f in segment])(x).reshape(2, -1)
    got = F.conv2d(x.reshape(2, *shape2), w2, b, spec.stride, spec.padding).reshape(2, -1)
    if not torch.allclose(want, got, rtol=1e-9, atol=1e-9):
        fail(label, node, "its conv/pooling/scale nodes are not one convolution (e.g. a "
             "per-pixel Scale): not expressible as one Loihi synapse")
    return spec, w2.contiguous(), b.numpy()


def _unpadded(nd):
    import copy
    nd2 = copy.copy(nd)
    nd2.padding = (0,) * len(np.asarray(nd.weight).shape[2:]) if hasattr(nd, "weight") else (0, 0)
    return nd2


class _Op:
    """A linear node's function, remembering its input shape."""
    def __init__(self, fn, in_shape):
        self.fn, self.in_shape = fn, in_shape

    def __call__(self, x):
        return self.fn(x)


# --- neurons ------------------------------------------------------------------------------------
def _uniform(name, node, key, a, fail) -> float:
    a = np.asarray(a, np.float64)
    if a.size and not np.allclose(a, a.reshape(-1)[0], rtol=1e-6, atol=0):
        fail(name, node, f"{key} varies across neurons ({a.min():.6g}..{a.max():.6g}); Lava's "
             "LIF takes one value per population")
    return float(a.reshape(-1)[0]) if a.size else 0.0


def _decay(name, node, key, tau, dt, fail) -> float:
    t = _uniform(name, node, key, tau, fail)
    if not t > 0:
        fail(name, node, f"{key}={t:.6g} must be positive")
    if dt / t > 1 + 1e-9:
        fail(name, node, f"{key}={t:.6g} s is shorter than dt={dt:.6g} s (Euler's step "
             "overshoots; give a smaller --dt)")
    return min(dt / t, 1.0)


def _neuron(name, node, dt, fail, shape):
    """(LifFloat without vth scaling, per-neuron input gain, per-neuron vth (None: integrator),
    per-neuron bias in v units per step)."""
    kind = type(node).__name__
    n = prod(shape)
    a = _arrays(node)
    for key, val in a.items():
        if val.size not in (1, n):
            fail(name, node, f"{key} has {val.size} values for {n} neurons (shape mismatch "
                 f"with its input {shape})")
    def full(key, default=0.0):
        return np.broadcast_to(np.asarray(a.get(key, default), np.float64).reshape(-1),
                               (n,)).copy()
    if kind in SPIKING and np.any(full("v_reset") != 0):
        fail(name, node, f"v_reset={full('v_reset')[np.argmax(full('v_reset') != 0)]:.6g}: "
             "Loihi resets v to 0 (reset to another value, or by subtraction, does not exist)")
    if kind in ("LIF", "LI"):
        dv = _decay(name, node, "tau", a["tau"], dt, fail)
        du, gain, leak = 1.0, full("r") * dv, full("v_leak") * dv
    elif kind in ("CubaLIF", "CubaLI"):
        du = _decay(name, node, "tau_syn", a["tau_syn"], dt, fail)
        dv = _decay(name, node, "tau_mem", a["tau_mem"], dt, fail)
        gain, leak = full("w_in", 1.0) * du * full("r") * dv, full("v_leak") * dv
    else:                                   # IF, I: no leak, r per step
        du, dv, gain, leak = 1.0, 0.0, full("r"), np.zeros(n)
    vth = full("v_threshold") if kind in SPIKING else None
    if vth is not None and np.any(vth <= 0):
        fail(name, node, f"v_threshold={vth.min():.6g}: Loihi's threshold is positive")
    return LifFloat(du=du, dv=dv, vth=1.0), gain, vth, leak


def _per_row(name, node, spec, vec, what, fail) -> np.ndarray:
    """A per-neuron factor as one per Dense row or conv channel."""
    vec = np.asarray(vec, np.float64)
    if isinstance(spec, DenseSpec):
        return vec
    per = vec.reshape(spec.out_channels, -1)
    if not np.allclose(per, per[:, :1], rtol=1e-6, atol=0):
        fail(name, node, f"{what} varies within a conv channel; Loihi shares a conv's kernel "
             "over a channel")
    return per[:, 0]


# --- the graph as a float network ----------------------------------------------------------------
def _dt(graph, dt: float | None) -> tuple[float, str]:
    if dt is not None:
        if not (np.isfinite(dt) and dt > 0):
            raise UserError(f"--dt must be a positive number of seconds, got {dt}")
        return float(dt), "--dt"
    for node in graph.nodes.values():       # our own export records it (bridge/nir_export.py)
        meta = getattr(node, "metadata", None) or {}
        if "dt" in meta:
            return float(np.asarray(meta["dt"]).reshape(-1)[0]), "the graph's metadata"
    return DEFAULT_DT, f"default {DEFAULT_DT:g} s (snnTorch's export)"


def to_float(graph, path: str | Path = "graph", dt: float | None = None,
             input_shape: tuple[int, ...] | None = None) -> FloatNet:
    """The graph as a float network with Loihi's semantics (module docstring). One-line
    UserError, naming the node, for anything that cannot be mapped; nothing is computed
    before the whole graph passed the structural checks."""
    fail = _Fail(path)
    order = _chain(graph, fail)
    dt, dt_source = _dt(graph, dt)
    in_name, in_node = order[0]
    shape = _shape_of(getattr(in_node, "input_type", None)) or _shape_of(
        getattr(in_node, "output_type", None))
    if input_shape is not None:
        if shape is not None and prod(shape) != prod(input_shape):
            fail(in_name, in_node, f"input shape {shape} but --input-shape gives "
                 f"{tuple(input_shape)}")
        shape = tuple(int(s) for s in input_shape)
    if not shape:
        fail(in_name, in_node, "no input shape in the graph: give --input-shape")
    nir_in = tuple(shape)
    # pass 1 (structure): segments of linear nodes, each closed by a neuron node
    segments, seg = [], []
    for name, node in order[1:-1]:
        kind = type(node).__name__
        declared = _shape_of(getattr(node, "input_type", None))
        if declared is not None and prod(declared) != prod(shape):
            fail(name, node, f"declares input {declared} but receives {shape} (shape mismatch)")
        if kind in LINEAR:
            fn, out, dense = _linear_op(name, node, shape, fail)
            seg.append((name, node, _Op(fn, shape), dense, out))
            shape = out
            continue
        if segments and segments[-1][1][1] in INTEGRATORS:
            prev = segments[-1][1][0]
            fail(prev, graph.nodes[prev], "an output integrator (its output is a membrane "
                 "potential, which Loihi cannot send on) followed by more layers")
        if not seg:
            fail(name, node, "follows another neuron (or the input) without a synapse between "
                 "them: Loihi needs an Affine, Linear, Conv or pooling node there")
        segments.append((seg, (name, kind, node, shape)))
        seg = []
    if seg:
        fail(seg[-1][0], seg[-1][1], "the graph ends in a linear node without a neuron "
             "population after it: add an LI or I output node")
    if not segments:
        raise UserError(f"{path}: no neuron population between Input and Output")
    # pass 2: each segment -> one synapse and its population
    specs, params, neurons, names, kinds = [], {}, [], [], []
    loihi_shape = nir_in if len(nir_in) != 2 else (nir_in[0], 1, nir_in[1])
    cur_nir = nir_in
    for i, (seg, (nname, kind, node, out_shape)) in enumerate(segments):
        label = "+".join(s[0] for s in seg)
        fns = [s[2] for s in seg]
        segment = [(s[0], s[1], s[2]) for s in seg]
        if any(s[3] for s in seg) or len(out_shape) == 1 and all(
                type(s[1]).__name__ in ("Flatten", "Scale") for s in seg):
            spec, w, b = _dense(_compose(fns), cur_nir, out_shape, label, fail, seg[-1][1])
            pop_shape = (spec.out_features,)
        else:
            if len(cur_nir) not in (2, 3):
                fail(seg[0][0], seg[0][1], f"a convolution or pooling on input {cur_nir}")
            conv_segment = [s for s in segment if type(s[1]).__name__ != "Flatten"]
            spec, w, b = _conv(conv_segment, cur_nir, out_shape if len(out_shape) > 1 else
                               _seg_out(conv_segment, cur_nir), label, fail, seg[-1][1])
            pop_shape = spec.out_shape
            if prod(pop_shape) != prod(out_shape):
                fail(nname, node, f"receives {out_shape} but the synapse gives {pop_shape}")
        if i == 0:
            loihi_shape = spec.in_shape
        lif, gain, vth, leak = _neuron(nname, node, dt, fail, out_shape)
        # fold the per-neuron input gain and threshold into the synapse (rows / channels)
        gain_r = _per_row(nname, node, spec, gain, "the input gain (r, w_in, tau)", fail)
        bias = np.broadcast_to(b, (spec.out_channels,) if isinstance(spec, ConvSpec) else
                               (spec.out_features,))
        bias_n = np.repeat(bias * gain_r / lif.du, prod(pop_shape) // len(gain_r)) + leak
        if vth is not None:
            vth_r = _per_row(nname, node, spec, vth, "v_threshold", fail)
            if np.allclose(vth_r, vth_r[0], rtol=1e-9, atol=0):
                vth_val, div = float(vth_r[0]), np.ones_like(vth_r)
            else:                               # v_i / vth_i: thresholds all 1
                vth_val, div = 1.0, vth_r
            rows = gain_r / div
            bias_n = bias_n / np.repeat(div, prod(pop_shape) // len(div))
        else:
            vth_val, rows = float("inf"), gain_r
        shape_w = (-1,) + (1,) * (w.ndim - 1)
        w = w * torch.as_tensor(rows).reshape(shape_w)
        specs.append(spec)
        params[weight_key(i)] = w.to(torch.float64)
        neurons.append(LifFloat(du=lif.du, dv=lif.dv, vth=vth_val,
                                bias=bias_n if np.any(bias_n) else 0.0))
        names.append(f"{label} -> {nname}")
        kinds.append(kind)
        cur_nir = out_shape
    notes = []
    if any(k == "CubaLIF" for k in kinds) and any(np.any(np.asarray(n.bias) != 0) for n in neurons):
        notes.append("CubaLIF with a constant input: mapped to its steady-state bias on v")
    return FloatNet(tuple(loihi_shape), specs, params, neurons, names, kinds, dt, dt_source,
                    nir_in, notes)


def _seg_out(segment, shape):
    x = torch.zeros(1, *shape, dtype=torch.float64)
    return tuple(_compose([f for _, _, f in segment])(x).shape[1:])


def read_nir(path: str | Path, dt: float | None = None,
             input_shape: tuple[int, ...] | None = None) -> FloatNet:
    """An NIR file as a float network with Loihi's semantics (one-line UserError otherwise)."""
    return to_float(read_graph(path), path, dt, input_shape)
