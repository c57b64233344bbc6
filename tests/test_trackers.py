"""Experiment trackers: what the TensorBoard and MLflow sinks wrote, read back with their own readers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.commands import main

pytestmark = pytest.mark.usefixtures("one_thread")
QUICK = Path(__file__).resolve().parent.parent / "suites" / "table1-quick.toml"
DATA = os.environ.get("BENCH_DATA_DIR")


def _run(tmp_path, *args):
    result = CliRunner().invoke(main, ["run", str(QUICK), "--results-dir", str(tmp_path), "--no-table",
                                       "--only", "P-1h-ep-s0-*", "--set", "dataset.n_train=200", *args])
    assert "Traceback" not in result.output
    return result


@pytest.mark.skipif(not DATA or not (Path(DATA) / "MNIST" / "raw").is_dir(), reason="needs MNIST ($BENCH_DATA_DIR)")
@pytest.mark.slow
def test_tensorboard_and_mlflow_receive_a_table1_quick_run(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _run(tmp_path, "--tracker", "tensorboard", "--tracker", "mlflow")
    # no tracker warned (the run's own warnings, e.g. an unsettled free phase after 200 images, may appear)
    assert result.exit_code == 0 and "tracker" not in result.output, result.output
    [run] = [p for p in (tmp_path / "table1-quick").iterdir() if not p.name.startswith("_")]
    metrics = json.loads((run / "metrics.json").read_text())
    final = {r["metric"]: r["value"] for r in metrics["final"]}
    test_error = metrics["curves"][0]["test_error"]

    events = EventAccumulator(str(tmp_path / "table1-quick" / "_tensorboard" / run.name))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("epoch/test_error")] == [(1, pytest.approx(test_error))]
    assert events.Scalars("final/train_error")[0].value == pytest.approx(final["train_error"])

    client = MlflowClient(tracking_uri=(tmp_path / "table1-quick" / "_mlflow").resolve().as_uri())
    [mlrun] = client.search_runs([client.get_experiment_by_name("table1-quick").experiment_id])
    assert mlrun.info.run_name == run.name and mlrun.info.status == "FINISHED"
    assert mlrun.data.params["slots.model.params.hidden"] == "[512]"
    assert mlrun.data.params["slots.dataset.params.n_train"] == "200"
    history = client.get_metric_history(mlrun.info.run_id, "test_error")
    assert [(m.step, m.value) for m in history] == [(1, pytest.approx(test_error))]
    assert mlrun.data.metrics["final.test_error"] == pytest.approx(final["test_error"])


def test_a_failing_tracker_warns_and_never_fails_the_run(tmp_path, monkeypatch):
    import bench_trackers.tensorboard as tb

    def broken(self, run_id, epoch, values):
        raise OSError("disk full")

    monkeypatch.setattr(tb.TensorBoardTracker, "log_epoch", broken)
    suite = tmp_path / "s.toml"
    suite.write_text("""
name = "t"
[[runs]]
name = "net"
kind = "train"
device = "cpu"
T = 5
K = 2
epochs = 2
batch_size = 10
dataset = { name = "blobs", input_size = 6, num_classes = 3, n_train = 40, n_test = 20 }
model = { name = "p", input_size = 6, output_size = 3, hidden = [5] }
algorithm = { name = "ep", beta = 0.5, lr = [0.1, 0.1] }
""")
    pytest.importorskip("tensorboard")
    result = CliRunner().invoke(main, ["run", str(suite), "--results-dir", str(tmp_path / "r"), "--tracker",
                                       "tensorboard", "--no-table"])
    assert result.exit_code == 0, result.output
    assert "tracker 'tensorboard' failed in log_epoch (OSError: disk full); the run goes on without it" in result.output
    [run] = [p for p in (tmp_path / "r" / "t").iterdir() if not p.name.startswith("_")]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "done" and [w for w in status["warnings"] if w.startswith("tracker")] == [
        "tracker 'tensorboard' failed in log_epoch (OSError: disk full); the run goes on without it"]


def test_an_unknown_tracker_is_refused_with_a_suggestion(tmp_path):
    result = _run(tmp_path, "--tracker", "tensorbord")
    assert result.exit_code == 1 and "unknown tracker 'tensorbord' (did you mean 'tensorboard'?)" in result.output


@pytest.mark.skipif(not DATA or not (Path(DATA) / "MNIST" / "raw").is_dir(), reason="needs MNIST ($BENCH_DATA_DIR)")
def test_the_report_says_which_data_directory_the_runs_read(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(Path(DATA).resolve()))
    assert _run(tmp_path).exit_code == 0
    result = CliRunner().invoke(main, ["report", str(QUICK), "--results-dir", str(tmp_path),
                                       "--set", "dataset.n_train=200"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "table1-quick" / "report.md").read_text()
    assert f"--set dataset.n_train=200 --data-dir {os.path.relpath(Path(DATA).resolve())}" in text


def test_a_relative_log_dir_is_inside_the_suites_results_directory(tmp_path):
    pytest.importorskip("tensorboard")
    from bench_trackers.tensorboard import TensorBoardTracker

    results = tmp_path / "results" / "suite"
    tracker = TensorBoardTracker(log_dir="tb")
    tracker.start("r1", {"name": "r"}, results)
    tracker.finish("r1", "done", [])
    assert (results / "tb" / "r1").is_dir() and not (tmp_path / "tb").exists()
    with pytest.raises(ValueError, match="leads outside the suite's results directory"):
        TensorBoardTracker(log_dir="../../x")
    assert TensorBoardTracker(log_dir=str(tmp_path / "abs")).log_dir == str(tmp_path / "abs")  # asked for
