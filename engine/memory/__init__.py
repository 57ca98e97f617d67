"""Stage 8, memory: model-side memory measures of docs/design.md section 5, teacher-forced on held-out tunes.

- nll.py: bits per token per bar, effective memory by context ablation (NLL_k), repeat gain;
- gradient.py: gradient memory G(k), how much the log-likelihood still feels an input k steps back;
- probe.py: the synthetic theme-recall probe (a motif, g bars of filler, the motif again);
- influence.py: what each generated note drew on (gradient or attention weights over earlier notes),
  and how far back in bars that lies.

Everything here takes a model with the SequenceModel interface (forward(tokens [B, T]) -> logits
[B, T, V], obeying its own window at any length) and numpy token arrays.
"""

from engine.memory.influence import (
    ATTENTION,
    GRADIENT,
    METHODS,
    influence,
    influence_distribution,
    influence_summary,
    melody_influence,
    methods_for,
    repeat_distribution,
)

__all__ = [
    "ATTENTION",
    "GRADIENT",
    "METHODS",
    "influence",
    "influence_distribution",
    "influence_summary",
    "melody_influence",
    "methods_for",
    "repeat_distribution",
]
