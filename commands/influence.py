"""`python main.py influence`: compose a continuation with one model, then show what each new note drew on.

The continuation comes from the same seeded sampler as `generate` (temperature 1, no top-k/top-p). Each
new note's sources are the earlier notes, primer included, with weights >= 0 that sum to at most 1; the
rest of the weight fell on rests (docs/design.md section 5, "Influence"; engine/memory/influence.py).

--json prints design.md's document {"model", "method", "notes", "primer_notes", "influence": [{"note",
"sources"}, ...]} and, beside it, each entry's "rest" weight and "primer", "meter", "primer_steps",
"steps_per_bar", "mean_distance_bars" and "uniform_distance_bars" (the chance level: weight spread
evenly over the past).
"""

from __future__ import annotations

import time

from .common import add_composer_arguments, emit_json, say
from .flags import add_flags, check_flags

TOP_SOURCES = 3


def add_arguments(parser) -> None:
    from engine.core.memory_budget import INFLUENCE_HELP
    from engine.generation.generate import SAMPLE_SETTINGS
    from engine.memory.influence import METHODS

    parser.description = __doc__
    parser.epilog = INFLUENCE_HELP
    add_composer_arguments(parser)
    add_flags(parser, "influence_bars")
    SAMPLE_SETTINGS.add_arguments(parser, only=("seed",), defaults=True)
    parser.add_argument("--method", choices=METHODS, default="gradient",
                        help="gradient (every model, default) or attention (attention and transformer only)")
    parser.add_argument("--json", action="store_true", help="print the influence as one JSON document on stdout")


def run(args) -> int:
    from engine.generation.generate import SampleSettings
    from engine.memory.influence import check_method

    # Every option is checked before anything is loaded or built.
    check_flags(args, "influence_bars", "primer_bars")
    args.bars = args.influence_bars
    settings = SampleSettings(bars=args.bars, seed=args.seed)
    settings.validate()
    check_method(args.method, args.model)

    import torch

    from engine.data.primer import load_primer_melody, take_primer
    from engine.generation.generate import fold_into_range, generate
    from engine.memory.influence import influence_summary, melody_influence
    from engine.memory.memory_check import check_influence_memory
    from engine.music.midi_io import ExtractSettings
    from engine.music.tokens import encode
    from engine.training.checkpoint import CONFIG_FILE, load_model, read_record, resolve_run_dir

    # The model's config (not its weights) and the primer first: the memory estimate needs the piece's length,
    # and is checked before the model is loaded and anything is composed or attributed.
    model_dir = resolve_run_dir(args.run) / args.model
    record = read_record(model_dir)
    extract = ExtractSettings(min_bars=1, token_config=record.tokens)
    source = load_primer_melody(args.primer, settings=extract, primer_bars=args.primer_bars)
    primer = take_primer(source, args.primer_bars, args.primer or source.title or source.tune_id)
    say(f"primer: {primer.title or primer.tune_id} ({args.primer_bars} bars of {primer.meter})")
    primer_steps = len(encode(fold_into_range(primer, record.tokens), record.tokens))
    say(check_influence_memory(record.model, primer_steps, args.bars, primer.steps_per_bar, args.method,
                               {"bars": "--bars", "primer_bars": "--primer-bars"}, str(model_dir / CONFIG_FILE)))

    # On the CPU, where the attribution is exact and quick; one thread, as `generate` (decoding is many
    # tiny ops, and extra threads only add synchronisation on a shared machine).
    torch.set_num_threads(1)
    loaded = load_model(model_dir.parent, args.model, "cpu")

    started = time.perf_counter()
    continuation = generate(loaded.model, primer, settings, loaded.token_config)[0]
    composed = time.perf_counter()
    result = melody_influence(loaded.model, primer, continuation, loaded.token_config, args.method, args.model)
    say(f"{args.model}: {args.bars} bar{'s' * (args.bars > 1)} composed in {composed - started:.2f} s, "
        f"{len(result['influence'])} notes attributed ({args.method}) in {time.perf_counter() - composed:.2f} s")
    summary = influence_summary(result, primer.steps_per_bar)
    if args.json:
        emit_json({**result, "primer": primer.tune_id, "meter": primer.meter,
                   "uniform_distance_bars": summary["uniform_distance_bars"]})
    else:
        print(_table(result, primer.steps_per_bar, summary))
    return 0


def _table(result: dict, steps_per_bar: int, summary: dict) -> str:
    """One line per new note: its bar, pitch and strongest sources (how many bars back, weight)."""
    from engine.core.quiet_imports import pretty_midi

    note_number_to_name = pretty_midi().note_number_to_name

    notes = result["notes"]
    lines = [f"bar 1 = the primer's first ({result['primer_notes']} primer notes); "
             f"sources: #note pitch @bars back = weight",
             f"{'note':>5} {'bar':>4} {'pitch':>5}  top sources"]
    for entry in result["influence"]:
        onset, pitch, _ = notes[entry["note"]]
        top = sorted(entry["sources"], key=lambda s: -s[1])[:TOP_SOURCES]
        where = ", ".join(f"#{j} {note_number_to_name(notes[j][1])} @{(onset - notes[j][0]) / steps_per_bar:.2f} = {w:.2f}"
                          for j, w in top)
        rest = f"; rests {entry['rest']:.2f}" if entry["rest"] >= 0.005 else ""
        lines.append(f"{entry['note']:>5} {onset // steps_per_bar + 1:>4} {note_number_to_name(pitch):>5}  {where}{rest}")
    mean, chance = summary["mean_distance_bars"], summary["uniform_distance_bars"]
    if not result["influence"]:
        lines.append(f"{result['model']}: the continuation holds no new note to attribute")
    elif mean is None:
        lines.append(f"{result['model']} ({result['method']}): no note weight, so no influence distance")
    else:
        lines.append(f"{result['model']} ({result['method']}): mean influence distance {mean:.2f} bars over "
                     f"{summary['n_notes']} notes (spread evenly over the past it would be {chance:.2f})")
    return "\n".join(lines)
