"""eqprop-bench: benchmarks of Equilibrium Propagation and BPTT in convergent RNNs.

The public API a plugin needs lives here.
"""

from harness.api.components import REQUIRED, Param, Slot
from harness.api.hookspecs import hookimpl

__version__ = "0.1.0"



def __getattr__(name: str):
    """``RunContext`` and ``Diverged`` on first use: they need torch, which `bench --help` does not."""
    if name in ("RunContext", "Diverged"):
        from harness.run import context

        return getattr(context, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = ["REQUIRED", "Param", "Slot", "Diverged", "RunContext", "hookimpl", "__version__"]
