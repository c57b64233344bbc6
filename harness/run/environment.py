"""Device choice, seeding, and the record of the environment a run used."""

from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


class DeviceError(ValueError):
    pass


def precision(device: torch.device, autocast: str) -> contextlib.AbstractContextManager:
    """The run's ``autocast``: ``torch.autocast`` to bfloat16 on the run's device (products and convolutions
    in bfloat16, the rest in float32), or nothing for "off"."""
    if autocast == "off":
        return contextlib.nullcontext()
    # no weight cache: the cache keeps one bfloat16 copy of each parameter for the whole context, which
    # would go stale when training updates the parameter in place, and a copy first made under no_grad
    # would carry no gradient to the parameter
    return torch.autocast(device_type=device.type, dtype=getattr(torch, autocast), cache_enabled=False)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for a measurement (0: left as they are), restored after."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously), so that a timing measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of the run: CUDA allocations on a GPU, the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource  # POSIX only: imported where used, so that the core imports anywhere

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def pick_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for, but this torch ({torch.__version__}) sees no "
                              "CUDA GPU; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
        full_float32()
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def full_float32() -> None:
    """float32 products on a GPU in float32, not TF32 (10 mantissa bits, which cuDNN's convolutions
    use by default): EP's update is a difference of two phases' states over β, and a relative error
    of 1e-3 in every product would be of the size of the difference itself."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, plugins: dict[str, str]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "cpu_count": os.cpu_count(),
        "tf32": torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
        if device.type == "cuda" else None,
        # float32 results depend on the CPU's vector instructions (torch picks AVX2 or AVX512
        # kernels, which round differently) and on the thread count: a reader comparing two
        # tables bit for bit needs both
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "plugins": plugins,
        "git_commit": git_commit(Path(__file__).resolve().parent),
        # where datasets were read (--data-dir / $BENCH_DATA_DIR), so that a report can say how to rerun
        "data_dir": os.environ.get("BENCH_DATA_DIR"),
    }
    return env
