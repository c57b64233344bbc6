"""The conformance kit: run every component of a plugin through the harness on tiny CPU inputs.

This package is the kit's one public API, for a plugin's own tests and for ``bench check-plugin``::

    from harness.conformance import assert_passed, check_model, check_plugin

    from my_plugin import MyNet

    def test_my_net_conforms():
        results = assert_passed(check_model(MyNet, {"hidden_size": 6}))   # AssertionError on any failure
        theorem = next(r for r in results if r.check == "GDU theorem")
        assert theorem.status == "pass"                                    # if MyNet claims F = ∂Φ/∂s

    def test_plugin_conforms(bench_manager):          # the plugin installed (its entry point)
        assert_passed(check_plugin("my-plugin", manager=bench_manager))

The fixtures ``bench_manager`` and ``bench_registry``, and the kit as one pytest test per check
(``--bench-plugin NAME``), come from :mod:`harness.conformance.pytest_plugin`: one line in your
top-level ``conftest.py``, ``pytest_plugins = ["harness.conformance.pytest_plugin"]``.

How it behaves. The ``check_*`` functions run checks and *return* their outcomes; they never raise
for a check that failed:

* ``check_model``, ``check_algorithm``, ``check_metric``, ``check_dataset``, ``check_run_kind``,
  ``check_executor``, ``check_tracker`` and ``check_component`` (any family, from a
  :class:`~harness.api.components.Component`) check one component and return its list of
  :class:`CheckResult` (``.check``, ``.status`` in ``PASS``/``FAIL``/``SKIP``, ``.message``, the
  numbers in ``.data``). A component is given by its registered name, as a ``Component``, or as a
  bare factory (then no parameter is declared); ``params`` (a dict) overrides its example
  parameters; ``registry=`` is where names, and the EP, BPTT and RelMSE the kit itself needs, are
  looked up (default: the installed plugins, ``harness.plugins.get_manager().registry``).
* ``check_plugin(name, manager=None, overrides=None)`` checks every component of an installed
  plugin, as ``bench check-plugin NAME`` does, and returns a :class:`Report` (``.ok``,
  ``.results``, ``.summary()``; :func:`format_report` prints it as the command does). It raises
  ``LookupError`` only for a plugin that is not installed.
* :func:`assert_passed` is the one raising form: given either outcome, it raises ``AssertionError``
  listing every failed check with its message, and otherwise returns what it was given.

Each check is a small function that returns a one-line description of what it verified, raises
:class:`CheckFailed` with *what was checked, what was expected, what was found and what to fix*, or
raises :class:`CheckSkipped` with the reason. Any other exception a component raises during a check
is a failure too, reported with its type and message. A check whose prerequisite failed is skipped.

Sizes. The kit cannot know which sizes are small for a third-party component,
so a component is built from, in order of precedence:

1. explicit overrides (``check_model(MyNet, {"hidden_size": 4})``, or
   ``check_plugin(..., overrides={"model:hopfield": {...}})``);
2. the component's declared example: ``register(..., example={...})``, else its factory's
   ``example`` class attribute (e.g. ``{"hidden_size": 6}``), read for a bare class given to a
   ``check_*`` function too; the built-ins declare theirs like any plugin, so the kit knows none
   by name;
3. the component's declared defaults.

A model's input shape is read from the built model's ``input_shape`` (a
tuple) or ``input_size`` (an int) attribute, or given as ``input_shape=``.
A dataset may also define ``conformance_skip(instance) -> str | None``: a
reason to skip the checks that need something absent (e.g. data files).

Contracts. Each family's ``builds`` check also refuses a component whose members do not have the
types its contract declares (``harness.api.model.ConvergentRNN``, ``harness.api.algorithm.Algorithm``,
``harness.api.dataset.Dataset``, ``harness.api.run_kind.RunKind``, ``harness.api.executor.Executor``,
``harness.api.tracker.Tracker``): for one that inherits it, the declared attributes it sets; for a
duck-typed one, every declared member it defines (``fast`` a bool, a method callable).

The kit is a package, one concern per module: ``base`` (outcomes, reports, tolerances),
``build`` (examples, declarations, the components the kit needs), ``models``, ``families``
(every other family), ``plugin`` (a whole plugin), ``pytest_plugin`` and ``kit`` (pytest);
this module is its public face.
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
from .families import check_algorithm, check_dataset, check_executor, check_metric, check_run_kind, check_tracker
from .models import check_model
from .plugin import check_component, check_plugin

__all__ = ["check_model", "check_algorithm", "check_metric", "check_dataset", "check_run_kind", "check_executor",
           "check_tracker", "check_component", "check_plugin", "assert_passed", "format_report",
           "CheckResult", "Report", "CheckFailed", "CheckSkipped", "PASS", "FAIL", "SKIP", "MARKS",
           "TOL_EXACT", "TOL_SETTLED", "THEOREM_BETA", "THEOREM_K", "THEOREM_RELMSE",
           "as_component", "example_params"]
