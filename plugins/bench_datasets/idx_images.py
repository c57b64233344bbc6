"""Fashion-MNIST and KMNIST: 28×28 grey images in 10 classes, in MNIST's IDX files, read from
torchvision's layout under the data directory (``FashionMNIST/raw/``, ``KMNIST/raw/``, the four
files of MNIST's names, each may be ``.gz``) with the strict IDX reader."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import DATA_DIR_ENV, Splits

from .idx import read_idx
from .images import ImageDataset, image_params
from .mnist import FILES, DatasetError, import_torchvision

#: name -> (folder under the data directory, torchvision class, where to get the files)
LAYOUTS = {
    "fashion_mnist": ("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist"),
    "kmnist": ("KMNIST", "KMNIST", "https://github.com/rois-codh/kmnist"),
}

_CACHE: dict[tuple[str, Path], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_LOCK = threading.Lock()


class IDXImages(ImageDataset):
    input_shape_unflat = (1, 28, 28)
    variant = "fashion_mnist"

    def __init__(self, data_dir: str | None = None, n_train: int | None = None,
                 n_test: int | None = None, flatten: bool = True, augment: bool = False,
                 mean: list[float] | None = None, std: list[float] | None = None,
                 augment_padding: str = "black", augment_flip: bool = True,
                 augment_pad: int = 4, pad: int = 0) -> None:
        super().__init__(self.variant, 10, data_dir, n_train, n_test, flatten, augment, mean, std,
                         augment_padding, augment_flip, augment_pad, pad)

    def directory(self) -> Path:
        return self.resolved_data_dir() / LAYOUTS[self.name][0] / "raw"

    def _find(self) -> dict[tuple[str, str], Path]:
        found = {}
        for key, name in FILES.items():
            for candidate in (self.directory() / name, self.directory() / f"{name}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        return found

    def missing(self) -> list[Path]:
        found = self._find()
        return [self.directory() / name for key, name in FILES.items() if key not in found]

    def raw(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        key = (self.name, self.directory().resolve())
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
            if self.missing() and (torchvision := import_torchvision()) is not None:
                try:
                    getattr(torchvision.datasets, LAYOUTS[self.name][1])(root=str(self.resolved_data_dir()),
                                                                        download=True)
                except Exception:  # noqa: BLE001 - reported with the missing files below
                    pass
            if missing := self.missing():
                folder, _, url = LAYOUTS[self.name]
                raise DatasetError(
                    f"{self.name} files missing: {', '.join(p.name + '[.gz]' for p in missing)}; looked in "
                    f"{self.directory()}. To fix: download them from {url} into {folder}/raw/ under the data "
                    f"directory (--data-dir or ${DATA_DIR_ENV}), or `pip install \"eqprop-bench[vision]\"` so that "
                    "torchvision downloads them there.")
            found, out = self._find(), {}
            for split in ("train", "test"):
                images, labels = read_idx(found[(split, "images")]), read_idx(found[(split, "labels")])
                if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
                    raise ValueError(f"{found[(split, 'images')]}: images should be (N, 28, 28), "
                                     f"got {tuple(images.shape)}")
                if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
                    raise ValueError(f"{found[(split, 'labels')]}: {tuple(labels.shape)} labels for "
                                     f"{images.shape[0]} images")
                if labels.numel() and int(labels.max()) >= 10:
                    raise ValueError(f"{found[(split, 'labels')]}: label {int(labels.max())} out of range 0..9")
                out[split] = (images.unsqueeze(1), labels)
            _CACHE[key] = out
            return out

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        raw = self.raw()
        return Splits(train=self.split(*raw["train"], self.n_train, "n_train", device, dtype),
                      test=self.split(*raw["test"], self.n_test, "n_test", device, dtype), num_classes=10)


class FashionMNIST(IDXImages):
    """Fashion-MNIST: 28x28 grey images of clothing, 10 classes; IDX files, downloaded with torchvision if
    missing and installed.

    Zalando's Fashion-MNIST: 28×28 grey images of clothing in 10 classes, MNIST's sizes and files.
    """

    params: ClassVar[list[Param]] = image_params("FashionMNIST/raw/ (torchvision layout)", flatten=True)

    variant = "fashion_mnist"


class KMNIST(IDXImages):
    """Kuzushiji-MNIST: 28x28 grey images of cursive Japanese characters, 10 classes; IDX files.

    Kuzushiji-MNIST: 28×28 grey images of cursive Japanese characters in 10 classes.
    """

    params: ClassVar[list[Param]] = image_params("KMNIST/raw/ (torchvision layout)", flatten=True)

    variant = "kmnist"
