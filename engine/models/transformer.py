"""`transformer`: a decoder-only, pre-norm, causal Transformer with rotary positions (RoPE).

Style after nanoGPT's model.py, with two changes: positions are rotary (Su et al. 2021), so attention
depends only on the distance between tokens, and attention is limited to a sliding window of the last
`window` tokens. Together they let the model run on any length, far beyond its training crop, and let
incremental decoding keep a key/value cache of at most `window` entries that slides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.errors import UserError
from engine.core.validation import Limit
from engine.models.attention_rnn import attention_probs, sliding_causal_mask, sliding_window_attention
from engine.models.base import ModelConfig, SequenceModel


@dataclass
class TransformerConfig(ModelConfig):
    d_model: int = 64
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    rope_base: float = 10000.0

    LIMITS: ClassVar[dict[str, Limit]] = {
        "d_model": Limit("int", 2, 2048),
        "n_layers": Limit("int", 1, 48),
        "n_heads": Limit("int", 1, 64),
        "mlp_ratio": Limit("int", 1, 16),
        "rope_base": Limit("float", 1, 1e9, lo_open=True),
    }

    def check_shape(self, where: str | None) -> None:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise UserError(f"{where + ': ' if where else ''}model.d_model ({self.d_model}) must split into "
                            f"model.n_heads ({self.n_heads}) heads of an even width")


def rope_angles(positions: torch.Tensor, head_dim: int, base: float, dtype=torch.float32):
    """(cos, sin) [T, dh/2] of the rotary angles at absolute positions [T]."""
    half = head_dim // 2
    inv_freq = base ** (-torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # [T, dh/2]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope_rotate(x: torch.Tensor, positions: torch.Tensor, base: float, angles=None) -> torch.Tensor:
    """Rotate x [B, heads, T, dh] by its absolute positions [T] (pairs of channels, 'half' layout).
    `angles` = rope_angles(...) computed once can be passed in (decoding shares it across layers)."""
    half = x.shape[-1] // 2
    cos, sin = angles if angles is not None else rope_angles(positions, x.shape[-1], base, x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.c = c
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)

    def project(self, x: torch.Tensor, positions: torch.Tensor):
        """Queries and keys (rotated to their positions) and values, 3 x [B, heads, T, dh]."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.c.n_heads, d // self.c.n_heads).permute(2, 0, 3, 1, 4)
        return rope_rotate(q, positions, self.c.rope_base), rope_rotate(k, positions, self.c.rope_base), v

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache=None):
        """x [B, T, D] at `positions` [T]; cache = (k, v) [B, heads, n, dh] of earlier positions."""
        b, t, d = x.shape
        q, k, v = self.project(x, positions)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        tk = k.shape[2]
        if t == tk:
            y = sliding_window_attention(q, k, v, self.c.window)
        else:
            mask = sliding_causal_mask(t, tk, self.c.window, x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(b, t, d)  # [B, T, D]
        keep = self.c.window - 1  # the next query needs at most window - 1 earlier keys
        return self.proj(y), (k[:, :, -keep:], v[:, :, -keep:])

    def step(self, x: torch.Tensor, angles, pos: int, cache):
        """One token x [B, 1, D] at position `pos`. cache = (k, v) [B, heads, window, dh] ring buffers,
        written in place: slot pos % window holds position pos, so the window slides without copying
        (concatenating the cache every step cost more than the rest of the step). Key order does not
        matter to attention, and RoPE has already put each key's position into it."""
        b, t, d = x.shape
        heads = self.c.n_heads
        q, k, v = self.qkv(x).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        q = rope_rotate(q, None, self.c.rope_base, angles)
        k_buf, v_buf = cache
        slot = pos % k_buf.shape[2]
        k_buf[:, :, slot] = rope_rotate(k, None, self.c.rope_base, angles)[:, :, 0]
        v_buf[:, :, slot] = v[:, :, 0]
        n = min(pos + 1, k_buf.shape[2])
        y = F.scaled_dot_product_attention(q, k_buf[:, :, :n], v_buf[:, :, :n])
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(c.d_model)
        self.attn = SelfAttention(c)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(c.d_model, c.mlp_ratio * c.d_model),
            nn.GELU(),
            nn.Linear(c.mlp_ratio * c.d_model, c.d_model),
        )

    def forward(self, x, positions, cache=None):
        a, cache = self.attn(self.ln1(x), positions, cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), cache

    def step(self, x, angles, pos: int, cache):
        x = x + self.attn.step(self.ln1(x), angles, pos, cache)
        return x + self.mlp(self.ln2(x))


class TransformerLM(SequenceModel):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        config.check_shape("transformer config")
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)

    has_attention = True

    @property
    def attention_span(self) -> int:
        return self.config.window

    @property
    def reach(self) -> int:
        """Each of n_layers attends window - 1 steps back: nothing further reaches a prediction."""
        return self.config.n_layers * (self.config.window - 1)

    def _run(self, x, positions, caches):
        new = []
        for block, cache in zip(self.blocks, caches):
            x, cache = block(x, positions, cache)
            new.append(cache)
        return self.head(self.ln_f(x)), new  # [B, T, V]

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)  # [B, T, D]

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(e.shape[1], device=e.device)
        return self._run(e, positions, [None] * len(self.blocks))[0]

    @torch.no_grad()
    def attention_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """[layers, B, heads, T, T]: how much position t (row) attends to position s (column) in each
        layer and head, as forward(tokens) applies it."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.embed(tokens)
        weights = []
        for block in self.blocks:
            q, k, _ = block.attn.project(block.ln1(x), positions)
            weights.append(attention_probs(q, k, self.config.window))
            x, _ = block(x, positions)
        return torch.stack(weights)

    def init_state(self, batch: int, device=None):
        """(next position, per layer (k, v) [B, heads, window, dh]): the sliding KV cache as ring
        buffers that step() fills in place (so a state is used once, as generation does)."""
        c = self.config
        shape = (batch, c.n_heads, c.window, c.d_model // c.n_heads)
        return 0, [(torch.zeros(shape, device=device), torch.zeros(shape, device=device)) for _ in range(c.n_layers)]

    def step(self, tokens: torch.Tensor, state):
        pos, caches = state
        c = self.config
        x = self.embed(tokens[:, None])  # [B, 1, D]
        angles = rope_angles(torch.tensor([pos], device=tokens.device), c.d_model // c.n_heads, c.rope_base, x.dtype)
        for block, cache in zip(self.blocks, caches):
            x = block.step(x, angles, pos, cache)
        return self.head(self.ln_f(x))[:, 0], (pos + 1, caches)

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state=None):
        """Feed a primer [B, T] in one causal pass and file its last keys and values into the ring
        buffers: the state stepping through it would leave, in a fraction of the time."""
        if state is None:
            state = self.init_state(tokens.shape[0], tokens.device)
        pos, caches = state
        if pos != 0:  # continuing a history: the step-by-step path
            return super().prime(tokens, state)
        t = tokens.shape[1]
        logits, kv = self._run(self.embed(tokens), torch.arange(t, device=tokens.device), [None] * len(self.blocks))
        for (k_buf, v_buf), (k, v) in zip(caches, kv):
            slots = torch.arange(t - k.shape[2], t, device=tokens.device) % k_buf.shape[2]
            k_buf[:, :, slots] = k
            v_buf[:, :, slots] = v
        return logits[:, -1], (t, caches)
