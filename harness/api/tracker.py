"""The tracker contract: sending a run's progress to an experiment tracker (TensorBoard, MLflow...).

A tracker is a component (family ``tracker``, hook ``register_trackers``) that a suite enables with
``trackers = ["tensorboard", ...]`` or ``bench run --tracker NAME``. It never decides anything:
it receives, for each run, :meth:`Tracker.start` (the resolved configuration and the suite's
results directory, beside which it may write), :meth:`Tracker.log_epoch` for each per-epoch point,
and :meth:`Tracker.finish` with the final values and the status. Trackers are not part of a run's
configuration (they change no result), and a tracker that fails is reported as a warning and
dropped for that run: it never fails the run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.api.components import optional_member


class Tracker:
    """The tracker contract. Its three members are optional, each declared below with its default,
    which receives and does nothing: a tracker defines those it uses. The built-ins inherit this
    class; :class:`Trackers` reads a tracker that may not through :func:`capability`, which refuses a
    name not declared here."""

    def start(self, run_id: str, config: dict[str, Any], results_dir: Path) -> None:
        """A run begins (``results_dir``: the suite's results directory)."""

    def log_epoch(self, run_id: str, epoch: int, values: dict[str, float]) -> None:
        """One point of the run's curves."""

    def finish(self, run_id: str, status: str, final: list[dict[str, Any]]) -> None:
        """The run ended with ``status``; ``final`` its recorded values (``metric``, ``value``, dims)."""


def capability(tracker: object, name: str) -> Any:
    """A tracker's member ``name`` (declared on :class:`Tracker`): its own, else, for an object that does
    not inherit the class, the declared default (which does nothing). Refuses an undeclared name."""
    return optional_member(Tracker, tracker, name)


class Trackers:
    """The trackers of one run, each call guarded: a failing tracker warns once and is dropped."""

    def __init__(self, trackers: dict[str, Any], run_id: str):
        self.live, self.run_id = dict(trackers), run_id
        self.warnings: list[str] = []

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in list(self.live.items()):
            fn = capability(tracker, method)  # a tracker without this method: the default, which does nothing
            if fn is None:
                continue
            try:
                fn(self.run_id, *args)
            except Exception as exc:  # noqa: BLE001 - a tracker never fails a run
                del self.live[name]
                message = (f"tracker {name!r} failed in {method} ({type(exc).__name__}: {exc}); "
                           "the run goes on without it")
                self.warnings.append(message)
                print(f"warning: run {self.run_id}: {message}", file=sys.stderr, flush=True)

    def start(self, config: dict[str, Any], results_dir: Path) -> None:
        self._each("start", config, results_dir)

    def log_epoch(self, epoch: int, values: dict[str, float]) -> None:
        self._each("log_epoch", epoch, values)

    def finish(self, status: str, final: list[dict[str, Any]]) -> None:
        self._each("finish", status, final)


def flat_metric_name(record: dict[str, Any]) -> str:
    """``test_error``, or ``relmse/neurons/s1`` for a value recorded with dimensions."""
    dims = [str(v) for k, v in record.items() if k not in ("metric", "value")]
    return "/".join([record["metric"], *dims])
