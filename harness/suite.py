"""Suite files: TOML that names runs, validated against the components.

A suite is data, never code. Layout::

    name = "table1"                      # optional, defaults to the file stem
    description = "..."

    [defaults]                           # merged under every run
    kind = "train"
    seeds = [0, 1, 2, 3, 4]
    dataset = "mnist"                    # a component: a name, or a table
    model = { name = "p", activation = "sigmoid" }

    [[runs]]
    name = "P-1h"                        # the row label
    model = { hidden = [512] }           # merged over the default model
    T = 30                               # a parameter of the run kind
    algorithm = { lr = [0.08, 0.04] }
    grid.algorithm = ["ep", { name = "bptt" }]   # one run per value (× seeds)

    [[references]]                       # published numbers to compare against
    source = "arXiv:1905.13633, Table 1"
    columns = ["name", "algorithm", "test_error", "test_error_std"]
    rows = [["P-1h", "ep", 2.00, 0.13]]

    [tables.main]                        # how `bench table` lays results out
    rows = ["name"]
    columns = ["algorithm", "metric"]
    metrics = ["test_error"]

Merging: a component table (``model``, ``algorithm``, ...) merges key by key
over the one in ``[defaults]``, and a grid value over the run's. A table that
names a *different* component replaces the other one, and no key is ever
dropped silently: every key the replaced table set must be restated in the
replacing one (the same value or another), or validation fails, naming the
run and the key (e.g. ``[defaults]`` says ``model = { name = "p", activation =
"sigmoid" }`` and a run says ``model = { name = "eb", hidden = [512] }``: the
run must say ``activation`` too, or ``activation`` must leave ``[defaults]``).
``bench show SUITE`` prints what each run resolves to. Every key is checked
against the run kind (its slots and parameters) and against the component
that consumes it; every problem is reported with the file, the key path, what
was expected, and a close match where there is one.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .components import Component, ComponentError, Param, Registry, check_type, close_match, type_name

#: Keys every run accepts besides its kind's slots and parameters.
RUN_KEYS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("name", str, doc="row label of the run (required in [[runs]])"),
        Param("kind", str, doc="run kind: see `bench list run_kinds`"),
        Param("seeds", list[int], [0], "one run per seed"),
        Param("device", str, "auto", "cpu, cuda, cuda:N or auto"),
        Param("dtype", str, "float32", "floating-point precision", choices=("float32", "float64")),
        Param("grid", dict, {}, "key -> list of values; one run per combination"),
        Param("batch_seeds", bool, False, "execute the seeds of a configuration as one batched model "
              "when the run kind supports it (same results; fewer kernel launches on a GPU, about as "
              "fast on a CPU: results/speed/)"),
        Param("batch_algorithms", bool, False, "execute the runs of a configuration that differ only by "
              "their algorithm (EP and BPTT from the same initial weights) as one batched model, with "
              "their seeds if batch_seeds, when the run kind supports it (same results)"),
        Param("fast", bool, True, "use the models' fast paths (same results within float rounding); "
              "false: the generic path, autograd on Φ"),
    )
}
#: A suite name is a directory under the results directory: one path component, nothing else.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
TOP_KEYS = ("name", "description", "defaults", "runs", "references", "tables", "executor", "trackers")
TABLE_KEYS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("title", str, "", "caption"),
        Param("where", dict, {}, "keep runs whose column equals the value (or is in the list)"),
        Param("rows", list[str], ["name"], "columns that label rows"),
        Param("columns", list[str], ["metric"], "columns spread across the table"),
        Param("metrics", list[str], [], "metrics to show (all when empty)"),
        Param("format", str, ".3g", "Python format spec of numbers"),
        Param("scale", float, 1.0, "multiply values (e.g. 100 for %)"),
        Param("labels", dict, {}, "display names of metrics and columns"),
    )
}
REFERENCE_KEYS = ("source", "columns", "rows")


class SuiteError(ValueError):
    """A suite that cannot run; ``problems`` lists every error found."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path, self.problems = str(path), problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in suite:\n{lines}")


