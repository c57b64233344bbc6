"""MNIST from torchvision's on-disk layout, as whole tensors on the run's device.

The raw IDX files are parsed once per process and cached as uint8 tensors, so
the several runs of a suite pay for parsing once; each load only slices and
converts to the run's device and dtype.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import DATA_DIR_ENV, Dataset, Split, Splits, default_data_dir

from .idx import read_idx
from .images import PAD, Augmentation, augment_params, check_norm, load_images, norm_params, pad_param, padded_shape

__all__ = ["MNIST", "DatasetError", "FILES", "raw_dir", "clear_cache"]

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
#: The four files torchvision keeps under ``<root>/MNIST/raw/`` (each may be ``.gz``).
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

_CACHE: dict[Path, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
_CACHE_LOCK = threading.Lock()


class DatasetError(FileNotFoundError):
    """Dataset files are missing and could not be obtained."""


def clear_cache() -> None:
    """Forget the parsed files (tests; or after the files changed on disk)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def raw_dir(data_dir: Path | str) -> Path:
    """Where torchvision's ``MNIST(root=data_dir)`` keeps the raw files."""
    return Path(data_dir).expanduser() / "MNIST" / "raw"


def import_torchvision() -> ModuleType | None:
    """torchvision, or None; any failure to import counts as not installed.

    A torchvision built against another torch raises all sorts of errors at
    import, not only ImportError; a broken optional extra must not break MNIST
    for someone who already has the files.
    """
    try:
        import torchvision  # noqa: PLC0415
    except Exception:
        return None
    return torchvision


def _find(directory: Path) -> tuple[dict[tuple[str, str], Path], list[str]]:
    found, missing = {}, []
    for key, name in FILES.items():
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(name)
    return found, missing


def _missing_message(directory: Path, missing: list[str], reason: str) -> str:
    files = ", ".join(f"{m}[.gz]" for m in missing)
    return (
        f"MNIST files missing: {files}; looked in {directory}. {reason} To fix: set --data-dir "
        f"(or ${DATA_DIR_ENV}) to a directory containing MNIST/raw/ with these files, or "
        f'`pip install "eqprop-bench[vision]"` so that torchvision downloads them there.'
    )


def _download(data_dir: Path, directory: Path, missing: list[str]) -> None:
    torchvision = import_torchvision()
    if torchvision is None:
        raise DatasetError(_missing_message(
            directory, missing, "torchvision is not installed, so they cannot be downloaded."))
    try:
        torchvision.datasets.MNIST(root=str(data_dir), train=True, download=True)
    except Exception as exc:
        raise DatasetError(_missing_message(
            directory, missing,
            f"Downloading them with torchvision failed ({type(exc).__name__}: {exc}).")) from exc


