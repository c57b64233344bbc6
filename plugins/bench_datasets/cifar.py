"""CIFAR-10 and CIFAR-100 from their "python version" files, as whole tensors on the run's device.

The files are the ones the dataset's page distributes and torchvision unpacks under the data
directory: ``cifar-10-batches-py/`` (``data_batch_1`` … ``data_batch_5``, ``test_batch``) and
``cifar-100-python/`` (``train``, ``test``), each a pickled dict with ``data`` (N × 3072 bytes, the
red, green and blue planes of a 32×32 image) and ``labels`` (CIFAR-100: ``fine_labels``). A pickle
can run code when loaded, so they are read with an unpickler that builds only dicts, lists, strings,
numbers and numpy arrays, and refuses anything else, naming the file.
"""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from harness.api.components import Param
from harness.api.dataset import DATA_DIR_ENV, Splits

from .images import DatasetError, ImageDataset, image_params, import_torchvision

IMAGE_SHAPE = (3, 32, 32)

#: name -> (folder, {split: files}, label key, classes, torchvision class)
LAYOUTS: dict[str, tuple[str, dict[str, list[str]], bytes, int, str]] = {
    "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                b"labels", 10, "CIFAR10"),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, b"fine_labels", 100, "CIFAR100"),
}

_SAFE = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
         ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
         ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

_CACHE: dict[tuple[str, Path], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_LOCK = threading.Lock()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to build {module}.{name}: a CIFAR batch holds only a dict of "
                                     "arrays, lists and strings")


def read_batch(path: Path, label_key: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch file: images uint8 (N, 3, 32, 32) and labels uint8 (N,); a damaged or foreign file
    raises ValueError naming it and what is wrong."""
    try:
        with open(path, "rb") as f:
            batch = _Unpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path}: not a CIFAR batch file ({type(exc).__name__}: {exc}); download it again") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: not a CIFAR batch file (a {type(batch).__name__}, not a dict)")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    if b"data" not in batch or label_key not in batch:
        raise ValueError(f"{path}: a CIFAR batch needs the keys data and {label_key.decode()}; found "
                         f"{', '.join(sorted(k.decode(errors='replace') for k in batch))}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data should be N x 3072 bytes, got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: {labels.shape} labels for {data.shape[0]} images")
    images = torch.from_numpy(data.copy()).reshape(-1, *IMAGE_SHAPE)
    return images, torch.from_numpy(labels.astype(np.int64))


class CIFAR(ImageDataset):
    """CIFAR-10 (``classes = 10``) or CIFAR-100 (100 fine classes): 3×32×32 colour images in [0, 1]."""

    input_shape_unflat = IMAGE_SHAPE
    variant = "cifar10"
    #: Why torchvision's download failed, told with the missing files ("": it did not fail, or did not run).
    download_error = ""

    def __init__(self, data_dir: str | None = None, n_train: int | None = None,
                 n_test: int | None = None, flatten: bool = False, augment: bool = False,
                 mean: list[float] | None = None, std: list[float] | None = None,
                 augment_padding: str = "black", augment_flip: bool = True,
                 augment_pad: int = 4, pad: int = 0) -> None:
        folder, _, _, classes, _ = LAYOUTS[self.variant]
        super().__init__(self.variant, classes, data_dir, n_train, n_test, flatten, augment, mean, std,
                         augment_padding, augment_flip, augment_pad, pad)
        self.folder = folder

    def files(self) -> dict[str, list[Path]]:
        folder, splits, _, _, _ = LAYOUTS[self.name]
        base = self.resolved_data_dir() / folder
        return {split: [base / f for f in names] for split, names in splits.items()}

    def missing(self) -> list[Path]:
        return [p for paths in self.files().values() for p in paths if not p.is_file()]

    def raw(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        key = (self.name, self.resolved_data_dir().resolve())
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
            if self.missing():
                self._download()
            if missing := self.missing():
                raise DatasetError(self._missing_message(missing, "the files are not there."))
            label_key, classes = LAYOUTS[self.name][2], LAYOUTS[self.name][3]
            out = {}
            for split, paths in self.files().items():
                parts = [read_batch(p, label_key) for p in paths]
                images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
                if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= classes):
                    raise ValueError(f"{paths[0].parent}: a {split} label is outside 0..{classes - 1}")
                out[split] = (images, labels)
            _CACHE[key] = out
            return out

    def _download(self) -> None:
        torchvision = import_torchvision()
        if torchvision is None:
            return
        try:
            getattr(torchvision.datasets, LAYOUTS[self.name][4])(root=str(self.resolved_data_dir()), download=True)
        except Exception as exc:  # reported with the missing files below
            self.download_error = f"torchvision's download failed ({type(exc).__name__}: {exc})."

    def _missing_message(self, missing: list[Path], reason: str) -> str:
        url = "https://www.cs.toronto.edu/~kriz/cifar.html"
        return (f"{self.name} files missing: {', '.join(str(p) for p in missing[:3])}"
                f"{' …' if len(missing) > 3 else ''}; {self.download_error or reason} To fix: download "
                f"the \"python version\" from {url} and unpack it in the data directory (--data-dir or "
                f"${DATA_DIR_ENV}), which then holds {self.folder}/, or `pip install \"eqprop-bench[vision]\"` so "
                "that torchvision downloads it there.")

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        raw = self.raw()
        return Splits(train=self.split(*raw["train"], self.n_train, "n_train", device, dtype),
                      test=self.split(*raw["test"], self.n_test, "n_test", device, dtype),
                      num_classes=self.num_classes)


class CIFAR10(CIFAR):
    """CIFAR-10: 32x32 colour images, 10 classes; the python-version batches, read without running pickled
    code.

    CIFAR-10: 50,000 training and 10,000 test colour images of 32×32 in 10 classes.
    """

    params: ClassVar[list[Param]] = image_params("cifar-10-batches-py/ (the python version)", flatten=False)

    variant = "cifar10"


class CIFAR100(CIFAR):
    """CIFAR-100: 32x32 colour images, 100 fine classes; the python-version files.

    CIFAR-100: the same images' format in 100 fine classes.
    """

    params: ClassVar[list[Param]] = image_params("cifar-100-python/ (the python version)", flatten=False)

    variant = "cifar100"


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


__all__ = ["CIFAR10", "CIFAR100", "read_batch", "clear_cache"]
