"""report.json read back strictly (engine/evaluation/report_file.py): the shipped report and a fresh evaluation's pass,
damage anywhere ends in a UserError naming the file, never another exception."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import JSON_VALUES, examples, json_leaves, set_leaf

from engine.core.errors import UserError
from engine.evaluation.report import summary_markdown
from engine.evaluation.report_file import check_report, read_report

ROOT = Path(__file__).resolve().parents[1]


# The 8 MB report, its 1.2 million leaves and a copy to damage: made when a test first needs them, not when the
# module is collected (every xdist worker collects every module; this took 1.6 CPU-s in each).
@functools.cache
def shipped() -> dict:
    return json.loads((ROOT / "docs" / "report.json").read_text())


@functools.cache
def leaves() -> list:
    return list(json_leaves(shipped()))


@functools.cache
def damaged() -> dict:
    return copy.deepcopy(shipped())


def test_the_shipped_reports_are_read():
    assert read_report(ROOT / "docs" / "report.json") == shipped()
    read_report(ROOT / "pretrained" / "memory-report.json")


def test_what_is_not_a_report_is_refused_naming_the_file(tmp_path):
    for text, reason in [("{", "not a readable report"), ("[]", "has no per_bar"), ('{"per_bar": {}}', "settings"),
                         ("\"x\"" * 3, "not a readable report")]:
        path = tmp_path / "r.json"
        path.write_text(text)
        with pytest.raises(UserError, match=f"{path}.*{reason}"):
            read_report(path)


@settings(max_examples=examples(50), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), value=JSON_VALUES)
def test_any_value_anywhere_is_read_or_refused_with_a_user_error(data, value):
    index = data.draw(st.integers(0, len(leaves()) - 1), label="index")
    doc = damaged()  # damaged at one leaf and put back after: copying 6 MB per example took most of the time
    old = set_leaf(doc, leaves()[index], value)
    try:
        check_report(doc, "r.json")
    except UserError as exc:
        assert str(exc).startswith("r.json: ")
    else:
        summary_markdown(doc)  # a report the app accepts also exports: its summary renders
    finally:
        set_leaf(doc, leaves()[index], old)
