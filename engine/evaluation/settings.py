"""What an evaluation may be asked (EvalSettings, range-checked) and how it is cancelled: shared by the
protocol (evaluate.py) and the sampled continuations (continuations.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.core.settings import Setting, Settings
from engine.core.validation import Limit
from engine.memory.probe import ProbeSettings

MAX_TEMPERATURES = 8
class EvaluationCancelled(Exception):
    """Raised by evaluate() when its cancel event is set."""


@dataclass(frozen=True)
class EvalSettings:
    primers: int | None = None  # cap on the primers (seeded pick); None = every eligible test tune
    primer_bars: int = 8  # P
    bars: int = 64  # G
    samples: int = 2  # per primer per model per temperature
    # the sweep (issue 24): the report's top-level per_bar, summary and influence are at the first; every
    # per-bar series and summary is given at each under by_temperature / summary_by_temperature
    temperatures: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7)
    min_n: int = 10  # a per-bar mean (and every summary figure) needs at least this many primers
    seed: int = 0
    bootstrap: int = 1000
    # model side; sizes chosen so that five small models evaluate within the 5-minute budget
    nll_bars: int = 64  # bars of NLL per bar plotted
    # effective memory: sampled target positions (>= min_position). 1,536 because the length check compares
    # NLL_full with the best NLL_k to 0.005 bits: with 384 targets the LSTM's gap had a 95% interval of
    # +-0.016 bits, three times that tolerance; with 1,536 no bundled model's interval is wider than 0.007.
    memory_targets: int = 1536
    memory_min_position: int = 256
    gradient_positions: int = 32
    gradient_max_k: int = 512
    probe: ProbeSettings | None = field(default_factory=ProbeSettings)  # None skips the probe
    device: str = "auto"
    # torch CPU threads while evaluating (restored after). The work is many small batched steps: on
    # this 2-core machine, shared, 2 threads made sampling 30x slower than 1 (73 s vs 2.3 s), so 1.
    threads: int | None = 1
    # Influence distance: the continuations of the first N primers (0 skips it). Measured here (CPU, one
    # thread, paired runs): 32 added 83 s of CPU to the 151 s of a full evaluation of the five bundled
    # models, about 0.5 s per continuation per model; 24 keep the whole near 215 s, inside the 5-minute
    # budget with room for a busy machine, and still give a bootstrap interval over 24 continuations.
    influence_primers: int = 24
    # Recall by distance (issue 23): teacher-forced, every test tune; False skips it (--no-recall).
    recall: bool = True
    # Worker processes (one torch thread each) for the stages made of independent jobs: sampling (a model at a
    # temperature), the model side (a model), recall by distance (a model of a seed run), the probe (a model
    # with a seed). The report is the same with any number: every job seeds itself. 1: all in this process.
    processes: int = 1

    def validate(self) -> None:
        """Range-check every setting (engine/core/validation.py) before anything is loaded; the messages name
        the command line's flags."""
        EVAL_SETTINGS.check(self)  # the temperatures too: a tuple from a list or from text with commas
        if self.probe is not None:
            self.probe.validate()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["temperatures"] = [float(t) for t in self.temperatures]
        out["probe"] = None if self.probe is None else self.probe.to_dict()
        return out


# The one definition of every evaluation setting (engine/core/settings.py): the CLI's flags, the Memory tab's
# fields, validation and docs/settings.md; the defaults are EvalSettings' own.
EVAL_SETTINGS = Settings(
    EvalSettings,
    Setting("primers", "Primers", Limit("int", 1, 10000, optional=True),
            "cap on the primers (a seeded pick of the eligible test tunes); unset: every eligible test tune"),
    Setting("primer_bars", "Primer bars", Limit("int", 1, 256), "bars P of each test tune the models hear", unit="bars"),
    Setting("bars", "Bars to continue", Limit("int", 1, 1024), "bars G each model continues", unit="bars"),
    Setting("samples", "Samples", Limit("int", 1, 64), "continuations per primer, model and temperature"),
    Setting("temperatures", "Temperatures", Limit("float", 0.01, 10, count=(1, MAX_TEMPERATURES)),
            "sampling temperatures; the first is the report's headline"),
    Setting("min_n", "Fewest primers", Limit("int", 1, 10000),
            "a per-bar mean (and every summary figure) needs at least this many primers"),
    Setting("seed", "Seed", Limit("int", 0, 2**32 - 1), "seed of every random choice"),
    Setting("bootstrap", "Bootstrap resamples", Limit("int", 10, 100_000), "resamples of every 95% interval"),
    Setting("threads", "Threads", Limit("int", 1, 1024, optional=True), "torch CPU threads while evaluating"),
    Setting("device", "Device", Limit("choice", choices=("auto", "cpu", "cuda", "mps")),
            "where to evaluate: auto picks CUDA, then MPS, then the CPU"),
    Setting("influence_primers", "Influence primers", Limit("int", 0, 10000),
            "continuations of the first N primers attributed note by note (0 skips the influence distance)"),
    Setting("processes", "Worker processes", Limit("int", 1, 64),
            "worker processes for sampling, the model side, recall by distance and the probe, one model (and "
            "temperature, seed run or probe seed) each; the report is the same (1: all in this process)"),
)
