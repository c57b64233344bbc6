"""The run-kind contract: what a run kind's factory returns, and every optional member with its
default (a kind defines only those it has)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from harness.api.components import optional_member
from harness.api.records import Records


class RunKind:
    """What a run kind's factory returns: ``execute(ctx)`` (:meth:`__call__`) runs one run, recording
    through ``ctx``.

    Optional members, declared below with their types and defaults: ``records`` and ``figures``
    (class attributes, read from the factory), ``batch_slots`` and ``execute_batch``. The built-ins
    inherit this class; the core reads a kind that may not (a plain function, say) through
    :func:`capability`, which refuses a name not declared here.
    """

    #: What the kind records, against which ``bench validate`` checks a suite's tables (the kit requires
    #: it; ``None``: a table is checked only once results exist). A class attribute (of the factory).
    records: ClassVar[Records | None] = None
    #: ``figures(suite, results_dir, finished, *, elements) -> list[harness.results.figures.Drawn]``: the
    #: figures of its finished runs (``finished``: ``(RunSpec, RunStore)`` pairs), for ``bench plot`` and
    #: ``bench report``; a class attribute (of the factory). ``None``: it draws none.
    figures: ClassVar[Callable[..., list[Any]] | None] = None
    #: The slots in which the runs of one batch may differ (``("algorithm",)``: ``batch_algorithms``).
    batch_slots: tuple[str, ...] = ()
    #: ``execute_batch(ctxs)``: several runs as one batched model (``batch_seeds`` / ``batch_algorithms``);
    #: a member that blows up calls ``ctx.diverge(message)``. ``None``: each run executes alone.
    execute_batch: Callable[[list[Any]], None] | None = None

    def __call__(self, ctx: Any) -> None:
        """Execute one run (``ctx``: its :class:`harness.run.context.RunContext`)."""
        raise NotImplementedError


def capability(kind: object, name: str) -> Any:
    """A run kind's optional member ``name`` (declared on :class:`RunKind`), of the built kind or of its
    factory: its own, else, for one that does not inherit the class, the declared default. Refuses an
    undeclared name."""
    return optional_member(RunKind, kind, name)


def declared(factory: Any) -> Records | None:
    """The run kind's declaration of what it records, or None when it declares nothing (its tables are
    then checked only once results exist)."""
    records = capability(factory, "records")
    return records if isinstance(records, Records) else None


def declared_costs(registry: Any, kinds: Iterable[str]) -> frozenset[str]:
    """The metrics that these run kinds (names in ``registry``) declare as measuring the machine
    (``Records.costs``): what ``bench compare`` shows but never counts as a change."""
    out: set[str] = set()
    for kind in set(kinds):
        records = declared(registry.get("run_kind", kind).factory)
        out |= set(records.costs) if records is not None else set()
    return frozenset(out)
