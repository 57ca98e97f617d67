"""report.json read back strictly (engine/evaluation/report_file.py): the shipped report and a fresh evaluation's pass,
damage anywhere ends in a UserError naming the file, never another exception."""

from __future__ import annotations

import copy
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
SHIPPED = json.loads((ROOT / "docs" / "report.json").read_text())
LEAVES = list(json_leaves(SHIPPED))
DAMAGED = copy.deepcopy(SHIPPED)


def test_the_shipped_reports_are_read():
    assert read_report(ROOT / "docs" / "report.json") == SHIPPED
    read_report(ROOT / "pretrained" / "memory-report.json")


def test_what_is_not_a_report_is_refused_naming_the_file(tmp_path):
    for text, reason in [("{", "not a readable report"), ("[]", "has no per_bar"), ('{"per_bar": {}}', "settings"),
                         ("\"x\"" * 3, "not a readable report")]:
        path = tmp_path / "r.json"
        path.write_text(text)
        with pytest.raises(UserError, match=f"{path}.*{reason}"):
            read_report(path)


@settings(max_examples=examples(50), deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, len(LEAVES) - 1), value=JSON_VALUES)
def test_any_value_anywhere_is_read_or_refused_with_a_user_error(index, value):
    doc = DAMAGED  # damaged at one leaf and put back after: copying 6 MB per example took most of the time
    old = set_leaf(doc, LEAVES[index], value)
    try:
        check_report(doc, "r.json")
    except UserError as exc:
        assert str(exc).startswith("r.json: ")
    else:
        summary_markdown(doc)  # a report the app accepts also exports: its summary renders
    finally:
        set_leaf(doc, LEAVES[index], old)
