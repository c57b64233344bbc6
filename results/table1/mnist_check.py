"""What the check scripts of this folder share: their command line (``--data-dir``), one torch thread,
and the first MNIST images on the CPU in float32. Imported by them (their folder is on sys.path)."""

import argparse

import torch

from bench_datasets.mnist import MNIST


def mnist(n_train: int, n_test: int, flatten: bool = True, parser: argparse.ArgumentParser | None = None):
    """The parsed command line and the MNIST splits (the first ``n_train`` / ``n_test`` images)."""
    parser = parser or argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None, help="MNIST's directory (or $BENCH_DATA_DIR)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = MNIST(data_dir=args.data_dir, n_train=n_train, n_test=n_test, flatten=flatten)
    return args, data.load(torch.device("cpu"), torch.float32)
