"""`ssm`: a selective state-space model in the Mamba design (Gu & Dao 2023), in pure PyTorch.

Each block: norm -> input projection into a channel path x and a gate path z -> a short causal
depthwise convolution over x -> SiLU -> from x, the *selective* parameters of this step: a step size
delta (per channel), and B and C (per state) -> the linear recurrence, per channel d and state n,

    h_t[d, n] = exp(delta_t[d] * A[d, n]) * h_{t-1}[d, n] + delta_t[d] * B_t[n] * x_t[d]
    y_t[d]    = sum_n C_t[n] * h_t[d, n] + D[d] * x_t[d]

-> y * SiLU(z) -> output projection, added to the residual stream. A is diagonal and negative, so every
state decays; because delta, B and C depend on the input, the model chooses per token what to write
and how fast to forget (a small delta keeps the state, a large one overwrites it).

The recurrence is linear in h, so training runs it over the whole sequence at once (`selective_scan`,
engine/models/ssm_scan.py: a torch op fusing the chunked parallel scan with the step's arithmetic, no
loop over the time steps, with a hand-written backward that keeps only h; the FLOP formulas of both
its ops are registered with torch's FLOP counter so that `bench` counts the scan's work,
engine/training/flops.py). Generation steps one token with a fixed-size state (the conv's last inputs
and h) through its own short path (engine/models/ssm_step.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.validation import Limit
from engine.models import ssm_passes, ssm_step
from engine.models.base import ModelConfig, StatefulSequenceModel
from engine.models.ssm_scan import selective_scan


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
        self.A_log = nn.Parameter(torch.empty(inner, c.d_state))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, c.d_model, bias=False)
        if self.A_log.is_meta:
            # engine/training/footprint.py sizes every model on the meta device: there are no values to set,
            # and arange or a scalar product there goes through torch's Python decompositions, whose first
            # import (torch._dynamo) cost over a second of every load of an ssm
            return
        with torch.no_grad():
            self.A_log.copy_(torch.log(torch.arange(1, c.d_state + 1, dtype=torch.float32)).repeat(inner, 1))
            # initial step sizes log-uniform in [0.001, 0.1] (Mamba's): softplus(bias) = dt
            dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x: torch.Tensor, conv_state: torch.Tensor, h: torch.Tensor):
        """x [B, T, D] after steps whose state is (conv_state [B, d_conv - 1, inner], h [B, N, inner]);
        returns (x + the block's output, the state after the last step)."""
        c = self.c
        xs, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # [B, T, inner] each
        seq = torch.cat([conv_state.transpose(1, 2), xs.transpose(1, 2)], dim=-1)  # [B, inner, d_conv - 1 + T]
        conv_state = seq[:, :, seq.shape[-1] - (c.d_conv - 1):].transpose(1, 2)
        # contiguous [B, T, inner] again: silu's backward and the products after it on a transposed view
        # ran an order of magnitude slower than on contiguous memory
        xs = F.silu(F.conv1d(seq, self.conv.weight, self.conv.bias, groups=xs.shape[-1]).transpose(1, 2).contiguous())
        dt, b_sel, c_sel = self.x_proj(xs).split([c.dt_rank, c.d_state, c.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # [B, T, inner]: the selective step size
        # the scan takes and returns h as [B, inner, N]; the state keeps it channels last
        y, last = selective_scan(delta, -torch.exp(self.A_log), b_sel, c_sel, xs, h.transpose(1, 2))
        y = y + self.D * xs  # [B, T, inner]
        return x + self.out_proj(y * F.silu(z)), conv_state, last.transpose(1, 2)


class SelectiveSSM(StatefulSequenceModel):
    scan_chunk = ssm_passes.CHUNK_STEPS

    def __init__(self, config: SSMConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(MambaBlock(c) for _ in range(c.n_layers))
        self.norm_f = nn.RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self._step_weights = None  # ssm_step's prepared weights, made at the first step after init_state

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

    def step(self, tokens: torch.Tensor, state):
        """The fast step (engine/models/ssm_step.py); with gradients on, the general path, which differentiates
        through the parameters themselves."""
        if torch.is_grad_enabled():
            return super().step(tokens, state)
        weights = self._step_weights  # read once: another thread's init_state may drop it meanwhile
        if weights is None:
            weights = self._step_weights = ssm_step.prepare(self)
        return ssm_step.step(weights, tokens, state)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self._run(e, self._zero_state(e.shape[0], e.device, e.dtype))[0]

    def init_state(self, batch: int, device=None, dtype=None):
        """(conv inputs [layers, B, d_conv - 1, inner], h [layers, B, N, inner]): a fixed size, whatever the length;
        channels last, as the scan and the step work on them. A new generation reads the weights anew."""
        self._step_weights = None
        return self._zero_state(batch, device, dtype)

    def _zero_state(self, batch: int, device, dtype):
        c = self.config
        inner = c.expand * c.d_model
        dtype = dtype or self.embed.weight.dtype
        conv = torch.zeros(c.n_layers, batch, c.d_conv - 1, inner, device=device, dtype=dtype)
        return conv, torch.zeros(c.n_layers, batch, c.d_state, inner, device=device, dtype=dtype)

    def parameter_groups(self):
        """Weight decay on the projections, not on A (its decay rates) nor on embeddings, biases, gains."""
        decay, no_decay = super().parameter_groups()
        keep = {id(block.A_log) for block in self.blocks}
        return [p for p in decay if id(p) not in keep], no_decay + [p for p in decay if id(p) in keep]
