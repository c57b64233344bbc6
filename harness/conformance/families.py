"""The checks of every other family: algorithms (on the kit's own Φ-only net), metrics,
datasets, run kinds, executors, trackers."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn

from harness.api.algorithm import Algorithm, process_key
from harness.api.components import Registry
from harness.api.dataset import Dataset
from harness.api.executor import Executor
from harness.api.model import ConvergentRNN
from harness.api.records import undeclared
from harness.api.run_kind import RunKind, declared
from harness.api.tracker import Tracker

from .base import D64, CheckFailed, CheckResult, CheckSkipped, _Checks, _shape
from .build import (
    _build,
    _skip_reason,
    as_component,
    contract_problems,
    default_registry,
    example_params,
    start_checks,
)


# -- algorithms ------------------------------------------------------------------
class _KitNet(ConvergentRNN):
    """The kit's own tiny model for the algorithm checks, written as Φ alone (the generic step):
    Φ = ½(1−ε)Σ‖s‖² + ε(σ(s⁰)·W01·σ(s¹) + σ(s¹)·W12·σ(s²) + σ(s²)·W2x·x + b·σ(s)), σ = tanh."""

    layer_names = ("s0", "s1", "s2")
    input_size = 6
    num_classes = 3
    supports_complex = True  # tanh is analytic: the generic step runs on complex states (holomorphic EP)

    def __init__(self, eps: float = 0.5):
        super().__init__()
        self.eps = self.nudge_scale = eps
        g = torch.Generator().manual_seed(0)

        def weight(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.rand(*shape, generator=g, dtype=D64) - 0.5)

        self.W2x, self.W12, self.W01 = weight(4, 6), weight(5, 4), weight(3, 5)
        self.b2, self.b1, self.b0 = weight(4), weight(5), weight(3)

    def init_state(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(x.new_zeros(x.shape[0], n) for n in (3, 5, 4))

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"W2x": [self.W2x, self.b2], "W12": [self.W12, self.b1], "W01": [self.W01, self.b0]}

    def phi(self, x: Tensor, state: tuple[Tensor, ...]) -> Tensor:
        a0, a1, a2 = (torch.tanh(t) for t in state)
        coupling = ((a0 @ self.W01) * a1).sum(1) + ((a1 @ self.W12) * a2).sum(1) + ((a2 @ self.W2x) * x).sum(1) \
            + a0 @ self.b0 + a1 @ self.b1 + a2 @ self.b2
        return 0.5 * (1 - self.eps) * sum((t * t).sum(1) for t in state) + self.eps * coupling


def _algorithm_checks(algorithm: Any, params: dict[str, Any] | None = None, *,
                     registry: Registry | None = None, lazy: bool = False) -> _Checks:
    """train_step and processes of an algorithm on the kit's tiny Φ-only net (float64)."""
    comp = as_component("algorithm", algorithm, registry)
    model = _KitNet()
    groups = model.param_groups()
    params = example_params(comp, params)
    if comp.param("lr") is not None and "lr" not in params:
        params["lr"] = [0.05] * len(groups)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 6, generator=g, dtype=D64)
    y = model.target(torch.randint(0, 3, (4,), generator=g))
    T, K = 30, 5
    state: dict[str, Any] = {}

    def builds():
        state["alg"] = _build(comp, params)
        for method in ("train_step", "processes"):
            if not callable(getattr(state["alg"], method, None)):
                raise CheckFailed(f"the algorithm has no {method}(model, x, y, *, T, K) method "
                                  f"(see harness.api.algorithm.Algorithm)")
        problem = contract_problems(Algorithm, state["alg"])
        if problem:
            raise CheckFailed(problem)
        return f"{type(state['alg']).__name__} with {params}"

    def processes():
        from harness.api.algorithm import Processes

        p = state["alg"].processes(model, x, y, T=T, K=K)
        if not isinstance(p, Processes):
            raise CheckFailed(f"processes() returned {type(p).__name__}, expected harness.api.algorithm.Processes")
        s = model.init_state(x)
        if set(p.neurons) != set(model.layer_names):
            raise CheckFailed(f"processes().neurons has keys {sorted(p.neurons)}, expected the layer names "
                              f"{list(model.layer_names)}")
        for name, t in zip(model.layer_names, s):
            if p.neurons[name].shape != (K, *t.shape[1:]):
                raise CheckFailed(f"neurons[{name!r}] has shape {_shape(p.neurons[name])}, expected (K, *layer) "
                                  f"= {(K, *t.shape[1:])} (batch-averaged, one row per step)")
        expected = {process_key(gname, i): q for gname, ps in groups.items() for i, q in enumerate(ps)}
        if set(p.weights) != set(expected):
            raise CheckFailed(f"processes().weights has keys {sorted(p.weights)}, expected '<group>.<index>' "
                              f"for every parameter: {sorted(expected)}")
        for k, q in expected.items():
            if p.weights[k].shape != (K, *q.shape):
                raise CheckFailed(f"weights[{k!r}] has shape {_shape(p.weights[k])}, expected (K, *param) = "
                                  f"{(K, *q.shape)}")
        bad = [k for k, v in {**p.neurons, **p.weights}.items() if not bool(torch.isfinite(v).all())]
        if bad:
            raise CheckFailed(f"processes are not finite for {', '.join(bad)}")
        return f"{len(p.neurons)} neuron and {len(p.weights)} weight processes of K = {K} steps, right shapes"

    def train_step():
        m = copy.deepcopy(model)
        before = [q.detach().clone() for q in m.parameters()]
        out = state["alg"].train_step(m, x, y, T=T, K=K)
        if not isinstance(out, dict) or not all(isinstance(v, Tensor) for v in out.values()):
            raise CheckFailed(f"train_step returned {out!r}; expected a dict of tensors for logging "
                              f"(e.g. {{'loss': ...}})")
        after = list(m.parameters())
        if not all(bool(torch.isfinite(q).all()) for q in after):
            raise CheckFailed("train_step left non-finite parameters on the kit's tiny net (lr 0.05)")
        if all(torch.equal(a.detach(), b) for a, b in zip(after, before)):
            raise CheckFailed("train_step changed no parameter of the model it was given (update in place, "
                              "under torch.no_grad())")
        return f"updated the parameters in place, returned {sorted(out)}"

    c = start_checks(comp, registry, lazy)
    c.run("builds", builds)
    c.run("processes", processes, needs=["builds"])
    c.run("train step", train_step, needs=["builds"])
    return c


