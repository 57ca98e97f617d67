"""The vanilla tanh RNN and its gated fixes, LSTM and GRU: embedding -> recurrent core -> linear head.

`rnn` is the seed's h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h) (torch.nn.RNN, nonlinearity tanh);
`lstm` and `gru` swap in torch's gated cells and nothing else, so any difference is the gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from engine.core.errors import UserError
from engine.core.validation import Limit
from engine.models.base import ModelConfig, StatefulSequenceModel

_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class RecurrentConfig(ModelConfig):
    cell: str = "rnn"  # rnn | lstm | gru
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 1

    LIMITS: ClassVar[dict[str, Limit]] = {
        "cell": Limit("choice", choices=tuple(_CELLS)),
        "embed_dim": Limit("int", 1, 2048),
        "hidden_size": Limit("int", 1, 4096),
        "num_layers": Limit("int", 1, 8),
    }

    def check_shape(self, where: str | None) -> None:
        if self.key in _CELLS and self.cell != self.key:
            raise UserError(f"{where + ': ' if where else ''}model {self.key!r} must have cell {self.key!r}, not {self.cell!r}")


class RecurrentLM(StatefulSequenceModel):
    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim)
        kwargs = {"nonlinearity": "tanh"} if c.cell == "rnn" else {}
        self.core = _CELLS[c.cell](c.embed_dim, c.hidden_size, c.num_layers, batch_first=True, **kwargs)
        self.head = nn.Linear(c.hidden_size, c.vocab_size)
        if c.cell == "lstm":
            self._open_forget_gates()

    @torch.no_grad()
    def _open_forget_gates(self) -> None:
        """Forget-gate bias 1 (Gers et al. 2000; Jozefowicz et al. 2015): a fresh LSTM starts out
        remembering, instead of halving its cell state every step, which is what lets it learn long
        dependencies at all within a short training budget. (torch orders the gates i, f, g, o.)"""
        h = self.config.hidden_size
        for layer in range(self.config.num_layers):
            getattr(self.core, f"bias_ih_l{layer}")[h : 2 * h] = 1.0
            getattr(self.core, f"bias_hh_l{layer}")[h : 2 * h] = 0.0

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)  # [B, T, E]

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self._run(e, None)[0]

    def _run(self, e: torch.Tensor, state):
        h, state = self.core(e, state)  # [B, T, H]
        return self.head(h), state  # [B, T, V]

    def init_state(self, batch: int, device=None):
        c = self.config
        h = torch.zeros(c.num_layers, batch, c.hidden_size, device=device)
        return (h, torch.zeros_like(h)) if c.cell == "lstm" else h

