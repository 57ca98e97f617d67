"""The selective scan of `ssm` over a whole sequence, as one torch op with a hand-written backward:

    h_t = exp(delta_t * a) * h_{t-1} + (delta_t * x_t) B_t,    y_t = h_t C_t

delta, x [B, T, D]; a [D, N] (negative); B, C [B, T, N]; h [B, T, D, N].

The state is N times wider than the channels, so on a CPU the cost is memory traffic and the exp, not
the arithmetic. What keeps both down:
- Inside, the state is laid out [..., N, D] (channels last): every elementwise op then runs along
  D contiguous floats, and the read-out sum_n C[n] h[n, :] is a [1, N] @ [N, D] product. With N = 8 last,
  each op's inner loop was 8 floats long and ran about five times slower.
- The decay exp(delta a) is made once, for the forward's two passes and the backward's, with exp2 (a
  scaled by log2 e): torch's exp2 is about three times faster than its exp on this CPU, and the two agree
  to float rounding. Keeping it for backward costs as much memory as h (B T N D floats per layer) and saved
  a tenth of a training step at the bench's shapes (making it again was an exp2 and a broadcast product
  per position, each over a state-sized tensor).
- Every [B, T, N, D]-sized quantity is held as one [B, G, N, D] tensor per position of a chunk (G chunks
  of L steps), never as one tensor: see _decays.
- The chunked parallel scan of engine/models/scans.py, fused with the step's arithmetic: pass 1 runs all
  chunks from zero (a loop over the L positions of a chunk, each op covering every chunk of every
  sequence), a scan over the T / L chunk ends gives each chunk's true start, pass 2 runs the chunks
  again from there. h is kept for backward as pass 2 wrote it (no copy), beside the decays; the state
  entering chunk j is h at the last step of chunk j - 1. No loop runs over the T steps.
- Into and out of the chunk layout each [B, T, ...] tensor is copied once (a pad and a reshape copied it
  three times).
"""

from __future__ import annotations

import math

import torch

from engine.models.scans import scan_backward, scan_forward

LOG2E = 1.0 / math.log(2.0)
# Steps per chunk (L): each op of a pass takes one position of every chunk, B T N D / L floats, so a
# larger L means smaller ops (closer to cache) but more of them. 16, 32 and 64 ran within noise of each
# other at the bench's shapes (B T about 7600, D 240, N 8); 32 pads a sequence by at most 31 steps.
CHUNK_STEPS = 32


def _in_chunks(steps: int, *tensors):
    """Each [B, T, ...] tensor laid out [L, B, G, ...] in whole chunks (position of the chunk first: each
    position's slice, which every op of a pass takes, is contiguous), the last chunk padded with zeros. A padded
    step (delta = 0, x = 0) keeps h as it is and, coming last, changes no earlier step or gradient. One copy
    of each tensor (padding, then reshaping, wrote it three times)."""
    out = []
    for x in tensors:
        batch, t, rest = x.shape[0], x.shape[1], x.shape[2:]
        full, left = divmod(t, steps)
        y = x.new_empty(steps, batch, full + (left > 0), *rest)
        if full:
            y[:, :, :full].copy_(x[:, :full * steps].unflatten(1, (full, steps)).movedim(2, 0))
        if left:
            y[:left, :, full].copy_(x[:, full * steps:].movedim(1, 0))
            y[left:, :, full].zero_()
        out.append(y)
    return out


def _whole(x: torch.Tensor, t: int) -> torch.Tensor:
    """[L, B, G, ...] back to [B, T, ...], in one copy."""
    steps, batch = x.shape[:2]
    full, left = divmod(t, steps)
    out = x.new_empty(batch, t, *x.shape[3:])
    if full:
        out[:, :full * steps].unflatten(1, (full, steps)).copy_(x[:, :, :full].movedim(0, 2))
    if left:
        out[:, full * steps:].copy_(x[:left, :, full].movedim(0, 1))
    return out


