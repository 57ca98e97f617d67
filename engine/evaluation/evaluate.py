"""The evaluation protocol (docs/design.md section 5): how long each model keeps the theme and rhythm.

Two halves, both seeded so that a report reproduces exactly:
- Continuations (engine/evaluation/continuations.py, the revised protocol): every eligible test tune as a primer,
  each model's continuations at every temperature, the human reference, the model-matched floor and
  TR_excess with paired bootstrap intervals, n on every series, null where n < min_n, a per-meter
  breakdown and the distinct-bar rate.
- Model side on every test tune: NLL per bar, effective memory with the length check (NLL_full
  within 0.005 bits of the best NLL_k), repeat gain, gradient memory; and the synthetic
  theme-recall probe with fresh models of each architecture.
- Influence (design.md section 5, "Influence"): how far back the notes of the continuations reach, by
  gradient, over the first 16 bars of the first sample of the first `influence_primers` primers at the
  first temperature, beside the human reference (how far back each real note's nearest earlier repeat
  lies) and each model's own repeats; `influence_report` below.

Entry point for the CLI and the GUI: `evaluate(run_dir, models, settings, progress, cancel)`; progress
receives dicts {"stage", "message", "done", "total", "model"}; setting `cancel` raises EvaluationCancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.core.device import torch_threads
from engine.core.errors import UserError
from engine.core.jsonable import json_ready
from engine.evaluation.report_file import FORMAT as REPORT_FORMAT
from engine.evaluation.settings import EvalSettings, EvaluationCancelled
from engine.memory import gradient, nll
from engine.memory.probe import ProbeCancelled, run_probe
from engine.memory.probe import progress_line as probe_line
from engine.metrics.stats import bootstrap_interval, per_bar_stats, scalar_stats
from engine.music.melody import Melody

__all__ = ["EvalSettings", "EvaluationCancelled", "add_influence_column", "bootstrap_interval", "evaluate",
           "influence_report", "per_bar_stats", "run_label", "summary_rows", "training_curve"]

Progress = Callable[[dict], None]


def run_label(run_dir, given: str | None = None) -> str:
    """How the report names the run: "pretrained" for the bundled models, else the path as given.

    A shipped report must not carry the absolute path of the machine that made it.
    """
    from engine.training.checkpoint import PRETRAINED_DIR

    if given is not None and str(given) == "pretrained":
        return "pretrained"
    if Path(run_dir).resolve() == PRETRAINED_DIR.resolve():
        return "pretrained"
    return str(run_dir if given is None else given)


def _source_labels(sources) -> list[str]:
    """Corpus sources for the report: the bundled corpus as "midi_data (bundled)", others as given."""
    from engine.data.corpus import BUNDLED_DIR

    out = []
    for s in sources or []:
        out.append("midi_data (bundled)" if Path(s).resolve() == BUNDLED_DIR.resolve() else str(s))
    return out


# --- the protocol -----------------------------------------------------------------------------------


def evaluate(run_dir, models=None, settings: EvalSettings = EvalSettings(), progress: Progress | None = None,
             cancel: threading.Event | None = None, corpus=None, sources=None, run_name: str | None = None,
             seed_runs=(), names: dict[str, str] | None = None) -> dict:
    """Run the whole protocol on the models of a run directory; returns the report dict.

    `corpus` may be passed in (the GUI has one loaded); otherwise it is loaded from `sources` (None =
    the bundled corpus). `run_name` is how the user named the run (`--run`), kept in report["run"]["dir"].
    `seed_runs`: run folders of the same architectures trained with other seeds (recall by distance is
    measured on each, engine/evaluation/recall_section.py).
    Its peak memory is estimated first and refused above the machine's share (memory_check.py), naming the
    settings to lower as `names` words them.
    Timings go to report["timings"] and are the only entries that vary between two runs with the same
    settings: each stage's wall time, and the model side's parts (nll_per_bar, effective_memory,
    gradient_memory) summed over the models, which in worker processes can add up to more than the stage.
    With settings.processes > 1 sampling, the model side, recall by distance and the probe run their
    independent jobs (a model, a model at one temperature, a probe model with one seed) in that many worker
    processes (engine/core/processes.run_jobs) on the CPU, one thread each; every job seeds itself, so the
    report is the one of processes=1 with threads=1 (the default) on the CPU.
    """
    settings.validate()
    with torch_threads(settings.threads):
        return _evaluate(run_dir, models, settings, progress, cancel, corpus, sources, run_name, seed_runs, names)


class _Stages:
    """One evaluation's progress messages, cancellation check and per-stage timings."""

    def __init__(self, progress: Progress | None, cancel):
        self.progress, self.cancel = progress, cancel
        self.timings: dict[str, float] = {}
        self.clock = time.monotonic()

    def tick(self, name: str) -> None:
        """Book the time since the last tick (or clock restart) to stage `name`."""
        now = time.monotonic()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - self.clock, 3)
        self.clock = now

    def say(self, stage, message, done=0, total=0, model=None) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise EvaluationCancelled("evaluation cancelled")
        if self.progress is not None:
            self.progress({"stage": stage, "message": message, "done": done, "total": total, "model": model})


