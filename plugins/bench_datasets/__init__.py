"""Built-in datasets: ``mnist``, ``random`` (the paper's toy data) and ``blobs`` (for tests).

Registered through the ``bench`` entry point like any third-party plugin. Only
light modules are imported here; MNIST files are read when a run loads them.
"""

from __future__ import annotations

from harness.components import Param
from harness.hookspecs import hookimpl

from .idx import IDXError, read_idx
from .mnist import MNIST, DatasetError
from .synthetic import Blobs, RandomData

__all__ = ["IDXError", "read_idx", "MNIST", "DatasetError", "Blobs", "RandomData",
           "register_datasets"]


@hookimpl
def register_datasets(register):
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
