"""One Markdown page per suite: what ran, where, how to redo it, its tables and figures.

A report is read without the harness at hand, so it carries the commands that
produced it, every table (references and differences included), the run
statuses, the environment the runs recorded, and the figures as relative image
links next to it. Everything comes from stored results; nothing is re-run.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from harness.api.components import Registry
from harness.results.aggregate import at_epoch, collect, summarize
from harness.results.render import render
from harness.results.store import CorruptResult, RunStore, Status, read_record
from harness.suite.spec import Suite

ENV_KEYS = ("python", "torch", "cuda", "cudnn", "device", "device_name", "platform", "cpu_model", "cpu_capability",
            "cpu_count", "torch_threads", "git_commit", "plugins", "data_dir")


def _cmd(*parts: Any) -> str:
    return " ".join(shlex.quote(str(p)) for p in parts)


NOT_RECORDED = "(not recorded)"


def commands(suite: Suite, results_dir: Path, output: Path | None, default_results: bool) -> list[str]:
    """The commands that reproduce the results, the figures and this page."""
    from harness.suite.show import toml_value

    rd = [] if default_results else ["--results-dir", results_dir]
    rd += [a for k, v in suite.overrides.items() for a in ("--set", f"{k}={toml_value(v)}")]
    out = [] if output is None else ["--output", output]
    data = sorted({v for k, v, _ in environments(suite, results_dir)
                   if k == "data_dir" and v not in ("None", NOT_RECORDED)})
    data_dir = ["--data-dir", os.path.relpath(data[0])] if len(data) == 1 else []  # the runs needed it
    return [_cmd("bench", "run", suite.path, *rd, *data_dir), _cmd("bench", "plot", suite.path, *rd),
            _cmd("bench", "report", suite.path, *rd, *out)]


def environments(suite: Suite, results_dir: Path) -> list[tuple[str, str, int]]:
    """(key, value, number of runs) for each distinct value the finished runs recorded; a resumed run
    counts once under each value its invocations had (its environment.json's ``earlier`` list), so a
    run trained across two commits or thread counts shows under both."""
    base = Path(results_dir) / suite.name
    counts: dict[str, Counter] = {k: Counter() for k in ENV_KEYS}
    for run in suite.runs:
        store = RunStore(base / run.id)
        if not store.is_complete():
            continue
        try:
            env = read_record(store.dir / "environment.json")
        except (FileNotFoundError, CorruptResult):
            continue  # a run without a readable environment adds nothing to this list
        earlier = env.get("earlier")
        invocations = [env, *(e for e in earlier if isinstance(e, dict))] if isinstance(earlier, list) else [env]
        for key in ENV_KEYS:
            values = set()
            for one in invocations:
                value = one.get(key, NOT_RECORDED)  # keys added later are absent from older runs
                if isinstance(value, dict):
                    value = ", ".join(f"{k} ({v})" for k, v in sorted(value.items()))
                values.add(str(value))
            counts[key].update(values)
    return [(k, v, n) for k in ENV_KEYS if set(counts[k]) != {NOT_RECORDED}
            for v, n in counts[k].most_common()]


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


class ReportError(Exception):
    """A report that must not be written (it would replace a more complete one); the CLI prints it."""


DONE_LINE = re.compile(r"; (\d+)/(\d+) runs done")


def write_report(suite: Suite, results_dir: Path, output: Path | None = None, *,
                 default_results: bool = True, figures: bool = True, registry: Registry | None = None,
                 force: bool = False) -> Path:
    """Write ``<results>/<suite>/report.md`` (or ``output``) with its PNG figures; return its path.

    An existing report with more finished runs is not replaced unless ``force``: the usual cause is
    a missing ``--set`` (the runs' ids differ), and the good page would be lost."""
    results_dir = Path(results_dir)
    path = Path(output) if output else results_dir / suite.name / "report.md"
    runs, records = collect(suite, results_dir)
    done = int((runs["status"] == Status.DONE).sum()) if len(runs) else 0
    if path.exists() and not force:
        before = DONE_LINE.search(path.read_text(errors="replace"))
        if before and int(before.group(1)) > done:
            raise ReportError(f"{path} reports {before.group(1)} finished runs and this one would report {done}; "
                              "not replaced. Were the runs made with --set? Give the same --set (`bench status` "
                              "lists result directories of another configuration), or --force to replace it")
    lines = [f"# {suite.name}", ""]
    if suite.description:
        lines += [suite.description.strip(), ""]
    finished = [RunStore(results_dir / suite.name / r.id).status_record().get("finished") for r in suite.runs]
    finished = sorted(f for f in finished if f)
    lines += [f"Suite file `{suite.path}`; {done}/{len(suite.runs)} runs done"
              + (f"; last run finished {finished[-1]}." if finished else "."), ""]

    lines += ["## Commands", "", "Produced by (results are stored, so the last two re-run nothing):", "",
              "```bash", *commands(suite, results_dir, output, default_results), "```", "",
              "Datasets are read from `--data-dir` or `$BENCH_DATA_DIR` (MNIST: its IDX files).", ""]

    lines += ["## Tables", ""]
    if not suite.tables:
        lines += ["The suite declares no `[tables.NAME]`.", ""]
    for spec in suite.tables.values():
        stats = summarize(suite, spec, runs, at_epoch(suite, results_dir, records, spec.epoch, spec.at_lowest))
        lines += [render(spec, stats, "markdown").rstrip(), ""]

    if figures:
        from harness.results.figures import NothingToPlot, PlotError, load_matplotlib, nothing_to_draw, plot_suite

        lines += ["## Figures", ""]
        try:
            load_matplotlib()
            paths = plot_suite(suite, results_dir, path.parent / "figures", "png", registry=registry)
        except NothingToPlot:
            paths = []
            lines += [nothing_to_draw(suite, registry).capitalize() + " yet.", ""]
        except PlotError as exc:  # matplotlib missing: the page without its figures, saying why
            paths = []
            lines += [f"Figures skipped: {exc}.", ""]
            print(f"warning: report {path}: figures skipped: {exc}", file=sys.stderr, flush=True)
        if paths:  # beside the page, where its links expect them
            print(f"wrote {len(paths)} figure(s) in {path.parent / 'figures'}", file=sys.stderr, flush=True)
        for p in paths:
            rel = Path(os.path.relpath(p, path.parent)).as_posix()
            lines += [f"![{p.stem}]({rel})", ""]

    lines += ["## Runs", "", "| run | status | seconds | error |", "|---|---|---|---|"]
    for _, r in runs.iterrows():
        seconds = r["seconds"]
        sec = f"{seconds:.1f}" if isinstance(seconds, (int, float)) and seconds == seconds else ""
        err = r["error"] if isinstance(r["error"], str) else ""
        lines.append(f"| `{r['run']}` | {r['status']} | {sec} | {_escape(err)} |")
    counts = Counter(runs["status"]) if len(runs) else Counter()
    lines += ["", "Total: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), ""]

    lines += ["## Environment", "", "As recorded by the finished runs (`environment.json`); "
              "the count is the number of runs with that value.", "", "| key | value | runs |", "|---|---|---|"]
    env = environments(suite, results_dir)
    lines += [f"| {k} | {_escape(v)} | {n} |" for k, v, n in env]
    if not env:
        lines.append("| — | no finished runs | 0 |")
    lines.append("")

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
