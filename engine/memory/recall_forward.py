"""The forwards of recall by distance (engine/memory/recall.py), each model family run so that no step is computed
twice where the sequences agree. What is scored is unchanged: the bits of each token of the target bar given the
true, the ablated and the control past; only the order of the float sums can differ from one forward per
sequence (a batch of another size or shape), by a few 1e-7 bits (tests/test_recall_forward.py pins them to the
plain forward).

- A model with a state (engine/models/base.py's StatefulSequenceModel: rnn, lstm, gru, ssm, mingru): the
  sequences as a tree of blocks sharing prefixes (engine/memory/recall_tree.py), each node run once from its
  parent's state, level by level, every node of a level in one batch.
- The attention RNN: its recurrence the same way (it does not depend on the attention), keeping each node's
  hidden states; then only the target bar's steps attend to the last `window` states of their own sequence.
- The Transformer: the true past once per tune, keeping every layer's input; a replaced bar changes a layer's
  input only from its first step on, so each layer is recomputed only at the steps that need it (the last
  layer at the target bar's steps alone), the earlier keys and values taken from the true past. A sequence
  whose replaced bars all lie beyond the model's reach is the true past for the target bar: its bits are the
  true past's.
- Any other model: one forward per sequence (`plain_bits`).
Each returns bits [targets, 3, S] in the plan's target order, WHICH = (true, ablated, control), S the steps of
a bar (NaN past a target's own S, the meters differ)."""

from __future__ import annotations

import numpy as np

from engine.core.device import model_device
from engine.memory.recall_tree import WHICH, BlockTree, build_tree, groups, sequence_tokens
from engine.models.states import batch_dim, map_state

TOKENS_PER_CALL = 1 << 15  # tokens of one forward of the tree's nodes
STATE_BLOCK = 16  # steps of a tree's block (a bar of 4/4): the shorter, the more blocks are shared
GROUP_SEQUENCES = 6000  # scored sequences per tree: bounds the states (and attention's hidden states) held


def _bits(logits, goals):
    from engine.memory.nll import _bits_from_logits

    return _bits_from_logits(logits, goals)


def _empty(plan) -> np.ndarray:
    S = max((m.steps_per_bar for m in plan.materials), default=1)
    return np.full((len(plan.targets), len(WHICH), S), np.nan, dtype=np.float32)


def _store(out: np.ndarray, plan, tree: BlockTree, bits: np.ndarray) -> None:
    """bits [sequences, S] of `tree` into out [targets, 3, S]."""
    for position, i in enumerate(tree.targets):
        S = plan.materials[plan.targets[i].material].steps_per_bar
        out[i, :, :S] = bits[3 * position : 3 * position + 3, :S]


# --- states: a tensor or tuples of tensors, the batch along one dimension --------------------------------


def _select(state, dim: int, rows):
    import torch

    return map_state(lambda s: torch.index_select(s, dim, rows), state)


def _cat(states: list, dim: int):
    import torch

    if isinstance(states[0], (tuple, list)):
        return type(states[0])(_cat([s[k] for s in states], dim) for k in range(len(states[0])))
    return torch.cat(states, dim)


def _narrow(state, dim: int, start: int, length: int):
    return map_state(lambda s: s.narrow(dim, start, length), state)


def _scored_by_node(tree: BlockTree):
    """The scored entries sorted by node: (their flat indices into tree.node, their nodes)."""
    flat = tree.node.ravel()
    order = np.argsort(flat, kind="stable")
    order = order[flat[order] >= 0]
    return order, flat[order]


