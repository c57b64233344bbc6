"""How the tables of a suite combine into one run: [defaults], the run, its grid point, --set.

A component table (``model``, ``algorithm``, ...) merges key by key over the one in
``[defaults]``, and a grid value over the run's. A table that names a *different* component
replaces the other one, and no key is ever dropped silently: every key the replaced table set
must be restated in the replacing one, or the problem is reported naming the run and the key.
Problems that come from ``[defaults]`` or from ``--set`` are reported there, once.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from harness.suite.checker import Checker, component_table


def merge_component(base: Any, over: Any) -> tuple[Any, dict[str, Any]]:
    """``over`` merged over ``base``, and the keys of ``base`` that it drops: those it does not
    restate when it names a different component (the caller reports them; see the module doc)."""
    b, o = component_table(base), component_table(over)
    if b is None or o is None:
        return copy.deepcopy(over), {}
    if "name" in o and "name" in b and o["name"] != b["name"]:
        return o, {k: v for k, v in b.items() if k != "name" and k not in o}
    return {**b, **o}, {}


def _dropped(ck: Checker, where: str, slot: str, base: Any, over: Any, dropped: dict[str, Any],
             in_grid: bool) -> None:
    """Report each key that a table naming another component would drop, with how to keep it."""
    if not dropped:
        return
    b, o = component_table(base), component_table(over)
    assert b is not None and o is not None  # merge_component drops keys only between two tables
    old, new = b["name"], o["name"]
    source = "the run" if in_grid else "[defaults]"
    for key, value in dropped.items():
        v = _toml(value)
        fix = (f"restate it in this grid value ({{ name = {_toml(new)}, {key} = {v} }}) if {new!r} takes it, "
               f"or move it from the run's {slot} into the grid values that use {old!r}" if in_grid else
               f"restate `{key} = {v}` (or another value) in this run's {slot}, or move `{key}` from "
               f"[defaults] into the runs that use {old!r}")
        ck.err(where, f"names {slot} {new!r}, not {source}'s {old!r}, so {source}'s {slot}.{key} = {v} "
               f"would not apply to it: {fix}")


def _toml(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, bool)) else repr(value)


def merge_run(ck: Checker, where: str, base: dict[str, Any], over: dict[str, Any],
               slots: set[str]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key in slots and key in out:
            out[key], dropped = merge_component(out[key], value)
            _dropped(ck, f"{where}.{key}", key, base[key], value, dropped, in_grid=False)
        elif key == "grid" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_path(ck: Checker, where: str, target: dict[str, Any], dotted: str, value: Any,
              slots: set[str]) -> None:
    """Apply one grid value: ``algorithm`` or ``model.hidden`` or ``T``."""
    head, _, rest = dotted.partition(".")
    if rest:
        current = component_table(target.get(head)) or {}
        current[rest] = value  # one level: a component parameter
        target[head] = current
    elif head in slots and head in target:
        base = target[head]
        target[head], dropped = merge_component(base, value)
        _dropped(ck, f"{where}.grid.{head}", head, base, value, dropped, in_grid=True)
    else:
        target[head] = copy.deepcopy(value)


def override_problem(raw: dict[str, Any], key: str) -> str | None:
    """Why ``--set KEY`` cannot be written into the run's table ``raw`` whatever it names (a key that
    names a run, or that the run's grid varies), or None."""
    head, _, rest = key.partition(".")
    raw_grid = raw.get("grid")
    grid: dict[str, Any] = raw_grid if isinstance(raw_grid, dict) else {}
    if head in ("name", "kind", "grid"):
        return f"a run's {head} cannot be overridden; edit the suite"
    if key in grid or (head in grid and (not rest or any(isinstance(v, dict) and rest in v for v in grid[head]))):
        return f"run {raw.get('name')!r} varies {key!r} in its grid; edit the suite"
    return None


def override(ck: Checker, where: str, raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's table with ``--set`` values written in (a dotted key sets a component parameter)."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if (problem := override_problem(raw, key)) is not None:
            ck.err(f"--set {key}", problem)
        elif rest:
            table = component_table(out.get(head)) or {}
            table[rest] = copy.deepcopy(value)
            out[head] = table
        else:
            out[head] = copy.deepcopy(value)
    return out


def blame_overrides(ck: Checker, start: int, where: str, name: str | None, overrides: dict[str, Any]) -> None:
    """A problem with a value given by ``--set`` is reported at ``--set KEY``, once, with the runs it
    fails in (:func:`report_inherited` names them unless it fails in all)."""
    kept = ck.problems[:start]
    for problem in ck.problems[start:]:
        location, sep, message = problem.partition(": ")
        for key in overrides:
            parts = key.split(".")  # a problem at any prefix of a dotted key (a misspelled head) is its too
            prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
            if location in {f"{w}.{p}" for w in (where, "defaults") for p in prefixes}:
                runs = ck.inherited.setdefault(f"--set {key}{sep}{message}", [])
                if name not in runs:
                    runs.append(name)
                break
        else:
            if problem not in kept:
                kept.append(problem)
    ck.problems[:] = kept


def _from_defaults(path: list[str], raw: dict[str, Any], defaults: dict[str, Any]) -> bool:
    """True when the value at ``path`` comes from [defaults], not from the run itself."""
    def has(table: Any, keys: list[str]) -> bool:
        for k in keys:
            if not isinstance(table, dict) or k not in table:
                return False
            table = table[k]
        return True

    return has(defaults, path) and not has(raw, path)


def blame_defaults(ck: Checker, start: int, where: str, raw: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A bad key inherited from [defaults] is reported once, at ``defaults.…``, naming the runs it
    fails in (collected in ``ck.inherited``, written out by :func:`report_inherited`)."""
    kept = ck.problems[:start]
    for problem in ck.problems[start:]:
        location, sep, message = problem.partition(": ")
        path = location[len(where) + 1:].split(".") if location.startswith(where + ".") else []
        if path and "[" not in path[0] and _from_defaults(path, raw, defaults):
            runs = ck.inherited.setdefault(f"defaults.{'.'.join(path)}{sep}{message}", [])
            if raw.get("name") not in runs:
                runs.append(raw.get("name"))
        elif problem not in kept:
            kept.append(problem)
    ck.problems[:] = kept


def report_inherited(ck: Checker, total: int) -> None:
    """Each inherited problem once; the runs it fails in named unless it fails in all of them."""
    for problem, runs in ck.inherited.items():
        if len(runs) < total:
            problem += f" (in run{'s' if len(runs) > 1 else ''} {', '.join(repr(r) for r in runs)})"
        ck.problems.append(problem)