# -- metrics -------------------------------------------------------------------
def _metric_checks(metric: Any, params: dict[str, Any] | None = None, *,
                  registry: Registry | None = None, lazy: bool = False) -> _Checks:
    comp = as_component("metric", metric, registry)
    params = example_params(comp, params)
    state: dict[str, Any] = {}
    g = torch.Generator().manual_seed(3)
    a = torch.randn(6, 4, 3, generator=g, dtype=D64)
    b = torch.randn(6, 4, 3, generator=g, dtype=D64)

    def builds():
        state["m"] = _build(comp, params)
        if not callable(state["m"]):
            raise CheckFailed("a metric is callable: metric(candidate, reference) -> float")
        return type(state["m"]).__name__

    def direction():
        d = getattr(state["m"], "direction", None)
        if d not in ("lower", "higher"):
            raise CheckFailed(f"direction is {d!r}; a metric declares direction = \"lower\" or \"higher\" "
                              f"(which values are better), so tables and checks can read it")
        return f"{d} is better"

    def values():
        m = state["m"]
        same, other, flipped = m(a, a.clone()), m(a, b), m(a, -a)
        for label, v in (("identical", same), ("different", other), ("opposite", flipped)):
            if not isinstance(v, float) or isinstance(v, bool):
                raise CheckFailed(f"metric({label} processes) returned {type(v).__name__} {v!r}; return a "
                                  f"Python float (e.g. float(tensor))")
        if not math.isfinite(same):
            raise CheckFailed(f"metric(identical processes) = {same}; expected a finite value")
        better = (lambda u, v: u <= v) if m.direction == "lower" else (lambda u, v: u >= v)
        for label, v in (("different", other), ("opposite", flipped)):
            if not better(same, v):
                raise CheckFailed(f"identical processes score {same:.4g} but {label} ones score {v:.4g}, which "
                                  f"is better for direction {m.direction!r}; identical processes must score at "
                                  f"least as well as any other pair")
        return f"identical {same:.4g}, different {other:.4g}, opposite {flipped:.4g} (floats)"

    c = start_checks(comp, registry, lazy)
    c.run("builds", builds)
    c.run("direction", direction, needs=["builds"])
    c.run("values", values, needs=["direction"])
    return c


