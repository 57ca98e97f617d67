"""The continuation half of the evaluation (docs/design.md section 5, "Protocol (revised ...)").

- Primers: every test tune with at least P + 16 full bars and notes in its primer (`--primers N`
  caps them with a seeded pick), in tune-id order. Each gets two fixed partners among the test tunes of
  its meter: the rhythm-matched one (closest primer onset pattern, engine/metrics/rhythm_floor.py), whose
  primer gives the floor of every theme measure, and a random one (seeded, `choose_floor`), the second
  floor line and the shared floor's source.
- Sources: each model continues each primer `samples` times for G bars at every temperature; the
  human reference is the tune's real continuation (bars P.. as far as it goes); the shared floor is
  the partner's opening bars scored against the primer (kept for comparison with the first report).
- Scores (engine.metrics.scoring): every per-bar metric of the table against the primer; for models
  and the human reference also the matched floor (the same continuation against the partner's
  primer) and TR_excess = TR - floor, paired per primer; the distinct-bar rate per continuation.
  A model's samples of one primer are averaged first: primers are the independent units.
- Statistics (engine.metrics.stats): mean and 95% bootstrap interval over primers with n on every
  series; null where n < min_n; no interval from fewer than 2 values. Blocks of the per_bar shape
  for all primers at each temperature (`by_temperature`) and per meter (`by_meter` at the first
  temperature, `by_temperature_and_meter` at each); `per_bar` is the first temperature's block.
- Summary windows: per primer, the mean over the first and the last 8 bars, then mean, interval and
  n over primers.

Continuations of primers with the same steps per bar are sampled as one batch through
engine.generation.generate.sample_tokens, the loop `generate` uses.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from itertools import count

import numpy as np

from engine.core.errors import UserError
from engine.evaluation.controls_section import SUMMARY_BARS, controls_block  # SUMMARY_BARS: the first and the last 8 bars
from engine.evaluation.settings import EvalSettings, EvaluationCancelled
from engine.metrics import PER_BAR
from engine.metrics.scoring import MATCHED, score_continuation
from engine.metrics.stats import per_bar_stats, scalar_stats, window_stats
from engine.music.melody import Melody

MIN_EXTRA_BARS = 16

REFERENCES = ("human", "floor")


def temperature_key(t: float) -> str:
    """The report's key for a temperature: "1.0", "0.7"."""
    return str(float(t))


# --- primers and partners -------------------------------------------------------------------------


def full_bars(melody: Melody) -> int:
    return melody.n_steps // melody.steps_per_bar


def eligible_primers(test: list[Melody], primer_bars: int) -> list[Melody]:
    """Test tunes with >= P + 16 full bars and notes in the primer, in tune-id order."""
    need = primer_bars + MIN_EXTRA_BARS
    return sorted((m for m in test if full_bars(m) >= need and m.bars(0, primer_bars).notes), key=lambda m: m.tune_id)


def choose_primers(test: list[Melody], settings: EvalSettings) -> list[Melody]:
    """Every eligible test tune, or `settings.primers` seeded picks among them."""
    eligible = eligible_primers(test, settings.primer_bars)
    if not eligible:
        raise UserError(
            f"no test-split tune has the {settings.primer_bars + MIN_EXTRA_BARS} bars a primer of "
            f"{settings.primer_bars} bars needs (P + {MIN_EXTRA_BARS}); use fewer --primer-bars or a larger corpus"
        )
    if settings.primers is None or len(eligible) <= settings.primers:
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


@dataclass(frozen=True)
class PrimerCase:
    tune: Melody  # the test tune
    primer: Melody  # its first P bars
    partner: Melody | None  # another test tune of the same meter (random): the shared floor and the second floor
    rhythm_partner: Melody | None = None  # the same-meter tune with the closest primer rhythm: the floor

    @property
    def meter(self) -> str:
        return self.tune.meter

    @property
    def floor_partner(self) -> Melody | None:
        """The tune whose primer gives the floor: the rhythm-matched partner (the random one for a case
        built without it)."""
        return self.rhythm_partner if self.rhythm_partner is not None else self.partner


def make_cases(test: list[Melody], settings: EvalSettings) -> list[PrimerCase]:
    from engine.metrics.rhythm_floor import rhythm_matched_partner

    primers = choose_primers(test, settings)
    return [PrimerCase(p, p.bars(0, settings.primer_bars), choose_floor(p, test, settings.seed, i),
                       rhythm_matched_partner(p, test, settings.primer_bars, settings.seed, i))
            for i, p in enumerate(primers)]


