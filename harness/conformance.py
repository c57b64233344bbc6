"""The conformance kit: run every component of a plugin through the harness on tiny CPU inputs.

``bench check-plugin NAME`` and :mod:`harness.testing` (for a plugin's own
pytest suite) both call the functions here. Each check is a small function
that returns a one-line description of what it verified, raises
:class:`CheckFailed` with *what was checked, what was expected, what was
found and what to fix*, or raises :class:`CheckSkipped` with the reason. Any
other exception a component raises during a check is a failure too, reported
with its type and message.

Sizes. The kit cannot know which sizes are small for a third-party component,
so a component is built from, in order of precedence:

1. explicit overrides (``check_model(..., hidden_size=4)``, or
   ``check_plugin(..., overrides={"model:hopfield": {...}})``);
2. what the component declared at registration, ``register(..., example={...})``,
   else its factory's ``conformance_params`` attribute (e.g. ``{"hidden_size": 6}``);
   the built-ins declare theirs like any plugin, so the kit knows none by name;
3. the component's declared defaults.

A model's input shape is read from the built model's ``input_shape`` (a
tuple) or ``input_size`` (an int) attribute, or given as ``input_shape=``.
A factory may also carry ``conformance_skip(instance) -> str | None``: a
reason to skip the checks that need something absent (e.g. data files).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from .components import FAMILIES, Component, Param, Registry, Slot, check_type, close_match, type_name
from .model import ConvergentRNN

PASS, FAIL, SKIP = "pass", "fail", "skip"
MARKS = {PASS: "✓", FAIL: "✗", SKIP: "–"}
D64 = torch.float64

#: Tolerances of the numerical checks (float64 unless said otherwise).
TOL_EXACT = 1e-10  # F = ∂Φ/∂s, dphi_dtheta, nudge: relative to max(1, |reference|)
TOL_SETTLED = 1e-12  # max |F(s) − s| for a steady state
THEOREM_RELMSE = 1e-3  # RelMSE(ΔEP, −∇BPTT) per layer at β = THEOREM_BETA
THEOREM_BETA = 1e-4
THEOREM_K = 10
MAX_RELAX_STEPS = 20000


class CheckFailed(AssertionError):
    """A check found a component that breaks its contract; the message says how to fix it."""


class CheckSkipped(Exception):
    """A check that does not apply (or cannot run here); the message says why."""


@dataclass
class CheckResult:
    component: str  # "model:eb"
    check: str  # "F = ∂Φ/∂s"
    status: str  # pass | fail | skip
    message: str
    seconds: float = 0.0
    #: Numbers a caller may want (the theorem's RelMSE, T, β, ...).
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "check": self.check, "status": self.status,
                "message": self.message, "seconds": round(self.seconds, 4), "data": self.data}

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.check}: {self.message}"


@dataclass
class Report:
    """The results of ``check_plugin``: one entry per check of each component."""

    plugin: str
    distribution: str = ""
    version: str = ""
    status: str = ""  # the plugin's load status
    error: str = ""  # its load error, if any
    results: list[CheckResult] = field(default_factory=list)
    #: component -> parameters it was built with
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count(FAIL) == 0

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == FAIL]

    def summary(self) -> str:
        return (f"plugin {self.plugin}: {self.count(PASS)} passed, {self.count(FAIL)} failed, "
                f"{self.count(SKIP)} skipped")

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "distribution": self.distribution, "version": self.version,
                "status": self.status, "error": self.error, "ok": self.ok,
                "passed": self.count(PASS), "failed": self.count(FAIL), "skipped": self.count(SKIP),
                "params": self.params, "results": [r.as_dict() for r in self.results]}


# -- running checks ------------------------------------------------------------
class _Checks:
    """Runs the checks of one component in order; a check whose prerequisite failed is skipped."""

    def __init__(self, component: str):
        self.component = component
        self.results: list[CheckResult] = []
        self._status: dict[str, str] = {}
        self._message: dict[str, str] = {}

    def run(self, name: str, fn: Callable[[], Any], *, needs: Iterable[str] = ()) -> bool:
        for dep in needs:
            status = self._status.get(dep)
            if status == SKIP:  # same reason, e.g. derives_from_phi is False
                self._add(name, SKIP, self._message[dep])
                return False
            if status != PASS:
                why = "failed" if status == FAIL else "did not run"
                self._add(name, SKIP, f"not run: check '{dep}' {why}")
                return False
        start = time.perf_counter()
        data: dict[str, Any] = {}
        try:
            out = fn()
            if isinstance(out, tuple):
                out, data = out
            status, message = PASS, str(out)
        except CheckSkipped as exc:
            status, message = SKIP, str(exc)
        except CheckFailed as exc:
            status, message = FAIL, str(exc)
        except Exception as exc:  # the component raised: that is a failure of this check
            where = _where(exc)
            status, message = FAIL, f"raised {type(exc).__name__}: {exc}{where}"
        self._add(name, status, message, time.perf_counter() - start, data)
        return status == PASS

    def _add(self, name, status, message, seconds=0.0, data=None):
        self._status[name], self._message[name] = status, message
        self.results.append(CheckResult(self.component, name, status, message, seconds, data or {}))


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name}:{f.lineno}, in {f.name})"


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed like the runner does (``seed_everything``), restoring every generator afterwards."""
    from .environment import seed_everything

    torch_state, py_state = torch.get_rng_state(), random.getstate()
    try:
        import numpy as np

        np_state = np.random.get_state()
    except ImportError:  # pragma: no cover
        np = np_state = None
    try:
        seed_everything(seed)
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        if np is not None:
            np.random.set_state(np_state)


