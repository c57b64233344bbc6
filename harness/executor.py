"""The executor contract: where and when a suite's runs execute.

An executor receives a :class:`Job` (everything a worker needs to rebuild the
runner anywhere: the suite file, the results directory, the flags) and the
runs to do. Workers call :func:`execute_run`, which claims the run, executes
it and records it exactly as the in-process runner does, so results do not
depend on the executor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .suite import RunSpec


@dataclass(frozen=True)
class Job:
    suite_path: str
    results_dir: str
    device: str | None = None
    rerun_failed: bool = False
    force: bool = False
    env: dict[str, str] = field(default_factory=dict)  # e.g. BENCH_DATA_DIR, for remote workers

    def runner(self, device: str | None = None, progress=None):
        from .plugins import get_manager
        from .runner import Runner
        from .suite import load_suite

        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        manager = get_manager()
        suite = load_suite(self.suite_path, manager.registry)
        return Runner(suite, manager.registry, Path(self.results_dir), plugin_versions=manager.versions(),
                      device=device or self.device, rerun_failed=self.rerun_failed, force=self.force,
                      progress=progress)


@dataclass
class RunResult:
    """What a worker sends back (picklable): the run id, its status, seconds, last error line."""

    run_id: str
    status: str
    seconds: float = 0.0
    error: str = ""


def execute_run(job: Job, run_id: str, device: str | None = None) -> RunResult:
    """Execute one run of ``job`` in this process (the body of every worker)."""
    from .progress import Progress

    runner = job.runner(device, progress=Progress(1, interval=30.0))
    run = runner.suite.run(run_id)
    runner.progress.start_run(1, run_id)
    outcome = runner.execute_one(run, runner.progress)
    runner.progress.end_run(run_id, outcome.status, outcome.seconds)
    last = outcome.error.strip().splitlines()[-1] if outcome.error else ""
    return RunResult(run_id, outcome.status, outcome.seconds, last)


class Executor(Protocol):
    def execute(self, job: Job, runs: list[RunSpec]) -> list[RunResult]:
        """Execute (or submit) the runs; return what is known of each when it returns."""


class Local:
    """In this process, one run after another: the default, part of the core so
    that running a suite never depends on a plugin."""

    def execute(self, job: Job, runs) -> list[RunResult]:
        runner = job.runner()
        out = []
        for o in runner.execute(runs):
            last = o.error.strip().splitlines()[-1] if o.error else ""
            out.append(RunResult(o.run.id, o.status, o.seconds, last))
        return out