def _models_to_evaluate(run_dir: Path, models) -> list[str]:
    """The keys asked for (all the run's models when none are), each checked to be in the run; a model whose
    files are damaged or half gone is an error naming the file, never left out in silence."""
    from engine.training.checkpoint import check_saved_model, list_run_models, run_model_keys

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    available = list_run_models(run_dir)
    held = run_model_keys(run_dir)
    for key in (list(models) if models else held):
        if key in held and key not in available:
            check_saved_model(run_dir / key)
    keys = list(models) if models else available
    if not keys:
        raise UserError(f"{run_dir}: no trained model in this run directory")
    missing = [k for k in keys if k not in available]
    if missing:
        raise UserError(f"{run_dir}: no trained {', '.join(missing)} here (found: {', '.join(available) or 'none'})")
    return keys


def _warn_if_trained_on_another_corpus(loaded: dict, keys: list[str], corpus, say) -> None:
    trained_on = {loaded[k].config.get("corpus") for k in keys}
    if trained_on != {corpus.fingerprint}:
        say("load", f"warning: the models were trained on corpus {', '.join(sorted(map(str, trained_on)))}, "
                    f"this is corpus {corpus.fingerprint}: pass the run's --source so that test tunes stay unseen")


def _probe_section(keys: list[str], settings: EvalSettings, say, cancel) -> dict:
    """The synthetic theme-recall probe with fresh models of each architecture."""
    def probe_progress(event):
        if "jobs" in event:  # from a worker process, as each model and seed ends
            say("probe", f"probe: trained {probe_line(event)}", event["jobs_done"], event["jobs"], event["model"])
        elif event["step"] % 25 == 0 or event["step"] == event["steps"]:
            say("probe", f"probe: training {probe_line(event)}", event["step"], event["steps"], event["model"])
    if settings.processes > 1:
        jobs = len(keys) * settings.probe.seeds
        say("probe", f"probe: training {len(keys)} models x {settings.probe.seeds} seeds in "
                     f"{min(settings.processes, jobs)} worker processes", 0, jobs)
    try:
        return run_probe(keys, settings.probe, probe_progress, cancel, settings.processes)
    except ProbeCancelled:
        raise EvaluationCancelled("evaluation cancelled") from None


def _report_settings(settings: EvalSettings, cases: list, test: list[Melody]) -> dict:
    from engine.evaluation.continuations import eligible_primers
    from engine.evaluation.controls_section import controls_settings

    report_settings = settings.to_dict()
    report_settings.update(
        primers=len(cases),  # what was used (the contract's key); the cap asked for is primers_cap
        primers_cap=settings.primers,
        eligible_primers=len(eligible_primers(test, settings.primer_bars)),
        per_bar_temperature=float(settings.temperatures[0]),
        **controls_settings(),  # the floor of TR_floor / TR_excess and the paired table's headline series (issue 24)
    )
    return report_settings


