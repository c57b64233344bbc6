"""Synthetic datasets: the paper's random toy data, and learnable blobs for tests.

Each split draws from its own local ``torch.Generator`` seeded from ``seed``
(train: ``2*seed``, test: ``2*seed + 1``), so the data depends only on the
parameters, never on the global RNG or on other runs, and changing ``n_train``
leaves the test split unchanged. Data are drawn on the CPU in float32 and then
moved, so every device and dtype sees the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import Dataset, Split, Splits

__all__ = ["RandomData", "Blobs"]

_PROTOTYPE_STREAM = 0x5EED_B10B5  # offset for the blob prototypes' generator


def _positive(component: str, name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{component}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _seed(component: str, seed: object) -> int:
    return _positive(component, "seed", seed, minimum=0)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


def _to(split_x: torch.Tensor, split_y: torch.Tensor, device: torch.device,
        dtype: torch.dtype, component: str) -> Split:
    if not dtype.is_floating_point:
        raise ValueError(f"{component}: dtype must be floating point, got {dtype}")
    return Split(x=split_x.to(device=device, dtype=dtype), y=split_y.to(device=device))


class RandomData(Dataset):
    """The paper's toy data: inputs ~ U[0, 1], random labels (for gradient comparisons).

    Labels uniform at random: nothing to learn.
    """

    num_classes: int  # set by __init__ (Dataset declares ``int | None``)

    params: ClassVar[list[Param]] = [
        Param("input_shape", list[int], [10], "shape of one input", min=1, max=10**7),
        Param("num_classes", int, 5, "labels are uniform over 0..num_classes-1", min=1, max=10**6),
        Param("n_train", int, 100, min=1, doc="training samples", max=10**10),
        Param("n_test", int, 100, min=1, doc="test samples", max=10**10),
        Param("seed", int, 0, "seed of the data's own generator (independent of the run's RNG)",
              min=0, max=2**63 - 1),
    ]
    example: ClassVar[dict | None] = {"n_train": 40, "n_test": 20}

    def __init__(self, input_shape: Sequence[int] = (10,), num_classes: int = 5,
                 n_train: int = 100, n_test: int = 100, seed: int = 0) -> None:
        shape = tuple(input_shape)
        if not shape:
            raise ValueError("random: input_shape must have at least one dimension")
        for d in shape:
            _positive("random", "every input_shape entry", d)
        self._input_shape = shape
        self.num_classes = _positive("random", "num_classes", num_classes)
        self.n_train = _positive("random", "n_train", n_train)
        self.n_test = _positive("random", "n_test", n_test)
        self.seed = _seed("random", seed)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    def _draw(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = _generator(seed)
        x = torch.rand((n, *self.input_shape), generator=gen, dtype=torch.float32)
        y = torch.randint(0, self.num_classes, (n,), generator=gen, dtype=torch.int64)
        return x, y

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        return Splits(
            train=_to(*self._draw(self.n_train, 2 * self.seed), device, dtype, "random"),
            test=_to(*self._draw(self.n_test, 2 * self.seed + 1), device, dtype, "random"),
            num_classes=self.num_classes,
        )

    def __repr__(self) -> str:
        return (f"RandomData(input_shape={list(self.input_shape)}, num_classes={self.num_classes}, "
                f"n_train={self.n_train}, n_test={self.n_test}, seed={self.seed})")


class Blobs(Dataset):
    """Learnable synthetic data: noisy class prototypes in [0, 1]^d, for fast tests.

    Gaussian clusters around one random prototype per class, clipped to [0, 1]^d.

    Small, fast and learnable, so tests can check that training actually
    reduces the error without needing MNIST on disk.
    """

    params: ClassVar[list[Param]] = [
        Param("input_size", int, 20, "input dimension", min=1, max=10**7),
        Param("num_classes", int, 10, "number of classes (one Gaussian cluster each)", min=1, max=10**6),
        Param("n_train", int, 500, min=1, doc="training samples", max=10**10),
        Param("n_test", int, 200, min=1, doc="test samples", max=10**10),
        Param("noise", float, 0.15, "standard deviation of the per-pixel Gaussian noise"),
        Param("seed", int, 0, "seed of the data's own generator (independent of the run's RNG)",
              min=0, max=2**63 - 1),
    ]
    example: ClassVar[dict | None] = {"n_train": 40, "n_test": 20}

    num_classes: int  # set by __init__ (Dataset declares ``int | None``)

    def __init__(self, input_size: int = 20, num_classes: int = 10, n_train: int = 500,
                 n_test: int = 200, noise: float = 0.15, seed: int = 0) -> None:
        self.input_size = _positive("blobs", "input_size", input_size)
        self.num_classes = _positive("blobs", "num_classes", num_classes)
        self.n_train = _positive("blobs", "n_train", n_train)
        self.n_test = _positive("blobs", "n_test", n_test)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise ValueError(f"blobs: noise must be a number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.seed = _seed("blobs", seed)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.input_size,)

    def prototypes(self) -> torch.Tensor:
        """The class centres (num_classes, input_size); shared by both splits."""
        gen = _generator(self.seed + _PROTOTYPE_STREAM)
        return torch.rand((self.num_classes, self.input_size), generator=gen, dtype=torch.float32)

    def _draw(self, protos: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = _generator(seed)
        y = torch.randint(0, self.num_classes, (n,), generator=gen, dtype=torch.int64)
        noise = torch.randn((n, self.input_size), generator=gen, dtype=torch.float32)
        x = (protos[y] + self.noise * noise).clamp_(0.0, 1.0)
        return x, y

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        protos = self.prototypes()
        return Splits(
            train=_to(*self._draw(protos, self.n_train, 2 * self.seed), device, dtype, "blobs"),
            test=_to(*self._draw(protos, self.n_test, 2 * self.seed + 1), device, dtype, "blobs"),
            num_classes=self.num_classes,
        )

    def __repr__(self) -> str:
        return (f"Blobs(input_size={self.input_size}, num_classes={self.num_classes}, "
                f"n_train={self.n_train}, n_test={self.n_test}, noise={self.noise}, seed={self.seed})")
