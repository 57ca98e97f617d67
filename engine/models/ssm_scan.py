"""The selective scan of `ssm` over a whole sequence, as one torch op with a hand-written backward:

    h_t = exp(delta_t * a) * h_{t-1} + (delta_t * x_t) B_t,    y_t = h_t C_t

delta, x [B, T, D]; a [D, N] (negative); B, C [B, T, N]; h [B, T, D, N].

The state is N times wider than the channels, so on a CPU the cost is memory traffic, not arithmetic:
written the plain way (the decay and the write as [B, T, D, N] tensors, a scan, the read-out, autograd
through each) every step crossed main memory about 25 times. Here the chunked parallel scan of
engine/models/scans.py is fused with the step's own arithmetic: the decay and the write of a step are
made for one chunk position at a time (a [B, T / CHUNK_STEPS, D, N] slice, all chunks at once), used and
dropped; only h is stored for backward. Within a chunk the decay's product is exp(a * sum of delta), so
the chunks' starting states need no running product. Backward runs the same two passes backwards in
time and gathers every gradient at the step it is made. No loop runs over the T steps: the loops take
the CHUNK_STEPS positions of a chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from engine.models.scans import CHUNK_STEPS, scan_backward, scan_forward


def _in_chunks(steps: int, *tensors):
    """Each [B, T, ...] tensor padded with zeros to whole chunks and viewed [B, chunks, steps, ...]. A padded
    step (delta = 0, x = 0) keeps h as it is and, coming last, changes no earlier step or gradient."""
    out = []
    for x in tensors:
        pad = -x.shape[1] % steps
        if pad:
            x = F.pad(x, (0, 0) * (x.dim() - 2) + (0, pad))
        out.append(x.reshape(x.shape[0], x.shape[1] // steps, steps, *x.shape[2:]))
    return out


def _decay(delta_i: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.exp(delta_i[..., None] * a)  # [B, G, D] -> [B, G, D, N]


def _chunk_starts(delta4, dx4, b4, a, h0):
    """[B, G, D, N]: the state entering each chunk (pass 1: each chunk from zero, then a scan over chunks)."""
    batch, chunks, steps, d = delta4.shape
    if chunks == 1:
        return h0[:, None]
    end = torch.zeros(batch, chunks, d, a.shape[1], dtype=dx4.dtype, device=dx4.device)
    for i in range(steps):
        end.mul_(_decay(delta4[:, :, i], a)).addcmul_(dx4[:, :, i, :, None], b4[:, :, i, None, :])
    through = _decay(delta4.sum(2), a)  # the decay through a whole chunk
    ends = scan_forward(through.flatten(2), end.flatten(2), h0.flatten(1)).view_as(end)
    return torch.cat([h0[:, None], ends[:, :-1]], dim=1)


def forward(delta, a, b_sel, c_sel, xs, h0):
    t = xs.shape[1]
    steps = min(CHUNK_STEPS, t)
    delta4, dx4, b4, c4 = _in_chunks(steps, delta, delta * xs, b_sel, c_sel)
    batch, chunks, _, d = delta4.shape
    h = _chunk_starts(delta4, dx4, b4, a, h0)
    hs = torch.empty(batch, chunks, steps, d, a.shape[1], dtype=xs.dtype, device=xs.device)
    y = torch.empty(batch, chunks, steps, d, dtype=xs.dtype, device=xs.device)
    for i in range(steps):  # pass 2: every chunk from its true start
        h_i = hs[:, :, i]
        torch.mul(_decay(delta4[:, :, i], a), h, out=h_i)
        h_i.addcmul_(dx4[:, :, i, :, None], b4[:, :, i, None, :])
        y[:, :, i] = (h_i @ c4[:, :, i, :, None])[..., 0]
        h = h_i
    return y.flatten(1, 2)[:, :t].contiguous(), hs.flatten(1, 2)[:, :t].contiguous()


def _chunk_ends_grad(delta4, direct, a):
    """[B, G, D, N]: the gradient entering each chunk from the step after it (pass 1 of backward)."""
    chunks, steps = delta4.shape[1:3]
    if chunks == 1:
        return torch.zeros_like(direct(0))
    first = direct(steps - 1)  # g at each chunk's first step, as if nothing came after the chunk
    for i in range(steps - 2, -1, -1):
        first.mul_(_decay(delta4[:, :, i + 1], a)).add_(direct(i))
    into_next = torch.zeros_like(delta4[:, :, 0])  # delta of the next chunk's first step (none after the last)
    into_next[:, :-1] = delta4[:, 1:, 0]
    carry = _decay(delta4[:, :, 1:].sum(2) + into_next, a)  # chunk j's first step <- chunk j+1's first step
    carry[:, -1] = 0
    firsts = scan_backward(carry.flatten(2), first.flatten(2)).view_as(first)
    after = torch.zeros_like(first)
    after[:, :-1] = _decay(delta4[:, 1:, 0], a) * firsts[:, 1:]
    return after


def backward(delta, a, b_sel, c_sel, xs, h0, hs, grad_y, grad_hs):
    """Gradients for (delta, a, b_sel, c_sel, xs, h0). g_t = dL/dh_t = C_t dL/dy_t + decay_{t+1} g_{t+1}
    runs backwards in time; the decay's gradient uses decay_t h_{t-1} = h_t - write_t (no shifted h)."""
    t = xs.shape[1]
    steps = min(CHUNK_STEPS, t)
    extra = (grad_hs,) if grad_hs.numel() else ()
    delta4, xs4, dx4, b4, c4, hs4, gy4, *ghs4 = _in_chunks(steps, delta, xs, delta * xs, b_sel, c_sel, hs, grad_y,
                                                           *extra)

    def direct(i):  # dL/dh_i from the read-out (and from h itself, where h is used)
        out = gy4[:, :, i, :, None] * c4[:, :, i, None, :]
        return out.add_(ghs4[0][:, :, i]) if ghs4 else out

    g = _chunk_ends_grad(delta4, direct, a)
    g_a = torch.zeros_like(g)  # dL/da, summed over steps here, over batch and chunks at the end
    g_through_a = torch.empty_like(delta4)  # sum_n dL/d(delta_t a)[d, n] a[d, n]
    g_write = torch.empty_like(delta4)  # dL/d(delta_t x_t)
    g_b, g_c = torch.empty_like(b4), torch.empty_like(c4)
    decay_next = None
    for i in range(steps - 1, -1, -1):  # pass 2
        g = direct(i).addcmul_(decay_next, g) if decay_next is not None else direct(i).add_(g)
        h_i = hs4[:, :, i]
        g_log_decay = torch.addcmul(h_i, dx4[:, :, i, :, None], b4[:, :, i, None, :], value=-1).mul_(g)
        g_through_a[:, :, i] = (g_log_decay * a).sum(-1)
        g_a.addcmul_(g_log_decay, delta4[:, :, i, :, None])
        g_write[:, :, i] = (g @ b4[:, :, i, :, None])[..., 0]
        g_b[:, :, i] = (dx4[:, :, i, None, :] @ g)[..., 0, :]
        g_c[:, :, i] = (gy4[:, :, i, None, :] @ h_i)[..., 0, :]
        decay_next = _decay(delta4[:, :, i], a)
    grad_h0 = decay_next[:, 0] * g[:, 0]

    def whole(x):
        return x.flatten(1, 2)[:, :t].contiguous()

    return [whole(g_through_a + g_write * xs4), g_a.sum((0, 1)), whole(g_b), whole(g_c), whole(g_write * delta4),
            grad_h0]