@dataclass
class RunSpec:
    """One run, fully resolved: everything needed to execute it and to find it again."""

    id: str
    name: str
    kind: str
    seed: int
    device: str
    dtype: str
    params: dict[str, Any]  # the run kind's own parameters, defaults filled in
    slots: dict[str, Any]  # slot -> {"name", "params"} or a list of them
    grid: dict[str, Any] = field(default_factory=dict)  # the grid values of this run
    #: Execute the seeds together; not part of the config (it changes no result).
    batch_seeds: bool = False
    #: Execute the algorithms of a configuration together (EP with BPTT); not part of the config.
    batch_algorithms: bool = False
    #: Use the models' fast paths; not part of the config either (tested equal).
    fast: bool = True

    def config(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "seed": self.seed,
                "device": self.device, "dtype": self.dtype, "params": self.params,
                "slots": self.slots, "grid": self.grid}

    def attributes(self) -> dict[str, Any]:
        """The columns a table can group by: name, kind, seed, and each slot's component."""
        attrs: dict[str, Any] = {"run": self.id, "name": self.name, "kind": self.kind,
                                 "seed": self.seed, "dtype": self.dtype}
        for slot, value in self.slots.items():
            attrs[slot] = ",".join(v["name"] for v in value) if isinstance(value, list) else value["name"]
        for key, value in self.grid.items():  # grid axes are columns too (e.g. T, lr)
            attrs.setdefault(key, _grid_label(value))
            if isinstance(value, dict):  # and so are the parameters a grid value sets (algorithm.beta)
                for k, v in value.items():
                    if k != "name":
                        attrs.setdefault(f"{key}.{k}", _grid_label(v))
        return attrs


@dataclass
class TableSpec:
    name: str
    title: str
    where: dict[str, Any]
    rows: list[str]
    columns: list[str]
    metrics: list[str]
    format: str
    scale: float
    labels: dict[str, str]


@dataclass
class Reference:
    source: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Suite:
    path: Path
    name: str
    description: str
    runs: list[RunSpec]
    references: list[Reference]
    tables: dict[str, TableSpec]
    #: ``{"name": ..., "params": {...}}`` from an ``[executor]`` table, or None (local)
    executor: dict[str, Any] | None = None
    #: ``--set`` values applied to every run (part of their configurations and ids)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: experiment trackers (``{"name", "params"}``) every run reports to; not part of any id
    trackers: list[dict[str, Any]] = field(default_factory=list)

    def run(self, run_id: str) -> RunSpec:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise KeyError(run_id)

    def select(self, only: tuple[str, ...] | list[str] | None) -> list[RunSpec]:
        """Runs whose id or name matches one of ``only`` (shell-style patterns)."""
        if not only:
            return list(self.runs)
        import fnmatch

        chosen = [r for r in self.runs
                  if any(fnmatch.fnmatchcase(r.id, p) or fnmatch.fnmatchcase(r.name, p) for p in only)]
        if not chosen:
            hint = close_match(only[0], {r.name for r in self.runs} | {r.id for r in self.runs})
            raise SuiteError(self.path, [f"--only {', '.join(only)} matches no run"
                                         + (f" (did you mean {hint!r}?)" if hint else "")
                                         + "; `bench status SUITE` lists the runs"])
        return chosen


# -- helpers -------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text)).strip("-") or "x"


