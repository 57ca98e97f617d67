"""`ssm`'s one-token step for generation: the arithmetic of MambaBlock.forward for T = 1, on weights prepared
once (engine/models/step_weights.py says why).

A step of the small preset is about 35 tensor ops on a few thousand floats each, so what it costs is the
number of ops (each 2-5 us of dispatch and setup) and not arithmetic. What keeps the count down:
- The first block's input projection and the SiLU of its gate are functions of the token alone: one lookup
  gives them and the embedding.
- Every intermediate and the new state are written with out= into memory laid out so that one op covers
  what took two or three: the causal conv runs in its transposed form (below), one multiply-add; the gate z
  sits next to the conv output (one SiLU for both); D x and delta x are one product, written under h, so
  that the read-out C h + D x is one batched product (C gets a trailing 1).
- RMSNorm is two ops: the residual stream keeps one more column holding sqrt(d eps), so that its vector
  norm is sqrt(sum x^2 + d eps) = sqrt(d) rms(x); the sqrt(d) is folded into the next weight matrix.
- The new state lives in preallocated slots whose views are made once (a view costs about a microsecond a
  call, a step took two dozen). See _Slot for when a slot is reused.

The conv, y_t = b + sum_k w_k x_{t - K + 1 + k} (K = d_conv), in its transposed form: a slot keeps, beside the
state's conv inputs, the partial sums S_j = b + sum_{i >= j} w_{K-1-i} x_{t+j-i} (S_K = b), and a step is
S_j <- w_{K-1-j} x_t + S_{j+1} for every j at once, S_0 being y_t: one addcmul where the window's weighted sum
was a multiply and a reduction (the terms are added oldest input first, b before them; the parallel form's
conv adds in its own order, so the two agree to float rounding).
From a state that is not a slot's (prime's, init_state's), the sums are made by feeding its K - 1 conv
inputs through the same update.

The state (see SelectiveSSM.init_state) is channels last, as the scan's: conv inputs [layers, B, d_conv - 1,
inner] and h [layers, B, N, inner]; a step's state is two views of one slot.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from engine.models.step_weights import folded, norm_eps

LOG2E = 1.0 / math.log(2.0)
# how many slots a thread keeps for one model: a generation needs two (the state it steps from and the new one)
MAX_SLOTS = 4
_use_count = getattr(torch._C, "_storage_Use_Count", None)


@dataclass
class _Layer:
    in_w: torch.Tensor  # [d_model, 2 inner]: the norm's gain and sqrt(d_model) folded in (unused for block 0)
    conv_h: torch.Tensor  # [d_conv, inner]: the conv's taps, newest input's first (w_{K-1}, ..., w_0)
    conv_b: torch.Tensor  # [inner]
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
            conv_h=block.conv.weight[:, 0, :].flip(1).t().contiguous(), conv_b=block.conv.bias.clone(),
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


class _Slot:
    """The memory of one new state, and every view a step takes of it, made once.

    conv part [layers, B, 2 d_conv + 3, inner], per layer and row of the batch: a row unused, the state's conv
    inputs (the last d_conv - 2 of the input state's, then x of this step), the gate (z; for block 0 SiLU(z)),
    for block 0 the embedding, then the conv's partial sums S_0 (the conv output) .. S_{K-1} and its bias b.
    h part [layers, B, N + 2, inner]: h, then D x and delta x. The state a step returns is (rows 1 .. d_conv - 1,
    h).

    A slot is written only when nothing outside this module holds it: its two state tensors are referenced
    only by the slot (Python reference counts) and its memory only by the slot's own views (the storage's use
    count). A caller that keeps a state, or a view of one, keeps its slot out of use; steps then take
    another. Without torch's use count (a private function) slots are never reused.
    """

    def __init__(self, w: StepWeights, batch: int):
        self._views(w, batch)
        self._counts()  # the first call makes the storage's Python object; from the second on, counts repeat
        self._refs = self._counts()

    def _views(self, w: StepWeights, batch: int) -> None:
        n_layers, inner, k, n = len(w.layers), w.layers[0].d.shape[0], w.d_conv, w.d_state
        rows = 2 * k + 3
        size = n_layers * batch * rows * inner
        self.memory = w.first.new_empty(size + n_layers * batch * (n + 2) * inner)
        conv = self.memory[:size].view(n_layers, batch, rows, inner)
        h = self.memory[size:].view(n_layers, batch, n + 2, inner)
        self.taps = conv[:, :, 1:k - 1]  # the input state's newest d_conv - 2 conv inputs are copied here
        self.conv_state, self.h_state = conv[:, :, 1:k], h[:, :, :n]
        self.newest = conv[:, :, 2:k]  # the conv inputs the next step keeps
        self.h_layers = self.h_state.unbind(0)
        self.layers, shifted = [], []
        for i in range(n_layers):
            if i == 0:
                # the lookup writes [x, SiLU(z), embedding]; the SiLU runs on the conv output alone
                into, embedded, sums = conv[0, :, k - 1:k + 2].reshape(batch, 3 * inner), conv[0, :, k + 1, :w.d_model], k + 2
                silu = conv[0, :, sums]
            else:
                into, embedded, sums = conv[i, :, k - 1:k + 1].reshape(batch, 2 * inner), None, k + 1
                silu = conv[i, :, k:k + 2].reshape(batch, 2 * inner)
            conv[i, :, sums + k] = w.layers[i].conv_b
            xs = conv[i, :, sums]
            self.layers.append((into, conv[i, :, k - 1:k], conv[i, :, sums:sums + k], xs, xs[:, None], silu, conv[i, :, k],
                                embedded, h[i, :, :n], h[i, :, n:], h[i, :, n + 1:], h[i, :, :n + 1]))
            shifted.append(conv[i, :, sums + 1:sums + k + 1])  # [S_1 .. S_{K-1}, b]: what the next step adds to
        self.shifted = tuple(shifted)

    def _counts(self):
        storage = self.memory.untyped_storage()
        uses = _use_count(storage._cdata) if _use_count is not None else None
        return sys.getrefcount(self.conv_state), sys.getrefcount(self.h_state), uses

    def free(self) -> bool:
        return _use_count is not None and self._counts() == self._refs


class _Buffers:
    """A thread's slots and the step's other intermediates for one batch size."""

    def __init__(self, w: StepWeights, batch: int):
        inner, r, n = w.layers[0].d.shape[0], w.dt_rank, w.d_state
        self.batch = batch
        self.slots: list[_Slot] = []
        self.layers = []
        for lw in w.layers:
            sel = w.first.new_empty(batch, r + 2 * n + 1)
            sel[:, -1] = 1  # C's trailing 1: the read-out adds the row below h, D x
            pair = w.first.new_empty(batch, 2, inner)  # [D, delta]
            pair[:, 0] = lw.d
            x = w.first.new_empty(batch, w.d_model + 1)  # the block's output, then sqrt(d_model eps)
            x[:, -1] = lw.ext
            y = w.first.new_empty(batch, 1, inner)
            self.layers.append((sel[:, :-1], sel[:, :r], sel[:, r:r + n, None], sel[:, None, r + n:],
                                w.first.new_empty(batch, inner), pair, pair[:, 1], pair[:, 1:], y, y[:, 0],
                                x, x[:, :-1]))

    def slot_for(self, w: StepWeights, conv: torch.Tensor, h: torch.Tensor) -> tuple[_Slot, _Slot | None]:
        """(a free slot that is not the input's, the input's slot or None)."""
        source = next((s for s in self.slots if s.h_state is h and s.conv_state is conv), None)
        for slot in self.slots:
            if slot is not source and slot.free():
                break
        else:
            slot = _Slot(w, self.batch)
            if len(self.slots) >= MAX_SLOTS:  # held elsewhere: leave them to their holders
                self.slots = [s for s in self.slots if s is source]
            self.slots.append(slot)
        return slot, source


def _partial_sums(w: StepWeights, conv: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, [S_1 .. S_{K-1}, b] [B, K, inner] after the conv inputs of a state that is not a slot's: b, then
    each input fed through the step's update, oldest first."""
    out = []
    for lw, inputs in zip(w.layers, conv):
        sums = lw.conv_b.expand(inputs.shape[0], lw.conv_h.shape[0] + 1, -1).clone()
        for m in range(inputs.shape[1]):
            sums = torch.cat([torch.addcmul(sums[:, 1:], lw.conv_h, inputs[:, m:m + 1]), sums[:, -1:]], dim=1)
        out.append(sums[:, 1:])
    return out


