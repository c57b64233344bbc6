"""The kit's vocabulary: check outcomes, reports, tolerances, and how checks run (a failed
prerequisite skips what depends on it)."""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor

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


#: what :func:`assert_passed` takes and gives back: a ``check_*`` function's results, or a plugin's report
_Outcome = TypeVar("_Outcome", list[CheckResult], Report)


# -- running checks ------------------------------------------------------------
class _Checks:
    """The checks of one component, in order; a check whose prerequisite failed is skipped.

    Eager (the ``check_*`` functions, ``bench check-plugin``): each check runs when it is declared, and
    :attr:`results` holds every outcome. Lazy (the pytest kit, :mod:`harness.conformance.kit`):
    declaring only records the plan, and :meth:`result` runs one check on demand, its prerequisites
    first, each once."""

    def __init__(self, component: str, eager: bool = True):
        self.component = component
        self.eager = eager
        self.results: list[CheckResult] = []
        self.plan: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {}
        self._status: dict[str, str] = {}
        self._message: dict[str, str] = {}

    def run(self, name: str, fn: Callable[[], Any], *, needs: Iterable[str] = ()) -> bool:
        self.plan[name] = (fn, tuple(needs))
        return self._execute(name) if self.eager else False

    def result(self, name: str) -> CheckResult:
        """The outcome of check ``name``, running it (and what it needs) if it has not run."""
        if name not in self._status:
            fn, needs = self.plan[name]
            for dep in needs:
                self.result(dep)
            self._execute(name)
        return next(r for r in self.results if r.check == name)

    def _execute(self, name: str) -> bool:
        fn, needs = self.plan[name]
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
    from harness.run.environment import seed_everything

    torch_state, py_state = torch.get_rng_state(), random.getstate()
    np: Any  # numpy, or None where it is not installed
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


def assert_passed(outcome: _Outcome) -> _Outcome:
    """Raise ``AssertionError`` listing every failed check, with its component and message, if any
    check of ``outcome`` (the results of a ``check_*`` function, or a :class:`Report`) failed;
    return ``outcome`` unchanged otherwise. Skipped checks do not fail."""
    results = outcome.results if isinstance(outcome, Report) else outcome
    failed = [r for r in results if r.status == FAIL]
    if failed:
        where = f" (plugin {outcome.plugin})" if isinstance(outcome, Report) else ""
        raise AssertionError(f"conformance checks failed{where}:\n" + "\n".join(
            f"  {r.component}: {r.line()}" for r in failed))
    return outcome