def _load_raw(data_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Parsed ``{split: (images uint8 (N,28,28), labels uint8 (N,))}``, cached."""
    directory = raw_dir(data_dir).resolve()
    with _CACHE_LOCK:
        if directory in _CACHE:
            return _CACHE[directory]
        found, missing = _find(directory)
        if missing:
            _download(data_dir, directory, missing)
            found, missing = _find(directory)
            if missing:
                raise DatasetError(_missing_message(
                    directory, missing, "torchvision's download did not produce them."))
        splits = {}
        for split in ("train", "test"):
            images = read_idx(found[(split, "images")])
            labels = read_idx(found[(split, "labels")])
            _check(found[(split, "images")], images, found[(split, "labels")], labels)
            splits[split] = (images, labels)
        _CACHE[directory] = splits
        return splits


def _check(image_path: Path, images: torch.Tensor, label_path: Path, labels: torch.Tensor) -> None:
    if images.dim() != 3 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{image_path}: MNIST images should have shape (N, 28, 28), "
                         f"got {tuple(images.shape)}")
    if labels.dim() != 1:
        raise ValueError(f"{label_path}: MNIST labels should be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{label_path} has {labels.shape[0]} labels but {image_path} has "
                         f"{images.shape[0]} images")
    if labels.numel() and int(labels.max()) >= NUM_CLASSES:
        raise ValueError(f"{label_path}: label {int(labels.max())} out of range 0..{NUM_CLASSES - 1}")


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"mnist: {name} must be a positive integer or None, got {value!r}")


class MNIST(Dataset):
    """MNIST handwritten digits, pixels scaled to [0, 1]; read from IDX files, downloaded with torchvision
    if missing and installed.

    The MNIST digits; pixels in [0, 1] (or normalised: ``mean``, ``std``), flattened to 784 or kept as 1x28x28.
    """

    params: ClassVar[list[Param]] = [
        Param("data_dir", str | None, None,
              "directory holding MNIST/raw/ (torchvision layout); None: --data-dir / "
              "$BENCH_DATA_DIR, else ~/.cache/eqprop-bench/data"),
        Param("n_train", int | None, None, min=1, max=10**10,
              doc="use only the first N training samples (None: all 60000)"),
        Param("n_test", int | None, None, min=1, max=10**10,
              doc="use only the first N test samples (None: all 10000)"),
        Param("flatten", bool, True,
              "784-vectors for fully connected nets; False gives 1x28x28 for conv nets"),
        *norm_params(),
        # after results were stored: every one quiet at its default, so the paper's runs keep their ids
        *augment_params(quiet=True),
        pad_param(),
    ]
    example: ClassVar[dict | None] = {"n_train": 64, "n_test": 32}

    num_classes = NUM_CLASSES

    def __init__(self, data_dir: str | None = None, n_train: int | None = None,
                 n_test: int | None = None, flatten: bool = True, mean: list[float] | None = None,
                 std: list[float] | None = None, augment: bool = False, augment_pad: int = PAD,
                 augment_padding: str = "black", augment_flip: bool = True, pad: int = 0) -> None:
        _check_count("n_train", n_train)
        _check_count("n_test", n_test)
        self.data_dir = data_dir
        self.n_train = n_train
        self.n_test = n_test
        self.flatten = bool(flatten)
        self.norm = check_norm("mnist", mean, std, 1)
        self.mean: list[float] | None = list(self.norm[0]) if self.norm else None
        self.std: list[float] | None = list(self.norm[1]) if self.norm else None
        self.pad, self.augment = int(pad), bool(augment)
        if self.pad < 0:
            raise ValueError(f"mnist: pad must be >= 0, got {pad}")
        self.augment_padding, self.augment_flip = augment_padding, bool(augment_flip)
        self.augment_pad = int(augment_pad)
        self.augmentation = Augmentation.of("mnist", self.shape, self.augment, self.augment_pad, augment_padding,
                                            self.augment_flip, self.norm)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(1, H, W)`` of one image as loaded (28x28, plus ``pad`` on each side)."""
        return padded_shape((1, *IMAGE_SHAPE), self.pad)

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch augmented (``augment``), or as it is."""
        return x if self.augmentation is None else self.augmentation(x, generator)

    @property
    def input_shape(self) -> tuple[int, ...]:
        c, h, w = self.shape
        return (c * h * w,) if self.flatten else (c, h, w)

    @staticmethod
    def conformance_skip(dataset: MNIST) -> str | None:
        """Why the conformance kit cannot load it here: the IDX files are not on this machine."""
        directory = raw_dir(dataset.resolved_data_dir())
        missing = [n for n in FILES.values()
                   if not (directory / n).is_file() and not (directory / f"{n}.gz").is_file()]
        if missing:
            return (f"needs data: MNIST files missing in {directory} ({', '.join(missing)}); set "
                    f"--data-dir or $BENCH_DATA_DIR to a directory holding MNIST/raw/ to check it")
        return None

    def resolved_data_dir(self) -> Path:
        """Resolved at load time, so ``--data-dir`` set after construction still counts."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def load(self, device: torch.device, dtype: torch.dtype) -> Splits:
        if not dtype.is_floating_point:
            raise ValueError(f"mnist: dtype must be floating point, got {dtype}")
        raw = _load_raw(self.resolved_data_dir())
        return Splits(
            train=self._split(*raw["train"], self.n_train, "n_train", device, dtype),
            test=self._split(*raw["test"], self.n_test, "n_test", device, dtype),
            num_classes=NUM_CLASSES,
        )

    def _split(self, images: torch.Tensor, labels: torch.Tensor, n: int | None, name: str,
               device: torch.device, dtype: torch.dtype) -> Split:
        total = images.shape[0]
        if n is not None and n > total:
            raise ValueError(f"mnist: {name}={n} but the split has only {total} samples")
        if n is not None:
            images, labels = images[:n], labels[:n]
        x = load_images(images.reshape(images.shape[0], 1, *IMAGE_SHAPE), device, dtype, self.pad, self.norm)
        x = x.reshape(x.shape[0], *self.input_shape)
        y = labels.to(device=device, dtype=torch.int64)
        return Split(x=x, y=y)

    def __repr__(self) -> str:
        return (f"MNIST(data_dir={self.data_dir!r}, n_train={self.n_train}, "
                f"n_test={self.n_test}, flatten={self.flatten}"
                + (f", mean={self.mean}, std={self.std})" if self.norm else ")"))
