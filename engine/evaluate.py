"""The evaluation protocol (docs/design.md section 5): how long each model keeps the theme and rhythm.

Protocol, all seeded so that a report reproduces exactly:
- Primers: `primers` test-split tunes with at least P + 16 full bars, drawn with the seed and kept in
  tune-id order. Each model continues each primer `samples` times for G bars at the temperature.
- Human reference: the tune's real continuation, bars P.. as far as the tune goes (NaN after).
- Floor: the opening bars of a different test tune of the same meter (as far as it goes): what the
  per-bar metrics give for music that never heard the primer.
- Per-bar metrics from engine.metrics.continuation_metrics against the primer. A model's samples of
  one primer are averaged first; the mean and 95% interval per bar come from a bootstrap over primers
  (the primers are the independent units; samples of one primer are not).
- Model side on every test tune: NLL per bar, effective memory, repeat gain, gradient memory; and the
  synthetic theme-recall probe with fresh models of each architecture.

Continuations of primers that share a meter are sampled as one batch through the models' own step
functions and engine.generate.sample_next (the same sampler `generate` uses), so that 32 primers x 2
samples cost one decoding loop per meter instead of 32.

Entry point for the CLI and the GUI: `evaluate(run_dir, models, settings, progress, cancel)`; progress
receives dicts {"stage", "message", "done", "total", "model"}; setting `cancel` raises EvaluationCancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .melody import Melody
from .memory import gradient, nll
from .memory.probe import ProbeCancelled, ProbeSettings, run_probe

MIN_EXTRA_BARS = 16
SUMMARY_BARS = 8  # TR and RR are summarised over the first and the last 8 bars of the continuation


class EvaluationCancelled(Exception):
    """Raised by evaluate() when its cancel event is set."""


@dataclass(frozen=True)
class EvalSettings:
    primers: int = 32
    primer_bars: int = 8  # P
    bars: int = 64  # G
    samples: int = 2  # per primer per model
    temperature: float = 1.0
    seed: int = 0
    bootstrap: int = 1000
    # model side; sizes chosen so that five small models evaluate within the 3-minute budget
    nll_bars: int = 64  # bars of NLL per bar plotted
    memory_targets: int = 384  # effective memory: sampled target positions (>= min_position)
    memory_min_position: int = 256
    gradient_positions: int = 32
    gradient_max_k: int = 512
    probe: ProbeSettings | None = field(default_factory=ProbeSettings)  # None skips the probe
    device: str = "auto"
    # torch CPU threads while evaluating (restored after). The work is many small batched steps: on
    # this 2-core machine, shared, 2 threads made sampling 30x slower than 1 (73 s vs 2.3 s), so 1.
    threads: int | None = 1

    def validate(self) -> None:
        if not 1 <= self.primers <= 10000:
            raise UserError(f"--primers must be between 1 and 10000, not {self.primers}")
        if not 1 <= self.primer_bars <= 256:
            raise UserError(f"--primer-bars must be between 1 and 256, not {self.primer_bars}")
        if not 1 <= self.bars <= 1024:
            raise UserError(f"--bars must be between 1 and 1024, not {self.bars}")
        if self.samples < 1:
            raise UserError(f"samples per primer must be at least 1, not {self.samples}")
        if not self.temperature > 0:
            raise UserError(f"temperature must be above 0, not {self.temperature}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["probe"] = None if self.probe is None else self.probe.to_dict()
        return out


Progress = Callable[[dict], None]


# --- statistics ----------------------------------------------------------------------------------


def bootstrap_interval(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """(mean, lo, hi) of the mean of `values` (NaNs dropped): percentile bootstrap, seeded."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if values.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return mean, float(min(lo, mean)), float(max(hi, mean))


def per_bar_stats(matrix, n_boot: int = 1000, seed: int = 0) -> dict:
    """matrix [units, bars] (NaN = missing) -> {"mean", "lo", "hi", "n"} lists over bars."""
    matrix = np.asarray(matrix, dtype=float)
    out = {"mean": [], "lo": [], "hi": [], "n": []}
    for b in range(matrix.shape[1] if matrix.ndim == 2 else 0):
        mean, lo, hi = bootstrap_interval(matrix[:, b], n_boot, seed + b)
        out["mean"].append(mean)
        out["lo"].append(lo)
        out["hi"].append(hi)
        out["n"].append(int(np.count_nonzero(~np.isnan(matrix[:, b]))))
    return out


# --- primers, references, floors ------------------------------------------------------------------


def full_bars(melody: Melody) -> int:
    return melody.n_steps // melody.steps_per_bar


