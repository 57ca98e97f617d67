"""The models' own torch ops (the scans), defined with torch.library's low-level Library API.

Why ops at all: torch's FLOP counter (bench's mfu) counts an op through a registered formula, and sees
nothing of a plain Python function. Why not torch.library.custom_op: every op it makes is wrapped to keep
torch._dynamo out, and the first call imports torch._dynamo to do so (about 2 s here), which every
command paid at its first ssm or minGRU forward. An op defined here is a Python kernel behind the
dispatcher, nothing more; its gradient is a torch.autograd.Function beside it.
"""

from __future__ import annotations

import torch

NAMESPACE = "melody_memory"
_LIBRARY = torch.library.Library(NAMESPACE, "DEF")


def define(schema: str, kernel, fake):
    """The op `melody_memory::<name>` of `schema` ("name(Tensor a, ...) -> Tensor"), run by `kernel` on
    every device; `fake` gives its outputs' shapes for tracing."""
    name = schema.split("(", 1)[0]
    _LIBRARY.define(schema)
    _LIBRARY.impl(name, kernel, "CompositeExplicitAutograd")
    torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=_LIBRARY)
    return getattr(getattr(torch.ops, NAMESPACE), name).default


def one_dtype(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The tensors in the widest of their dtypes. Under bf16 autocast a scan's inputs arrive mixed (a projection's
    output in bf16, a parameter such as A in float32); the scans then run in float32, as Mamba's own scan does,
    while the projections around them keep bf16's speed."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in tensors]
