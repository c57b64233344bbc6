"""What a run kind records, declared next to its code so that a suite's tables can be checked
before any run (a misspelled metric or column is named by ``bench validate``, not after hours of
runs by ``bench table``), and so that a kind cannot record a name it has not declared.

A run kind declares ``records = Records(...)`` as a class attribute (of its factory): the member
``records`` of :class:`harness.api.run_kind.RunKind`, read by :func:`harness.api.run_kind.declared`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Records:
    #: metric names of the final values (``ctx.record(metric, ...)``); what a table's ``metrics`` names
    metrics: tuple[str, ...] = ()
    #: the extra columns of those values (``ctx.record(metric, value, layer=...)``): ``layer``, ``beta``, ...
    columns: tuple[str, ...] = ()
    #: per-epoch values (``ctx.log_epoch(epoch, **values)``), read by a table with ``epoch = N``
    curves: tuple[str, ...] = ()
    #: slots whose components' names are metric names too (a GDU run records each metric it is given)
    metric_slots: tuple[str, ...] = ()
    #: which of those values measure or describe the machine rather than the algorithm (times, throughput,
    #: memory, its thread count): ``bench compare`` shows how they moved but counts no change in them
    #: (another CPU is not a regression)
    costs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Each field a tuple of names (a list is taken as one); a bare string, a common slip for a
        one-name tuple (``("seconds")``), is refused instead of being read letter by letter."""
        for name in ("metrics", "columns", "curves", "metric_slots", "costs"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (tuple, list)) \
                    or not all(isinstance(v, str) for v in value):
                raise TypeError(f"Records.{name} must be a tuple of names, e.g. ({value!r},) for one, "
                                f"not {value!r}")
            object.__setattr__(self, name, tuple(value))

    def metric_names(self, slots: dict[str, Any]) -> set[str]:
        """The metric names a run with these resolved slots may record as final values."""
        names = set(self.metrics)
        for slot in self.metric_slots:
            value = slots.get(slot, [])
            names |= {v["name"] for v in (value if isinstance(value, list) else [value])}
        return names


def undeclared(names: Iterable[str], allowed: set[str]) -> list[str]:
    return sorted(n for n in names if n not in allowed)
