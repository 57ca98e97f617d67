"""Adding a model is one file plus one registry line (docs/architecture.md, "How to add a model").

The file below is that one file (a config with its limits and a SequenceModel); `register(...)` is the
registry line. Then the real commands train, generate with and evaluate the new model like the five."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from engine.core.validation import Limit
from engine.models import ModelConfig, ModelSpec, SequenceModel, register, unregister
from main import main


# ---- the one new file: a GRU over a learned embedding, with a skip of the last token -------------------
@dataclass
class ToyConfig(ModelConfig):
    embed_dim: int = 8
    hidden_size: int = 16

    LIMITS: ClassVar[dict[str, Limit]] = {"embed_dim": Limit("int", 1, 512), "hidden_size": Limit("int", 1, 1024)}


class ToyLM(SequenceModel):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.core = nn.GRU(config.embed_dim, config.hidden_size, batch_first=True)
        self.head = nn.Linear(config.hidden_size + config.embed_dim, config.vocab_size)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, E]
        return self.embed(tokens)

    def forward_embedded(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, E] -> [B, T, V]
        h, _ = self.core(x)
        return self.head(torch.cat([h, x], dim=-1))

    def init_state(self, batch: int, device=None):
        return torch.zeros(1, batch, self.config.hidden_size, device=device)

    def step(self, tokens: torch.Tensor, state):  # [B] -> ([B, V], state)
        x = self.embed(tokens[:, None])
        h, state = self.core(x, state)
        return self.head(torch.cat([h, x], dim=-1))[:, 0], state


# ---- the one registry line ----------------------------------------------------------------------------
@pytest.fixture
def toy():
    register(ModelSpec("toy", "toy GRU", "#17becf", ToyConfig, ToyLM,
                       {"tiny": {}, "small": {"hidden_size": 64}, "medium": {"hidden_size": 256}}))
    yield "toy"
    unregister("toy")


def test_a_registered_model_trains_generates_and_is_evaluated_like_the_five(toy, midi_folder, corpus_cache,
                                                                          tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
    run = tmp_path / "run"
    assert main(["train", "--models", "toy,gru", "--preset", "tiny", "--steps", "6", "--batch-size", "4",
                 "--source", str(midi_folder), "--out", str(run), "--device", "cpu", "--processes", "1"]) == 0
    assert (run / "toy" / "model.safetensors").is_file()
    assert json.loads((run / "toy" / "config.json").read_text())["label"] == "toy GRU"

    assert main(["generate", "--run", str(run), "--model", "toy", "--primer", str(midi_folder / "tune_000.mid"),
                 "--primer-bars", "2", "--bars", "4", "--out", str(tmp_path / "toy.mid")]) == 0
    assert (tmp_path / "toy.mid").is_file()

    report_dir = tmp_path / "report"
    assert main(["evaluate", "--run", str(run), "--source", str(midi_folder), "--primer-bars", "4", "--bars", "8",
                 "--samples", "1", "--min-n", "2", "--no-probe", "--out", str(report_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["models"] == ["gru", "toy"]
    assert report["per_bar"]["TR_excess"]["toy"]["n"][0] >= 2
    assert report["test_bits_per_token"]["toy"] > 0
    assert [row["source"] for row in report["summary"]][:2] == ["gru", "toy"]
