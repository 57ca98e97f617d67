"""`ssm`'s one-token step for generation: the arithmetic of MambaBlock.forward for T = 1, on weights prepared
once (engine/models/step_weights.py says why).

The state (see SelectiveSSM.init_state) is channels last, as the scan's: conv inputs [layers, B, d_conv - 1,
inner] and h [layers, B, N, inner], so every op on h runs along the inner channels, contiguous. A step
writes each layer's conv window (the d_conv - 1 steps before and this one) into one new tensor, and the
state it returns is that tensor's last d_conv - 1 steps, a view: no copy to shift the window.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from engine.models.step_weights import folded, norm_eps, rms_scale

LOG2E = 1.0 / math.log(2.0)


@dataclass
class _Layer:
    in_w: torch.Tensor  # [d_model, 2 inner], the norm's gain folded in
    eps: torch.Tensor  # the norm's eps, 0-d (addcmul's first operand)
    conv_w: torch.Tensor  # [d_conv, inner]: tap k multiplies the input k - d_conv + 1 steps back
    conv_b: torch.Tensor  # [2 inner]: the conv's bias, then zeros (for the gate z, which shares the silu)
    x_w: torch.Tensor  # [inner, dt_rank + 2 N]
    dt_w: torch.Tensor  # [dt_rank, inner]
    dt_b: torch.Tensor  # [inner]
    a2: torch.Tensor  # [N, inner]: A log2(e), so that exp(delta A) is one exp2 (as the scan has it)
    d: torch.Tensor  # [inner]
    out_w: torch.Tensor  # [inner, d_model]


@dataclass
class StepWeights:
    # [V, d_model + 2 inner]: per token, its embedding and the first block's input projection of it (a function
    # of the token alone: one lookup instead of a norm and a matrix product each step)
    first: torch.Tensor
    layers: list[_Layer]
    head_w: torch.Tensor  # [d_model, V], the final norm's gain folded in
    eps: torch.Tensor  # the final norm's
    dt_rank: int
    d_state: int
    zero: torch.Tensor  # 0-d: softplus(v) = logaddexp(v, 0), which writes to out=
    # _Buffers per thread (by threading.get_ident()): two generations on one model in two threads must not share
    # intermediates (a dict rather than threading.local, which a deepcopy of the model could not copy)
    buffers: dict[int, _Buffers] = field(default_factory=dict)


@torch.no_grad()
def prepare(model) -> StepWeights:
    """The weights of a SelectiveSSM as the step uses them."""
    layers = []
    for block in model.blocks:
        bias = block.conv.bias
        layers.append(_Layer(
            in_w=folded(block.in_proj.weight, block.norm), eps=_eps(block.norm),
            conv_w=block.conv.weight[:, 0, :].t().contiguous(), conv_b=torch.cat([bias, torch.zeros_like(bias)]),
            x_w=block.x_proj.weight.t().contiguous(),
            dt_w=block.dt_proj.weight.t().contiguous(), dt_b=block.dt_proj.bias.clone(),
            a2=(-torch.exp(block.A_log) * LOG2E).t().contiguous(),
            d=block.D.clone(), out_w=block.out_proj.weight.t().contiguous()))
    embed = model.embed.weight
    first = torch.cat([embed, model.blocks[0].in_proj(model.blocks[0].norm(embed))], dim=1)
    return StepWeights(first, layers, folded(model.head.weight, model.norm_f), _eps(model.norm_f),
                       model.config.dt_rank, model.config.d_state, embed.new_zeros(()))


def _eps(norm) -> torch.Tensor:
    return norm.weight.new_tensor(norm_eps(norm, norm.weight.dtype))


class _Buffers:
    """The step's intermediates for one batch size, written with out= each step, and their views made once
    (a view costs about a microsecond a call, and a step took two dozen). Nothing a step returns is one of
    them: the logits and the state are new tensors, so a caller may keep them."""

    def __init__(self, w: StepWeights, batch: int):
        inner, d_model, r, n = w.layers[0].d.shape[0], w.head_w.shape[0], w.dt_rank, w.d_state
        self.row = w.first.new_empty(batch, w.first.shape[1])
        self.x = self.row[:, :d_model]
        self.layers = []
        for i in range(len(w.layers)):
            u = self.row[:, d_model:] if i == 0 else w.first.new_empty(batch, 2 * inner)
            sel = u.new_empty(batch, r + 2 * n)
            delta, dx, y = (u.new_empty(batch, 1, inner) for _ in range(3))
            self.layers.append((u, u[:, None, :inner], u[:, :inner], u[:, inner:], sel, sel[:, :r], sel[:, r:r + n, None],
                                sel[:, None, r + n:], delta, delta[:, 0], dx, dx[:, 0], y, y[:, 0]))


def step(w: StepWeights, tokens: torch.Tensor, state):
    """tokens [B] -> (logits [B, V], the state after them)."""
    conv, h = state
    thread = threading.get_ident()
    b = w.buffers.get(thread)
    if b is None or b.row.shape[0] != tokens.shape[0]:
        b = w.buffers[thread] = _Buffers(w, tokens.shape[0])
    torch.index_select(w.first, 0, tokens, out=b.row)
    x = b.x
    windows = conv.new_empty(conv.shape[0], conv.shape[1], conv.shape[2] + 1, conv.shape[3])
    h_out = torch.empty_like(h)
    for i, (lw, lb, c_i, h_i, win_i, ho_i) in enumerate(zip(w.layers, b.layers, conv, h, windows, h_out)):
        u, u_x3, xs, z, sel, dt, b_col, c_row, delta3, delta, dx3, dx, y3, y = lb
        if i:
            torch.mm(x * rms_scale(x, lw.eps), lw.in_w, out=u)
        torch.cat([c_i, u_x3], dim=1, out=win_i)  # [B, d_conv, inner]
        # the conv's output replaces x in u (the window holds x now), so that one silu serves it and z
        torch.linalg.vecdot(win_i, lw.conv_w, dim=1, out=xs)
        F.silu(u.add_(lw.conv_b), inplace=True)
        torch.mm(xs, lw.x_w, out=sel)  # [B, dt_rank + 2N]: the step's dt (low rank), B and C
        torch.logaddexp(torch.addmm(lw.dt_b, dt, lw.dt_w), w.zero, out=delta)  # softplus: the step size [B, inner]
        # h = exp(delta A) h + (delta x) B, built in h_out's slice: decay, then times h, then the write
        torch.mul(delta3, lw.a2, out=ho_i).exp2_().mul_(h_i)
        torch.mul(delta, xs, out=dx)
        ho_i.addcmul_(b_col, dx3)
        torch.bmm(c_row, ho_i, out=y3)  # sum_n C[n] h[n, :]
        y.addcmul_(xs, lw.d).mul_(z)
        x = torch.addmm(x, y, lw.out_w)  # the residual stream plus the block's output
    logits = torch.mm(x * rms_scale(x, w.eps), w.head_w)
    return logits, (windows[:, :, 1:], h_out)
