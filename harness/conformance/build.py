"""How the kit builds a component: its declared example, a factory's skip reason, the
declaration checks every family shares, and the components the kit itself needs (from the
registry in use: it imports no plugin by name)."""

from __future__ import annotations

import inspect
from typing import Any

from harness.api.components import (
    FAMILIES,
    Component,
    Param,
    Registry,
    Slot,
    check_type,
    close_match,
    declaration,
    member_problems,
    type_name,
)
from harness.api.dataset import capability as dataset_capability

from .base import CheckFailed, CheckSkipped, _Checks


# -- examples ------------------------------------------------------------------
def example_params(component: Component, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters the kit builds ``component`` with: its declared ``example`` (``register(...,
    example=...)``, else the factory's ``example`` class attribute), then ``overrides``."""
    return {**(component.example or {}), **(overrides or {})}


def _skip_reason(component: Component, instance: Any) -> str | None:
    """Why the kit cannot load this dataset here (e.g. data that is not on this machine), if its
    factory says so through ``conformance_skip(instance)`` (declared on harness.api.dataset.Dataset)."""
    return dataset_capability(component.factory, "conformance_skip")(instance)


def contract_problems(contract: type, instance: Any) -> str | None:
    """What the kit refuses in a component's members: for one that does not inherit its ``contract``,
    each member it defines with another type than the declared one (and likewise for one that does,
    where it sets a declared attribute to another type)."""
    problems = member_problems(contract, instance)
    if not problems:
        return None
    where = "" if isinstance(instance, contract) else f" (it does not inherit {contract.__name__})"
    return (f"{type(instance).__name__}{where}: {'; '.join(problems)}; give each the type that "
            f"{contract.__module__}.{contract.__name__} declares")


def default_registry(registry: Registry | None) -> Registry:
    """``registry``, or where none is given that of the installed plugins (``harness.plugins.get_manager()``)."""
    if registry is not None:
        return registry
    from harness.plugins import get_manager

    return get_manager().registry


def as_component(family: str, factory_or_component: Any, registry: Registry | None = None) -> Component:
    """A registered component by name, a Component, or a bare factory (a class declaring its ``params``,
    ``example`` and doc gets them, as registering it would: :func:`harness.api.components.declaration`)."""
    if isinstance(factory_or_component, Component):
        return factory_or_component
    if isinstance(factory_or_component, str):
        return default_registry(registry).get(family, factory_or_component)
    if not callable(factory_or_component):
        raise TypeError(f"expected a {family} name, a Component or a factory, got {factory_or_component!r}")
    name = getattr(factory_or_component, "__name__", repr(factory_or_component))
    return Component(family=family, name=name, factory=factory_or_component, plugin="(direct)",
                     **declaration(factory_or_component))


# -- declarations (every family) ----------------------------------------------
def _check_declaration(comp: Component, registry: Registry | None) -> str:
    problems = []
    seen: set[str] = set()
    for p in comp.params:
        if not isinstance(p, Param):
            problems.append(f"params must be harness.Param objects, found {p!r}")
            continue
        if p.name in seen:
            problems.append(f"parameter {p.name!r} is declared twice")
        seen.add(p.name)
        if not p.required:
            if not check_type(p.default, p.type):
                problems.append(f"parameter {p.name!r}: default {p.default!r} is not a {type_name(p.type)} "
                                f"(suites are validated against the declared type)")
            if p.choices is not None and p.default not in p.choices:
                problems.append(f"parameter {p.name!r}: default {p.default!r} is not one of its choices "
                                f"{list(p.choices)}")
            if "int" in type_name(p.type).split("[")[-1] and p.choices is None and p.max is None:
                problems.append(f"parameter {p.name!r}: an integer without an upper bound; declare max=... "
                                "(a value past it is a typo, refused before a run that would never end)")
    try:
        sig = inspect.signature(comp.factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        accepts_kwargs = any(q.kind is inspect.Parameter.VAR_KEYWORD for q in sig.parameters.values())
        names = {n for n, q in sig.parameters.items()
                 if q.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        for p in comp.params:
            if isinstance(p, Param) and not accepts_kwargs and p.name not in names:
                hint = close_match(p.name, names)
                problems.append(f"parameter {p.name!r} is declared but the factory {comp.factory.__name__}"
                                f"{sig} does not accept it" + (f" (did you mean {hint!r}?)" if hint else ""))
    slot_names: set[str] = set()
    for s in comp.slots:
        if not isinstance(s, Slot):
            problems.append(f"slots must be harness.Slot objects, found {s!r}")
            continue
        if s.family not in FAMILIES:
            problems.append(f"slot {s.name!r}: unknown family {s.family!r}; families are {', '.join(FAMILIES)}")
        if s.name in slot_names or s.name in seen:
            problems.append(f"slot {s.name!r} clashes with another slot or a parameter of the same name")
        slot_names.add(s.name)
    if problems:
        raise CheckFailed(f"{comp.family} {comp.name!r}: " + "; ".join(problems))
    notes = f"{len(comp.params)} parameter(s)"
    if comp.family == "run_kind":
        notes += f", {len(comp.slots)} slot(s)"
    notes += ", defaults fit their declared types"
    if not comp.doc:
        notes += " (no doc: `bench list` will show an empty description; pass doc=...)"
    return notes


def _build(comp: Component, params: dict[str, Any]) -> Any:
    missing = [p.name for p in comp.params if p.required and p.name not in params]
    if missing:
        raise CheckSkipped(f"required parameter(s) {', '.join(missing)} have no value; give the factory an "
                           f"example class attribute (e.g. {{{', '.join(repr(m) + ': ...' for m in missing)}}}) "
                           f"so the kit can build it")
    return comp.build(params)


def _registered(registry: Registry | None, family: str, name: str, params: dict[str, Any]) -> Any:
    """A component the kit itself needs (EP and BPTT for the GDU theorem, RelMSE), built from the
    registry in use like any other: the kit imports no plugin by name."""
    try:
        comp = default_registry(registry).get(family, name)
    except LookupError:
        raise CheckSkipped(f"needs the {family} {name!r}, which no loaded plugin registers (the built-in "
                           f"plugins provide it; is it excluded by $BENCH_PLUGINS?)") from None
    return comp.build(params)


def start_checks(comp: Component, registry: Registry | None, lazy: bool) -> _Checks:
    """The checks of ``comp``, opened with the declaration check every family shares; eager, or
    (``lazy``) only planned, for the pytest kit."""
    c = _Checks(f"{comp.family}:{comp.name}", eager=not lazy)
    c.run("declaration", lambda: _check_declaration(comp, registry))
    return c