def _add_recall(report: dict, recall: dict) -> None:
    report["settings"]["recall"] = recall.pop("recall_settings")
    for seed, figures in recall.pop("seeds").items():  # merged: other headline figures may sit there too
        report.setdefault("seeds", {}).setdefault(seed, {}).update(figures)
    report.update(recall)


def _evaluate(run_dir, models, settings: EvalSettings, progress: Progress | None, cancel, corpus, sources,
              run_name, seed_runs=(), names=None) -> dict:
    import torch

    from engine.core.device import resolve_device
    from engine.evaluation.continuations import make_cases, measure_continuations, sample_all, temperature_key
    from engine.evaluation.memory_check import check_evaluation_memory
    from engine.training.checkpoint import load_model

    settings.validate()
    run_dir = Path(run_dir)
    keys = _models_to_evaluate(run_dir, models)
    if settings.recall and seed_runs:
        from engine.evaluation.recall_section import check_seed_runs

        check_seed_runs(run_dir, keys, seed_runs)
    stages = _Stages(progress, cancel)
    say, tick, timings = stages.say, stages.tick, stages.timings

    say("load", check_evaluation_memory(run_dir, keys, settings, names))  # before anything is loaded
    device = resolve_device(settings.device)
    say("load", f"loading {len(keys)} models")
    loaded = {k: load_model(run_dir, k, device) for k in keys}
    curves = {k: training_curve(run_dir / k) for k in keys}  # a damaged history is refused before any work
    if corpus is None:
        from engine.data.corpus import load_corpus

        say("load", "loading the corpus")
        corpus = load_corpus(sources)
    tick("load")
    _warn_if_trained_on_another_corpus(loaded, keys, corpus, say)
    test = corpus.split("test")
    test_tokens = corpus.tokens("test")
    if not test:
        raise UserError("the corpus has no test-split tunes to evaluate on")
    cases = make_cases(test, settings)
    if len(cases) < settings.min_n:  # said before the sampling starts (the Memory tab refuses it beforehand)
        say("load", f"warning: only {len(cases)} test tunes are long enough for a primer of {settings.primer_bars} "
                    f"bars, fewer than min_n = {settings.min_n}: every mean of the report is left out")
    from engine.evaluation.originality import OriginalityMeter

    originality = OriginalityMeter(corpus, cases, settings)  # the training tunes' spans (issue 27)
    with torch.no_grad():
        models = {k: (loaded[k].model, loaded[k].token_config) for k in keys}
        # in worker processes (else sampled, scored and let go one model and temperature at a time)
        sampled = sample_all(run_dir, models, cases, settings, say, cancel) if settings.processes > 1 else None
        continuations = measure_continuations(models, cases, settings, say, cancel, observe=originality.observe,
                                              sampled=sampled)
    tick("generate")
    first_samples = continuations.pop("first_samples")
    influence = None
    if settings.influence_primers:
        influence = influence_report({k: (loaded[k].model, loaded[k].token_config) for k in keys}, cases,
                                     first_samples, settings, say)
        tick("influence")

    model_side = _model_side_section(run_dir, keys, loaded, test, test_tokens, settings, say, cancel, timings)
    tick("model_side")

    recall = None
    if settings.recall:
        from engine.evaluation.recall_section import recall_section

        recall = recall_section(run_dir, keys, loaded, test, test_tokens, corpus.token_config.vocab_size, settings,
                                seed_runs, say, cancel)
        tick("recall_by_distance")

    probe = None
    if settings.probe is not None:
        probe = _probe_section(keys, settings, say, cancel)
        tick("probe")

    say("report", "summarising")
    windows_by_t = continuations.pop("windows_by_temperature")
    report = {
        "format": REPORT_FORMAT,
        "settings": _report_settings(settings, cases, test),
        "run": {
            "dir": run_label(run_dir, run_name),
            "models": {k: _run_entry(loaded[k].config) for k in keys},
        },
        "corpus": {"fingerprint": corpus.fingerprint, "sources": _source_labels(getattr(corpus, "sources", [])),
                   "test_tunes": len(test),
                   # False when a model was trained on another corpus: its "test" tunes may be training data
                   "matches_run": all(loaded[k].config.get("corpus") == corpus.fingerprint for k in keys)},
        "models": keys,
        "primers": [
            {"tune_id": c.tune.tune_id, "title": c.tune.title, "meter": c.meter, "bars": c.tune.n_bars,
             "floor_tune_id": None if c.partner is None else c.partner.tune_id,
             "rhythm_partner_tune_id": None if c.rhythm_partner is None else c.rhythm_partner.tune_id}
            for c in cases
        ],
        "windows": {k: model_windows(loaded[k].model, loaded[k].config, continuations["meters"], settings)
                    for k in keys},
        **continuations,
        "nll_per_bar": {k: v["nll_per_bar"] for k, v in model_side.items()},
        "test_bits_per_token": {k: v["test_bpt"] for k, v in model_side.items()},
        "effective_memory": {k: v["effective_memory"] for k, v in model_side.items()},
        "repeat_gain": {k: v["repeat_gain"] for k, v in model_side.items()},
        "gradient_memory": {k: v["gradient_memory"] for k, v in model_side.items()},
        "probe": probe,
        "training_curves": curves,
    }
    if influence is not None:
        report["influence"] = influence
    if recall is not None:
        _add_recall(report, recall)
    report["originality"] = originality.report()
    report["settings"]["originality"] = originality.settings_entry()
    report["summary_by_temperature"] = {t: summary_rows(report, windows) for t, windows in windows_by_t.items()}
    report["summary"] = report["summary_by_temperature"][temperature_key(settings.temperatures[0])]
    if influence is not None:  # measured at the first temperature only: its table gets the column
        add_influence_column(report["summary"], influence)
    tick("summary")
    report["timings"] = timings
    return json_ready(report)