def choose_primers(test: list[Melody], settings: EvalSettings) -> list[Melody]:
    """`settings.primers` seeded picks among test tunes with >= P + 16 full bars and notes in the primer."""
    need = settings.primer_bars + MIN_EXTRA_BARS
    eligible = sorted(
        (m for m in test if full_bars(m) >= need and m.bars(0, settings.primer_bars).notes),
        key=lambda m: m.tune_id,
    )
    if not eligible:
        raise UserError(
            f"no test-split tune has the {need} bars a primer of {settings.primer_bars} bars needs "
            f"(P + {MIN_EXTRA_BARS}); use fewer --primer-bars or a larger corpus"
        )
    if len(eligible) <= settings.primers:
        return eligible
    rng = np.random.default_rng([settings.seed, 11])
    picks = np.sort(rng.choice(len(eligible), size=settings.primers, replace=False))
    return [eligible[i] for i in picks]


def choose_floor(primer: Melody, test: list[Melody], seed: int, index: int) -> Melody | None:
    """A different test tune of the same meter (seeded), or None when there is none."""
    same = sorted((m for m in test if m.meter == primer.meter and m.tune_id != primer.tune_id and m.notes),
                  key=lambda m: m.tune_id)
    if not same:
        return None
    return same[int(np.random.default_rng([seed, 13, index]).integers(len(same)))]


def _bar_metrics(primer: Melody, continuation: Melody | None, settings: EvalSettings) -> dict[str, np.ndarray]:
    """Per-bar metrics of a continuation (its bar 0 follows the primer), NaN past its end."""
    from .metrics import PER_BAR, continuation_metrics

    G, S = settings.bars, primer.steps_per_bar
    out = {name: np.full(G, np.nan) for name in PER_BAR}
    if continuation is None:
        return out
    n = min(G, continuation.n_bars)
    if n <= 0:
        return out
    values = continuation_metrics(primer.note_array(), continuation.note_array(), S, n, settings.primer_bars)
    for name in PER_BAR:
        out[name][:n] = values[name]
    return out


def _ssm(primer: Melody, continuation: Melody | None, settings: EvalSettings) -> np.ndarray:
    """SSM over primer + continuation bars (P + G), NaN past the continuation's end."""
    from .metrics import self_similarity

    P, G, S = settings.primer_bars, settings.bars, primer.steps_per_bar
    total = P + G
    out = np.full((total, total), np.nan)
    notes = primer.note_array()
    n = P
    if continuation is not None and len(continuation.notes):
        cont = continuation.note_array().copy()
        cont[:, 0] += P * S
        notes = np.concatenate([notes, cont])
        n = P + min(G, continuation.n_bars)
    elif continuation is not None:
        n = P + min(G, continuation.n_bars)
    out[:n, :n] = self_similarity(notes, S, n)
    return out


# --- sampling ---------------------------------------------------------------------------------------


def sample_continuations(model, primers: list[Melody], token_config, settings: EvalSettings,
                         cancel: threading.Event | None = None, temperature: float | None = None) -> list[list[Melody]]:
    """settings.samples continuations per primer; primers of one meter share one decoding batch.

    The decoding loop is engine.generate.sample_tokens (the one `generate` uses), fed a batch of
    equal-length primers: the primers of one steps-per-bar group.
    """
    from .generate import GenerationCancelled, SampleSettings, fold_into_range, sample_tokens
    from .tokens import decode, encode

    temperature = settings.temperature if temperature is None else temperature
    out: list[list[Melody]] = [[] for _ in primers]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(primers):
        groups.setdefault(p.steps_per_bar, []).append(i)
    for spb, idx in sorted(groups.items()):
        folded = [fold_into_range(primers[i], token_config) for i in idx]
        prime = np.stack([encode(m, token_config)[: settings.primer_bars * spb] for m in folded])
        sample_settings = SampleSettings(bars=settings.bars, temperature=temperature,
                                         variations=settings.samples, seed=settings.seed * 1000 + spb)
        try:
            rows = sample_tokens(model, prime, settings.bars * spb, sample_settings, cancel).cpu().numpy()
        except GenerationCancelled:
            raise EvaluationCancelled("evaluation cancelled") from None
        for j, i in enumerate(idx):
            for s in range(settings.samples):
                out[i].append(decode(rows[j * settings.samples + s], folded[j], token_config))
    return out


# --- the protocol -----------------------------------------------------------------------------------


def evaluate(run_dir, models=None, settings: EvalSettings = EvalSettings(), progress: Progress | None = None,
             cancel: threading.Event | None = None, corpus=None, sources=None) -> dict:
    """Run the whole protocol on the models of a run directory; returns the report dict.

    `corpus` may be passed in (the GUI has one loaded); otherwise it is loaded from `sources` (None =
    the bundled corpus). Timings go to report["timings"] and are the only entries that vary between
    two runs with the same settings.
    """
    import torch

    before = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _evaluate(run_dir, models, settings, progress, cancel, corpus, sources)
    finally:
        torch.set_num_threads(before)


