"""Built-in datasets: ``mnist``, the field's image sets (``fashion_mnist``, ``kmnist``, ``cifar10``,
``cifar100``, ``svhn``), scikit-learn's ``digits``, ``random`` (the paper's toy data) and ``blobs``
(for tests).

Registered through the ``bench`` entry point like any third-party plugin. Only
light modules are imported here; MNIST files are read when a run loads them.
"""

from __future__ import annotations

from harness.api.components import Param
from harness.api.hookspecs import hookimpl

from .cifar import CIFAR10, CIFAR100
from .digits import Digits
from .idx import IDXError, read_idx
from .idx_images import KMNIST, FashionMNIST
from .mnist import MNIST, DatasetError
from .svhn import SVHN
from .synthetic import Blobs, RandomData

__all__ = ["IDXError", "read_idx", "MNIST", "DatasetError", "Blobs", "RandomData", "CIFAR10", "CIFAR100",
           "FashionMNIST", "KMNIST", "SVHN", "Digits", "register_datasets"]


def _image_params(where: str, flatten: bool) -> list[Param]:
    return [
        Param("data_dir", str | None, None, f"directory holding {where}; None: --data-dir / $BENCH_DATA_DIR, "
              "else ~/.cache/eqprop-bench/data"),
        Param("n_train", int | None, None, min=1, max=10**10, doc="use only the first N training samples (None: all)"),
        Param("n_test", int | None, None, min=1, max=10**10, doc="use only the first N test samples (None: all)"),
        Param("flatten", bool, flatten, "flat vectors for fully connected nets; false: (channels, height, width)"),
        Param("augment", bool, False, "per training batch, a random crop of the image padded by 4 and a "
              "horizontal flip with probability 1/2 (the field's standard augmentation); test images never"),
    ]


#: The image sets: name, class, where their files lie, flat by default, and what they are.
IMAGE_SETS = [
    ("fashion_mnist", FashionMNIST, "FashionMNIST/raw/ (torchvision layout)", True,
     "Fashion-MNIST: 28x28 grey images of clothing, 10 classes; IDX files, downloaded with torchvision if "
     "missing and installed."),
    ("kmnist", KMNIST, "KMNIST/raw/ (torchvision layout)", True,
     "Kuzushiji-MNIST: 28x28 grey images of cursive Japanese characters, 10 classes; IDX files."),
    ("cifar10", CIFAR10, "cifar-10-batches-py/ (the python version)", False,
     "CIFAR-10: 32x32 colour images, 10 classes; the python-version batches, read without running pickled code."),
    ("cifar100", CIFAR100, "cifar-100-python/ (the python version)", False,
     "CIFAR-100: 32x32 colour images, 100 fine classes; the python-version files."),
    ("svhn", SVHN, "train_32x32.mat and test_32x32.mat (cropped digits)", False,
     "SVHN cropped digits: 32x32 colour images of house numbers, 10 classes; .mat files, read with SciPy."),
]


@hookimpl
def register_datasets(register):
    for name, cls, where, flat, doc in IMAGE_SETS:
        register(name, cls, params=_image_params(where, flat), doc=doc, example={"n_train": 64, "n_test": 32})
    register("digits", Digits, params=[Param("flatten", bool, True, "64-vectors; false: 1x8x8")],
             doc="scikit-learn's 8x8 digits (1,797 images, 10 classes; the first 1,500 train), shipped "
                 "with scikit-learn: no download (pip install -e \".[digits]\").")
    register(
        "mnist", MNIST,
        params=[
            Param("data_dir", str | None, None,
                  "directory holding MNIST/raw/ (torchvision layout); None: --data-dir / "
                  "$BENCH_DATA_DIR, else ~/.cache/eqprop-bench/data"),
            Param("n_train", int | None, None, min=1, max=10**10,
                  doc="use only the first N training samples (None: all 60000)"),
            Param("n_test", int | None, None, min=1, max=10**10,
                  doc="use only the first N test samples (None: all 10000)"),
            Param("flatten", bool, True,
                  "784-vectors for fully connected nets; False gives 1x28x28 for conv nets"),
        ],
        doc="MNIST handwritten digits, pixels scaled to [0, 1]; read from IDX files, "
            "downloaded with torchvision if missing and installed.",
        example={"n_train": 64, "n_test": 32},
    )
    register(
        "random", RandomData,
        params=[
            Param("input_shape", list[int], [10], "shape of one input", min=1, max=10**7),
            Param("num_classes", int, 5, "labels are uniform over 0..num_classes-1", min=1, max=10**6),
            Param("n_train", int, 100, min=1, doc="training samples", max=10**10),
            Param("n_test", int, 100, min=1, doc="test samples", max=10**10),
            Param("seed", int, 0, "seed of the data's own generator (independent of the run's RNG)",
                  min=0, max=2**63 - 1),
        ],
        doc="The paper's toy data: inputs ~ U[0, 1], random labels (for gradient comparisons).",
        example={"n_train": 40, "n_test": 20},
    )
    register(
        "blobs", Blobs,
        params=[
            Param("input_size", int, 20, "input dimension", min=1, max=10**7),
            Param("num_classes", int, 10, "number of classes (one Gaussian cluster each)", min=1, max=10**6),
            Param("n_train", int, 500, min=1, doc="training samples", max=10**10),
            Param("n_test", int, 200, min=1, doc="test samples", max=10**10),
            Param("noise", float, 0.15, "standard deviation of the per-pixel Gaussian noise"),
            Param("seed", int, 0, "seed of the data's own generator (independent of the run's RNG)",
                  min=0, max=2**63 - 1),
        ],
        doc="Learnable synthetic data: noisy class prototypes in [0, 1]^d, for fast tests.",
        example={"n_train": 40, "n_test": 20},
    )
