"""Gathering a suite's stored results into pandas, and summarising over seeds.

Statistics: the mean and the *sample* standard deviation (ddof = 1, as is
usual for "mean ± std over five trials") over the runs that differ only by
seed; ``n`` counts the runs that finished. Cells whose runs are not all done
are flagged, and the published reference values sit beside ours with the
difference ``ours − reference``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from harness.api.components import close_match
from harness.results.claims import live_queues, run_state
from harness.results.store import CorruptResult, RunStore, Status
from harness.suite.spec import Suite, TableSpec


class TableError(ValueError):
    """A table that cannot be made as declared; the message names the table and what to change."""


def _config_key(run) -> str:
    """A run's configuration without its seed: runs of one table cell must share it."""
    return json.dumps({**run.config(), "id": None, "seed": None}, sort_keys=True, default=str)


def _flat(config: dict) -> dict[str, object]:
    """``{"T": 30, "algorithm": "ep", "algorithm.beta": 0.1, ...}`` from a run's configuration."""
    out = {k: v for k, v in config.items() if k not in ("params", "slots", "grid")}
    out.update(config.get("params", {}))
    for slot, comp in config.get("slots", {}).items():
        for c in comp if isinstance(comp, list) else [comp]:
            out[slot] = c["name"] if not isinstance(comp, list) else ",".join(x["name"] for x in comp)
            out.update({f"{slot}.{k}": v for k, v in c["params"].items()})
    return out


#: run states a table counts per cell (beside "expected"); the rest of the expected runs are "not run"
COUNTED = tuple(s.value for s in (Status.DONE, Status.FAILED, Status.DIVERGED, Status.CORRUPT,
                                   Status.RUNNING, Status.INTERRUPTED, Status.QUEUED))

# what collect() records about a run's outcome, beside its attributes (never a table dimension)
_RUN_STATE = ("status", "seconds", "error", "warnings", "resumed", "_config", "last_epoch")


