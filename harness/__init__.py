"""eqprop-bench: benchmarks of Equilibrium Propagation and BPTT in convergent RNNs.

The public API a plugin needs lives here.
"""

from .components import REQUIRED, Param, Slot
from .context import Diverged, RunContext
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["REQUIRED", "Param", "Slot", "Diverged", "RunContext", "hookimpl", "__version__"]