def model_windows(model, config: dict, meters: dict, settings: EvalSettings) -> dict:
    """Where, in bars of the continuation, each meter's primer leaves the model's window.

    - attention / transformer attend to the last `window` steps: from continuation step `window` on,
      no prediction sees a primer token directly (`primer_leaves_window_after_bars` = window / S).
      The Transformer's stacked layers reach n_layers x (window - 1) steps (`reach_steps`).
    - rnn / lstm / gru have no window: their state carries the primer to the end, so nothing is
      marked for them.
    - `training_crop_steps` is the longest sequence the model was trained on: its window when it trained on
      crops, the cut length (max_len) when it trained on whole tunes. `past_training_crop_after_bars` is
      where the piece (primer included) grows longer than that: a length-generalisation confound. (The key
      names keep the report contract; for models trained on whole tunes nothing is marked in 64 bars.)
    """
    from engine.memory.recall_length import training_crop

    span = model.attention_span
    attends = span is not None
    crop = training_crop(model, config)
    P = settings.primer_bars
    out = {
        "attention_window_steps": span,
        "reach_steps": model.reach if model.reach is not None else span,
        "training_crop_steps": crop,
        "primer_leaves_window_after_bars": {},
        "past_training_crop_after_bars": {},
    }
    for meter, info in meters.items():
        S = info["steps_per_bar"]
        if attends:
            out["primer_leaves_window_after_bars"][meter] = round(span / S, 4)
        if crop:
            out["past_training_crop_after_bars"][meter] = round(max(0.0, crop / S - P), 4)
    return out


# --- influence distance -----------------------------------------------------------------------------

INFLUENCE_BARS = 16  # continuation bars attributed per primer: the cost grows with the square of the length
INFLUENCE_STATS = ("mean", "lo", "hi", "n")  # what the summary table's influence_distance_bars keeps