# --- sampling -------------------------------------------------------------------------------------


def _meter_groups(primers: list[Melody]) -> list[tuple[int, list[int]]]:
    """The primers' indices by steps per bar, in that order: one decoding batch each."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(primers):
        groups.setdefault(p.steps_per_bar, []).append(i)
    return sorted(groups.items())


def sample_rows(model, primers: list[Melody], token_config, settings: EvalSettings, temperature: float,
                cancel: threading.Event | None = None) -> dict[int, np.ndarray]:
    """The sampled tokens at `temperature`, {steps per bar: [that meter's primers x settings.samples, bars x steps
    per bar]}; what sample_continuations decodes (and all that a worker process sends back)."""
    from engine.generation.generate import GenerationCancelled, SampleSettings, fold_into_range, sample_tokens
    from engine.music.tokens import encode

    out = {}
    for spb, idx in _meter_groups(primers):
        prime = np.stack([encode(fold_into_range(primers[i], token_config), token_config)[: settings.primer_bars * spb]
                          for i in idx])
        sample_settings = SampleSettings(bars=settings.bars, temperature=temperature,
                                         variations=settings.samples, seed=settings.seed * 1000 + spb)
        try:
            out[spb] = sample_tokens(model, prime, settings.bars * spb, sample_settings, cancel).cpu().numpy()
        except GenerationCancelled:
            raise EvaluationCancelled("evaluation cancelled") from None
    return out


def decode_rows(primers: list[Melody], rows: dict[int, np.ndarray], token_config,
                settings: EvalSettings) -> list[list[Melody]]:
    """settings.samples continuations per primer from sample_rows' tokens, each keeping its tokens in meta."""
    from engine.generation.generate import fold_into_range
    from engine.music.tokens import decode

    out: list[list[Melody]] = [[] for _ in primers]
    for spb, idx in _meter_groups(primers):
        for j, i in enumerate(idx):
            folded = fold_into_range(primers[i], token_config)
            for s in range(settings.samples):
                row = rows[spb][j * settings.samples + s]
                melody = decode(row, folded, token_config)
                # the sampled tokens, as generate() keeps them: influence attributes what the model saw
                out[i].append(replace(melody, meta={**melody.meta, "tokens": row}))
    return out


def sample_continuations(model, primers: list[Melody], token_config, settings: EvalSettings, temperature: float,
                         cancel: threading.Event | None = None) -> list[list[Melody]]:
    """settings.samples continuations per primer at `temperature`; one decoding batch per steps-per-bar."""
    return decode_rows(primers, sample_rows(model, primers, token_config, settings, temperature, cancel), token_config,
                       settings)


def matched_lengths(cases: list[PrimerCase], settings: EvalSettings) -> list[int]:
    """Bars of each primer's real continuation (at most G): the length the distinct-bar rate is matched over."""
    P, G = settings.primer_bars, settings.bars
    return [min(G, c.tune.bars(P, P + G).n_bars) for c in cases]


def _sample_and_score(model, token_config, cases: list[PrimerCase], settings: EvalSettings, temperature: float,
                      cancel=None) -> dict:
    """One model at one temperature: {"rows": sample_rows' tokens, "continuations": them decoded, "scores"}."""
    primers = [c.primer for c in cases]
    rows = sample_rows(model, primers, token_config, settings, temperature, cancel)
    conts = decode_rows(primers, rows, token_config, settings)
    return {"rows": rows, "continuations": conts,
            "scores": score_source(cases, conts, settings, matched=True, matched_lengths=matched_lengths(cases, settings))}


def _sample_in_worker(run_dir: str, key: str, temperature: float, cases: list[PrimerCase], settings: EvalSettings,
                      stop=None) -> dict:
    """_sample_and_score in a worker process (engine/core/processes.run_jobs), the model loaded from its run. The
    tokens travel back rather than the continuations (a quarter of the size): they are decoded again there."""
    from engine.training.checkpoint import load_model

    loaded = load_model(run_dir, key, "cpu")
    got = _sample_and_score(loaded.model, loaded.token_config, cases, settings, temperature, stop)
    del got["continuations"]
    return got


