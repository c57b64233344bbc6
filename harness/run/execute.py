"""The executor contract: where and when a suite's runs execute.

An executor receives a :class:`Job` (everything a worker needs to rebuild the
runner anywhere: the suite as parsed and validated once by the command, the
results directory, the flags) and the runs to do. Workers call :func:`execute_runs` on each of :func:`work_units`
(one run, or the runs the suite batches as one model), which claims the runs,
executes and records them exactly as the in-process runner does, so results
do not depend on the executor.
"""

from __future__ import annotations

import copy
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api.executor import Executor, Local, RunResult  # re-exported: what executor plugins use
from harness.suite.spec import RunSpec


@dataclass(frozen=True)
class Job:
    suite_path: str
    results_dir: str
    device: str | None = None
    rerun_failed: bool = False
    force: bool = False
    env: dict[str, str] = field(default_factory=dict)  # e.g. BENCH_DATA_DIR, for remote workers
    overrides: dict = field(default_factory=dict)  # --set KEY=VALUE, applied wherever the suite is read
    trackers: list = field(default_factory=list)  # the suite's trackers and --tracker ones, resolved
    threads: int | None = None  # torch intra-op threads in every process that executes runs (--threads)
    #: The resolved suite (picklable): workers execute it as the command parsed and validated it,
    #: without reading the file again (which may have changed since). None: read ``suite_path``.
    suite: Any = None

    @property
    def suite_name(self) -> str:
        return self.suite.name if self.suite is not None else Path(self.suite_path).stem

    def runner(self, device: str | None = None, progress=None):
        from harness.plugins import get_manager
        from harness.run.runner import Runner
        from harness.suite.load import load_suite

        for key, value in self.env.items():
            os.environ.setdefault(key, value)
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        manager = get_manager()
        if self.suite is not None:
            suite = copy.copy(self.suite)
        else:
            suite = load_suite(self.suite_path, manager.registry, self.overrides)
        suite.trackers = list(self.trackers) or suite.trackers
        return Runner(suite, manager.registry, Path(self.results_dir), plugin_versions=manager.versions(),
                      device=device or self.device, rerun_failed=self.rerun_failed, force=self.force,
                      progress=progress)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """SIGTERM (``kill``, a scheduler's cancellation or preemption) raises KeyboardInterrupt, so that
    the runner records the run ``interrupted`` and the next ``bench run`` resumes it from its last
    checkpoint (submitit's own handler would ignore it until SIGKILL)."""
    signal.signal(signal.SIGTERM, _terminate)


def execute_runs(job: Job, run_ids: list[str], device: str | None = None,
                 position: tuple[int, int] = (1, 1)) -> list[RunResult]:
    """Execute runs of ``job`` in this process as one batch (a group of :func:`work_units`:
    the seeds or algorithms the suite batches), or the single run. ``position``: the number of
    its first run and the count of runs to do, for the progress lines ("[3/10]")."""
    from harness.run.progress import Progress

    runner = job.runner(device, progress=Progress(position[1], interval=30.0, first=position[0]))
    return [RunResult.of(o) for o in runner.execute([runner.suite.run(run_id) for run_id in run_ids])]


def work_units(job: Job, runs: list[RunSpec]) -> list[list[str]]:
    """The run ids a worker executes together: the runner's batch groups (``batch_seeds``,
    ``batch_algorithms``), else one run each."""
    return [[r.id for r in group] for group in job.runner().groups(list(runs))]


def positions(units: list[list[str]]) -> list[tuple[int, int]]:
    """For each unit, the number of its first run and the count of all runs (progress "[3/10]")."""
    total, first, out = sum(len(u) for u in units), 1, []
    for unit in units:
        out.append((first, total))
        first += len(unit)
    return out


__all__ = ["Executor", "Job", "Local", "RunResult", "execute_runs", "interrupt_on_sigterm", "positions",
           "work_units"]
