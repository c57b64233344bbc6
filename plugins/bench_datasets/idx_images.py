"""The 28×28 grey image sets kept in MNIST's four IDX files (MNIST, Fashion-MNIST, KMNIST), read from
torchvision's layout under the data directory (``MNIST/raw/``, ``FashionMNIST/raw/``, ``KMNIST/raw/``;
each file may be ``.gz``) with the strict IDX reader, downloaded with torchvision where it is installed.

The files are parsed once per process and cached as uint8 tensors, so the several runs of a suite pay
for parsing once; each load only slices and converts to the run's device and dtype."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import DATA_DIR_ENV, Splits

from .idx import read_idx
from .images import PAD, DatasetError, ImageDataset, image_params, import_torchvision

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
#: The four files torchvision keeps under ``<root>/<folder>/raw/`` (each may be ``.gz``).
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
#: name -> (folder under the data directory, torchvision class, where to get the files: "" for torchvision's)
LAYOUTS = {
    "mnist": ("MNIST", "MNIST", ""),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist"),
    "kmnist": ("KMNIST", "KMNIST", "https://github.com/rois-codh/kmnist"),
}

_CACHE: dict[tuple[str, Path], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_LOCKS = {name: threading.Lock() for name in LAYOUTS}  # one per set: a download holds up no other set


def clear_cache() -> None:
    """Forget the parsed files (tests; or after the files changed on disk)."""
    with ExitStack() as held:
        for lock in _LOCKS.values():
            held.enter_context(lock)
        _CACHE.clear()


def raw_dir(data_dir: Path | str, name: str = "mnist") -> Path:
    """Where torchvision keeps the raw files of set ``name`` under ``data_dir``."""
    return Path(data_dir).expanduser() / LAYOUTS[name][0] / "raw"


def find(directory: Path) -> tuple[dict[tuple[str, str], Path], list[str]]:
    """The four files found in ``directory`` (plain or ``.gz``) and the names of those missing."""
    found, missing = {}, []
    for key, file in FILES.items():
        for candidate in (directory / file, directory / f"{file}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(file)
    return found, missing


def _missing_message(name: str, directory: Path, missing: list[str], reason: str) -> str:
    folder, _, url = LAYOUTS[name]
    files = ", ".join(f"{m}[.gz]" for m in missing)
    return (f"{folder} files missing: {files}; looked in {directory}. {reason} To fix: set --data-dir (or "
            f"${DATA_DIR_ENV}) to a directory containing {folder}/raw/ with these files"
            + (f" (from {url})" if url else "") + ', or `pip install "eqprop-bench[vision]"` so that torchvision '
            "downloads them there.")


def _download(name: str, data_dir: Path, directory: Path, missing: list[str]) -> None:
    torchvision = import_torchvision()
    if torchvision is None:
        raise DatasetError(_missing_message(name, directory, missing,
                                            "torchvision is not installed, so they cannot be downloaded."))
    try:
        getattr(torchvision.datasets, LAYOUTS[name][1])(root=str(data_dir), train=True, download=True)
    except Exception as exc:
        raise DatasetError(_missing_message(
            name, directory, missing,
            f"Downloading them with torchvision failed ({type(exc).__name__}: {exc}).")) from exc


def _check(image_path: Path, images: torch.Tensor, label_path: Path, labels: torch.Tensor) -> None:
    if images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{image_path}: images should have shape (N, 28, 28), got {tuple(images.shape)}")
    if labels.dim() != 1:
        raise ValueError(f"{label_path}: labels should be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{label_path}: {labels.shape[0]} labels for {images.shape[0]} images in {image_path.name}")
    if labels.numel() and int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"{label_path}: label {int(labels.max())} out of range 0..{NUM_CLASSES - 1}")


def load_raw(name: str, data_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{split: (images uint8 (N, 1, 28, 28), labels uint8 (N,))}`` of set ``name``, parsed once, cached."""
    directory = raw_dir(data_dir, name).resolve()
    with _LOCKS[name]:
        if (name, directory) in _CACHE:
            return _CACHE[(name, directory)]
        found, missing = find(directory)
        if missing:
            _download(name, data_dir, directory, missing)
            found, missing = find(directory)
            if missing:
                raise DatasetError(_missing_message(name, directory, missing,
                                                    "torchvision's download did not produce them."))
        out = {}
        for split in ("train", "test"):
            images, labels = read_idx(found[(split, "images")]), read_idx(found[(split, "labels")])
            _check(found[(split, "images")], images, found[(split, "labels")], labels)
            out[split] = (images.unsqueeze(1), labels)
        _CACHE[(name, directory)] = out
        return out


class IDXImages(ImageDataset):
    """An image set in MNIST's IDX files (the subclasses fix which one: ``variant``)."""

    input_shape_unflat = (1, *IMAGE_SHAPE)
    num_classes = NUM_CLASSES
    variant = "fashion_mnist"

    def __init__(self, data_dir: str | None = None, n_train: int | None = None,
                 n_test: int | None = None, flatten: bool = True, augment: bool = False,
                 mean: list[float] | None = None, std: list[float] | None = None,
                 augment_padding: str = "black", augment_flip: bool = True,
                 augment_pad: int = PAD, pad: int = 0) -> None:
        super().__init__(self.variant, NUM_CLASSES, data_dir, n_train, n_test, flatten, augment, mean, std,
                         augment_padding, augment_flip, augment_pad, pad)

    def directory(self) -> Path:
        return raw_dir(self.resolved_data_dir(), self.name)

    def missing(self) -> list[Path]:
        return [self.directory() / file for file in find(self.directory())[1]]

    @staticmethod
    def conformance_skip(dataset: ImageDataset) -> str | None:
        """Why the conformance kit cannot load it here: its files are not on this machine."""
        assert isinstance(dataset, IDXImages)
        missing = dataset.missing()
        if not missing:
            return None
        folder = LAYOUTS[dataset.name][0]
        return (f"needs data: {folder} files missing in {dataset.directory()} ({', '.join(p.name for p in missing)}); "
                f"set --data-dir or $BENCH_DATA_DIR to a directory holding {folder}/raw/ to check it")

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        if not dtype.is_floating_point:  # before the files: a wrong dtype is wrong whatever is on disk
            raise ValueError(f"{self.name}: dtype must be floating point, got {dtype}")
        raw = load_raw(self.name, self.resolved_data_dir())
        return Splits(train=self.split(*raw["train"], self.n_train, "n_train", device, dtype),
                      test=self.split(*raw["test"], self.n_test, "n_test", device, dtype), num_classes=NUM_CLASSES)


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
