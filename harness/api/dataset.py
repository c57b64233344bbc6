"""The dataset contract: whole splits as tensors on the run's device.

Keeping the data on the device and batching by index keeps per-sample Python
work out of the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.api.components import optional_member

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


class Dataset:
    """The dataset contract: :meth:`load` gives both splits, on the run's device.

    Optional members, declared below with their types and defaults: ``num_classes`` and
    ``input_shape`` (known before loading, so that ``bench validate`` checks them against the model),
    ``augment_batch`` and its switch ``augment``, and ``conformance_skip`` (for the kit). The built-ins
    inherit this class; the core reads a dataset that may not through :func:`capability`, which refuses
    a name not declared here.
    """

    #: The number of classes, known before loading (``None``: known only from :meth:`load`).
    num_classes: int | None = None
    #: ``augment_batch(x, generator) -> x``: a transformation of each training batch (random crops,
    #: flips) drawn from ``generator``, applied by a run kind through :func:`augmenter` (``None``: none).
    augment_batch: Callable[[Tensor, torch.Generator], Tensor] | None = None
    #: The switch of :attr:`augment_batch` (a dataset whose augmentation is a parameter sets it).
    augment: bool = True

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of one input, known before loading (``None``: known only from :meth:`load`)."""
        return None

    @staticmethod
    def conformance_skip(dataset: Any) -> str | None:
        """Why the conformance kit cannot load this dataset here (e.g. its files are not on this machine),
        or None, the default: it can."""
        return None

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        """Both splits, already on ``device`` in ``dtype``."""
        raise NotImplementedError


def capability(dataset: object, name: str) -> Any:
    """A dataset's optional member ``name`` (declared on :class:`Dataset`): its own value, else, for an
    object that does not inherit the class, the declared default. Refuses an undeclared name."""
    return optional_member(Dataset, dataset, name)


def augmenter(dataset: object) -> Callable[[Tensor, torch.Generator], Tensor] | None:
    """The dataset's training-batch augmentation, or None when it has none or it is switched off."""
    augment = capability(dataset, "augment_batch")
    return augment if callable(augment) and capability(dataset, "augment") else None


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    """A CPU generator for one training batch of one run, from (seed, epoch, batch) alone: the same
    draws whether the run executes alone or batched with others, and after a resume, with no state
    to checkpoint."""
    import hashlib

    import torch

    digest = hashlib.sha256(f"{seed}:{epoch}:{batch}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
