"""The core's own executor and what every executor returns: kept apart from :mod:`harness.run.execute`
(which loads plugins in a worker) so that the plugin manager can register ``local`` without an
import circle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RunResult:
    """What a worker sends back (picklable): the run id, its status, seconds, last error line, and
    whether it resumed from a checkpoint (then its seconds are only this invocation's part)."""

    run_id: str
    status: str
    seconds: float = 0.0
    error: str = ""
    resumed: bool = False

    @classmethod
    def of(cls, outcome) -> RunResult:
        """From a :class:`harness.run.runner.Outcome`."""
        return cls(outcome.run.id, outcome.status, outcome.seconds, outcome.last_error, outcome.resumed)


class Executor:
    """The executor contract: where runs execute. An executor that queues runs on a scheduler records
    each run's job with ``RunStore.write_submission({"executor": name, "job_id": ..., "log": ...})`` and
    answers :meth:`job_states`, which ``bench status`` shows beside runs that have not finished.

    Required: :meth:`execute`. Optional, declared below with its default: :meth:`job_states`. The
    built-ins inherit this class."""

    def execute(self, job: Any, runs: list[Any]) -> list[RunResult]:
        """Execute (or submit) the runs (``job``: a :class:`harness.run.execute.Job`); return what is known
        of each when it returns."""
        raise NotImplementedError

    def job_states(self, job_ids: list[str]) -> dict[str, str]:
        """The scheduler's state of each job still known to it (``PENDING``, ``RUNNING``, ...); default:
        an executor that queues nothing, ``{}``."""
        return {}


class Local(Executor):
    """in this process, one run after another (default)

    In this process, one run after another: the default, part of the core so
    that running a suite never depends on a plugin.
    """

    def execute(self, job: Any, runs) -> list[RunResult]:
        """``job``: a :class:`harness.run.execute.Job`."""
        return [RunResult.of(o) for o in job.runner().execute(runs)]

    def job_states(self, job_ids: list[str]) -> dict[str, str]:
        return {}
