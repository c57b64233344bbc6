"""The conformance kit's pytest plugin: the fixtures a plugin's own tests use, and the kit as tests.

One line in your plugin's top-level ``conftest.py`` loads it::

    pytest_plugins = ["harness.conformance.pytest_plugin"]

Fixtures: ``bench_manager`` (a fresh plugin manager loaded from the installed ``bench`` entry points)
and ``bench_registry`` (its registry).

The kit as tests: ``pytest -p harness.conformance.pytest_plugin --pyargs harness.conformance.kit
--bench-plugin NAME`` collects a test ``<family>:<component>::<check>`` for every check of every
component of the installed plugin NAME, so ``-k``, ``-x``, ``--junitxml`` and the rest of pytest
apply. A check runs when its test does, after the checks it needs (once each); a skipped check is a
pytest skip with its reason, a failed one a failure with the kit's message. ``bench check-plugin NAME
--pytest`` runs the same from the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

# the harness (torch with it) is imported when a fixture or the kit first needs it, not when pytest
# loads this plugin
if TYPE_CHECKING:
    from harness.api.components import Registry
    from harness.plugins import PluginManager


@pytest.fixture
def bench_manager() -> PluginManager:
    """A fresh plugin manager loaded from the installed ``bench`` entry points."""
    from harness.plugins import PluginManager

    manager = PluginManager()
    manager.load_entry_points()
    return manager


@pytest.fixture
def bench_registry(bench_manager: PluginManager) -> Registry:
    """The registry of :func:`bench_manager`: every component of the installed plugins."""
    return bench_manager.registry


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("bench", "eqprop-bench conformance kit")
    group.addoption("--bench-plugin", action="append", default=[], metavar="NAME",
                    help="check every component of this installed bench plugin (repeatable)")


class _PluginLoad:
    """The plugin's own check, ``loads``: failed for one that could not be checked at all (unknown,
    failed to load, disabled, empty), passed otherwise (as `bench check-plugin` counts it)."""

    def __init__(self, message: str | None):
        self.message = message


def _plans(names: list[str]) -> list[tuple[str, Any]]:
    from harness.plugins import get_manager

    from .plugin import check_plugin_header, plan_component

    manager = get_manager()
    out: list[tuple[str, Any]] = []
    for name in names:
        problem = check_plugin_header(manager, name)
        out.append((f"plugin:{name}::loads", _PluginLoad(problem)))
        if problem is not None:
            continue
        for comp in manager.registry.by_plugin(name):
            checks = plan_component(comp, manager.registry)
            out += [(f"{comp.family}:{comp.name}::{check}", (checks, check)) for check in checks.plan]
    return out


def pytest_generate_tests(metafunc: Any) -> None:
    if "bench_check" not in metafunc.fixturenames:
        return
    names = metafunc.config.getoption("bench_plugin")
    if not names:
        raise pytest.UsageError("the conformance kit needs --bench-plugin NAME (an installed bench plugin, "
                                "as `bench plugins` lists it)")
    plans = _plans(names)
    metafunc.parametrize("bench_check", [p for _, p in plans], ids=[i for i, _ in plans])


def run_check(bench_check: Any) -> None:
    """The body of the kit's one test function: report the check's outcome to pytest."""
    from .base import FAIL, SKIP

    if isinstance(bench_check, _PluginLoad):
        if bench_check.message is not None:
            pytest.fail(bench_check.message, pytrace=False)
        return
    checks, name = bench_check
    result = checks.result(name)
    if result.status == SKIP:
        pytest.skip(result.message)
    if result.status == FAIL:
        pytest.fail(result.message, pytrace=False)
