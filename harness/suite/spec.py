"""What a suite resolves to: one :class:`RunSpec` per run (its id, resolved configuration and
execution switches), the tables and references, and the keys every run and table accepts.

:mod:`harness.suite.load` reads a file into these; everything downstream (runner, store, tables,
executors) works from them, never from the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.api.components import Param, close_match

#: ``autocast``'s choices: reduced precision for the products, or none.
AUTOCASTS = ("off", "bfloat16")

#: A run's execution switches: how it executes, never what it computes (the same results, or results
#: checked equal), so none is part of its configuration or id, and no grid varies one. Declared here
#: once: the suite reads and checks them as run keys (RUN_KEYS), `bench show` prints them, and each run
#: holds their values in :attr:`RunSpec.switches` (with a typed property each, for the code that uses it).
SWITCHES: tuple[Param, ...] = (
    Param("batch_seeds", bool, False, "execute the seeds of a configuration as one batched model "
          "when the run kind supports it (same results; fewer kernel launches on a GPU, about as "
          "fast on a CPU: results/speed/)"),
    Param("batch_algorithms", bool, False, "execute the runs of a configuration that differ only by "
          "their algorithm (EP and BPTT from the same initial weights) as one batched model, with "
          "their seeds if batch_seeds, when the run kind supports it (same results)"),
    Param("fast", bool, True, "use the models' fast paths (same results within float rounding); "
          "false: the generic path, autograd on Φ"),
    Param("compile", str, "auto", "torch.compile the training step, checked against the eager step at "
          "first use (it stays eager where they differ): on, off, or auto (on a CPU, for runs of at least "
          "20,000 steps, where the model's compile_pays says the speed suite measured it faster: EB "
          "nets, P-1h's EP, P-conv's BPTT; results/speed/)",
          choices=("auto", "on", "off")),
)

#: Keys every run accepts besides its kind's slots and parameters.
RUN_KEYS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("name", str, doc="row label of the run (required in [[runs]])"),
        Param("kind", str, doc="run kind: see `bench list run_kinds`"),
        Param("seeds", list[int], [0], "one run per seed", min=0, max=2**63 - 1, distinct=True),
        Param("device", str, "auto", "cpu, cuda, cuda:N or auto"),
        Param("dtype", str, "float32", "floating-point precision", choices=("float32", "float64")),
        Param("autocast", str, "off", "bfloat16: run the run kind under torch.autocast, its matrix products and "
              "convolutions in bfloat16 and the rest in float32 (float32 runs only; part of the run's id); off: "
              "the run's dtype throughout", choices=AUTOCASTS),
        Param("grid", dict, {}, "key -> list of values; one run per combination"),
        *SWITCHES,
        Param("resources", dict, {}, "what the run's cluster job asks for (partition, timeout_min, cpus, mem_gb, "
              "gpus, gres, slurm), over the executor's defaults; ignored by executors on this machine; not part "
              "of the run's id"),
    )
}


def switch_defaults() -> dict[str, Any]:
    """Every switch (SWITCHES) at its default, by name."""
    return {p.name: copy.deepcopy(p.default) for p in SWITCHES}


#: The keys of a run's ``resources``: what a cluster executor asks the scheduler for, per run or per
#: group of runs (one job array per distinct set). Generic names; an executor maps them to its own.
RESOURCE_KEYS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("partition", str, "", "the partition (queue) of the job ('' : the executor's or the cluster's default)"),
        Param("timeout_min", int, 0, "time limit of the job, minutes (0: the executor's)", min=0, max=10**6),
        Param("cpus", int, 0, "CPU cores of the job (0: the executor's)", min=0, max=4096),
        Param("mem_gb", float, 0.0, "memory of the job, GB (0: the executor's)", min=0, max=10**6),
        Param("gpus", int, -1, "GPUs of the job (-1: the executor's)", min=-1, max=1024),
        Param("gres", str, "", "a generic resource request instead of gpus, e.g. \"gpu:a100:1\""),
        Param("slurm", dict, {}, "further sbatch parameters of the job, e.g. { account = \"abc\" }"),
    )
}


#: A suite name is a directory under the results directory: one path component, nothing else.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


TOP_KEYS = ("name", "description", "defaults", "runs", "references", "tables", "executor", "trackers")


#: How a table writes a number that its ``format`` does not cover.
DEFAULT_FORMAT = ".3g"


TABLE_KEYS: dict[str, Param] = {
    p.name: p
    for p in (
        Param("title", str, "", "caption"),
        Param("where", dict, {}, "keep runs whose column equals the value (or is in the list)"),
        Param("rows", list[str], ["name"], "columns that label rows"),
        Param("columns", list[str], ["metric"], "columns spread across the table"),
        Param("metrics", list[str], [], "metrics to show (all when empty)"),
        Param("format", str | dict[str, str], DEFAULT_FORMAT, "Python format spec of numbers (\".2f\"), or a "
              "table metric → format spec for tables that mix kinds of numbers ({ test_error = \".2f\", "
              "unpredicted_classes = \".0f\" }; a metric it does not name: \".3g\")"),
        Param("scale", float, 1.0, "multiply values (e.g. 100 for %)"),
        Param("labels", dict, {}, "display names of metrics and columns"),
        Param("epoch", int | None, None, "take the runs' per-epoch values at this epoch instead of their "
              "final values (e.g. to compare runs of different lengths at the same point)", min=1, max=10**5),
        Param("at_lowest", str | None, None, "take each run's per-epoch values at the epoch where this per-epoch "
              "metric is lowest (the first such epoch), e.g. train_error: an early-stopping view that selects "
              "on the training set, never on the test set; the metric `epoch` then gives the epoch taken"),
        Param("notes", dict, {}, "configuration footnotes: a run key (T, model.bias, algorithm.beta, ...) → "
              "why a reader should know it; printed under the table with each row's value of that key, read "
              "from the runs' configuration (e.g. a deviation from the paper)"),
    )
}


REFERENCE_KEYS = ("source", "columns", "rows", "checked", "note")


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
    #: Its execution switches (SWITCHES) by name, every one of them; not part of the config.
    switches: dict[str, Any] = field(default_factory=switch_defaults)
    #: What its cluster job asks for (RESOURCE_KEYS, the keys set); not part of the config.
    resources: dict[str, Any] = field(default_factory=dict)
    #: Reduced precision for the products (``autocast``); part of the config when not "off".
    autocast: str = "off"

    @property
    def batch_seeds(self) -> bool:
        """Execute the seeds together (it changes no result)."""
        return bool(self.switches["batch_seeds"])

    @property
    def batch_algorithms(self) -> bool:
        """Execute the algorithms of a configuration together (EP with BPTT)."""
        return bool(self.switches["batch_algorithms"])

    @property
    def fast(self) -> bool:
        """Use the models' fast paths (tested equal to the generic path)."""
        return bool(self.switches["fast"])

    @property
    def compile(self) -> str:
        """Compile the training step: auto, on or off (checked equal at first use)."""
        return str(self.switches["compile"])

    def value(self, key: str) -> Any:
        """A resolved setting by its suite key (see :func:`settings`); KeyError where the run has none."""
        return settings(self.config())[key]

    def config(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "seed": self.seed,
                "device": self.device, "dtype": self.dtype, "params": self.params,
                "slots": self.slots, "grid": self.grid,
                **({"autocast": self.autocast} if self.autocast != "off" else {})}  # quiet default: ids kept

    def attributes(self) -> dict[str, Any]:
        """The columns a table can group by: name, kind, seed, and each slot's component."""
        attrs: dict[str, Any] = {"run": self.id, "name": self.name, "kind": self.kind,
                                 "seed": self.seed, "dtype": self.dtype}
        for slot, value in self.slots.items():
            attrs[slot] = ",".join(v["name"] for v in value) if isinstance(value, list) else value["name"]
        for key, value in self.grid.items():  # grid axes are columns too (e.g. T, lr)
            attrs.setdefault(key, grid_label(value))
            if isinstance(value, dict):  # and so are the parameters a grid value sets (algorithm.beta)
                for k, v in value.items():
                    if k != "name":
                        attrs.setdefault(f"{key}.{k}", grid_label(v))
        return attrs