def _evaluate(run_dir, models, settings: EvalSettings, progress: Progress | None, cancel, corpus, sources) -> dict:
    import torch

    from .checkpoint import list_run_models, load_model
    from .device import resolve_device

    settings.validate()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    available = list_run_models(run_dir)
    keys = list(models) if models else available
    if not keys:
        raise UserError(f"{run_dir}: no trained model in this run directory")
    missing = [k for k in keys if k not in available]
    if missing:
        raise UserError(f"{run_dir}: no trained {', '.join(missing)} here (found: {', '.join(available) or 'none'})")

    timings: dict[str, float] = {}
    clock = time.monotonic()

    def tick(name):
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(timings.get(name, 0.0) + now - clock, 3)
        clock = now

    def say(stage, message, done=0, total=0, model=None):
        if cancel is not None and cancel.is_set():
            raise EvaluationCancelled("evaluation cancelled")
        if progress is not None:
            progress({"stage": stage, "message": message, "done": done, "total": total, "model": model})

    device = resolve_device(settings.device)
    say("load", f"loading {len(keys)} models")
    loaded = {k: load_model(run_dir, k, device) for k in keys}
    if corpus is None:
        from .corpus import load_corpus

        say("load", "loading the corpus")
        corpus = load_corpus(sources)
    tick("load")
    trained_on = {loaded[k].config.get("corpus") for k in keys}
    if trained_on != {corpus.fingerprint}:
        say("load", f"warning: the models were trained on corpus {', '.join(sorted(map(str, trained_on)))}, "
                    f"this is corpus {corpus.fingerprint}: pass the run's --source so that test tunes stay unseen")
    test = corpus.split("test")
    test_tokens = corpus.tokens("test")
    if not test:
        raise UserError("the corpus has no test-split tunes to evaluate on")
    primers = choose_primers(test, settings)
    floors = [choose_floor(p, test, settings.seed, i) for i, p in enumerate(primers)]
    P, G = settings.primer_bars, settings.bars
    primer_parts = [p.bars(0, P) for p in primers]

    # references: the human continuation and the floor
    per_bar_raw: dict[str, dict[str, np.ndarray]] = {}
    ssm: dict[str, np.ndarray] = {}
    for name, conts in (
        ("human", [p.bars(P, P + G) for p in primers]),
        ("floor", [None if f is None else f.bars(0, G) for f in floors]),
    ):
        rows = [_bar_metrics(pp, c, settings) for pp, c in zip(primer_parts, conts)]
        per_bar_raw[name] = {m: np.stack([r[m] for r in rows]) for m in rows[0]}
        ssm[name] = np.nanmean(np.stack([_ssm(pp, c, settings) for pp, c in zip(primer_parts, conts)]), axis=0) \
            if name == "human" else None
    ssm = {k: v for k, v in ssm.items() if v is not None}
    tick("references")

    model_side: dict[str, dict] = {}
    examples: dict[str, dict] = {}
    with torch.no_grad():
        for n, key in enumerate(keys):
            model = loaded[key].model
            say("generate", f"{key}: sampling {len(primers)} x {settings.samples} continuations", n, len(keys), key)
            conts = sample_continuations(model, primer_parts, loaded[key].token_config, settings, cancel)
            rows, ssms = [], []
            for pp, samples in zip(primer_parts, conts):
                sample_rows = [_bar_metrics(pp, c, settings) for c in samples]
                with np.errstate(invalid="ignore"), _quiet():
                    rows.append({m: np.nanmean(np.stack([r[m] for r in sample_rows]), axis=0) for m in sample_rows[0]})
                ssms.append(_ssm(pp, samples[0], settings))
            per_bar_raw[key] = {m: np.stack([r[m] for r in rows]) for m in rows[0]}
            with _quiet():
                ssm[key] = np.nanmean(np.stack(ssms), axis=0)
            examples[key] = {"primer": primers[0].tune_id, "notes": conts[0][0].note_array().tolist()}
            tick("generate")

    for n, key in enumerate(keys):
        say("memory", f"{key}: NLL per bar, effective memory, repeat gain, gradient memory", n, len(keys), key)
        model = loaded[key].model
        model_side[key] = _model_side(model, test, test_tokens, settings, timings)
    clock = time.monotonic()

    probe = None
    if settings.probe is not None:
        def probe_progress(event):
            if event["step"] % 25 == 0 or event["step"] == event["steps"]:
                say("probe", f"probe: training {event['model']} step {event['step']}/{event['steps']}",
                    event["step"], event["steps"], event["model"])
        try:
            probe = run_probe(keys, settings.probe, probe_progress, cancel)
        except ProbeCancelled:
            raise EvaluationCancelled("evaluation cancelled") from None
        tick("probe")

    say("report", "summarising")
    sources_order = [*keys, "human", "floor"]
    per_bar = {
        metric: {src: per_bar_stats(per_bar_raw[src][metric], settings.bootstrap, settings.seed)
                 for src in sources_order}
        for metric in per_bar_raw["human"]
    }
    report = {
        "format": "melody-memory-report/1",
        "settings": settings.to_dict(),
        "run": {
            "dir": str(run_dir),
            "models": {k: _run_entry(loaded[k].config) for k in keys},
        },
        "corpus": {"fingerprint": corpus.fingerprint, "sources": list(getattr(corpus, "sources", [])),
                   "test_tunes": len(test),
                   # False when a model was trained on another corpus: its "test" tunes may be training data
                   "matches_run": all(loaded[k].config.get("corpus") == corpus.fingerprint for k in keys)},
        "models": keys,
        "primers": [
            {"tune_id": p.tune_id, "title": p.title, "meter": p.meter, "bars": p.n_bars,
             "floor_tune_id": None if f is None else f.tune_id}
            for p, f in zip(primers, floors)
        ],
        "per_bar": per_bar,
        "ssm": {k: v.tolist() for k, v in ssm.items()},
        "nll_per_bar": {k: v["nll_per_bar"] for k, v in model_side.items()},
        "test_bits_per_token": {k: v["test_bpt"] for k, v in model_side.items()},
        "effective_memory": {k: v["effective_memory"] for k, v in model_side.items()},
        "repeat_gain": {k: v["repeat_gain"] for k, v in model_side.items()},
        "gradient_memory": {k: v["gradient_memory"] for k, v in model_side.items()},
        "probe": probe,
        "examples": examples,
        "training_curves": {k: training_curve(run_dir / k) for k in keys},
    }
    report["summary"] = summary_rows(report)
    tick("summary")
    report["timings"] = timings
    return _clean(report)


