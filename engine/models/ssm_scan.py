"""The selective scan of `ssm` as one torch op (engine/models/torch_ops.py) with a hand-written backward (the passes and the layout are in
engine/models/ssm_passes.py), its FLOP formulas registered with torch's FLOP counter:

    h_t = exp(delta_t * a) * h_{t-1} + (delta_t * x_t) B_t,    y_t = h_t C_t

delta, x [B, T, D]; a [D, N] (negative); B, C [B, T, N]; h0 [B, D, N].
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import register_flop_formula

from engine.models import ssm_passes
from engine.models.ssm_passes import chunk_steps, last_state
from engine.models.torch_ops import define, one_dtype


def _fake_forward(delta, a, b_sel, c_sel, xs, h0):
    batch, t, d = xs.shape
    steps = chunk_steps(t)
    return [torch.empty_like(xs)] + [xs.new_empty((batch, -(-t // steps), a.shape[-1], d)) for _ in range(2 * steps)]


# [y [B, T, D], then for each position of a chunk the state there, [B, G, N, D], then the decay there, the same
# (both kept for backward)]
_forward = define("selective_scan(Tensor delta, Tensor a, Tensor b_sel, Tensor c_sel, Tensor xs, Tensor h0) -> Tensor[]",
                  ssm_passes.forward, _fake_forward)
# the gradients for (delta, a, b_sel, c_sel, xs, h0); grad_hs may be empty (h unused)
_backward = define("selective_scan_backward(Tensor delta, Tensor a, Tensor b_sel, Tensor c_sel, Tensor xs, Tensor h0, "
                   "Tensor[] hs, Tensor[] decay, Tensor grad_y, Tensor[] grad_hs) -> Tensor[]", ssm_passes.backward,
                   lambda delta, a, b_sel, c_sel, xs, h0, *rest: [torch.empty_like(x) for x in (delta, a, b_sel, c_sel, xs, h0)])


class _SelectiveScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, *inputs):
        y, *kept = _forward(*inputs)
        ctx.save_for_backward(*inputs, *kept)  # h and the decay at each position of a chunk
        ctx.set_materialize_grads(False)  # the states are mostly unused (training keeps only y)
        return (y, *kept[:len(kept) // 2])

    @staticmethod
    def backward(ctx, grad_y, *grad_hs):
        inputs, kept = ctx.saved_tensors[:6], ctx.saved_tensors[6:]
        hs, decay = kept[:len(kept) // 2], kept[len(kept) // 2:]
        grad_y = torch.zeros_like(inputs[4]) if grad_y is None else grad_y.contiguous()
        grad_hs = [] if all(g is None for g in grad_hs) else [
            torch.zeros_like(h) if g is None else g.contiguous() for h, g in zip(hs, grad_hs)]
        return tuple(_backward(*inputs, list(hs), list(decay), grad_y, grad_hs))


# Scoring, with no backward to come: [y [B, T, D], h at the last position of every chunk [B, G, N, D]]
_scores = define("selective_scan_scores(Tensor delta, Tensor a, Tensor b_sel, Tensor c_sel, Tensor xs, Tensor h0) "
                 "-> Tensor[]", lambda *inputs: ssm_passes.forward(*inputs, keep_states=False),
                 lambda delta, a, b_sel, c_sel, xs, h0: _fake_forward(delta, a, b_sel, c_sel, xs, h0)[:2])


def selective_scan(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor, xs: torch.Tensor,
                   h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [B, T, D], h after the last step [B, D, N]) of the recurrence above, from h0."""
    inputs = one_dtype(delta, a, b_sel, c_sel, xs, h0)
    if torch.is_grad_enabled() and any(x.requires_grad for x in inputs):
        y, *hs = _SelectiveScan.apply(*inputs)
    else:  # the same floats, h updated in place (ssm_passes.forward's keep_states)
        y, *hs = _scores(*inputs)
    return y, last_state(hs, xs.shape[1])


def _forward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """Per state element and step: the decay (a multiply, an exp), the write (a multiply), the recurrence
    (a multiply and an add) and the read-out (a multiply and an add): 7 (an exp counted as one, as a
    matmul's 2mnk counts its arithmetic whatever its kernel does; pass 1 of the chunked scan repeats the
    write and the recurrence)."""
    return 7 * math.prod(delta_shape) * a_shape[-1]


for _op in (torch.ops.melody_memory.selective_scan, torch.ops.melody_memory.selective_scan_scores):
    register_flop_formula(_op)(_forward_flops)  # (stacked as decorators, the second would wrap the first)


@register_flop_formula(torch.ops.melody_memory.selective_scan_backward)
def _backward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """The reverse recurrence and its direct term (3), the decay again (2), the gradient of the decay's
    exponent, g decay h_{t-1} (2), and a product-and-sum for each of the gradients of delta (through the
    decay), a, delta x, B and C (2 each): 17 per state element and step."""
    return 17 * math.prod(delta_shape) * a_shape[-1]
