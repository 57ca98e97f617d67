"""Linear recurrences over a whole sequence at once, for the models whose state update is linear in the
state (ssm, mingru): h_t = a_t * h_{t-1} + b_t, elementwise over the last dimension.

A chunked parallel scan (the shape of the fused scans of Mamba and of Blelloch's scan with a wide base
case): the T steps are cut into chunks of CHUNK_STEPS. Pass 1 runs every chunk from a zero state at once
(a loop over the CHUNK_STEPS positions of a chunk, each step covering all chunks of all sequences),
keeping only each chunk's end state and its total decay; the chunks' true starting states then follow
from the same scan over the T / CHUNK_STEPS chunk ends (recursively); pass 2 runs every chunk again from
its true start, writing the output. No loop runs over the T steps: at T = 256 the loops take 2 x 15
positions, and the output is written once, so the scan reads its inputs about three times (an odd/even
reduction, which this replaced, moved about four times as much memory through strided copies).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import register_flop_formula

from engine.models.torch_ops import define, one_dtype

CHUNK_STEPS = 16


def _padded(a: torch.Tensor, b: torch.Tensor, steps: int):
    """a and b cut into whole chunks; a padded step (a = 1, b = 0) at the end changes no earlier step."""
    t = b.shape[1]
    pad = -t % steps
    if pad:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        b = F.pad(b, (0, 0, 0, pad))
    return a, b


def scan_forward(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h [B, T, S] with h_t = a_t * h_{t-1} + b_t, h_{-1} = h0 [B, S]."""
    batch, t, s = b.shape
    steps = min(CHUNK_STEPS, t)
    a, b = _padded(a, b, steps)
    chunks = b.shape[1] // steps
    a4, b4 = a.reshape(batch, chunks, steps, s), b.reshape(batch, chunks, steps, s)
    if chunks > 1:  # pass 1: each chunk from zero -> its end state and decay; then the chunks' starts
        end, decay = b4[:, :, 0].clone(), a4[:, :, 0].clone()
        for i in range(1, steps):
            end.mul_(a4[:, :, i]).add_(b4[:, :, i])
            decay.mul_(a4[:, :, i])
        ends = scan_forward(decay, end, h0)  # the true state at the end of each chunk
        starts = torch.cat([h0[:, None], ends[:, :-1]], dim=1)
    else:
        starts = h0[:, None]
    h = torch.empty_like(b4)  # pass 2: every chunk from its true start
    torch.addcmul(b4[:, :, 0], a4[:, :, 0], starts, out=h[:, :, 0])
    for i in range(1, steps):
        torch.addcmul(b4[:, :, i], a4[:, :, i], h[:, :, i - 1], out=h[:, :, i])
    return h.view(batch, chunks * steps, s)[:, :t]


def scan_backward(m: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """g [B, T, S] with g_t = b_t + m_t * g_{t+1} and g_T = 0: the same scan run backwards in time (as the
    gradient of a forward scan flows), without reversing any tensor."""
    batch, t, s = b.shape
    steps = min(CHUNK_STEPS, t)
    m, b = _padded(m, b, steps)  # padded steps come last: with b = 0 they leave g_{t < T} as it is
    chunks = b.shape[1] // steps
    m4, b4 = m.reshape(batch, chunks, steps, s), b.reshape(batch, chunks, steps, s)
    last = steps - 1
    if chunks > 1:  # pass 1: each chunk from a zero g after it -> its first g and the decay through it
        first, decay = b4[:, :, last].clone(), m4[:, :, last].clone()
        for i in range(last - 1, -1, -1):
            first.mul_(m4[:, :, i]).add_(b4[:, :, i])
            decay.mul_(m4[:, :, i])
        firsts = scan_backward(decay, first)  # the true g at the first step of each chunk
        after = torch.cat([firsts[:, 1:], torch.zeros_like(firsts[:, :1])], dim=1)  # g entering from the next chunk
    else:
        after = torch.zeros_like(b4[:, :, last])
    g = torch.empty_like(b4)  # pass 2
    torch.addcmul(b4[:, :, last], m4[:, :, last], after, out=g[:, :, last])
    for i in range(last - 1, -1, -1):
        torch.addcmul(b4[:, :, i], m4[:, :, i], g[:, :, i + 1], out=g[:, :, i])
    return g.view(batch, chunks * steps, s)[:, :t]


def next_steps(a: torch.Tensor) -> torch.Tensor:
    """a_{t+1} at t (0 after the last step): what carries the gradient of h_{t+1} back to h_t."""
    out = torch.empty_like(a)
    out[:, :-1] = a[:, 1:]
    out[:, -1] = 0
    return out


def previous_states(h: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_{t-1} at t (h0 at the first step): what a_t multiplied."""
    out = torch.empty_like(h)
    out[:, 0] = h0
    out[:, 1:] = h[:, :-1]
    return out


# g [B, T, S] with g_t = b_t + m_t * g_{t+1}, g_T = 0 (an op so that the FLOP counter sees it)
linear_scan_reverse = define(
    "linear_scan_reverse(Tensor m, Tensor b) -> Tensor",
    lambda m, b: scan_backward(m, b).contiguous(), lambda m, b: torch.empty_like(b))
_linear_scan = define(
    "linear_scan(Tensor a, Tensor b, Tensor h0) -> Tensor",
    lambda a, b, h0: scan_forward(a, b, h0).contiguous(), lambda a, b, h0: torch.empty_like(b))


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, h0):
        h = _linear_scan(a, b, h0)
        ctx.save_for_backward(a, h0, h)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        """The gradient g_t = dL/dh_t + a_{t+1} g_{t+1}; then dL/da_t = g_t h_{t-1}, dL/db_t = g_t."""
        a, h0, h = ctx.saved_tensors
        g = linear_scan_reverse(next_steps(a), grad_h.contiguous())
        return g * previous_states(h, h0), g, a[:, 0] * g[:, 0]


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h [B, T, S] with h_t = a_t * h_{t-1} + b_t and h_{-1} = h0 [B, S], elementwise over S."""
    return _LinearScan.apply(*one_dtype(a, b, h0))


@register_flop_formula(torch.ops.melody_memory.linear_scan)
def _linear_scan_flops(a_shape, b_shape, h0_shape, *args, out_shape=None, **kwargs) -> int:
    """The recurrence's arithmetic, a multiply and an add per state element and step (the model's FLOPs,
    as a matmul counts 2mnk whatever its kernel does; pass 1 of the chunked form does about as many again)."""
    return 2 * math.prod(b_shape)


@register_flop_formula(torch.ops.melody_memory.linear_scan_reverse)
def _linear_scan_reverse_flops(m_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(b_shape)
