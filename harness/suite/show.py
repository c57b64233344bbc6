"""What each run of a suite resolves to, printed before anything runs (``bench show``).

The suite file is what a user wrote; this is what the harness will execute: every
default filled in, every grid value applied, as TOML (one ``[[runs]]`` table per
run, readable beside the suite) or JSON. TOML has no null: a parameter left at
``None`` is written as a comment, so nothing is hidden and the text still parses.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from harness.suite.spec import SWITCHES, RunSpec

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def resolved(run: RunSpec) -> dict[str, Any]:
    """One run as a flat, suite-like table: its keys, then each slot as ``{name, **params}``."""
    def component(c: dict[str, Any]) -> dict[str, Any]:
        return {"name": c["name"], **c["params"]}

    out: dict[str, Any] = {"id": run.id, "name": run.name, "kind": run.kind, "seed": run.seed,
                           "device": run.device, "dtype": run.dtype, "autocast": run.autocast,
                           **{p.name: run.switches[p.name] for p in SWITCHES}, **run.params}
    for slot, value in run.slots.items():
        out[slot] = [component(c) for c in value] if isinstance(value, list) else component(value)
    if run.resources:
        out["resources"] = dict(run.resources)
    return out


def as_json(runs: list[RunSpec]) -> str:
    return json.dumps([resolved(r) for r in runs], indent=2, ensure_ascii=False)


def as_toml(runs: list[RunSpec]) -> str:
    return "\n".join(_table("runs", resolved(r), array=True) for r in runs)


def _key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _table(header: str, data: dict[str, Any], array: bool = False) -> str:
    lines = [f"[[{header}]]" if array else f"[{header}]"]
    nested = []
    for k, v in data.items():
        if v is None:
            lines.append(f"# {_key(k)}: not set (None)")
        elif isinstance(v, dict):
            nested.append(_table(f"{header}.{_key(k)}", v))
        elif _is_tables(v):
            nested.extend(_table(f"{header}.{_key(k)}", x, array=True) for x in v)
        else:
            lines.append(f"{_key(k)} = {toml_value(v)}")
    return "\n".join(lines + [""] + nested)
