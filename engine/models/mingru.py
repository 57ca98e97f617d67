"""`mingru`: the minimal GRU of Feng et al. 2024 ("Were RNNs All We Needed?"), stacked with residuals.

A GRU's gates read the previous hidden state, so step t must wait for step t - 1. minGRU's read the
input only:

    z_t = sigmoid(W_z x_t),   h~_t = g(W_h x_t),   h_t = (1 - z_t) * h_{t-1} + z_t * h~_t

with g(v) = v + 0.5 for v >= 0 and sigmoid(v) below (positive, so that h stays positive). The recurrence
is then linear in h, h_t = a_t h_{t-1} + b_t, and all steps can be computed at once. Training runs it in
log space (Heinsen 2023): log h_t = A_t + logcumsumexp_s(log b_s - A_s) with A_t = sum of log a up to t,
inside chunks of CHUNK steps (so that A stays small enough for float32), carrying the state from chunk
to chunk. In eval mode (validation, evaluate, recall by distance, influence's gradients) the same recurrence
runs in linear space with the chunked scan of engine/models/scans.py: faster (no exp, log or softplus) and
more exact (the log-space form loses float32 digits as |A_t| grows with a trained model's sharp gates: up to
1e-3 in the bundled model's log-probabilities, where linear space agrees with float64 to 2e-5). Generation steps one
token with a fixed-size state, h per layer, through its own short path (engine/models/mingru_step.py). It is
the ablation partner of `gru`: the same family, without the gates' dependence on the hidden state.

Each layer: norm -> minGRU (width expand * d_model) -> linear back to d_model, added to the residual
stream; a final norm and the head.
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
from engine.models import mingru_step
from engine.models.base import ModelConfig, StatefulSequenceModel
from engine.models.scans import linear_scan, linear_scan_reverse, next_steps, previous_states
from engine.models.torch_ops import define, one_dtype

# Steps per chunk of the log-space scan: |A_t| grows with the chunk, and float32 resolves log h to
# about 1e-7 of |A_t|.
CHUNK = 64


def _logcumsumexp_steps(v: torch.Tensor) -> torch.Tensor:
    """torch.logcumsumexp(v, dim=2) for v [B, chunks, CHUNK, S], as a loop of logaddexp over the positions of
    a chunk (each op covering every chunk): torch's CPU logcumsumexp ran about ten times slower, and was
    a third of minGRU's training step."""
    out = torch.empty_like(v)
    out[:, :, 0] = v[:, :, 0]
    for i in range(1, v.shape[2]):
        torch.logaddexp(out[:, :, i - 1], v[:, :, i], out=out[:, :, i])
    return out


