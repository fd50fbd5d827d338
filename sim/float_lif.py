"""The differentiable float CUBA-LIF network (the model offline/ meta-trains), in torch.

Same dynamics and timing as the bit-exact model (sim/fixed.py), in float units and without the
integer rounding: every connection delays by one step, then per neuron
    u[t] = u[t-1]*(1-du) + a[t],   a[t] = sum_j w_ij s_j[t-1]
    v[t] = v[t-1]*(1-dv) + u[t] + bias
    s[t] = v[t] > vth (strict; surrogate gradient), then v[t] = 0 where s[t].
Functional, norse style: parameters in (a dict of tensors, so offline/ can use
torch.func.functional_call / grad / vmap over tasks), explicit state, no hidden state.
Batched over the leading axis; inputs are [B, T, *in_shape]; neuron order is torch's flatten
order of each layer's out_shape (as in sim.fixed.run).

Parameter dict keys: ``layers.{i}.weight`` (torch layout: dense [out, in], conv
[C_out, C_in, kh, kw], cross-correlation), and optionally ``layers.{i}.du|dv|vth|bias``, which
override the layer's LifFloat fields (so decays and thresholds can be learnt as dict entries).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from metaloihi.base.errors import UserError
from metaloihi.sim.arch import ConvSpec, DenseSpec, SynapseSpec, check_chain
from metaloihi.sim.loihi import LifFloat
from metaloihi.sim.surrogate import BETA, spike

NEURON_FIELDS = ("du", "dv", "vth", "bias")
CONV_CHUNK = 2048   # frames per CPU convolution call (synapse)
RUN_CHUNK = 64      # samples per CPU run (run)


def param_key(i: int, field: str) -> str:
    """The key of layer i's entry `field` (weight, or a neuron field: du, dv, vth, bias)."""
    return f"layers.{i}.{field}"


neuron_key = param_key


def weight_key(i: int) -> str:
    return param_key(i, "weight")


def head_key(specs) -> str:
    """The key of the head's (the last layer's) weight."""
    return weight_key(len(specs) - 1)


def key_layer(key: str) -> tuple[int, str] | None:
    """(layer index, field) of a ``layers.{i}.{field}`` key; None for any other key."""
    parts = key.split(".")
    if parts[0] != "layers":
        return None
    return int(parts[1]), ".".join(parts[2:])


@dataclass(frozen=True)
class LifParams:
    """One layer's neuron parameters resolved to floats or tensors (broadcast over [B, n])."""

    du: torch.Tensor | float
    dv: torch.Tensor | float
    vth: torch.Tensor | float
    bias: torch.Tensor | float


def layer_neuron(i: int, neuron: LifFloat, params: dict, like: torch.Tensor) -> LifParams:
    """Layer i's neuron parameters: the params dict's entries win over the LifFloat fields."""
    vals = {}
    for field in NEURON_FIELDS:
        val = params.get(neuron_key(i, field), getattr(neuron, field))
        if isinstance(val, np.ndarray):
            val = torch.as_tensor(val, dtype=like.dtype, device=like.device)
        vals[field] = val
    return LifParams(**vals)