def influence_report(models: dict, cases, first_samples: dict, settings: EvalSettings, say) -> dict:
    """report["influence"] = {"method": "gradient", "bars", "primers", "temperature", <key>: D for each model,
    "human": D, "repeats": {key: D}} over the first `settings.influence_primers` primers (each model's D
    beside the block's own keys, engine.evaluation.report_file.INFLUENCE_KEYS, which no model key can be).

    models: {key: (model, token_config)}; first_samples: {key: each primer's first continuation at the
    first temperature} (what measure_continuations keeps). Per source, D = {"mean", "lo", "hi", "n",
    "n_notes", "median", "q10", "q90", "histogram": {"edges", "counts"}, "chance"}:
    - each continuation's mean distance in bars is one value: mean and 95% bootstrap lo/hi over them,
      n = continuations with a value, null below min_n as every summary figure (median and quantiles
      too); median, q10, q90 and the histogram pool the notes (n_notes);
    - histogram: 1-bar bins from 0 to P + bars, the longest distance possible (with a long primer the
      last bin starts at 32 bars and holds everything further back);
    - chance: the mean distance if each note's weight were spread evenly over all earlier steps.
    Each model's D: the gradient influence distance of its notes. `human`: how far back each note of
    the real continuation finds its nearest earlier repeat (repeat_distances: a repeated two-note
    figure a whole number of bars back); notes without one are left out, their share is
    "no_repeat_share". `repeats`: the same repeat measure on each model's own notes, to set beside it.
    Each model's D also holds its references (engine/evaluation/controls_section.influence_references:
    reference_previous_note, reference_uniform, share_on_primer); the human's the first two.
    """
    from engine.evaluation.continuations import temperature_key
    from engine.evaluation.controls_section import human_influence_references, influence_references
    from engine.evaluation.report_file import INFLUENCE_KEYS
    from engine.memory.influence import continuation_tokens, influence_distribution, repeat_distribution

    assert not set(models) & set(INFLUENCE_KEYS), f"a model key is one of the influence block's own {INFLUENCE_KEYS}"
    use = cases[: settings.influence_primers]
    bars = min(INFLUENCE_BARS, settings.bars)
    longest = settings.primer_bars + bars
    found, repeats = {}, {}
    for key, (model, token_config) in models.items():
        def progress(done, total, key=key):
            say("influence", f"{key}: what each note drew on, continuation {done}/{total}", done, total, key)

        items = [(*continuation_tokens(c.primer, cont, token_config), c.primer.steps_per_bar)
                 for c, cont in zip(use, first_samples[key])]
        dist = influence_distribution(model, items, token_config, "gradient", key, bars, progress)
        chance = dist["uniform"]["mean"]
        found[key] = {**_distance_entry(dist, chance, settings, longest), **influence_references(dist, settings)}
        repeats[key] = _distance_entry(dist["repeat"], chance, settings, longest)
    real = [(c.tune.bars(0, longest).note_array(), settings.primer_bars * c.primer.steps_per_bar,
             c.primer.steps_per_bar) for c in use]
    human = {**_distance_entry(repeat_distribution(real, bars), _chance_of_real_notes(real, bars), settings, longest),
             **human_influence_references(real, bars, settings)}
    return {"method": "gradient", "bars": bars, "primers": len(use),
            "temperature": float(temperature_key(settings.temperatures[0])),
            **found, "human": human, "repeats": repeats}


