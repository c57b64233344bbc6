"""Gathering a suite's stored results into pandas, and summarising over seeds.

Statistics: the mean and the *sample* standard deviation (ddof = 1, as is
usual for "mean ± std over five trials") over the runs that differ only by
seed; ``n`` counts the runs that finished. Cells whose runs are not all done
are flagged, and the published reference values sit beside ours with the
difference ``ours − reference``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import live_claim
from .store import CorruptResult, RunStore
from .suite import Suite, TableSpec

def collect(suite: Suite, results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs``: one row per run of the suite with its status; ``records``: the
    final values of the finished runs, one row per value, in long format."""
    base = Path(results_dir) / suite.name
    run_rows, records = [], []
    for run in suite.runs:
        store = RunStore(base / run.id)
        attrs = run.attributes()
        status = store.status_record()
        state = status.get("status", "missing")
        if state == "running" and live_claim(store.dir) is None:
            state = "interrupted"  # its worker died without recording an outcome
        run_rows.append({**attrs, "status": state,
                         "seconds": status.get("seconds"), "error": status.get("error", "")})
        if state == "done":
            try:
                final = store.metrics()["final"]
            except (CorruptResult, OSError):  # damaged since status_record read it: count it so
                run_rows[-1].update(status="corrupt")
                continue
            records += [{**attrs, **rec} for rec in final]
    runs = pd.DataFrame(run_rows)
    recs = pd.DataFrame(records)
    if recs.empty:
        recs = pd.DataFrame(columns=[*runs.columns.drop(["status", "seconds", "error"], errors="ignore"),
                                     "metric", "value"])
    return runs, recs


def curves(suite: Suite, results_dir: Path) -> pd.DataFrame:
    """Per-epoch values of every run that recorded them, in long format."""
    base = Path(results_dir) / suite.name
    rows = []
    for run in suite.runs:
        try:
            points = RunStore(base / run.id).metrics()["curves"]
        except (CorruptResult, OSError):
            continue  # shown as corrupt by the tables and `bench status`
        rows += [{**run.attributes(), **point} for point in points]
    return pd.DataFrame(rows)


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
                            "source": ref.source})
    return pd.DataFrame(out)


def summarize(suite: Suite, spec: TableSpec, runs: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per table cell: its keys, mean, std, n, how many runs were expected
    and done, and the reference and difference where one is given."""
    rows, cols = table_dims(spec)
    dims = rows + cols
    runs = _where(runs, spec.where)
    records = _where(records, spec.where)
    if spec.metrics:
        records = records[records["metric"].isin(spec.metrics)]
    records = records.assign(value=records["value"].astype(float) * spec.scale)

    present = [d for d in dims if d in records.columns]
    if records.empty or not present:
        stats = pd.DataFrame(columns=[*dims, "mean", "std", "n"])
    else:
        stats = (records.groupby(present, dropna=False, sort=False)["value"]
                 .agg(mean="mean", std=lambda v: v.std(ddof=1), n="count").reset_index())

    # Completeness is a property of runs: count expected / done per run-level group.
    run_dims = [d for d in dims if d in runs.columns]
    if not runs.empty:
        counts = (runs.assign(done=runs["status"].eq("done"),
                              failed=runs["status"].isin(["failed", "diverged"]))
                  .groupby(run_dims or (lambda _: 0), sort=False)
                  .agg(expected=("status", "size"), done=("done", "sum"), failed=("failed", "sum"))
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

    refs = reference_frame(suite)
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
    return stats
