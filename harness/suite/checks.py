"""Validation of a suite against the installed components, before anything runs.

:class:`Checker` collects every problem with the key path at fault; the checks here cover
parameters (types, choices, bounds), components that are cheap to build (algorithms, metrics:
their own checks), each run's model against its learning rates and dataset (built on torch's
``meta`` device: shapes without memory), and the tables and references against the runs.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from harness.api.components import Component, ComponentError, check_type, close_match
from harness.api.run_kind import declared
from harness.suite.checker import Checker
from harness.suite.spec import REFERENCE_KEYS, TABLE_KEYS, Reference, RunSpec, TableSpec


def check_trackers(ck: Checker, raw: Any, where: str) -> list[dict[str, Any]]:
    """``trackers = ["tensorboard", { name = "mlflow", experiment = "x" }]``, validated."""
    if not isinstance(raw, list):
        ck.err(where, f"expected a list of trackers, got {raw!r}")
        return []
    found = [ck.component(f"{where}[{i}]", "tracker", value) for i, value in enumerate(raw)]
    for i, tracker in enumerate(found):  # built once here, so that its own checks (a path) fail now
        if tracker is not None:
            try:
                ck.registry.get("tracker", tracker["name"]).build(tracker["params"])
            except ValueError as exc:
                ck.err(f"{where}[{i}]", f"tracker {tracker['name']!r}: {exc}")
            except ImportError:
                pass  # its library is missing: the run warns and goes on without it (README)
    return [t for t in found if t is not None]


#: Families whose components are cheap to build (no weights, no data): built at validation so that
#: their own checks (e.g. EP's β ≠ 0) fail there, not when the run starts.
CHEAP_FAMILIES = ("algorithm", "metric")


def check_cheap_components(ck: Checker, where: str, kind: Component, spec: RunSpec) -> bool:
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


def _meta_model(ck: Checker, spec: RunSpec, cache: dict[str, Any]) -> Any:
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


def check_model_fits(ck: Checker, where: str, spec: RunSpec, cache: dict[str, Any]) -> bool:
    """The learning rates, the dataset's classes and input size fit the model: found before a run
    starts rather than as torch's "mat1 and mat2 shapes" after it (or never, for the classes)."""
    if "model" not in spec.slots:
        return True
    model = _meta_model(ck, spec, cache)
    if model is None:
        return True
    from harness.api.algorithm import capability as algorithm_capability  # torch, which _meta_model imported
    from harness.api.dataset import capability as dataset_capability
    from harness.api.model import capability as model_capability

    ok = True
    algorithm = spec.slots.get("algorithm")
    lr = algorithm["params"].get("lr") if isinstance(algorithm, dict) else None
    if lr is not None and hasattr(model, "param_groups"):  # a required member: a model that lacks it fails at its run
        from harness.api.model import param_group_names

        names = param_group_names(model)
        if len(lr) != len(names):
            ck.err(f"{where}.algorithm.lr", f"{len(lr)} learning rate(s) for the {len(names)} parameter groups of "
                   f"model {spec.slots['model']['name']!r} ({', '.join(names)}, input → output): give one per group")
            ok = False
    if isinstance(algorithm, dict):
        try:  # an algorithm that cannot train this model says so now (e.g. holomorphic EP and a clip)
            check = algorithm_capability(ck.registry.get("algorithm", algorithm["name"]).build(algorithm["params"]),
                                         "check_model")
            if check is not None:
                check(model)
        except ValueError as exc:
            ck.err(f"{where}.algorithm", f"algorithm {algorithm['name']!r} with model {spec.slots['model']['name']!r}: "
                   f"{exc}")
            ok = False
        except Exception:  # noqa: BLE001 - anything else is the algorithm's own error, reported elsewhere
            pass
    if "dataset" in spec.slots:
        d = spec.slots["dataset"]
        try:
            data = ck.registry.get("dataset", d["name"]).build(d["params"])  # reads nothing until load()
        except (ValueError, TypeError) as exc:
            ck.err(f"{where}.dataset", f"dataset {d['name']!r}: {exc}")
            return False
        classes, shape = dataset_capability(data, "num_classes"), dataset_capability(data, "input_shape")
        try:
            out = model.num_classes
        except (NotImplementedError, AttributeError):
            out = None
        if isinstance(classes, int) and isinstance(out, int) and classes != out:
            ck.err(f"{where}.model", f"model {spec.slots['model']['name']!r} has {out} output units but dataset "
                   f"{d['name']!r} has {classes} classes: set the model's output size to {classes}")
            ok = False
        want = model_capability(model, "input_shape") or (model_capability(model, "input_size") or None,)
        if shape and all(isinstance(v, int) for v in want) and math.prod(shape) != math.prod(want):
            ck.err(f"{where}.model", f"model {spec.slots['model']['name']!r} takes inputs of {math.prod(want)} "
                   f"values but dataset {d['name']!r} gives {math.prod(shape)} ({'x'.join(map(str, shape))}): set "
                   "the model's input size to match")
            ok = False
    return ok


