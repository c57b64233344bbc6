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

Merging (:mod:`harness.suite.merge`): a component table (``model``, ``algorithm``, ...) merges key by key
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
import itertools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.api.components import Component, ComponentError, Registry, check_type, close_match, type_name
from harness.suite.checker import Checker, component_table, unknown_key_message
from harness.suite.checks import (
    check_against_runs,
    check_cheap_components,
    check_model_fits,
    check_references,
    check_tables,
    check_trackers,
)
from harness.suite.merge import (
    blame_defaults,
    blame_overrides,
    merge_run,
    override,
    override_problem,
    report_inherited,
    set_path,
)
from harness.suite.spec import (
    RESOURCE_KEYS,
    RUN_KEYS,
    SAFE_NAME,
    SWITCHES,
    TOP_KEYS,
    Reference,
    RunSpec,
    Suite,
    SuiteError,
    TableSpec,
    describe_params,
    run_id,
    slug,
)


def _not_found(path: Path) -> str:
    """"file not found", with the closest suite file (a misspelling, or a name given without its
    folder ``suites/``), else the suite files that are there."""
    if not path.parent.is_dir():
        return f"file not found (there is no folder {path.parent})"
    folders = [path.parent] + ([Path("suites")] if path.parent == Path(".") and Path("suites").is_dir() else [])
    found = [str(f) for folder in folders for f in sorted(folder.glob("*.toml"))]
    stems: dict[str, str] = {}
    for f in found:  # matched by name alone: the shared "suites/" and ".toml" would make anything look close
        stems.setdefault(Path(f).stem, f)
    hint = close_match(path.stem, stems)
    if hint:
        return f"file not found; did you mean {stems[hint]}?"
    return "file not found" + (f" (suite files there: {', '.join(found)})" if found else "")


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SuiteError(path, [_not_found(Path(path))]) from None
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


#: a run name's length at most: its slug prefixes result directory names (255 bytes on most file systems)
MAX_NAME = 100


def load_suite(path: str | Path, registry: Registry, overrides: dict[str, Any] | None = None) -> Suite:
    """Read, validate and expand a suite. Raises :class:`SuiteError` listing every problem.

    ``overrides`` (``bench ... --set KEY=VALUE``) are written into every run as if the suite said
    them there (``epochs``, ``seeds``, ``model.hidden``, ``algorithm.lr``...), then validated
    like the file: they are part of the runs' configurations and ids."""
    path = Path(path)
    data = load_toml(path)
    ck = Checker(path, registry)
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
        example = (re.sub(r"^[^A-Za-z0-9]+", "", slug(name)) or path.stem if SAFE_NAME.match(path.stem)
                   else "my-suite")
        ck.err(where, f"{name!r} cannot name the suite's results directory (results/<name>/): use "
               f"letters, digits and - _ . + only, starting with a letter or digit, e.g. name = {example!r}")
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
    applied: dict[str, set[str]] = {}  # run id -> the --set keys written into it
    not_applied: dict[str, str] = {}  # --set key -> why some run does not take it
    taken: set[str] = set()  # --set keys that some run has
    for i, raw in enumerate(raw_runs):
        label = raw.get("name")
        where = f"runs[{i}]" + (f" ({label})" if isinstance(label, str) else "")
        if not isinstance(label, str) or not label:
            ck.err(f"{where}.name", "missing: every run needs a name (its row label), e.g. name = \"P-1h\"")
            continue
        if not label.isprintable() or len(label) > MAX_NAME:
            shown = ascii(label[:60]) + ("..." if len(label) > 60 else "")
            ck.err(f"runs[{i}].name", f"{shown}: a run name labels table rows and names result directories: "
                   f"printable characters only (no newline, tab or control character), at most {MAX_NAME}")
            continue
        if label in names_seen:
            ck.err(f"{where}.name", f"duplicate run name {label!r}; names label rows and must be unique")
        names_seen.add(label)
        kind_name = raw.get("kind", defaults.get("kind"))
        try:
            kind = registry.get("run_kind", kind_name)
        except (ComponentError, KeyError, TypeError):
            kind = None  # reported by _expand_run
        refused = _refused_overrides(ck, where, defaults, raw, kind, overrides) if kind is not None else {}
        for key, problem in refused.items():  # kept aside: an error only if no run (of those selected) has the key
            not_applied.setdefault(key, problem)
        mine = {k: v for k, v in overrides.items() if k not in refused}  # what this run has is written into it
        if kind is not None:  # (an unknown kind refuses nothing: its runs say nothing of the key)
            taken |= set(mine)  # (even where its value is then refused: the key itself is right)
        slots = {sl.name for sl in kind.slots} if kind is not None else set()
        expanded = _resolve_run(ck, where, defaults, raw, slots, mine)
        for run in expanded:
            applied[run.id] = set(mine)
        runs.extend(expanded)

    report_inherited(ck, len(raw_runs))
    for key, problem in not_applied.items():
        if key not in taken:
            ck.problems.append(problem)  # no run of the suite has it: a misspelling, say so
    ids = [r.id for r in runs]
    for dup in {x for x in ids if ids.count(x) > 1}:
        ck.err("runs", f"two runs resolve to the same configuration ({dup}); remove the duplicate")

    references = check_references(ck, data.get("references", []))
    tables = check_tables(ck, data.get("tables", {}))
    if runs and not ck.problems:  # (a run left out by another problem would only add noise here)
        check_against_runs(ck, runs, references, tables)
    executor = ck.component("executor", "executor", data["executor"]) if "executor" in data else None
    trackers = check_trackers(ck, data.get("trackers", []), "trackers")
    if ck.problems:
        raise SuiteError(path, ck.problems)
    return Suite(path=path, name=name, description=description, runs=runs,
                 references=references, tables=tables, executor=executor, overrides=overrides,
                 trackers=trackers, applied=applied, not_applied=not_applied)


