"""Built-in experiment trackers: TensorBoard event files and an MLflow file store.

Each needs its library, an optional extra (``pip install -e ".[tensorboard]"`` / ``".[mlflow]"``);
enable one in a suite (``trackers = ["tensorboard"]``) or with ``bench run --tracker NAME``. By
default they write beside the suite's results: ``results/<suite>/_tensorboard/<run id>/`` and
``results/<suite>/_mlflow/`` (experiment = the suite's name, one MLflow run per run).
"""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .mlflow import MLflowTracker
from .tensorboard import TensorBoardTracker


@hookimpl
def register_trackers(register):
    # each tracker declares its parameters and doc on its class, beside its __init__
    register("tensorboard", TensorBoardTracker)
    register("mlflow", MLflowTracker)


__all__ = ["MLflowTracker", "TensorBoardTracker", "register_trackers"]
