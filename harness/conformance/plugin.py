"""A whole plugin through the kit: every component it registers, with its family's checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.api.components import Component, Registry, close_match

from .base import FAIL, PASS, CheckResult, Report, _Checks, eager
from .build import example_params
from .families import algorithm_checks, dataset_checks, executor_checks, metric_checks, run_kind_checks, tracker_checks
from .models import model_checks

FAMILY_CHECKS: dict[str, Callable[..., list[CheckResult] | _Checks]] = {
    "model": model_checks, "algorithm": algorithm_checks, "metric": metric_checks,
    "dataset": dataset_checks, "run_kind": run_kind_checks, "executor": executor_checks,
    "tracker": tracker_checks,
}


def component_checks(comp: Component, registry: Registry | None = None,
                     params: dict[str, Any] | None = None, lazy: bool = False) -> list[CheckResult] | _Checks:
    """Every check of one component (``lazy``: their plan, run one by one by the pytest kit)."""
    return FAMILY_CHECKS[comp.family](comp, params, registry=registry, lazy=lazy)


def check_plugin_header(manager, plugin: str) -> str | None:
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


def check_plugin(manager, plugin: str, overrides: dict[str, dict[str, Any]] | None = None) -> Report:
    """Run every component of ``plugin`` (an entry-point name) through its family's checks.

    ``overrides`` maps ``"family:name"`` to parameters that take precedence
    over the component's example parameters.
    """
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
        report.results.extend(eager(component_checks(comp, manager.registry, params)))
    return report