def sample_all(run_dir, models: dict, cases: list[PrimerCase], settings: EvalSettings, say=None,
               cancel: threading.Event | None = None) -> dict[tuple[str, str], dict]:
    """{(temperature key, model key): {"rows": sample_rows' tokens, "scores": score_source's Scores,
    "continuations" (when sampled here)}} for every temperature and model of `models` {key: (model, token_config)}:
    in worker processes that load each model from `run_dir` when settings.processes > 1, else here on `models`
    in turn. measure_continuations(sampled=...) takes them from there. (With one process, evaluate() lets
    measure_continuations sample instead: one model and temperature's continuations in memory at a time.)"""
    from functools import partial

    from engine.core.processes import run_jobs

    jobs = [(key, temperature) for temperature in settings.temperatures for key in models]
    what = f"{len(cases)} x {settings.samples} continuations"

    def here(key, temperature, stop=None):
        if say is not None:
            say("generate", f"{key}: sampling and scoring {what} at temperature {temperature:g}",
                jobs.index((key, temperature)), len(jobs), key)
        model, token_config = models[key]
        return _sample_and_score(model, token_config, cases, settings, temperature, stop)

    finished = count(1)

    def ended(n: int, _got) -> None:
        if say is not None and settings.processes > 1:
            key, temperature = jobs[n]
            say("generate", f"{key}: sampled and scored {what} at temperature {temperature:g}", next(finished),
                len(jobs), key)

    if say is not None and settings.processes > 1:
        say("generate", f"sampling and scoring {what} for {len(models)} models at {len(settings.temperatures)} "
                        f"temperatures in {min(settings.processes, len(jobs))} worker processes", 0, len(jobs))
    got = run_jobs(partial(_sample_in_worker, str(run_dir), cases=cases, settings=settings), jobs, settings.processes,
                   inline=here, cancel=cancel, cancelled=EvaluationCancelled, on_result=ended)
    return {(temperature_key(t), key): g for (key, t), g in zip(jobs, got)}


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class Scores:
    """One source's raw scores: per series a [primers, G] matrix, and a distinct-bar rate per primer."""

    series: dict[str, np.ndarray]
    distinct: np.ndarray
    distinct_matched: np.ndarray | None = None  # over each primer's matched length (human continuations')


def score_source(cases: list[PrimerCase], continuations: list[list[Melody | None]], settings: EvalSettings,
                 matched: bool, matched_lengths: list[int] | None = None) -> Scores:
    """Score each primer's continuations (averaged over its samples; None = no continuation).

    `matched_lengths` (bars per primer): the distinct-bar rate is also taken over the first that many bars
    of each continuation (or all of a shorter one): model and human scored over the same bars."""
    from engine.metrics.bars import distinct_bar_rate
    from engine.metrics.phase import beat_steps

    P, G = settings.primer_bars, settings.bars
    rows: list[dict[str, np.ndarray]] = []
    distinct = np.full(len(cases), np.nan)
    distinct_matched = None if matched_lengths is None else np.full(len(cases), np.nan)
    for i, (case, conts) in enumerate(zip(cases, continuations)):
        S = case.primer.steps_per_bar
        floor_partner, random_partner = case.floor_partner, case.partner
        partner = None if floor_partner is None else floor_partner.bars(0, P).note_array()
        random_notes = None if random_partner is None else random_partner.bars(0, P).note_array()
        beat = beat_steps(case.tune.numerator, case.tune.denominator)
        per_sample, rates, matched_rates = [], [], []
        for cont in conts:
            if cont is None:
                continue
            values, rate = score_continuation(case.primer.note_array(), cont.note_array(), S, G, P,
                                              length=min(G, cont.n_bars), partner_primer_notes=partner,
                                              matched=matched, random_partner_primer_notes=random_notes, beat=beat)
            per_sample.append(values)
            rates.append(rate)
            if matched_lengths is not None and (length := min(G, cont.n_bars, matched_lengths[i])) > 0:
                matched_rates.append(distinct_bar_rate(cont.note_array(), S, length))
        keys = [*PER_BAR, *(MATCHED if matched else ())]
        if not per_sample:
            rows.append({k: np.full(G, np.nan) for k in keys})
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bars past a tune's end are expected
            rows.append({k: np.nanmean(np.stack([v[k] for v in per_sample]), axis=0) for k in keys})
            distinct[i] = np.nanmean(rates) if rates else np.nan
            if distinct_matched is not None and matched_rates:
                distinct_matched[i] = np.nanmean(matched_rates)
    keys = list(rows[0]) if rows else list(PER_BAR)
    return Scores({k: np.stack([r[k] for r in rows]) if rows else np.zeros((0, G)) for k in keys}, distinct,
                  distinct_matched)


