"""The runner: executes a suite's runs, one after another, isolating failures.

Finished runs are skipped (resume after an interruption loses nothing that
finished); failed or diverged runs are re-run only on request. The run kind
does the work; the runner seeds, picks the device, records the environment
and writes the outcome to the store.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from .components import Registry
from .context import Diverged, RunContext
from .environment import environment, pick_device, seed_everything
from .progress import Progress
from .store import RunStore, write_json
from .suite import RunSpec, Suite


@dataclass
class Outcome:
    run: RunSpec
    status: str  # done | failed | diverged | interrupted | skipped:<recorded status>
    seconds: float = 0.0
    error: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def suite_dir(results_dir: Path, suite: Suite) -> Path:
    return Path(results_dir) / suite.name


class Runner:
    def __init__(self, suite: Suite, registry: Registry, results_dir: Path, *,
                 plugin_versions: dict[str, str] | None = None, device: str | None = None,
                 rerun_failed: bool = False, force: bool = False, progress: Progress | None = None):
        self.suite, self.registry = suite, registry
        self.results_dir = Path(results_dir)
        self.plugin_versions = plugin_versions or {}
        self.device_override = device
        self.rerun_failed, self.force = rerun_failed, force
        self.progress = progress

    def store(self, run: RunSpec) -> RunStore:
        return RunStore(suite_dir(self.results_dir, self.suite) / run.id)

    def should_run(self, run: RunSpec) -> bool:
        status = self.store(run).status()
        if self.force:
            return True
        if status == "done":
            return not self.store(run).is_complete()
        if status in ("failed", "diverged"):
            return self.rerun_failed
        return True  # missing, interrupted, or a crashed "running"

    def execute(self, runs: list[RunSpec]) -> list[Outcome]:
        outcomes = []
        todo = [r for r in runs if self.should_run(r)]
        progress = self.progress or Progress(len(todo))
        progress.total_runs = len(todo)
        skipped = [r for r in runs if r not in todo]
        if skipped:
            kept: dict[str, int] = {}
            for r in skipped:
                kept[self.store(r).status()] = kept.get(self.store(r).status(), 0) + 1
            progress.message(f"{len(skipped)} run(s) already recorded, skipped ("
                             + ", ".join(f"{v} {k}" for k, v in sorted(kept.items()))
                             + "; --rerun-failed re-runs failed ones, --force all)")
        outcomes += [Outcome(r, "skipped:" + self.store(r).status()) for r in skipped]
        for i, run in enumerate(todo, 1):
            progress.start_run(i, run.id)
            outcome = self.execute_one(run, progress)
            progress.end_run(run.id, outcome.status, outcome.seconds,
                             outcome.error.strip().splitlines()[-1] if outcome.error else "")
            outcomes.append(outcome)
        return outcomes

    def execute_one(self, run: RunSpec, progress: Progress | None = None) -> Outcome:
        store = self.store(run)
        store.dir.mkdir(parents=True, exist_ok=True)
        (store.dir / "error.txt").unlink(missing_ok=True)
        started = time.perf_counter()
        write_json(store.dir / "status.json", {"status": "running", "started": _now()})
        write_json(store.dir / "config.json", {"suite": self.suite.name, "suite_file": str(self.suite.path),
                                               **run.config()})
        ctx = None
        status, error = "done", ""
        try:
            device = pick_device(self.device_override or run.device)
            write_json(store.dir / "environment.json", environment(device, self.plugin_versions))
            seed_everything(run.seed)
            kind = self.registry.get("run_kind", run.kind)
            ctx = RunContext(run, self.registry, device, store, progress.update if progress else None)
            execute = kind.build(run.params)
            execute(ctx)
            bad = [r for r in ctx.final if r["value"] != r["value"]]  # NaN
            if bad:
                raise Diverged(f"metric {bad[0]['metric']} is NaN")
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user (KeyboardInterrupt)\n"
            self._finish(store, ctx, run, status, error, started)
            raise
        except Diverged as exc:
            status, error = "diverged", f"{exc}\n"
        except torch.OutOfMemoryError:
            status, error = "failed", "out of memory: lower batch_size or run on a larger device\n" \
                + traceback.format_exc()
        except Exception:
            status, error = "failed", traceback.format_exc()
        return self._finish(store, ctx, run, status, error, started)

    def _finish(self, store: RunStore, ctx: RunContext | None, run: RunSpec, status: str, error: str,
                started: float) -> Outcome:
        seconds = time.perf_counter() - started
        metrics = {"final": ctx.final if ctx else [], "curves": ctx.curves if ctx else []}
        write_json(store.dir / "metrics.json", metrics)
        if error:
            (store.dir / "error.txt").write_text(error)
        if status == "done":
            store.checkpoint.unlink(missing_ok=True)  # only unfinished runs need one
        # status.json goes last: "done" is only ever written after the metrics are in place.
        write_json(store.dir / "status.json", {"status": status, "finished": _now(),
                                               "seconds": round(seconds, 3),
                                               "error": error.strip().splitlines()[-1] if error else ""})
        return Outcome(run, status, seconds, error)