class _quiet:
    """Silence numpy's 'mean of empty slice' warnings: all-NaN columns are expected past a tune's end."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _model_side(model, test: list[Melody], test_tokens, settings: EvalSettings, timings: dict) -> dict:
    started = time.monotonic()
    bits = nll.token_bits(model, test_tokens)
    spb = [m.steps_per_bar for m in test]
    matrix = nll.nll_per_bar_matrix(bits, spb, settings.nll_bars)
    result = {
        "test_bpt": nll.mean_bits(bits),
        "nll_per_bar": per_bar_stats(matrix, settings.bootstrap, settings.seed),
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
    from .checkpoint import read_history

    rows = [r for r in read_history(model_dir) if r.get("valid_bpt") is not None]
    curve = {"step": [r["step"] for r in rows], "train_bpt": [r.get("train_bpt") for r in rows],
             "valid_bpt": [r["valid_bpt"] for r in rows], "late_gain_bits": None, "late_from_step": None}
    if len(rows) >= 4:
        last = rows[-1]
        quarter = min(rows, key=lambda r: abs(r["step"] - 0.75 * last["step"]))
        curve["late_gain_bits"] = quarter["valid_bpt"] - last["valid_bpt"]
        curve["late_from_step"] = quarter["step"]
    return curve


def _window_mean(stats: dict, lo: int, hi: int) -> float:
    values = np.array(stats["mean"][lo:hi], dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def summary_rows(report: dict) -> list[dict]:
    """The summary table: one row per model, then the human reference and the floor."""
    G = report["settings"]["bars"]
    k = min(SUMMARY_BARS, G)
    per_bar = report["per_bar"]
    rows = []
    for src in [*report["models"], "human", "floor"]:
        row = {"source": src}
        if src in report["run"]["models"]:
            entry = report["run"]["models"][src]
            row["valid_bpt"] = entry.get("valid_bpt")
            row["test_bpt"] = report["test_bits_per_token"][src]
            row["effective_memory_bars"] = report["effective_memory"][src]["bars"]
            row["effective_memory_steps"] = report["effective_memory"][src]["steps"]
            row["repeat_gain_bits"] = report["repeat_gain"][src]["gain"]
        row["TR_first"] = _window_mean(per_bar["TR"][src], 0, k)
        row["TR_last"] = _window_mean(per_bar["TR"][src], G - k, G)
        row["RR_first"] = _window_mean(per_bar["RR"][src], 0, k)
        row["RR_last"] = _window_mean(per_bar["RR"][src], G - k, G)
        row["downbeat_rate"] = _window_mean(per_bar["downbeat"][src], 0, G)
        row["in_key_rate"] = _window_mean(per_bar["IK"][src], 0, G)
        rows.append(row)
    return rows


def _clean(obj):
    """JSON-ready: numpy scalars/arrays to Python, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