def collect(suite: Suite, results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs``: one row per run of the suite with its status; ``records``: the
    final values of the finished runs, one row per value, in long format."""
    base = Path(results_dir) / suite.name
    run_rows, records = [], []
    waiting = live_queues(base)  # runs a live `bench run` has yet to execute
    for run in suite.runs:
        store = RunStore(base / run.id)
        attrs = run.attributes()
        status = store.status_record()
        state = run_state(store, status)
        if state in (Status.MISSING, Status.INTERRUPTED) and run.id in waiting:
            state = Status.QUEUED
        run_rows.append({**attrs, "status": state, "seconds": status.get("seconds"),
                         "error": status.get("error", ""), "warnings": status.get("warnings", []),
                         "resumed": status.get("resumed"),
                         "_config": _config_key(run)})
        if state == Status.DONE:
            try:
                metrics = store.metrics()
                final = metrics["final"]
            except (CorruptResult, OSError):  # damaged since status_record read it: count it so
                run_rows[-1].update(status=Status.CORRUPT)
                continue
            records += [{**attrs, **rec} for rec in final]
            epochs = [c["epoch"] for c in metrics.get("curves") or [] if isinstance(c, dict) and "epoch" in c]
            run_rows[-1]["last_epoch"] = max(epochs) if epochs else None
    runs = pd.DataFrame(run_rows)
    recs = pd.DataFrame(records)
    if recs.empty:
        recs = pd.DataFrame(columns=[*runs.columns.drop(list(_RUN_STATE),
                                                        errors="ignore"), "metric", "value"])
    return runs, recs


def _real(value: object) -> float | None:
    """A finite number (not a bool, not a string: NaN is stored as "nan"), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _epoch(point: object) -> int | None:
    value = _real(point.get("epoch")) if isinstance(point, dict) else None
    return int(value) if value is not None and value.is_integer() else None


def epoch_point(points: list, epoch: int | None = None, lowest: str | None = None) -> dict | None:
    """The point of one run's curve that a per-epoch table takes: the one at ``epoch``, or the first of
    those where the metric ``lowest`` is lowest (an early-stopping view). None where there is none: the
    run did not reach ``epoch``, or never recorded ``lowest`` as a finite number (a skipped value is NaN)."""
    numbered = [(e, p) for p in points if (e := _epoch(p)) is not None]
    if lowest is None:
        return next((p for e, p in numbered if e == epoch), None)
    ranked = [(v, e, p) for e, p in numbered if (v := _real(p.get(lowest))) is not None]
    return min(ranked, key=lambda t: t[:2])[2] if ranked else None


def _run_curves(suite: Suite, results_dir: Path, ids: set[str] | None = None):
    """(run, its curve points) for each run of the suite (of ``ids``) whose metrics can be read."""
    base = Path(results_dir) / suite.name
    for run in suite.runs:
        if ids is not None and run.id not in ids:
            continue
        try:
            yield run, RunStore(base / run.id).metrics()["curves"] or []
        except (CorruptResult, OSError):
            continue  # shown as corrupt by the tables and `bench status`


def at_epoch(suite: Suite, results_dir: Path, records: pd.DataFrame, epoch: int | None,
             lowest: str | None = None) -> pd.DataFrame:
    """``records`` itself, or the finished runs' per-epoch values in the same long format: at ``epoch``
    (a table of runs of different lengths can compare them at one point), or at each run's epoch where
    the per-epoch metric ``lowest`` is lowest (``epoch_point``; the metric ``epoch`` then says which
    epoch each run gave). A ``lowest`` that no finished run's curve records is a TableError naming it."""
    if epoch is None and lowest is None:
        return records
    done = set(records["run"]) if "run" in records else set()
    rows, recorded = [], set()
    for run, points in _run_curves(suite, results_dir, done):
        recorded |= {k for p in points if isinstance(p, dict) for k in p}
        point = epoch_point(points, epoch, lowest)
        if point is not None:
            rows.append({**run.attributes(), **(point if lowest is not None else
                                                {k: v for k, v in point.items() if k != "epoch"})})
    if lowest is not None and recorded and lowest not in recorded:
        hint = close_match(lowest, sorted(recorded - {"epoch"}))
        raise TableError(f"at_lowest = {lowest!r}: no finished run's curve records it"
                         + (f"; did you mean {hint!r}?" if hint else "")
                         + f" (they record: {', '.join(sorted(recorded - {'epoch'}))})")
    if not rows:
        return records.iloc[0:0]
    frame = pd.DataFrame(rows)
    keys = [c for c in frame.columns if c in records.columns and c not in ("metric", "value")]
    return frame.melt(id_vars=keys, var_name="metric", value_name="value").dropna(subset=["value"])


def curves(suite: Suite, results_dir: Path) -> pd.DataFrame:
    """Per-epoch values of every run that recorded them, in long format."""
    return pd.DataFrame([{**run.attributes(), **point} for run, points in _run_curves(suite, results_dir)
                         for point in points])


def _where(df: pd.DataFrame, where: dict) -> pd.DataFrame:
    for key, value in where.items():
        if key not in df.columns:
            return df.iloc[0:0]
        allowed = value if isinstance(value, list) else [value]
        df = df[df[key].isin(allowed)]
    return df


def table_dims(spec: TableSpec) -> tuple[list[str], list[str]]:
    rows, cols = list(spec.rows), list(spec.columns)
    if "metric" not in rows + cols:
        cols.append("metric")
    return rows, cols


def reference_frame(suite: Suite) -> pd.DataFrame:
    """Reference values in long format: key columns, ``metric``, ``ref``, ``ref_std``, ``source``."""
    out = []
    for ref in suite.references:
        metric_cols = [c for c in ref.columns if isinstance(c, str)]
        for row in ref.rows:
            values = dict(zip(ref.columns, row))
            keys = {k: v for k, v in values.items() if not isinstance(v, (int, float)) or isinstance(v, bool)}
            for col in metric_cols:
                if col in keys or col.endswith("_std"):
                    continue
                out.append({**keys, "metric": col, "ref": float(values[col]),
                            "ref_std": float(values[f"{col}_std"]) if f"{col}_std" in values else float("nan"),
                            "source": ref.caption()})
    return pd.DataFrame(out)


_NOT_COLUMNS = {*_RUN_STATE, "value"}


def _check_columns(spec: TableSpec, dims: list[str], runs: pd.DataFrame, records: pd.DataFrame) -> None:
    """Every row, column, ``where`` key and metric of the table exists once this table's runs have
    recorded something (before that, results could still bring a column such as ``layer``)."""
    mine = _where(records, {k: v for k, v in spec.where.items() if k in records.columns})
    if mine.empty:
        return
    known = (set(runs.columns) | set(records.columns) | {"metric"}) - _NOT_COLUMNS
    for what, keys in (("rows", spec.rows), ("columns", spec.columns), ("where", list(spec.where))):
        for key in keys:
            if key not in known:
                hint = close_match(key, sorted(known))
                raise TableError(f"table {spec.name!r}: {what} names {key!r}, which is neither a run column "
                                 f"nor recorded by its runs" + (f"; did you mean {hint!r}?" if hint else "")
                                 + f" (columns: {', '.join(sorted(known))})")
    recorded = sorted(set(mine["metric"]))
    for metric in spec.metrics:
        if metric not in recorded:
            hint = close_match(metric, recorded)
            raise TableError(f"table {spec.name!r}: metric {metric!r} is recorded by none of its finished runs"
                             + (f"; did you mean {hint!r}?" if hint else "") + f" (recorded: {', '.join(recorded)})")


def _check_cells(spec: TableSpec, run_dims: list[str], runs: pd.DataFrame) -> None:
    """A cell averages over seeds only: runs that differ in anything else must not share one."""
    if runs.empty:
        return
    for key, group in runs.groupby(run_dims or (lambda _: 0), sort=False, dropna=False):
        configs = list(dict.fromkeys(group["_config"]))
        if len(configs) < 2:
            continue
        a, b = (_flat(json.loads(c)) for c in configs[:2])
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        cell = ", ".join(f"{d}={v}" for d, v in zip(run_dims, key if isinstance(key, tuple) else (key,))) \
            or "the whole table"
        usable = [k for k in differ if k in runs.columns]
        raise TableError(f"table {spec.name!r}: the cell {cell} would average runs that differ in "
                         + ", ".join(f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in differ[:3])
                         + ", not only in their seed; "
                         + (f"add {usable[0]!r} to the table's rows or columns" if usable else
                            "add a column that separates them to the table's rows or columns (vary the key "
                            "in a grid, e.g. grid.\"algorithm.beta\" = [...], to make it one)")
                         + ", or give the runs different names")


def summarize(suite: Suite, spec: TableSpec, runs: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per table cell: its keys, mean, std, n, how many runs were expected
    and done, and the reference and difference where one is given."""
    rows, cols = table_dims(spec)
    dims = rows + cols
    _check_columns(spec, dims, runs, records)
    runs = _where(runs, spec.where)
    _check_cells(spec, [d for d in dims if d in runs.columns and d != "metric"], runs)
    records = table_records(spec, records)

    present = [d for d in dims if d in records.columns]
    if records.empty or not present:
        stats = pd.DataFrame(columns=[*dims, "mean", "std", "n"])
    else:
        stats = (records.groupby(present, dropna=False, sort=False)["value"]
                 .agg(mean="mean", std=lambda v: v.std(ddof=1), n="count").reset_index())

    # Completeness is a property of runs: count expected / done per run-level group.
    run_dims = [d for d in dims if d in runs.columns]
    if not runs.empty:
        # A run that is training or was stopped midway is not "not run": the footnote says which.
        states = {s: runs["status"].eq(s) for s in COUNTED}
        counts = (runs.assign(**states)
                  .groupby(run_dims or (lambda _: 0), sort=False, dropna=False)  # (a key some runs lack: NaN)
                  .agg(expected=("status", "size"), **{s: (s, "sum") for s in COUNTED})
                  .reset_index())
        if not run_dims:
            counts = counts.drop(columns=counts.columns[0])
            stats = stats.assign(**counts.iloc[0].to_dict()) if len(stats) else stats
        else:
            # Cells of groups with nothing recorded still appear, flagged.
            metric_list = spec.metrics or sorted(records["metric"].unique()) or ["—"]
            missing_groups = counts[counts["done"] == 0][run_dims]
            if len(missing_groups):
                filler = missing_groups.merge(pd.DataFrame({"metric": metric_list}), how="cross") \
                    if "metric" in dims else missing_groups
                stats = pd.concat([stats, filler], ignore_index=True)
            stats = stats.merge(counts, on=run_dims, how="left")
    for col in dims:
        if col not in stats.columns:
            stats[col] = ""

    refs = pd.DataFrame() if spec.per_epoch else reference_frame(suite)  # references are final values
    stats["ref"] = float("nan")
    stats["ref_std"] = float("nan")
    stats["source"] = ""
    if not refs.empty:
        keys = [c for c in refs.columns if c not in ("ref", "ref_std", "source")]
        if all(k in dims for k in keys):
            stats = stats.drop(columns=["ref", "ref_std", "source"]).merge(refs, on=keys, how="left")
    stats["delta"] = stats["mean"].astype(float) - stats["ref"].astype(float)
    stats = stats.reset_index(drop=True)
    stats.attrs["run_dims"] = run_dims  # the dims that completeness flags are about
    # per row (or, with no run attribute among the rows, per column), not per seed
    keys = [d for d in rows if d in runs.columns and d != "seed"] \
        or [d for d in cols if d in runs.columns and d != "seed"]
    # a value at one epoch is the same epoch for every run; a lowest or a final value is not
    stats.attrs["last_epochs"] = {} if spec.epoch is not None else last_epochs(runs, keys)
    stats.attrs["setting_notes"] = setting_notes(suite, spec, set(runs["run"]) if "run" in runs else set(), rows)
    return stats


def setting_notes(suite: Suite, spec: TableSpec, ids: set[str], rows: list[str]) -> list[str]:
    """The table's ``notes``: for each key, its value in each of the table's rows, read from the runs'
    resolved configuration (so a footnote about a deviation cannot disagree with what ran)."""
    mine = [r for r in suite.runs if r.id in ids]
    out = []
    for key, why in spec.notes.items():
        by_value: dict[str, list[str]] = {}
        lacking = False  # a row whose component has no such key (a P net has no output_sigma_prime)
        for run in mine:
            try:
                value = run.value(key)
            except KeyError:
                lacking = True
                continue
            label = json.dumps(value) if not isinstance(value, str) else value
            attrs = run.attributes()
            row = " ".join(str(attrs.get(d, "")) for d in rows if d != "seed") or run.name
            names = by_value.setdefault(label, [])
            if row not in names:
                names.append(row)
        if not by_value:
            continue
        if len(by_value) == 1:
            (value,) = by_value
            out.append(f"{key} = {value} in every row{' that has it' if lacking else ''}: {why}")
        else:
            out.append(f"{key}: " + "; ".join(f"{v} ({', '.join(names)})" for v, names in by_value.items())
                       + f": {why}")
    return out


def seed_values(spec: TableSpec, records: pd.DataFrame) -> dict[tuple, dict[int, float]]:
    """Each cell's value per seed (the table's where, metrics and scale applied), keyed like
    :func:`summarize`'s rows by the table's row and column keys: what a paired comparison needs."""
    rows, cols = table_dims(spec)
    dims = rows + cols
    records = table_records(spec, records)
    if records.empty or "seed" not in records or any(d not in records.columns for d in dims):
        return {}
    out: dict[tuple, dict[int, float]] = {}
    for row in records.to_dict("records"):  # (itertuples would rename dotted columns such as algorithm.beta)
        out.setdefault(tuple(row[d] for d in dims), {})[int(row["seed"])] = row["value"]
    return out


def table_records(spec: TableSpec, records: pd.DataFrame) -> pd.DataFrame:
    """The records a table's cells are made of: its ``where`` and ``metrics`` applied, values scaled."""
    records = _where(records, spec.where)
    if spec.metrics:
        records = records[records["metric"].isin(spec.metrics)]
    values = records["value"].astype(float)
    if spec.at_lowest is not None:  # the epoch each run gave is a count of epochs, not a scaled quantity
        values = values.where(records["metric"] == "epoch", values * spec.scale)
    else:
        values = values * spec.scale
    return records.assign(value=values)


def last_epochs(runs: pd.DataFrame, keys: list[str]) -> dict[tuple, tuple[int, ...]]:
    """The last epochs (over its finished runs) of each group of runs by ``keys``, when they do not all
    end at the same one: a final-value table then compares runs of different lengths, and its footnote
    says so."""
    if "last_epoch" not in runs or not keys:
        return {}
    done = runs.dropna(subset=["last_epoch"])
    if done["last_epoch"].nunique() < 2:
        return {}
    return {(k if isinstance(k, tuple) else (k,)): tuple(sorted({int(e) for e in g}))
            for k, g in done.groupby(keys, sort=False, dropna=False)["last_epoch"]}
