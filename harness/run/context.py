"""What a run kind receives: its run, its components, and where to record.

A run kind is ``execute(ctx: RunContext) -> None``. It builds its components
through ``ctx.build(slot)``, records final values with ``ctx.record`` and
per-epoch values with ``ctx.log_epoch``, keeps tensors with
``ctx.save_artifact``, and reports progress with ``ctx.progress``. It raises
:class:`Diverged` when the numbers blow up; any other exception marks the run
failed. A kind executing several runs as one batch marks a member that blows
up with ``ctx.diverge(message)`` instead and goes on with the others. The
runner writes everything to the store when the run ends.
"""

from __future__ import annotations

import io
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from harness.api.components import Registry
from harness.api.model import ConvergentRNN
from harness.api.records import undeclared
from harness.api.run_kind import declared
from harness.api.tracker import Trackers
from harness.results.store import RunStore, atomic_write, write_json
from harness.suite.spec import RunSpec


class Diverged(RuntimeError):
    """The run's numbers became NaN or infinite: status ``diverged``."""


@contextmanager
def signals_deferred(signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM (a preemption) until the block is done, then deliver them as they would have
    been: for writes that must land together, e.g. the checkpoints of a batch's members, which resume only
    when all are at the same epoch. Outside the main thread (where Python runs no signal handler) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.getsignal(s) for s in signals}
    held = [s for s, h in previous.items() if h is not None]  # None: a handler not set from Python, left alone
    for s in held:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s in held:
            signal.signal(s, previous[s])
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


