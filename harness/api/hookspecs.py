"""The hooks a plugin implements (pluggy project name ``bench``).

Each hook receives a ``register`` callback and calls it once per component. A component declares
itself once, on its class, beside its ``__init__``; the hook only names it::

    from typing import ClassVar

    from harness import Param, hookimpl

    class MyNet(ConvergentRNN):
        '''What it is, in one line (the first paragraph is what `bench list` shows).

        More about it: the following paragraphs are the class's own documentation.
        '''

        params: ClassVar[tuple[Param, ...]] = (Param("hidden", list[int], [512], "hidden layer sizes"),)
        example: ClassVar[dict | None] = {"hidden": [7]}  # small sizes for `bench check-plugin`

        def __init__(self, hidden=(512,)): ...

    @hookimpl
    def register_models(register):
        register("my-net", MyNet)

``register(name, factory, *, params=None, doc=None, slots=None, example=None)``: ``factory`` is
called with the suite's validated parameters as keyword arguments. A keyword left out is read from
the factory (:func:`harness.api.components.declaration`): its class attributes ``params``, ``slots``
and ``example``, and the first paragraph of its docstring (lines joined by single spaces) as
``doc``. Explicit keywords override the factory's declaration, one by one, which is how a factory
that is a plain function (or one registered twice with different parameters) declares itself. Only
run kinds take ``slots``. New hooks (reporters, ...) are added as new ``register_*`` specs; a plugin
that does not implement them keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pluggy

from harness.api.components import Param, Slot

PROJECT = "bench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        params: Sequence[Param] | None = None,
        doc: str | None = None,
        slots: Sequence[Slot] | None = None,
        example: dict[str, Any] | None = None,
    ) -> None: ...


@hookspec
def register_models(register: Register) -> None:
    """Register models: factories returning a ``harness.api.model.ConvergentRNN``."""


@hookspec
def register_algorithms(register: Register) -> None:
    """Register learning algorithms: factories returning a ``harness.api.algorithm.Algorithm``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metrics: factories returning a ``harness.api.metric.ProcessMetric``."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets: factories returning a ``harness.api.dataset.Dataset``."""


@hookspec
def register_run_kinds(register: Register) -> None:
    """Register run kinds: factories returning a ``harness.api.run_kind.RunKind``, ``execute(ctx) -> None``.

    ``slots`` declares which components a run of this kind names (model,
    algorithm, dataset, metrics, ...); ``params`` are its own settings.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register executors: factories returning a ``harness.api.executor.Executor``.

    An executor decides where and when the runs of a suite execute (in this
    process, in worker processes, as cluster jobs); the runner's per-run
    logic, claims and store stay the same everywhere.
    """


@hookspec
def register_trackers(register: Register) -> None:
    """Register experiment trackers: factories returning a ``harness.api.tracker.Tracker`` (receives each
    run's start, per-epoch values, final values and status; never fails a run)."""
