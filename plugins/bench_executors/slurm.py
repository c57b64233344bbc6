"""Executor ``submitit``: the runs as SLURM jobs, through submitit (one job array per resource set).

submitit pickles :func:`execute_chunk` with the job and the work units of one array task (a unit
is a run, or the runs the suite batches as one model); on the node each unit is claimed, executed
and recorded in the shared results tree exactly as ``local`` would. ``runs_per_job`` units share a
task, one after another, so that a suite of many small runs is a few jobs (clusters punish
thousands of tiny ones). A run's ``resources`` (partition, timeout_min, cpus, mem_gb, gpus, gres,
slurm) override the executor's defaults; runs that ask for different resources go to different
arrays. Every queued run gets a ``submission.json`` (job id, log files), which ``bench status``
shows with the job's state. With ``wait = false`` the command returns once the jobs are queued;
``bench status`` and ``bench table`` gather the results later. ``cluster = "local"`` runs the jobs
as local processes through submitit's own LocalExecutor (used by the tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

from harness.api.components import Param
from harness.results.store import RunStore
from harness.run.execute import Executor, Job, RunResult, execute_runs, interrupt_on_sigterm, positions, work_units


def execute_chunk(job: Job, chunk: list[tuple[list[str], tuple[int, int]]]) -> list[RunResult]:
    """The units of one array task, one after another (each: its run ids and its progress position)."""
    interrupt_on_sigterm()  # scancel: the run is recorded interrupted, and resumes at the next bench run
    out: list[RunResult] = []
    for run_ids, position in chunk:
        out += execute_runs(job, run_ids, None, position)
    return out


class Submitit(Executor):
    """SLURM jobs through submitit (a job array per invocation)"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("folder", str | None, None, "logs and pickles (default <results>/<suite>/_slurm)"),
        Param("cluster", str | None, None, "None = SLURM if available; \"local\" or \"debug\" to test"),
        Param("partition", str | None, None, "SLURM partition"),
        Param("timeout_min", int, 240, "time limit per job, minutes", min=1, max=10**6),
        Param("gpus_per_node", int, 0, "GPUs per job", min=0, max=1024),
        Param("cpus_per_task", int, 4, "CPU cores per job", min=1, max=4096),
        Param("mem_gb", float | None, None, "memory per job, GB"),
        Param("array_parallelism", int, 32, "jobs of the array running at once", min=1, max=10**6),
        Param("wait", bool, True, "wait for the jobs and print the tables; false: return once queued"),
        Param("setup", list[str] | None, None, "shell lines run before each job (module load, conda ...)"),
        Param("slurm", dict | None, None, "extra sbatch parameters, e.g. { account = \"abc\" }"),
        Param("runs_per_job", int, 1, "work units (a run, or the runs batched as one model) executed one after "
              "another in one job of the array: a suite of many short runs becomes a few jobs", min=1, max=10**6),
    )

    def __init__(self, folder: str | None = None, cluster: str | None = None, partition: str | None = None,
                 timeout_min: int = 240, gpus_per_node: int = 0, cpus_per_task: int = 4,
                 mem_gb: float | None = None, array_parallelism: int = 32, wait: bool = True,
                 setup: list[str] | None = None, slurm: dict | None = None, runs_per_job: int = 1):
        self.folder, self.cluster = folder, cluster
        self.job_params: dict[str, Any] = {"timeout_min": timeout_min, "gpus_per_node": gpus_per_node,
                                           "cpus_per_task": cpus_per_task,
                                           "slurm_array_parallelism": array_parallelism}
        if partition:
            self.job_params["slurm_partition"] = partition
        if mem_gb is not None:
            self.job_params["mem_gb"] = mem_gb
        if setup:
            self.job_params["slurm_setup"] = list(setup)
        if slurm:
            self.job_params["slurm_additional_parameters"] = dict(slurm)
        self.wait, self.runs_per_job = wait, runs_per_job

    def _executor(self, folder: Path, resources: dict):
        try:
            import submitit
        except ImportError:
            raise RuntimeError('the submitit executor needs submitit: pip install -e ".[slurm]"') from None
        executor = submitit.AutoExecutor(folder=str(folder), cluster=self.cluster)
        params = {**self.job_params, **_submitit_params(resources, self.job_params)}
        if executor.cluster != "slurm":  # local/debug executors take the generic names only
            params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
            params["tasks_per_node"] = 1
        executor.update_parameters(**params)
        return executor

    def execute(self, job: Job, runs) -> list[RunResult]:
        if not runs:
            return []
        suite_name = job.suite_name
        base = Path(job.results_dir) / suite_name
        folder = Path(self.folder) if self.folder else base / "_slurm"
        by_id = {r.id: r for r in runs}
        units = work_units(job, runs)  # one per run, or per group of runs the suite batches
        groups: dict[str, list[tuple[list[str], tuple[int, int]]]] = {}
        for unit, position in zip(units, positions(units)):  # one array per distinct resource set
            key = json.dumps(by_id[unit[0]].resources, sort_keys=True)
            groups.setdefault(key, []).append((unit, position))
        submitted = []
        for key, items in groups.items():
            resources = json.loads(key)
            executor = self._executor(folder, resources)
            chunks = [items[i:i + self.runs_per_job] for i in range(0, len(items), self.runs_per_job)]
            jobs = executor.map_array(execute_chunk, [job] * len(chunks), chunks)
            for j, chunk in zip(jobs, chunks):
                ids = [run_id for unit, _ in chunk for run_id in unit]
                record = {"executor": "submitit", "cluster": executor.cluster, "job_id": str(j.job_id),
                          "log": str(j.paths.stderr), "stdout": str(j.paths.stdout), "submitted": time.time()}
                for run_id in ids:
                    RunStore(base / run_id).write_submission(record)
                submitted.append((j, ids))
            print(f"submitit: {len(jobs)} job(s) submitted ({executor.cluster})"
                  + (f" with {', '.join(f'{k}={v}' for k, v in resources.items())}" if resources else "")
                  + f"; logs in {folder}", file=sys.stderr)
        for j, ids in submitted:
            print(f"  job {j.job_id}: {', '.join(ids)}", file=sys.stderr)
        if not self.wait:
            return [RunResult(run_id, "submitted") for _, ids in submitted for run_id in ids]
        results = []
        for j, ids in submitted:
            try:
                results += j.result()
            except Exception as exc:  # the job itself died (time limit, cancelled, node failure)
                line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                results += [RunResult(run_id, "failed", 0.0, f"job {j.job_id}: {line} (log: {j.paths.stderr})")
                            for run_id in ids]
        return results

    def job_states(self, job_ids: list[str]) -> dict[str, str]:
        """The state of each job that SLURM still knows (squeue: queued or running; then sacct)."""
        if not job_ids:
            return {}
        states: dict[str, str] = {}
        for command in (["squeue", "-h", "-o", "%i|%T", "-j", ",".join(job_ids)],
                        ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)]):
            try:
                out = subprocess.run(command, capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            for line in out.splitlines():
                job_id, _, state = line.partition("|")
                state = state.split("|")[0].split()[0] if state.strip() else ""
                if job_id in job_ids and state and job_id not in states:
                    states[job_id] = state
        return states


def _submitit_params(resources: dict, defaults: dict) -> dict:
    """A run's ``resources`` (harness.suite.spec.RESOURCE_KEYS) in submitit's names; unset ones keep the defaults."""
    out: dict = {}
    if resources.get("partition"):
        out["slurm_partition"] = resources["partition"]
    if resources.get("timeout_min"):
        out["timeout_min"] = resources["timeout_min"]
    if resources.get("cpus"):
        out["cpus_per_task"] = resources["cpus"]
    if resources.get("mem_gb"):
        out["mem_gb"] = resources["mem_gb"]
    if resources.get("gpus", -1) >= 0:
        out["gpus_per_node"] = resources["gpus"]
    if resources.get("gres"):
        out["slurm_gres"] = resources["gres"]
    if resources.get("slurm"):
        out["slurm_additional_parameters"] = {**defaults.get("slurm_additional_parameters", {}), **resources["slurm"]}
    return out
