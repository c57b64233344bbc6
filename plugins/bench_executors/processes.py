"""Executor ``processes``: N worker processes on this machine, each on its own device.

Workers are started with ``spawn`` (safe with CUDA), take runs from a shared
queue and record them through the same claims and store as ``local``. A
worker that dies (killed, out of memory) leaves its run ``interrupted``; the
other workers go on, and the next ``bench run`` re-runs it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
from typing import ClassVar

from harness.api.components import Param
from harness.run.execute import Executor, Job, RunResult, execute_runs, positions, work_units
from harness.run.progress import fmt_seconds


def default_devices(workers: int) -> list[str]:
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i % torch.cuda.device_count()}" for i in range(workers)]
    return ["cpu"] * workers


def _worker(job: Job, device: str, threads: int | None, todo, done) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)
    while True:
        # A blocking get: ``get_nowait`` also raises Empty when another worker holds the queue's
        # lock, which made a worker quit while runs were still queued. Each worker's None ends it.
        item = todo.get()  # one run, or the runs the suite batches as one model
        if item is None:
            return
        run_ids, position = item
        done.put(("started", run_ids, os.getpid()))
        try:
            for result in execute_runs(job, run_ids, device, position):
                done.put(("result", result, os.getpid()))
        except KeyboardInterrupt:
            return
        except BaseException as exc:  # never lose the queue to one bad run
            for run_id in run_ids:
                done.put(("result", RunResult(run_id, "failed", 0.0, f"{type(exc).__name__}: {exc}"), os.getpid()))


def pace(ended: int, total: int, seconds: float, resumed: int = 0) -> str:
    """The whole invocation's progress when a worker finishes a unit: the runs left at the pace of
    those ended so far, all workers together (an extrapolation: runs differ, hence ≈). No estimate
    once a run that resumed from a checkpoint has ended: it did only the rest of its work, so its
    pace would make whole runs look short; each run's own line gives its ETA instead."""
    left = total - ended
    text = f"processes: {ended}/{total} run(s) ended in {fmt_seconds(seconds)}"
    if not left:
        return text
    if resumed:
        return text + (f"; the other {left}: no estimate, {resumed} of those ended resumed from a checkpoint "
                       "(each run's line gives its ETA)")
    return text + f"; the other {left} ≈ {fmt_seconds(seconds * left / ended)} at this pace"


class WorkerProcesses(Executor):
    """N worker processes on this machine, each pinned to a device"""

    params: ClassVar[tuple[Param, ...]] = (
        Param("workers", int, 2, "worker processes", min=1, max=4096),
        Param("devices", list[str] | None, None, "one device per worker, e.g. [\"cuda:0\", \"cuda:1\"] "
              "(default: every GPU, else CPU)"),
        Param("threads_per_worker", int | None, None, "torch threads per worker "
              "(default on CPU: cores / workers)", min=1, max=4096),
    )

    def __init__(self, workers: int = 2, devices: list[str] | None = None, threads_per_worker: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.devices = list(devices) if devices else default_devices(workers)
        self.workers = workers if not devices else len(self.devices)
        if threads_per_worker is None and all(d == "cpu" for d in self.devices):
            threads_per_worker = max(1, (os.cpu_count() or 1) // self.workers)  # no oversubscription
        self.threads = threads_per_worker

    def execute(self, job: Job, runs) -> list[RunResult]:
        ctx = mp.get_context("spawn")
        todo, done = ctx.Queue(), ctx.Queue()
        units = work_units(job, runs)
        for item in zip(units, positions(units)):
            todo.put(item)
        procs = [ctx.Process(target=_worker, args=(job, dev, self.threads, todo, done), daemon=False)
                 for dev in self.devices[: max(1, min(self.workers, len(units)))]]
        for _ in procs:
            todo.put(None)  # one end marker per worker, after every unit
        for p in procs:
            p.start()
        print(f"processes: {len(procs)} worker(s) on {', '.join(self.devices[:len(procs)])}", file=sys.stderr)
        results: dict[str, RunResult] = {}
        running: dict[int, list[str]] = {}
        resumed = 0  # ended runs that resumed from a checkpoint
        began = time.monotonic()
        try:
            while len(results) < len(runs):
                try:
                    kind, payload, pid = done.get(timeout=1.0)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        break  # every worker is gone: what is left stays unfinished
                    continue
                if kind == "started":
                    running[pid] = payload
                else:
                    results[payload.run_id] = payload
                    resumed += payload.resumed
                    if all(r in results for r in running.get(pid, [])):
                        running.pop(pid, None)
                        print(pace(len(results), len(runs), time.monotonic() - began, resumed), file=sys.stderr)
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        finally:
            for p in procs:
                p.join(timeout=10)
        for pid, run_ids in running.items():  # a worker died inside these runs
            for run_id in run_ids:
                results.setdefault(run_id, RunResult(run_id, "interrupted", 0.0, f"worker {pid} died"))
        return [results.get(r.id, RunResult(r.id, "skipped:not-started")) for r in runs]

    def job_states(self, job_ids: list[str]) -> dict[str, str]:
        return {}  # it queues nothing: its runs end with the invocation