def run_tree(tree: BlockTree, step, join, rows_per_call: int, on_call=None) -> None:
    """Run every node of `tree` level by level: `step(tokens [n, block], parent rows or None, parents' states) ->
    (output, states)` where the parent rows index the previous level's states, joined by `join(list of states)`
    (None at level 0: from the empty state); `on_call(first node, output)` sees each call's output. Only one
    level's states are held at a time."""
    import torch

    previous = None  # (first node of the previous level, its states)
    for _level, nodes in tree.levels():
        states = []
        for start in range(nodes.start, nodes.stop, rows_per_call):
            stop = min(start + rows_per_call, nodes.stop)
            tokens = torch.from_numpy(tree.tokens[start:stop])
            if previous is None:
                output, state = step(tokens, None, None)
            else:
                output, state = step(tokens, torch.from_numpy(tree.parent[start:stop] - previous[0]), previous[1])
            states.append(state)
            if on_call is not None:
                on_call(start, output)
        previous = (nodes.start, states[0] if len(states) == 1 else join(states))


def state_block(model) -> int:
    """The tree's block for a model with a state: its scan's chunk where it has one (minGRU's log-space scan,
    the SSM's chunked scan), so that each block is summed as the whole sequence's forward sums it; else
    STATE_BLOCK."""
    return model.scan_chunk or STATE_BLOCK


def _stateful_tree_bits(model, tree: BlockTree, dim: int, device, rows: int) -> np.ndarray:
    """bits [sequences, S] of one tree, each node run from its parent's state by model._run."""
    import torch

    bits = np.full(tree.node.shape, np.nan, dtype=np.float32)
    order, nodes_sorted = _scored_by_node(tree)
    goals = torch.from_numpy(tree.goal.ravel())
    offsets = torch.from_numpy(tree.offset.ravel())

    def step(tokens, parents, previous):
        state = model.init_state(len(tokens), device) if parents is None else \
            _select(previous, dim, parents.to(device))
        return model._run(model.embed_tokens(tokens.to(device)), state)

    def scored(first, logits):  # the scored tokens predicted in this call's nodes
        lo, hi = np.searchsorted(nodes_sorted, [first, first + len(logits)])
        if lo < hi:
            entries = order[lo:hi]
            picked = logits[torch.from_numpy(nodes_sorted[lo:hi] - first).to(logits.device),
                            offsets[entries].to(logits.device)]
            bits.ravel()[entries] = _bits(picked, goals[entries].to(logits.device))

    run_tree(tree, step, lambda states: _cat(states, dim), rows, scored)
    return bits


