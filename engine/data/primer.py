"""The opening a model continues: the first P bars of a corpus tune or of any MIDI file."""

from __future__ import annotations

from pathlib import Path

from engine.core.errors import UserError
from engine.music.melody import Melody

MAX_PRIMER_BARS = 256


def take_primer(melody: Melody, bars: int, name: str = "") -> Melody:
    """The first `bars` bars of `melody`; UserError when the tune is shorter than that."""
    name = name or melody.source or melody.title or melody.tune_id or "the primer"
    if not isinstance(bars, int) or not 1 <= bars <= MAX_PRIMER_BARS:
        raise UserError(f"primer bars must be between 1 and {MAX_PRIMER_BARS}, not {bars}")
    if melody.n_steps < bars * melody.steps_per_bar:
        raise UserError(
            f"{name}: the primer needs {bars} bars but the melody has only {melody.n_steps // melody.steps_per_bar}"
            f" full bars of {melody.meter}; ask for fewer primer bars"
        )
    if not melody.bars(0, bars).notes:
        raise UserError(f"{name}: the first {bars} bars hold no notes to continue from")
    return melody.bars(0, bars)


def is_midi_path(text: str) -> bool:
    """A MIDI file's name, or anything on disk that is not a folder (a FIFO or a device is read as a file,
    and the reader says what it is), rather than a tune id or title."""
    path = Path(text)
    return path.suffix.lower() in (".mid", ".midi", ".kar") or (path.exists() and not path.is_dir())


def primer_choices(corpus) -> list[Melody]:
    """The tunes offered as primers, in the order the Listen tab lists them: the test split (the models
    never trained on it; else the validation split, else every tune), by title."""
    tunes = corpus.split("test") or corpus.split("valid") or list(corpus.melodies)
    return sorted(tunes, key=lambda m: (m.title or m.tune_id).casefold())


def default_primer(choices: list[Melody], primer_bars: int = 8) -> Melody | None:
    """The primer used when none is chosen, in the app and the CLI alike: the first listed tune long enough
    to hold the primer twice (so the real continuation can be heard beside the models'), else the first."""
    return next((m for m in choices if m.n_bars >= 2 * primer_bars), choices[0] if choices else None)


def load_primer_melody(spec: str | None, corpus_loader=None, settings=None, primer_bars: int = 8) -> Melody:
    """The whole melody a primer comes from.

    `spec` is a MIDI file path (its first melody, through the corpus pipeline), a tune id or title of
    the corpus `corpus_loader()` returns, or None for the default primer of that corpus (default_primer:
    what the Listen tab starts on).
    """
    if spec and is_midi_path(spec):
        from engine.data.corpus import path_kind
        from engine.music.midi_io import load_midi_melodies

        path = Path(spec)
        try:
            kind = path_kind(path)  # the corpus's own look: a FIFO or a device is a file the reader refuses by name
        except UserError as exc:  # a name the OS refuses (too long, ...)
            raise UserError(f"{spec}: {exc}") from None
        if kind is None:
            raise UserError(f"{spec}: no such MIDI file")
        if kind == "dir":
            raise UserError(f"{spec}: a folder, not a MIDI file")
        if settings is None:
            from engine.music.midi_io import ExtractSettings

            settings = ExtractSettings()
        melodies = load_midi_melodies(path, settings)
        if not melodies:
            raise UserError(f"{spec}: no usable melody in this file")
        return melodies[0]
    if corpus_loader is None:
        from engine.data.corpus import load_corpus

        corpus_loader = load_corpus
    corpus = corpus_loader()
    if spec:
        melody = corpus.find(spec)
        if melody is None:
            raise UserError(f"no tune {spec!r} in the corpus (give a tune id, a title or a .mid file)")
        return melody
    melody = default_primer(primer_choices(corpus), primer_bars)
    if melody is None:
        raise UserError("the corpus has no tune to use as the default primer; pass --primer")
    return melody
