"""The test module of the pytest kit (see :mod:`harness.conformance.pytest_plugin`):
``pytest --pyargs harness.conformance.kit --bench-plugin NAME``."""

from __future__ import annotations

from .pytest_plugin import run_check


def test_conformance(bench_check):
    run_check(bench_check)