def _chance_of_real_notes(cases, bars: int):
    """The chance level beside the human reference: the uniform distance of the real continuation's notes."""
    from engine.memory.influence import uniform_distances

    pooled = []
    for notes, primer_steps, spb in cases:
        notes = notes[notes[:, 0] < primer_steps + bars * spb]
        first = int(np.searchsorted(notes[:, 0], primer_steps))
        as_result = {"notes": notes.tolist(), "influence": [{"note": i} for i in range(first, len(notes))]}
        pooled.append(uniform_distances(as_result, spb))
    values = np.concatenate(pooled) if pooled else np.zeros(0)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _distance_entry(dist: dict, chance, settings: EvalSettings, longest: int) -> dict:
    """D of influence_report from engine.memory.influence.distance_distribution's shape."""
    def rounded(value):
        return None if value is None else round(float(value), 6)

    per = [np.nan if v is None else v for v in dist["per_continuation_mean"]]
    entry = scalar_stats(per, settings.bootstrap, settings.seed, settings.min_n)
    enough = entry["n"] >= settings.min_n
    counts = np.rint(np.asarray(dist["histogram"]["share"], dtype=float) * dist["n_notes"]).astype(int)
    n_bins = min(len(counts), longest)
    kept = counts[:n_bins].copy()
    kept[-1] += counts[n_bins:].sum()
    out = {**entry, "n_notes": dist["n_notes"],
           **{q: rounded(dist[q]) if enough else None for q in ("median", "q10", "q90")},
           "histogram": {"edges": [*range(n_bins), max(longest, n_bins)], "counts": kept.tolist()},
           "chance": rounded(chance)}
    if "no_repeat_share" in dist:
        out["no_repeat_share"] = rounded(dist["no_repeat_share"])
    return out


def add_influence_column(rows: list[dict], influence: dict) -> None:
    """The summary's influence_distance_bars {"mean", "lo", "hi", "n"} on each model's row (influence
    distance) and the human row (distance to the nearest earlier repeat)."""
    from engine.evaluation.report_file import influence_models

    models = influence_models(influence)
    for row in rows:
        d = influence.get("human") if row["source"] == "human" else models.get(row["source"])
        if isinstance(d, dict):
            row["influence_distance_bars"] = {k: d[k] for k in INFLUENCE_STATS}


def _model_side(model, test: list[Melody], test_tokens, settings: EvalSettings, timings: dict) -> dict:
    started = time.monotonic()
    bits = nll.token_bits(model, test_tokens)
    spb = [m.steps_per_bar for m in test]
    matrix = nll.nll_per_bar_matrix(bits, spb, settings.nll_bars)
    result = {
        "test_bpt": nll.mean_bits(bits),
        "nll_per_bar": per_bar_stats(matrix, settings.bootstrap, settings.seed, settings.min_n),
        "repeat_gain": nll.repeat_gain(bits, [m.note_array() for m in test], spb),
    }
    t1 = time.monotonic()
    result["effective_memory"] = nll.effective_memory(
        model, test_tokens, bits, spb, min_position=settings.memory_min_position,
        n_targets=settings.memory_targets, seed=settings.seed,
    )
    t2 = time.monotonic()
    result["gradient_memory"] = gradient.gradient_memory(
        model, test_tokens, max_k=settings.gradient_max_k, n_positions=settings.gradient_positions,
        seed=settings.seed,
    )
    t3 = time.monotonic()
    for name, dt in (("nll_per_bar", t1 - started), ("effective_memory", t2 - t1), ("gradient_memory", t3 - t2)):
        timings[name] = round(timings.get(name, 0.0) + dt, 3)
    return result


def _model_side_in_worker(run_dir: str, key: str, test: list[Melody], test_tokens, settings: EvalSettings,
                          stop=None) -> tuple[dict, dict]:
    """_model_side of one model in a worker process (engine/core/processes.run_jobs), loaded from its run:
    (its result, its timings)."""
    from engine.training.checkpoint import load_model

    timings: dict[str, float] = {}
    return _model_side(load_model(run_dir, key, "cpu").model, test, test_tokens, settings, timings), timings


