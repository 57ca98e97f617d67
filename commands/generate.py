"""`python main.py generate`: continue an opening with one trained model and write MIDI (and WAV).

With --variations N > 1 the files are numbered: --out song.mid writes song-1.mid ... song-N.mid (and
--wav song.wav writes song-1.wav ...).
"""

from __future__ import annotations

import time

from .common import ProgressBar, add_composer_arguments, emit_json, say
from .flags import add_flags, check_flags


def add_arguments(parser) -> None:
    from engine.core.memory_budget import HELP
    from engine.generation.generate import SAMPLE_SETTINGS

    parser.description = __doc__
    parser.epilog = HELP
    add_composer_arguments(parser)
    # The sampling settings, from their one definition (engine/generation/generate.SAMPLE_SETTINGS).
    SAMPLE_SETTINGS.add_arguments(parser, defaults=True)
    add_flags(parser, "program")
    parser.add_argument("--primer-mode", choices=["inline", "track", "none"], default="inline",
                        help="primer on the model's track before the continuation (inline, default), "
                             "on a track of its own (track), or left out (none)")
    parser.add_argument("--out", required=True, metavar="FILE.mid", help="MIDI file to write")
    parser.add_argument("--wav", default=None, metavar="FILE.wav", help="also render the result to a WAV file")
    parser.add_argument("--synth", choices=["auto", "fluidsynth", "builtin"], default="auto",
                        help="sound for --wav: FluidSynth where installed (auto, default) or the built-in synth")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="default auto")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON on stdout")


def run(args) -> int:
    from engine.core.device import resolve_device, torch_threads
    from engine.generation.generate import SampleSettings
    from engine.music.export import check_writable, variation_paths

    check_flags(args, "primer_bars", "program")  # every number is checked before anything slow is loaded
    settings = SampleSettings(bars=args.bars, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                              variations=args.variations, seed=args.seed)
    settings.validate()
    mid_paths = variation_paths(args.out, args.variations)
    wav_paths = variation_paths(args.wav, args.variations) if args.wav else []
    for path in mid_paths + wav_paths:
        check_writable(path)
    say(_memory_line(args, settings))

    device = resolve_device(args.device)
    # Decoding is a long chain of tiny ops: extra intra-op threads only add synchronisation, and on a busy
    # machine they make it many times slower (measured: 0.8 s vs 22 s, 2 cores, loaded).
    with torch_threads(1 if device.type == "cpu" else None):
        return _generate(args, settings, device, mid_paths, wav_paths)


def _memory_line(args, settings) -> str:
    """The generation's memory estimate from the model's config (nothing built yet); UserError above the
    machine's share (engine/generation/memory_check.py)."""
    from engine.generation.generate import SAMPLE_SETTINGS
    from engine.generation.memory_check import check_generation_memory
    from engine.training.checkpoint import CONFIG_FILE, read_record, resolve_run_dir

    model_dir = resolve_run_dir(args.run) / args.model
    return check_generation_memory([read_record(model_dir).model], settings, SAMPLE_SETTINGS.flags(),
                                   str(model_dir / CONFIG_FILE))


def _generate(args, settings, device, mid_paths, wav_paths) -> int:
    from engine.core.atomic import atomic_write
    from engine.data.primer import load_primer_melody, take_primer
    from engine.generation.generate import generate
    from engine.models import MODEL_LABELS
    from engine.music.export import build_midi, write_wav
    from engine.music.midi_io import ExtractSettings
    from engine.training.checkpoint import load_model, resolve_run_dir

    loaded = load_model(resolve_run_dir(args.run), args.model, device)
    extract = ExtractSettings(min_bars=1, token_config=loaded.token_config)
    source = load_primer_melody(args.primer, settings=extract, primer_bars=args.primer_bars)
    primer = take_primer(source, args.primer_bars, args.primer or source.title or source.tune_id)
    say(f"primer: {primer.title or primer.tune_id} ({args.primer_bars} bars of {primer.meter}, "
        f"{primer.tempo_qpm:g} qpm, {primer.key})")

    total = settings.bars * primer.steps_per_bar
    bar = ProgressBar(total, f"{args.model}: composing")
    started = time.perf_counter()
    melodies = generate(loaded.model, primer, settings, loaded.token_config,
                        progress=lambda done, _total: bar.update(done))
    bar.close()
    say(f"{args.model}: {settings.variations} x {settings.bars} bars in {time.perf_counter() - started:.2f} s")

    originality = _originality(args, primer, melodies) if args.json else [None] * len(melodies)
    written = []
    for i, melody in enumerate(melodies):
        pm = build_midi(melody, args.program, MODEL_LABELS[args.model], primer, args.primer_mode)
        atomic_write(mid_paths[i], pm.write)
        entry = {"midi": str(mid_paths[i]), "notes": len(melody.notes), "bars": melody.n_bars}
        say(f"wrote {mid_paths[i]} ({len(melody.notes)} notes)")
        if wav_paths:
            from engine.music.synth import render_audio

            samples, rate, synth_name = render_audio(pm, prefer=args.synth)
            write_wav(wav_paths[i], samples, rate)
            entry.update(wav=str(wav_paths[i]), synth=synth_name, seconds=round(len(samples) / rate, 2))
            say(f"wrote {wav_paths[i]} ({len(samples) / rate:.1f} s, {synth_name})")
        written.append({**entry, "originality": originality[i]})
    if args.json:
        emit_json({"model": args.model, "primer": primer.tune_id, "meter": primer.meter,
                   "tempo_qpm": primer.tempo_qpm, "key": primer.key, "files": written})
    return 0


def _originality(args, primer, melodies) -> list:
    """Each variation's originality against the run's training tunes (engine/metrics/originality.py); nulls
    with a warning when the run's corpus cannot be loaded (the MIDI files are written all the same)."""
    from engine.core.errors import UserError
    from engine.metrics.originality import measure_continuation, run_tunes
    from engine.training.checkpoint import resolve_run_dir

    try:
        tunes = run_tunes(resolve_run_dir(args.run))
    except UserError as exc:
        say(f"warning: no originality figures: {exc}")
        return [None] * len(melodies)
    if tunes.warning:
        say(f"warning: {tunes.warning}")
    return [measure_continuation(tunes.index, primer, m).to_dict(tunes.index) for m in melodies]
