"""`ssm`: a selective state-space model in the Mamba design (Gu & Dao 2023), in pure PyTorch.

Each block: norm -> input projection into a channel path x and a gate path z -> a short causal
depthwise convolution over x -> SiLU -> from x, the *selective* parameters of this step: a step size
delta (per channel), and B and C (per state) -> the linear recurrence, per channel d and state n,

    h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * x_t[d]
    y_t[d]    = sum_n C_t[n] * h_t[d, n] + D[d] * x_t[d]

-> y * SiLU(z) -> output projection, added to the residual stream. A is diagonal and negative, so every
state decays; because delta, B and C depend on the input, the model chooses per token what to write
and how fast to forget (a small delta keeps the state, a large one overwrites it).

The recurrence is linear in h, so training runs it as a parallel scan (`linear_scan`, a torch custom op:
Blelloch's work-efficient odd/even reduction: log2(T) levels over halving
sequences, no loop over time steps); generation steps one token with a fixed-size state (the conv's last
inputs and h). The op's backward is the same scan run backwards in time, and its FLOP formula is
registered with torch's FLOP counter so that `bench` counts the scan's work (engine/training/flops.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import register_flop_formula

from engine.core.validation import Limit
from engine.models.base import ModelConfig, StatefulSequenceModel


def _scan_from_zero(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t from h_{-1} = 0, [B, T, S], by odd/even reduction (Blelloch's work-efficient
    scan): fold each pair of steps into one, scan the half-length sequence, fill in the even steps. log2(T)
    levels, each on half the steps of the one above, so about twice the work of the sequential loop."""
    t = b.shape[1]
    if t == 1:
        return b
    if t % 2:  # one step more (a = 1, b = 0) at the end: no earlier step sees it, and it is cut off below
        a = F.pad(a, (0, 0, 0, 1), value=1.0)
        b = F.pad(b, (0, 0, 0, 1))
    a_even, a_odd, b_even = a[:, 0::2], a[:, 1::2], b[:, 0::2]
    h_odd = _scan_from_zero(a_odd * a_even, torch.addcmul(b[:, 1::2], a_odd, b_even))  # steps 1, 3, 5, ...
    h = torch.empty_like(b)
    h[:, 1::2] = h_odd
    h[:, 0] = b[:, 0]
    torch.addcmul(b_even[:, 1:], a_even[:, 1:], h_odd[:, :-1], out=h[:, 2::2])
    return h[:, :t]