def synapse(spec: SynapseSpec, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Synaptic sums of inputs s [N, ...] (N samples or sample-steps) -> [N, n_out]."""
    n = s.shape[0]
    if isinstance(spec, DenseSpec):
        return s.reshape(n, -1) @ w.t()
    x = s.reshape(n, *spec.in_shape)
    # CPU convolutions slow down per frame past a few thousand frames (seen with
    # benchmarks/maml_throughput.py's workload): convolve in chunks there
    chunk = n if w.is_cuda else CONV_CHUNK
    out = torch.cat([F.conv2d(c, w, stride=spec.stride, padding=spec.padding)
                     for c in x.split(chunk)]) if n > chunk else \
        F.conv2d(x, w, stride=spec.stride, padding=spec.padding)
    return out.reshape(n, -1)


def lif_step(u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: LifParams,
             beta: float = BETA, detach_reset: bool = True
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CUBA-LIF update on [B, n]; returns (u, v after reset, spikes)."""
    u = u * (1 - p.du) + a
    v = v * (1 - p.dv) + u + p.bias
    s = spike(v - p.vth, beta)
    # A detached reset (Zenke & Vogels 2021) keeps the gradient from flowing through the
    # reset's own discontinuity; the forward value is the same either way.
    v = v * (1 - (s.detach() if detach_reset else s))
    return u, v, s


@dataclass(frozen=True)
class LayerState:
    u: torch.Tensor      # [B, n]
    v: torch.Tensor
    a: torch.Tensor      # the connection's sum of this step's input, delivered next step


NetState = tuple[LayerState, ...]


def _n_out(spec: SynapseSpec) -> int:
    return int(np.prod(spec.out_shape))


def init_state(specs: list[SynapseSpec], batch: int, dtype: torch.dtype = torch.float32,
               device=None) -> NetState:
    z = [torch.zeros(batch, _n_out(spec), dtype=dtype, device=device) for spec in specs]
    return tuple(LayerState(x, x.clone(), x.clone()) for x in z)


def check_params(specs: list[SynapseSpec], params: dict, neurons: list[LifFloat]) -> None:
    check_chain(specs)
    if len(neurons) != len(specs):
        raise UserError(f"{len(specs)} layers but {len(neurons)} neuron parameter sets")
    for i, spec in enumerate(specs):
        if weight_key(i) not in params:
            raise UserError(f"parameter dict has no {weight_key(i)!r}")
        shape = tuple(params[weight_key(i)].shape)
        if shape != tuple(spec.weight_shape):
            raise UserError(f"layer {i}: weight shape {shape} does not match "
                            f"{tuple(spec.weight_shape)} of {spec}")


def step(state: NetState, specs: list[SynapseSpec], params: dict, neurons: list[LifFloat],
         x_t: torch.Tensor, beta: float = BETA, detach_reset: bool = True
         ) -> tuple[NetState, list[torch.Tensor]]:
    """One time step of the whole network on input x_t [B, *in_shape]: each connection delivers
    last step's sum and computes this step's from the spikes it receives (as Lava does)."""
    s = x_t
    new, out = [], []
    for i, (spec, ls) in enumerate(zip(specs, state)):
        w = params[weight_key(i)]
        a_next = synapse(spec, w, s.to(w.dtype))
        u, v, s = lif_step(ls.u, ls.v, ls.a, layer_neuron(i, neurons[i], params, w),
                           beta, detach_reset)
        new.append(LayerState(u, v, a_next))
        out.append(s)
    return tuple(new), out


def _scan(u, v, a, p, beta, detach_reset, record_uv):
    """LIF over the time axis of a [T', B, n] (time-major), from state (u, v)."""
    if not torch.is_grad_enabled() and not record_uv:
        return _scan_in_place(u, v, a, p)
    s_rec, u_rec, v_rec = [], [], []
    # unbind, not a[:, t]: each slice's backward would zero-fill a whole [B, T', n] gradient
    # (quadratic in T'; half of a meta-gradient's time), unbind's backward is one stack
    for a_t in a.unbind(0):
        u, v, s = lif_step(u, v, a_t, p, beta, detach_reset)
        s_rec.append(s)
        if record_uv:
            u_rec.append(u)
            v_rec.append(v)
    return u, v, s_rec, u_rec, v_rec


def _scan_in_place(u, v, a, p):
    """_scan without a graph (burn-in, evaluation): the same float operations in the same
    order, in place, so the results are bit-identical at about half the elementwise cost."""
    zero = torch.zeros_like(a[0])    # fresh tensors of a's batching (under vmap too)
    u, v = u + zero, v + zero
    s_rec = []
    for a_t in a.unbind(0):
        u.mul_(1 - p.du).add_(a_t)
        v.mul_(1 - p.dv).add_(u).add_(p.bias)
        s = v > p.vth          # == (v - vth > 0) in IEEE arithmetic
        v.masked_fill_(s, 0.0)
        s_rec.append(s.to(v.dtype))
    return u, v, s_rec, [], []


def run(specs: list[SynapseSpec], params: dict, neurons: list[LifFloat], x: torch.Tensor,
        trunc: int | None = None, record_uv: bool = False, beta: float = BETA,
        detach_reset: bool = True) -> dict:
    """Run the network on inputs x [B, T, *in_shape] (spikes or graded values).

    trunc: truncated BPTT. The first T - trunc steps run without an autograd graph (burn-in);
    only the last `trunc` steps carry gradient. None: all T steps do.
    Returns {"spikes": [per layer [B, T, n]], "v_last": output layer v at the last step
    (after reset, as a Lava monitor reads it) [B, n_out], "counts": output spike counts over
    all T [B, n_out]}, and with record_uv "u" and "v" (per layer [B, T, n], after update and
    reset). Layer by layer over the whole time axis: one conv/matmul per layer per window,
    only the elementwise LIF update loops over steps. Equal to iterating ``step``.
    """
    check_params(specs, params, neurons)
    x = torch.as_tensor(x)
    if x.ndim < 3:
        raise UserError(f"input must be [batch, steps, *shape], got shape {tuple(x.shape)}")
    b, t_all = x.shape[:2]
    n_in = int(np.prod(specs[0].in_shape))
    if int(np.prod(x.shape[2:])) != n_in or (isinstance(specs[0], ConvSpec)
                                              and tuple(x.shape[2:]) != specs[0].in_shape):
        raise UserError(f"input shape {tuple(x.shape[2:])} per step does not match the "
                        f"network's {tuple(specs[0].in_shape)} (expected [batch, steps, *shape])")
    if trunc is not None and trunc < 0:
        raise UserError(f"trunc must be >= 0 or None, got {trunc}")
    if b > RUN_CHUNK and not x.is_cuda:
        # on the CPU a batch of a few dozen samples keeps the [T, B, n] tensors in cache, so
        # large batches run faster in chunks (benchmarks/maml_throughput.py measures it)
        outs = [run(specs, params, neurons, c, trunc, record_uv, beta, detach_reset)
                for c in x.split(RUN_CHUNK)]
        return {k: [torch.cat(layer) for layer in zip(*(o[k] for o in outs))]
                if isinstance(outs[0][k], list) else torch.cat([o[k] for o in outs])
                for k in outs[0]}
    t0 = 0 if trunc is None else max(t_all - trunc, 0)
    dtype = params[weight_key(0)].dtype
    # time-major inside ([T, B, n]): each step's slice is contiguous for the LIF scan
    s_in = x.to(dtype).reshape(b, t_all, -1).transpose(0, 1)
    # Each layer's input as (burn-in steps, gradient window): slicing one [T, B, n] tensor
    # into windows would cost a full-size zero-filled gradient per slice in backward.
    parts_in = (s_in[:t0], s_in[t0:])
    rec: dict = {"spikes": [], "u": [], "v": []}
    for i, spec in enumerate(specs):
        w = params[weight_key(i)]
        p = layer_neuron(i, neurons[i], params, w)
        n_out = _n_out(spec)
        u = torch.zeros(b, n_out, dtype=dtype, device=w.device)
        v = torch.zeros_like(u)
        prev = u.new_zeros(1, b, parts_in[0].shape[-1])   # the input before step 0
        outs = []                                        # per part: (spikes, u, v) [B, steps, n]
        for part, grad in zip(parts_in, (False, True)):
            steps = part.shape[0]
            if steps == 0:
                empty = u.new_zeros(0, b, n_out)
                outs.append((empty, empty, empty))
                continue
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                # the connection's one-step delay: the neuron at step t sees step t-1's input
                win = torch.cat([prev, part[:-1]], dim=0)
                a = synapse(spec, w, win.reshape(steps * b, -1)).reshape(steps, b, -1)
                u, v, s_r, u_r, v_r = _scan(u, v, a, p, beta, detach_reset, record_uv)
            prev = part[-1:]
            outs.append(tuple(torch.stack(r) if r else None for r in (s_r, u_r, v_r)))
        parts_in = (outs[0][0], outs[1][0])
        for j, key in enumerate(("spikes", "u", "v") if record_uv else ("spikes",)):
            rec[key].append(torch.cat([o[j] for o in outs]).transpose(0, 1))
    out = {"spikes": rec["spikes"], "v_last": v, "counts": rec["spikes"][-1].sum(dim=1)}
    if record_uv:
        out["u"], out["v"] = rec["u"], rec["v"]
    return out
