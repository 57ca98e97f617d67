"""The 24 major and natural-minor scales as one table: the key signature guessed for a file without one
(engine/music/midi_io.py) and the key a set of notes sits in (engine/metrics/keys.py) both read it.

Candidate order is MusPy 0.5's `scale_consistency` loop: C..B major, then C..B minor, so the index of a
candidate is also its pretty_midi key number (0-11 major, 12-23 minor; see engine.music.melody.key_name).
"""

from __future__ import annotations

import numpy as np

_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=bool)
_MINOR = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], dtype=bool)

# SCALES[k, pc]: pitch class pc is in candidate key k (k = pretty_midi key number).
SCALES = np.stack([np.roll(_MAJOR, root) for root in range(12)] + [np.roll(_MINOR, root) for root in range(12)])