def _as_component(value: Any) -> dict[str, Any] | None:
    """A component reference as a table: ``"ep"`` -> ``{"name": "ep"}``."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return dict(value)
    return None


def _merge_component(base: Any, over: Any) -> tuple[Any, dict[str, Any]]:
    """``over`` merged over ``base``, and the keys of ``base`` that it drops: those it does not
    restate when it names a different component (the caller reports them; see the module doc)."""
    b, o = _as_component(base), _as_component(over)
    if b is None or o is None:
        return copy.deepcopy(over), {}
    if "name" in o and "name" in b and o["name"] != b["name"]:
        return o, {k: v for k, v in b.items() if k != "name" and k not in o}
    return {**b, **o}, {}


def _dropped(ck: "_Checker", where: str, slot: str, base: Any, over: Any, dropped: dict[str, Any],
             in_grid: bool) -> None:
    """Report each key that a table naming another component would drop, with how to keep it."""
    if not dropped:
        return
    old, new = _as_component(base)["name"], _as_component(over)["name"]
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


def _merge_run(ck: "_Checker", where: str, base: dict[str, Any], over: dict[str, Any],
               slots: set[str]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key in slots and key in out:
            out[key], dropped = _merge_component(out[key], value)
            _dropped(ck, f"{where}.{key}", key, base[key], value, dropped, in_grid=False)
        elif key == "grid" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set_path(ck: "_Checker", where: str, target: dict[str, Any], dotted: str, value: Any,
              slots: set[str]) -> None:
    """Apply one grid value: ``algorithm`` or ``model.hidden`` or ``T``."""
    head, _, rest = dotted.partition(".")
    if rest:
        current = _as_component(target.get(head)) or {}
        current[rest] = value  # one level: a component parameter
        target[head] = current
    elif head in slots and head in target:
        base = target[head]
        target[head], dropped = _merge_component(base, value)
        _dropped(ck, f"{where}.grid.{head}", head, base, value, dropped, in_grid=True)
    else:
        target[head] = copy.deepcopy(value)


def _grid_label(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", "-".join(f"{k}{v}" for k, v in value.items())))
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def run_id(name: str, grid: dict[str, Any], seed: int, config: dict[str, Any]) -> str:
    """Readable and stable: name, grid values, seed, and a hash of the resolved config."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    parts = [_slug(name)] + [_slug(_grid_label(v)) for v in grid.values()] + [f"s{seed}", digest]
    return "-".join(parts)