@torch.library.custom_op("melody_memory::linear_scan", mutates_args=())
def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h [B, T, S] with h_t = a_t * h_{t-1} + b_t and h_{-1} = h0 [B, S], elementwise over S."""
    b = torch.cat([torch.addcmul(b[:, :1], a[:, :1], h0[:, None]), b[:, 1:]], dim=1)  # h0 folded into step 0
    return _scan_from_zero(a, b).contiguous()  # b is a new tensor already: the output never aliases an input


@linear_scan.register_fake
def _(a, b, h0):
    return torch.empty_like(b)


def _linear_scan_context(ctx, inputs, output):
    a, _, h0 = inputs
    ctx.save_for_backward(a, h0, output)


def _linear_scan_backward(ctx, grad_h):
    """The gradient g_t = dL/dh_t + a_{t+1} g_{t+1} is the same recurrence backwards in time."""
    a, h0, h = ctx.saved_tensors
    a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=1)
    g = linear_scan(a_next.flip(1), grad_h.flip(1), torch.zeros_like(h0)).flip(1)
    h_prev = torch.cat([h0[:, None], h[:, :-1]], dim=1)
    return g * h_prev, g, a[:, 0] * g[:, 0]


linear_scan.register_autograd(_linear_scan_backward, setup_context=_linear_scan_context)


@register_flop_formula(torch.ops.melody_memory.linear_scan)
def _linear_scan_flops(a_shape, b_shape, h0_shape, *args, out_shape=None, **kwargs) -> int:
    """The recurrence's arithmetic, a multiply and an add per state element and step (the model's FLOPs,
    as a matmul counts 2mnk whatever its kernel does; the parallel form does about twice as many)."""
    return 2 * math.prod(b_shape)


@dataclass
class SSMConfig(ModelConfig):
    d_model: int = 64
    n_layers: int = 2
    d_state: int = 8  # N: states per channel
    expand: int = 2  # channels inside a block = expand * d_model
    d_conv: int = 4  # the causal convolution's kernel, in steps
    dt_rank: int = 8  # rank of the projection that makes the step size

    LIMITS: ClassVar[dict[str, Limit]] = {
        "d_model": Limit("int", 1, 2048),
        "n_layers": Limit("int", 1, 48),
        "d_state": Limit("int", 1, 256),
        "expand": Limit("int", 1, 8),
        "d_conv": Limit("int", 1, 16),
        "dt_rank": Limit("int", 1, 512),
    }


class MambaBlock(nn.Module):
    def __init__(self, c: SSMConfig):
        super().__init__()
        self.c = c
        inner = c.expand * c.d_model
        self.norm = nn.RMSNorm(c.d_model)
        self.in_proj = nn.Linear(c.d_model, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, c.d_conv, groups=inner)
        self.x_proj = nn.Linear(inner, c.dt_rank + 2 * c.d_state, bias=False)
        self.dt_proj = nn.Linear(c.dt_rank, inner)
        # A = -exp(A_log) = -(1..N) per channel (S4D-real): states that forget at different rates
        self.A_log = nn.Parameter(torch.log(torch.arange(1, c.d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, c.d_model, bias=False)
        with torch.no_grad():  # initial step sizes log-uniform in [0.001, 0.1] (Mamba's): softplus(bias) = dt
            dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor, conv_state: torch.Tensor, h: torch.Tensor):
        """x [B, T, D] after steps whose state is (conv_state [B, inner, d_conv - 1], h [B, inner, N]);
        returns (x + the block's output, the state after the last step)."""
        c = self.c
        _, t, _ = x.shape
        xs, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # [B, T, inner] each
        seq = torch.cat([conv_state, xs.transpose(1, 2)], dim=-1)  # the conv sees the steps before this call
        conv_state = seq[:, :, seq.shape[-1] - (c.d_conv - 1):]
        xs = F.silu(F.conv1d(seq, self.conv.weight, self.conv.bias, groups=xs.shape[-1]).transpose(1, 2))
        dt, b_sel, c_sel = self.x_proj(xs).split([c.dt_rank, c.d_state, c.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # [B, T, inner]: the selective step size
        decay = torch.exp(delta[..., None] * -torch.exp(self.A_log))  # [B, T, inner, N]
        write = (delta * xs)[..., None] * b_sel[:, :, None, :]  # [B, T, inner, N]
        if t == 1:  # one generation step: the recurrence itself
            hs = (decay[:, 0] * h + write[:, 0])[:, None]
        else:
            hs = linear_scan(decay.flatten(2), write.flatten(2), h.flatten(1)).view_as(write)
        y = (hs @ c_sel[..., None]).squeeze(-1) + self.D * xs  # [B, T, inner]
        return x + self.out_proj(y * F.silu(z)), conv_state, hs[:, -1]


class SelectiveSSM(StatefulSequenceModel):
    def __init__(self, config: SSMConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(MambaBlock(c) for _ in range(c.n_layers))
        self.norm_f = nn.RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)  # [B, T, D]

    def _run(self, x: torch.Tensor, state):
        conv_states, hs = state
        new_conv, new_h = [], []
        for block, conv_state, h in zip(self.blocks, conv_states, hs):
            x, conv_state, h = block(x, conv_state, h)
            new_conv.append(conv_state)
            new_h.append(h)
        return self.head(self.norm_f(x)), (torch.stack(new_conv), torch.stack(new_h))

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self._run(e, self.init_state(e.shape[0], e.device, e.dtype))[0]

    def init_state(self, batch: int, device=None, dtype=None):
        """(conv inputs [layers, B, inner, d_conv - 1], h [layers, B, inner, N]): a fixed size, whatever the length."""
        c = self.config
        inner = c.expand * c.d_model
        dtype = dtype or self.embed.weight.dtype
        conv = torch.zeros(c.n_layers, batch, inner, c.d_conv - 1, device=device, dtype=dtype)
        return conv, torch.zeros(c.n_layers, batch, inner, c.d_state, device=device, dtype=dtype)


    def parameter_groups(self):
        """Weight decay on the projections, not on A (its decay rates) nor on embeddings, biases, gains."""
        decay, no_decay = super().parameter_groups()
        keep = {id(block.A_log) for block in self.blocks}
        return [p for p in decay if id(p) not in keep], no_decay + [p for p in decay if id(p) in keep]
