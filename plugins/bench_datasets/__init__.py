"""Built-in datasets: ``mnist``, the field's image sets (``fashion_mnist``, ``kmnist``, ``cifar10``,
``cifar100``, ``svhn``), scikit-learn's ``digits``, ``random`` (the paper's toy data) and ``blobs``
(for tests).

Registered through the ``bench`` entry point like any third-party plugin. Only
light modules are imported here; MNIST files are read when a run loads them.
"""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .cifar import CIFAR10, CIFAR100
from .digits import Digits
from .idx import IDXError, read_idx
from .idx_images import KMNIST, DatasetError, FashionMNIST
from .mnist import MNIST
from .svhn import SVHN
from .synthetic import Blobs, RandomData

__all__ = ["IDXError", "read_idx", "MNIST", "DatasetError", "Blobs", "RandomData", "CIFAR10", "CIFAR100",
           "FashionMNIST", "KMNIST", "SVHN", "Digits", "register_datasets"]


@hookimpl
def register_datasets(register):
    # each dataset declares its parameters, doc and example on its class, beside its __init__
    register("fashion_mnist", FashionMNIST)
    register("kmnist", KMNIST)
    register("cifar10", CIFAR10)
    register("cifar100", CIFAR100)
    register("svhn", SVHN)
    register("digits", Digits)
    register("mnist", MNIST)
    register("random", RandomData)
    register("blobs", Blobs)