@dataclass
class TableSpec:
    name: str
    title: str
    where: dict[str, Any]
    rows: list[str]
    columns: list[str]
    metrics: list[str]
    format: str | dict[str, str]  # one format spec, or metric -> format spec
    scale: float
    labels: dict[str, str]
    epoch: int | None = None  # per-epoch values at this epoch instead of the final ones
    at_lowest: str | None = None  # per-epoch values at each run's epoch where this metric is lowest
    notes: dict[str, str] = field(default_factory=dict)  # run key -> why it matters (a footnote)

    @property
    def per_epoch(self) -> bool:
        """Whether the table shows per-epoch values (at one epoch, or at each run's lowest) instead of the
        final ones: then no reference applies (references are final values)."""
        return self.epoch is not None or self.at_lowest is not None

    @property
    def format_metrics(self) -> list[str]:
        """The metrics a per-metric ``format`` names (none for one format for all)."""
        return list(self.format) if isinstance(self.format, dict) else []

    def number_format(self, metric: Any = None) -> str:
        """The format spec of ``metric``'s numbers: the table's one format, or its entry for that metric.
        The epoch an ``at_lowest`` table gives each run is a count, not in the error's format."""
        if isinstance(self.format, dict):
            return self.format.get(str(metric), DEFAULT_FORMAT)
        return DEFAULT_FORMAT if self.at_lowest is not None and metric == "epoch" else self.format


