"""`ssm`'s one-token step for generation: the arithmetic of MambaBlock.forward for T = 1, on weights prepared
once (engine/models/step_weights.py says why).

A step of the small preset is a few dozen tensor ops on a few thousand floats each, so what it costs is the
number of ops (each 2-5 us of dispatch and setup) and not arithmetic. What keeps the count down:
- The first block's input projection and the SiLU of its gate are functions of the token alone: one lookup
  gives them and the embedding.
- The intermediates are written with out= into per-thread buffers laid out so that one op covers what took
  two or three: the conv window has a row of ones in front (its bias is one more tap); the gate z sits next
  to the conv output (one SiLU for both); D x and delta x are one product, and the read-out D x + C h is one
  baddbmm.
- The new h is written straight into a fresh dense tensor, which the step returns: copying it out of a
  strided buffer cost more than any op of the step (about 18 us of ~180).
- RMSNorm is two ops: the residual stream keeps one more column holding sqrt(d eps), so that its vector
  norm is sqrt(sum x^2 + d eps) = sqrt(d) rms(x); the sqrt(d) is folded into the next weight matrix.
- The buffers' views are made once (a view costs about a microsecond a call, and a step takes a few dozen).

The state (see SelectiveSSM.init_state) is channels last, as the scan's: conv inputs [layers, B, d_conv - 1,
inner] and h [layers, B, N, inner]. A step reads the state it is given (the conv inputs copied into its
window) and returns new tensors, as every model's step does: a caller may keep any state it was given.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from engine.models.step_weights import folded, norm_eps

LOG2E = 1.0 / math.log(2.0)


@dataclass
class _Layer:
    in_w: torch.Tensor  # [d_model, 2 inner]: the norm's gain and sqrt(d_model) folded in (unused for block 0)
    conv_w: torch.Tensor  # [1 + d_conv, inner]: the conv's bias (times the window's row of ones), then its taps
    x_w: torch.Tensor  # [inner, dt_rank + 2 N]
    dt_w: torch.Tensor  # [dt_rank, inner]
    dt_b: torch.Tensor  # [inner]
    a2: torch.Tensor  # [N, inner]: A log2(e), so that exp(delta A) is one exp2 (as the scan has it)
    d: torch.Tensor  # [inner]
    out_w: torch.Tensor  # [inner, d_model]
    ext: float  # sqrt(d_model eps) of the norm that reads this block's output (the next block's or the final one)


@dataclass
class StepWeights:
    # [V, 3 inner]: per token, the first block's input projection of it, the SiLU of its gate half, and its
    # embedding (zero-padded to inner): all functions of the token alone
    first: torch.Tensor
    layers: list[_Layer]
    head_w: torch.Tensor  # [d_model, V], the final norm's gain and sqrt(d_model) folded in
    d_model: int
    dt_rank: int
    d_state: int
    d_conv: int
    zero: torch.Tensor  # 0-d: softplus(v) = logaddexp(v, 0), which writes to out=
    # _Buffers per thread (by threading.get_ident()): two generations on one model in two threads must not share
    # intermediates (a dict rather than threading.local, which a deepcopy of the model could not copy)
    buffers: dict[int, _Buffers] = field(default_factory=dict)


@torch.no_grad()
def prepare(model) -> StepWeights:
    """The weights of a SelectiveSSM as the step uses them."""
    c = model.config
    inner, root_d = c.expand * c.d_model, math.sqrt(c.d_model)
    norms = [block.norm for block in model.blocks[1:]] + [model.norm_f]
    layers = []
    for block, next_norm in zip(model.blocks, norms):
        layers.append(_Layer(
            in_w=folded(block.in_proj.weight, block.norm) * root_d,
            conv_w=torch.cat([block.conv.bias[None], block.conv.weight[:, 0, :].t()]).contiguous(),
            x_w=block.x_proj.weight.t().contiguous(),
            dt_w=block.dt_proj.weight.t().contiguous(), dt_b=block.dt_proj.bias.clone(),
            a2=(-torch.exp(block.A_log) * LOG2E).t().contiguous(),
            d=block.D.clone(), out_w=block.out_proj.weight.t().contiguous(),
            ext=math.sqrt(c.d_model * norm_eps(next_norm, next_norm.weight.dtype))))
    embed = model.embed.weight
    u = model.blocks[0].in_proj(model.blocks[0].norm(embed))
    first = torch.cat([u[:, :inner], F.silu(u[:, inner:]), F.pad(embed, (0, inner - c.d_model))], dim=1)
    return StepWeights(first.contiguous(), layers, folded(model.head.weight, model.norm_f) * root_d,
                       c.d_model, c.dt_rank, c.d_state, c.d_conv, embed.new_zeros(()))


class _Buffers:
    """The step's intermediates for one batch size, written with out= each step, and their views made once.
    Nothing a step returns is one of them: the logits and the state are new tensors.

    conv [layers, B, d_conv + 4, inner], per layer and row of the batch: a row of ones, the d_conv inputs of the
    conv window (the input state's d_conv - 1, then x of this step), the gate (z; for block 0 SiLU(z)), then for
    block 0 the embedding and the conv output, for the others the conv output (and a row unused).
    dx [layers, B, 2, inner]: D x and delta x.
    """

    def __init__(self, w: StepWeights, batch: int):
        n_layers, inner, r, k, n = len(w.layers), w.layers[0].d.shape[0], w.dt_rank, w.d_conv, w.d_state
        self.batch = batch
        conv = w.first.new_empty(n_layers, batch, k + 4, inner)
        dx = w.first.new_empty(n_layers, batch, 2, inner)
        conv[:, :, 0].fill_(1)
        self.conv_in = conv[:, :, 1:k]  # the input state's conv inputs are copied here
        self.conv_out = conv[:, :, 2:k + 1]  # the new state's conv inputs are copied from here
        self.h_shape = (n_layers, batch, n, inner)
        self.layers = []
        for i, lw in enumerate(w.layers):
            window = conv[i, :, :k + 1]
            if i == 0:
                # the lookup writes [x, SiLU(z), embedding]; the SiLU runs on the conv output alone
                into, gate, embedded = conv[0, :, k:k + 3].reshape(batch, 3 * inner), conv[0, :, k + 1], conv[0, :, k + 2, :w.d_model]
                xs, silu = conv[0, :, k + 3], conv[0, :, k + 3]
            else:
                into, gate, embedded = conv[i, :, k:k + 2].reshape(batch, 2 * inner), conv[i, :, k + 1], None
                xs, silu = conv[i, :, k + 2], conv[i, :, k + 1:k + 3].reshape(batch, 2 * inner)
            sel = w.first.new_empty(batch, r + 2 * n)
            pair = w.first.new_empty(batch, 2, inner)  # [D, delta]
            pair[:, 0] = lw.d
            x = w.first.new_empty(batch, w.d_model + 1)  # the block's output, then sqrt(d_model eps)
            x[:, -1] = lw.ext
            y = w.first.new_empty(batch, 1, inner)
            self.layers.append((into, window, xs, xs[:, None], silu, gate, embedded,
                                dx[i], dx[i, :, 1:], dx[i, :, :1],
                                sel, sel[:, :r], sel[:, r:r + n, None], sel[:, None, r + n:],
                                w.first.new_empty(batch, inner), pair, pair[:, 1], pair[:, 1:], y, y[:, 0],
                                x, x[:, :-1]))


def step(w: StepWeights, tokens: torch.Tensor, state):
    """tokens [B] -> (logits [B, V], the state after them)."""
    conv, h = state
    thread = threading.get_ident()
    b = w.buffers.get(thread)
    if b is None or b.batch != tokens.shape[0]:
        b = w.buffers[thread] = _Buffers(w, tokens.shape[0])
    b.conv_in.copy_(conv)
    h_out = h.new_empty(b.h_shape)
    x = x_ext = None
    for lw, views, h_i, h_new in zip(w.layers, b.layers, h.unbind(0), h_out.unbind(0)):
        (into, window, xs, xs3, silu, gate, embedded, dx_pair, dx3, d_x3,
         sel, dt, b_col, c_row, pre, pair, delta, delta3, y3, y, out_ext, out) = views
        if x is None:
            torch.index_select(w.first, 0, tokens, out=into)
            x = embedded
        else:  # RMSNorm: x / sqrt(sum x^2 + d eps), its gain and sqrt(d) in in_w
            torch.mm(torch.div(x, torch.linalg.vector_norm(x_ext, dim=-1, keepdim=True)), lw.in_w, out=into)
        torch.linalg.vecdot(window, lw.conv_w, dim=1, out=xs)  # the causal conv, its bias included
        F.silu(silu, inplace=True)
        torch.mm(xs, lw.x_w, out=sel)  # [B, dt_rank + 2N]: the step's dt (low rank), B and C
        torch.logaddexp(torch.addmm(lw.dt_b, dt, lw.dt_w, out=pre), w.zero, out=delta)  # softplus: the step size
        # h = exp(delta A) h + (delta x) B: decay, then times h, then the write
        torch.mul(delta3, lw.a2, out=h_new).exp2_().mul_(h_i)
        torch.mul(pair, xs3, out=dx_pair)  # [D x, delta x]
        h_new.addcmul_(b_col, dx3)
        torch.baddbmm(d_x3, c_row, h_new, out=y3)  # D x + sum_n C[n] h[n, :]
        y.mul_(gate)
        x = torch.addmm(x, y, lw.out_w, out=out)  # the residual stream plus the block's output
        x_ext = out_ext
    logits = torch.mm(torch.div(x, torch.linalg.vector_norm(x_ext, dim=-1, keepdim=True)), w.head_w)
    return logits, (b.conv_out.clone(), h_out)  # a slice of the buffer: the clone is contiguous
