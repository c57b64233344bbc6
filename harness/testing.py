"""The conformance kit for a plugin's own pytest suite.

In your plugin's tests::

    from harness.testing import check_model, check_plugin

    from my_plugin import MyNet

    def test_my_net_conforms():
        results = check_model(MyNet, hidden_size=6)     # raises AssertionError on any failure
        theorem = next(r for r in results if r.check == "GDU theorem")
        assert theorem.status == "pass"                 # if MyNet claims F = ∂Φ/∂s

    def test_plugin_conforms(bench_manager):            # needs the plugin installed (entry point)
        check_plugin("my-plugin", manager=bench_manager)

The fixtures ``bench_manager`` (a plugin manager loaded from the installed
entry points) and ``bench_registry`` become available with one line in your
``conftest.py``: ``pytest_plugins = ["harness.testing"]``.

Each ``check_*`` runs every check of :mod:`harness.conformance` for one
component, raises ``AssertionError`` listing each failed check with its
message, and returns the list of :class:`~harness.conformance.CheckResult`
(passed, failed and skipped, with their numbers in ``.data``). A component is
given by its registered name, as a :class:`~harness.api.components.Component`, or
as a bare factory (then no parameter is declared, and keyword arguments are
the factory's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from harness import conformance as _c
from harness.conformance import CheckResult, Report, assert_passed
from harness.plugins import PluginManager, get_manager

__all__ = ["check_model", "check_algorithm", "check_metric", "check_dataset", "check_run_kind",
           "check_executor", "check_plugin", "bench_manager", "bench_registry", "CheckResult", "Report"]


def _registry(manager: PluginManager | None):
    return (manager or get_manager()).registry


def check_model(model: Any, *, input_shape: Iterable[int] | None = None, seed: int = 0,
                theorem: bool = True, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    """State shapes, determinism, parameter groups, Φ, F = ∂Φ/∂s and the GDU theorem (when the
    model derives from Φ), one EP and one BPTT step. ``params`` override the example parameters."""
    return assert_passed(_c.model_checks(model, params, registry=_registry(manager), input_shape=input_shape,
                                         seed=seed, theorem=theorem))


def check_algorithm(algorithm: Any, *, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    """processes() and train_step() on the kit's own tiny Φ-only net (float64)."""
    return assert_passed(_c.algorithm_checks(algorithm, params, registry=_registry(manager)))


def check_metric(metric: Any, *, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    """direction in ("lower", "higher"), float values, identical processes score best."""
    return assert_passed(_c.metric_checks(metric, params, registry=_registry(manager)))


def check_dataset(dataset: Any, *, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    """load(cpu, dtype) returns consistent Splits (float x, int64 labels below num_classes)."""
    return assert_passed(_c.dataset_checks(dataset, params, registry=_registry(manager)))


def check_run_kind(kind: Any, *, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    """Declared slots and parameters; the factory builds a callable."""
    return assert_passed(_c.run_kind_checks(kind, params, registry=_registry(manager)))


def check_executor(executor: Any, *, manager: PluginManager | None = None, **params: Any) -> list[CheckResult]:
    return assert_passed(_c.executor_checks(executor, params, registry=_registry(manager)))


def check_plugin(name: str, *, manager: PluginManager | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> Report:
    """Every component of an installed plugin, as ``bench check-plugin NAME`` runs them."""
    report = _c.check_plugin(manager or get_manager(), name, overrides)
    if not report.ok:
        raise AssertionError(_c.format_report(report))
    return report


@pytest.fixture
def bench_manager() -> PluginManager:
    """A fresh plugin manager loaded from the installed ``bench`` entry points."""
    manager = PluginManager()
    manager.load_entry_points()
    return manager


@pytest.fixture
def bench_registry(bench_manager):
    return bench_manager.registry
