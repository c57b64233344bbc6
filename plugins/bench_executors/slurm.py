"""Executor ``submitit``: each run a SLURM job (one job array per invocation).

submitit pickles :func:`harness.executor.execute_runs` with the job and a run
id (or the ids of the runs the suite batches as one model: one job for the
group); on the node it claims, executes and records the runs in the shared
results tree exactly as ``local`` would. With ``wait = false`` the command
returns once the jobs are queued; ``bench status`` and ``bench table`` gather
the results later. ``cluster = "local"`` runs the jobs as local processes
through submitit's own LocalExecutor (used by the tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.executor import Job, RunResult, execute_runs, positions, work_units


class Submitit:
    def __init__(self, folder: str | None = None, cluster: str | None = None, partition: str | None = None,
                 timeout_min: int = 240, gpus_per_node: int = 0, cpus_per_task: int = 4,
                 mem_gb: float | None = None, array_parallelism: int = 32, wait: bool = True,
                 setup: list[str] | None = None, slurm: dict | None = None):
        self.folder, self.cluster = folder, cluster
        self.params = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_node,
                       "cpus_per_task": cpus_per_task, "slurm_array_parallelism": array_parallelism}
        if partition:
            self.params["slurm_partition"] = partition
        if mem_gb is not None:
            self.params["mem_gb"] = mem_gb
        if setup:
            self.params["slurm_setup"] = list(setup)
        if slurm:
            self.params["slurm_additional_parameters"] = dict(slurm)
        self.wait = wait

    def _executor(self, folder: Path):
        try:
            import submitit
        except ImportError:
            raise RuntimeError('the submitit executor needs submitit: pip install -e ".[slurm]"') from None
        executor = submitit.AutoExecutor(folder=str(folder), cluster=self.cluster)
        params = dict(self.params)
        if executor.cluster != "slurm":  # local/debug executors take the generic names only
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
            params["tasks_per_node"] = 1
        executor.update_parameters(**params)
        return executor

    def execute(self, job: Job, runs) -> list[RunResult]:
        if not runs:
            return []
        suite_name = job.suite_name
        folder = Path(self.folder) if self.folder else Path(job.results_dir) / suite_name / "_slurm"
        executor = self._executor(folder)
        units = work_units(job, runs)  # one job per run, or per group of runs the suite batches
        jobs = executor.map_array(execute_runs, [job] * len(units), units, [None] * len(units), positions(units))
        print(f"submitit: {len(jobs)} job(s) submitted ({executor.cluster}); logs in {folder}", file=sys.stderr)
        for j, unit in zip(jobs, units):
            print(f"  job {j.job_id}: {', '.join(unit)}", file=sys.stderr)
        if not self.wait:
            return [RunResult(run_id, "submitted") for unit in units for run_id in unit]
        results = []
        for j, unit in zip(jobs, units):
            try:
                results += j.result()
            except Exception as exc:  # the job itself died (time limit, node failure)
                line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                results += [RunResult(run_id, "failed", 0.0, f"job {j.job_id}: {line}") for run_id in unit]
        return results
