"""The collector of a suite's problems: every check reports into one :class:`Checker`, with the
key path at fault, so that ``bench validate`` names every problem at once."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from harness.api.components import ComponentError, Param, Registry, check_type, close_match


def component_table(value: Any) -> dict[str, Any] | None:
    """A component as a suite writes it, as a table: ``"ep"`` -> ``{"name": "ep"}``; None if neither."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return dict(value)
    return None


def unknown_key_message(key: str, allowed: list[str], what: str) -> str:
    """What is said of a key that ``what`` (e.g. "a run of kind 'train'") does not take: the close
    match among ``allowed``, and all of them."""
    hint = close_match(key, allowed)
    msg = f"unknown key {key!r} for {what}"
    msg += f"; did you mean {hint!r}?" if hint else "."
    return msg + f" Allowed: {', '.join(sorted(allowed)) or 'none'}"


class Checker:
    def __init__(self, path: Path, registry: Registry):
        self.path, self.registry = path, registry
        self.problems: list[str] = []
        self.errors = 0
        self.inherited: dict[str, list[str | None]] = {}  # problem at defaults.KEY or --set KEY -> the runs it fails in

    def err(self, where: str, message: str) -> None:
        self.errors += 1  # counted even when reported already: callers compare counts to see a failure
        text = f"{where}: {message}"
        if text not in self.problems:  # the same mistake seen at every grid point is one problem
            self.problems.append(text)

    def unknown_key(self, where: str, key: str, allowed: list[str], what: str) -> None:
        self.err(where, unknown_key_message(key, allowed, what))

    def check_params(self, where: str, params: dict[str, Any], declared: tuple[Param, ...] | list[Param],
                     what: str) -> dict[str, Any]:
        """Check values against declared parameters; return them with defaults filled in."""
        by_name = {p.name: p for p in declared}
        out: dict[str, Any] = {}
        for key, value in params.items():
            p = by_name.get(key)
            if p is None:
                self.unknown_key(f"{where}.{key}", key, list(by_name), what)
                continue
            if not check_type(value, p.type):
                self.err(f"{where}.{key}", f"expected {p.describe_type()}, got {type(value).__name__} {value!r}")
                continue
            problem = p.check_value(value)
            if problem is not None:
                self.err(f"{where}.{key}", problem)
                continue
            if p.choices is not None and value not in p.choices:
                hint = close_match(str(value), [str(c) for c in p.choices])
                self.err(f"{where}.{key}", f"expected one of {', '.join(repr(c) for c in p.choices)}, got "
                         f"{value!r}" + (f"; did you mean {hint!r}?" if hint else ""))
                continue
            out[key] = value
        for p in declared:
            if p.name not in params:
                if p.required:
                    self.err(f"{where}.{p.name}", f"missing required parameter of {what} "
                             f"({p.describe_type()}{': ' + p.doc if p.doc else ''})")
                else:
                    out[p.name] = copy.deepcopy(p.default)
        return out

    def component(self, where: str, family: str, value: Any) -> dict[str, Any] | None:
        table = component_table(value)
        if table is None:
            self.err(where, f"expected a {family} name or a table with `name = ...`, got {value!r}")
            return None
        name = table.pop("name", None)
        if not isinstance(name, str):
            self.err(f"{where}.name", f"missing: which {family}? Known: {', '.join(self.registry.names(family))}")
            return None
        try:
            comp = self.registry.get(family, name)
        except ComponentError as exc:
            self.err(f"{where}.name", str(exc))
            return None
        return {"name": name, "params": self.check_params(where, table, comp.params, f"{family} {name!r}")}