@dataclass
class Reference:
    source: str
    columns: list[str]
    rows: list[list[Any]]
    #: False: transcribed and not checked against the source; every table that shows them says so
    checked: bool = True
    note: str = ""

    def caption(self) -> str:
        """The source as a table's footnote gives it, with how sure the values are."""
        if self.checked:
            return self.source + (f" ({self.note})" if self.note else "")
        return f"{self.source} (values NOT checked against the source" + (f": {self.note}" if self.note else "") + ")"


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
    #: run id -> the ``--set`` keys written into it (a run whose kind or component lacks a key skips it)
    applied: dict[str, set[str]] = field(default_factory=dict)
    #: ``--set`` key -> the message of a run that does not take it
    not_applied: dict[str, str] = field(default_factory=dict)
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
        unused = [k for k in self.overrides if not any(k in self.applied.get(r.id, set()) for r in chosen)]
        if unused:  # would be silently ignored by every run that executes
            raise SuiteError(self.path, [f"{self.not_applied.get(k, f'--set {k}: unknown key')} (no run selected by "
                                         f"--only {', '.join(only)} has it)" for k in unused])
        return chosen


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's resolved configuration (``RunSpec.config()``, a stored config.json) by suite key: ``T``
    (the run kind's), ``model`` (a slot's component name), ``model.bias`` (a component's), ``seed``,
    ``dtype``, ``kind``, ``device``, ``name``."""
    out: dict[str, Any] = {k: config[k] for k in ("seed", "dtype", "kind", "device", "name") if k in config}
    out["autocast"] = config.get("autocast", "off")
    out.update(config.get("params", {}))
    for slot, value in config.get("slots", {}).items():
        if isinstance(value, list):
            out[slot] = ",".join(v["name"] for v in value)
        elif isinstance(value, dict):
            out[slot] = value.get("name")
            out.update({f"{slot}.{k}": v for k, v in value.get("params", {}).items()})
    return out


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text)).strip("-") or "x"


def grid_label(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name", "-".join(f"{k}{v}" for k, v in value.items())))
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def run_id(name: str, grid: dict[str, Any], seed: int, config: dict[str, Any]) -> str:
    """Readable and stable: name, grid values, seed, and a hash of the resolved config."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    parts = [slug(name)] + [slug(grid_label(v)) for v in grid.values()] + [f"s{seed}", digest]
    return "-".join(parts)


def describe_params(params: tuple[Param, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, "type": p.describe_type(),
             "default": None if p.required else p.default, "required": p.required, "doc": p.doc}
            for p in params]

