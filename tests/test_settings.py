"""One source per setting: the CLI's flags, validation, the app's wording and docs/settings.md come from the
settings tables (engine/core/settings.py)."""

from __future__ import annotations

import argparse

import pytest

from commands import settings_doc
from engine.core.errors import SettingError, UserError
from engine.evaluation.settings import EVAL_SETTINGS, EvalSettings
from engine.generation.generate import SAMPLE_SETTINGS, SampleSettings
from engine.memory.probe import PROBE_SETTINGS, ProbeSettings
from engine.training.train_config import TRAIN_SETTINGS, TrainConfig
from main import main

TABLES = [(TRAIN_SETTINGS, TrainConfig), (SAMPLE_SETTINGS, SampleSettings), (EVAL_SETTINGS, EvalSettings),
          (PROBE_SETTINGS, ProbeSettings)]


def test_docs_settings_md_is_written_from_the_tables():
    assert settings_doc.DOC.read_text() == settings_doc.render(), "run: python -m commands.settings_doc"


@pytest.mark.parametrize(("table", "cls"), TABLES)
def test_every_default_is_inside_its_own_range_and_the_table_builds_the_flags(table, cls):
    cls().validate()  # the defaults pass their own checks
    parser = argparse.ArgumentParser()
    table.add_arguments(parser, defaults=True)
    args = parser.parse_args([])
    help_text = " ".join(parser.format_help().split())
    for setting in table:
        assert getattr(args, setting.name) == table.default(setting.name)
        assert setting.flag in help_text and " ".join(setting.limit.describe().split()) in help_text
        assert setting.label and setting.help


def test_an_out_of_range_value_names_the_flag_on_the_command_line_and_the_label_in_the_app(capsys, tmp_path):
    assert main(["train", "--lr", "5", "--out", str(tmp_path / "run")]) != 0
    assert capsys.readouterr().err.strip() == "error: --lr must be a number above 0 and at most 1, not 5.0"
    with pytest.raises(SettingError) as caught:
        TrainConfig(lr=5.0).validate()
    assert caught.value.for_app() == "Learning rate must be a number above 0 and at most 1, not 5.0"
    assert str(caught.value).startswith("--lr ")
    assert not (tmp_path / "run").exists()  # refused before anything was made


def test_scientific_notation_reaches_the_setting_as_the_number_it_is(tmp_path, capsys):
    """1e-3 on the command line is 0.001, not 1.0 (issue 25 item 6 on the app's side is the Train tab's)."""
    assert main(["train", "--lr", "1e-3", "--steps", "0", "--out", str(tmp_path / "run")]) != 0
    assert "--steps must be a whole number from 1" in capsys.readouterr().err  # lr was accepted, steps named


def test_a_value_from_a_file_is_named_by_its_field_not_a_flag():
    with pytest.raises(UserError, match=r"^run.json: training.lr must be a number above 0"):
        TrainConfig.from_dict({"lr": 7}, where="run.json")


@pytest.mark.parametrize("flag", ["--bars", "--temperature", "--top-p", "--top-k", "--variations", "--seed"])
def test_generate_refuses_out_of_range_sampling_settings_by_flag(flag, capsys, tmp_path):
    assert main(["generate", "--run", "pretrained", "--model", "gru", flag, "-5", "--out", str(tmp_path / "x.mid")]) != 0
    assert capsys.readouterr().err.startswith(f"error: {flag} must be")
