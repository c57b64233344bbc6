"""Components and their declared parameters.

Every model, algorithm, metric, dataset and run kind is a *component*: a name,
a factory, and the parameters it accepts. Declaring parameters is what lets a
suite be validated key by key before anything runs, and lets `bench list`
document every component without importing anything heavy.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: The component families the harness knows. Plugins may add families through
#: new hooks later; these are the ones a suite can name.
FAMILIES = ("model", "algorithm", "metric", "dataset", "run_kind", "executor", "tracker")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marker for a parameter without a default: a suite must set it.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One parameter a component accepts.

    ``type`` is a Python type or a simple generic: ``int``, ``float``, ``bool``,
    ``str``, ``list[int]``, ``list[float]``, ``int | None``, ``dict``.
    ``float`` accepts integers (TOML writes ``1`` for ``1.0``).
    """

    name: str
    type: Any
    default: Any = REQUIRED
    doc: str = ""
    choices: Sequence[Any] | None = None
    #: Inclusive bounds of a number, or of every number of a list (None: unbounded).
    min: float | None = None
    max: float | None = None
    #: A parameter added after results existed, whose default reproduces exactly what the component
    #: did before it (e.g. an algorithm's optimizer = "sgd" with momentum 0): left out of the run's
    #: id while at its default, so that adding it keeps every stored result; any other value is
    #: part of the id. Never set it on a parameter whose default changes a result.
    quiet_default: bool = False
    #: A list whose values must differ (a β grid, seeds): a repeated value would run twice and store
    #: duplicate records.
    distinct: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe_type(self) -> str:
        text = type_name(self.type)
        if self.choices is not None:
            text += " in {" + ", ".join(repr(c) for c in self.choices) + "}"
        if self.min is not None or self.max is not None:
            low, high = "-∞" if self.min is None else _num(self.min), "∞" if self.max is None else _num(self.max)
            text += f" in [{low}, {high}]"
        return text

    def check_value(self, value: Any) -> str | None:
        """Why a value of the right type is still refused (not finite, out of bounds, repeated), or None."""
        if self.distinct and isinstance(value, list):
            repeated = sorted({repr(x) for i, x in enumerate(value) if x in value[:i]})
            if repeated:
                return f"{', '.join(repeated)} appears more than once: the values of {self.name} must differ"
        for x in value if isinstance(value, list) else [value]:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                continue
            if isinstance(x, float) and not math.isfinite(x):
                return f"expected a finite number, got {x!r}"
            if (self.min is not None and x < self.min) or (self.max is not None and x > self.max):
                return f"{x!r} is out of range: expected {self.describe_type()}"
        return None


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else f"{x:,}".replace(",", "_") if abs(x) >= 10**6 else str(x)


