"""The dataset contract: whole splits as tensors on the run's device.

Keeping the data on the device and batching by index keeps per-sample Python
work out of the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: `bench --help` and `bench validate` need no torch
    import torch
    from torch import Tensor

#: Environment variable naming the data directory (``--data-dir`` sets it).
DATA_DIR_ENV = "BENCH_DATA_DIR"


def default_data_dir() -> Path:
    """``--data-dir`` / ``$BENCH_DATA_DIR``, else a per-user cache directory."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eqprop-bench" / "data"


@dataclass
class Split:
    x: Tensor  # (N, *input_shape), floating point
    y: Tensor  # (N,), int64 class labels

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Splits:
    train: Split
    test: Split
    num_classes: int


class Dataset(Protocol):
    """A dataset. Optional: ``augment_batch(x, generator) -> x``, a transformation of each training
    batch (random crops, flips) drawn from ``generator``; a run kind applies it through
    :func:`augmenter`, so that a dataset without one needs nothing."""

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        """Both splits, already on ``device`` in ``dtype``."""


def augmenter(dataset: object) -> Callable[[Tensor, torch.Generator], Tensor] | None:
    """The dataset's training-batch augmentation, or None when it has none or it is switched off."""
    augment = getattr(dataset, "augment_batch", None)
    return augment if callable(augment) and getattr(dataset, "augment", True) else None


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator for one training batch of one run, from (seed, epoch, batch) alone: the same
    draws whether the run executes alone or batched with others, and after a resume, with no state
    to checkpoint."""
    import hashlib

    import torch

    digest = hashlib.sha256(f"{seed}:{epoch}:{batch}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
