"""The dataset contract: whole splits as tensors on the run's device.

Keeping the data on the device and batching by index keeps per-sample Python
work out of the training loop.
"""

from __future__ import annotations

import os
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
    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        """Both splits, already on ``device`` in ``dtype``."""