def check_references(ck: Checker, raw: Any) -> list[Reference]:
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
            source = ""  # (the suite is refused: this reference is never used)
        if not check_type(columns, list[str]) or not columns:
            ck.err(f"{where}.columns", "expected a list of column names (run columns, then metrics)")
            continue
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            ck.err(f"{where}.rows", f"expected a list of rows of {len(columns)} values each ({', '.join(columns)})")
            continue
        checked, note = ref.get("checked", True), ref.get("note", "")
        if not isinstance(checked, bool):
            ck.err(f"{where}.checked", "expected true or false (false: the values were transcribed and not "
                   "checked against the source; tables say so under them)")
            checked = True
        if not isinstance(note, str):
            ck.err(f"{where}.note", "expected a string")
            note = ""
        out.append(Reference(source=source, columns=columns, rows=rows, checked=checked, note=note))
    return out


def check_tables(ck: Checker, raw: Any) -> dict[str, TableSpec]:
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
        if not _check_format(ck, where, values):
            values.pop("format", None)  # (the suite is refused: this table is never made)
        if values.get("epoch") is not None and values.get("at_lowest") is not None:
            ck.err(f"{where}.at_lowest", "a table takes its values at one epoch (`epoch`) or at each run's "
                   "lowest (`at_lowest`), not both: remove one")
        elif len(values) == len(TABLE_KEYS):
            out[name] = TableSpec(name=name, **values)
    return out


#: What a table's format spec may say: the precision and the type (and "z", "#", a thousands
#: separator). The table aligns its columns and writes a difference's sign itself, so fill, align,
#: width and sign would only garble its cells ("+    0.50").
FORMAT_SPEC = re.compile(r"z?#?[,_]?(?:\.\d+)?[eEfFgG%]?")


def _check_format(ck: Checker, where: str, values: dict[str, Any]) -> bool:
    """Each format spec must be one a table can write every number with (a typo such as ".2z" would
    otherwise stop ``bench table`` after the runs), and a per-metric format must name metrics the
    table shows."""
    fmt, ok = values.get("format"), True
    for metric, spec in (fmt.items() if isinstance(fmt, dict) else [("", fmt)] if fmt is not None else []):
        key = f"{where}.format" + (f".{metric}" if metric else "")
        if not isinstance(spec, str) or not FORMAT_SPEC.fullmatch(spec):
            ck.err(key, f"{spec!r} is not a format a table can use: write the precision and the type only, e.g. "
                   "\".2f\" (two decimals), \".3g\" (three significant digits) or \".1e\"; the table aligns "
                   "its columns and gives a difference its sign")
            ok = False
    shown = [*(values.get("metrics") or []), *(["epoch"] if values.get("at_lowest") else [])]
    if isinstance(fmt, dict) and values.get("metrics"):  # (all metrics: checked against the runs' kinds)
        for metric in fmt:
            if metric not in shown:
                hint = close_match(str(metric), shown)
                ck.err(f"{where}.format.{metric}", f"formats {metric!r}, which is not among the table's metrics ("
                       + ", ".join(shown) + ")" + (f"; did you mean {hint!r}?" if hint else ""))
                ok = False
    return ok


def _matches(attrs: dict[str, Any], key: str, value: Any) -> bool:
    allowed = value if isinstance(value, list) else [value]
    return key in attrs and any(str(attrs[key]) == str(v) for v in allowed)


def _has_value(run: RunSpec, key: str) -> bool:
    try:
        run.value(key)
    except KeyError:
        return False
    return True


def _recorded_columns(ck: Checker, run: RunSpec) -> tuple[str, ...]:
    """The columns a run's kind declares it records (empty if it declares none)."""
    try:
        records = declared(ck.registry.get("run_kind", run.kind).factory)
    except ComponentError:
        return ()
    return records.columns if records is not None else ()


