"""The runner: executes a suite's runs, one after another, isolating failures.

Finished runs are skipped (resume after an interruption loses nothing that
finished); failed or diverged runs are re-run only on request. The run kind
does the work; the runner seeds, picks the device, records the environment
and writes the outcome to the store. A re-run of a recorded run (``--force``,
``--rerun-failed``, a corrupt one) writes beside it, in ``<run>/.next/``, and
replaces it only once it has ended, and never replaces a ``done`` result by
one that is not: until then, and then, the old result stays intact.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from harness.api.components import Registry
from harness.api.run_kind import capability
from harness.api.tracker import Trackers
from harness.results.claims import Claim, live_claim
from harness.results.store import NEXT, CorruptResult, RunStore, Status, read_record, replace_run, write_json
from harness.run.context import Diverged, RunContext
from harness.run.environment import environment, pick_device, precision, seed_everything
from harness.run.progress import Progress
from harness.suite.spec import RunSpec, Suite


def last_line(text: str) -> str:
    """The last line of an error (the exception itself), for one-line reports."""
    return text.strip().splitlines()[-1] if text.strip() else ""


@dataclass
class Outcome:
    run: RunSpec
    status: str  # done | failed | diverged | interrupted | skipped:<recorded status>
    seconds: float = 0.0  # this invocation's
    error: str = ""
    resumed: bool = False  # from a checkpoint: ``seconds`` covers only the rest of the run

    @property
    def last_error(self) -> str:
        return last_line(self.error)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def suite_dir(results_dir: Path, suite: Suite) -> Path:
    path = Path(results_dir) / suite.name
    if path.parent != Path(results_dir) or suite.name in ("", ".", ".."):  # validation refuses these
        raise ValueError(f"suite name {suite.name!r} is not one directory name")
    return path


def _previous_environment(store: RunStore) -> dict[str, Any]:
    """The environment.json a resumed invocation replaces (its own ``earlier`` dropped), or {}."""
    try:
        previous = read_record(store.dir / "environment.json")
    except (FileNotFoundError, CorruptResult, OSError):
        return {}
    return {k: v for k, v in previous.items() if k != "earlier"}


def _previous_warnings(store: RunStore) -> list[str]:
    """The warnings of the status.json an invocation replaces (read before it is overwritten), or []."""
    try:
        warned = read_record(store.dir / "status.json").get("warnings")
    except (FileNotFoundError, CorruptResult, OSError):
        return []
    return [str(w) for w in warned] if isinstance(warned, list) else []


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

    def trackers(self) -> dict[str, object]:
        """The suite's trackers, built once per runner; one that cannot be built is a warning."""
        if not hasattr(self, "_trackers"):
            self._trackers = {}
            for t in self.suite.trackers:
                try:
                    self._trackers[t["name"]] = self.registry.get("tracker", t["name"]).build(t["params"])
                except Exception as exc:  # noqa: BLE001 - a tracker never stops a suite
                    print(f"warning: tracker {t['name']!r} cannot start ({type(exc).__name__}: {exc}); "
                          "the runs go on without it", file=sys.stderr, flush=True)
        return self._trackers

    def store(self, run: RunSpec) -> RunStore:
        return RunStore(suite_dir(self.results_dir, self.suite) / run.id)

    def should_run(self, run: RunSpec) -> bool:
        if live_claim(self.store(run).dir) is not None:
            return False  # a live worker (here or elsewhere) is running it now
        return self.should_run_claimed(run)

    def execute(self, runs: list[RunSpec]) -> list[Outcome]:
        outcomes = []
        claimed = {r.id for r in runs if live_claim(self.store(r).dir) is not None}  # a live worker runs it now
        todo = [r for r in runs if r.id not in claimed and self.should_run_claimed(r)]
        progress = self.progress or Progress(None)
        if progress.total_runs is None:  # a worker's Progress already counts the whole suite's runs
            progress.total_runs = len(todo)
        progress.expected = len(todo)
        recorded = {r.id: self.store(r).status() for r in runs if r not in todo}
        if recorded:
            kept: dict[str, int] = {}
            for run_id, status in recorded.items():
                if run_id not in claimed:
                    kept[status] = kept.get(status, 0) + 1
            if kept:
                progress.message(f"{sum(kept.values())} run(s) already recorded, skipped ("
                                 + ", ".join(f"{v} {k}" for k, v in sorted(kept.items()))
                                 + "; --rerun-failed re-runs failed ones, --force all)")
            if claimed:
                progress.message(f"{len(claimed)} run(s) being run now by another worker or invocation, skipped "
                                 "(`bench status` shows them running)")
        outcomes += [Outcome(r, "skipped:" + recorded[r.id]) for r in runs if r.id in recorded]
        done = 0
        for group in self.groups(todo):
            label = group[0].id if len(group) == 1 else f"{group[0].id} (+{len(group) - 1} batched)"
            progress.start_run(done + 1, label, size=len(group))
            with progress.warnings_as_messages():
                ended = self.execute_group(group, progress)
            for k, outcome in enumerate(ended):
                progress.end_run(outcome.run.id, outcome.status, outcome.seconds, outcome.last_error,
                                 index=done + 1 + k)
                outcomes.append(outcome)
            done += len(group)
        return outcomes

    def groups(self, runs: list[RunSpec]) -> list[list[RunSpec]]:
        """Runs to execute together as one batched model, when the run kind can (``execute_batch``):
        the seeds of one configuration with ``batch_seeds``, and its algorithms (EP with BPTT, the
        same initial weights) with ``batch_algorithms`` where the kind lists ``"algorithm"`` in its
        ``batch_slots``. Everything else in the configuration must be equal."""
        groups: dict[str, list[RunSpec]] = {}
        for run in runs:
            key = run.id
            if run.batch_seeds or run.batch_algorithms:
                kind = self.registry.get("run_kind", run.kind).build(run.params)
                if capability(kind, "execute_batch") is not None:
                    cfg = {**run.config(), "id": None}
                    if run.batch_seeds:
                        cfg["seed"] = None
                    if run.batch_algorithms and "algorithm" in capability(kind, "batch_slots"):
                        cfg["slots"] = {k: v for k, v in cfg["slots"].items() if k != "algorithm"}
                        cfg["grid"] = {k: v for k, v in cfg["grid"].items() if k.split(".")[0] != "algorithm"}
                    key = json.dumps(cfg, sort_keys=True, default=str)
            groups.setdefault(key, []).append(run)
        return list(groups.values())

    def execute_group(self, runs: list[RunSpec], progress: Progress | None = None) -> list[Outcome]:
        """Claim the runs, execute those still to do (together when more than one),
        record each outcome, release the claims."""
        outcomes, claims, mine = [], [], []
        try:
            for run in runs:
                claim = Claim(self.store(run).dir)
                if not claim.acquire():
                    outcomes.append(Outcome(run, "skipped:claimed"))
                    continue
                claims.append(claim)
                if not self.should_run_claimed(run):  # finished by another worker meanwhile
                    outcomes.append(Outcome(run, "skipped:" + self.store(run).status()))
                    continue
                mine.append(run)
            if mine:
                outcomes += self._execute_claimed(mine, progress)
        finally:
            for claim in claims:
                claim.release()
        order = {r.id: i for i, r in enumerate(runs)}
        return sorted(outcomes, key=lambda o: order[o.run.id])

    def should_run_claimed(self, run: RunSpec) -> bool:
        """Whether the recorded outcome asks for a run (missing, interrupted, a crashed
        ``running``; failed ones only with ``rerun_failed``; everything with ``force``)."""
        status = self.store(run).status()
        if self.force:
            return True
        if status == Status.DONE:
            return not self.store(run).is_complete()
        return status not in (Status.FAILED, Status.DIVERGED) or self.rerun_failed

    def _attempt_store(self, run: RunSpec) -> RunStore:
        """Where this attempt writes: the run's directory, or beside a recorded outcome."""
        live = self.store(run)
        if live.status() in (Status.MISSING, Status.INTERRUPTED, Status.RUNNING):
            return live  # nothing finished to protect (and an interrupted run resumes in place)
        staged = RunStore(live.dir / NEXT)
        shutil.rmtree(staged.dir, ignore_errors=True)  # a crashed earlier attempt
        return staged

    def _execute_claimed(self, runs: list[RunSpec], progress: Progress | None) -> list[Outcome]:
        started = time.perf_counter()
        self._attempts = {run.id: self._attempt_store(run) for run in runs}
        warned = {run.id: _previous_warnings(self._attempts[run.id]) for run in runs}
        for run in runs:
            store = self._attempts[run.id]
            (store.dir / "error.txt").unlink(missing_ok=True)
            write_json(store.dir / "status.json", {"status": Status.RUNNING, "started": _now()})
            extra = {"overrides": self.suite.overrides} if self.suite.overrides else {}
            write_json(store.dir / "config.json", {"suite": self.suite.name, "suite_file": str(self.suite.path),
                                                   **extra, **run.config()})
        ctxs: list[RunContext] = []
        status, error = Status.DONE, ""
        try:
            device = pick_device(self.device_override or runs[0].device)
            env = environment(device, self.plugin_versions)
            for run in runs:
                store = self._attempts[run.id]
                ctx = RunContext(run, self.registry, device, store, progress.update if progress else None,
                                 Trackers(self.trackers(), run.id), progress.message if progress else None)
                ctx.environment = {**env, "batched_runs": len(runs)}
                ctx.previous_environment = _previous_environment(store)
                ctx.previous_warnings = warned[run.id]
                write_json(store.dir / "environment.json", ctx.environment)
                ctx.trackers.start({"suite": self.suite.name, **run.config()}, suite_dir(self.results_dir, self.suite))
                ctxs.append(ctx)
            execute = self.registry.get("run_kind", runs[0].kind).build(runs[0].params)
            seed_everything(runs[0].seed)
            with precision(device, runs[0].autocast):
                if len(runs) == 1:
                    execute(ctxs[0])
                else:
                    execute.execute_batch(ctxs)  # seeds each member itself (ctx.seed)
        except KeyboardInterrupt:
            status, error = Status.INTERRUPTED, "interrupted by the user (KeyboardInterrupt)\n"
            self._finish(runs, ctxs, status, error, started)
            raise
        except Diverged as exc:
            status, error = Status.DIVERGED, f"{exc}\n"
        except torch.OutOfMemoryError:
            status, error = Status.FAILED, "out of memory: lower batch_size or run on a larger device\n" \
                + traceback.format_exc()
        except Exception:
            status, error = Status.FAILED, traceback.format_exc()
        return self._finish(runs, ctxs, status, error, started)

    def _finish(self, runs: list[RunSpec], ctxs: list[RunContext], status: Status, error: str,
                started: float) -> list[Outcome]:
        seconds = time.perf_counter() - started
        outcomes = []
        for i, run in enumerate(runs):
            store, ctx = self._attempts[run.id], ctxs[i] if i < len(ctxs) else None
            bad = [r for r in ctx.final if r["value"] != r["value"]] if ctx and status == Status.DONE else []
            if ctx is not None and ctx.diverged:  # a member of a batch that blew up (the others went on)
                status_i, error_i = Status.DIVERGED, f"{ctx.diverged}\n"
            elif bad:
                status_i, error_i = Status.DIVERGED, f"metric {bad[0]['metric']} is NaN\n"
            else:
                status_i, error_i = status, error
            metrics = {"final": ctx.final if ctx else [], "curves": ctx.curves if ctx else []}
            write_json(store.dir / "metrics.json", metrics)
            if ctx is not None and ctx.earlier_environments:  # resumed: what trained the part before this invocation
                write_json(store.dir / "environment.json", {**ctx.environment, "earlier": ctx.earlier_environments})
            if error_i:
                (store.dir / "error.txt").write_text(error_i)
            if status_i == Status.DONE:
                store.checkpoint.unlink(missing_ok=True)  # only unfinished runs need one
                store.checkpoint_note_path.unlink(missing_ok=True)
            # status.json goes last: "done" is only ever written after the metrics are in place.
            earlier = ctx.earlier_seconds if ctx is not None else 0.0
            record = {"status": status_i, "finished": _now(), "seconds": round(earlier + seconds, 3),
                      "error": last_line(error_i)}
            if earlier:  # resumed from a checkpoint: say so, with the part this invocation took
                record["resumed"] = {"earlier_seconds": round(earlier, 3), "this_invocation": round(seconds, 3)}
            if ctx is not None:
                ctx.trackers.finish(status_i, ctx.final if status_i == Status.DONE else [])
                ctx.warnings += ctx.trackers.warnings
            run_warnings = ctx.all_warnings() if ctx is not None else []
            if run_warnings:
                record["warnings"] = run_warnings
            write_json(store.dir / "status.json", record)
            kept = self._settle(run, store, status_i)
            error_i = f"{error_i.rstrip()} {kept}\n" if kept else error_i
            outcomes.append(Outcome(run, status_i, seconds, error_i, resumed=bool(earlier)))
        return outcomes

    def _settle(self, run: RunSpec, attempt: RunStore, status: str) -> str:
        """Swap a re-run's result into place, unless it would replace a done result by one that is
        not done; then it is discarded and the note returned says so."""
        live = self.store(run)
        if attempt.dir == live.dir:
            return ""
        if live.status() == Status.DONE and status != Status.DONE:
            shutil.rmtree(attempt.dir, ignore_errors=True)
            return f"(the earlier done result of {run.id} is kept)"
        replace_run(live.dir, attempt.dir)
        return ""