class RunContext:
    def __init__(self, spec: RunSpec, registry: Registry, device: torch.device, store: RunStore,
                 progress: Callable[..., None] | None = None, trackers: Trackers | None = None,
                 notify: Callable[[str], None] | None = None):
        self.spec = spec
        self.registry = registry
        self.device = device
        self.dtype: torch.dtype = getattr(torch, spec.dtype)
        self.seed = spec.seed
        self.params = spec.params
        self.store = store
        self.final: list[dict[str, Any]] = []
        self.curves: list[dict[str, Any]] = []
        self.diverged: str | None = None  # set by diverge(): this member of a batch blew up
        self.warnings: list[str] = []  # set by warn(): kept in status.json, shown by `bench status`
        #: a resumed run's warnings from the invocations before this one (from the checkpoint)
        self.earlier_warnings: list[str] = []
        self.previous_warnings: list[str] = []  # the status.json warnings this invocation replaced
        self._progress = progress
        self._notify = notify  # prints a line without gluing it to a progress line on a terminal
        self.trackers = trackers or Trackers({}, spec.id)
        self.started = time.perf_counter()
        self.earlier_seconds = 0.0  # wall time of earlier invocations, restored from the checkpoint
        #: the share of the run behind the checkpoint this invocation resumed from (0 for a fresh run; None
        #: when an older checkpoint did not record it): the pace for ``bench status`` is this invocation's
        self.done_at_start: float | None = 0.0
        #: this invocation's environment.json (set by the runner) and, for a resumed run, the earlier
        #: invocations' (from the checkpoint): a run trained across commits, machines or thread counts says so
        self.environment: dict[str, Any] = {}
        self.previous_environment: dict[str, Any] = {}  # the environment.json this invocation replaced
        self.earlier_environments: list[dict[str, Any]] = []
        self._records = declared(registry.get("run_kind", spec.kind).factory)

    # -- components --------------------------------------------------------
    def component_name(self, slot: str) -> str:
        return self.spec.slots[slot]["name"]

    def build(self, slot: str, **overrides: Any) -> Any:
        """Instantiate the component(s) in ``slot`` with the suite's parameters (``overrides``: values
        the run kind sets itself, e.g. each β of a sweep; a parameter the component does not declare
        is refused with the component's name)."""
        kind_slot = self.registry.get("run_kind", self.spec.kind).slot(slot)
        assert kind_slot is not None, f"the {self.spec.kind} kind declares no slot {slot!r}"
        family = kind_slot.family
        value = self.spec.slots[slot]
        if isinstance(value, list):
            if overrides:
                raise ValueError(f"run {self.spec.id}: the {self.spec.kind} kind sets {', '.join(overrides)} "
                                 f"of {slot!r}, a slot of several components; set them in the suite")
            return {v["name"]: self.registry.get(family, v["name"]).build(v["params"]) for v in value}
        component = self.registry.get(family, value["name"])
        unknown = [k for k in overrides if k not in {p.name for p in component.params}]
        if unknown:
            raise ValueError(f"run {self.spec.id}: the {self.spec.kind} kind sets {', '.join(unknown)} of its "
                             f"{slot}, but {family} {value['name']!r} has no such parameter")
        built = component.build({**value["params"], **overrides})
        if family == "model" and isinstance(built, ConvergentRNN):
            built.fast = self.spec.fast  # the suite's `fast = false` selects the generic path
        return built

    def reseed(self) -> None:
        """Seed every generator from this run's seed (the runner does it before a
        single run; a batched kind calls it for each member before building it)."""
        from harness.run.environment import seed_everything

        seed_everything(self.seed)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run's seed (``offset`` separates streams)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

    # -- recording ---------------------------------------------------------
    def record(self, metric: str, value: float, **dims: Any) -> None:
        """A final value; ``dims`` (e.g. ``layer="W01"``) become table columns."""
        if self._records is not None:
            self._check_declared("metric", [metric], self._records.metric_names(self.spec.slots), "metrics")
            self._check_declared("column", dims, set(self._records.columns), "columns")
        self.final.append({"metric": metric, "value": float(value), **dims})

    def log_epoch(self, epoch: int, **values: float) -> None:
        if self._records is not None:
            self._check_declared("per-epoch value", values, set(self._records.curves), "curves")
        point = {k: float(v) for k, v in values.items()}
        self.curves.append({"epoch": epoch, **point})
        self.trackers.log_epoch(epoch, point)

    def _check_declared(self, what: str, names: Any, allowed: set[str], field: str) -> None:
        """A name the kind did not declare would pass ``bench validate`` in a table and then match
        nothing: refuse it where the kind's author sees it, on the first run."""
        wrong = undeclared(names, allowed)
        if wrong:
            raise ValueError(f"run kind {self.spec.kind!r} recorded the {what} {', '.join(map(repr, wrong))}, "
                             f"which its `records = Records(...)` does not declare: add it to Records.{field}")

    def save_artifact(self, name: str, obj: Any) -> Path:
        """``torch.save`` an object (e.g. a dict of tensors) atomically under artifacts/."""
        path = self.store.artifacts / f"{name}.pt"
        buf = io.BytesIO()
        torch.save(obj, buf)
        atomic_write(path, lambda f: f.write(buf.getvalue()), mode="wb")
        return path

    def save_text(self, name: str, text: str) -> Path:
        """A text artifact (a profile, a note) written atomically as artifacts/<name>.txt, for people."""
        path = self.store.artifacts / f"{name}.txt"
        atomic_write(path, lambda f: f.write(text))
        return path

    # -- checkpoints (resume inside a run) ---------------------------------
    def save_checkpoint(self, state: dict[str, Any], progress: str = "", done: float | None = None) -> None:
        """``state`` as the run's checkpoint (what :meth:`load_checkpoint` gives back on a resume), and
        beside it a note for ``bench status``: ``progress`` (e.g. "after epoch 30 of 50"), the run's
        seconds so far, when it was saved and, given ``done`` (the share of the run behind it, e.g.
        30 / 50), about how long the rest takes: at this invocation's pace where it has made progress,
        so that time an earlier invocation spent paused, or on a slower machine, does not count."""
        buf = io.BytesIO()
        now = time.perf_counter()
        elapsed = self.earlier_seconds + now - self.started
        earlier = self.earlier_environments
        if earlier and {k: v for k, v in earlier[-1].items() if k != "until"} == self.environment:
            earlier = earlier[:-1]  # resumed on the same set-up: one entry, up to where it got now
        environments = [*earlier, {**self.environment, "until": progress}]
        pace = {}  # seconds the whole run would take at this invocation's pace
        if done is not None and self.done_at_start is not None and done > self.done_at_start:
            pace = {"pace": round((now - self.started) / (done - self.done_at_start), 1)}
        torch.save({"config": self.spec.config(), "state": state, "elapsed": elapsed, "done": done,
                    "environments": environments,  # and the warnings so far, the trackers' included
                    "warnings": list(dict.fromkeys([*self.all_warnings(), *self.trackers.warnings]))}, buf)
        atomic_write(self.store.checkpoint, lambda f: f.write(buf.getvalue()), mode="wb")
        write_json(self.store.checkpoint_note_path, {"progress": progress, "seconds": round(elapsed, 1),
                                                     "saved": datetime.now(UTC).isoformat(timespec="seconds"),
                                                     "bytes": buf.getbuffer().nbytes,  # which checkpoint
                                                     **({"done": float(done)} if done is not None else {}),
                                                     **pace})

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint of this very configuration, or None. A checkpoint that cannot be
        read is never trusted: it is set aside as ``checkpoint.pt.corrupt`` with a warning, and the
        run starts afresh."""
        path = self.store.checkpoint
        if not path.exists():
            return None
        try:
            saved = torch.load(path, map_location=self.device, weights_only=False)
            if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
                raise ValueError("not a checkpoint written by eqprop-bench")
        except Exception as exc:  # truncated, not a torch file, unpicklable: anything
            self.set_aside_checkpoint(f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})")
            return None
        config = saved.get("config") or {}
        if config.get("id") != self.spec.id:  # the id hashes every setting that changes the result
            print(f"warning: run {self.spec.id}: {path} belongs to another configuration "
                  f"({config.get('id')!r}); the run starts from the beginning", file=sys.stderr, flush=True)
            return None
        # a resumed run reports its wall time up to its last checkpoint plus this invocation's, not
        # only the last invocation's (a run kind that discards the state resets it to 0)
        self.earlier_seconds = float(saved.get("elapsed", 0.0))
        done = saved.get("done", self.store.checkpoint_done())  # an older checkpoint has it only in its note
        self.done_at_start = float(done) if isinstance(done, (int, float)) and not isinstance(done, bool) else None
        envs = saved.get("environments")
        if isinstance(envs, list):
            self.earlier_environments = [e for e in envs if isinstance(e, dict)]
        else:  # saved before checkpoints carried it: the last invocation's environment.json, as the runner found it
            self.earlier_environments = [{**self.previous_environment, "until": "(not recorded: an older checkpoint)"}]
        warned = saved.get("warnings")  # an older checkpoint has none: the replaced status.json's
        self.earlier_warnings = [str(w) for w in (warned if isinstance(warned, list) else self.previous_warnings)]
        return saved["state"]

    def start_afresh(self) -> None:
        """The run trains from its first epoch (no usable checkpoint, or one that its batch cannot use):
        no earlier invocation's time or environment belongs to it."""
        self.earlier_seconds = 0.0
        self.done_at_start = 0.0
        self.earlier_environments = []
        self.earlier_warnings = []

    def set_aside_checkpoint(self, why: str) -> None:
        """A checkpoint that cannot be used is renamed ``checkpoint.pt.corrupt`` (kept for a look, never
        read again) with a warning naming the file, and the run starts from the beginning."""
        path = self.store.checkpoint
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        self.store.checkpoint_note_path.unlink(missing_ok=True)
        self.start_afresh()
        print(f"warning: run {self.spec.id}: {path} {why}; set aside as {aside.name}, the run starts from the "
              "beginning", file=sys.stderr, flush=True)

    def warn(self, message: str) -> None:
        """Something that makes this run's numbers less trustworthy without stopping it (e.g. a first
        phase that has not settled): printed now, kept in status.json, shown by `bench status`."""
        self.warnings.append(message)
        text = f"warning: run {self.spec.id}: {message}"
        if self._notify is not None:
            self._notify(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def all_warnings(self) -> list[str]:
        """Every warning of the run, earlier invocations' first (a repeated message once): what
        status.json keeps, so that a resumed run does not forget what its first epochs warned of."""
        return list(dict.fromkeys([*self.earlier_warnings, *self.warnings]))

    def diverge(self, message: str) -> None:
        """Mark this run of a batch ``diverged`` with ``message`` (what :class:`Diverged` would
        say), so that the batch can go on without it; the kind stops recording for it."""
        self.diverged = message

    # -- progress and checks -----------------------------------------------
    def progress(self, done: int, total: int, unit: str = "step", info: str = "", eta_after: int | None = 0) -> None:
        """``done`` of ``total`` units. ``eta_after``: how many units must be done before their rate
        predicts the rest (a training run: one epoch with its evaluation); ``None`` when units differ
        in cost (phases), so that no ETA is shown rather than a wrong one."""
        if self._progress is not None:
            self._progress(self.spec, done, total, unit, info, time.perf_counter() - self.started, eta_after)

    @staticmethod
    def check_finite(value: float | torch.Tensor, what: str) -> None:
        """Raise :class:`Diverged` naming ``what`` when ``value`` is not finite."""
        ok = bool(torch.isfinite(value).all()) if isinstance(value, torch.Tensor) else math.isfinite(value)
        if not ok:
            raise Diverged(f"{what} is not finite (NaN or inf); lower the learning rates or β")