def _log_space_scan_kernel(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h [B, T, S] with h_t = exp(log_a_t) * h_{t-1} + exp(log_b_t) and h_{-1} = h0 [B, S] (>= 0)."""
    batch, t, s = log_b.shape
    length = min(CHUNK, t)
    chunks = -(-t // length)
    pad = chunks * length - t
    if pad:  # padded at the end (a = 1, b = 0): no earlier step sees it, and it is cut off below
        log_a = F.pad(log_a, (0, 0, 0, pad))
        log_b = F.pad(log_b, (0, 0, 0, pad), value=-math.inf)
    big_a = log_a.reshape(batch, chunks, length, s).cumsum(dim=2)  # A_t inside each chunk
    h = torch.exp(big_a + _logcumsumexp_steps(log_b.reshape(batch, chunks, length, s) - big_a))
    decay = torch.exp(big_a)
    carry = h0
    for c in range(chunks):  # the state entering each chunk, decayed through it
        h[:, c] += decay[:, c] * carry[:, None]
        carry = h[:, c, -1]
    return h.reshape(batch, chunks * length, s)[:, :t].contiguous()


_log_space_scan = define("log_space_scan(Tensor log_a, Tensor log_b, Tensor h0) -> Tensor", _log_space_scan_kernel,
                         lambda log_a, log_b, h0: torch.empty_like(log_b))


class _LogSpaceScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, log_a, log_b, h0):
        h = _log_space_scan(log_a, log_b, h0)
        ctx.save_for_backward(log_a, log_b, h0, h)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        """g_t = dL/dh_t + a_{t+1} g_{t+1}: the recurrence backwards in time. It is signed, so it runs as
        the linear reverse scan (engine/models/scans.py) rather than in log space."""
        log_a, log_b, h0, h = ctx.saved_tensors
        a = torch.exp(log_a)
        g = linear_scan_reverse(next_steps(a), grad_h.contiguous())
        return g * a * previous_states(h, h0), g * torch.exp(log_b), a[:, 0] * g[:, 0]


def log_space_scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h [B, T, S] with h_t = exp(log_a_t) * h_{t-1} + exp(log_b_t) and h_{-1} = h0 [B, S] (>= 0)."""
    return _LogSpaceScan.apply(*one_dtype(log_a, log_b, h0))


@register_flop_formula(torch.ops.melody_memory.log_space_scan)
def _log_scan_flops(a_shape, b_shape, h0_shape, *args, out_shape=None, **kwargs) -> int:
    """The recurrence's arithmetic, a multiply and an add per element and step (the model's FLOPs)."""
    return 2 * math.prod(b_shape)


def log_g(v: torch.Tensor) -> torch.Tensor:
    """log g(v): log(v + 0.5) for v >= 0, log sigmoid(v) below."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


@dataclass
class MinGRUConfig(ModelConfig):
    d_model: int = 64
    n_layers: int = 2
    expand: int = 2  # hidden units of each minGRU = expand * d_model

    LIMITS: ClassVar[dict[str, Limit]] = {
        "d_model": Limit("int", 1, 2048),
        "n_layers": Limit("int", 1, 48),
        "expand": Limit("int", 1, 8),
    }


class MinGRULayer(nn.Module):
    def __init__(self, c: MinGRUConfig):
        super().__init__()
        hidden = c.expand * c.d_model
        self.norm = nn.RMSNorm(c.d_model)
        self.gates = nn.Linear(c.d_model, 2 * hidden)  # the update gate z and the candidate h~, from x only
        self.out = nn.Linear(hidden, c.d_model, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor):
        """x [B, T, D] after steps that left h [B, hidden]; returns (x + the layer's output, the last h)."""
        gates = self.gates(self.norm(x))  # [k, v]
        k, v = gates.chunk(2, dim=-1)
        if self.training and torch.is_grad_enabled():  # training: the log-space scan of the paper
            log_keep = -F.softplus(k)  # log(1 - z)
            log_write = -F.softplus(-k) + log_g(v)  # log(z * h~)
            hs = log_space_scan(log_keep, log_write, h)
        else:
            # Scoring and attribution (validation, evaluate, recall by distance, influence's gradients; the
            # model in eval mode): the same recurrence in linear space, where it is stable run forwards
            # (0 < 1 - z < 1, z g(v) > 0) and costs no exp, log or softplus: at the recall measure's shapes the
            # log-space form's transcendentals were two thirds of minGRU's time. The two agree to float
            # rounding (tests/test_modern_models.py); with gradients the linear scan's own backward runs.
            z, sig_v = torch.sigmoid(gates).chunk(2, dim=-1)
            write = z * torch.maximum(v + 0.5, sig_v)  # z g(v): g(v) = max(v + 0.5, sigmoid(v)), mingru_step says why
            hs = linear_scan(1.0 - z, write, h)  # (in float32 under bf16 autocast, as every scan)
        return x + self.out(hs), hs[:, -1]


class MinGRULM(StatefulSequenceModel):
    scan_chunk = CHUNK

    def __init__(self, config: MinGRUConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.layers = nn.ModuleList(MinGRULayer(c) for _ in range(c.n_layers))
        self.norm_f = nn.RMSNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self._step_weights = None  # mingru_step's prepared weights, made at the first step after init_state

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)  # [B, T, D]

    def _run(self, x: torch.Tensor, hs: torch.Tensor):
        new = []
        for layer, h in zip(self.layers, hs):
            x, h = layer(x, h)
            new.append(h)
        return self.head(self.norm_f(x)), torch.stack(new)

    def step(self, tokens: torch.Tensor, hs: torch.Tensor):
        """The fast step (engine/models/mingru_step.py); with gradients on, the general path, which
        differentiates through the parameters themselves."""
        if torch.is_grad_enabled():
            return super().step(tokens, hs)
        weights = self._step_weights  # read once: another thread's init_state may drop it meanwhile
        if weights is None:
            weights = self._step_weights = mingru_step.prepare(self)
        return mingru_step.step(weights, tokens, hs)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self._run(e, self._zero_state(e.shape[0], e.device, e.dtype))[0]

    def init_state(self, batch: int, device=None, dtype=None):
        """h [layers, B, hidden]: a fixed size, whatever the length (zero: nothing heard yet). A new generation
        reads the weights anew."""
        self._step_weights = None
        return self._zero_state(batch, device, dtype)

    def _zero_state(self, batch: int, device, dtype):
        c = self.config
        return torch.zeros(c.n_layers, batch, c.expand * c.d_model, device=device, dtype=dtype or self.embed.weight.dtype)
