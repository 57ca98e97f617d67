"""The one interface every sequence model offers (docs/architecture.md, "How to add a model").

What the engine needs from a model is named here, never inferred from a convention (a parameter's name,
the first nn.Embedding). A model implements:

    embed_tokens(tokens [B, T]) -> e [B, T, D]        the input embedding, one vector per token step
    forward_embedded(e [B, T, D]) -> logits [B, T, V] everything after it, teacher-forced and causal
    init_state(batch, device) -> state                 an empty history
    step(tokens [B], state) -> (logits [B, V], state)  one token at a time, for generation

and may declare:

    reach: int | None              how many steps back an input can still change an output (None: the
                                   whole past, as a recurrent state carries it)
    attention_span: int | None     the window its attention looks over, for the plots' window marks
    has_attention: bool            it offers attention_weights(tokens) -> [layers, B, heads, T, T]
    parameter_groups() -> (decay, no_decay)   what weight decay applies to (default: matrices, not
                                   embeddings, biases or norms' gains: nanoGPT's rule)

`forward(tokens)` is defined here once: forward_embedded(embedding_tap(embed_tokens(tokens))). The gradient
measures (engine/memory/) differentiate log-probabilities with respect to e, per token step, through
`embedding_tap` (an identity module): whatever a model does with e afterwards (a window of the last k
steps, two embeddings concatenated, a convolution), d log p / d e_t is the influence of step t.

`step` reproduces `forward` exactly (up to float rounding) for any length, also beyond the window:
what a model may look back on is defined once, by its `window`, and both paths obey it.

"The model may use only its last `window` tokens" means, per family:
- rnn / lstm / gru: nothing; the hidden state carries the whole past (that is the point of the ablation).
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

from engine.core.validation import Limit, check_fields
from engine.models.states import batch_dim, map_state
from engine.music.tokens import TokenConfig

DEFAULT_VOCAB_SIZE = TokenConfig().vocab_size


@dataclass
class ModelConfig:
    """Fields every family shares; each family's config adds its sizes."""

    key: str = ""  # registry key: rnn, lstm, gru, attention, transformer
    vocab_size: int = DEFAULT_VOCAB_SIZE  # the token vocabulary of the default pitch range (engine/music/tokens.py)
    window: int = 256  # training crop length, and the attention span of the attention models

    # What each field may hold (engine/core/validation.py); a family's config adds its own sizes. Checked before
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
    """Base of every model; see the module docstring for what a subclass implements and declares."""

    config: ModelConfig
    has_attention: ClassVar[bool] = False  # True: attention_weights() is offered

    def __init__(self) -> None:
        super().__init__()
        # The point where the gradient measures read d log p / d e (an identity: no parameters, no cost).
        self.embedding_tap = nn.Identity()

    # --- what a model implements ---------------------------------------------------------------------

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, T] token ids -> [B, T, D]: the input embedding of each step."""
        raise NotImplementedError

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        """[B, T, D] input embeddings -> [B, T, V] next-token logits, causal."""
        raise NotImplementedError

    def init_state(self, batch: int, device=None):
        raise NotImplementedError

    def step(self, tokens: torch.Tensor, state):
        raise NotImplementedError

    # --- what a model may declare --------------------------------------------------------------------

    @property
    def reach(self) -> int | None:
        """How many steps back an input can still change an output; None = the whole past."""
        return None

    @property
    def attention_span(self) -> int | None:
        """The window its attention looks over (marked on the plots); None = no attention."""
        return None

    def attention_weights(self, tokens: torch.Tensor) -> torch.Tensor:
        """[layers, B, heads, T, T]: offered when has_attention is True."""
        raise NotImplementedError(f"{type(self).__name__} has no attention weights")

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(decayed, not decayed): weight decay on matrices only, not on embeddings, biases or gains."""
        embeddings = {id(p) for m in self.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
        decay, no_decay = [], []
        for p in self.parameters():
            (decay if p.dim() >= 2 and id(p) not in embeddings else no_decay).append(p)
        return decay, no_decay

    # --- defined once, from the above -----------------------------------------------------------------

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, T, V] teacher-forced logits."""
        return self.forward_embedded(self.embedding_tap(self.embed_tokens(tokens)))

    @property
    def window(self) -> int:
        return self.config.window

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # (state, repeats) -> the state with batch row i repeated `repeats` times (rows i * repeats ...), or None:
    # not offered. Generation then primes each distinct primer once and samples its variations from copies of
    # that state, instead of priming the same primer once per variation.
    repeat_state = None

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state=None):
        """Feed a primer [B, T] token by token; returns (logits of the last step [B, V], state)."""
        if state is None:
            state = self.init_state(tokens.shape[0], tokens.device)
        logits = None
        for t in range(tokens.shape[1]):
            logits, state = self.step(tokens[:, t], state)
        return logits, state


class StatefulSequenceModel(SequenceModel):
    """A model whose whole past is a state of fixed size, carried by `_run`: generation steps and primes
    through the same code that trains (the RNNs, minGRU, the selective SSM). The state is a tensor or tuples of
    tensors with the batch along one dimension (engine/models/states.py)."""

    # Steps of the chunks a parallel scan sums at once (None: no chunked scan). `_run` over a sequence cut at
    # multiples of it sums exactly as over the whole sequence; recall by distance cuts its shared blocks there.
    scan_chunk: int | None = None

    def _run(self, x: torch.Tensor, state):
        """x [B, T, D] embedded inputs, continuing `state` -> (logits [B, T, V], state after the last step)."""
        raise NotImplementedError

    def repeat_state(self, state, repeats: int):
        dim = batch_dim(self, None)  # the shapes of two small zero states say it
        return map_state(lambda s: s.repeat_interleave(repeats, dim=dim), state)

    def step(self, tokens: torch.Tensor, state):
        logits, state = self._run(self.embed_tokens(tokens[:, None]), state)  # [B, 1, V]
        return logits[:, 0], state

    @torch.no_grad()
    def prime(self, tokens: torch.Tensor, state=None):
        """The primer in one pass of `_run` (a parallel scan where the model has one), continuing `state`."""
        if state is None:
            state = self.init_state(tokens.shape[0], tokens.device)
        logits, state = self._run(self.embed_tokens(tokens), state)
        return logits[:, -1], state
