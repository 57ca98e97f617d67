"""Adding a model is one file plus one registry entry (docs/architecture.md, "How to add a model").

Two models written the natural way, each as the one file it would be (a config with its limits and a
SequenceModel), then one `register(...)` line each:
- a windowed MLP that predicts from the embeddings of the last 4 tokens (its input embedding is applied
  once per step and then shifted: the case that used to crash `influence` and `evaluate`), and
- a GRU over two embeddings of each token, concatenated (the token itself, and what kind of step it is).
Both then go through the real commands (train, generate, evaluate, influence) and the app's Listen and
Memory tabs, with their names and colours, like the seed's five. docs/architecture.md walks through
exactly these steps.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from torch import nn

from engine.core.validation import Limit
from engine.models import ModelConfig, ModelSpec, SequenceModel, register, unregister
from main import main


# ---- one file: a windowed MLP over the last `context` tokens ----------------------------------------
@dataclass
class WindowMLPConfig(ModelConfig):
    embed_dim: int = 8
    hidden_size: int = 32
    context: int = 4

    LIMITS: ClassVar[dict[str, Limit]] = {"embed_dim": Limit("int", 1, 512), "hidden_size": Limit("int", 1, 4096),
                                          "context": Limit("int", 1, 64)}


class WindowMLP(SequenceModel):
    def __init__(self, config: WindowMLPConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.mlp = nn.Sequential(nn.Linear(config.context * config.embed_dim, config.hidden_size), nn.GELU(),
                                 nn.Linear(config.hidden_size, config.vocab_size))

    @property
    def reach(self) -> int:
        return self.config.context - 1

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, E]
        return self.embed(tokens)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:  # [B, T, E] -> [B, T, V]
        k = self.config.context
        padded = nn.functional.pad(e, (0, 0, k - 1, 0))  # zeros before the first step
        windows = padded.unfold(1, k, 1)  # [B, T, E, k]: steps t-k+1 .. t
        return self.mlp(windows.transpose(2, 3).flatten(2))

    def init_state(self, batch: int, device=None):
        return torch.zeros(batch, 0, dtype=torch.long, device=device)  # the tokens so far (at most context)

    def step(self, tokens: torch.Tensor, state):  # [B] -> ([B, V], state)
        state = torch.cat([state, tokens[:, None]], dim=1)[:, -self.config.context:]
        return self.forward(state)[:, -1], state


# ---- one file: a GRU over two embeddings of each token ----------------------------------------------
@dataclass
class TwoEmbeddingConfig(ModelConfig):
    embed_dim: int = 8
    kind_dim: int = 4
    hidden_size: int = 16

    LIMITS: ClassVar[dict[str, Limit]] = {"embed_dim": Limit("int", 1, 512), "kind_dim": Limit("int", 1, 64),
                                          "hidden_size": Limit("int", 1, 1024)}


class TwoEmbeddingGRU(SequenceModel):
    def __init__(self, config: TwoEmbeddingConfig):
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.embed_dim)
        self.kind = nn.Embedding(3, config.kind_dim)  # 0 PAD/HOLD, 1 REST, 2 a pitch
        self.core = nn.GRU(config.embed_dim + config.kind_dim, config.hidden_size, batch_first=True)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T, E + K]
        kind = torch.clamp(tokens - 1, 0, 2)
        return torch.cat([self.token(tokens), self.kind(kind)], dim=-1)

    def forward_embedded(self, e: torch.Tensor) -> torch.Tensor:
        return self.head(self.core(e)[0])

    def init_state(self, batch: int, device=None):
        return torch.zeros(1, batch, self.config.hidden_size, device=device)

    def step(self, tokens: torch.Tensor, state):
        h, state = self.core(self.embed_tokens(tokens[:, None]), state)
        return self.head(h)[:, 0], state


# ---- the registry entries ----------------------------------------------------------------------------
NEW = {"mlp": "#bcbd22", "twoemb": "#e377c2"}


@pytest.fixture(scope="module")
def new_models():
    register(ModelSpec("mlp", "windowed MLP", NEW["mlp"], WindowMLPConfig, WindowMLP,
                       {"tiny": {}, "small": {"hidden_size": 256}, "medium": {"hidden_size": 1024}}))
    register(ModelSpec("twoemb", "two-embedding GRU", NEW["twoemb"], TwoEmbeddingConfig, TwoEmbeddingGRU,
                       {"tiny": {}, "small": {"hidden_size": 128}, "medium": {"hidden_size": 512}}))
    yield list(NEW)
    unregister("mlp")
    unregister("twoemb")


@pytest.fixture(scope="module")
def trained_and_evaluated(new_models, midi_folder, corpus_cache, tmp_path_factory):
    """The two models trained (`train`) and evaluated (`evaluate --json`) through the commands, once per test run
    for both tests (training and evaluating are their expensive part): the folder with run/, report/ and
    report-stdout.json (what --json printed)."""
    from tests.built_once import built_once

    def build(folder):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MELODY_MEMORY_CACHE", str(corpus_cache))
            assert main(["train", "--models", "mlp,twoemb", "--preset", "tiny", "--steps", "6", "--batch-size", "4",
                         "--source", str(midi_folder), "--out", str(folder / "run"), "--device", "cpu",
                         "--processes", "1"]) == 0
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["evaluate", "--run", str(folder / "run"), "--source", str(midi_folder), "--primer-bars",
                             "4", "--bars", "8", "--samples", "1", "--min-n", "2", "--no-probe", "--influence-primers",
                             "2", "--out", str(folder / "report"), "--json"])
            assert code == 0
            (folder / "report-stdout.json").write_text(out.getvalue(), encoding="utf-8")

    return built_once(tmp_path_factory, "add-a-model", build)


@pytest.fixture
def new_run(trained_and_evaluated):
    return trained_and_evaluated / "run"


@pytest.fixture
def evaluated(trained_and_evaluated) -> tuple[dict, object]:
    """(the report `evaluate --json` printed, the report folder it wrote)."""
    printed = (trained_and_evaluated / "report-stdout.json").read_text(encoding="utf-8")
    return json.loads(printed), trained_and_evaluated / "report"


def test_new_models_train_generate_are_evaluated_and_attributed_through_the_commands(new_run, evaluated, midi_folder,
                                                                                      tmp_path, capsys):
    assert json.loads((new_run / "mlp" / "config.json").read_text())["label"] == "windowed MLP"
    primer = str(midi_folder / "tune_000.mid")
    for key in NEW:
        assert main(["generate", "--run", str(new_run), "--model", key, "--primer", primer, "--primer-bars", "2",
                     "--bars", "4", "--out", str(tmp_path / f"{key}.mid")]) == 0
        capsys.readouterr()
        assert main(["influence", "--run", str(new_run), "--model", key, "--primer", primer, "--primer-bars", "2",
                     "--bars", "2", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["influence"], key
        for entry in result["influence"]:
            assert all(j < entry["note"] and w >= 0 for j, w in entry["sources"])
            assert sum(w for _, w in entry["sources"]) <= 1 + 1e-6
    # The MLP sees 3 tokens back: no note draws on a note whose steps all lie further back.
    assert main(["influence", "--run", str(new_run), "--model", "mlp", "--primer", primer, "--primer-bars", "2",
                 "--bars", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    notes = result["notes"]
    for entry in result["influence"]:
        onset = notes[entry["note"]][0]
        for j, _ in entry["sources"]:
            assert notes[j][0] + notes[j][2] - 1 >= onset - 4, (entry, notes[j])

    report, report_dir = evaluated
    assert report["models"] == ["mlp", "twoemb"]
    for key in NEW:
        assert report["per_bar"]["TR_excess"][key]["n"][0] >= 2
        assert report["test_bits_per_token"][key] > 0
    assert report["windows"]["mlp"]["reach_steps"] == 3
    assert (report_dir / "report.json").is_file()


@pytest.mark.late  # it reads the run and report the test above builds (trained_and_evaluated)
def test_new_models_show_with_their_names_and_colours_in_the_listen_and_memory_tabs(new_run, evaluated, window,
                                                                                     qtbot):
    with qtbot.waitSignal(window.state.modelsChanged, timeout=20000):
        window.open_run(new_run)
    window.show_tab("listen")
    tab = window.listen_tab
    tab.primer_bars.setValue(4)
    tab.bars.setValue(2)
    with qtbot.waitSignal(tab.generationFinished, timeout=30000):
        tab.generate_button.click()
    rows = {row.key: row for row in tab.rows}
    for key, colour in NEW.items():
        assert rows[key].isVisible() and rows[key].melody is not None and rows[key].melody.notes
        assert colour in rows[key].name.text() and rows[key].name.toolTip() in ("windowed MLP", "two-embedding GRU")

    _report, report_dir = evaluated
    window.show_tab("memory")
    window.memory_tab.open_report(report_dir / "report.json")
    legend = window.memory_tab.legend.text()
    assert "windowed MLP" in legend and NEW["mlp"] in legend and "two-embedding GRU" in legend