def _resolve_run(ck: Checker, where: str, defaults: dict[str, Any], raw: dict[str, Any], slots: set[str],
                 overrides: dict[str, Any]) -> list[RunSpec]:
    """One [[runs]] table with ``overrides`` written in, merged over [defaults] and expanded."""
    raw = override(ck, where, raw, overrides)
    merged = merge_run(ck, where, defaults, raw, slots)
    before = len(ck.problems)
    expanded = _expand_run(ck, where, merged)
    blame_defaults(ck, before, where, raw, defaults)
    blame_overrides(ck, before, where, raw.get("name"), overrides)
    return expanded


def _refused_overrides(ck: Checker, where: str, defaults: dict[str, Any], raw: dict[str, Any], kind: Component,
                       overrides: dict[str, Any]) -> dict[str, str]:
    """The ``--set`` keys that a [[runs]] table of ``kind`` does not have, each with the problem that
    names it (as validation would say it of the key written into the run): a key that is no run key,
    slot or parameter of the kind, a resource that is none, or a dotted key that the component of its
    slot does not declare at some grid point (``algorithm.beta`` where the grid also has bptt). Decided
    on the run merged with every override written in; a key that cannot be written into the run at all
    (its name, a key its grid varies) is not refused here: validation says why."""
    scratch = Checker(ck.path, ck.registry)  # its problems are the run's own, reported when it resolves
    slots = {sl.name for sl in kind.slots}
    merged = merge_run(scratch, where, defaults, override(scratch, where, raw, overrides), slots)
    axes = _grid_axes(scratch, where, merged.pop("grid", {}) or {})
    points = [cfg for cfg, _ in _grid_points(scratch, where, merged, axes, slots)]
    refused: dict[str, str] = {}
    for key in overrides:
        if override_problem(raw, key) is None:
            problem = next((p for cfg in points if (p := _refusal(ck.registry, kind, cfg, key)) is not None), None)
            if problem is not None:
                refused[key] = f"--set {key}: {problem}"
    return refused