def _ssm(primer: Melody, continuation: Melody | None, settings: EvalSettings) -> np.ndarray:
    """SSM over primer + continuation bars (P + G), NaN past the continuation's end."""
    from engine.metrics import self_similarity

    P, G, S = settings.primer_bars, settings.bars, primer.steps_per_bar
    out = np.full((P + G, P + G), np.nan)
    notes = primer.note_array()
    n = P
    if continuation is not None:
        if len(continuation.notes):
            cont = continuation.note_array().copy()
            cont[:, 0] += P * S
            notes = np.concatenate([notes, cont])
        n = P + min(G, continuation.n_bars)
    out[:n, :n] = self_similarity(notes, S, n)
    return out


def mean_ssm(cases: list[PrimerCase], continuations: list[Melody | None], settings: EvalSettings) -> np.ndarray:
    """The mean SSM over primers; NaN in cells that fewer than min_n primers reach (tunes end early)."""
    stack = np.stack([_ssm(c.primer, x, settings) for c, x in zip(cases, continuations)])
    count = np.count_nonzero(~np.isnan(stack), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
    return np.round(np.where(count >= settings.min_n, mean, np.nan), 4)


# --- statistics -----------------------------------------------------------------------------------


def series_block(scores: dict[str, Scores], rows: np.ndarray, settings: EvalSettings) -> dict:
    """The per_bar shape {series: {source: {"mean", "lo", "hi", "n"}}} over the primers `rows`."""
    names = [*PER_BAR, *MATCHED]
    block: dict[str, dict] = {}
    for name in names:
        block[name] = {
            src: per_bar_stats(sc.series[name][rows], settings.bootstrap, settings.seed, settings.min_n)
            for src, sc in scores.items() if name in sc.series
        }
    return block


def distinct_block(scores: dict[str, Scores], rows: np.ndarray, settings: EvalSettings) -> dict:
    return {src: scalar_stats(sc.distinct[rows], settings.bootstrap, settings.seed, settings.min_n)
            for src, sc in scores.items() if src != "floor"}


SUMMARY_WINDOWS = (  # summary key, series, window ("first" / "last" SUMMARY_BARS, or "all")
    ("TR", "TR", "first"), ("TR", "TR", "last"),
    ("TR_excess", "TR_excess", "first"), ("TR_excess", "TR_excess", "last"),
    ("TR_floor", "TR_floor", "first"), ("TR_floor", "TR_floor", "last"),
    ("RR", "RR", "first"), ("RR", "RR", "last"),
    ("downbeat_rate", "downbeat", "all"), ("in_key_rate", "IK", "all"),
)


def window_block(scores: dict[str, Scores], settings: EvalSettings) -> dict:
    """{source: {"TR_first": stats, "TR_last": stats, ..., "distinct_bar_rate": stats}} over all primers."""
    G = settings.bars
    k = min(SUMMARY_BARS, G)
    spans = {"first": (0, k), "last": (G - k, G), "all": (0, G)}
    out = {}
    for src, sc in scores.items():
        entry = {}
        for name, series, window in SUMMARY_WINDOWS:
            if series not in sc.series:
                continue
            key = name if window == "all" else f"{name}_{window}"
            entry[key] = window_stats(sc.series[series], *spans[window], settings.bootstrap, settings.seed,
                                      settings.min_n)
        if src != "floor":
            entry["distinct_bar_rate"] = scalar_stats(sc.distinct, settings.bootstrap, settings.seed, settings.min_n)
        out[src] = entry
    return out


# --- the whole continuation half ------------------------------------------------------------------


def measure_continuations(models: dict, cases: list[PrimerCase], settings: EvalSettings, say=None,
                          cancel: threading.Event | None = None, observe=None, sampled: dict | None = None) -> dict:
    """The report's continuation parts for `models` {key: (model, token_config)} on `cases`.

    `sampled`: sample_all's tokens and scores of every model and temperature (taken from it in turn); None
    samples and scores each model here in turn.

    `observe(temperature_key, model_key, continuations)`, when given, sees every primer's samples as they
    are made (the originality meter measures them there, so that they need not all be kept).

    Returns per_bar, by_temperature, by_meter, by_temperature_and_meter, distinct_bar_rate,
    distinct_bar_rate_by_temperature, windows_by_temperature (the summary's window figures), meters,
    ssm (first temperature), examples (first temperature, first primer, first sample) and first_samples
    ({model: the first sample of every primer at the first temperature}, each with its sampled tokens).
    """
    P, G = settings.primer_bars, settings.bars

    def report_progress(message, done=0, total=0, model=None):
        if cancel is not None and cancel.is_set():
            raise EvaluationCancelled("evaluation cancelled")
        if say is not None:
            say("generate", message, done, total, model)

    human_lengths = matched_lengths(cases, settings)  # the matched length of each primer
    references = {
        "human": score_source(cases, [[c.tune.bars(P, P + G)] for c in cases], settings, matched=True,
                              matched_lengths=human_lengths),
        "floor": score_source(cases, [[None if c.partner is None else c.partner.bars(0, G)] for c in cases],
                              settings, matched=False),
    }
    ssm = {"human": mean_ssm(cases, [c.tune.bars(P, P + G) for c in cases], settings)}
    examples = {}
    first_samples: dict[str, list[Melody]] = {}
    by_t: dict[str, dict[str, Scores]] = {}
    primers = [c.primer for c in cases]
    total = len(models) * len(settings.temperatures)
    done = 0
    for t_index, temperature in enumerate(settings.temperatures):
        scores: dict[str, Scores] = {}
        for key, (model, token_config) in models.items():
            if sampled is None:
                report_progress(f"{key}: sampling {len(cases)} x {settings.samples} continuations at temperature "
                                f"{temperature:g}", done, total, key)
                conts = sample_continuations(model, primers, token_config, settings, temperature, cancel)
                scores[key] = score_source(cases, conts, settings, matched=True, matched_lengths=human_lengths)
            else:
                report_progress(f"{key}: originality at temperature {temperature:g}", done, total, key)
                got = sampled.pop((temperature_key(temperature), key))
                conts = got["continuations"] if "continuations" in got else decode_rows(primers, got["rows"],
                                                                                         token_config, settings)
                scores[key] = got["scores"]
            if observe is not None:
                observe(temperature_key(temperature), key, conts)
            if t_index == 0:
                first_samples[key] = [c[0] for c in conts]
                ssm[key] = mean_ssm(cases, [c[0] for c in conts], settings)
                examples[key] = {"primer": cases[0].tune.tune_id, "temperature": temperature,
                                 "notes": conts[0][0].note_array().tolist()}
            done += 1
        by_t[temperature_key(temperature)] = {**scores, **references}

    meters = Counter(c.meter for c in cases)
    meter_order = sorted(meters, key=lambda m: (-meters[m], m))
    every = np.arange(len(cases))
    meter_rows = {m: np.array([i for i, c in enumerate(cases) if c.meter == m]) for m in meter_order}
    first = temperature_key(settings.temperatures[0])
    by_temperature = {t: series_block(sc, every, settings) for t, sc in by_t.items()}
    by_temperature_and_meter = {t: {m: series_block(sc, rows, settings) for m, rows in meter_rows.items()}
                                for t, sc in by_t.items()}
    distinct = {t: distinct_block(sc, every, settings) for t, sc in by_t.items()}
    return {
        "meters": {m: {"primers": meters[m], "steps_per_bar": next(c.primer.steps_per_bar for c in cases
                                                                    if c.meter == m)} for m in meter_order},
        "per_bar": by_temperature[first],
        "by_temperature": by_temperature,
        "by_meter": by_temperature_and_meter[first],
        "by_temperature_and_meter": by_temperature_and_meter,
        "distinct_bar_rate": distinct[first],
        "distinct_bar_rate_by_temperature": distinct,
        "windows_by_temperature": {t: window_block(sc, settings) for t, sc in by_t.items()},
        **controls_block(by_t, list(models), first, settings),
        "self_similarity": ssm,
        "examples": examples,
        "first_samples": first_samples,  # not a report key: evaluate() attributes these (influence) and drops them
    }
