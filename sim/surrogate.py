"""The paper's surrogate spike function (Stewart & Neftci 2022, after Zenke & Ganguli's fast
sigmoid): forward a strict Heaviside step of x = v - vth (spike where v > vth, as Lava), backward
sigma'(x) = 1 / (beta*|x| + 1)**2.

The backward is written in differentiable torch ops, so the function is twice differentiable
(second-order MAML differentiates the inner loop's gradient: create_graph=True) and works under
torch.func (grad, vmap). A custom Function rather than the straight-through sum
H(x).detach() + s(x) - s(x).detach(): that sum can round away from exactly 0/1.
"""
from __future__ import annotations

import torch
# torch 2.3 imports this lazily on the first custom Function call under torch.func, and the
# import draws random numbers, which fails inside vmap: import it here, outside any transform.
import torch.nested._internal.nested_tensor  # noqa: F401

BETA = 10.0     # slope of the fast sigmoid; Zenke & Ganguli's (SuperSpike) default


def fast_sigmoid_grad(x: torch.Tensor, beta: float | torch.Tensor = BETA) -> torch.Tensor:
    """sigma'(x) = 1 / (beta*|x| + 1)**2, the surrogate derivative (differentiable itself:
    sigma''(x) = -2*beta*sign(x) / (beta*|x| + 1)**3)."""
    return 1.0 / (beta * x.abs() + 1.0) ** 2


class _SpikeFn(torch.autograd.Function):
    generate_vmap_rule = True      # torch.func.vmap over tasks derives the batching rule

    @staticmethod
    def forward(x: torch.Tensor, beta) -> torch.Tensor:
        return (x > 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, beta = inputs
        ctx.save_for_backward(x)
        ctx.beta = beta

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        # Plain torch ops on the saved input: autograd records them under create_graph=True.
        return grad_out * fast_sigmoid_grad(x, ctx.beta), None


def spike(x: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """Heaviside(x > 0) in x's dtype, with the fast-sigmoid surrogate gradient."""
    if not torch.is_grad_enabled():
        # no graph (burn-in, evaluation): the plain step skips the custom Function's
        # machinery, which is costly per call under vmap
        return (x > 0).to(x.dtype)
    if torch.is_tensor(beta):
        beta = float(beta)     # beta is a fixed hyperparameter, never learnt
    return _SpikeFn.apply(x, beta)
