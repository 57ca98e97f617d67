"""Data-parallel training under torchrun: the process group, and the few collectives training needs.

`torchrun --nproc_per_node N main.py train ...` starts N copies of the command with RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/MASTER_PORT in their environment. `session()` sees them, starts the process
group (NCCL when the ranks train on CUDA GPUs, each on cuda:LOCAL_RANK; gloo on CPUs) and tears it down
at the end. Without those variables it does nothing, and `current()` stays None: a plain
`python main.py train` never touches torch.distributed.

While a session is up, engine.training.train.train() reads `current()` and trains data-parallel: every rank
draws its own rows of the same per-step global batch, DistributedDataParallel averages the gradients,
and only rank 0 writes files. Multi-node needs nothing more than torchrun's rendezvous.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

from engine.core.device import resolve_device
from engine.core.errors import UserError

# The collectives' timeout. Other ranks wait at a barrier while local rank 0 parses a cold corpus, which
# can take a while for tens of thousands of files; a real hang is still reported, only later.
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank, 0 .. world - 1
    world: int
    local_rank: int  # rank on this machine: picks the GPU
    device: object  # torch.device this rank trains on
    backend: str  # "nccl" or "gloo"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current: DistInfo | None = None


def current() -> DistInfo | None:
    """The running data-parallel session, or None for an ordinary single-process run."""
    return _current


def is_main() -> bool:
    """True in an ordinary run and on rank 0 of a data-parallel one: the process that writes files."""
    return _current is None or _current.is_main


def launched_by_torchrun(environ=os.environ) -> bool:
    return all(name in environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"))


@contextlib.contextmanager
def session(device_name: str = "auto"):
    """Start the process group when launched by torchrun; yields a DistInfo, or None (nothing to do)."""
    global _current
    if not launched_by_torchrun() or _current is not None:
        yield _current
        return
    import torch
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"rank {rank}: LOCAL_RANK {local_rank} but this machine has "
                            f"{torch.cuda.device_count()} GPU(s): lower --nproc_per_node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UserError(f"data-parallel training runs on CUDA GPUs or CPUs, not {device.type}: "
                        "pass --device cpu or --device cuda")
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT,
                            device_id=device if backend == "nccl" else None)
    _current = DistInfo(rank, world, local_rank, device, backend)
    try:
        yield _current
    finally:
        _current = None
        dist.destroy_process_group()


def barrier() -> None:
    if _current is not None:
        import torch.distributed as dist

        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on at least one (one tiny all-reduce)."""
    if _current is None:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=_current.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_sum(tensor):
    """Sum a tensor over the ranks, in place and returned (a no-op outside a session)."""
    if _current is not None:
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


@contextlib.contextmanager
def local_main_first():
    """Local rank 0 runs the body first (e.g. parses a cold corpus into the cache) while the machine's
    other ranks wait; then they run it (and find the cache warm)."""
    info = _current
    if info is None:
        yield
        return
    if info.local_rank != 0:
        barrier()
    yield
    if info.local_rank == 0:
        barrier()