def chunk_steps(t: int) -> int:
    return min(CHUNK_STEPS, t)


def _decays(delta, a2) -> list[torch.Tensor]:
    """exp(delta a) of every step, one [B, G, N, D] tensor per position of a chunk, from delta [L, B, G, D]
    and a2 = a^T log2(e) [N, D]. Per position rather than one [L, B, G, N, D] tensor: a tensor above the C
    allocator's mmap threshold (32 MB in glibc) is returned to the OS when freed and page-faulted in again
    at every use, which cost as much as the arithmetic at the bench's shapes."""
    return [torch.exp2_(delta[i, :, :, None, :] * a2) for i in range(delta.shape[0])]


def _chunk_starts(decay, dx, b, delta, a2, h0):
    """[B, G, N, D]: the state entering each chunk (pass 1: each chunk from zero, then a scan over chunks)."""
    steps, _, chunks = delta.shape[:3]
    if chunks == 1:
        return h0[:, None]
    end = b[0, :, :, :, None] * dx[0, :, :, None, :]
    for i in range(1, steps):
        end.mul_(decay[i]).addcmul_(b[i, :, :, :, None], dx[i, :, :, None, :])
    through = torch.exp2_(delta.sum(0)[:, :, None, :] * a2)  # the decay through a whole chunk
    ends = scan_forward(through.flatten(2), end.flatten(2), h0.flatten(1)).view_as(end)
    return torch.cat([h0[:, None], ends[:, :-1]], dim=1)


def forward(delta, a, b_sel, c_sel, xs, h0, keep_states: bool = True) -> list[torch.Tensor]:
    """[y [B, T, D], then h at each position of a chunk, [B, G, N, D] each (the chunk layout), then the decay at
    each position, the same (backward reads both rather than making the decays again: a tenth of its time)].

    keep_states=False (scoring, no backward to come): h is updated in place and only the last position's is
    returned, [y, h at position L - 1]; the same arithmetic, so the same floats, without L fresh [B, G, N, D]
    tensors (each above the allocator's mmap threshold at the recall measure's shapes)."""
    t = xs.shape[1]
    steps = chunk_steps(t)
    a2 = (a * LOG2E).t().contiguous()  # [N, D]
    delta_c, dx, b, c = _in_chunks(steps, delta, delta * xs, b_sel, c_sel)  # [L, B, G, D or N]
    decay = _decays(delta_c, a2)
    h = _chunk_starts(decay, dx, b, delta_c, a2, h0.transpose(1, 2))
    y = torch.empty_like(dx)
    hs = []
    for i in range(steps):  # pass 2: every chunk from its true start
        if keep_states or i == 0:  # (the chunks' starts may be h0's memory: never written)
            h = torch.mul(decay[i], h)
        else:
            h.mul_(decay[i])
        h.addcmul_(b[i, :, :, :, None], dx[i, :, :, None, :])
        torch.matmul(c[i, :, :, None, :], h, out=y[i, :, :, None, :])
        if keep_states:
            hs.append(h)
    return [_whole(y, t), *hs, *decay] if keep_states else [_whole(y, t), h]


