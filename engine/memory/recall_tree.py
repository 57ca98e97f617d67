"""The sequences recall by distance scores (engine/memory/recall.py), as a tree of blocks that share prefixes.

For each target bar b of a tune three sequences are scored on the tokens of bar b: the true past, the
ablated past and the control past (engine/memory/recall_plan.py). Every one of them is the tune's own tokens
up to the first replaced bar, and many ablated and control sequences of one tune agree for long after that
(the same theme bar replaced by the same foreign bar for several targets). Cut into blocks of `block` steps
(aligned at step 0), a sequence is a path from the root of its tune: the tune's own blocks until its first
replaced block, then blocks of its own, a block being the same node for two sequences when their whole
prefixes agree. A model that carries its past in a state (engine/models/base.py's StatefulSequenceModel)
then runs each node once, from its parent's state: about a third of the tokens of running every sequence
from its start on the bundled test tunes (2.5 million instead of 8.7 million for blocks of 16 steps).

Nothing here runs a model: the tree is a plan of which blocks to run from which, and of where each scored
token's prediction is found (the node and the step in it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.music.tokens import PAD

WHICH = ("true", "ablated", "control")  # the three sequences of a target, in this order


@dataclass
class BlockTree:
    """The nodes of one group of tunes. Node n runs `tokens[n]` (its block, [block] steps) from the state its
    `parent` left (-1: from the empty state) at level `level[n]` (it covers steps level * block ..). Nodes are
    numbered level by level, so a node's parent comes before it."""

    block: int
    tokens: np.ndarray  # [nodes, block]
    parent: np.ndarray  # [nodes]
    level: np.ndarray  # [nodes]
    # The scored tokens, S per scored sequence: sequence j = 3 * (its target's position in `targets`) + WHICH
    # index; its token k (the k-th step of the target bar) is predicted at step `offset[j, k]` of node
    # `node[j, k]` and is `goal[j, k]` (node -1: past the end of a bar shorter than the group's longest).
    targets: list[int]  # the plan's target indices, in the order of the sequences
    node: np.ndarray  # [sequences, S]
    offset: np.ndarray  # [sequences, S]
    goal: np.ndarray  # [sequences, S]
    paths: list[list[int]]  # per sequence, its node at each level up to its last

    def levels(self):
        """(level, the nodes of that level as a slice) in order."""
        bounds = np.flatnonzero(np.diff(self.level)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(self.level)]])
        for start, stop in zip(starts, stops):
            yield int(self.level[start]), slice(int(start), int(stop))


def sequence_tokens(plan, i: int, which: str) -> np.ndarray:
    """Target i's `which` sequence over the whole twice-through tune (the tune's own tokens after the target:
    a causal model never looks at them, and so two targets' sequences can share their blocks)."""
    t = plan.targets[i]
    material = plan.materials[t.material]
    tokens = material.tokens.copy()
    if which != "true":
        S = material.steps_per_bar
        for bar, foreign in (t.replaced if which == "ablated" else t.control).items():
            tokens[bar * S : (bar + 1) * S] = foreign
    return tokens


def first_change(plan, i: int, which: str) -> int | None:
    """The first step where target i's `which` sequence leaves the tune's own tokens (None: the true past)."""
    if which == "true":
        return None
    t = plan.targets[i]
    bars = t.replaced if which == "ablated" else t.control
    return min(bars) * plan.materials[t.material].steps_per_bar


def build_tree(plan, targets: list[int], block: int) -> BlockTree:
    """The tree of the true, ablated and control sequences of `targets` (plan indices)."""
    keys: dict[tuple[int, bytes], int] = {}  # (parent, block's tokens) -> node, numbered as found
    found_tokens, found_parent, found_level = [], [], []

    def node_of(parent: int, level: int, tokens: np.ndarray) -> int:
        key = (parent, tokens.tobytes())
        n = keys.get(key)
        if n is None:
            n = keys[key] = len(found_parent)
            found_tokens.append(tokens)
            found_parent.append(parent)
            found_level.append(level)
        return n

    own_paths: dict[int, list[int]] = {}  # material -> the nodes of the tune's own blocks
    paths, goals, positions = [], [], []
    for i in targets:
        t = plan.targets[i]
        material = plan.materials[t.material]
        S = material.steps_per_bar
        scored = np.arange(t.bar * S - 1, (t.bar + 1) * S - 1)  # step p predicts token p + 1
        last = int(scored[-1]) // block
        for which in WHICH:
            tokens = sequence_tokens(plan, i, which)
            padded = np.full(-(-len(tokens) // block) * block, PAD, dtype=np.int64)
            padded[: len(tokens)] = tokens
            own = own_paths.setdefault(t.material, [])
            change = first_change(plan, i, which)
            shared = (last + 1) if change is None else change // block  # the blocks of the tune's own path
            while len(own) < shared:  # the tune's own path, grown as far as any sequence needs it
                k = len(own)
                own.append(node_of(own[-1] if own else -1, k, padded[k * block : (k + 1) * block]))
            path = own[:shared]
            for k in range(shared, last + 1):
                path.append(node_of(path[-1] if path else -1, k, padded[k * block : (k + 1) * block]))
            paths.append(path)
            goals.append(tokens[scored + 1])
            positions.append(scored)
    # number the nodes level by level (a stable sort keeps each level's nodes in the order found)
    level = np.asarray(found_level, dtype=np.int64)
    order = np.argsort(level, kind="stable")
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    parent = np.asarray(found_parent, dtype=np.int64)
    parent = np.where(parent >= 0, renumber[np.maximum(parent, 0)], -1)[order]
    paths = [renumber[np.asarray(p)].tolist() for p in paths]
    width = max((len(pos) for pos in positions), default=0)  # the meters' bars differ: -1 pads a shorter one
    node = np.full((len(paths), width), -1, dtype=np.int64)
    offset = np.zeros((len(paths), width), dtype=np.int64)
    goal = np.zeros((len(paths), width), dtype=np.int64)
    for j, (path, pos, g) in enumerate(zip(paths, positions, goals)):
        node[j, : len(pos)] = np.asarray(path)[pos // block]
        offset[j, : len(pos)] = pos % block
        goal[j, : len(pos)] = g
    return BlockTree(block, np.stack(found_tokens)[order], parent, level[order], list(targets), node, offset, goal,
                     paths)


def groups(plan, max_sequences: int) -> list[list[int]]:
    """The plan's targets in groups of whole tunes (a tree per group bounds the states held at once), at most
    `max_sequences` scored sequences a group unless one tune has more; tunes of similar length go together
    (a group runs as many levels as its longest tune needs, with fewer nodes at the deep ones)."""
    by_material: dict[int, list[int]] = {}
    for i, t in enumerate(plan.targets):
        by_material.setdefault(t.material, []).append(i)
    order = sorted(by_material, key=lambda m: (len(plan.materials[m].tokens), m))
    out, current = [], []
    for m in order:
        if current and 3 * (len(current) + len(by_material[m])) > max_sequences:
            out.append(current)
            current = []
        current.extend(by_material[m])
    if current:
        out.append(current)
    return out
