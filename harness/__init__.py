"""eqprop-bench: benchmarks of Equilibrium Propagation and BPTT in convergent RNNs.

The public API a plugin needs lives here.
"""

import importlib.abc
import sys

from harness.api.components import REQUIRED, Param, Slot
from harness.api.hookspecs import hookimpl

#: 0.2.0: the core in floors (harness.api, .suite, .results, .run, .cli) and harness.conformance as the
#: kit's one public module; a plugin written for 0.1 imports from the modules in MOVED.
__version__ = "0.2.0"

#: The modules of 0.1 and where they went, so that a plugin written against 0.1 is told where to look.
MOVED = {
    "components": "harness.api.components", "hookspecs": "harness.api.hookspecs", "model": "harness.api.model",
    "algorithm": "harness.api.algorithm", "update": "harness.api.optimizer", "metric": "harness.api.metric",
    "dataset": "harness.api.dataset", "tracker": "harness.api.tracker", "records": "harness.api.records",
    "steps": "harness.api.steps", "relaxation": "harness.api.relaxation", "local": "harness.api.executor",
    "spec": "harness.suite.spec", "suite": "harness.suite.load", "store": "harness.results.store",
    "aggregate": "harness.results.aggregate", "figures": "harness.results.figures", "context": "harness.run.context",
    "runner": "harness.run.runner", "executor": "harness.run.execute", "environment": "harness.run.environment",
    "acceleration": "harness.run.acceleration", "testing": "harness.conformance", "cli_common": "harness.cli.common",
    "cli_plugins": "harness.cli.plugin_commands", "checks": "harness.suite.checks", "merge": "harness.suite.merge",
    "claims": "harness.results.claims", "render": "harness.results.render", "compare": "harness.results.compare",
    "report": "harness.results.report", "show": "harness.suite.show", "progress": "harness.run.progress",
    "checker": "harness.suite.checker",
}


class _Moved(importlib.abc.MetaPathFinder):
    """Refuses ``import harness.<old>`` for a module of 0.1 with the name of its new place. Last on
    ``sys.meta_path``: asked only for a module the regular finders did not find."""

    def find_spec(self, fullname, path=None, target=None):
        head, _, rest = fullname.partition(".")
        if head == "harness" and rest in MOVED:
            raise ModuleNotFoundError(f"{fullname} moved to {MOVED[rest]} in eqprop-bench 0.2 (harness.__version__): "
                                      "import from there (docs/architecture.md, 'The core in floors')", name=fullname)
        return None


sys.meta_path.append(_Moved())



def __getattr__(name: str):
    """``RunContext`` and ``Diverged`` on first use: they need torch, which `bench --help` does not."""
    if name in ("RunContext", "Diverged"):
        from harness.run import context

        return getattr(context, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = ["REQUIRED", "Param", "Slot", "Diverged", "RunContext", "hookimpl", "__version__"]