# -- datasets ------------------------------------------------------------------
def _dataset_checks(dataset: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None, lazy: bool = False) -> _Checks:
    from harness.api.dataset import Split, Splits

    comp = as_component("dataset", dataset, registry)
    params = example_params(comp, params)
    state: dict[str, Any] = {}

    def builds():
        state["d"] = _build(comp, params)
        if not callable(getattr(state["d"], "load", None)):
            raise CheckFailed("a dataset has load(device, dtype) -> harness.api.dataset.Splits")
        problem = contract_problems(Dataset, state["d"])
        if problem:
            raise CheckFailed(problem)
        return f"{type(state['d']).__name__} with {params}"

    def load():
        reason = _skip_reason(comp, state["d"])
        if reason:
            raise CheckSkipped(reason)
        out = []
        for dtype in (torch.float32, D64):
            splits = state["d"].load(torch.device("cpu"), dtype)
            if not isinstance(splits, Splits):
                raise CheckFailed(f"load() returned {type(splits).__name__}, expected harness.api.dataset.Splits")
            k = splits.num_classes
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise CheckFailed(f"num_classes is {k!r}; expected a positive int")
            for name, sp in (("train", splits.train), ("test", splits.test)):
                if not isinstance(sp, Split):
                    raise CheckFailed(f"{name} is {type(sp).__name__}, expected harness.api.dataset.Split")
                if sp.x.dtype != dtype:
                    raise CheckFailed(f"load(cpu, {dtype}): {name}.x is {sp.x.dtype}; convert x to the "
                                      f"requested dtype")
                if sp.y.dtype != torch.int64 or sp.y.dim() != 1:
                    raise CheckFailed(f"{name}.y is {sp.y.dtype} of shape {_shape(sp.y)}; expected int64 "
                                      f"class labels of shape (N,)")
                if sp.x.shape[0] != sp.y.shape[0] or len(sp) < 1:
                    raise CheckFailed(f"{name} has {sp.x.shape[0]} inputs and {sp.y.shape[0]} labels; "
                                      f"expected as many of each, at least one")
                if sp.x.device.type != "cpu" or sp.y.device.type != "cpu":
                    raise CheckFailed(f"load(cpu, ...) put {name} on {sp.x.device}; use the device given")
                if int(sp.y.min()) < 0 or int(sp.y.max()) >= k:
                    raise CheckFailed(f"{name}.y has labels in [{int(sp.y.min())}, {int(sp.y.max())}], "
                                      f"expected 0 … num_classes − 1 = {k - 1}")
                if not bool(torch.isfinite(sp.x).all()):
                    raise CheckFailed(f"{name}.x has NaN or infinite values")
            out = [len(splits.train), len(splits.test), k, tuple(splits.train.x.shape[1:])]
        return f"train {out[0]}, test {out[1]}, {out[2]} classes, inputs {out[3]}; float32 and float64"

    c = start_checks(comp, registry, lazy)
    c.run("builds", builds)
    c.run("load", load, needs=["builds"])
    return c


