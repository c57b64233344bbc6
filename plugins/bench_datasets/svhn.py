"""SVHN, the cropped digits: 3×32×32 colour images of house numbers in 10 classes, from the files
``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB 5 files, read with SciPy: ``X`` of shape
(32, 32, 3, N), ``y`` of shape (N, 1) with the digit 0 labelled 10) directly in the data directory,
where torchvision's ``SVHN(root)`` puts them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from harness.api.components import Param
from harness.api.dataset import DATA_DIR_ENV, Splits

from .images import DatasetError, ImageDataset, image_params, import_torchvision

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
URL = "http://ufldl.stanford.edu/housenumbers/"
_CACHE: dict[Path, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_LOCK = threading.Lock()


def read_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DatasetError(f"{path}: reading SVHN's .mat files needs SciPy: pip install scipy") from None
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure of a damaged file
        raise ValueError(f"{path}: not a readable SVHN .mat file ({type(exc).__name__}: {exc}); download it "
                         "again") from None
    if "X" not in mat or "y" not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: an SVHN file holds X and y; found {found}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise ValueError(f"{path}: X should be uint8 (32, 32, 3, N) with N labels, got {x.dtype} {x.shape} and "
                         f"{y.shape[0]} labels")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise ValueError(f"{path}: labels should be 1..10 (10 is the digit 0), found {y.min()}..{y.max()}")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))
    return images, torch.from_numpy((y % 10).astype(np.int64))


class SVHN(ImageDataset):
    """SVHN cropped digits: 32x32 colour images of house numbers, 10 classes; .mat files, read with SciPy."""

    params: ClassVar[list[Param]] = image_params("train_32x32.mat and test_32x32.mat (cropped digits)",
                                                 flatten=False)

    input_shape_unflat = (3, 32, 32)

    def __init__(self, data_dir: str | None = None, n_train: int | None = None, n_test: int | None = None,
                 flatten: bool = False, augment: bool = False, mean: list[float] | None = None,
                 std: list[float] | None = None,
                 augment_padding: str = "black", augment_flip: bool = True,
                 augment_pad: int = 4, pad: int = 0) -> None:
        super().__init__("svhn", 10, data_dir, n_train, n_test, flatten, augment, mean, std,
                         augment_padding, augment_flip, augment_pad, pad)

    def missing(self) -> list[Path]:
        return [self.resolved_data_dir() / f for f in FILES.values() if not (self.resolved_data_dir() / f).is_file()]

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        root = self.resolved_data_dir()
        with _LOCK:
            if root.resolve() not in _CACHE:
                if self.missing() and (torchvision := import_torchvision()) is not None:
                    for split in FILES:
                        try:
                            torchvision.datasets.SVHN(root=str(root), split=split, download=True)
                        except Exception:  # noqa: BLE001 - reported with the missing files below
                            pass
                if missing := self.missing():
                    raise DatasetError(f"svhn files missing: {', '.join(str(p) for p in missing)}. To fix: download "
                                       f"them (\"Format 2: cropped digits\") from {URL} into the data directory "
                                       f"(--data-dir or ${DATA_DIR_ENV}), or `pip install \"eqprop-bench[vision]\"` "
                                       "so that torchvision downloads them there.")
                _CACHE[root.resolve()] = {s: read_mat(root / f) for s, f in FILES.items()}
            raw = _CACHE[root.resolve()]
        return Splits(train=self.split(*raw["train"], self.n_train, "n_train", device, dtype),
                      test=self.split(*raw["test"], self.n_test, "n_test", device, dtype), num_classes=10)