def stateful_bits(model, plan, progress=None) -> np.ndarray:
    """bits [targets, 3, S] of a StatefulSequenceModel, through the tree of blocks."""
    import torch

    device = model_device(model)
    dim = batch_dim(model, device)
    block = state_block(model)
    out = _empty(plan)
    model.eval()
    done = 0
    with torch.inference_mode():
        for group in groups(plan, GROUP_SEQUENCES):
            tree = build_tree(plan, group, block)
            _store(out, plan, tree, _stateful_tree_bits(model, tree, dim, device, max(1, TOKENS_PER_CALL // block)))
            done += len(group)
            if progress is not None:
                progress(done, len(plan.targets))
    return out


def _attention_tree_bits(model, plan, tree: BlockTree, device) -> np.ndarray:
    """bits [sequences, S] of one tree for the attention RNN: the recurrence node by node, every node's hidden
    states kept; then each sequence's target bar attends to the `window` states before each of its steps."""
    import torch

    block, window = tree.block, model.config.window
    hidden = torch.empty(len(tree.parent), block, model.config.hidden_size, device=device)

    def step(tokens, parents, previous):
        state = None if parents is None else torch.index_select(previous, 1, parents.to(device))
        return model.rnn(model.embed(tokens.to(device)), state)

    def keep(first, h):
        hidden[first : first + len(h)] = h

    run_tree(tree, step, lambda states: torch.cat(states, 1), max(1, TOKENS_PER_CALL // block), keep)
    flat = hidden.view(-1, hidden.shape[-1])
    bits = np.full(tree.node.shape, np.nan, dtype=np.float32)
    spans: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (S, keys before the bar's first step) -> (j, first key)
    for j in range(len(tree.paths)):
        t = plan.targets[tree.targets[j // 3]]
        S = plan.materials[t.material].steps_per_bar
        first_query = t.bar * S - 1  # the step that predicts the bar's first token
        first_key = max(0, first_query - (window - 1))
        spans.setdefault((S, first_query - first_key), []).append((j, first_key))
    for (S, before), members in spans.items():
        rows = max(1, TOKENS_PER_CALL // (before + S))
        for at in range(0, len(members), rows):
            chunk = members[at : at + rows]
            index = np.empty((len(chunk), before + S), dtype=np.int64)
            for r, (j, first_key) in enumerate(chunk):
                steps = np.arange(first_key, first_key + before + S)
                index[r] = np.asarray(tree.paths[j])[steps // block] * block + steps % block
            keys = flat[torch.from_numpy(index).to(device)]  # [rows, before + S, H]
            logits = model._attend(keys[:, before:], keys)  # [rows, S, V]
            js = np.array([j for j, _ in chunk])
            bits[js, :S] = _bits(logits, torch.from_numpy(tree.goal[js, :S]).to(device))
    return bits


def attention_rnn_bits(model, plan, progress=None) -> np.ndarray:
    """bits [targets, 3, S] of the attention RNN (_attention_tree_bits)."""
    import torch

    device = model_device(model)
    out = _empty(plan)
    model.eval()
    done = 0
    with torch.inference_mode():
        for group in groups(plan, GROUP_SEQUENCES // 4):  # every node's hidden states are held: smaller trees
            tree = build_tree(plan, group, STATE_BLOCK)
            _store(out, plan, tree, _attention_tree_bits(model, plan, tree, device))
            done += len(group)
            if progress is not None:
                progress(done, len(plan.targets))
    return out


def plain_bits(model, plan, progress=None, batch_tokens: int = 1 << 16) -> np.ndarray:
    """bits [targets, 3, S] with one forward per sequence (from `reach` steps before the target bar where the
    model declares one): any model, the reference the faster forwards are checked against."""
    import torch

    from engine.memory.nll import _pad_batch

    reach = model.reach
    jobs = []  # (target, which, start, tokens)
    for i, t in enumerate(plan.targets):
        material = plan.materials[t.material]
        S = material.steps_per_bar
        start = 0 if reach is None else max(0, t.bar * S - 1 - reach)
        for w, which in enumerate(WHICH):
            jobs.append((i, w, start, sequence_tokens(plan, i, which)[start : (t.bar + 1) * S]))
    jobs.sort(key=lambda j: len(j[3]))
    out = _empty(plan)
    device = model_device(model)
    model.eval()
    done = 0
    with torch.inference_mode():
        while done < len(jobs):
            rows = max(1, batch_tokens // max(1, len(jobs[done][3])))
            chunk = jobs[done : done + rows]
            rows = max(1, batch_tokens // max(len(j[3]) for j in chunk))
            chunk = jobs[done : done + rows]
            batch = torch.from_numpy(_pad_batch([j[3] for j in chunk])).to(device)
            bits = _bits(model(batch[:, :-1]), batch[:, 1:])  # bits[r, p - 1] is token p's
            for r, (i, w, start, _tokens) in enumerate(chunk):
                t = plan.targets[i]
                S = plan.materials[t.material].steps_per_bar
                lo = t.bar * S - start
                out[i, w, :S] = bits[r, lo - 1 : lo - 1 + S]
            done += len(chunk)
            if progress is not None:
                progress(done, len(jobs))
    return out


def sequence_bits(model, plan, progress=None) -> np.ndarray:
    """bits [targets, 3, S] through the fastest forward the model's family has (the module docstring)."""
    from engine.models.attention_rnn import AttentionRNN
    from engine.models.base import StatefulSequenceModel
    from engine.models.transformer import TransformerLM

    if isinstance(model, AttentionRNN):
        return attention_rnn_bits(model, plan, progress)
    if isinstance(model, StatefulSequenceModel):
        return stateful_bits(model, plan, progress)
    if isinstance(model, TransformerLM):
        return transformer_bits(model, plan, progress)
    return plain_bits(model, plan, progress)


def _changes_within(plan, i: int, which: str, first: int) -> bool:
    """Whether target i's `which` sequence differs from the true past at or after step `first`."""
    t = plan.targets[i]
    S = plan.materials[t.material].steps_per_bar
    return any((bar + 1) * S > first for bar in (t.replaced if which == "ablated" else t.control))


def transformer_bits(model, plan, progress=None) -> np.ndarray:
    """bits [targets, 3, S] of the Transformer, each layer computed only where the target bar needs it.

    The target bar's predictions (steps bS - 1 .. (b + 1)S - 2) read the last layer at those steps; that layer's
    keys reach window - 1 steps further back, which read the layer below there, and so on: layer l is needed
    from (n_layers - 1 - l)(window - 1) steps before the target bar on, and its keys and values from window - 1
    before that. The plain forward computes every layer over the whole reach (twice the work for two layers).
    Positions count from the sequence's first step that can reach the target bar, as the plain forward's do. A
    sequence whose replaced bars all lie before that step predicts the target bar exactly as the true past does:
    its bits are the true past's."""
    import torch

    from engine.memory.nll import token_bits

    device = model_device(model)
    window = model.config.window
    n_layers = len(model.blocks)
    reach = model.reach
    out = _empty(plan)
    shapes: dict[tuple[int, int], list[tuple[int, int]]] = {}  # (S, steps before the bar's first prediction) -> (target, which)
    same = []  # (target, which) whose sequence is the true past within the reach
    for i, t in enumerate(plan.targets):
        S = plan.materials[t.material].steps_per_bar
        first = t.bar * S - 1  # the first prediction's step
        start = max(0, first - reach)
        changed = [w for w in (1, 2) if _changes_within(plan, i, WHICH[w], start)]
        same.extend((i, w) for w in (1, 2) if w not in changed)
        for w in changed if len(changed) == 2 else [0, *changed]:
            shapes.setdefault((S, first - start), []).append((i, w))
    model.eval()
    done, total = 0, sum(len(v) for v in shapes.values())
    with torch.inference_mode():
        for (S, before), members in shapes.items():
            n = before + S  # steps of each sequence: from its start to the target bar's last prediction
            rows = max(1, TOKENS_PER_CALL // n)
            positions = torch.arange(n, device=device)
            for at in range(0, len(members), rows):
                chunk = members[at : at + rows]
                tokens = np.stack([sequence_tokens(plan, i, WHICH[w])[plan.targets[i].bar * S - 1 - before:]
                                   [: n + 1] for i, w in chunk])  # n inputs and the bar's last token
                x = model.embed_tokens(torch.from_numpy(tokens[:, :n]).to(device))
                low = 0  # x holds the layer's input from this step on
                for layer, block in enumerate(model.blocks):
                    query = max(0, before - (n_layers - 1 - layer) * (window - 1))  # the layer's first needed step
                    cache = None
                    if query > low:
                        _q, k, v = block.attn.project(block.ln1(x[:, : query - low]), positions[low:query])
                        cache = (k, v)
                    x, _ = block(x[:, query - low :], positions[query:], cache)
                    low = query
                logits = model.head(model.ln_f(x))  # [rows, S, V]: the target bar's predictions
                bits = _bits(logits, torch.from_numpy(tokens[:, before + 1 :]).to(device))
                for r, (i, w) in enumerate(chunk):
                    out[i, w, :S] = bits[r]
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    for i, w in same:
        out[i, w] = out[i, 0]
    # The true past as engine/memory/nll.py's token_bits scores it, one forward over each whole tune, as the
    # measure always has: RoPE's angles at the tune's own steps round differently from the same angles counted
    # from the reach's start (about 3e-5 bits a token), and every figure stays as it was.
    true = token_bits(model, [m.tokens for m in plan.materials])
    for i, t in enumerate(plan.targets):
        S = plan.materials[t.material].steps_per_bar
        out[i, 0, :S] = true[t.material][t.bar * S : (t.bar + 1) * S]
    return out

