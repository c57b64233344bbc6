"""scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes, pixel values 0–16), a real
dataset that ships inside the package, for CPU-sized work with no download. The split is fixed: the
first 1,500 images train, the last 297 test (the order scikit-learn keeps)."""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import Dataset, Split, Splits

N_TRAIN = 1500


class Digits(Dataset):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes; the first 1,500 train), shipped with
    scikit-learn: no download (pip install -e ".[digits]")."""

    params: ClassVar[list[Param]] = [Param("flatten", bool, True, "64-vectors; false: 1x8x8")]

    num_classes = 10

    def __init__(self, flatten: bool = True) -> None:
        self.flatten = bool(flatten)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (64,) if self.flatten else (1, 8, 8)

    @staticmethod
    def conformance_skip(dataset: Digits) -> str | None:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            return 'needs scikit-learn: pip install -e ".[digits]"'
        return None

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError('the digits dataset needs scikit-learn: pip install -e ".[digits]"') from None
        data = load_digits()
        x = torch.as_tensor(data.images, dtype=dtype).div_(16.0).reshape(-1, *self.input_shape).to(device)
        y = torch.as_tensor(data.target, dtype=torch.int64).to(device)
        return Splits(train=Split(x[:N_TRAIN], y[:N_TRAIN]), test=Split(x[N_TRAIN:], y[N_TRAIN:]), num_classes=10)