# -- loading and validation ----------------------------------------------------
class _Checker:
    def __init__(self, path: Path, registry: Registry):
        self.path, self.registry, self.problems = path, registry, []
        self.errors = 0
        self.inherited: dict[str, list[str]] = {}  # problem at defaults.KEY -> the runs it fails in

    def err(self, where: str, message: str) -> None:
        self.errors += 1  # counted even when reported already: callers compare counts to see a failure
        text = f"{where}: {message}"
        if text not in self.problems:  # the same mistake seen at every grid point is one problem
            self.problems.append(text)

    def unknown_key(self, where: str, key: str, allowed: list[str], what: str) -> None:
        hint = close_match(key, allowed)
        msg = f"unknown key {key!r} for {what}"
        msg += f"; did you mean {hint!r}?" if hint else "."
        msg += f" Allowed: {', '.join(sorted(allowed)) or 'none'}"
        self.err(where, msg)

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
        table = _as_component(value)
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


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SuiteError(path, ["file not found"]) from None
    except IsADirectoryError:
        raise SuiteError(path, ["is a directory, not a suite file (give the path of a .toml file)"]) from None
    except PermissionError:
        raise SuiteError(path, ["cannot be read: permission denied"]) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(path, [f"not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at offset "
                                f"{exc.start}): a suite is a TOML file, which must be UTF-8"]) from None
    except RecursionError:
        raise SuiteError(path, ["nested too deeply to read (arrays or tables within thousands of "
                                "others); a suite needs a few levels at most"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(path, [f"not valid TOML: {exc}"]) from None


def load_suite(path: str | Path, registry: Registry, overrides: dict[str, Any] | None = None) -> Suite:
    """Read, validate and expand a suite. Raises :class:`SuiteError` listing every problem.

    ``overrides`` (``bench ... --set KEY=VALUE``) are written into every run as if the suite said
    them there (``epochs``, ``seeds``, ``model.hidden``, ``algorithm.lr``...), then validated
    like the file: they are part of the runs' configurations and ids."""
    path = Path(path)
    data = load_toml(path)
    ck = _Checker(path, registry)
    overrides = dict(overrides or {})
    for key in data:
        if key not in TOP_KEYS:
            ck.unknown_key(key, key, list(TOP_KEYS), "a suite")
    name = data.get("name", path.stem)
    description = data.get("description", "")
    for key, val in (("name", name), ("description", description)):
        if not isinstance(val, str):
            ck.err(key, f"expected str, got {val!r}")
    if isinstance(name, str) and not SAFE_NAME.match(name):
        where = "name" if "name" in data else f"name (the file's stem {name!r}, as no `name` is set)"
        ck.err(where, f"{name!r} cannot name the suite's results directory (results/<name>/): use "
               f"letters, digits and - _ . + only, starting with a letter or digit, e.g. name = "
               f"{(re.sub(r'^[^A-Za-z0-9]+', '', _slug(name)) or path.stem if SAFE_NAME.match(path.stem) else 'my-suite')!r}")
    defaults = data.get("defaults", {})
    raw_runs = data.get("runs", [])
    if not isinstance(defaults, dict):
        ck.err("defaults", "expected a table ([defaults])")
        defaults = {}
    if not isinstance(raw_runs, list) or not all(isinstance(r, dict) for r in raw_runs):
        ck.err("runs", "expected an array of tables ([[runs]])")
        raw_runs = []
    if not raw_runs and not ck.problems:
        ck.err("runs", "no runs: add at least one [[runs]] table")
    if "name" in defaults:
        ck.err("defaults.name", "a run name belongs in each [[runs]], not in [defaults]")

    runs: list[RunSpec] = []
    names_seen: set[str] = set()
    for i, raw in enumerate(raw_runs):
        label = raw.get("name")
        where = f"runs[{i}]" + (f" ({label})" if isinstance(label, str) else "")
        if not isinstance(label, str) or not label:
            ck.err(f"{where}.name", "missing: every run needs a name (its row label), e.g. name = \"P-1h\"")
            continue
        if label in names_seen:
            ck.err(f"{where}.name", f"duplicate run name {label!r}; names label rows and must be unique")
        names_seen.add(label)
        kind_name = raw.get("kind", defaults.get("kind"))
        try:
            slots = {sl.name for sl in registry.get("run_kind", kind_name).slots}
        except (ComponentError, KeyError, TypeError):
            slots = set()  # reported by _expand_run
        raw = _override(ck, where, raw, overrides)
        merged = _merge_run(ck, where, defaults, raw, slots)
        before = len(ck.problems)
        runs.extend(_expand_run(ck, where, merged))
        _blame_defaults(ck, before, where, raw, defaults)
        _blame_overrides(ck, before, where, overrides)

    _report_inherited(ck, len(raw_runs))
    ids = [r.id for r in runs]
    for dup in {x for x in ids if ids.count(x) > 1}:
        ck.err("runs", f"two runs resolve to the same configuration ({dup}); remove the duplicate")

    references = _check_references(ck, data.get("references", []))
    tables = _check_tables(ck, data.get("tables", {}))
    if runs and not ck.problems:  # (a run left out by another problem would only add noise here)
        _check_against_runs(ck, runs, references, tables)
    executor = ck.component("executor", "executor", data["executor"]) if "executor" in data else None
    trackers = check_trackers(ck, data.get("trackers", []), "trackers")
    if ck.problems:
        raise SuiteError(path, ck.problems)
    return Suite(path=path, name=name, description=description, runs=runs,
                 references=references, tables=tables, executor=executor, overrides=overrides,
                 trackers=trackers)


def check_trackers(ck: _Checker, raw: Any, where: str) -> list[dict[str, Any]]:
    """``trackers = ["tensorboard", { name = "mlflow", experiment = "x" }]``, validated."""
    if not isinstance(raw, list):
        ck.err(where, f"expected a list of trackers, got {raw!r}")
        return []
    found = [ck.component(f"{where}[{i}]", "tracker", value) for i, value in enumerate(raw)]
    return [t for t in found if t is not None]


def add_trackers(suite: Suite, registry: Registry, names: list[str]) -> None:
    """Trackers named on the command line (``--tracker NAME``), added to the suite's."""
    ck = _Checker(suite.path, registry)
    extra = check_trackers(ck, list(names), "--tracker")
    if ck.problems:
        raise SuiteError("command line and " + str(suite.path), [p.replace("--tracker[", "--tracker ").replace(
            "].name", "") for p in ck.problems])
    known = {t["name"] for t in suite.trackers}
    suite.trackers += [t for t in extra if t["name"] not in known]


def resolve_executor(suite: Suite, registry: Registry, name: str | None,
                     options: dict[str, Any]) -> dict[str, Any]:
    """The suite's ``[executor]``, overridden from the command line, validated."""
    base = dict(suite.executor["params"]) if suite.executor else {}
    base_name = suite.executor["name"] if suite.executor else "local"
    if name and name != base_name:
        base, base_name = {}, name  # another executor: the suite's settings were for the other one
    ck = _Checker(suite.path, registry)
    given = {k: v for k, v in base.items()}
    given.update(options)
    comp = ck.component("executor", "executor", {"name": base_name, **given})
    if ck.problems:
        raise SuiteError("command line and " + str(suite.path), ck.problems)
    return comp


def _override(ck: _Checker, where: str, raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's table with ``--set`` values written in (a dotted key sets a component parameter)."""
    out = copy.deepcopy(raw)
    grid = raw.get("grid") if isinstance(raw.get("grid"), dict) else {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head in ("name", "kind", "grid"):
            ck.err(f"--set {key}", f"a run's {head} cannot be overridden; edit the suite")
        elif key in grid or (head in grid and (not rest or any(isinstance(v, dict) and rest in v
                                                                 for v in grid[head]))):
            ck.err(f"--set {key}", f"run {raw.get('name')!r} varies {key!r} in its grid; edit the suite")
        elif rest:
            table = _as_component(out.get(head)) or {}
            table[rest] = copy.deepcopy(value)
            out[head] = table
        else:
            out[head] = copy.deepcopy(value)
    return out


def _blame_overrides(ck: _Checker, start: int, where: str, overrides: dict[str, Any]) -> None:
    """A problem with a value given by ``--set`` is reported at ``--set KEY``, once."""
    for i in range(start, len(ck.problems)):
        location, sep, message = ck.problems[i].partition(": ")
        for key in overrides:
            if location in (f"{where}.{key}", f"defaults.{key}"):
                ck.problems[i] = f"--set {key}{sep}{message}"
    ck.problems[:] = list(dict.fromkeys(ck.problems))


def _from_defaults(path: list[str], raw: dict[str, Any], defaults: dict[str, Any]) -> bool:
    """True when the value at ``path`` comes from [defaults], not from the run itself."""
    def has(table: Any, keys: list[str]) -> bool:
        for k in keys:
            if not isinstance(table, dict) or k not in table:
                return False
            table = table[k]
        return True

    return has(defaults, path) and not has(raw, path)


def _blame_defaults(ck: _Checker, start: int, where: str, raw: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A bad key inherited from [defaults] is reported once, at ``defaults.…``, naming the runs it
    fails in (collected in ``ck.inherited``, written out by :func:`_report_inherited`)."""
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


def _report_inherited(ck: _Checker, total: int) -> None:
    """Each inherited problem once; the runs it fails in named unless it fails in all of them."""
    for problem, runs in ck.inherited.items():
        if len(runs) < total:
            problem += f" (in run{'s' if len(runs) > 1 else ''} {', '.join(repr(r) for r in runs)})"
        ck.problems.append(problem)


def _expand_run(ck: _Checker, where: str, merged: dict[str, Any]) -> list[RunSpec]:
    kind_name = merged.get("kind")
    if not isinstance(kind_name, str):
        ck.err(f"{where}.kind", "missing: set `kind` in the run or in [defaults] "
               f"(known: {', '.join(ck.registry.names('run_kind')) or 'none'})")
        return []
    try:
        kind = ck.registry.get("run_kind", kind_name)
    except ComponentError as exc:
        ck.err(f"{where}.kind", str(exc))
        return []

    grid = merged.pop("grid", {}) or {}
    if not isinstance(grid, dict):
        ck.err(f"{where}.grid", f"expected a table of lists, got {grid!r}")
        grid = {}
    axes: list[tuple[str, list[Any]]] = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            ck.err(f"{where}.grid.{key}", f"expected a non-empty list of values, got {values!r}")
            continue
        head = key.split(".")[0]
        if head in ("name", "kind", "grid", "seeds", "batch_seeds", "batch_algorithms", "fast"):
            ck.err(f"{where}.grid.{key}", f"{head!r} cannot vary in a grid"
                   + ("; use `seeds = [...]`" if head == "seeds" else ""))
            continue
        axes.append((key, values))

    models: dict[str, Any] = {}  # model configuration -> the model built without memory, or None
    seeds = merged.get("seeds", RUN_KEYS["seeds"].default)
    if not check_type(seeds, list[int]) or not seeds:
        ck.err(f"{where}.seeds", f"expected a non-empty list[int], got {seeds!r}")
        seeds = []
    out: list[RunSpec] = []
    for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        cfg = copy.deepcopy(merged)
        point = {}
        for (key, _), value in zip(axes, combo):
            _set_path(ck, where, cfg, key, value, {sl.name for sl in kind.slots})
            point[key] = value
        spec = _resolve(ck, where, kind, cfg, point)
        if spec is None:
            continue
        try:
            kind.build(spec.params)  # the run kind's own checks (e.g. 0 < K <= T) at validation time
        except (ValueError, TypeError) as exc:
            varied = {k: v for k, v in point.items() if k in spec.params}  # the grid point, if it matters
            ck.err(where, f"{exc}" + (f" (grid point {varied})" if varied else ""))
            continue
        if not _check_cheap_components(ck, where, kind, spec) or not _check_model_fits(ck, where, spec, models):
            continue
        for seed in seeds:
            run = copy.deepcopy(spec)
            run.seed = seed
            run.id = run_id(run.name, point, seed, {**run.config(), "id": None})
            out.append(run)
    return out


#: Families whose components are cheap to build (no weights, no data): built at validation so that
#: their own checks (e.g. EP's β ≠ 0) fail there, not when the run starts.
CHEAP_FAMILIES = ("algorithm", "metric")


def _check_cheap_components(ck: _Checker, where: str, kind: Component, spec: RunSpec) -> bool:
    ok = True
    for slot in kind.slots:
        if slot.family not in CHEAP_FAMILIES or slot.name not in spec.slots:
            continue
        value = spec.slots[slot.name]
        for c in value if isinstance(value, list) else [value]:
            try:
                ck.registry.get(slot.family, c["name"]).build(c["params"])
            except (ValueError, TypeError) as exc:
                in_grid = any(k.split(".")[0] == slot.name for k in spec.grid)
                ck.err(f"{where}.{'grid.' if in_grid else ''}{slot.name}", f"{slot.family} {c['name']!r}: {exc}"
                       + (f" (grid point {spec.grid})" if in_grid else ""))
                ok = False
    return ok


def _meta_model(ck: _Checker, spec: RunSpec, cache: dict[str, Any]) -> Any:
    """The run's model built on torch's ``meta`` device (shapes, no memory, no arithmetic), or None
    when it cannot be (its own errors are reported when the run starts)."""
    import torch

    slot = spec.slots["model"]
    key = json.dumps(slot, sort_keys=True, default=str)
    if key not in cache:
        try:
            with torch.device("meta"):
                cache[key] = ck.registry.get("model", slot["name"]).build(slot["params"])
        except Exception:  # noqa: BLE001 - any failure here is the run's to report
            cache[key] = None
    return cache[key]


def _check_model_fits(ck: _Checker, where: str, spec: RunSpec, cache: dict[str, Any]) -> bool:
    """The learning rates, the dataset's classes and input size fit the model: found before a run
    starts rather than as torch's "mat1 and mat2 shapes" after it (or never, for the classes)."""
    if "model" not in spec.slots:
        return True
    model = _meta_model(ck, spec, cache)
    if model is None:
        return True
    ok = True
    algorithm = spec.slots.get("algorithm")
    lr = algorithm["params"].get("lr") if isinstance(algorithm, dict) else None
    if lr is not None and hasattr(model, "param_groups"):
        from .model import param_group_names

        names = param_group_names(model)
        if len(lr) != len(names):
            ck.err(f"{where}.algorithm.lr", f"{len(lr)} learning rate(s) for the {len(names)} parameter groups of "
                   f"model {spec.slots['model']['name']!r} ({', '.join(names)}, input → output): give one per group")
            ok = False
    if "dataset" in spec.slots:
        d = spec.slots["dataset"]
        try:
            data = ck.registry.get("dataset", d["name"]).build(d["params"])  # reads nothing until load()
        except (ValueError, TypeError) as exc:
            ck.err(f"{where}.dataset", f"dataset {d['name']!r}: {exc}")
            return False
        classes, shape = getattr(data, "num_classes", None), getattr(data, "input_shape", None)
        try:
            out = model.num_classes
        except (NotImplementedError, AttributeError):
            out = None
        if isinstance(classes, int) and isinstance(out, int) and classes != out:
            ck.err(f"{where}.model", f"model {spec.slots['model']['name']!r} has {out} output units but dataset "
                   f"{d['name']!r} has {classes} classes: set the model's output size to {classes}")
            ok = False
        want = getattr(model, "input_shape", None) or (getattr(model, "input_size", None),)
        if shape and all(isinstance(v, int) for v in want) and math.prod(shape) != math.prod(want):
            ck.err(f"{where}.model", f"model {spec.slots['model']['name']!r} takes inputs of {math.prod(want)} "
                   f"values but dataset {d['name']!r} gives {math.prod(shape)} ({'x'.join(map(str, shape))}): set "
                   "the model's input size to match")
            ok = False
    return ok


def _resolve(ck: _Checker, where: str, kind: Component, cfg: dict[str, Any],
             point: dict[str, Any]) -> RunSpec | None:
    before = ck.errors
    slot_names = [s.name for s in kind.slots]
    own = {}
    slots: dict[str, Any] = {}
    allowed = list(RUN_KEYS) + slot_names + [p.name for p in kind.params]
    for key, value in cfg.items():
        if key in RUN_KEYS:
            continue
        if key in slot_names:
            continue
        if kind.param(key) is not None:
            own[key] = value
            continue
        ck.unknown_key(f"{where}.{key}", key, allowed, f"a run of kind {kind.name!r}")
    for key in ("device", "dtype", "batch_seeds", "batch_algorithms", "fast"):
        if key in cfg:
            ck.check_params(where, {key: cfg[key]}, [RUN_KEYS[key]], "a run")
    for slot in kind.slots:
        value = cfg.get(slot.name, None if slot.required else copy.deepcopy(slot.default))
        if value is None:
            ck.err(f"{where}.{slot.name}", f"missing: a run of kind {kind.name!r} needs a {slot.family}"
                   f" here (known: {', '.join(ck.registry.names(slot.family))})")
            continue
        if slot.many:
            items = value if isinstance(value, list) else [value]
            resolved = [ck.component(f"{where}.{slot.name}[{j}]", slot.family, v) for j, v in enumerate(items)]
            slots[slot.name] = [r for r in resolved if r is not None]
        else:
            if isinstance(value, list):
                ck.err(f"{where}.{slot.name}", f"expected one {slot.family}, got a list")
                continue
            resolved = ck.component(f"{where}.{slot.name}", slot.family, value)
            if resolved is not None:
                slots[slot.name] = resolved
    params = ck.check_params(where, own, kind.params, f"run kind {kind.name!r}")
    if ck.errors > before:
        return None
    return RunSpec(id="", name=cfg["name"], kind=kind.name, seed=0,
                   device=cfg.get("device", RUN_KEYS["device"].default),
                   dtype=cfg.get("dtype", RUN_KEYS["dtype"].default),
                   params=params, slots=slots, grid=point,
                   batch_seeds=cfg.get("batch_seeds", False) is True,
                   batch_algorithms=cfg.get("batch_algorithms", False) is True,
                   fast=cfg.get("fast", True) is not False)


def _check_references(ck: _Checker, raw: Any) -> list[Reference]:
    if not isinstance(raw, list):
        ck.err("references", "expected an array of tables ([[references]])")
        return []
    out = []
    for i, ref in enumerate(raw):
        where = f"references[{i}]"
        if not isinstance(ref, dict):
            ck.err(where, "expected a table")
            continue
        for key in ref:
            if key not in REFERENCE_KEYS:
                ck.unknown_key(f"{where}.{key}", key, list(REFERENCE_KEYS), "a reference")
        source, columns, rows = ref.get("source"), ref.get("columns"), ref.get("rows")
        if not isinstance(source, str) or not source:
            ck.err(f"{where}.source", "missing: say where the numbers come from (paper, table)")
        if not check_type(columns, list[str]) or not columns:
            ck.err(f"{where}.columns", "expected a list of column names (run columns, then metrics)")
            continue
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            ck.err(f"{where}.rows", f"expected a list of rows of {len(columns)} values each ({', '.join(columns)})")
            continue
        out.append(Reference(source=source, columns=columns, rows=rows))
    return out


def _check_tables(ck: _Checker, raw: Any) -> dict[str, TableSpec]:
    if not isinstance(raw, dict):
        ck.err("tables", "expected a table of tables ([tables.NAME])")
        return {}
    out = {}
    for name, spec in raw.items():
        where = f"tables.{name}"
        if not isinstance(spec, dict):
            ck.err(where, "expected a table")
            continue
        values = ck.check_params(where, spec, list(TABLE_KEYS.values()), "a table")
        if len(values) == len(TABLE_KEYS):
            out[name] = TableSpec(name=name, **values)
    return out


def _matches(attrs: dict[str, Any], key: str, value: Any) -> bool:
    allowed = value if isinstance(value, list) else [value]
    return key in attrs and any(str(attrs[key]) == str(v) for v in allowed)


def _check_against_runs(ck: _Checker, runs: list[RunSpec], references: list[Reference],
                        tables: dict[str, TableSpec]) -> None:
    """What a table selects or a reference names must exist among the runs: a typo would give an
    empty table or a silently dropped reference. (Columns that only results have, such as a GDU
    run's ``layer``, are checked when the table is made.)"""
    attrs = [r.attributes() for r in runs]
    run_cols = set().union(*attrs)
    for name, spec in tables.items():
        for key, value in spec.where.items():
            if key in run_cols and not any(_matches(a, key, value) for a in attrs):
                known = sorted({str(a[key]) for a in attrs if key in a})
                hint = close_match(str(value), known)
                ck.err(f"tables.{name}.where.{key}", f"{value!r} matches no run (its values: {', '.join(known)})"
                       + (f"; did you mean {hint!r}?" if hint else ""))
    for i, ref in enumerate(references):
        for j, row in enumerate(ref.rows):
            keys = {c: v for c, v in zip(ref.columns, row) if c in run_cols}
            if keys and not any(all(_matches(a, c, v) for c, v in keys.items()) for a in attrs):
                near = {c: close_match(str(v), sorted({str(a[c]) for a in attrs if c in a}))
                        for c, v in keys.items()}
                hint = ", ".join(f"{c} = {h!r}" for c, h in near.items() if h and h != str(keys[c]))
                ck.err(f"references[{i}].rows[{j}]", f"{keys} matches no run of the suite, so these "
                       "reference values would appear nowhere" + (f"; did you mean {hint}?" if hint else ""))


def describe_params(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": p.describe_type(),
             "default": None if p.required else p.default, "required": p.required, "doc": p.doc}
            for p in params]


__all__ = ["Suite", "RunSpec", "TableSpec", "Reference", "SuiteError", "load_suite", "type_name"]