def last_state(hs: list[torch.Tensor], t: int) -> torch.Tensor:
    """h after step t - 1 as [B, D, N] (the generation state's layout), from the chunk layout: from every
    position's h, or (keep_states=False) from the last position's alone, where the padded steps after t - 1
    (delta 0: decay 1, nothing written) left it as it was."""
    if len(hs) == 1:
        return hs[0][:, -1].transpose(1, 2)
    steps = len(hs)
    return hs[(t - 1) % steps][:, (t - 1) // steps].transpose(1, 2)


def _chunk_ends_grad(decay, delta, a2, c, gy, grad_hs):
    """[B, G, N, D]: the gradient entering each chunk's last step from the step after it (pass 1 of
    backward: each chunk's first-step gradient as if nothing came after it, then a scan over chunks)."""
    steps, _, chunks = delta.shape[:3]
    if chunks == 1:
        return torch.zeros_like(decay[0])
    first = torch.zeros_like(decay[0])
    for i in range(steps - 1, -1, -1):
        if i < steps - 1:
            first.mul_(decay[i + 1])
        first.addcmul_(c[i, :, :, :, None], gy[i, :, :, None, :])
        if grad_hs:
            first.add_(grad_hs[i])
    into_next = torch.zeros_like(delta[0])  # delta of the next chunk's first step (none after the last)
    into_next[:, :-1] = delta[0, :, 1:]
    carry = torch.exp2_((delta[1:].sum(0) + into_next)[:, :, None, :] * a2)  # chunk j's first <- j+1's
    carry[:, -1] = 0
    firsts = scan_backward(carry.flatten(2), first.flatten(2)).view_as(first)
    after = torch.zeros_like(first)
    after[:, :-1] = decay[0][:, 1:] * firsts[:, 1:]
    return after


def backward(delta, a, b_sel, c_sel, xs, h0, hs, decay, grad_y, grad_hs):
    """Gradients for (delta, a, b_sel, c_sel, xs, h0); hs, decay (forward's) and grad_hs (or an empty list) per
    position of a chunk. g_t = dL/dh_t = C_t dL/dy_t + decay_{t+1} g_{t+1} runs backwards in time; each gradient is
    gathered at the step it is made, from g and the stored h (h_{t-1} at the first step of a chunk is h
    at the last step of the chunk before)."""
    t = xs.shape[1]
    steps = chunk_steps(t)
    a2 = (a * LOG2E).t().contiguous()
    delta_c, xs_c, dx, b, c, gy = _in_chunks(steps, delta, xs, delta * xs, b_sel, c_sel, grad_y)  # [L, B, G, .]
    g = _chunk_ends_grad(decay, delta_c, a2, c, gy, grad_hs)  # becomes g at each step of pass 2, in place
    starts = torch.cat([h0.transpose(1, 2)[:, None], hs[-1][:, :-1]], dim=1)  # h entering each chunk
    g_a = torch.zeros_like(g)  # dL/da, summed over steps here, over batch and chunks at the end
    g_log_decay, tmp = torch.empty_like(g), torch.empty_like(g)  # dL/d(delta_i a) [B, G, N, D]; scratch
    g_delta_a = torch.empty_like(delta_c)  # sum_n dL/d(delta_i a)[n, d] a[d, n]
    g_write = torch.empty_like(delta_c)  # dL/d(delta_i x_i)
    g_b, g_c = torch.empty_like(b), torch.empty_like(c)
    a_t = a.t().contiguous()  # [N, D]
    for i in range(steps - 1, -1, -1):  # pass 2
        if i < steps - 1:
            g.mul_(decay[i + 1])
        g.addcmul_(c[i, :, :, :, None], gy[i, :, :, None, :])
        if grad_hs:
            g.add_(grad_hs[i])
        torch.mul(decay[i], hs[i - 1] if i else starts, out=g_log_decay).mul_(g)
        torch.sum(torch.mul(g_log_decay, a_t, out=tmp), -2, out=g_delta_a[i])
        g_a.addcmul_(g_log_decay, delta_c[i, :, :, None, :])
        torch.matmul(b[i, :, :, None, :], g, out=g_write[i, :, :, None, :])
        torch.sum(torch.mul(g, dx[i, :, :, None, :], out=tmp), -1, out=g_b[i])
        torch.sum(torch.mul(hs[i], gy[i, :, :, None, :], out=tmp), -1, out=g_c[i])
    grad_h0 = (decay[0][:, 0] * g[:, 0]).transpose(1, 2)
    return [_whole(g_delta_a + g_write * xs_c, t), g_a.sum((0, 1)).t().contiguous(), _whole(g_b, t),
            _whole(g_c, t), _whole(g_write * delta_c, t), grad_h0.contiguous()]