def _refusal(registry: Registry, kind: Component, cfg: dict[str, Any], key: str) -> str | None:
    """Why a run of ``kind`` resolved to ``cfg`` (one grid point, ``--set`` values written in) does
    not have ``key``, in :func:`_resolve`'s and :meth:`Checker.component`'s words; None where it has it."""
    head, _, rest = key.partition(".")
    if head in RUN_KEYS:
        if head == "resources" and rest and rest not in RESOURCE_KEYS:
            return unknown_key_message(rest, list(RESOURCE_KEYS), "a run's resources")
        return None  # (a dotted key into another run key is a value of the wrong type: reported as such)
    slot = kind.slot(head)
    if slot is None:
        return None if kind.param(head) is not None else unknown_key_message(
            head, _run_keys(kind), f"a run of kind {kind.name!r}")
    if not rest or rest == "name" or slot.many:
        return None  # a component, or its name; the items of a slot of several are checked where they are
    table = component_table(cfg.get(head))
    name = table.get("name") if table is not None else None
    try:
        component = registry.get(slot.family, name) if isinstance(name, str) else None
    except ComponentError:
        component = None
    if component is None:
        return None  # no component to ask (validation says so)
    declared = [p.name for p in component.params]
    return None if rest in declared else unknown_key_message(rest, declared, f"{slot.family} {name!r}")


def _run_keys(kind: Component) -> list[str]:
    """The keys a run of ``kind`` takes: the run keys, its slots and its parameters."""
    return list(RUN_KEYS) + [s.name for s in kind.slots] + [p.name for p in kind.params]


def add_trackers(suite: Suite, registry: Registry, names: list[str]) -> None:
    """Trackers named on the command line (``--tracker NAME``), added to the suite's."""
    ck = Checker(suite.path, registry)
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
    ck = Checker(suite.path, registry)
    given = {k: v for k, v in base.items()}
    given.update(options)
    comp = ck.component("executor", "executor", {"name": base_name, **given})
    if ck.problems:
        raise SuiteError("command line and " + str(suite.path), ck.problems)
    assert comp is not None  # None only with a problem reported, raised above
    return comp


def _expand_run(ck: Checker, where: str, merged: dict[str, Any]) -> list[RunSpec]:
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

    axes = _grid_axes(ck, where, merged.pop("grid", {}) or {})
    models: dict[str, Any] = {}  # model configuration -> the model built without memory, or None
    seeds = merged.get("seeds", RUN_KEYS["seeds"].default)
    if not check_type(seeds, list[int]) or not seeds:
        ck.err(f"{where}.seeds", f"expected a non-empty list[int], got {seeds!r}")
        seeds = []
    elif (problem := RUN_KEYS["seeds"].check_value(seeds)) is not None:
        ck.err(f"{where}.seeds", problem)
        seeds = []
    out: list[RunSpec] = []
    for cfg, point in _grid_points(ck, where, merged, axes, {sl.name for sl in kind.slots}):
        spec = _resolve(ck, where, kind, cfg, point)
        if spec is None:
            continue
        try:
            kind.build(spec.params)  # the run kind's own checks (e.g. 0 < K <= T) at validation time
        except (ValueError, TypeError) as exc:
            varied = {k: v for k, v in point.items() if k in spec.params}  # the grid point, if it matters
            ck.err(where, f"{exc}" + (f" (grid point {varied})" if varied else ""))
            continue
        if not check_cheap_components(ck, where, kind, spec) or not check_model_fits(ck, where, spec, models):
            continue
        for seed in seeds:
            run = copy.deepcopy(spec)
            run.seed = seed
            run.id = run_id(run.name, point, seed, identity_config(ck.registry, kind, run))
            out.append(run)
    return out


def _grid_axes(ck: Checker, where: str, grid: Any) -> list[tuple[str, list[Any]]]:
    """A run's ``grid`` table as (key, values) axes; an axis that cannot be is reported and left out."""
    if not isinstance(grid, dict):
        ck.err(f"{where}.grid", f"expected a table of lists, got {grid!r}")
        return []
    axes: list[tuple[str, list[Any]]] = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            ck.err(f"{where}.grid.{key}", f"expected a non-empty list of values, got {values!r}")
            continue
        head = key.split(".")[0]
        if head in ("name", "kind", "grid", "seeds", *(p.name for p in SWITCHES)):
            ck.err(f"{where}.grid.{key}", f"{head!r} cannot vary in a grid"
                   + ("; use `seeds = [...]`" if head == "seeds" else ""))
            continue
        axes.append((key, values))
    return axes