def step(w: StepWeights, tokens: torch.Tensor, state):
    """tokens [B] -> (logits [B, V], the state after them)."""
    conv, h = state
    thread = threading.get_ident()
    b = w.buffers.get(thread)
    if b is None or b.batch != tokens.shape[0]:
        b = w.buffers[thread] = _Buffers(w, tokens.shape[0])
    slot, source = b.slot_for(w, conv, h)
    if source is not None:
        slot.taps.copy_(source.newest)
        h_in, shifted = source.h_layers, source.shifted
    else:
        slot.taps.copy_(conv[:, :, 1:])
        h_in, shifted = h.unbind(0), _partial_sums(w, conv)
    x = x_ext = None
    for lw, views, buffers, h_i, s_in in zip(w.layers, slot.layers, b.layers, h_in, shifted):
        into, x3, sums, xs, xs3, silu, gate, embedded, h_new, dx_pair, dx3, h_read = views
        sel, dt, b_col, c_row, pre, pair, delta, delta3, y3, y, out_ext, out = buffers
        if x is None:
            torch.index_select(w.first, 0, tokens, out=into)
            x = embedded
        else:  # RMSNorm: x / sqrt(sum x^2 + d eps), its gain and sqrt(d) in in_w
            torch.mm(torch.div(x, torch.linalg.vector_norm(x_ext, dim=-1, keepdim=True)), lw.in_w, out=into)
        torch.addcmul(s_in, lw.conv_h, x3, out=sums)  # the causal conv (transposed form): S_0 is its output
        F.silu(silu, inplace=True)
        torch.mm(xs, lw.x_w, out=sel)  # [B, dt_rank + 2N]: the step's dt (low rank), B and C
        torch.logaddexp(torch.addmm(lw.dt_b, dt, lw.dt_w, out=pre), w.zero, out=delta)  # softplus: the step size
        # h = exp(delta A) h + (delta x) B: decay, then times h, then the write
        torch.mul(delta3, lw.a2, out=h_new).exp2_().mul_(h_i)
        torch.mul(pair, xs3, out=dx_pair)  # [D x, delta x]
        h_new.addcmul_(b_col, dx3)
        torch.bmm(c_row, h_read, out=y3)  # sum_n C[n] h[n, :] + D x
        y.mul_(gate)
        x = torch.addmm(x, y, lw.out_w, out=out)  # the residual stream plus the block's output
        x_ext = out_ext
    logits = torch.mm(torch.div(x, torch.linalg.vector_norm(x_ext, dim=-1, keepdim=True)), w.head_w)
    return logits, (slot.conv_state, slot.h_state)
