"""The selective scan of `ssm` as one torch op with a hand-written backward (the passes and the layout are in
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


def selective_scan(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor, xs: torch.Tensor,
                   h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [B, T, D], h after the last step [B, D, N]) of the recurrence above, from h0."""
    y, *hs = selective_scan_chunked(delta, a, b_sel, c_sel, xs, h0)
    return y, last_state(hs, xs.shape[1])


@torch.library.custom_op("melody_memory::selective_scan", mutates_args=())
def selective_scan_chunked(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor,
                           xs: torch.Tensor, h0: torch.Tensor) -> list[torch.Tensor]:
    """[y [B, T, D], then for each position of a chunk the state there, [B, G, N, D] (kept for backward)]."""
    return ssm_passes.forward(delta, a, b_sel, c_sel, xs, h0)


@selective_scan_chunked.register_fake
def _(delta, a, b_sel, c_sel, xs, h0):
    batch, t, d = xs.shape
    steps = chunk_steps(t)
    return [torch.empty_like(xs)] + [xs.new_empty((batch, -(-t // steps), a.shape[-1], d)) for _ in range(steps)]


@torch.library.custom_op("melody_memory::selective_scan_backward", mutates_args=())
def selective_scan_backward(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor,
                            xs: torch.Tensor, h0: torch.Tensor, hs: list[torch.Tensor], grad_y: torch.Tensor,
                            grad_hs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of selective_scan for (delta, a, b_sel, c_sel, xs, h0); grad_hs may be empty (h unused)."""
    return ssm_passes.backward(delta, a, b_sel, c_sel, xs, h0, hs, grad_y, grad_hs)


@selective_scan_backward.register_fake
def _(delta, a, b_sel, c_sel, xs, h0, hs, grad_y, grad_hs):
    return [torch.empty_like(x) for x in (delta, a, b_sel, c_sel, xs, h0)]


def _context(ctx, inputs, output):
    ctx.save_for_backward(*inputs, *output[1:])
    ctx.set_materialize_grads(False)  # the returned h is mostly unused (training keeps only y)


def _grad(ctx, grads):
    inputs, hs = ctx.saved_tensors[:6], ctx.saved_tensors[6:]
    grad_y = torch.zeros_like(inputs[4]) if grads[0] is None else grads[0].contiguous()
    grad_hs = [] if all(g is None for g in grads[1:]) else [
        torch.zeros_like(h) if g is None else g.contiguous() for h, g in zip(hs, grads[1:])]
    return tuple(selective_scan_backward(*inputs, list(hs), grad_y, grad_hs))


selective_scan_chunked.register_autograd(_grad, setup_context=_context)


@register_flop_formula(torch.ops.melody_memory.selective_scan)
def _forward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """Per state element and step: the decay (a multiply, an exp), the write (a multiply), the recurrence
    (a multiply and an add) and the read-out (a multiply and an add): 7 (an exp counted as one, as a
    matmul's 2mnk counts its arithmetic whatever its kernel does; pass 1 of the chunked scan repeats the
    write and the recurrence)."""
    return 7 * math.prod(delta_shape) * a_shape[-1]


@register_flop_formula(torch.ops.melody_memory.selective_scan_backward)
def _backward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """The reverse recurrence and its direct term (3), the decay again (2), the gradient of the decay's
    exponent, g decay h_{t-1} (2), and a product-and-sum for each of the gradients of delta (through the
    decay), a, delta x, B and C (2 each): 17 per state element and step."""
    return 17 * math.prod(delta_shape) * a_shape[-1]