def check_against_runs(ck: Checker, runs: list[RunSpec], references: list[Reference],
                        tables: dict[str, TableSpec]) -> None:
    """What a table selects or a reference names must exist among the runs: a typo would give an
    empty table or a silently dropped reference. (Columns that only results have, such as a GDU
    run's ``layer``, are checked when the table is made.)"""
    attrs = [r.attributes() for r in runs]
    run_cols = set().union(*attrs)
    recorded = [_recorded_columns(ck, r) for r in runs]
    for name, spec in tables.items():
        for key, value in spec.where.items():
            # a run whose kind records the key as a column (a bias run's `baseline`) may match once it has
            # results: only its results know the values
            later = any(key not in a and key in cols for a, cols in zip(attrs, recorded))
            if key in run_cols and not later and not any(_matches(a, key, value) for a in attrs):
                known = sorted({str(a[key]) for a in attrs if key in a})
                hint = close_match(str(value), known)
                ck.err(f"tables.{name}.where.{key}", f"{value!r} matches no run (its values: {', '.join(known)})"
                       + (f"; did you mean {hint!r}?" if hint else ""))
        for key, why in spec.notes.items():
            found = [r for r in runs if _has_value(r, key)]
            if not found:
                ck.err(f"tables.{name}.notes.{key}", f"no run has a setting {key!r} (write a run key: T, "
                       "epochs, model.bias, algorithm.beta, ...)")
            if not isinstance(why, str) or not why:
                ck.err(f"tables.{name}.notes.{key}", "expected a string saying why the setting matters")
        check_table_names(ck, name, spec, runs, attrs)
    for i, ref in enumerate(references):
        for j, row in enumerate(ref.rows):
            keys = {c: v for c, v in zip(ref.columns, row) if c in run_cols}
            if keys and not any(all(_matches(a, c, v) for c, v in keys.items()) for a in attrs):
                near = {c: close_match(str(v), sorted({str(a[c]) for a in attrs if c in a}))
                        for c, v in keys.items()}
                hint = ", ".join(f"{c} = {h!r}" for c, h in near.items() if h and h != str(keys[c]))
                ck.err(f"references[{i}].rows[{j}]", f"{keys} matches no run of the suite, so these "
                       "reference values would appear nowhere" + (f"; did you mean {hint}?" if hint else ""))


def check_table_names(ck: Checker, name: str, spec: TableSpec, runs: list[RunSpec],
                      attrs: list[dict[str, Any]]) -> None:
    """Every metric, row, column, ``where`` key and label a table names must be something its runs
    have or declare they record (``records = Records(...)`` of their kinds), so that a misspelling is
    named here, all of them at once, and not by ``bench table`` after the runs. A table whose runs
    include a kind that declares nothing is checked when it is made, as before."""
    run_cols = set().union(*attrs)  # attrs: each run's attributes, computed once by check_against_runs
    kept = [(r, a) for r, a in zip(runs, attrs)
            if all(_matches(a, k, v) for k, v in spec.where.items() if k in run_cols)]
    found = [(r, declared(ck.registry.get("run_kind", r.kind).factory)) for r, _ in kept]
    decls = [(r, d) for r, d in found if d is not None]
    if not kept or len(decls) < len(found):
        return
    if not spec.per_epoch:
        metrics = set().union(*(d.metric_names(r.slots) for r, d in decls))
        recorded_cols = set().union(*(d.columns for _, d in decls))
        source = "final values"
    else:  # per-epoch values: the kinds' curves, with the runs' columns only
        metrics, recorded_cols, source = set().union(*(d.curves for _, d in decls)), set(), "per-epoch values"
        if spec.at_lowest is not None:
            if spec.at_lowest not in metrics:
                hint = close_match(spec.at_lowest, sorted(metrics))
                ck.err(f"tables.{name}.at_lowest", f"{spec.at_lowest!r} is not among the per-epoch values its "
                       "runs' kinds record" + (f"; did you mean {hint!r}?" if hint else "")
                       + f" (they record: {', '.join(sorted(metrics))})")
            metrics = metrics | {"epoch"}  # the epoch each run gave
    columns = set().union(*(a for _, a in kept)) | recorded_cols | {"metric"}
    where = f"tables.{name}"
    for what, keys in (("rows", spec.rows), ("columns", spec.columns), ("where", list(spec.where))):
        for key in keys:
            if key not in columns:
                hint = close_match(key, sorted(columns))
                ck.err(f"{where}.{what}", f"{key!r} is neither a column of the table's runs nor recorded by them"
                       + (f"; did you mean {hint!r}?" if hint else "") + f" (columns: {', '.join(sorted(columns))})")
    # the metrics it shows, and those a per-metric format names when it shows all (else checked on load)
    named = [(f"{where}.metrics", m) for m in spec.metrics]
    named += [(f"{where}.format.{m}", m) for m in spec.format_metrics if not spec.metrics]
    for key, metric in named:
        if metric not in metrics:
            hint = close_match(metric, sorted(metrics))
            ck.err(key, f"{metric!r} is not among the {source} its runs' kinds record"
                   + (f"; did you mean {hint!r}?" if hint else "") + f" (they record: {', '.join(sorted(metrics))})")
    dims = set(spec.rows) | set(spec.columns)
    if dims & recorded_cols:
        return  # labels may name values of a recorded column (a layer), known only from results
    values = {str(v) for _, a in kept for v in a.values()}
    for key in spec.labels:
        if key not in metrics | columns | values:
            hint = close_match(key, sorted(metrics | columns))
            ck.err(f"{where}.labels.{key}", f"labels {key!r}, which is no metric, column or value of the table's "
                   "runs" + (f"; did you mean {hint!r}?" if hint else ""))
