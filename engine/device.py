"""Pick the torch device: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

from .errors import UserError


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("device mps was asked for, but torch sees no Apple GPU")
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"unknown device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


def model_device(model):
    """The device a model's parameters live on (the CPU for a model without parameters, e.g. a stand-in)."""
    import torch

    params = next(iter(model.parameters()), None)
    return params.device if params is not None else torch.device("cpu")
