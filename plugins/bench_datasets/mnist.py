"""MNIST: the 28×28 handwritten digits of the paper's Table 1, from torchvision's on-disk layout
(``MNIST/raw/``), read and cached as the other IDX image sets are (:mod:`.idx_images`)."""

from __future__ import annotations

from typing import ClassVar

from harness.api.components import Param

from .idx_images import IDXImages
from .images import PAD, augment_params, norm_params, pad_param

__all__ = ["MNIST"]


class MNIST(IDXImages):
    """MNIST handwritten digits, pixels scaled to [0, 1]; read from IDX files, downloaded with torchvision
    if missing and installed.

    The MNIST digits; pixels in [0, 1] (or normalised: ``mean``, ``std``), flattened to 784 or kept as 1x28x28.
    """

    # MNIST's own list, not image_params(): its runs were stored before the image sets' options existed,
    # so every option but the first four stays out of run ids at its default (augment included)
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
        *augment_params(quiet=True),
        pad_param(),
    ]

    variant = "mnist"

    def __init__(self, data_dir: str | None = None, n_train: int | None = None,
                 n_test: int | None = None, flatten: bool = True, mean: list[float] | None = None,
                 std: list[float] | None = None, augment: bool = False, augment_pad: int = PAD,
                 augment_padding: str = "black", augment_flip: bool = True, pad: int = 0) -> None:
        super().__init__(data_dir, n_train, n_test, flatten, augment, mean, std, augment_padding, augment_flip,
                         augment_pad, pad)
