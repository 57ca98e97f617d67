"""What did it remember (issue 16): point at a composed note and see, in every row, what it drew on.

After Generate, a background job attributes each model's continuation (engine.memory.influence: the
gradient for every model, the attention weights as well for the attention RNN and the Transformer)
and finds, for the real tune, each note's nearest earlier repeat. Only the first INFLUENCE_BARS bars
of each continuation are attributed: the cost grows with the square of the length. Everything is
precomputed into `RowInfluence` tables, so that pointing at a note is a lookup, never a computation.

`InfluenceView` keeps the tables and which step is shown: hovering a row's continuation shows the note
sounding at that step in every row at once (the same moment of the piece, so the five models compare
side by side); a click pins it; leaving the rolls shows the pinned note again (or nothing); Escape
clears.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from engine.memory.influence import ATTENTION, GRADIENT, METHODS

REPEAT = "repeat"  # the human row's "method": the nearest earlier repeat of each note


@dataclass
class RowInfluence:
    """One row's sources for one method, ready to look up.

    notes: [n, 3] onset step (from the primer's first step), pitch, duration, as the roll draws them;
    first: the index of the first continuation note; sources[k]: (note indices, weights) of note
    first + k (weights as the engine gives them: >= 0, summing to at most 1); end_step: the first
    step not attributed; summary: what the row's side label says.
    """

    method: str
    notes: np.ndarray
    first: int
    sources: list[tuple[np.ndarray, np.ndarray]]
    end_step: int
    summary: dict
    steps_per_bar: int

    def note_at(self, step: int) -> int | None:
        """The attributed continuation note sounding at `step`, or None (a rest, the primer, past the end)."""
        if step < 0 or step >= self.end_step or not len(self.notes):
            return None
        i = int(np.searchsorted(self.notes[:, 0], step, side="right")) - 1
        if i < self.first or i - self.first >= len(self.sources):
            return None
        onset, _pitch, duration = self.notes[i]
        return i if onset <= step < onset + duration else None

    def sources_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sources[i - self.first]


def piece_notes(primer, continuation) -> np.ndarray:
    """Primer then continuation notes, onsets counted from the primer's first step (as the roll draws them)."""
    parts = [primer.note_array().reshape(-1, 3)]
    if continuation is not None and len(continuation.notes):
        cont = continuation.note_array().copy()
        cont[:, 0] += primer.n_steps
        parts.append(cont)
    return np.concatenate(parts).astype(np.int64)


def _as_drawn(result_notes, drawn: np.ndarray) -> np.ndarray:
    """The engine's notes (decoded from the tokens the model saw, pitches folded into its range) with the
    pitch and length of the note drawn at the same onset, so that sources light up the notes on screen."""
    notes = np.asarray(result_notes, dtype=np.int64).reshape(-1, 3).copy()
    by_onset = {int(n[0]): n for n in drawn}
    for n in notes:
        same = by_onset.get(int(n[0]))
        if same is not None:
            n[1], n[2] = same[1], same[2]
    return notes


def model_influence(model, primer, continuation, token_config, method: str, key: str, bars: int) -> RowInfluence:
    """Attribute the first `bars` bars of a continuation generate() made from `primer`."""
    from engine.memory.influence import continuation_tokens, influence, influence_summary

    tokens, primer_steps = continuation_tokens(primer, continuation, token_config)
    spb = primer.steps_per_bar
    end = primer_steps + bars * spb
    result = influence(model, tokens[:end], primer_steps, token_config, method, key)
    sources = []
    for entry in result["influence"]:
        pairs = np.array(entry["sources"], dtype=np.float64).reshape(-1, 2)
        sources.append((pairs[:, 0].astype(np.int64), pairs[:, 1]))
    summary = influence_summary(result, spb)
    summary.pop("distances")
    return RowInfluence(method, _as_drawn(result["notes"], piece_notes(primer, continuation)),
                        result["primer_notes"], sources, min(end, len(tokens)), summary, spb)


def human_repeats(primer, continuation, bars: int) -> RowInfluence:
    """The real tune's reference: each note's nearest earlier repeat (engine.memory.influence.repeat_distances)
    as its one source, with weight 1; notes without a repeat have none."""
    from engine.memory.influence import repeat_distances

    spb = primer.steps_per_bar
    end = primer.n_steps + bars * spb
    notes = piece_notes(primer, continuation)
    notes = notes[notes[:, 0] < end]
    first = int(np.searchsorted(notes[:, 0], primer.n_steps))
    distances = repeat_distances(notes, first, spb)
    index = {int(onset): j for j, onset in enumerate(notes[:, 0])}
    sources = []
    for k, d in enumerate(distances):
        j = index.get(int(notes[first + k, 0] - round(d * spb))) if np.isfinite(d) else None
        sources.append((np.array([j] if j is not None else [], dtype=np.int64), np.ones(1 if j is not None else 0)))
    found = distances[np.isfinite(distances)]
    summary = {"mean_distance_bars": float(found.mean()) if len(found) else None, "n_notes": len(found),
               "of_notes": len(distances)}
    return RowInfluence(REPEAT, notes, first, sources, end, summary, spb)


def compute_all(models: dict, primer, continuations: dict, human, bars: int, cancel: threading.Event,
                lock: threading.Lock):
    """Generator job: yields (key, method, RowInfluence): the human row, then every model by gradient,
    then by attention where it has attention weights. `lock` is held while a model is in use, so that a
    new Generate waits for the attribution in progress rather than sharing the model with it."""
    from engine.memory.influence import methods_for

    if human is not None:
        yield "human", REPEAT, human_repeats(primer, human, bars)
    for method in METHODS:
        for key, continuation in continuations.items():
            loaded = models[key]
            if cancel.is_set():
                return
            if method not in methods_for(loaded.model):
                continue
            with lock:
                table = model_influence(loaded.model, primer, continuation, loaded.token_config, method, key, bars)
            yield key, method, table


def summary_text(table: RowInfluence) -> tuple[str, str]:
    """(the row's side label, its tooltip) for a model's or the human's table."""
    s = table.summary
    mean = s.get("mean_distance_bars")
    if table.method == REPEAT:
        if mean is None:
            return "no note repeats", (f"None of the {s['of_notes']} notes repeats an earlier two-note figure a "
                                       "whole number of bars back.")
        return (f"repeats {mean:.1f} bars back ({s['n_notes']} of {s['of_notes']})",
                f"The real tune: {s['n_notes']} of its {s['of_notes']} notes repeat an earlier two-note figure a "
                f"whole number of bars back; the nearest such repeat lies {mean:.2f} bars back on average. "
                "Point at a note: its repeat is drawn.")
    chance = s.get("uniform_distance_bars")
    if not table.sources:
        return "no notes composed", "The attributed bars hold no new note."
    if mean is None:
        return "all weight on rests", "All the weight fell on rests: no distance to give."
    how = "attention weights" if table.method == ATTENTION else "gradient"
    return (f"{mean:.1f} bars back ({s['n_notes']} notes; uniform {chance:.1f})",
            f"Its notes reach back {mean:.2f} bars on average ({how}: each note's weighted mean distance to the "
            f"notes it drew on, over {s['n_notes']} notes). Weight spread evenly over everything before a note "
            f"would reach back {chance:.2f} bars: the uniform spread, the far extreme (all weight on the previous "
            "note is the near one), not a chance level.")


SUMMARY_TEMPLATE = "88.8 bars back (888 notes; uniform 88.8)"  # the widest side label, for the panel's width


class InfluenceView:
    """Which note's sources the rolls show. `rows` are the Listen tab's rows (each with .key and .roll)."""

    def __init__(self, rows):
        self.rows = rows
        self.tables: dict[str, dict[str, RowInfluence]] = {}
        self.attention: dict[str, bool] = {}  # rows whose attention box is ticked
        self.pinned: int | None = None  # a step, from the primer's first step
        self.hovered: int | None = None

    def reset(self, rows=None) -> None:
        """Forget every table (a new Generate, another primer or variation) and clear the drawings."""
        if rows is not None:  # new rows: their attention boxes start unticked
            self.rows = rows
            self.attention = {}
        self.tables = {}
        self.pinned = self.hovered = None
        self.redraw()

    def add(self, key: str, method: str, table: RowInfluence) -> None:
        self.tables.setdefault(key, {})[method] = table
        if self.pinned is not None or self.hovered is not None:
            self.redraw()

    def table(self, key: str) -> RowInfluence | None:
        tables = self.tables.get(key, {})
        if key == "human":
            return tables.get(REPEAT)
        return tables.get(ATTENTION if self.attention.get(key) else GRADIENT)

    def ready(self) -> bool:
        return any(k != "human" for k in self.tables)

    def step_at(self, x_bars: float) -> int | None:
        spb = next((t.steps_per_bar for m in self.tables.values() for t in m.values()), None)
        return None if spb is None else int(np.floor(x_bars * spb + 1e-9))

    # ---- what the mouse and keyboard do ----------------------------------------------------------
    def hover(self, x_bars: float) -> None:
        step = self.step_at(x_bars)
        before = self.shown_step()
        self.hovered = step if step is not None and self._has_note(step) else None
        after = self.shown_step()
        # redrawn only when some row's note changes (a note lasts several steps)
        if before != after and (before is None or after is None or not self._same_notes(before, after)):
            self.redraw()

    def leave(self) -> None:
        if self.hovered is not None:
            self.hovered = None
            self.redraw()

    def click(self, x_bars: float) -> None:
        """Pin the moment clicked; a click on the pinned note or on no note unpins."""
        step = self.step_at(x_bars)
        same = step is not None and self.pinned is not None and self._same_notes(step, self.pinned)
        self.pinned = step if step is not None and self._has_note(step) and not same else None
        self.hovered = None
        self.redraw()

    def clear(self) -> None:
        self.pinned = self.hovered = None
        self.redraw()

    def shown_step(self) -> int | None:
        return self.hovered if self.hovered is not None else self.pinned

    def _has_note(self, step: int) -> bool:
        return any((t := self.table(r.key)) is not None and t.note_at(step) is not None for r in self.rows)

    def _same_notes(self, a: int, b: int) -> bool:
        return all((t := self.table(r.key)) is None or t.note_at(a) == t.note_at(b) for r in self.rows)

    # ---- drawing ---------------------------------------------------------------------------------
    def redraw(self) -> None:
        from . import style

        step = self.shown_step()
        for row in self.rows:
            table = self.table(row.key)
            i = None if table is None or step is None else table.note_at(step)
            if i is None:
                row.roll.clear_influence()
                continue
            spb = table.steps_per_bar
            notes = table.notes
            indices, weights = table.sources_of(i)
            row.roll.show_influence(
                (notes[i, 0] / spb, int(notes[i, 1]), notes[i, 2] / spb),
                [(notes[j, 0] / spb, int(notes[j, 1]), notes[j, 2] / spb, float(w)) for j, w in zip(indices, weights)],
                style.model_colour(row.key), dashed=table.method == REPEAT)
