"""Built-in executors: processes and submitit (SLURM); ``local`` is the core's."""

from __future__ import annotations

from harness.api.components import Param
from harness.api.hookspecs import hookimpl

from .processes import WorkerProcesses
from .slurm import Submitit


@hookimpl
def register_executors(register):
    register("processes", WorkerProcesses, doc="N worker processes on this machine, each pinned to a device",
             params=[
                 Param("workers", int, 2, "worker processes", min=1, max=4096),
                 Param("devices", list[str] | None, None, "one device per worker, e.g. [\"cuda:0\", \"cuda:1\"] "
                       "(default: every GPU, else CPU)"),
                 Param("threads_per_worker", int | None, None, "torch threads per worker "
                       "(default on CPU: cores / workers)", min=1, max=4096),
             ])
    register("submitit", Submitit, doc="SLURM jobs through submitit (a job array per invocation)", params=[
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
    ])