@dataclass(frozen=True)
class Slot:
    """A place in a run kind's configuration that holds a component.

    ``many`` slots hold a list of components (e.g. metrics); a ``default``
    (a component name, or a list of names for ``many``) makes the slot optional.
    """

    name: str
    family: str
    doc: str = ""
    many: bool = False
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Component:
    """A registered component: what a suite names and the runner builds."""

    family: str
    name: str
    factory: Callable[..., Any]
    params: tuple[Param, ...] = ()
    doc: str = ""
    #: Only for run kinds: the component slots the kind consumes.
    slots: tuple[Slot, ...] = ()
    #: The plugin (entry-point name) that registered it; set by the manager.
    plugin: str = ""
    #: Small parameters the conformance kit builds it with (``register(..., example={...})``, else the
    #: factory's ``example`` class attribute); ``None``: the declared defaults.
    example: dict[str, Any] | None = None

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}

    def build(self, params: dict[str, Any]) -> Any:
        """Call the factory with the declared defaults overridden by ``params``."""
        return self.factory(**{**self.defaults(), **params})


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a docstring, its lines joined by single spaces (what `bench list` shows)."""
    lines = []
    for line in inspect.cleandoc(text or "").splitlines():
        if not line.strip():
            break
        lines.append(line.strip())
    return " ".join(lines)


def declaration(factory: Callable[..., Any], *, params: Sequence[Param] | None = None, doc: str | None = None,
                slots: Sequence[Slot] | None = None, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """A component's ``params``, ``doc``, ``slots`` and ``example``, as :class:`Component` takes them.

    Each one given here (``register``'s keywords) wins; the others are read from the factory's own
    declaration, beside its code: the class attributes ``params``, ``slots`` and ``example``, and the
    first paragraph of its docstring (:func:`first_paragraph`) as ``doc``. A factory that declares
    nothing (a plain function) has no parameters, no slots and no example.
    """

    def declared(attr: str, kinds: type | tuple[type, ...], what: str) -> Any:
        value = getattr(factory, attr, None)
        if value is not None and not isinstance(value, kinds):
            raise ComponentError(f"{getattr(factory, '__qualname__', factory)!r} declares {attr} = {value!r}; "
                                 f"declare {what}")
        return value

    if params is None:
        params = declared("params", (list, tuple), "a list or tuple of harness.Param") or ()
    if slots is None:
        slots = declared("slots", (list, tuple), "a list or tuple of harness.Slot") or ()
    if example is None:
        example = declared("example", dict, "a dict of parameters (or None)")
    return {"params": tuple(params), "doc": doc or first_paragraph(getattr(factory, "__doc__", None)),
            "slots": tuple(slots), "example": dict(example) if example is not None else None}


def type_name(tp: Any) -> str:
    if tp is Any:
        return "any"
    if tp is Ellipsis:
        return "..."
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def check_type(value: Any, tp: Any) -> bool:
    """True when a TOML value fits a declared parameter type."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(check_type(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin in (list, tuple, Sequence):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        return all(check_type(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def close_match(word: str, candidates: typing.Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


class ComponentError(LookupError):
    """An unknown component, or two plugins claiming one name."""


class Registry:
    """All components by family and name, filled by the plugin manager."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {f: {} for f in FAMILIES}

    def add(self, component: Component) -> None:
        if component.family not in self._components:
            raise ComponentError(
                f"plugin {component.plugin!r} registers {component.name!r} in unknown "
                f"family {component.family!r}; families are {', '.join(FAMILIES)}"
            )
        table = self._components[component.family]
        if component.name in table:
            other = table[component.name]
            raise ComponentError(
                f"{component.family} {component.name!r} is registered twice: by plugin "
                f"{other.plugin!r} and by plugin {component.plugin!r}. Uninstall or "
                f"disable one of them (BENCH_PLUGINS=name,... restricts which plugins load)."
            )
        table[component.name] = component

    def get(self, family: str, name: str) -> Component:
        table = self._components[family]
        if name not in table:
            hint = close_match(name, table)
            known = ", ".join(sorted(table)) or "none"
            msg = f"unknown {family} {name!r}"
            if hint:
                msg += f" (did you mean {hint!r}?)"
            limited = [v for v in ("BENCH_PLUGINS", "BENCH_DISABLE_PLUGINS") if os.environ.get(v)]
            if limited:  # the built-ins are plugins too: a filter can leave them out
                msg += (f"; note {' and '.join(f'{v}={os.environ[v]}' for v in limited)} limits the plugins loaded "
                        "(built-ins included: models, algorithms, metrics, datasets, runs, executors, trackers)")
            raise ComponentError(f"{msg}; known {family}s: {known}")
        return table[name]

    def names(self, family: str) -> list[str]:
        return sorted(self._components[family])

    def all(self, family: str | None = None) -> list[Component]:
        families = [family] if family else list(FAMILIES)
        return [self._components[f][n] for f in families for n in sorted(self._components[f])]

    def by_plugin(self, plugin: str) -> list[Component]:
        return [c for c in self.all() if c.plugin == plugin]


# -- contracts: the members a component may define, declared once with their defaults ---------
class UndeclaredMember(TypeError):
    """A name read as a component's member that its contract does not declare."""


@functools.cache
def declared_members(contract: type) -> dict[str, Any]:
    """The public members ``contract`` declares in its own class body, each with its declared type:
    an annotated attribute its annotation, a property its getter's return annotation, a method
    ``Callable``. An annotation that cannot be evaluated here (a type imported only for checkers)
    counts as ``Any``."""
    own = vars(contract)
    names = [n for n in {**own.get("__annotations__", {}), **own} if not n.startswith("_")]
    annotations = own.get("__annotations__", {})
    out: dict[str, Any] = {}
    for name in names:
        value = own.get(name)
        if name in annotations:
            out[name] = _evaluated(contract, annotations[name])
        elif isinstance(value, property):
            out[name] = _evaluated(contract, inspect.get_annotations(value.fget).get("return", Any)
                                   if value.fget is not None else Any)
        elif isinstance(value, (staticmethod, classmethod, types.FunctionType)):
            out[name] = Callable
        else:
            out[name] = Any
    return out


def _evaluated(contract: type, annotation: Any) -> Any:
    if not isinstance(annotation, str):
        return annotation
    import sys

    namespace = dict(vars(sys.modules[contract.__module__]))
    try:
        return eval(annotation, namespace)  # noqa: S307 - the contract's own annotation, from its source
    except NameError:  # e.g. torch, imported only for type checkers where the contract must stay light
        try:
            import torch

            return eval(annotation, {**namespace, "torch": torch, "Tensor": torch.Tensor})  # noqa: S307
        except Exception:  # noqa: BLE001 - not evaluable here: any value fits
            return Any


def optional_member(contract: type, component: Any, name: str) -> Any:
    """``component.name`` where ``name`` is a member ``contract`` declares: the component's own, else
    (a duck-typed component that does not inherit the contract) the contract's declared default, as
    inheriting would give it. A name the contract does not declare is refused
    (:class:`UndeclaredMember`): no component is probed for an undocumented capability.

    Each contract module has its one reader over this (``harness.api.model.capability``, ...)."""
    if name.startswith("_") or name not in declared_members(contract):
        raise UndeclaredMember(f"{contract.__name__} declares no member {name!r}; declare it on "
                               f"{contract.__module__}.{contract.__name__}, with its default, before reading it")
    try:
        return getattr(component, name)
    except AttributeError:
        default = inspect.getattr_static(contract, name)
        if isinstance(default, (types.FunctionType, property, staticmethod, classmethod)):
            return default.__get__(component, type(component))  # as inheriting would give it
        return default


def member_problems(contract: type, component: Any) -> list[str]:
    """The members ``contract`` declares that ``component`` defines with a value of another type than
    the declared one (``fast = "yes"`` where ``fast: bool`` is declared; a method that is not callable),
    or whose reading raises: what the conformance kit refuses."""
    problems = []
    for name, tp in declared_members(contract).items():
        try:
            value = getattr(component, name)
        except AttributeError:
            continue  # not defined: the declared default applies
        except Exception as exc:  # noqa: BLE001 - a property that fails is what the kit reports
            problems.append(f"reading {name} raised {type(exc).__name__}: {exc}")
            continue
        if not fits(value, tp):
            problems.append(f"{name} = {value!r} is not a {type_name(tp)} (declared on {contract.__name__})")
    return problems


def fits(value: Any, tp: Any) -> bool:
    """True when a component's member fits the type its contract declares (``float`` accepts an int,
    ``int`` and ``float`` refuse a bool; a callable type needs only a callable)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if origin is typing.ClassVar:
        return fits(value, args[0]) if args else True
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if tp is None or tp is type(None):
        return value is None
    if tp is Callable or origin is Callable:
        return callable(value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(fits(v, a) for v, a in zip(value, args)))
    if origin in (list, Sequence):
        kinds = list if origin is list else (list, tuple)
        return isinstance(value, kinds) and (not args or all(fits(v, args[0]) for v in value))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, tp) if isinstance(tp, type) else True
