"""Run kind ``train``: SGD on a dataset with one algorithm (the paper's Table 1).

Per epoch: seeded shuffled mini-batches, one ``algorithm.train_step`` each, then
train and test error (prediction = argmax of the output layer after ``T`` free
steps from a zero state), ``unpredicted_classes``, the number of classes
predicted for no test sample (a dead output unit: see the README's Table 1), and
``unsettled``, the share of test images whose free phase has not reached a fixed
point after ``T`` steps (:func:`~bench_runs.settle.unsettled_share`; also ``unsettled_at_init``): a
run of an algorithm that assumes one (EP's theory is at the fixed point) warns
when an epoch ends with more than 1 % unsettled.
The model is built right after the runner seeds the run, before anything else
draws random numbers, so EP and BPTT runs with the same seed start from the
same weights (as in the paper). An epoch checkpoint lets an interrupted run
continue where it stopped, with the same result.

Batched seeds (``batch_seeds = true`` in the suite): :meth:`Train.execute_batch`
runs the seeds of one configuration as one model with a leading seed dimension
(:func:`harness.api.model.stack_members`): each member is built after reseeding
from its own seed (the weights a separate run gets), draws its own data order
(its own shuffle generator), learns and is evaluated and recorded on its own.
The results equal separate runs up to floating-point rounding of the batched
matmuls (tests/test_fast_paths.py). A member whose weights blow up is recorded
``diverged`` with its separate run's message and stops being recorded; the
others go on (members never mix: their NaNs stay in their own slices; tested
in tests/test_paired.py). Models that cannot stack members run one after another.

Batched algorithms (``batch_algorithms = true``): the EP and BPTT runs of one
configuration (and seed) start from the same weights; stacked together, one
:class:`~bench_algorithms.paired.Paired` step trains each member with its own
algorithm (one shared free phase; tests/test_paired.py). Algorithms that cannot
share a step (two values of β, a third-party algorithm) run as one batch each.

On CUDA, the training step of a model on its fast path is replayed as a CUDA
graph (:mod:`harness.run.acceleration`), after a check against the eager step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from harness.api.algorithm import capability, shared_step
from harness.api.components import Param, Slot
from harness.api.dataset import Splits, augmenter, batch_generator
from harness.api.model import ConvergentRNN, member_state, stack_members
from harness.api.records import Records
from harness.api.relaxation import SCHEDULES, relax
from harness.api.run_kind import RunKind
from harness.api.steps import MAX_STEPS, batch_size, check_steps, step_params
from harness.run.acceleration import GraphedStep, compiled_train_step, graphed_train_step
from harness.run.context import Diverged, RunContext, signals_deferred
from harness.run.environment import peak_memory_mb, synchronize

from .figures import train_figures
from .settle import SETTLE_TOL, unsettled_share


def weights_checksum(model: torch.nn.Module) -> float:
    """A float fingerprint of the weights (to show that paired runs share them)."""
    with torch.no_grad():
        return float(sum((p.double() * (i + 1)).sum() for i, p in enumerate(model.parameters())))


def member_checksums(model: ConvergentRNN) -> list[float]:
    """:func:`weights_checksum` of each member of a stacked model (one value for a plain one)."""
    if not model.members:
        return [weights_checksum(model)]
    with torch.no_grad():
        per = sum((p.double() * (i + 1)).flatten(1).sum(1) for i, p in enumerate(model.parameters()))
    assert isinstance(per, torch.Tensor)  # a model has parameters: not sum's start value 0
    return [float(v) for v in per]


def all_per_member(mask: torch.Tensor, members: int) -> torch.Tensor:
    """``mask.all()`` per stacked member (a leading dimension), or as a one-element tensor without members."""
    return mask.flatten(1).all(1) if members else mask.all()[None]


def nonfinite_parameters(model: ConvergentRNN) -> dict[int, str]:
    """Member index (0 without members) -> the first parameter with a NaN or inf in that member."""
    bad: dict[int, str] = {}
    for name, p in model.named_parameters():
        finite = all_per_member(torch.isfinite(p), model.members)
        for i in (~finite).nonzero().flatten().tolist():
            bad.setdefault(i, name)
    return bad


def unchanged_members(model: ConvergentRNN, before: list[torch.Tensor]) -> list[int]:
    """Member indices (0 without members) whose every parameter equals ``before`` exactly."""
    same: torch.Tensor | None = None
    with torch.no_grad():
        for p, q in zip(model.parameters(), before):
            eq = all_per_member(p == q, model.members)
            same = eq if same is None else same & eq
    assert same is not None  # a model has parameters
    return same.nonzero().flatten().tolist()


#: Above this share (%) of unsettled test images after an epoch, a run of an algorithm whose
#: ``assumes_fixed_point`` is True warns (once per invocation): its update is derived at a fixed point
#: that the trained net does not reach.
UNSETTLED_WARN = 1.0


def unsettled_warning(share: float, T: int, n: int, when: str) -> str:
    return (f"the free phase has not settled after T = {T} steps on {share:.1f} % of {n} test images {when} "
            f"(one more step moves a unit by {SETTLE_TOL:g} or more): this algorithm's update assumes a fixed "
            "point; raise T, lower the learning rates, or check the initialisation (a synchronous step can "
            "end in a 2-cycle)")


@torch.no_grad()
def prediction_counts(model: ConvergentRNN, x: torch.Tensor, labels: torch.Tensor, T: int,
                      batch: int, schedule: str = "sync") -> tuple[torch.Tensor, torch.Tensor]:
    """After ``T`` free steps from zero (or ``T`` asynchronous sweeps, ``schedule = "async"``): the
    misclassified samples per member (shape ``(S,)``, or ``()``) and how often each class is predicted
    (``(S, C)`` or ``(C,)``), left on the device. Only the output layer is used, so a synchronous free
    phase may skip what cannot reach it."""
    lead = (model.members,) if model.members else ()
    wrong = torch.zeros(lead, dtype=torch.int64, device=labels.device)
    predicted = torch.zeros((*lead, model.num_classes), dtype=torch.int64, device=labels.device)
    for i in range(0, len(labels), batch):
        xb = model.prepare(x[i:i + batch])
        # xb may be prepare()'s Clamped, which init_state is not declared to take (the built-in models' do: raw)
        start = model.init_state(xb)  # type: ignore[arg-type]  # Clamped
        final = (model.relax(xb, start, T, output_at=T) if schedule == "sync" else
                 relax(model, xb, start, max_steps=T, schedule=schedule).state)
        pred = model.predict(final)
        wrong += (pred != labels[i:i + batch]).sum(-1)
        predicted += torch.nn.functional.one_hot(pred, model.num_classes).sum(-2)
    return wrong, predicted


def error_rate(model: ConvergentRNN, x: torch.Tensor, labels: torch.Tensor, T: int, batch: int) -> float:
    """Misclassified share in % after ``T`` free steps from zero (one host sync at the end)."""
    return 100.0 * prediction_counts(model, x, labels, T, batch)[0].item() / max(1, len(labels))


def error_rates(model: ConvergentRNN, x: torch.Tensor, labels: torch.Tensor, T: int, batch: int,
                schedule: str = "sync") -> list[float]:
    """:func:`error_rate` of every member (one value without members)."""
    return error_and_unpredicted(model, x, labels, T, batch, schedule)[0]


def error_and_unpredicted(model: ConvergentRNN, x: torch.Tensor, labels: torch.Tensor, T: int,
                          batch: int, schedule: str = "sync") -> tuple[list[float], list[int]]:
    """Per member: the error in % and the number of classes predicted for no sample at all. A
    class whose output unit never wins (e.g. clipped at 0 for every input, so that BPTT's gradient
    through the clip is zero for it) costs its whole share of the error; this count shows it."""
    wrong, predicted = prediction_counts(model, x, labels, T, batch, schedule)
    errors = [100.0 * w / max(1, len(labels)) for w in wrong.reshape(-1).tolist()]
    return errors, (predicted == 0).sum(-1).reshape(-1).tolist()


#: ``compile = "auto"`` compiles the step of a run with at least this many training steps: where it is
#: used, the compilation (10 s to 6 min) is paid back within about 1,200 (P-conv BPTT) to 15,000
#: (P-1h EP) steps (results/speed/TABLE-cpu.md); Table 1's runs have 90,000–300,000.
AUTO_COMPILE_STEPS = 20000

#: Upper bound of epochs: the paper's longest row trains 100; a million is a typo, refused before a run
#: starts with an ETA of centuries.
MAX_EPOCHS = 10**5


@dataclass
class _Run:
    """One invocation of :meth:`Train._train`: what its epochs share, kept off the RunKind (reused across runs)."""

    ctxs: list[RunContext]  # one per member (a single run: one)
    model: ConvergentRNN
    algorithm: object  # the step's algorithm (a Paired one for batched algorithms)
    per_member: list[Any]  # each member's own algorithm
    data: Splits
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None
    batches: int  # per epoch
    samples: int  # trained on per epoch (the last batch may be smaller: drop_last = false)
    shuffles: list[torch.Generator]  # each member's data order
    probe: torch.Tensor  # test images where the free phase is checked for a fixed point
    state_dict: Callable[[], dict] | None  # a stateful algorithm's state, into the checkpoints
    compiled: bool
    step: GraphedStep
    first_epoch: int  # 1, or the one after a resumed checkpoint's
    histories: list[list[dict]]  # each member's epoch points
    fixed_point: list[Any]  # whose algorithm assumes a fixed point (warned when unsettled)
    alive: list[int]  # members still learning (a batch goes on without one that diverged)
    warned: set[int] = field(default_factory=set)  # members warned of an unsettled free phase


class Train(RunKind):
    """Training (Table 1): SGD on mini-batches with one algorithm, train and test error per epoch (and
    unpredicted_classes: classes predicted for no test sample; unsettled: % of test images whose free
    phase has not settled after T steps), time and memory"""

    params: ClassVar[tuple[Param, ...]] = (
        *step_params(t_doc="first-phase steps (also used to predict)"),
        Param("epochs", int, 1, min=1, max=MAX_EPOCHS, doc="passes over the training set"),
        batch_size(),
        Param("max_batches", int | None, None, min=1, doc="stop each epoch after this many batches "
              "(quick suites and speed checks); None = the whole training set", max=10**12),
        Param("drop_last", bool, True, "drop each epoch's last, smaller mini-batch (a DataLoader's drop_last); "
              "false trains it too (eagerly: its shape would force a new graph or compilation)",
              quiet_default=True),
        Param("eval_batch_size", int, 1000, min=1, doc="batch size when measuring errors", max=10**7),
        Param("eval_schedule", str, "sync", "the free phase when measuring errors: eval_T synchronous steps (the "
              "paper's), or eval_T asynchronous sweeps (even layers, then odd ones: Scellier et al. 2023's "
              "inference)", choices=SCHEDULES, quiet_default=True),
        Param("eval_T", int | None, None, min=1, max=MAX_STEPS,
              doc="free steps when measuring errors (default T)"),
        Param("eval_train", bool, True, "also measure the error on the whole training set"),
        Param("checkpoint", bool, True, "save a checkpoint after every epoch, to resume"),
    )
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "model", "the network"),
        Slot("algorithm", "algorithm", "how it learns (ep or bptt, with lr and β)"),
        Slot("dataset", "dataset", "the data (mnist, blobs, ...)"),
    )
    example: ClassVar[dict | None] = {"T": 10, "K": 2}

    #: What it records: final values, and the same errors per epoch (a table with ``epoch = N``).
    records = Records(
        metrics=("test_error", "train_error", "unpredicted_classes", "unsettled", "seconds_per_epoch",
                 "samples_per_s", "peak_memory_mb", "final_checksum", "init_checksum", "unsettled_at_init",
                 "first_step_seconds", "compiled_step", "cuda_graph", "free_sweeps", "free_residual"),
        curves=("test_error", "train_error", "unpredicted_classes", "unsettled", "seconds", "samples_per_s",
                "free_sweeps", "free_residual"),
        costs=("seconds_per_epoch", "samples_per_s", "peak_memory_mb", "first_step_seconds", "seconds",
               "compiled_step", "cuda_graph"))  # (whether the step compiles or is graphed depends on the device)
    #: Its figures (the run-kind contract): train and test error per epoch.
    figures = staticmethod(train_figures)
    #: Runs differing only in these slots can share one batched model (``batch_algorithms``).
    batch_slots = ("algorithm",)

    def __init__(self, T: int, K: int, epochs: int = 1, batch_size: int = 20, max_batches: int | None = None,
                 eval_batch_size: int = 1000, eval_T: int | None = None, eval_train: bool = True,
                 checkpoint: bool = True, eval_schedule: str = "sync", drop_last: bool = True):
        check_steps(T, K, "train")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
        self.T, self.K, self.epochs, self.batch_size = T, K, epochs, batch_size
        self.max_batches, self.eval_batch_size = max_batches, eval_batch_size
        self.drop_last = bool(drop_last)
        self.eval_T = eval_T or T
        if eval_schedule not in SCHEDULES:
            raise ValueError(f"unknown eval_schedule {eval_schedule!r}; known: {', '.join(SCHEDULES)}")
        self.eval_schedule = eval_schedule
        self.eval_train, self.checkpoint = eval_train, checkpoint

    def __call__(self, ctx: RunContext) -> None:
        model = ctx.build("model").to(ctx.device, ctx.dtype)  # first draw after seeding: shared init
        self._train([ctx], model)

    def execute_batch(self, ctxs: list[RunContext]) -> None:
        """Runs of one configuration as one stacked model (see the module's docstring): seeds, and
        algorithms (EP with BPTT) when their classes declare they can share a step (``share``)."""
        algorithms = [ctx.build("algorithm") for ctx in ctxs]
        configs = [json.dumps(ctx.spec.slots["algorithm"], sort_keys=True) for ctx in ctxs]
        if any(capability(a, "stateful") for a in algorithms):
            return self._one_by_one(ctxs)  # an optimizer's state or a random stream per run: not batched
        if len(set(configs)) == 1:
            algorithm = algorithms[0]
        elif (shared := shared_step(algorithms)) is not None:
            algorithm = shared
        else:  # algorithms that cannot share a step: one batch per algorithm
            for config in dict.fromkeys(configs):
                self.execute_batch([c for c, k in zip(ctxs, configs) if k == config])
            return
        models = []
        for ctx in ctxs:
            ctx.reseed()  # each member gets exactly the weights of its separate run
            models.append(ctx.build("model").to(ctxs[0].device, ctxs[0].dtype))
            if len(ctxs) == 1 or not models[0].supports_members:
                return self._one_by_one(ctxs)  # no seed dimension for this model
        self._train(ctxs, stack_members(models), algorithm)

    @staticmethod
    def compiles(mode: str, model: ConvergentRNN, device: torch.device, steps: int,
                 algorithm: str | None = None) -> bool:
        """Whether to compile the training step: ``on``; ``off``; ``auto``: on a CPU, for a model on its
        fast path whose ``compile_pays`` is True or names the run's algorithm (where the speed suite
        measured the compiled step faster), in a run of at least :data:`AUTO_COMPILE_STEPS` steps."""
        if mode == "on":
            return True
        pays = model.compile_pays
        if not isinstance(pays, bool):
            pays = algorithm is not None and algorithm in pays
        return (mode == "auto" and device.type == "cpu" and model.fast and pays
                and steps >= AUTO_COMPILE_STEPS)

    def _one_by_one(self, ctxs: list[RunContext]) -> None:
        """The runs of a batch one after another, as separate runs: one that blows up is marked
        ``diverged`` and the others still run (an error of another kind stops the batch)."""
        for c in ctxs:
            c.reseed()
            try:
                self(c)
            except Diverged as exc:
                c.diverge(str(exc))

    def _batches(self, n: int) -> int:
        # the last partial batch is dropped, as a DataLoader with drop_last, unless drop_last = false
        batches = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.max_batches is not None:
            batches = min(batches, self.max_batches)
        if batches < 1:
            raise ValueError(f"the dataset has {n} training samples, fewer than batch_size = {self.batch_size}")
        return batches

    def _resume(self, ctxs: list[RunContext], model: ConvergentRNN, shuffles: list[torch.Generator],
                algorithm: object) -> tuple[int, list[list[dict]]]:
        """Restore every member from its checkpoint (all at the same epoch), else start afresh."""
        S = len(ctxs)
        checkpoints = [ctx.load_checkpoint() if self.checkpoint else None for ctx in ctxs]
        saved = [s for s in checkpoints if s is not None]
        if len(saved) < S or len({s["epoch"] for s in saved}) != 1:
            for ctx in ctxs:  # starting afresh: no earlier invocation's time or environment belongs to it
                ctx.start_afresh()
            return 1, [[] for _ in ctxs]
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            if model.members:
                state = {k: torch.stack([s["model"][k] for s in saved]) for k in saved[0]["model"]}
                model.load_state_dict(state)
            else:
                model.load_state_dict(saved[0]["model"])
        except (RuntimeError, KeyError) as exc:  # the right id, tensors that do not fit (edited by hand?)
            model.load_state_dict(initial)  # a failed load may have copied the tensors that did fit
            for ctx in ctxs:
                ctx.set_aside_checkpoint(f"does not fit this run's model ({str(exc).splitlines()[0][:160]})")
            return 1, [[] for _ in ctxs]
        load = capability(algorithm, "load_state_dict")
        if "algorithm" in saved[0] and load is not None:  # optimizer moments, random stream
            load(saved[0]["algorithm"])
        for i in range(S):
            shuffles[i].set_state(saved[i]["shuffle"].cpu())  # loaded onto the run's device
            for point in saved[i]["history"]:
                ctxs[i].log_epoch(**point)
        return saved[0]["epoch"] + 1, [s["history"] for s in saved]

    def _train(self, ctxs: list[RunContext], model: ConvergentRNN, algorithm: object | None = None) -> None:
        """Train the runs of ``ctxs`` (the members of ``model``) epoch by epoch, then record their results."""
        run = self._prepare(ctxs, model, algorithm)
        for epoch in range(run.first_epoch, self.epochs + 1):
            seconds, sweeps, residuals = self._train_epoch(run, epoch)
            self._drop_diverged(run, epoch)
            if not run.alive:
                return
            self._evaluate(run, epoch, seconds, sweeps, residuals)
            if self.checkpoint and epoch < self.epochs:
                self._save_checkpoints(run, epoch)
        self._record_final(run)

    def _prepare(self, ctxs: list[RunContext], model: ConvergentRNN, algorithm: object | None) -> _Run:
        """Set up a run (data, generators, resumed state, the step) in the order its random streams are drawn."""
        ctx0, S = ctxs[0], len(ctxs)
        for ctx, checksum in zip(ctxs, member_checksums(model)):
            ctx.record("init_checksum", checksum)
        if algorithm is None:
            algorithm = ctx0.build("algorithm")
        dataset = ctx0.build("dataset")
        data = dataset.load(ctx0.device, ctx0.dtype)
        augment = augmenter(dataset)  # e.g. random crops and flips, per member from its own seed
        batches = self._batches(len(data.train))
        shuffles = [ctx.generator(offset=1) for ctx in ctxs]
        stateful = capability(algorithm, "stateful")  # then S == 1 (execute_batch runs them apart)
        use_generator = capability(algorithm, "use_generator")
        if stateful and use_generator is not None:
            use_generator(ctx0.generator(offset=2))  # e.g. the sign of β, from the run's seed
        state_dict = capability(algorithm, "state_dict") if stateful else None  # into the epoch checkpoints
        probe = data.test.x[: self.eval_batch_size]  # where the free phase's end is checked for a fixed point
        for ctx, share in zip(ctxs, unsettled_share(model, probe, self.T)):  # recorded, no warning: training
            ctx.record("unsettled_at_init", share)  # may settle it (at the Glorot init most Table 1 nets start so)
        first_epoch, histories = self._resume(ctxs, model, shuffles, algorithm)
        alive = list(range(S))  # members still learning (a batch goes on without one that diverged)
        per_member = capability(algorithm, "algorithms") or [algorithm] * S  # Paired: one per member
        fixed_point = [capability(a, "assumes_fixed_point") for a in per_member]
        compiled, step = self._make_step(ctxs, model, algorithm, batches)
        if ctx0.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx0.device)
        return _Run(ctxs=ctxs, model=model, algorithm=algorithm, per_member=per_member, data=data,
                    augment=augment, batches=batches, samples=min(len(data.train), batches * self.batch_size),
                    shuffles=shuffles, probe=probe, state_dict=state_dict,
                    compiled=compiled, step=step, first_epoch=first_epoch, histories=histories,
                    fixed_point=fixed_point, alive=alive)

    def _make_step(self, ctxs: list[RunContext], model: ConvergentRNN, algorithm: object,
                   batches: int) -> tuple[bool, GraphedStep]:
        """The training step: compiled where it pays (:meth:`compiles`), else graphed on CUDA; checked at first use."""
        names = {ctx.spec.slots.get("algorithm", {}).get("name") for ctx in ctxs}  # two when EP and BPTT are paired
        compiled = self.compiles(ctxs[0].spec.compile, model, ctxs[0].device, self.epochs * batches,
                                 names.pop() if len(names) == 1 else None)

        def warn(message: str) -> None:  # a fallback to the eager step: in every run's status
            for ctx in ctxs:
                ctx.warn(message)

        step = (compiled_train_step(algorithm, model, T=self.T, K=self.K, warn=warn) if compiled
                else graphed_train_step(algorithm, model, T=self.T, K=self.K, warn=warn))
        return compiled, step

    def _train_epoch(self, run: _Run, epoch: int) -> tuple[float, list[float], list[float]]:
        """One pass over the shuffled batches: its seconds and the free phases' sweeps and residuals (where logged)."""
        ctxs, model, batches, device = run.ctxs, run.model, run.batches, run.ctxs[0].device
        for a in dict.fromkeys([run.algorithm, *run.per_member]):  # a schedule's rate of this epoch (resumes too)
            begin = capability(a, "start_epoch")
            if begin is not None:
                begin(epoch, self.epochs)
        n = len(run.data.train)
        orders = [torch.randperm(n, generator=g)[: batches * self.batch_size] for g in run.shuffles]
        order = (torch.stack(orders) if model.members else orders[0]).to(device)
        synchronize(device)
        start = time.perf_counter()
        first = 0.0  # a compiled or graphed step's first call (compilation or capture and the check)
        sweeps: list[float] = []  # an algorithm with its own relaxation logs each free phase's sweeps
        residuals: list[float] = []  # and residual (EP with schedule or tol: harness.api.relaxation)
        for b in range(batches):
            x, y = self._batch(run, order, epoch, b)
            before = [p.detach().clone() for p in model.parameters()] if epoch == 1 and b == 0 else None
            timed = epoch == run.first_epoch and b == 0 and getattr(run.step, "enabled", False) and batches > 1
            if timed:
                synchronize(device)
                t0 = time.perf_counter()
            # a smaller last batch (drop_last = false) runs eagerly: a graph or compilation is for one shape
            full = run.samples - b * self.batch_size >= self.batch_size
            log = run.step(x, y) if full else run.step.step(x, y)
            if isinstance(log, dict) and "free_sweeps" in log:
                sweeps.append(float(log["free_sweeps"]))
                residuals.append(float(log["free_residual"]))
            if timed:
                synchronize(device)
                first = time.perf_counter() - t0
                for ctx in ctxs:
                    ctx.record("first_step_seconds", first)
            if before is not None:  # a run whose first update is exactly zero may never learn: say so now
                for i in unchanged_members(model, before):
                    ctxs[i].warn("the first training step changed no parameter: the update is exactly zero "
                                 "(e.g. every output unit saturated by a hard sigmoid or a clip, so that "
                                 "BPTT's gradient vanishes); this run may not learn: check the model's "
                                 "initialisation and learning rates")
            ctxs[0].progress((epoch - 1) * batches + b + 1, self.epochs * batches, "batch",
                             f"epoch {epoch}/{self.epochs}", eta_after=batches)  # an epoch and its evaluation
        synchronize(device)
        seconds = time.perf_counter() - start
        if first:  # left out (recorded apart): the epoch's time at the rate of its other steps
            seconds = (seconds - first) * batches / (batches - 1)
        return seconds, sweeps, residuals

    def _batch(self, run: _Run, order: torch.Tensor, epoch: int,
               b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mini-batch ``b`` of an epoch's ``order``: inputs (augmented from each member's seed) and targets."""
        model, ctxs = run.model, run.ctxs
        idx = order[..., b * self.batch_size:(b + 1) * self.batch_size]
        x, y = run.data.train.x[idx], model.target(run.data.train.y[idx])
        if run.augment is not None:
            augment = run.augment
            x = (torch.stack([augment(x[i], batch_generator(c.seed, epoch, b)) for i, c in enumerate(ctxs)])
                 if model.members else augment(x, batch_generator(ctxs[0].seed, epoch, b)))
        return x, y

    def _drop_diverged(self, run: _Run, epoch: int) -> None:
        """Stop a member whose weights are no longer finite: a single run raises, a batch goes on without it."""
        for i, name in nonfinite_parameters(run.model).items():
            if i not in run.alive:
                continue
            message = (f"parameter {name} is not finite after epoch {epoch} (run {run.ctxs[i].spec.id}); "
                       "lower the learning rates or β")
            if len(run.ctxs) == 1:
                raise Diverged(message)
            run.ctxs[i].diverge(message + " (the other runs of its batch went on)")
            run.alive.remove(i)

    def _evaluate(self, run: _Run, epoch: int, seconds: float, sweeps: list[float], residuals: list[float]) -> None:
        """Measure the errors after an epoch and log its point in every live member's history."""
        ctxs, model, data, batches = run.ctxs, run.model, run.data, run.batches
        ctxs[0].progress(epoch * batches, self.epochs * batches, "batch", f"epoch {epoch}/{self.epochs} evaluating "
                         f"({len(data.test)} test"
                         + (f" + {len(data.train)} train" if self.eval_train else "") + " samples)",
                         eta_after=batches)
        tests, unpredicted = error_and_unpredicted(model, data.test.x, data.test.y, self.eval_T,
                                                   self.eval_batch_size, self.eval_schedule)
        trains = (error_rates(model, data.train.x, data.train.y, self.eval_T, self.eval_batch_size,
                              self.eval_schedule)
                  if self.eval_train else None)  # not evaluated: not recorded (no NaN placeholder)
        unsettled = unsettled_share(model, run.probe, self.T)
        self._check_settled(run, unsettled, f"after epoch {epoch}")
        for i in run.alive:
            point: dict[str, Any] = {
                "epoch": epoch, **({"train_error": trains[i]} if trains else {}), "test_error": tests[i],
                "unpredicted_classes": unpredicted[i], "unsettled": unsettled[i], "seconds": seconds,
                "samples_per_s": run.samples / seconds,
                # the epoch's free phases, where the algorithm relaxes to a tolerance: mean sweeps, worst residual
                **({"free_sweeps": sum(sweeps) / len(sweeps), "free_residual": max(residuals)} if sweeps else {})}
            run.histories[i].append(point)
            ctxs[i].log_epoch(**point)
        ctxs[0].progress(epoch * batches, self.epochs * batches, "batch",
                         f"epoch {epoch}/{self.epochs} test {tests[run.alive[0]]:.2f}%"
                         + (f" train {trains[run.alive[0]]:.2f}%" if trains else ""), eta_after=batches)

    def _check_settled(self, run: _Run, shares: list[float], when: str) -> None:
        """Warn (once per member) where a fixed-point algorithm's free phase has not settled on the probe."""
        for i in run.alive:
            if run.fixed_point[i] and shares[i] > UNSETTLED_WARN and i not in run.warned:
                run.warned.add(i)
                run.ctxs[i].warn(unsettled_warning(shares[i], self.T, len(run.probe), when))

    def _save_checkpoints(self, run: _Run, epoch: int) -> None:
        """Save each live member's epoch checkpoint, so that an interrupted run resumes with the same result."""
        model = run.model
        with signals_deferred():  # all members or none: a batch resumes only from one epoch
            for i in run.alive:
                state = {"model": member_state(model, i) if model.members else model.state_dict(),
                         "shuffle": run.shuffles[i].get_state(), "epoch": epoch, "history": run.histories[i],
                         **({"algorithm": run.state_dict()} if run.state_dict is not None else {})}
                run.ctxs[i].save_checkpoint(state, progress=f"after epoch {epoch} of {self.epochs}",
                                            done=epoch / self.epochs)

    def _record_final(self, run: _Run) -> None:
        """Record each live member's results: its last epoch's errors, mean epoch time, memory, checksum, step kind."""
        device = run.ctxs[0].device
        checksums = member_checksums(run.model)
        used_compile = float(run.compiled and run.step.graphed)  # compiled, and equal to eager at first use
        for i in run.alive:
            ctx, history = run.ctxs[i], run.histories[i]
            last = history[-1]
            ctx.record("test_error", last["test_error"])
            ctx.record("unpredicted_classes", last["unpredicted_classes"])
            ctx.record("unsettled", last["unsettled"])
            for key in ("free_sweeps", "free_residual"):
                if key in last:
                    ctx.record(key, last[key])
            if self.eval_train:
                ctx.record("train_error", last["train_error"])
            # with batched seeds: each member's own epoch time is the batch's (they ran together)
            ctx.record("seconds_per_epoch", sum(h["seconds"] for h in history) / len(history))
            ctx.record("samples_per_s", sum(h["samples_per_s"] for h in history) / len(history))
            ctx.record("peak_memory_mb", peak_memory_mb(device))
            ctx.record("final_checksum", checksums[i])
            ctx.record("compiled_step", used_compile)
            if device.type == "cuda":  # the step replayed as a CUDA graph (it passed its first-use check)
                ctx.record("cuda_graph", float(not run.compiled and run.step.graphed))
