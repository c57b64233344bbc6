"""The ``bench`` command line."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from harness.api.components import close_match
from harness.cli.common import (
    RESULTS_ENV,
    _parse_opt,
    _results_dir,
    _suite,
    data_option,
    main,
    only_option,
    results_option,
    set_option,
    table_option,
)
from harness.plugins import get_manager
from harness.results.aggregate import TableError, at_epoch, collect, summarize, table_dims
from harness.results.claims import Queue, live_queues, run_state
from harness.results.render import FORMATS, render
from harness.results.store import UNSUCCESSFUL, RunStore, Status, printable
from harness.run.execute import Job, interrupt_on_sigterm
from harness.suite.load import SuiteError, add_trackers, resolve_executor
from harness.suite.spec import settings


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@data_option
@click.option("--device", default=None, help="Override every run's device: cpu, cuda, cuda:N or auto.")
@only_option
@click.option("--dry-run", is_flag=True, help="List what would run, run nothing.")
@click.option("--rerun-failed", is_flag=True, help="Also re-run failed or diverged runs.")
@click.option("--force", is_flag=True, help="Re-run every selected run, even finished ones.")
@click.option("--executor", "executor_name", default=None,
              help="local (default), processes, submitit, or a plugin's; overrides the suite's [executor].")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="processes executor: number of workers.")
@click.option("--devices", default=None, help="processes executor: one device per worker, e.g. cuda:0,cuda:1.")
@click.option("--executor-opt", "executor_opts", multiple=True, metavar="KEY=VALUE",
              help="Any executor parameter (repeatable), e.g. partition=gpu, timeout_min=600, wait=false.")
@click.option("--table/--no-table", "show_table", default=True, help="Print the suite's tables at the end.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="torch threads per process that runs (default: torch's, all cores; with --executor processes, "
                   "cores / workers). On a busy machine 1 can be several times faster.")
@click.option("--tracker", "trackers", multiple=True, metavar="NAME",
              help="Also send every run to this experiment tracker (repeatable): tensorboard, mlflow, a plugin's.")
@set_option
def run(suite, results_dir, device, only, dry_run, rerun_failed, force, executor_name, workers, devices,
        executor_opts, show_table, threads, trackers, overrides):
    """Run a suite's runs; finished runs are skipped (resume)."""
    manager, s = _suite(suite, overrides)
    try:
        add_trackers(s, manager.registry, list(trackers))
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    runs = _select(s, only)
    options = dict(_parse_opt(o) for o in executor_opts)
    if workers is not None:
        options["workers"] = workers
    if devices:
        options["devices"] = [d.strip() for d in devices.split(",") if d.strip()]
    try:
        chosen = resolve_executor(s, manager.registry, executor_name, options)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None
    _results_dir(results_dir, s, write=False)
    from harness.run.runner import Runner  # torch: only the commands that run need it

    runner = Runner(s, manager.registry, results_dir, plugin_versions=manager.versions(), device=device,
                    rerun_failed=rerun_failed, force=force)
    todo = [r for r in runs if runner.should_run(r)]
    _check_devices(todo, device)
    _results_dir(results_dir, s, write=not dry_run)
    if dry_run:
        for r in runs:
            click.echo(f"{'run ' if r in todo else 'skip'}  {r.id}  ({run_state(runner.store(r))})")
        return
    click.echo(f"suite {s.name}: {len(runs)} run(s), {len(todo)} to do, executor {chosen['name']}, "
               f"results in {Path(results_dir) / s.name}", err=True)
    executor = manager.registry.get("executor", chosen["name"]).build(chosen["params"])
    job = Job(suite_path=str(Path(suite).resolve()), results_dir=str(Path(results_dir).resolve()),
              device=device, rerun_failed=rerun_failed, force=force,
              env={k: v for k, v in os.environ.items() if k.startswith("BENCH_")}, overrides=s.overrides,
              trackers=s.trackers, threads=threads, suite=s)
    interrupt_on_sigterm()  # kill / a scheduler's preemption: record "interrupted"
    try:
        with Queue(Path(results_dir) / s.name, [r.id for r in todo]):  # `bench status`: queued, not missing
            results = executor.execute(job, runs if chosen["name"] == "local" else todo)
    except KeyboardInterrupt:
        click.echo("interrupted: finished runs are kept; run the same command again to resume", err=True)
        sys.exit(130)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    click.echo("summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), err=True)
    if counts and set(counts) == {"submitted"}:
        click.echo(f"follow with: bench status {suite}; when done: bench table {suite}", err=True)
        return
    by_id = {r.id: r for r in runs}
    bad = [r for r in results if r.status.split(":")[-1] in (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED)]
    for r in bad:
        store = runner.store(by_id[r.run_id])
        error = r.error or store.status_record().get("error", "")
        see = f" (see {store.dir / 'error.txt'})" if (store.dir / "error.txt").exists() else ""
        click.echo(f"  {r.status}: {r.run_id}: {error}{see}", err=True)
    if show_table and s.tables:
        _print_tables(s, results_dir, (), "markdown", None)
    sys.exit(1 if bad else 0)


def _check_devices(runs, override):
    """Every device the runs ask for exists here, before anything is written."""
    from harness.run.environment import DeviceError, pick_device

    for name in sorted({override or r.device for r in runs}):
        try:
            pick_device(name)
        except DeviceError as exc:
            which = "--device" if override else ", ".join(sorted({r.name for r in runs if r.device == name}))
            raise click.ClickException(f"{exc} (asked by {which}); nothing was run") from None


def _select(s, only):
    try:
        return s.select(only)
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@set_option
def validate(suite, overrides):
    """Check a suite against the installed components; run nothing."""
    _, s = _suite(suite, overrides)
    kinds = sorted({r.kind for r in s.runs})
    click.echo(f"{suite}: valid: {len(s.runs)} run(s) of kind {', '.join(kinds)}; "
               f"tables: {', '.join(s.tables) or 'none'}")


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@only_option
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True)
@set_option
def show(suite, only, fmt, overrides):
    """Print each run's id and fully resolved configuration (every default filled in); run nothing."""
    from harness.suite.show import as_json, as_toml

    _, s = _suite(suite, overrides)
    runs = _select(s, only)
    click.echo(as_json(runs) if fmt == "json" else as_toml(runs))