# -- run kinds and executors --------------------------------------------------------
def _run_kind_checks(kind: Any, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None, lazy: bool = False) -> _Checks:
    comp = as_component("run_kind", kind, registry)
    params = example_params(comp, params)

    def slots():
        if not comp.slots:
            raise CheckFailed("a run kind declares the components it consumes as slots=[Slot(...)]")
        notes = []
        installed = default_registry(registry)
        for s in comp.slots:
            if s.required:
                continue
            for name in (s.default if isinstance(s.default, list) else [s.default]):
                try:
                    installed.get(s.family, name)
                except LookupError:
                    notes.append(f"default {s.family} {name!r} of slot {s.name!r} is not installed now")
        text = ", ".join(f"{s.name} ({'list of ' if s.many else ''}{s.family})" for s in comp.slots)
        return text + (f"; note: {'; '.join(notes)}" if notes else "")

    def records():
        declared_records = declared(comp.factory)
        if declared_records is None:
            raise CheckFailed("a run kind declares what it records, `records = Records(metrics=(...), columns=(...), "
                              "curves=(...))` on its factory (harness.api.records), so that bench validate can check "
                              "the tables of a suite before its runs")
        stray = undeclared(declared_records.costs, {*declared_records.metrics, *declared_records.curves})
        if stray:
            raise CheckFailed(f"Records.costs names {', '.join(map(repr, stray))}, which are neither among its metrics "
                              "nor its curves: a cost is one of the values it records")
        return (f"{len(declared_records.metrics)} final metric(s), {len(declared_records.curves)} per-epoch value(s)"
                + (f", the metrics of slot(s) {', '.join(declared_records.metric_slots)}"
                   if declared_records.metric_slots else "")
                + (f", {len(declared_records.costs)} of them cost(s)" if declared_records.costs else ""))

    def builds():
        execute = _build(comp, params)
        if not callable(execute):
            raise CheckFailed(f"the factory returned {type(execute).__name__}; a run kind's factory returns "
                              f"a callable execute(ctx)")
        problem = contract_problems(RunKind, execute)
        if problem:
            raise CheckFailed(problem)
        return f"{type(execute).__name__} with {params}, callable"

    c = start_checks(comp, registry, lazy)
    c.run("slots", slots)
    c.run("records", records)
    c.run("builds", builds, needs=["declaration"])
    return c


def _executor_checks(executor: Any, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None, lazy: bool = False) -> _Checks:
    comp = as_component("executor", executor, registry)
    params = example_params(comp, params)

    def builds():
        ex = _build(comp, params)
        own = getattr(type(ex), "execute", None)
        if not callable(own) or own is Executor.execute:  # the contract's own raises NotImplementedError
            raise CheckFailed("an executor has execute(job, runs) -> list[RunResult] of its own "
                              "(see harness.api.executor.Executor)")
        problem = contract_problems(Executor, ex)
        if problem:
            raise CheckFailed(problem)
        return f"{type(ex).__name__}, has execute(job, runs)"

    c = start_checks(comp, registry, lazy)
    c.run("builds", builds, needs=["declaration"])
    return c


def _tracker_checks(tracker: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None, lazy: bool = False) -> _Checks:
    comp = as_component("tracker", tracker, registry)
    params = example_params(comp, params)

    def builds():
        t = _build(comp, params)
        methods = [m for m in ("start", "log_epoch", "finish") if callable(getattr(t, m, None))]
        if not methods:
            raise CheckFailed("a tracker has start, log_epoch and/or finish (see harness.api.tracker.Tracker)")
        problem = contract_problems(Tracker, t)
        if problem:
            raise CheckFailed(problem)
        return f"{type(t).__name__}, has {', '.join(methods)}"

    c = start_checks(comp, registry, lazy)
    c.run("builds", builds, needs=["declaration"])
    return c


# -- the public functions (harness.conformance) -----------------------------------------
def check_algorithm(algorithm: Any, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None) -> list[CheckResult]:
    """builds, processes() and train_step() of an algorithm on the kit's own tiny Φ-only net (float64)."""
    return _algorithm_checks(algorithm, params, registry=registry).results


def check_metric(metric: Any, params: dict[str, Any] | None = None, *,
                 registry: Registry | None = None) -> list[CheckResult]:
    """builds, direction in ("lower", "higher"), float values; identical processes score best."""
    return _metric_checks(metric, params, registry=registry).results


def check_dataset(dataset: Any, params: dict[str, Any] | None = None, *,
                  registry: Registry | None = None) -> list[CheckResult]:
    """builds; load(cpu, dtype) returns consistent Splits (float x in the dtype, int64 labels below num_classes)."""
    return _dataset_checks(dataset, params, registry=registry).results


def check_run_kind(kind: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None) -> list[CheckResult]:
    """Declared slots (their defaults installed?) and records; the factory builds a callable."""
    return _run_kind_checks(kind, params, registry=registry).results


def check_executor(executor: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None) -> list[CheckResult]:
    """builds an object with execute(job, runs)."""
    return _executor_checks(executor, params, registry=registry).results


def check_tracker(tracker: Any, params: dict[str, Any] | None = None, *,
                  registry: Registry | None = None) -> list[CheckResult]:
    """builds an object with start, log_epoch and/or finish."""
    return _tracker_checks(tracker, params, registry=registry).results