def _grid_points(ck: Checker, where: str, merged: dict[str, Any], axes: list[tuple[str, list[Any]]],
                 slots: set[str]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each combination of the grid's values: the run's table with them written in, and the values."""
    for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        cfg = copy.deepcopy(merged)
        point = {}
        for (key, _), value in zip(axes, combo):
            set_path(ck, where, cfg, key, value, slots)
            point[key] = value
        yield cfg, point


def identity_config(registry: Registry, kind: Component, run: RunSpec) -> dict[str, Any]:
    """What a run's id hashes: its resolved configuration, less the parameters declared
    ``quiet_default`` that sit at their default (see :class:`harness.api.components.Param`)."""
    config = copy.deepcopy({**run.config(), "id": None})

    def strip(params: dict[str, Any], declared) -> None:
        for p in declared:
            if p.quiet_default and p.name in params and params[p.name] == p.default:
                del params[p.name]

    strip(config["params"], kind.params)
    for slot in kind.slots:
        value = config["slots"].get(slot.name)
        for item in value if isinstance(value, list) else [value] if value else []:
            try:
                component = registry.get(slot.family, item["name"])
            except LookupError:
                continue
            strip(item["params"], component.params)
    return config


def _resolve(ck: Checker, where: str, kind: Component, cfg: dict[str, Any],
             point: dict[str, Any]) -> RunSpec | None:
    before = ck.errors
    slot_names = [s.name for s in kind.slots]
    own = {}
    slots: dict[str, Any] = {}
    allowed = _run_keys(kind)
    for key, value in cfg.items():
        if key in RUN_KEYS:
            continue
        if key in slot_names:
            continue
        if kind.param(key) is not None:
            own[key] = value
            continue
        ck.unknown_key(f"{where}.{key}", key, allowed, f"a run of kind {kind.name!r}")
    for key in ("device", "dtype", "autocast"):
        if key in cfg:
            ck.check_params(where, {key: cfg[key]}, [RUN_KEYS[key]], "a run")
    if cfg.get("autocast", "off") != "off" and cfg.get("dtype", RUN_KEYS["dtype"].default) != "float32":
        ck.err(f"{where}.autocast", f"autocast = {cfg['autocast']!r} applies to float32 runs (torch.autocast "
               f"leaves {cfg.get('dtype')} tensors as they are): set dtype = \"float32\" or autocast = \"off\"")
    switches = ck.check_params(where, {p.name: cfg[p.name] for p in SWITCHES if p.name in cfg}, SWITCHES, "a run")
    resources: dict[str, Any] = {}
    if "resources" in cfg:
        if isinstance(cfg["resources"], dict):
            checked = ck.check_params(f"{where}.resources", cfg["resources"], list(RESOURCE_KEYS.values()),
                                      "a run's resources")
            resources = {k: v for k, v in checked.items() if k in cfg["resources"]}
        else:
            ck.err(f"{where}.resources", "expected a table, e.g. resources = { partition = \"gpu\", gpus = 1, "
                   "timeout_min = 600 }")
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
            table = ck.component(f"{where}.{slot.name}", slot.family, value)
            if table is not None:
                slots[slot.name] = table
    params = ck.check_params(where, own, kind.params, f"run kind {kind.name!r}")
    if ck.errors > before:
        return None
    return RunSpec(id="", name=cfg["name"], kind=kind.name, seed=0,
                   device=cfg.get("device", RUN_KEYS["device"].default),
                   dtype=cfg.get("dtype", RUN_KEYS["dtype"].default),
                   params=params, slots=slots, grid=point, switches={p.name: switches[p.name] for p in SWITCHES},
                   resources=resources, autocast=cfg.get("autocast", RUN_KEYS["autocast"].default))


__all__ = ["Suite", "RunSpec", "TableSpec", "Reference", "SuiteError", "RUN_KEYS", "load_suite", "describe_params",
           "resolve_executor", "add_trackers", "type_name", "slug"]
