"""`attention`: the same tanh RNN as `rnn`, plus causal attention over its own past hidden states.

Which attention: Luong et al. (2015) "general" (multiplicative) attention, scaled by 1/sqrt(H):
    score(t, s) = (W_a h_t) . h_s / sqrt(H)       for s in t - window + 1 .. t (itself included)
    c_t  = sum_s softmax_s(score) h_s              (the context: a mix of past hidden states)
    h~_t = tanh(W_c [c_t ; h_t])                   (Luong's attentional hidden state)
    logits_t = W_o h~_t
The recurrence itself is untouched (attention does not feed back into h_t), so `rnn` -> `attention`
adds a direct path to the past and nothing else. The softmax scaling only keeps the initial scores
in a sane range; it does not change what the model can express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from engine.core.validation import Limit
from engine.models.base import ModelConfig, SequenceModel


@dataclass
class AttentionRNNConfig(ModelConfig):
    embed_dim: int = 64
    hidden_size: int = 192

    LIMITS: ClassVar[dict[str, Limit]] = {"embed_dim": Limit("int", 1, 2048), "hidden_size": Limit("int", 1, 4096)}


def sliding_causal_mask(t_query: int, t_key: int, window: int, device=None) -> torch.Tensor:
    """Boolean [t_query, t_key] mask, True where query i (the last t_query of t_key positions) may
    look at key j: j <= i and i - j < window."""
    offset = t_key - t_query
    i = torch.arange(t_query, device=device)[:, None] + offset
    j = torch.arange(t_key, device=device)[None, :]
    return (j <= i) & (i - j < window)


def sliding_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Causal attention of every position over the last `window` positions (itself included), q, k, v
    [..., T, d] -> [..., T, d]: what SDPA with sliding_causal_mask(T, T, window) computes.

    For a long sequence the full [T, T] mask wastes most of its work on pairs the window excludes. Here the
    queries go in blocks of `window`, each attending to its own block and the one before ([window, 2 window]
    scores), so the cost grows with T x window instead of T^2. Measured (CPU, one thread), the blocks pay from
    about four windows on (2.5x faster at T = 8 windows); below that the full mask is as fast or faster."""
    t = q.shape[-2]
    if t <= window:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if t < 4 * window:  # the blocks would cost as much as the full mask
        return F.scaled_dot_product_attention(q, k, v, attn_mask=sliding_causal_mask(t, t, window, q.device))
    w, blocks = window, -(-t // window)
    pad_end = blocks * w - t

    def keys(x):  # [..., T, d] -> [..., blocks, 2w, d]: each block's keys are the block before and itself
        x = F.pad(x, (0, 0, w, pad_end))
        return x.unfold(-2, 2 * w, w).transpose(-1, -2)

    queries = F.pad(q, (0, 0, 0, pad_end)).unflatten(-2, (blocks, w))  # [..., blocks, w, d]
    i = torch.arange(w, device=q.device)[:, None]
    j = torch.arange(2 * w, device=q.device)[None, :]
    mask = ((j > i) & (j <= i + w)).expand(blocks, w, 2 * w).clone()
    mask[0, :, :w] = False  # the first block has no block before it (those keys are padding)
    out = F.scaled_dot_product_attention(queries, keys(k), keys(v), attn_mask=mask)
    return out.flatten(-3, -2)[..., :t, :]


def attention_probs(q: torch.Tensor, k: torch.Tensor, window: int) -> torch.Tensor:
    """The weights F.scaled_dot_product_attention(q, k, v, sliding causal mask) applies: q [..., Tq, d],
    k [..., Tk, d] -> [..., Tq, Tk], rows summing to 1 over the keys a query may see. Only for
    inspection (influence); forward() keeps the fused kernel."""
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    mask = sliding_causal_mask(q.shape[-2], k.shape[-2], window, q.device)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class AttentionRNN(SequenceModel):
    def __init__(self, config: AttentionRNNConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim)
        self.rnn = nn.RNN(c.embed_dim, c.hidden_size, batch_first=True, nonlinearity="tanh")
        self.attn_query = nn.Linear(c.hidden_size, c.hidden_size, bias=False)  # W_a
        self.combine = nn.Linear(2 * c.hidden_size, c.hidden_size)  # W_c
        self.head = nn.Linear(c.hidden_size, c.vocab_size)  # W_o

    def _attend(self, h_query: torch.Tensor, h_keys: torch.Tensor) -> torch.Tensor:
        """h_query [B, Tq, H] are the last Tq of h_keys [B, Tk, H]; returns logits [B, Tq, V]."""
        tq, tk = h_query.shape[1], h_keys.shape[1]
        q = self.attn_query(h_query)
        if tq == tk:
            context = sliding_window_attention(q, h_keys, h_keys, self.config.window)
        else:
            mask = sliding_causal_mask(tq, tk, self.config.window, h_query.device)
            context = F.scaled_dot_product_attention(q, h_keys, h_keys, attn_mask=mask)
        mixed = torch.tanh(self.combine(torch.cat([context, h_query], dim=-1)))  # [B, Tq, H]
        return self.head(mixed)

    has_attention = True

    @property
    def attention_span(self) -> int:
        return self.config.window

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)  # [B, T, E]

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(e)  # [B, T, H]
        return self._attend(h, h)  # [B, T, V]

    @torch.no_grad()
    def attention_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """[layers 1, B, heads 1, T, T]: how much the output at step t (row) mixes in the hidden state
        of step s (column), as forward(tokens) applies it."""
        h, _ = self.rnn(self.embed(tokens))
        return attention_probs(self.attn_query(h), h, self.config.window)[None, :, None]

    def init_state(self, batch: int, device=None):
        """(RNN hidden [1, B, H], ring buffer of past hidden states [B, window, H], steps so far).

        The ring is written in place: slot p % window holds the state of step p, so the window slides
        without copying it every step (that copy was a third of a step's time). Attention is
        content-only, so the order of the keys in the ring does not matter."""
        h = torch.zeros(1, batch, self.config.hidden_size, device=device)
        return h, h.new_zeros(batch, self.config.window, self.config.hidden_size), 0

    def step(self, tokens: torch.Tensor, state):
        hidden, ring, pos = state
        h, hidden = self.rnn(self.embed(tokens[:, None]), hidden)  # h [B, 1, H]
        window = ring.shape[1]
        ring[:, pos % window] = h[:, 0]  # overwrites the state that just left the window
        return self._attend(h, ring[:, : min(pos + 1, window)])[:, 0], (hidden, ring, pos + 1)

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state=None):
        """Feed a primer [B, T] in one pass; returns (last logits, state)."""
        hidden, ring, pos = state if state is not None else self.init_state(tokens.shape[0], tokens.device)
        h, hidden = self.rnn(self.embed(tokens), hidden)  # [B, T, H]
        window, t = ring.shape[1], h.shape[1]
        n_past = min(pos, window)
        past = ring[:, torch.arange(pos - n_past, pos, device=ring.device) % window]  # in time order
        keys = torch.cat([past, h], dim=1)[:, -window:]
        logits = self._attend(h[:, -1:], keys)
        ring[:, torch.arange(pos + t - keys.shape[1], pos + t, device=ring.device) % window] = keys
        return logits[:, 0], (hidden, ring, pos + t)
