"""Melody metrics of docs/design.md section 5 from note arrays [n, 3] (onset step, pitch, duration), numpy only.

- bars.py: per-bar memory metrics of a continuation against its primer (TR, RR, GC, downbeat, IK, PC,
  empty) and the self-similarity matrix.
- piece.py: whole-piece metrics equal to MusPy 0.5's functions of the same name.
- keys.py: the 24 major / natural-minor scales and MusPy's choice of key.
"""

from .bars import (
    BarSets,
    bar_sets,
    continuation_metrics,
    piece_bar_metrics,
    primer_key,
    self_similarity,
    transposed_similarity,
)
from .keys import SCALES, best_key
from .piece import (
    empty_beat_rate,
    groove_consistency,
    piece_metrics,
    pitch_class_entropy,
    scale_consistency,
)

PER_BAR_METRICS = ("TR", "RR", "GC", "downbeat", "IK", "PC", "empty")

__all__ = [
    "PER_BAR_METRICS",
    "SCALES",
    "BarSets",
    "bar_sets",
    "best_key",
    "continuation_metrics",
    "empty_beat_rate",
    "groove_consistency",
    "piece_bar_metrics",
    "piece_metrics",
    "pitch_class_entropy",
    "primer_key",
    "scale_consistency",
    "self_similarity",
    "transposed_similarity",
]
