"""A whole plugin through the kit (every component it registers, with its family's checks), and
one component of any family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.api.components import Component, Registry, close_match
from harness.plugins import PluginManager, get_manager

from .base import FAIL, PASS, CheckResult, Report, _Checks
from .build import example_params
from .families import (
    _algorithm_checks,
    _dataset_checks,
    _executor_checks,
    _metric_checks,
    _run_kind_checks,
    _tracker_checks,
)
from .models import _model_checks

#: family -> its checks, run now or (``lazy=True``) only planned
FAMILY_CHECKS: dict[str, Callable[..., _Checks]] = {
    "model": _model_checks, "algorithm": _algorithm_checks, "metric": _metric_checks,
    "dataset": _dataset_checks, "run_kind": _run_kind_checks, "executor": _executor_checks,
    "tracker": _tracker_checks,
}


def check_component(comp: Component, params: dict[str, Any] | None = None, *,
                    registry: Registry | None = None) -> list[CheckResult]:
    """Every check of one component of any family (its family's ``check_*``)."""
    return FAMILY_CHECKS[comp.family](comp, params, registry=registry).results


def plan_component(comp: Component, registry: Registry | None = None) -> _Checks:
    """The checks of one component, planned and not run: the pytest kit runs them one by one, each
    check after those it needs."""
    return FAMILY_CHECKS[comp.family](comp, None, registry=registry, lazy=True)


def check_plugin_header(manager: PluginManager, plugin: str) -> str | None:
    """Why ``plugin`` cannot be checked at all (unknown, failed to load, disabled, registers
    nothing), or None. Shared by :func:`check_plugin` and the pytest kit."""
    info = manager.plugins.get(plugin)
    if info is None:
        known = sorted(manager.plugins)
        hint = close_match(plugin, known)
        return (f"no plugin {plugin!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                + f"; installed plugins: {', '.join(known) or 'none'} (see `bench plugins`)")
    if info.status == "failed":
        return f"the plugin failed to load: {info.error}"
    if info.status == "disabled":
        return "the plugin is disabled (BENCH_PLUGINS / BENCH_DISABLE_PLUGINS); enable it to check it"
    if not manager.registry.by_plugin(plugin):
        return "the plugin registers no component: implement a register_* hook decorated with @harness.hookimpl"
    return None


def check_plugin(plugin: str, *, manager: PluginManager | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> Report:
    """Run every component of ``plugin`` (an entry-point name, as ``bench plugins`` lists it) through
    its family's checks, as ``bench check-plugin NAME`` does, and return the :class:`Report`.

    ``manager``: the plugin manager to read the plugin from (default: the installed plugins,
    ``harness.plugins.get_manager()``). ``overrides`` maps ``"family:name"`` to parameters that take
    precedence over the component's example parameters. Raises ``LookupError`` for a plugin that is
    not installed; one that failed to load, is disabled or registers nothing gets a failed check.
    """
    manager = manager if manager is not None else get_manager()
    info = manager.plugins.get(plugin)
    problem = check_plugin_header(manager, plugin)
    if info is None:
        raise LookupError(problem)
    report = Report(plugin, info.distribution, info.version, info.status, info.error)
    comps = manager.registry.by_plugin(plugin)
    if problem is not None and info.status in ("failed", "disabled"):
        report.results.append(CheckResult(f"plugin:{plugin}", "loads", FAIL, problem))
        return report
    report.results.append(CheckResult(f"plugin:{plugin}", "loads", PASS,
                                      f"{info.distribution or '?'} {info.version}: "
                                      f"{len(comps)} component(s)"))
    if problem is not None:
        report.results.append(CheckResult(f"plugin:{plugin}", "components", FAIL, problem))
    for comp in comps:
        key = f"{comp.family}:{comp.name}"
        params = (overrides or {}).get(key)
        report.params[key] = example_params(comp, params)
        report.results.extend(check_component(comp, params, registry=manager.registry))
    return report
