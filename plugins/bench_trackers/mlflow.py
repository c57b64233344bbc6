"""MLflow: one MLflow run per run (named by its id) with the configuration as parameters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from harness.api.components import Param
from harness.api.tracker import Tracker, flat_metric_name


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


class MLflowTracker(Tracker):
    """MLflow runs (a local file store by default): the configuration as parameters, per-epoch curves,
    final values and the status"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("tracking_uri", str | None, None, "an MLflow tracking URI (default: the file store "
              "results/<suite>/_mlflow)"),
        Param("experiment", str | None, None, "experiment name (default: the suite's name)"),
    )

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None):
        try:
            from mlflow.tracking import MlflowClient  # needs mlflow (mlflow-skinny is enough)
        except ImportError:
            raise ImportError('the mlflow tracker needs mlflow: pip install -e ".[mlflow]"') from None
        self._client_class = MlflowClient
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.runs: dict[str, tuple[Any, str]] = {}  # our run id -> (client, MLflow run id)

    def start(self, run_id: str, config: dict[str, Any], results_dir: Path) -> None:
        if self.tracking_uri is None:  # MLflow 3 keeps its file store only on request; it is what we want here
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = self.tracking_uri or (Path(results_dir) / "_mlflow").resolve().as_uri()
        client = self._client_class(tracking_uri=uri)
        name = self.experiment or str(config.get("suite", "eqprop-bench"))
        found = client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else client.create_experiment(name)
        run = client.create_run(experiment, run_name=run_id, tags={"eqprop-bench.run_id": run_id})
        for key, value in _flatten(config).items():
            client.log_param(run.info.run_id, key, value[:6000])
        self.runs[run_id] = (client, run.info.run_id)

    def log_epoch(self, run_id: str, epoch: int, values: dict[str, float]) -> None:
        client, mlrun = self.runs[run_id]
        for key, value in values.items():
            client.log_metric(mlrun, key, value, step=epoch)

    def finish(self, run_id: str, status: str, final: list[dict[str, Any]]) -> None:
        client, mlrun = self.runs.pop(run_id)
        for record in final:
            client.log_metric(mlrun, "final." + flat_metric_name(record).replace("/", "."), record["value"])
        client.set_terminated(mlrun, status="FINISHED" if status == "done" else "FAILED")
