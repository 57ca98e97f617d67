"""Stage 7, metrics: melody metrics of docs/design.md section 5 from note arrays [n, 3] (onset step, pitch, duration), numpy only.

- table.py: the one table of per-bar metrics (key -> label, axis label, range, direction, function) and
  of the reference sources' labels, colours and line styles; continuation_metrics and
  piece_bar_metrics evaluate every row. Adding a metric is one function plus one row there.
- bars.py: bar note sets N_b, sim / sim_T, the self-similarity matrix, the distinct-bar rate.
- piece.py: whole-piece metrics equal to MusPy 0.5's functions of the same name.
- keys.py: the 24 major / natural-minor scales and MusPy's choice of key.
"""

from engine.metrics.bars import (
    BarSets,
    bar_sets,
    distinct_bar_rate,
    primer_key,
    self_similarity,
    transposed_similarity,
)
from engine.metrics.keys import SCALES, best_key
from engine.metrics.piece import (
    empty_beat_rate,
    groove_consistency,
    piece_metrics,
    pitch_class_entropy,
    scale_consistency,
)
from engine.metrics.table import (
    DERIVED,
    PER_BAR,
    REFERENCES,
    BarContext,
    PerBarMetric,
    SeriesInfo,
    SourceStyle,
    continuation_metrics,
    piece_bar_metrics,
    series_info,
    source_style,
)

__all__ = [
    "DERIVED",
    "PER_BAR",
    "REFERENCES",
    "SCALES",
    "BarContext",
    "BarSets",
    "PerBarMetric",
    "SeriesInfo",
    "SourceStyle",
    "bar_sets",
    "best_key",
    "continuation_metrics",
    "distinct_bar_rate",
    "empty_beat_rate",
    "groove_consistency",
    "piece_bar_metrics",
    "piece_metrics",
    "pitch_class_entropy",
    "primer_key",
    "scale_consistency",
    "self_similarity",
    "series_info",
    "source_style",
    "transposed_similarity",
]
