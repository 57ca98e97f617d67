"""Gradient memory G(k): how strongly log p(x_t | x_<t) still depends on the input embedding k steps back.

G(k) = mean over positions t of || d log p(x_t | x_<t) / d e_{t-k} ||, k = 1..max_k, divided by G(1)
(docs/design.md section 5). A vanilla RNN's curve falls off exponentially (vanishing gradients); gates
flatten it; attention and the Transformer keep it up within reach of their windows.

How it is computed: N segments of L = max_k input tokens are cut at seeded offsets from the
concatenated test tunes (tunes alone are often shorter than 512 steps); the target is the token after
each segment, so every k = 1..L is measured on the same N positions. The N segments go through one
forward and one backward as a batch: rows do not interact, so the gradient of the summed log
probabilities with respect to row n's embeddings is that row's own gradient. The models' forward
obeys their windows at any length, so a Transformer's G(k) is exactly what its stacked sliding
windows let through.

The embedding is the model's declared one (engine/models/base.py): e = model.embed_tokens(tokens), one
vector per token step, and the logits model.forward_embedded(e).
"""

from __future__ import annotations

import contextlib

import numpy as np

from engine.core.device import model_device
from engine.core.errors import UserError


def differentiable(device):
    """The context to differentiate a model in eval mode: cuDNN refuses RNN backward in eval mode, and
    the native kernels give the same gradients. Shared with influence.py."""
    import torch

    return torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else contextlib.nullcontext()


@contextlib.contextmanager
def denormals_flushed():
    """Subnormal floats as zero while inside (in this thread: the CPU flag is per thread). Backpropagating
    through hundreds of RNN or GRU steps leaves gradients below 1e-38, and the CPU's slow path for them
    made one 16-bar attribution take 8 s instead of 1-3 s. Only for influence, which normalizes each
    note's weights over steps (a subnormal weight is zero at any precision it is shown); gradient memory
    follows gradients down to their smallest values and keeps them."""
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _logits_with_embeddings(model, tokens):
    """(logits [B, T, V], e [B, T, D] with .grad filled after backward)."""
    e = model.embed_tokens(tokens).detach().requires_grad_(True)
    return model.forward_embedded(e), e


def _segments(tunes: list[np.ndarray], length: int, n: int, seed: int) -> np.ndarray:
    """[n, length + 1] token segments at seeded offsets of the concatenated tunes."""
    stream = np.concatenate(tunes)
    if len(stream) < length + 1:
        raise UserError(f"gradient memory needs at least {length + 1} test tokens, the test split has {len(stream)}")
    rng = np.random.default_rng(seed)
    offsets = rng.choice(len(stream) - length, size=min(n, len(stream) - length), replace=False)
    return np.stack([stream[o : o + length + 1] for o in np.sort(offsets)])


def gradient_memory(model, tunes: list[np.ndarray], max_k: int = 512, n_positions: int = 32,
                    seed: int = 0, rows_per_batch: int = 16) -> dict:
    """{"ks": [1..max_k], "g": normalised G(k), "raw_g1": G(1) before normalising, "inputs": L, ...}."""
    import torch

    length = max_k
    segments = _segments(tunes, length, n_positions, seed)
    device = model_device(model)
    norms = np.zeros(length)
    model.eval()
    with differentiable(device), torch.enable_grad():
        for start in range(0, len(segments), rows_per_batch):
            seg = torch.from_numpy(segments[start : start + rows_per_batch]).to(device)
            logits, e = _logits_with_embeddings(model, seg[:, :-1])
            logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
            logp.gather(1, seg[:, -1:]).sum().backward()
            norms += e.grad.float().norm(dim=-1).sum(dim=0).cpu().numpy()
            model.zero_grad(set_to_none=True)
    norms /= len(segments)
    per_k = norms[::-1]  # index 0 = k 1 (the last input), index L-1 = k L
    g = per_k / per_k[0] if per_k[0] > 0 else per_k
    return {
        "ks": list(range(1, max_k + 1)),
        "g": g.tolist(),
        "raw_g1": float(per_k[0]),
        "inputs": int(length),
        "n_positions": len(segments),
    }
