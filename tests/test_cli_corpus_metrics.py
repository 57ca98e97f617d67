"""`main.py corpus` and `main.py metrics` under out-of-range, random and hostile input: every value is
checked before anything is loaded or built, ends in `error: ...` naming the option and its range (exit
2) or succeeds (exit 0), never a traceback, and a rejected command writes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import midi_factory as mf
import pytest
import strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import examples

from main import main

ROOT = Path(__file__).resolve().parent.parent


def run_main(argv: list) -> tuple[int, str, str]:
    """main.main in this process, as the CLI runs it: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's refusal
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


@pytest.fixture
def tunes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "." as a path names this small folder, not the checkout
    cache = tmp_path / "cache"
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(cache))
    folder = tmp_path / "tunes"
    for i in range(3):
        mf.simple_tune(folder / f"t{i}.mid", bars=8, seed=i)
    return folder


REFUSED = [
    (["corpus", "--min-bars", "0"], "error: --min-bars must be a whole number from 1 to 4096, not 0"),
    (["corpus", "--min-bars", "100000"], "error: --min-bars must be a whole number from 1 to 4096, not 100000"),
    (["corpus", "--min-bars", "9" * 400], "error: --min-bars must be a whole number from 1 to 4096, not " + "9" * 40 + "..."),
    (["corpus", "--min-bars", "2.5"], "error: argument --min-bars: invalid int value: '2.5'"),
    (["corpus", "--split-rest-bars", "-1"], "error: --split-rest-bars must be a number from 0 to 1024, not -1.0"),
    (["corpus", "--split-rest-bars", "nan"], "error: --split-rest-bars must be a number from 0 to 1024, not nan"),
    (["corpus", "--split-rest-bars", "inf"], "error: --split-rest-bars must be a number from 0 to 1024, not inf"),
    (["corpus", "--split-rest-bars", "1e400"], "error: --split-rest-bars must be a number from 0 to 1024, not inf"),
    (["corpus", "--workers", "-1"], "error: --workers must be a whole number from 0 to 64, not -1"),
    (["corpus", "--workers", "1000000000"], "error: --workers must be a whole number from 0 to 64, not 1000000000"),
    (["metrics", "--reference-bars", "0"], "error: --reference-bars must be a whole number from 1 to 32, not 0"),
    (["metrics", "--reference-bars", "4000"], "error: --reference-bars must be a whole number from 1 to 32, not 4000"),
    (["metrics", "--reference-bars", "x"], "error: argument --reference-bars: invalid int value: 'x'"),
]


@pytest.mark.parametrize("argv, message", REFUSED)
def test_an_out_of_range_option_is_refused_naming_it_and_its_range(tunes, argv, message):
    cache = Path(os.environ["MELODY_MEMORY_CACHE"])
    sources = ["--source", tunes] if argv[0] == "corpus" else [tunes / "t0.mid"]
    code, out, err = run_main(argv + sources)
    assert code == 2 and out == ""
    last = err.rstrip().splitlines()[-1]
    assert last == message or (message in last and "argument" in message)  # argparse's own refusals may add a hint
    assert files_under(cache) == set()  # nothing built, nothing written


