"""The one interface every sequence model offers (docs/architecture.md, "How to add a model").

    forward(tokens [B, T]) -> logits [B, T, V]      teacher-forced, causal
    init_state(batch, device) -> state               an empty history
    step(tokens [B], state) -> (logits [B, V], state)  one token at a time, for generation

`step` reproduces `forward` exactly (up to float rounding) for any length, also beyond the window:
what a model may look back on is defined once, by its `window`, and both paths obey it.

"The model may use only its last `window` tokens" means, per family:
- rnn / lstm / gru: nothing; the hidden state carries the whole past (that is the point of the ablation);
  they are trained on crops of `window` steps (truncated backpropagation through time).
- attention: the tanh RNN's state carries the whole past, and its attention sees only the hidden states
  of the last `window` steps (itself included), sliding.
- transformer: in every layer, position t attends to positions t - window + 1 .. t (a sliding window;
  RoPE makes this the same computation at any absolute position), so it can generate far beyond its
  training crop. Stacked, n_layers windows reach back n_layers * (window - 1) tokens (as in Mistral).
To ask "what if the model could only see the last k tokens" (effective memory), run it on those k
tokens from `init_state`: every family then sees exactly k tokens.

State objects are plain tensors or tuples of tensors; callers pass them back untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from ..validation import Limit, check_fields


@dataclass
class ModelConfig:
    """Fields every family shares; each family's config adds its sizes."""

    key: str = ""  # registry key: rnn, lstm, gru, attention, transformer
    vocab_size: int = 52
    window: int = 256  # training crop length, and the attention span of the attention models

    # What each field may hold (engine/validation.py); a family's config adds its own sizes. Checked before
    # a model is built from a file, so a tampered config.json cannot ask for 100,000 layers.
    LIMITS: ClassVar[dict[str, Limit]] = {"vocab_size": Limit("int", 4, 512), "window": Limit("int", 8, 8192)}

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self, where: str | None = None) -> None:
        limits = {}
        for cls in reversed(type(self).__mro__):
            limits.update(cls.__dict__.get("LIMITS", {}))
        check_fields(self, limits, where, prefix="model.")
        self.check_shape(where)

    def check_shape(self, where: str | None) -> None:
        """Rules between fields (a family overrides it); UserError naming `where`."""


class SequenceModel(nn.Module):
    config: ModelConfig

    @property
    def window(self) -> int:
        return self.config.window

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def init_state(self, batch: int, device=None):
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state):
        raise NotImplementedError

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state=None):
        """Feed a primer [B, T] token by token; returns (logits of the last step [B, V], state)."""
        if state is None:
            state = self.init_state(tokens.shape[0], tokens.device)
        logits = None
        for t in range(tokens.shape[1]):
            logits, state = self.step(tokens[:, t], state)
        return logits, state