def _table_names(s, names) -> list[str]:
    """The tables asked for (all when none), each checked to exist, before anything is computed."""
    for n in names:
        if n not in s.tables:
            hint = close_match(n, list(s.tables))
            raise click.ClickException(f"{s.path}: no table {n!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                                       + f"; tables: {', '.join(s.tables) or 'none'}")
    return list(dict.fromkeys(names)) or list(s.tables)


def _only_args(only) -> str:
    """``--only`` as the user would type it again (quoted for a shell)."""
    return " ".join(f"--only {shlex.quote(o)}" for o in only)


def _print_tables(s, results_dir, names, fmt, output, long=False, only=()):
    _results_dir(results_dir, s, write=False)
    runs, records = collect(s, results_dir)
    chunks, skipped = [], []
    for n in _table_names(s, names):
        spec = s.tables[n]
        try:
            stats = summarize(s, spec, runs, at_epoch(s, results_dir, records, spec.epoch, spec.at_lowest))
        except TableError as exc:
            raise click.ClickException(f"{s.path}: {exc}") from None
        if stats.empty and only:  # the table's `where` keeps none of the runs --only chose
            skipped.append(n)
            continue
        chunks.append(render(spec, stats, fmt, long))
    chosen = _only_args(only)
    if not chunks:
        raise click.ClickException(f"{s.path}: no table shows the runs chosen by {chosen}: the `where` of "
                                   f"{', '.join(map(repr, skipped))} keeps other runs")
    if skipped and names:  # asked for by name: say why it is missing
        click.echo(f"table(s) {', '.join(map(repr, skipped))} left out: their `where` keeps none of the runs "
                   f"chosen by {chosen}", err=True)
    text = "\n".join(chunks)
    if output:
        Path(output).write_text(text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text)


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True)
@table_option
@only_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to a file.")
@click.option("--long", is_flag=True, help="With --format csv: tidy form, one row per cell (mean, std, n, counts).")
@set_option
def table(suite, results_dir, fmt, names, only, output, long, overrides):
    """Print a suite's tables from stored results (--only: just some runs' rows, counted against
    those runs alone)."""
    _, s = _suite(suite, overrides)
    if not s.tables:
        raise click.ClickException(f"{suite}: the suite declares no [tables.NAME]; add one to lay out results")
    _table_names(s, names)
    if only:
        s = dataclasses.replace(s, runs=_select(s, only))
    _results_dir(results_dir, s, write=False)
    if not (collect(s, results_dir)[0]["status"] == Status.DONE).any():
        which = f" chosen by {_only_args(only)}" if only else ""
        elsewhere = str(results_dir) != os.environ.get(RESULTS_ENV, "results")
        args = shlex.join([suite, *[a for o in only for a in ("--only", o)],
                           *[a for o in overrides for a in ("--set", o)],
                           *(["--results-dir", str(results_dir)] if elsewhere else [])])
        raise click.ClickException(f"no finished run{which} of suite {s.name!r} in {Path(results_dir) / s.name} "
                                   f"yet: `bench run {args}` makes them (`bench status {args}` shows each run)")
    _print_tables(s, results_dir, names, fmt, output, long, only)