def _model_side_section(run_dir, keys: list[str], loaded: dict, test: list[Melody], test_tokens,
                        settings: EvalSettings, say, cancel, timings: dict) -> dict[str, dict]:
    """_model_side of every model: in worker processes when settings.processes > 1, else here in turn. The
    parts' timings are summed over the models (over the workers: their sum can exceed the stage's wall time)."""
    from functools import partial
    from itertools import count

    from engine.core.processes import run_jobs

    def here(key, stop=None):
        say("memory", f"{key}: NLL per bar, effective memory, repeat gain, gradient memory", keys.index(key),
            len(keys), key)
        own: dict[str, float] = {}
        return _model_side(loaded[key].model, test, test_tokens, settings, own), own

    finished = count(1)

    def ended(n: int, _result) -> None:
        if settings.processes > 1:
            say("memory", f"{keys[n]}: NLL per bar, effective memory, repeat gain, gradient memory done",
                next(finished), len(keys), keys[n])

    if settings.processes > 1:
        say("memory", f"NLL per bar, effective memory, repeat gain, gradient memory of {len(keys)} models in "
                      f"{min(settings.processes, len(keys))} worker processes", 0, len(keys))
    results = run_jobs(partial(_model_side_in_worker, str(run_dir), test=test, test_tokens=test_tokens,
                               settings=settings), [(k,) for k in keys], settings.processes, inline=here,
                       cancel=cancel, cancelled=EvaluationCancelled, on_result=ended)
    for _result, own in results:
        for name, dt in own.items():
            timings[name] = round(timings.get(name, 0.0) + dt, 3)
    return {k: result for k, (result, _own) in zip(keys, results)}


def _run_entry(doc: dict) -> dict:
    """What a report keeps of a model's config.json: enough to know exactly which model it measured."""
    keep = ("key", "label", "model", "params", "tokens", "corpus", "training", "step", "train_bpt", "valid_bpt",
            "saved_at")
    return {k: doc.get(k) for k in keep if k in doc}


def training_curve(model_dir) -> dict:
    """The validation curve from a model's history.csv, and how much its last quarter still gained.

    `late_gain_bits` is valid bits/token at 75% of the steps minus at the end: near zero means the
    curve had flattened when training stopped (the bundled models' claim, checked in the README).
    """
    from engine.training.checkpoint import read_history
    from engine.training.early_stop import late_gain

    rows = [r for r in read_history(model_dir) if r.get("valid_bpt") is not None]
    curve = {"step": [r["step"] for r in rows], "train_bpt": [r.get("train_bpt") for r in rows],
             "valid_bpt": [r["valid_bpt"] for r in rows], "late_gain_bits": None, "late_from_step": None}
    gain = late_gain(curve["step"], curve["valid_bpt"])  # the figure the converged recipe's stop reads
    if gain is not None:
        curve["late_gain_bits"], curve["late_from_step"] = gain
    return curve


LEGACY_WINDOWS = ("TR_first", "TR_last", "RR_first", "RR_last", "downbeat_rate", "in_key_rate")


def summary_rows(report: dict, windows: dict) -> list[dict]:
    """The summary table at one temperature: one row per model, then the human reference and the floor.

    `windows` is {source: {"TR_first": stats, ...}} (engine.evaluation.continuations.window_block). The rows
    keep the first report's keys as plain numbers (the mean, None below min_n) and add the new
    figures as {"mean", "lo", "hi", "n"}: TR_excess_first/last, TR_floor_first/last, distinct_bar_rate,
    and n_first / n_last (primers with a value in each window).
    """
    rows = []
    for src in [*report["models"], "human", "floor"]:
        row: dict = {"source": src}
        if src in report["run"]["models"]:
            entry = report["run"]["models"][src]
            em = report["effective_memory"][src]
            row["valid_bpt"] = entry.get("valid_bpt")
            row["test_bpt"] = report["test_bits_per_token"][src]
            row["effective_memory_bars"] = em["bars"]
            row["effective_memory_steps"] = em["steps"]
            row["full_minus_best_bits"] = em.get("full_minus_best_bits")
            row["best_k"] = em.get("best_k")
            row["length_ok"] = em.get("length_ok")
            row["repeat_gain_bits"] = report["repeat_gain"][src]["gain"]
        stats = windows.get(src, {})
        for key in LEGACY_WINDOWS:
            if key in stats:
                row[key] = stats[key]["mean"]
        for key in ("TR_excess_first", "TR_excess_last", "TR_floor_first", "TR_floor_last", "distinct_bar_rate"):
            if key in stats:
                row[key] = stats[key]
        if "TR_first" in stats:
            row["n_first"], row["n_last"] = stats["TR_first"]["n"], stats["TR_last"]["n"]
        rows.append(row)
    return rows


