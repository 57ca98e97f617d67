"""Pick the torch device: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import contextlib

from engine.core.errors import UserError


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


def cpu_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with torch's intra-op thread count set to n (None: leave it), then restore it.

    torch's setting is process-wide: a command or a job that changes it for its own work puts it back,
    so the next job in the same process (the app runs many) starts from the same state."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bf16_supported(device) -> bool:
    """Whether bfloat16 matmuls run natively here: CUDA GPUs with bf16, CPUs with AVX-512 BF16 or AMX.
    Elsewhere bf16 autocast would be emulated and slower, so it is never used."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            check = getattr(cpu, probe, None)
            if check is not None and check():
                return True
        return False
    return False


def model_device(model):
    """The device a model's parameters live on (the CPU for a model without parameters, e.g. a stand-in)."""
    import torch

    params = next(iter(model.parameters()), None)
    return params.device if params is not None else torch.device("cpu")


def resolve_precision(precision: str, device) -> str:
    """"auto" -> bf16 where the hardware runs it natively (bf16_supported), else fp32; "bf16" asked for
    where it is not supported is refused rather than silently emulated."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise UserError(f"bf16 training was asked for, but this {device.type} has no native bfloat16 "
                        f"(a CPU needs AVX-512 BF16 or AMX): use fp32")
    return precision


def cpu_model() -> str:
    """The CPU's name as the OS gives it ("AMD EPYC"; /proc/cpuinfo on Linux), else platform's guess."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_description() -> dict:
    """What a speed figure was measured on (bench writes it beside its figures): the CPU, the cores this
    process may use, memory, the accelerator torch sees, and the versions that set the kernels."""
    import platform

    import torch

    from engine.core.memory_budget import machine_memory

    device = resolve_device("auto")
    return {
        "cpu": cpu_model(),
        "cores": cpu_cores(),
        "memory_gb": round((machine_memory()[1] or 0) / 2**30, 1) or None,
        "device": device.type,
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "bf16_native": bf16_supported(device),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
