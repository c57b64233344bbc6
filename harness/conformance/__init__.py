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

The kit is a package, one concern per module: ``base`` (outcomes, reports, tolerances),
``build`` (examples, declarations, the components the kit needs), ``models``, ``families``
(every other family) and ``plugin`` (a whole plugin); this module is its public face.
"""

from .base import (
    FAIL,
    MARKS,
    PASS,
    SKIP,
    THEOREM_BETA,
    THEOREM_K,
    THEOREM_RELMSE,
    TOL_EXACT,
    TOL_SETTLED,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    Report,
    assert_passed,
    format_report,
)
from .build import as_component, example_params
from .families import algorithm_checks, dataset_checks, executor_checks, metric_checks, run_kind_checks, tracker_checks
from .models import model_checks
from .plugin import FAMILY_CHECKS, check_plugin, component_checks

__all__ = ["FAIL", "MARKS", "PASS", "SKIP", "TOL_EXACT", "TOL_SETTLED", "THEOREM_BETA", "THEOREM_K",
           "THEOREM_RELMSE", "CheckFailed", "CheckResult", "CheckSkipped", "Report", "assert_passed",
           "format_report", "as_component", "example_params", "algorithm_checks", "dataset_checks",
           "executor_checks", "metric_checks", "run_kind_checks", "tracker_checks", "model_checks",
           "FAMILY_CHECKS", "check_plugin", "component_checks"]