@torch.library.custom_op("melody_memory::selective_scan", mutates_args=())
def selective_scan(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor, xs: torch.Tensor,
                   h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [B, T, D], h [B, T, D, N]) of the module docstring's recurrence, from h0 [B, D, N]."""
    return forward(delta, a, b_sel, c_sel, xs, h0)


@selective_scan.register_fake
def _(delta, a, b_sel, c_sel, xs, h0):
    return torch.empty_like(xs), xs.new_empty((*xs.shape, a.shape[-1]))


@torch.library.custom_op("melody_memory::selective_scan_backward", mutates_args=())
def selective_scan_backward(delta: torch.Tensor, a: torch.Tensor, b_sel: torch.Tensor, c_sel: torch.Tensor,
                            xs: torch.Tensor, h0: torch.Tensor, hs: torch.Tensor, grad_y: torch.Tensor,
                            grad_hs: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of selective_scan for (delta, a, b_sel, c_sel, xs, h0); grad_hs may be empty (h unused)."""
    return backward(delta, a, b_sel, c_sel, xs, h0, hs, grad_y, grad_hs)


@selective_scan_backward.register_fake
def _(delta, a, b_sel, c_sel, xs, h0, hs, grad_y, grad_hs):
    return [torch.empty_like(x) for x in (delta, a, b_sel, c_sel, xs, h0)]


def _context(ctx, inputs, output):
    ctx.save_for_backward(*inputs, output[1])
    ctx.set_materialize_grads(False)  # the returned h is mostly unused (training keeps only y)


def _grad(ctx, grad_y, grad_hs):
    *inputs, hs = ctx.saved_tensors
    grad_y = torch.zeros_like(inputs[4]) if grad_y is None else grad_y.contiguous()
    grad_hs = hs.new_empty(0) if grad_hs is None else grad_hs.contiguous()
    return tuple(selective_scan_backward(*inputs, hs, grad_y, grad_hs))


selective_scan.register_autograd(_grad, setup_context=_context)


@register_flop_formula(torch.ops.melody_memory.selective_scan)
def _forward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """Per state element and step: the decay (a multiply, an exp), the write (a multiply), the recurrence
    (a multiply and an add) and the read-out (a multiply and an add): 7 (an exp counted as one, as a
    matmul's 2mnk counts its arithmetic whatever its kernel does; pass 1 of the chunked scan repeats the
    first four)."""
    return 7 * math.prod(delta_shape) * a_shape[-1]


@register_flop_formula(torch.ops.melody_memory.selective_scan_backward)
def _backward_flops(delta_shape, a_shape, *args, out_shape=None, **kwargs) -> int:
    """The reverse recurrence and its direct term (4), the decay again (2), the write again (1), and a
    product-and-sum for each of the gradients of delta a, a, delta x, B and C (2 each): 17 per state
    element and step."""
    return 17 * math.prod(delta_shape) * a_shape[-1]