@main.command(name="compare")
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--base", "base_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Results directory of the result set to compare against (e.g. another commit's).")
@click.option("--base-suite", type=click.Path(dir_okay=False), default=None,
              help="The base's suite file, when it differs (default: SUITE).")
@click.option("--base-set", "base_overrides", multiple=True, metavar="KEY=VALUE", help="--set of the base's runs.")
@table_option
@click.option("--threshold", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Flag a cell only when |Δ| exceeds this (in the table's units, after its scale).")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Flag a tested cell only when its two-sided p-value is below this.")
@set_option
def compare_(suite, results_dir, base_dir, base_suite, base_overrides, names, threshold, alpha, overrides):
    """Two result sets side by side, cell by cell: Δ and a t-test over seeds (paired where both sides
    ran the same seeds, else Welch's; none with one run on a side, where |Δ| alone is held against
    --threshold). Times, throughput and memory (what the run kinds declare as costs) are shown and
    tested but never count as a change: they measure the machine. Exit status, for CI: 0 no cell
    changed, 1 some cell changed, 2 a usage error, and 1 with a message when either side has no
    finished run to compare."""
    from harness.api.run_kind import declared_costs
    from harness.results.aggregate import seed_values
    from harness.results.compare import compare
    from harness.results.compare import render as render_comparison

    if not math.isfinite(threshold):
        raise click.BadParameter(f"{threshold} is not a finite number", param_hint="--threshold")
    if not Path(base_dir).is_dir():
        raise click.ClickException(f"--base {base_dir}: no such directory (a results directory, e.g. another "
                                   "checkout's results/)")
    manager, new = _suite(suite, overrides)
    names = _table_names(new, names)  # a misspelled table before anything is read
    _, base = _suite(base_suite or suite, base_overrides)
    for s, d, what in ((base, base_dir, "--base"), (new, results_dir, "--results-dir")):
        _results_dir(d, s, write=False)
        if not (collect(s, d)[0]["status"] == Status.DONE).any():
            raise click.ClickException(f"{what} {d}: no finished run of suite {s.name!r} (as resolved with its "
                                       f"--set / --base-set) in {Path(d) / s.name}: nothing to compare against; "
                                       "check the directory and the overrides the runs were made with")
    costs = declared_costs(manager.registry, (r.kind for r in new.runs))  # another machine is not a change
    flagged = moved = 0
    for n in names:
        spec = new.tables[n]
        try:
            sides, seeds = [], []
            for s, d in ((base, base_dir), (new, results_dir)):
                runs, records = collect(s, d)
                records = at_epoch(s, d, records, spec.epoch, spec.at_lowest)
                sides.append(summarize(s, spec, runs, records))
                seeds.append(seed_values(spec, records))
        except TableError as exc:
            raise click.ClickException(f"{new.path}: {exc}") from None
        rows, cols = table_dims(spec)
        comp = compare(*sides, [*rows, *cols], threshold, alpha, seeds=(seeds[0], seeds[1]), costs=costs)
        flagged += len(comp.changed)
        moved += int(comp.frame["moved"].sum())
        click.echo(f"**{spec.title or n}**: base {base_dir / base.name}, new {Path(results_dir) / new.name}\n")
        if spec.per_epoch:  # --threshold applies to an epoch column too
            click.echo(f"_values after epoch {spec.epoch}_\n" if spec.epoch is not None else
                       f"_each run's values at its epoch of lowest {spec.at_lowest}; the epoch column, in "
                       "epochs, is compared like the others_\n")
        click.echo(render_comparison(comp, spec.number_format) + "\n")
    click.echo(f"{flagged} cell(s) changed (|Δ| > {threshold:g}, and p < {alpha:g} where a test was possible)"
               + (f"; {moved} cost cell(s) moved, not counted (times, throughput and memory measure the machine)"
                  if moved else ""), err=True)
    sys.exit(1 if flagged else 0)


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of the figures (default: RESULTS/SUITE/figures).")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default="png", show_default=True)
@click.option("--elements", type=click.IntRange(1, 7), default=4, show_default=True,
              help="Neurons and synapses drawn per layer in process figures (the largest |ΔEP|).")
@set_option
def plot(suite, results_dir, output, fmt, elements, overrides):
    """Draw a suite's figures from stored results (needs the `plot` extra)."""
    from harness.results.figures import PlotError, plot_suite

    manager, s = _suite(suite, overrides)
    _results_dir(results_dir, s, write=False)
    try:
        for path in plot_suite(s, results_dir, output, fmt, elements, registry=manager.registry):
            click.echo(str(path))
    except TableError as exc:
        raise click.ClickException(f"{s.path}: {exc}") from None
    except PlotError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Markdown file to write (default: RESULTS/SUITE/report.md); figures go beside it.")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="Draw the figures (needs matplotlib; without it they are skipped with a note).")
@click.option("--force", is_flag=True, help="Replace a report that has more finished runs than this one would.")
@set_option
def report(suite, results_dir, output, figures, force, overrides):
    """Write one Markdown page: commands, tables, figures, run statuses, environment."""
    from harness.results.figures import PlotError
    from harness.results.report import ReportError, write_report

    manager, s = _suite(suite, overrides)
    _results_dir(results_dir, s, write=False)
    try:
        path = write_report(s, results_dir, output, default_results=str(results_dir) == "results",
                            registry=manager.registry, figures=figures, force=force)
    except TableError as exc:
        raise click.ClickException(f"{s.path}: {exc}") from None
    except (PlotError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}", err=True)


#: Characters of a warning that ``bench status`` prints without ``--full`` (a table1 status stays readable).
WARNING_WIDTH = 110

@main.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@results_option
@only_option
@set_option
@click.option("--full", is_flag=True, help="Print each warning whole (by default, one shortened to "
              f"{WARNING_WIDTH} characters).")
def status(suite, results_dir, only, overrides, full):
    """Each run's state (done, failed, diverged, corrupt, running, queued, interrupted, missing), where an unfinished
    run resumes, its warnings, and result directories of an earlier configuration. Exit 1 if a run
    failed, diverged or is corrupt."""
    _, s = _suite(suite, overrides)
    _results_dir(results_dir, s, write=False)
    runs, _ = collect(s, results_dir)
    chosen = {r.id for r in _select(s, only)}
    runs = runs[runs["run"].isin(chosen)]
    jobs, alive = _jobs(Path(results_dir) / s.name, [r for r in runs["run"]],
                        set(runs[runs["status"] == "done"]["run"]))
    queued = runs["run"].isin(alive) & (runs["status"] == "missing")
    runs.loc[queued, "status"] = "queued"  # waiting in a scheduler's queue (or for its turn in its job)
    waiting = live_queues(Path(results_dir) / s.name)  # ... or for its turn in a live `bench run` here
    for run_id in runs.loc[runs["run"].isin(list(waiting)) & (runs["status"] == "queued"), "run"]:
        q = waiting[run_id]
        since = datetime.fromtimestamp(float(q.get("started", 0)), UTC).isoformat(timespec="seconds")
        jobs[run_id] = printable(f"waiting for its turn in the `bench run` of pid {q.get('pid')} on {q.get('host')} "
                                 f"(since {since})")  # (read from a file: no terminal escapes)
    shortened = False
    for _, r in runs.iterrows():
        extra = f"  {r['seconds']:.1f}s" if isinstance(r["seconds"], float) and r["seconds"] == r["seconds"] else ""
        if extra and isinstance(r.get("resumed"), dict):
            extra += f" (resumed; {r['resumed'].get('this_invocation', 0):.1f}s in the last invocation)"
        err = f"  {r['error']}" if isinstance(r["error"], str) and r["error"] else ""
        click.echo(f"{r['status']:<11} {r['run']}{extra}{err}")
        if r["run"] in jobs:
            click.echo(f"{'':<11}   {jobs[r['run']]}")
        if r["status"] in RESUMABLE and (note := RunStore(Path(results_dir) / s.name / r["run"]).checkpoint_note()):
            # a failed or diverged run re-runs from the start (--rerun-failed); one running now is not resumed
            resumes = "its `bench run` resumes there" if r["run"] in waiting else "the next `bench run` resumes there"
            click.echo(f"{'':<11}   last checkpoint: {note}" if r["status"] == "running" else
                       f"{'':<11}   checkpoint: {note} ({resumes})")
        for warning in r.get("warnings") if isinstance(r.get("warnings"), list) else []:
            text = printable(str(warning))  # no terminal escapes
            if not full and len(text) > WARNING_WIDTH:
                text, shortened = text[:WARNING_WIDTH - 1].rstrip() + "…", True
            click.echo(f"{'':<11}   warning: {text}")
    counts = runs["status"].value_counts().to_dict()
    if shortened:
        click.echo("(warnings shortened: `bench status --full` prints them whole, with what to do)")
    click.echo("total: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if not only:
        _report_foreign(Path(results_dir) / s.name, s.runs)
    if any(counts.get(k) for k in UNSUCCESSFUL):
        sys.exit(1)  # scripts and CI can tell a suite that did not finish cleanly


#: Statuses of a run whose epoch checkpoint the next ``bench run`` resumes from (``running``: once it stops).
RESUMABLE = ("interrupted", "missing", "queued", "running")

#: Scheduler states of a job that has yet to run, or is running, its runs.
LIVE_JOB = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")


def _jobs(base: Path, run_ids: list[str], done: set[str]) -> tuple[dict[str, str], set[str]]:
    """For each unfinished run an executor queued (its ``submission.json``): the job, the state its
    executor reports for it (queued, running, or gone), and the log to read; and the runs whose job
    is alive."""
    subs = {r: sub for r in run_ids if r not in done and (sub := RunStore(base / r).submission())}
    states: dict[str, str] = {}
    for name in {str(sub.get("executor", "")) for sub in subs.values()}:
        ids = sorted({str(sub.get("job_id")) for sub in subs.values() if sub.get("executor") == name})
        try:
            executor = get_manager().registry.get("executor", name).build({})
            states.update({f"{name}:{k}": v for k, v in executor.job_states(ids).items()})
        except Exception as exc:  # an executor no longer installed, a scheduler that does not answer
            click.echo(f"note: the state of {name} jobs is unknown ({type(exc).__name__}: {exc})", err=True)
    out, alive = {}, set()
    for run_id, sub in subs.items():
        state = states.get(f"{sub.get('executor')}:{sub.get('job_id')}", "not known to the scheduler now")
        out[run_id] = f"{sub.get('executor')} job {sub.get('job_id')}: {state}; log {sub.get('log')}"
        if state in LIVE_JOB:
            alive.add(run_id)
    return out, alive


def _report_foreign(base: Path, runs: list) -> None:
    """Name result directories that belong to no run of the suite (a run whose configuration,
    hence id, has changed since, or one removed from the suite): tables never read them, and a
    reader of the results tree should know they are not what the suite runs today. Where one is a
    run of the suite with other settings (e.g. made with --set), say which, so that the same --set
    finds it."""
    ids = {r.id for r in runs}
    foreign = sorted(p.name for p in base.iterdir() if p.is_dir() and p.name not in ids
                     and (p / "config.json").exists()) if base.is_dir() else []
    if not foreign:
        return
    shown = ", ".join(foreign[:8]) + (f", … ({len(foreign) - 8} more)" if len(foreign) > 8 else "")
    click.echo(f"not in this suite: {len(foreign)} result director{'y' if len(foreign) == 1 else 'ies'} "
               f"in {base} that no run of it produces (an earlier configuration, or a run since "
               f"removed); tables ignore them: {shown}")
    hints: dict[str, int] = {}
    for name in foreign:
        try:
            config = json.loads((base / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
        same = [r for r in runs if r.name == config.get("name") and r.seed == config.get("seed")
                and r.grid == config.get("grid")]
        if not same:
            continue
        theirs, ours = settings(config), settings(same[0].config())
        diff = [f"{k}={json.dumps(theirs[k])}" for k in sorted(theirs.keys() & ours.keys()) if theirs[k] != ours[k]]
        if diff:
            hint = " ".join(f"--set '{d}'" for d in diff)
            hints[hint] = hints.get(hint, 0) + 1
    for hint, n in sorted(hints.items(), key=lambda kv: -kv[1])[:3]:
        click.echo(f"  {n} of them are runs of this suite with other settings: {hint} (give the same to "
                   "status, table and report to read them)")
