"""Melody <-> token sequence, one token per 16th-note step (docs/design.md section 4).

HOLD: nothing new starts; REST: the sounding note stops; PITCH(p): note p starts here, ending any
previous note. PAD fills batches of short tunes and is never predicted (the loss ignores it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.music.melody import Melody, Note

PAD, HOLD, REST = 0, 1, 2
FIRST_PITCH_TOKEN = 3


@dataclass(frozen=True)
class TokenConfig:
    # Chosen so that the bundled corpus needs no folding for >= 99.5% of its notes (see tests).
    min_pitch: int = 48
    max_pitch: int = 96

    @property
    def n_pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1

    @property
    def vocab_size(self) -> int:
        return FIRST_PITCH_TOKEN + self.n_pitches

    def pitch_token(self, pitch: int) -> int:
        return FIRST_PITCH_TOKEN + pitch - self.min_pitch

    def token_pitch(self, token: int) -> int:
        return token - FIRST_PITCH_TOKEN + self.min_pitch

    def fold(self, pitch: int) -> int:
        """Move a pitch by octaves into the range."""
        while pitch < self.min_pitch:
            pitch += 12
        while pitch > self.max_pitch:
            pitch -= 12
        return pitch

    def to_dict(self) -> dict:
        return asdict(self)


def encode(melody: Melody, cfg: TokenConfig = TokenConfig()) -> np.ndarray:
    """Tokens of length melody.n_steps (int64). Pitches must already lie in cfg's range."""
    tokens = np.full(melody.n_steps, HOLD, dtype=np.int64)
    for i, note in enumerate(melody.notes):
        if not cfg.min_pitch <= note.pitch <= cfg.max_pitch:
            raise ValueError(f"pitch {note.pitch} outside {cfg.min_pitch}..{cfg.max_pitch}")
        tokens[note.onset] = cfg.pitch_token(note.pitch)
        nxt = melody.notes[i + 1].onset if i + 1 < len(melody.notes) else melody.n_steps
        if note.end < nxt:
            tokens[note.end] = REST
    return tokens


def decode(tokens, template: Melody | None = None, cfg: TokenConfig = TokenConfig()) -> Melody:
    """The melody that `tokens` spell; meter, tempo, key and names come from `template`."""
    tokens = np.asarray(tokens, dtype=np.int64)
    notes: list[Note] = []
    start = pitch = None
    for step, tok in enumerate(tokens.tolist()):
        if tok in (HOLD, PAD):
            continue
        if start is not None:
            notes.append(Note(start, pitch, step - start))
            start = pitch = None
        if tok >= FIRST_PITCH_TOKEN:
            start, pitch = step, cfg.token_pitch(tok)
    if start is not None:
        notes.append(Note(start, pitch, len(tokens) - start))
    base = template if template is not None else Melody(notes=(), n_steps=0)
    from dataclasses import replace

    return replace(base, notes=tuple(notes), n_steps=len(tokens))
