"""What the fast one-token steps of `ssm` and `minGRU` share: weights prepared once per generation, and RMSNorm
split into its row scale and its gain.

Why a separate step at all: a generation step is a batch of a few tokens, so its cost is the number of torch
ops and the Python around them, not arithmetic (about 2-15 us an op on one core, against a GRU step of about
130 us). Going through the blocks' modules spends ops on what does not change from step to step (the norms'
gains, A = -exp(A_log), transposed weights) and on the T axis of the training path. The prepared weights hold
those once; the step then calls the tensor ops on them directly.

The prepared tensors are plain attributes of the model, never parameters or buffers (a checkpoint is
unchanged). They are dropped by the model's init_state, so every generation reads the weights as they are
then; a step never checks them again (a check of every parameter's version costs a few us a step).
"""

from __future__ import annotations

import torch
from torch import nn


def norm_eps(norm: nn.RMSNorm, dtype: torch.dtype) -> float:
    """The eps nn.RMSNorm adds to the mean square (its default: the dtype's machine epsilon)."""
    return norm.eps if norm.eps is not None else torch.finfo(dtype).eps


def folded(weight: torch.Tensor, norm: nn.RMSNorm) -> torch.Tensor:
    """A linear layer's weight [out, in] with the preceding norm's gain folded in, transposed to [in, out]
    (contiguous: torch.mm ran faster on it than on the transposed view)."""
    return (weight * norm.weight).t().contiguous()


def rms_scale(x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """[B, 1]: 1 / sqrt(mean(x^2) + eps) per row, the part of RMSNorm before its gain. Three ops (the norm,
    then n^2 / d + eps and its root): F.rms_norm took longer than these and the multiply after them."""
    n = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return torch.addcmul(eps, n, n, value=1.0 / x.shape[-1]).rsqrt_()
