"""bench-hopfield: an example third-party model plugin for eqprop-bench.

Installed next to eqprop-bench, it registers the model ``hopfield`` through the
``bench`` entry-point group (see pyproject.toml); EP, BPTT, the GDU analysis
and training then work on it unchanged. The model declares its parameters and
its one-line doc on its class (model.py); the hook only names it.
"""

from __future__ import annotations

from harness import hookimpl

from .model import HopfieldNet

__all__ = ["HopfieldNet", "register_models"]
__version__ = "0.1.0"


@hookimpl
def register_models(register):
    register("hopfield", HopfieldNet)
