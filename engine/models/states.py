"""A model's generation state as the engine handles it from outside: a tensor or (nested) tuples of tensors,
the batch along one dimension, the same for all of them. Recall by distance selects and joins rows of it;
generation copies one primed row per variation."""

from __future__ import annotations


def map_state(fn, state):
    """`fn` applied to every tensor of the state, in the state's own structure."""
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, s) for s in state)
    return fn(state)


def batch_dim(model, device) -> int:
    """Which dimension of the model's state tensors is the batch (every family's is the same for all of them),
    found from init_state with batches of 1 and 2."""
    one, two = model.init_state(1, device), model.init_state(2, device)
    flat_one, flat_two = [], []
    map_state(flat_one.append, one)
    map_state(flat_two.append, two)
    dims = {next(d for d, (a, b) in enumerate(zip(x.shape, y.shape)) if a != b) for x, y in zip(flat_one, flat_two)}
    if len(dims) != 1:
        raise ValueError(f"{type(model).__name__}: its state's batch dimension differs between its tensors")
    return dims.pop()
