"""Built-in experiment trackers: TensorBoard event files and an MLflow file store.

Each needs its library, an optional extra (``pip install -e ".[tensorboard]"`` / ``".[mlflow]"``);
enable one in a suite (``trackers = ["tensorboard"]``) or with ``bench run --tracker NAME``. By
default they write beside the suite's results: ``results/<suite>/_tensorboard/<run id>/`` and
``results/<suite>/_mlflow/`` (experiment = the suite's name, one MLflow run per run).
"""

from __future__ import annotations

from harness.api.components import Param
from harness.api.hookspecs import hookimpl

from .mlflow import MLflowTracker
from .tensorboard import TensorBoardTracker


@hookimpl
def register_trackers(register):
    register("tensorboard", TensorBoardTracker, doc="TensorBoard event files: per-epoch curves and final values "
             "of every run, one directory per run", params=[
                 Param("log_dir", str | None, None, "where to write: absolute, or relative to results/<suite>/ "
                       "and inside it (default: _tensorboard)"),
             ])
    register("mlflow", MLflowTracker, doc="MLflow runs (a local file store by default): the configuration as "
             "parameters, per-epoch curves, final values and the status", params=[
                 Param("tracking_uri", str | None, None, "an MLflow tracking URI (default: the file store "
                       "results/<suite>/_mlflow)"),
                 Param("experiment", str | None, None, "experiment name (default: the suite's name)"),
             ])


__all__ = ["MLflowTracker", "TensorBoardTracker", "register_trackers"]