def _maxdiff(a: Tensor, b: Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0


def _scale(t: Tensor) -> float:
    return max(1.0, float(t.detach().abs().max())) if t.numel() else 1.0


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


# -- examples ------------------------------------------------------------------
def example_params(component: Component, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the kit builds ``component`` with: what it declared at registration
    (``example=``), else its factory's ``conformance_params``, then ``overrides``."""
    declared = component.example
    if declared is None:
        declared = getattr(component.factory, "conformance_params", None) or {}
    return {**dict(declared), **(overrides or {})}


def _skip_reason(component: Component, instance: Any) -> str | None:
    """Why the kit cannot check this instance here (e.g. data that is not on this machine), if
    its factory says so through ``conformance_skip(instance)``."""
    hook = getattr(component.factory, "conformance_skip", None)
    return hook(instance) if hook is not None else None


def as_component(family: str, factory_or_component: Any, registry: Registry | None = None) -> Component:
    """A registered component by name, a Component, or a bare factory (no declared parameters)."""
    if isinstance(factory_or_component, Component):
        return factory_or_component
    if isinstance(factory_or_component, str):
        if registry is None:
            from .plugins import get_manager

            registry = get_manager().registry
        return registry.get(family, factory_or_component)
    if not callable(factory_or_component):
        raise TypeError(f"expected a {family} name, a Component or a factory, got {factory_or_component!r}")
    name = getattr(factory_or_component, "__name__", repr(factory_or_component))
    return Component(family=family, name=name, factory=factory_or_component, plugin="(direct)")


# -- declarations (every family) ----------------------------------------------
def _check_declaration(comp: Component, registry: Registry | None) -> str:
    problems = []
    seen: set[str] = set()
    for p in comp.params:
        if not isinstance(p, Param):
            problems.append(f"params must be harness.Param objects, found {p!r}")
            continue
        if p.name in seen:
            problems.append(f"parameter {p.name!r} is declared twice")
        seen.add(p.name)
        if not p.required:
            if not check_type(p.default, p.type):
                problems.append(f"parameter {p.name!r}: default {p.default!r} is not a {type_name(p.type)} "
                                f"(suites are validated against the declared type)")
            if p.choices is not None and p.default not in p.choices:
                problems.append(f"parameter {p.name!r}: default {p.default!r} is not one of its choices "
                                f"{list(p.choices)}")
    try:
        sig = inspect.signature(comp.factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        accepts_kwargs = any(q.kind is inspect.Parameter.VAR_KEYWORD for q in sig.parameters.values())
        names = {n for n, q in sig.parameters.items()
                 if q.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        for p in comp.params:
            if isinstance(p, Param) and not accepts_kwargs and p.name not in names:
                hint = close_match(p.name, names)
                problems.append(f"parameter {p.name!r} is declared but the factory {comp.factory.__name__}"
                                f"{sig} does not accept it" + (f" (did you mean {hint!r}?)" if hint else ""))
    slot_names: set[str] = set()
    for s in comp.slots:
        if not isinstance(s, Slot):
            problems.append(f"slots must be harness.Slot objects, found {s!r}")
            continue
        if s.family not in FAMILIES:
            problems.append(f"slot {s.name!r}: unknown family {s.family!r}; families are {', '.join(FAMILIES)}")
        if s.name in slot_names or s.name in seen:
            problems.append(f"slot {s.name!r} clashes with another slot or a parameter of the same name")
        slot_names.add(s.name)
    if problems:
        raise CheckFailed(f"{comp.family} {comp.name!r}: " + "; ".join(problems))
    notes = f"{len(comp.params)} parameter(s)"
    if comp.family == "run_kind":
        notes += f", {len(comp.slots)} slot(s)"
    notes += ", defaults fit their declared types"
    if not comp.doc:
        notes += " (no doc: `bench list` will show an empty description; pass doc=...)"
    return notes


def _build(comp: Component, params: dict[str, Any]) -> Any:
    missing = [p.name for p in comp.params if p.required and p.name not in params]
    if missing:
        raise CheckSkipped(f"required parameter(s) {', '.join(missing)} have no value; give the factory a "
                           f"conformance_params attribute (e.g. {{{', '.join(repr(m) + ': ...' for m in missing)}}}) "
                           f"so the kit can build it")
    return comp.build(params)


# -- models --------------------------------------------------------------------
class _ModelKit:
    """The state shared by the model checks (the built model, inputs, states)."""

    B = 3

    def __init__(self, comp: Component, params: dict[str, Any], registry: Registry | None,
                 input_shape: tuple[int, ...] | None, seed: int):
        self.comp, self.params, self.registry, self.seed = comp, params, registry, seed
        self.input_shape = input_shape
        self.model: ConvergentRNN | None = None
        self.gen = torch.Generator().manual_seed(1234 + seed)

    # helpers
    def build(self) -> ConvergentRNN:
        with _seeded(self.seed):
            return _build(self.comp, self.params)

    def data(self, model: ConvergentRNN, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(99 + self.seed)
        x = torch.rand(self.B, *self.input_shape, generator=g).to(dtype)
        labels = torch.randint(0, model.num_classes, (self.B,), generator=g)
        return x, model.target(labels).to(dtype)

    def random_state(self, model: ConvergentRNN, x: Tensor, offset: int = 0) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(7 + offset + self.seed)
        return tuple((torch.rand(s.shape, generator=g) * 1.2 - 0.1).to(x.dtype) for s in model.init_state(x))

    def model64(self) -> ConvergentRNN:
        return copy.deepcopy(self.model).to(D64)

    def algorithm(self, name: str, params: dict[str, Any]):
        return _registered(self.registry, "algorithm", name, params)

    # checks
    def builds(self):
        model = self.build()
        if not isinstance(model, ConvergentRNN):
            raise CheckFailed(f"the factory returned {type(model).__name__}, expected a subclass of "
                              f"harness.model.ConvergentRNN (EP, BPTT and the GDU analysis use its "
                              f"step/phi/param_groups contract)")
        self.model = model
        names = model.layer_names
        if not isinstance(names, tuple) or not names or not all(isinstance(n, str) for n in names):
            raise CheckFailed(f"layer_names must be a non-empty tuple of strings (index 0 = output layer), "
                              f"found {names!r}")
        if len(set(names)) != len(names):
            raise CheckFailed(f"layer_names must be distinct, found {names!r}")
        if not isinstance(model.num_classes, int) or model.num_classes < 1:
            raise CheckFailed(f"num_classes must be a positive int, found {model.num_classes!r}")
        if self.input_shape is None:
            shape = getattr(model, "input_shape", None)
            if shape is None and isinstance(getattr(model, "input_size", None), int):
                shape = (model.input_size,)
            if shape is None:
                raise CheckFailed("cannot tell the shape of one input: give the model an `input_shape` "
                                  "(tuple) or `input_size` (int) attribute, or pass input_shape=... to the kit")
            self.input_shape = tuple(int(v) for v in shape)
        nparams = sum(p.numel() for p in model.parameters())
        return (f"{type(model).__name__}: layers {', '.join(names)}, {nparams} parameters, "
                f"input shape {self.input_shape}, {model.num_classes} classes")

    def state(self):
        m = self.model
        x, _ = self.data(m, m.dtype)
        s = m.init_state(x)
        if not isinstance(s, tuple):
            raise CheckFailed(f"init_state must return a tuple of tensors (one per layer), found "
                              f"{type(s).__name__}")
        if len(s) != len(m.layer_names):
            raise CheckFailed(f"init_state returned {len(s)} tensors but layer_names has {len(m.layer_names)} "
                              f"entries {m.layer_names}; they must match one to one (index 0 = output)")
        for name, t in zip(m.layer_names, s):
            if not isinstance(t, Tensor):
                raise CheckFailed(f"init_state: layer {name!r} is {type(t).__name__}, expected a tensor")
            if t.dim() < 2 or t.shape[0] != self.B:
                raise CheckFailed(f"init_state: layer {name!r} has shape {_shape(t)}; expected the batch "
                                  f"({self.B}) as leading dimension, then the layer's shape")
            if t.dtype != x.dtype or t.device != x.device:
                raise CheckFailed(f"init_state: layer {name!r} is {t.dtype} on {t.device}, expected the "
                                  f"input's {x.dtype} on {x.device} (build states with dtype=x.dtype, "
                                  f"device=x.device)")
            if bool(t.any()):
                raise CheckFailed(f"init_state: layer {name!r} is not zero; s_0 must be zeros (the paper's "
                                  f"initial state, which EP and BPTT both start from)")
        out0 = s[0].flatten(1).shape[1]
        if out0 != m.num_classes:
            raise CheckFailed(f"the output layer {m.layer_names[0]!r} has {out0} units but num_classes is "
                              f"{m.num_classes}; ℓ = ½‖s⁰ − y‖² needs one output unit per class")
        return ", ".join(f"{n} {_shape(t)}" for n, t in zip(m.layer_names, s)) + ", zeros"

    def step_shapes(self):
        m = self.model
        x, y = self.data(m, m.dtype)
        s = self.random_state(m, x)
        with torch.no_grad():
            for label, new in (("step(x, s)", m.step(x, s)), ("step(x, s, y, β=0.5)", m.step(x, s, y, 0.5))):
                if not isinstance(new, tuple) or len(new) != len(s):
                    raise CheckFailed(f"{label} returned {type(new).__name__} of length "
                                      f"{len(new) if isinstance(new, (tuple, list)) else '?'}; expected a tuple "
                                      f"of {len(s)} tensors like init_state ({', '.join(m.layer_names)})")
                for name, a, b in zip(m.layer_names, s, new):
                    if not isinstance(b, Tensor) or b.shape != a.shape or b.dtype != a.dtype:
                        found = f"{_shape(b)} {b.dtype}" if isinstance(b, Tensor) else type(b).__name__
                        raise CheckFailed(f"{label} changed layer {name!r}: found {found}, expected "
                                          f"{_shape(a)} {a.dtype} as the state it was given; a step must "
                                          f"keep every layer's shape and dtype")
                    if not bool(torch.isfinite(b).all()):
                        raise CheckFailed(f"{label} gave non-finite values in layer {name!r} from a state in "
                                          f"[-0.1, 1.1]")
        return "step keeps every layer's shape and dtype, free and nudged"

    def nudge(self):
        m = self.model64()
        x, y = self.data(m, D64)
        s = self.random_state(m, x)
        beta = 0.1
        with torch.no_grad():
            free, nudged = m.step(x, s), m.step(x, s, y, beta)
            same = m.step(x, s, y, 0.0)
        for name, a, b in zip(m.layer_names, free, same):
            if _maxdiff(a, b) > TOL_EXACT * _scale(a):
                raise CheckFailed(f"step(x, s, y, β=0) differs from step(x, s) on layer {name!r} "
                                  f"(max |difference| {_maxdiff(a, b):.3g}); β = 0 must be the free dynamics")
        with torch.enable_grad():
            sg = tuple(t.clone().requires_grad_() for t in s)
            dl = torch.autograd.grad(m.loss(sg, y).sum(), sg, allow_unused=True)
        scale = float(m.nudge_scale)
        for name, f, n, g in zip(m.layer_names, free, nudged, dl):
            g = torch.zeros_like(f) if g is None else g
            expected = -beta * scale * g
            found = n - f
            if _maxdiff(found, expected) > TOL_EXACT * max(_scale(expected), 1e-3):
                denom = float((g * g).sum())
                implied = float(-(found * g).sum() / (beta * denom)) if denom > 0 else float("nan")
                raise CheckFailed(
                    f"the nudge on layer {name!r} is not −β·nudge_scale·∂ℓ/∂s: step(x, s, y, β) − step(x, s) "
                    f"differs from it by up to {_maxdiff(found, expected):.3g} (β = {beta}, nudge_scale = "
                    f"{scale}" + (f"; the nudge found corresponds to a scale of {implied:.4g}" if denom > 0
                                  and math.isfinite(implied) else "") +
                    "). EP divides its updates by β·nudge_scale, so set nudge_scale to the factor the step "
                    "applies (e.g. ε for the EB nets), and nudge only the output layer")
        return f"step(x, s, y, β) − step(x, s) = −β·{scale:g}·∂ℓ/∂s on every layer"

    def determinism(self):
        a, b = self.build(), self.build()
        sa, sb = a.state_dict(), b.state_dict()
        if list(sa) != list(sb):
            raise CheckFailed(f"building twice gave different parameter names: {list(sa)} vs {list(sb)}")
        for k in sa:
            if sa[k].shape != sb[k].shape or not torch.equal(sa[k], sb[k]):
                raise CheckFailed(
                    f"building twice with the same seed (seed_everything({self.seed})) gave different values "
                    f"for {k!r} (max |difference| {_maxdiff(sa[k].float(), sb[k].float()):.3g}); initialise "
                    f"only from torch's global generator (torch.manual_seed), never from time, os.urandom or "
                    f"an unseeded generator, so runs are reproducible and EP/BPTT runs share their init")
        x, y = self.data(a, a.dtype)
        s = self.random_state(a, x)
        with torch.no_grad():
            outs = [a.step(x, s, y, 0.5), b.step(x, s, y, 0.5), a.step(x, s, y, 0.5)]
        for name, u, v, w in zip(a.layer_names, *outs):
            if not (torch.equal(u, v) and torch.equal(u, w)):
                raise CheckFailed(f"step is not deterministic: two equal models (or one model twice) give "
                                  f"different next states on layer {name!r}; a step must depend only on "
                                  f"(x, s, y, β) and the parameters")
        return f"same seed, same {len(sa)} tensors and same steps"

    def param_groups(self):
        m = self.model
        groups = m.param_groups()
        if not isinstance(groups, dict) or not groups:
            raise CheckFailed(f"param_groups() must return a non-empty dict name -> list of parameters, "
                              f"found {groups!r}")
        names = {id(p): n for n, p in m.named_parameters()}
        where: dict[int, list[str]] = {}
        for g, ps in groups.items():
            if not isinstance(ps, (list, tuple)) or not ps:
                raise CheckFailed(f"parameter group {g!r} is {ps!r}; every group is a non-empty list of "
                                  f"parameters")
            for p in ps:
                if id(p) not in names:
                    raise CheckFailed(f"parameter group {g!r} holds a tensor of shape {_shape(p)} that is not "
                                      f"a parameter of the model (register it as an nn.Parameter attribute)")
                where.setdefault(id(p), []).append(g)
        for n, p in m.named_parameters():
            gs = where.get(id(p), [])
            if p.requires_grad and not gs:
                raise CheckFailed(f"parameter {n!r} (shape {_shape(p)}) is trainable but in no parameter group; "
                                  f"EP and BPTT only update what param_groups() lists: add it to a group, or "
                                  f"make it a buffer")
            if len(gs) > 1:
                raise CheckFailed(f"parameter {n!r} appears {len(gs)} times in param_groups() (groups "
                                  f"{', '.join(gs)}); each parameter belongs to exactly one group, or it is "
                                  f"updated twice")
        return f"{len(groups)} group(s) ({', '.join(groups)}) cover the {len(names)} parameter tensors once each"

    def phi(self):
        m = self.model64()
        x, _ = self.data(m, D64)
        s = self.random_state(m, x)
        with torch.no_grad():
            v = m.phi(x, s)
        if not isinstance(v, Tensor) or v.shape != (self.B,):
            found = _shape(v) if isinstance(v, Tensor) else type(v).__name__
            raise CheckFailed(f"phi(x, s) must give one value per sample, shape ({self.B},); found {found}")
        if not bool(torch.isfinite(v).all()):
            raise CheckFailed("phi(x, s) is not finite on a state in [-0.1, 1.1]")
        with torch.no_grad():
            one = m.phi(x[1:2], tuple(t[1:2] for t in s))
        if _maxdiff(one[0], v[1]) > TOL_EXACT * _scale(v):
            raise CheckFailed(f"phi is not per sample: Φ of sample 1 alone is {float(one[0]):.6g} but "
                              f"{float(v[1]):.6g} within the batch; do not mix samples (sum over features only)")
        return f"shape ({self.B},), per sample, finite"

    def dphi_dtheta(self):
        m = self.model64()
        x, _ = self.data(m, D64)
        s = self.random_state(m, x)
        got = m.dphi_dtheta(x, s)
        ref = ConvergentRNN.dphi_dtheta(m, x, s)
        if set(got) != set(ref):
            raise CheckFailed(f"dphi_dtheta returned groups {sorted(got)}, expected those of param_groups() "
                              f"{sorted(ref)}")
        worst = 0.0
        for g, rs in ref.items():
            gs = got[g]
            if len(gs) != len(rs):
                raise CheckFailed(f"dphi_dtheta group {g!r} has {len(gs)} tensors, param_groups() has {len(rs)}")
            for i, (a, b) in enumerate(zip(gs, rs)):
                if a.shape != b.shape:
                    raise CheckFailed(f"dphi_dtheta {g!r}[{i}] has shape {_shape(a)}, the parameter has "
                                      f"{_shape(b)}")
                err = _maxdiff(a, b)
                worst = max(worst, err / _scale(b))
                if err > TOL_EXACT * _scale(b):
                    raise CheckFailed(f"dphi_dtheta {g!r}[{i}] differs from the autograd gradient of Φ (summed "
                                      f"over the batch) by up to {err:.3g}; EP's weight updates use it, so fix "
                                      f"the explicit formula or delete it to use the generic autograd default")
        return f"equals autograd of Φ summed over the batch (relative error {worst:.1e})"

    def f_is_grad_phi(self):
        m = self.model64()
        if type(m).step is ConvergentRNN.step:
            return "step derived from Φ (the generic step: ∂Φ/∂s by autograd, the nudge" + \
                (f", the clip to {list(m.clip_range)})" if m.clip_range is not None else ")")
        if not m.derives_from_phi and m.clip_range is not None:
            return self._clipped_step_is_derived(m)
        if not m.derives_from_phi:
            raise CheckSkipped("derives_from_phi is False: F is not ∂Φ/∂s, so the GDU theorem holds only "
                               "approximately (measure it with a gdu run)")
        x, _ = self.data(m, D64)
        worst = 0.0
        for offset in range(3):
            s = self.random_state(m, x, offset)
            with torch.enable_grad():
                sg = tuple(t.clone().requires_grad_() for t in s)
                grads = torch.autograd.grad(m.phi(x, sg).sum(), sg, allow_unused=True)
            with torch.no_grad():
                f = m.step(x, s)
            for name, a, g in zip(m.layer_names, f, grads):
                g = torch.zeros_like(a) if g is None else g
                err = _maxdiff(a, g)
                worst = max(worst, err / _scale(g))
                if err > TOL_EXACT * _scale(g):
                    raise CheckFailed(
                        f"F(x, s) = step(x, s) differs from ∂Φ/∂s (autograd of phi) on layer {name!r} by up to "
                        f"{err:.3g} (|∂Φ/∂s| up to {_scale(g) if g.numel() else 0:.3g}), on random float64 states; "
                        f"the model claims derives_from_phi = True. Fix Φ or the step so that F = ∂Φ/∂s, or set "
                        f"derives_from_phi = False (the GDU theorem then holds only approximately)")
        return f"step(x, s) = ∂Φ/∂s on 3 random float64 states (relative error {worst:.1e})"

    def _clipped_step_is_derived(self, m: ConvergentRNN):
        """A hand-written step of a clipped model equals the derived one, clip(∂Φ/∂s + nudge)."""
        x, y = self.data(m, D64)
        worst = 0.0
        for offset, beta in ((0, 0.0), (1, 0.3), (2, 0.0)):
            s = self.random_state(m, x, offset)
            with torch.no_grad():
                got, want = m.step(x, s, y, beta), m.derived_step(x, s, y, beta)
            for name, a, b in zip(m.layer_names, got, want):
                err = _maxdiff(a, b)
                worst = max(worst, err / _scale(b))
                if err > TOL_EXACT * _scale(b):
                    raise CheckFailed(
                        f"step(x, s, y, β = {beta}) differs from the derived step clip(∂Φ/∂s − β·nudge_scale·∂ℓ/∂s) "
                        f"to clip_range {list(m.clip_range)} on layer {name!r} by up to {err:.3g}; fix Φ or the "
                        f"step, or set clip_range = None if the model's dynamics are not derived from Φ")
        return (f"step = clip(∂Φ/∂s + nudge) to {list(m.clip_range)} on 3 random float64 states (relative error "
                f"{worst:.1e}); clipped, so the GDU theorem is not exact")

    def fast_paths(self):
        """prepare / steps / relax(output_at) / dphi_delta equal the generic step loop and autograd."""
        base = ConvergentRNN
        own = [n for n in ("prepare", "steps", "dphi_delta") if hasattr(base, n)
               and getattr(type(self.model), n, None) is not getattr(base, n)]
        if not own:
            raise CheckSkipped("the model keeps the generic prepare / steps / dphi_delta (nothing to compare)")
        ref = self.model64()
        if hasattr(ref, "fast"):
            ref.fast = False
        x, y = self.data(ref, D64)
        s = self.random_state(ref, x)
        n, beta = 6, 0.3
        with torch.no_grad():
            expected = s
            for _ in range(n):
                expected = ref.step(x, expected, y, beta)
        variants = [("as built", self.model64())]
        if hasattr(self.model, "fast"):
            for flag in (True, False):
                m = self.model64()
                m.fast = flag
                variants.append((f"fast={flag}", m))
        for label, m in variants:
            with torch.no_grad():
                xp = m.prepare(x) if hasattr(m, "prepare") else x
                got = m.steps(xp, s, n, y, beta) if hasattr(m, "steps") else m.relax(xp, s, n, y, beta)
                out0 = m.relax(xp, s, n, y, beta, output_at=n)[0]
            for name, a, b in zip(m.layer_names, got, expected):
                if _maxdiff(a, b) > TOL_EXACT * _scale(b):
                    raise CheckFailed(f"{label}: {n} steps through prepare/steps differ from {n} calls of "
                                      f"step(x, s, y, β) on layer {name!r} by {_maxdiff(a, b):.3g}; a fast path "
                                      f"must give the generic result")
            if _maxdiff(out0, expected[0]) > TOL_EXACT * _scale(expected[0]):
                raise CheckFailed(f"{label}: relax(..., output_at={n}) gives an output layer that differs from "
                                  f"the generic steps by {_maxdiff(out0, expected[0]):.3g}; skipping layers may "
                                  f"only skip what cannot reach s⁰ within output_at steps")
            if hasattr(m, "dphi_delta"):
                after = got
                delta = m.dphi_delta(xp, after, s)
                a, b = base.dphi_dtheta(ref, x, after), base.dphi_dtheta(ref, x, s)
                for g in a:
                    for i, (u, v) in enumerate(zip(a[g], b[g])):
                        want = u - v
                        if g not in delta or _maxdiff(delta[g][i], want) > TOL_EXACT * _scale(want):
                            raise CheckFailed(f"{label}: dphi_delta group {g!r}[{i}] differs from the autograd "
                                              f"∂Φ/∂θ(after) − ∂Φ/∂θ(before); EP's update uses it")
        return (f"overrides {', '.join(own)}; equal to the generic path (float64) for "
                f"{', '.join(label for label, _ in variants)}")

    def settle(self, m: ConvergentRNN, x: Tensor, max_steps: int = MAX_RELAX_STEPS, chunk: int = 100):
        s = m.init_state(x)
        done, residual = 0, float("inf")
        while done < max_steps:
            s = m.relax(x, s, chunk)
            done += chunk
            with torch.no_grad():
                nxt = m.step(x, s)
            residual = max(_maxdiff(a, b) / _scale(a) for a, b in zip(s, nxt))
            if not math.isfinite(residual):
                break
            if residual < TOL_SETTLED:
                return done, residual
        raise CheckFailed(f"the free dynamics did not settle: after {done} steps in float64, max |F(s) − s| = "
                          f"{residual:.3g} (needs < {TOL_SETTLED:g}). The GDU theorem assumes a steady state "
                          f"before the last K steps; make the dynamics contract (smaller initial weights or "
                          f"lateral couplings, a smaller step) or check with parameters for which they do")

    def theorem(self):
        m = self.model64()
        if not m.derives_from_phi:
            raise CheckSkipped("derives_from_phi is False: the GDU theorem is not exact for this model")
        from .algorithm import Processes

        x, y = self.data(m, D64)
        steady, residual = self.settle(m, x)
        K = THEOREM_K
        T = steady + K
        bptt = self.algorithm("bptt", {}).processes(m, x, y, T=T, K=K)
        relmse = _registered(self.registry, "metric", "relmse", {})

        def compare(beta: float) -> dict[str, float]:
            ep: Processes = self.algorithm("ep", {"beta": beta}).processes(m, x, y, T=T, K=K)
            out = {}
            for what in ("neurons", "weights"):
                a, b = getattr(ep, what), getattr(bptt, what)
                if set(a) != set(b):
                    raise CheckFailed(f"EP and BPTT processes name different {what}: {sorted(a)} vs {sorted(b)}")
                for k in a:
                    if a[k].shape != b[k].shape:
                        raise CheckFailed(f"{what} {k}: EP process {_shape(a[k])} vs BPTT {_shape(b[k])}")
                    out[f"{what}:{k}"] = relmse(a[k], b[k])
            return out

        small = compare(THEOREM_BETA)
        larger = compare(10 * THEOREM_BETA)
        worst_key = max(small, key=small.get)
        ratios = [larger[k] / small[k] for k in small if small[k] > 0]
        ratio = sorted(ratios)[len(ratios) // 2] if ratios else float("nan")
        data = {"T": T, "K": K, "beta": THEOREM_BETA, "steady_steps": steady, "residual": residual,
                "relmse": small, "relmse_10beta": larger, "max_relmse": small[worst_key],
                "median_ratio_10beta": ratio}
        if small[worst_key] >= THEOREM_RELMSE:
            raise CheckFailed(
                f"ΔEP and −∇BPTT differ: RelMSE {small[worst_key]:.3g} on {worst_key} (threshold "
                f"{THEOREM_RELMSE:g}) in float64 with β = {THEOREM_BETA:g}, T = {T} (steady after {steady} steps), "
                f"K = {K}. With F = ∂Φ/∂s the theorem makes them equal up to O(β): check that the nudge is "
                f"−β·nudge_scale·∂ℓ/∂s and that dphi_dtheta is ∂Φ/∂θ")
        n = max(v for k, v in small.items() if k.startswith("neurons"))
        w = max(v for k, v in small.items() if k.startswith("weights"))
        return (f"ΔEP = −∇BPTT in float64: max RelMSE {n:.2e} (neurons), {w:.2e} (weights) at β = "
                f"{THEOREM_BETA:g}, T = {T}, K = {K}; 10× β gives {ratio:.1f}× the error (O(β))"), data

    def train_step(self, name: str):
        m = copy.deepcopy(self.model)
        x, y = self.data(m, m.dtype)
        groups = m.param_groups()
        params = {"lr": [0.05] * len(groups)}
        alg = self.algorithm(name, params)
        before = {n: p.detach().clone() for n, p in m.named_parameters()}
        out = alg.train_step(m, x, y, T=20, K=5)
        if not isinstance(out, dict) or not all(isinstance(v, Tensor) for v in out.values()):
            raise CheckFailed(f"{name}.train_step returned {out!r}; expected a dict of tensors for logging")
        changed = []
        for n, p in m.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise CheckFailed(f"after one {name} step (lr 0.05, T = 20, K = 5) parameter {n!r} is not "
                                  f"finite; the dynamics or Φ blow up on a small input")
            if not torch.equal(p.detach(), before[n]):
                changed.append(n)
        if not changed:
            raise CheckFailed(f"one {name} train_step (lr 0.05 per group, T = 20, K = 5) changed no parameter; "
                              f"check that param_groups() returns the model's own nn.Parameters and that "
                              f"{'Φ depends on them' if name == 'ep' else 'the loss depends on them through step'}")
        unchanged = [n for n, _ in m.named_parameters() if n not in changed]
        note = f"; unchanged: {', '.join(unchanged)}" if unchanged else ""
        loss = f", loss {float(out['loss']):.4g}" if "loss" in out and out["loss"].numel() == 1 else ""
        return f"changed {len(changed)} of {len(before)} parameter tensors, all finite{loss}{note}"


def _registered(registry: Registry | None, family: str, name: str, params: dict[str, Any]) -> Any:
    """A component the kit itself needs (EP and BPTT for the GDU theorem, RelMSE), built from the
    registry in use like any other: the kit imports no plugin by name."""
    if registry is None:
        from .plugins import get_manager

        registry = get_manager().registry
    try:
        comp = registry.get(family, name)
    except LookupError:
        raise CheckSkipped(f"needs the {family} {name!r}, which no loaded plugin registers (the built-in "
                           f"plugins provide it; is it excluded by $BENCH_PLUGINS?)") from None
    return comp.build(params)


def model_checks(model: Any, params: dict[str, Any] | None = None, *, registry: Registry | None = None,
                 input_shape: Iterable[int] | None = None, seed: int = 0,
                 theorem: bool = True) -> list[CheckResult]:
    """Every check of a model (a name, a Component or a factory), built with :func:`example_params`."""
    comp = as_component("model", model, registry)
    params = example_params(comp, params)
    kit = _ModelKit(comp, params, registry, tuple(input_shape) if input_shape is not None else None, seed)
    c = _Checks(f"model:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", kit.builds)
    c.run("state", kit.state, needs=["builds"])
    c.run("step shapes", kit.step_shapes, needs=["state"])
    c.run("determinism", kit.determinism, needs=["step shapes"])
    c.run("param groups", kit.param_groups, needs=["builds"])
    c.run("phi", kit.phi, needs=["step shapes"])
    c.run("nudge", kit.nudge, needs=["step shapes"])
    c.run("dphi_dtheta", kit.dphi_dtheta, needs=["phi", "param groups"])
    c.run("F = ∂Φ/∂s", kit.f_is_grad_phi, needs=["phi"])
    c.run("fast paths", kit.fast_paths, needs=["step shapes", "dphi_dtheta"])
    if theorem:
        c.run("GDU theorem", kit.theorem, needs=["F = ∂Φ/∂s", "nudge", "dphi_dtheta"])
    c.run("EP train step", lambda: kit.train_step("ep"), needs=["param groups", "step shapes"])
    c.run("BPTT train step", lambda: kit.train_step("bptt"), needs=["param groups", "step shapes"])
    return c.results


# -- algorithms ------------------------------------------------------------------
class _KitNet(ConvergentRNN):
    """The kit's own tiny model for the algorithm checks, written as Φ alone (the generic step):
    Φ = ½(1−ε)Σ‖s‖² + ε(σ(s⁰)·W01·σ(s¹) + σ(s¹)·W12·σ(s²) + σ(s²)·W2x·x + b·σ(s)), σ = tanh."""

    layer_names = ("s0", "s1", "s2")
    input_size = 6
    num_classes = 3

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


def algorithm_checks(algorithm: Any, params: dict[str, Any] | None = None, *,
                     registry: Registry | None = None) -> list[CheckResult]:
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
                                  f"(see harness.algorithm.Algorithm)")
        return f"{type(state['alg']).__name__} with {params}"

    def processes():
        from .algorithm import Processes

        p = state["alg"].processes(model, x, y, T=T, K=K)
        if not isinstance(p, Processes):
            raise CheckFailed(f"processes() returned {type(p).__name__}, expected harness.algorithm.Processes")
        s = model.init_state(x)
        if set(p.neurons) != set(model.layer_names):
            raise CheckFailed(f"processes().neurons has keys {sorted(p.neurons)}, expected the layer names "
                              f"{list(model.layer_names)}")
        for name, t in zip(model.layer_names, s):
            if p.neurons[name].shape != (K, *t.shape[1:]):
                raise CheckFailed(f"neurons[{name!r}] has shape {_shape(p.neurons[name])}, expected (K, *layer) "
                                  f"= {(K, *t.shape[1:])} (batch-averaged, one row per step)")
        expected = {f"{gname}.{i}": q for gname, ps in groups.items() for i, q in enumerate(ps)}
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

    c = _Checks(f"algorithm:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", builds)
    c.run("processes", processes, needs=["builds"])
    c.run("train step", train_step, needs=["builds"])
    return c.results


# -- metrics -------------------------------------------------------------------
def metric_checks(metric: Any, params: dict[str, Any] | None = None, *,
                  registry: Registry | None = None) -> list[CheckResult]:
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

    c = _Checks(f"metric:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", builds)
    c.run("direction", direction, needs=["builds"])
    c.run("values", values, needs=["direction"])
    return c.results


# -- datasets ------------------------------------------------------------------
def dataset_checks(dataset: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None) -> list[CheckResult]:
    from .dataset import Split, Splits

    comp = as_component("dataset", dataset, registry)
    params = example_params(comp, params)
    state: dict[str, Any] = {}

    def builds():
        state["d"] = _build(comp, params)
        if not callable(getattr(state["d"], "load", None)):
            raise CheckFailed("a dataset has load(device, dtype) -> harness.dataset.Splits")
        return f"{type(state['d']).__name__} with {params}"

    def load():
        reason = _skip_reason(comp, state["d"])
        if reason:
            raise CheckSkipped(reason)
        out = []
        for dtype in (torch.float32, D64):
            splits = state["d"].load(torch.device("cpu"), dtype)
            if not isinstance(splits, Splits):
                raise CheckFailed(f"load() returned {type(splits).__name__}, expected harness.dataset.Splits")
            k = splits.num_classes
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise CheckFailed(f"num_classes is {k!r}; expected a positive int")
            for name in ("train", "test"):
                sp = getattr(splits, name)
                if not isinstance(sp, Split):
                    raise CheckFailed(f"{name} is {type(sp).__name__}, expected harness.dataset.Split")
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

    c = _Checks(f"dataset:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", builds)
    c.run("load", load, needs=["builds"])
    return c.results


# -- run kinds and executors --------------------------------------------------------
def run_kind_checks(kind: Any, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None) -> list[CheckResult]:
    comp = as_component("run_kind", kind, registry)
    params = example_params(comp, params)

    def slots():
        if not comp.slots:
            raise CheckFailed("a run kind declares the components it consumes as slots=[Slot(...)]")
        notes = []
        for s in comp.slots:
            if s.required or registry is None:
                continue
            for name in (s.default if isinstance(s.default, list) else [s.default]):
                try:
                    registry.get(s.family, name)
                except LookupError:
                    notes.append(f"default {s.family} {name!r} of slot {s.name!r} is not installed now")
        text = ", ".join(f"{s.name} ({'list of ' if s.many else ''}{s.family})" for s in comp.slots)
        return text + (f"; note: {'; '.join(notes)}" if notes else "")

    def builds():
        execute = _build(comp, params)
        if not callable(execute):
            raise CheckFailed(f"the factory returned {type(execute).__name__}; a run kind's factory returns "
                              f"a callable execute(ctx)")
        return f"{type(execute).__name__} with {params}, callable"

    c = _Checks(f"run_kind:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("slots", slots)
    c.run("builds", builds, needs=["declaration"])
    return c.results


def executor_checks(executor: Any, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None) -> list[CheckResult]:
    comp = as_component("executor", executor, registry)
    params = example_params(comp, params)

    def builds():
        ex = _build(comp, params)
        if not callable(getattr(ex, "execute", None)):
            raise CheckFailed("an executor has execute(job, runs) -> list[RunResult] "
                              "(see harness.executor.Executor)")
        return f"{type(ex).__name__}, has execute(job, runs)"

    c = _Checks(f"executor:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", builds, needs=["declaration"])
    return c.results


def tracker_checks(tracker: Any, params: dict[str, Any] | None = None, *,
                   registry: Registry | None = None) -> list[CheckResult]:
    comp = as_component("tracker", tracker, registry)
    params = example_params(comp, params)

    def builds():
        t = _build(comp, params)
        methods = [m for m in ("start", "log_epoch", "finish") if callable(getattr(t, m, None))]
        if not methods:
            raise CheckFailed("a tracker has start, log_epoch and/or finish (see harness.tracker.Tracker)")
        return f"{type(t).__name__}, has {', '.join(methods)}"

    c = _Checks(f"tracker:{comp.name}")
    c.run("declaration", lambda: _check_declaration(comp, registry))
    c.run("builds", builds, needs=["declaration"])
    return c.results


FAMILY_CHECKS: dict[str, Callable[..., list[CheckResult]]] = {
    "model": model_checks, "algorithm": algorithm_checks, "metric": metric_checks,
    "dataset": dataset_checks, "run_kind": run_kind_checks, "executor": executor_checks,
    "tracker": tracker_checks,
}


def component_checks(comp: Component, registry: Registry | None = None,
                     params: dict[str, Any] | None = None) -> list[CheckResult]:
    return FAMILY_CHECKS[comp.family](comp, params, registry=registry)


def check_plugin(manager, plugin: str, overrides: dict[str, dict[str, Any]] | None = None) -> Report:
    """Run every component of ``plugin`` (an entry-point name) through its family's checks.

    ``overrides`` maps ``"family:name"`` to parameters that take precedence
    over the component's example parameters.
    """
    info = manager.plugins.get(plugin)
    if info is None:
        known = sorted(manager.plugins)
        hint = close_match(plugin, known)
        raise LookupError(f"no plugin {plugin!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                          + f"; installed plugins: {', '.join(known) or 'none'} (see `bench plugins`)")
    report = Report(plugin, info.distribution, info.version, info.status, info.error)
    if info.status == "failed":
        report.results.append(CheckResult(f"plugin:{plugin}", "loads", FAIL, f"the plugin failed to load: "
                                          f"{info.error}"))
        return report
    if info.status == "disabled":
        report.results.append(CheckResult(f"plugin:{plugin}", "loads", FAIL,
                                          "the plugin is disabled (BENCH_PLUGINS / BENCH_DISABLE_PLUGINS); "
                                          "enable it to check it"))
        return report
    comps = manager.registry.by_plugin(plugin)
    report.results.append(CheckResult(f"plugin:{plugin}", "loads", PASS,
                                      f"{info.distribution or '?'} {info.version}: "
                                      f"{len(comps)} component(s)"))
    if not comps:
        report.results.append(CheckResult(f"plugin:{plugin}", "components", FAIL,
                                          "the plugin registers no component: implement a register_* hook "
                                          "decorated with @harness.hookimpl"))
    for comp in comps:
        key = f"{comp.family}:{comp.name}"
        params = (overrides or {}).get(key)
        report.params[key] = example_params(comp, params)
        report.results.extend(component_checks(comp, manager.registry, params))
    return report


def format_report(report: Report) -> str:
    """Text for the terminal: each component, then each check with ✓ / ✗ / – and its message."""
    lines = [f"plugin {report.plugin} ({report.distribution or '?'} {report.version}) [{report.status}]"]
    current = None
    for r in report.results:
        if r.component != current:
            current = r.component
            params = report.params.get(r.component)
            lines.append(f"{r.component}" + (f"  (checked with {params})" if params else ""))
        lines.append(f"  {r.line()}")
    lines.append(report.summary())
    return "\n".join(lines)


def assert_passed(results: list[CheckResult]) -> list[CheckResult]:
    """Raise AssertionError listing every failed check; return the results otherwise."""
    failed = [r for r in results if r.status == FAIL]
    if failed:
        raise AssertionError("conformance checks failed:\n" + "\n".join(
            f"  {r.component}: {r.line()}" for r in failed))
    return results
