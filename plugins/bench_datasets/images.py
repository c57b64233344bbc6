"""What the image datasets share: sizes, the data directory, conversion to the run's device and dtype,
and the standard augmentation of the field's convolutional work (a random crop of the image padded by
4 pixels, and a horizontal flip with probability ½), applied per training batch by the run kind
(``augment_batch``) so that every epoch sees new crops, from the run's own generator."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import Dataset, Split, default_data_dir

PAD = 4  # pixels of zero padding before the random crop (CIFAR's usual 4)


def image_params(where: str, flatten: bool) -> list[Param]:
    """The parameters of an image set whose files lie in ``where`` under the data directory, flat by
    default or not (each image set's ``params``)."""
    return [
        Param("data_dir", str | None, None, f"directory holding {where}; None: --data-dir / $BENCH_DATA_DIR, "
              "else ~/.cache/eqprop-bench/data"),
        Param("n_train", int | None, None, min=1, max=10**10, doc="use only the first N training samples (None: all)"),
        Param("n_test", int | None, None, min=1, max=10**10, doc="use only the first N test samples (None: all)"),
        Param("flatten", bool, flatten, "flat vectors for fully connected nets; false: (channels, height, width)"),
        Param("augment", bool, False, "per training batch, a random crop of the image padded by 4 and a "
              "horizontal flip with probability 1/2 (the field's standard augmentation); test images never"),
    ]


class ImageDataset(Dataset):
    """A dataset of ``(C, H, W)`` images kept as uint8 until loaded; pixels in [0, 1]."""

    #: What the conformance kit loads of every image set: a few samples.
    example: ClassVar[dict | None] = {"n_train": 64, "n_test": 32}

    input_shape_unflat: tuple[int, int, int] = (1, 28, 28)
    num_classes: int  # set by __init__ (Dataset declares ``int | None``)

    def __init__(self, name: str, num_classes: int, data_dir: str | None, n_train: int | None,
                 n_test: int | None, flatten: bool, augment: bool) -> None:
        self.name, self.num_classes = name, num_classes
        self.data_dir, self.n_train, self.n_test = data_dir, n_train, n_test
        self.flatten, self.augment = bool(flatten), bool(augment)
        if self.augment and self.input_shape_unflat[1] < 2 * PAD:
            raise ValueError(f"{name}: images of {self.input_shape_unflat} are too small to augment")

    @property
    def input_shape(self) -> tuple[int, ...]:
        c, h, w = self.input_shape_unflat
        return (c * h * w,) if self.flatten else (c, h, w)

    def resolved_data_dir(self) -> Path:
        """Resolved at load time, so ``--data-dir`` set after construction still counts."""
        return Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()

    def missing(self) -> list[Path]:
        """The files this dataset needs that are not on disk (none for one that ships with a package)."""
        return []

    @staticmethod
    def conformance_skip(dataset: ImageDataset) -> str | None:
        """Why the conformance kit cannot load it here: its files are not on this machine."""
        missing = dataset.missing()
        if missing:
            return (f"needs data: {dataset.name} files missing ({', '.join(str(p) for p in missing[:2])}); set "
                    "--data-dir or $BENCH_DATA_DIR to the directory holding them to check it")
        return None

    def split(self, images: torch.Tensor, labels: torch.Tensor, n: int | None, what: str,
              device: torch.device, dtype: torch.dtype) -> Split:
        if not dtype.is_floating_point:
            raise ValueError(f"{self.name}: dtype must be floating point, got {dtype}")
        if n is not None and n > images.shape[0]:
            raise ValueError(f"{self.name}: {what}={n} but the split has only {images.shape[0]} samples")
        if n is not None:
            images, labels = images[:n], labels[:n]
        x = images.to(device).to(dtype).div_(255.0)  # moved as uint8: 4x less to transfer
        return Split(x=x.reshape(x.shape[0], *self.input_shape), y=labels.to(device=device, dtype=torch.int64))

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch, each image cropped at random from itself padded by ``PAD`` zeros and
        flipped left-right with probability ½ (``generator``: a CPU generator, the run's)."""
        if not self.augment:
            return x
        n = x.shape[0]
        c, h, w = self.input_shape_unflat
        images = x.reshape(n, c, h, w)
        padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
        dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator).to(x.device)
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (n, h)
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # (n, w)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        index = torch.arange(n, device=x.device)[:, None, None, None]
        out = padded[index, torch.arange(c, device=x.device)[None, :, None, None], rows[:, None, :, None],
                     cols[:, None, None, :]]
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, data_dir={self.data_dir!r}, n_train={self.n_train}, "
                f"n_test={self.n_test}, flatten={self.flatten}, augment={self.augment})")
