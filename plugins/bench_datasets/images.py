"""What the image datasets share: sizes, the data directory, conversion to the run's device and dtype,
an optional per-channel normalisation (``mean``, ``std``), and the standard augmentation of the
field's convolutional work (a random crop of the image padded by 4 black pixels, and a horizontal flip
with probability ½), applied per training batch by the run kind (``augment_batch``) so that every
epoch sees new crops, from the run's own generator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import torch

from harness.api.components import Param
from harness.api.dataset import Dataset, Split, default_data_dir

PAD = 4  # pixels of padding before the random crop (CIFAR's usual 4)
#: What the random crop pads with: black pixels, or the image's edge pixels repeated.
PADDINGS = ("black", "edge")

#: Laborieux et al. 2021's CIFAR-10 normalisation (torchvision's Normalize, after the crop and flip).
CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [3 * 0.2023, 3 * 0.1994, 3 * 0.2010]


class DatasetError(FileNotFoundError):
    """Dataset files are missing and could not be obtained."""


def import_torchvision() -> ModuleType | None:
    """torchvision (which can download the image sets), or None; any failure to import counts as not installed.

    A torchvision built against another torch raises all sorts of errors at import, not only
    ImportError; a broken optional extra must not break a set for someone who already has the files.
    """
    try:
        import torchvision  # noqa: PLC0415
    except Exception:
        return None
    return torchvision


def norm_params() -> list[Param]:
    """``mean`` and ``std``, quiet at their default (None: no normalisation) so that no stored run's id
    changes."""
    return [
        Param("mean", list[float] | None, None, "one value per image channel: pixels x in [0, 1] become "
              "(x - mean[c]) / std[c], after any crop and flip; None: x stays in [0, 1]; give with std",
              quiet_default=True),
        Param("std", list[float] | None, None, "one value per image channel, each > 0: the divisor of the "
              "normalisation (see mean); None: none; give with mean", quiet_default=True),
    ]


def check_norm(name: str, mean: Sequence[float] | None, std: Sequence[float] | None,
               channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` as tuples, or None for no normalisation; a ValueError, at construction, for a
    half-given pair, a count other than the channels', or a std that would divide by <= 0."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        given, other = ("mean", "std") if std is None else ("std", "mean")
        example = f", e.g. mean = {CIFAR10_MEAN}, std = {CIFAR10_STD}" if channels == 3 else ""
        raise ValueError(f"{name}: {given} is given but {other} is not; give both (one value per channel"
                         f"{example}) or neither")
    for what, values in (("mean", mean), ("std", std)):
        if len(values) != channels:
            raise ValueError(f"{name}: {what} has {len(values)} value{'s' if len(values) != 1 else ''} but the "
                             f"images have {channels} channel{'s' if channels != 1 else ''}; give one per channel")
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise ValueError(f"{name}: {what}[{i}] = {v!r}; give finite numbers")
    for i, v in enumerate(std):
        if v <= 0:
            raise ValueError(f"{name}: std[{i}] = {v!r}; each std must be > 0 (pixels are divided by it)")
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def normalise(x: torch.Tensor, norm: tuple[tuple[float, ...], tuple[float, ...]] | None) -> torch.Tensor:
    """``x`` of shape (N, C, H, W) mapped in place to (x - mean[c]) / std[c], the order of torchvision's
    Normalize; unchanged (the same tensor) for None."""
    if norm is None:
        return x
    mean, std = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in norm)
    return x.sub_(mean).div_(std)


def augment_params(quiet: bool = False) -> list[Param]:
    """The augmentation's parameters (``quiet``: ``augment`` too stays out of run ids at its default, for a
    set that gained them after results were stored: MNIST)."""
    return [
        Param("augment", bool, False, "per training batch, a random crop of the image padded by augment_pad and "
              "a horizontal flip with probability 1/2 (the field's standard augmentation); test images never",
              quiet_default=quiet),
        Param("augment_pad", int, PAD, "pixels of padding on each side before augment's random crop (CIFAR's "
              "usual 4; Scellier et al. 2023's grey sets: 2)", min=1, max=10**4, quiet_default=True),
        Param("augment_padding", str, "black", "what augment's crop pads with: black pixels (torchvision's "
              "default) or the edge pixels repeated (torchvision's padding_mode = 'edge', the DCHN papers' codes)",
              choices=PADDINGS, quiet_default=True),
        Param("augment_flip", bool, True, "augment's horizontal flip; false: crops only (Scellier et al. 2023's "
              "SVHN and MNIST)", quiet_default=True),
    ]


def pad_param() -> Param:
    """``pad``: black pixels added on each side of every image, train and test, at load."""
    return Param("pad", int, 0, "black pixels added on each side of every image at load, train and test (Scellier "
                 "et al. 2023 pad MNIST and Fashion-MNIST from 28x28 to 32x32: pad = 2)", min=0, max=10**4,
                 quiet_default=True)


def image_params(where: str, flatten: bool) -> list[Param]:
    """The parameters of an image set whose files lie in ``where`` under the data directory, flat by
    default or not (each image set's ``params``)."""
    return [
        Param("data_dir", str | None, None, f"directory holding {where}; None: --data-dir / $BENCH_DATA_DIR, "
              "else ~/.cache/eqprop-bench/data"),
        Param("n_train", int | None, None, min=1, max=10**10, doc="use only the first N training samples (None: all)"),
        Param("n_test", int | None, None, min=1, max=10**10, doc="use only the first N test samples (None: all)"),
        Param("flatten", bool, flatten, "flat vectors for fully connected nets; false: (channels, height, width)"),
        *augment_params(),
        *norm_params(),
        pad_param(),
    ]


@dataclass(frozen=True)
class Augmentation:
    """The field's augmentation of a training batch: each image padded by ``pad`` pixels (black, or its
    edge pixels repeated) and cropped back at random, then flipped left-right with probability ½ unless
    ``flip`` is off; black is 0, or its normalised value per channel (``norm``), so that this equals cropping
    before normalising, as torchvision's transforms do."""

    shape: tuple[int, int, int]  # (C, H, W) of one image as loaded
    pad: int = PAD
    padding: str = "black"
    flip: bool = True
    norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    @staticmethod
    def of(name: str, shape: tuple[int, int, int], augment: bool, pad: int, padding: str, flip: bool,
           norm: tuple[tuple[float, ...], tuple[float, ...]] | None) -> Augmentation | None:
        """The augmentation a dataset's parameters ask for (None: ``augment`` off), checked."""
        if padding not in PADDINGS:
            raise ValueError(f"{name}: augment_padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        if not augment and (padding != "black" or not flip or pad != PAD):
            raise ValueError(f"{name}: augment_pad, augment_padding and augment_flip shape the augmentation; set "
                             "augment = true or leave them out")
        if not augment:
            return None
        if shape[1] < 2 * pad:
            raise ValueError(f"{name}: images of {shape} are too small to augment with augment_pad = {pad}")
        return Augmentation(shape, pad, padding, flip, norm)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch (flat or not) augmented from ``generator`` (a CPU generator, the run's)."""
        n, (c, h, w), p = x.shape[0], self.shape, self.pad
        images = x.reshape(n, c, h, w)
        if self.padding == "edge":  # each border pixel repeated: commutes with the normalisation
            padded = torch.nn.functional.pad(images, (p, p, p, p), mode="replicate")
        elif self.norm is None:
            padded = torch.nn.functional.pad(images, (p, p, p, p))
        else:
            black = normalise(images.new_zeros(1, c, 1, 1), self.norm)  # the same arithmetic as the load's
            padded = black.repeat(n, 1, h + 2 * p, w + 2 * p)
            padded[:, :, p:p + h, p:p + w] = images
        dy = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=generator).to(x.device)
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)  # drawn either way: the same crops
        if not self.flip:
            flip = torch.zeros_like(flip)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # (n, h)
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # (n, w)
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        index = torch.arange(n, device=x.device)[:, None, None, None]
        out = padded[index, torch.arange(c, device=x.device)[None, :, None, None], rows[:, None, :, None],
                     cols[:, None, None, :]]
        return out.reshape(x.shape)


def padded_shape(shape: tuple[int, int, int], pad: int) -> tuple[int, int, int]:
    """``(C, H, W)`` after ``pad`` pixels on each side."""
    return (shape[0], shape[1] + 2 * pad, shape[2] + 2 * pad)


def load_images(images: torch.Tensor, device: torch.device, dtype: torch.dtype, pad: int,
                norm: tuple[tuple[float, ...], tuple[float, ...]] | None) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` as the run's tensors: moved as uint8 (4x less to transfer), scaled to
    [0, 1], padded by ``pad`` black pixels, normalised (the order of torchvision's Pad, ToTensor, Normalize)."""
    x = images.to(device).to(dtype).div_(255.0)
    if pad:
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    return normalise(x, norm)


class ImageDataset(Dataset):
    """A dataset of ``(C, H, W)`` images kept as uint8 until loaded; pixels in [0, 1], or normalised per
    channel when ``mean`` and ``std`` are given."""

    #: What the conformance kit loads of every image set: a few samples.
    example: ClassVar[dict | None] = {"n_train": 64, "n_test": 32}

    input_shape_unflat: tuple[int, int, int] = (1, 28, 28)
    num_classes: int  # set by __init__ (Dataset declares ``int | None``)

    def __init__(self, name: str, num_classes: int, data_dir: str | None, n_train: int | None,
                 n_test: int | None, flatten: bool, augment: bool, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, augment_padding: str = "black",
                 augment_flip: bool = True, augment_pad: int = PAD, pad: int = 0) -> None:
        for what, n in (("n_train", n_train), ("n_test", n_test)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise ValueError(f"{name}: {what} must be a positive integer or None, got {n!r}")
        self.name, self.num_classes = name, num_classes
        self.data_dir, self.n_train, self.n_test = data_dir, n_train, n_test
        self.flatten, self.augment = bool(flatten), bool(augment)
        self.norm = check_norm(name, mean, std, self.input_shape_unflat[0])
        self.mean: list[float] | None = list(self.norm[0]) if self.norm else None
        self.std: list[float] | None = list(self.norm[1]) if self.norm else None
        self.pad = int(pad)
        if self.pad < 0:
            raise ValueError(f"{name}: pad must be >= 0, got {pad}")
        self.files_shape = self.input_shape_unflat  # as the files hold them
        self.input_shape_unflat = padded_shape(self.files_shape, self.pad)
        self.augment_padding, self.augment_flip = augment_padding, bool(augment_flip)
        self.augment_pad = int(augment_pad)
        self.augmentation = Augmentation.of(name, self.input_shape_unflat, self.augment, self.augment_pad,
                                            augment_padding, self.augment_flip, self.norm)

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
        x = load_images(images, device, dtype, self.pad, self.norm)
        return Split(x=x.reshape(x.shape[0], *self.input_shape), y=labels.to(device=device, dtype=torch.int64))

    def augment_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A training batch augmented (:class:`Augmentation`), or as it is where ``augment`` is off."""
        return x if self.augmentation is None else self.augmentation(x, generator)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, data_dir={self.data_dir!r}, n_train={self.n_train}, "
                f"n_test={self.n_test}, flatten={self.flatten}, augment={self.augment}"
                + (f", mean={self.mean}, std={self.std}" if self.norm else "")
                + (f", augment_padding={self.augment_padding!r}" if self.augment_padding != "black" else "")
                + ("" if self.augment_flip else ", augment_flip=False")
                + (f", augment_pad={self.augment_pad}" if self.augment_pad != PAD else "")
                + (f", pad={self.pad}" if self.pad else "") + ")")