def test_split_rest_bars_0_never_splits_and_never_asks_for_a_terabyte(tunes, tmp_path):
    # two phrases 2^27 ticks (over 2 million bars) apart: "never split" must not mean a 2-million-bar melody
    far = b"\x00\x90\x3c\x50\x60\x80\x3c\x00" + strategies.varlen(2**27) + b"\x90\x3e\x50\x60\x80\x3e\x00"
    (tunes / "far.mid").write_bytes(strategies.smf([far]))
    rest = mf.tune_notes(5, seed=13) + mf.tune_notes(5, seed=14, start=7 * 16)  # two bars of rest between
    mf.write(tunes / "rest.mid", mf.track(rest, name="Melody"))
    tracemalloc.start()
    try:
        code, out, err = run_main(["corpus", "--source", tunes, "--split-rest-bars", "0", "--json", "--workers", "1"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, err
    doc = json.loads(out)
    assert {Path(s["path"]).name: s["reason"] for s in doc["skipped"]} == {
        "far.mid": "too long for a melody (over 262144 steps, never split at rests)"}
    assert doc["melodies"] == 4  # rest.mid stays one melody: never split
    assert peak < 200 * 2**20


def test_metrics_ssm_of_a_2000_bar_file_stays_bounded(tmp_path):
    notes = [(b * 16 + q * 4, 60 + (b * 7 + q) % 12, 4) for b in range(2000) for q in range(4)]
    path = tmp_path / "long.mid"
    path.write_bytes(mf.raw_midi(tracks_bytes=[mf.note_track_bytes(notes)]))
    assert path.stat().st_size < 100_000  # the file: 112 KB, 4,000 bars, 9.5 GB (this one: 2.7 GB)
    tracemalloc.start()
    try:
        code, out, err = run_main(["metrics", path, "--self-similarity", "--json"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, err
    (entry,) = json.loads(out)["melodies"]
    assert entry["n_bars"] == 2000 and entry["self_similarity_bars"] == 512
    assert len(entry["self_similarity"]) == 512 and all(len(row) == 512 for row in entry["self_similarity"])
    assert entry["self_similarity"][0][0] == 1.0 and len(entry["per_bar"]["TR"]) == 2000
    assert "--self-similarity covers the first 512 of 2000 bars" in err
    assert peak < 1.5 * 2**30  # it took 9.5 GB


def test_metrics_of_a_non_utf8_file_name_prints(tmp_path):
    path = mf.simple_tune(tmp_path / os.fsdecode(b"air \xe9.mid"), bars=8)
    for extra in ([], ["--json"]):
        run = subprocess.run([sys.executable, "main.py", "metrics", os.fsencode(path), *extra], capture_output=True,
                             cwd=ROOT, timeout=120)
        assert run.returncode == 0 and b"Traceback" not in run.stderr
        text = run.stdout.decode("utf-8")
        assert "air \\xe9.mid" in (json.loads(text)["melodies"][0]["path"] if extra else text)


def test_json_output_is_only_json_where_ci_makes_pyfluidsynth_print(tmp_path):
    """pyfluidsynth prints "'fluidsynth' was found at ..." on import when CI is set (as on the CI machine);
    the line must not reach stdout, where it broke `--json` for anyone parsing it."""
    path = mf.simple_tune(tmp_path / "air.mid", bars=8)
    run = subprocess.run([sys.executable, "main.py", "metrics", str(path), "--json"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "CI": "true"})
    assert run.returncode == 0, run.stderr
    assert "was found at" not in run.stdout + run.stderr
    assert json.loads(run.stdout)["melodies"][0]["path"].endswith("air.mid")


def test_json_to_a_closed_stdout_or_a_gone_reader_says_so_in_one_line(tmp_path):
    """`--json >&-` had nowhere to write and ended with exit 1 and a traceback, `--json | true` with exit 1 and
    no word (issue 26): a closed stdout is refused before any work, naming --json; a reader that goes away
    mid-document is one line on stderr (what it got is incomplete) and a non-zero exit."""
    path = mf.simple_tune(tmp_path / "air.mid", bars=8)
    for argv in (["corpus", "--json"], ["metrics", str(path), "--json"]):
        closed = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "main.py", *argv],
                                capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert closed.returncode == 2, closed.stderr
        assert closed.stderr.strip().splitlines() == [
            "error: --json writes one JSON document on stdout, and stdout is closed: send it to a file or a pipe "
            "(> out.json), or leave out --json. Nothing was done."]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the document is written (`| true`)
    try:
        gone = subprocess.run([sys.executable, "main.py", "corpus", "--json"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write_end)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert gone.stderr.strip().splitlines()[-1] == (
        "error: the reader of stdout went away before the JSON document was written whole (broken pipe): "
        "what it received is incomplete")


# --- property: any value for any option ---------------------------------------------------------------

CORPUS_OPTIONS = ["--min-bars", "--split-rest-bars", "--workers"]
METRICS_OPTIONS = ["--reference-bars"]


@st.composite
def corpus_argv(draw, folder: Path) -> list[str]:
    argv = ["corpus", "--source", str(folder)]
    for option in draw(st.lists(st.sampled_from(CORPUS_OPTIONS), unique=True)):
        argv += [option, draw(strategies.number_texts())]
    if draw(st.booleans()):
        argv += ["--source", draw(strategies.path_texts())]
    for flag in ("--json", "--no-cache"):
        if draw(st.booleans()):
            argv.append(flag)
    return argv


@st.composite
def metrics_argv(draw, file: Path) -> list[str]:
    argv = ["metrics", str(file)]
    if draw(st.booleans()):
        argv += ["--reference-bars", draw(strategies.number_texts())]
    if draw(st.booleans()):
        argv.append(draw(strategies.path_texts()))
    for flag in ("--json", "--self-similarity"):
        if draw(st.booleans()):
            argv.append(flag)
    return argv


def check_outcome(code, out: str, err: str, cache: Path, before: set[Path]) -> None:
    assert "Traceback" not in err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert "error: " in err.strip().splitlines()[-1]
        assert files_under(cache) == before  # a refused command writes nothing


@pytest.mark.timeout(600)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_values_for_the_corpus_options(tunes, data):
    argv = data.draw(corpus_argv(tunes))
    cache = Path(os.environ["MELODY_MEMORY_CACHE"])
    before = files_under(cache)
    check_outcome(*run_main(argv), cache, before)


@pytest.mark.timeout(600)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_values_for_the_metrics_options(tunes, data):
    argv = data.draw(metrics_argv(tunes / "t0.mid"))
    cache = Path(os.environ["MELODY_MEMORY_CACHE"])
    before = files_under(cache)
    check_outcome(*run_main(argv), cache, before)


def test_random_values_as_a_user_types_them_in_a_shell(tunes):
    """The same contract through a real process (the property tests above call main.main in-process)."""
    env = dict(os.environ)
    for argv in (["corpus", "--source", tunes, "--split-rest-bars", "-0.5"], ["metrics", tunes / "t0.mid", "--reference-bars", "1e3"],
                 ["corpus", "--source", "x" * 5000], ["metrics", "x" * 5000]):
        run = subprocess.run([sys.executable, "main.py", *map(str, argv)], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines()[-1].startswith(("error: ", f"main.py {argv[0]}: error: "))
