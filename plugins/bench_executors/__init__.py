"""Built-in executors: processes and submitit (SLURM); ``local`` is the core's."""

from __future__ import annotations

from harness.api.hookspecs import hookimpl

from .processes import WorkerProcesses
from .slurm import Submitit

__all__ = ["Submitit", "WorkerProcesses", "register_executors"]


@hookimpl
def register_executors(register):
    # each executor declares its parameters and doc on its class, beside its __init__
    register("processes", WorkerProcesses)
    register("submitit", Submitit)
