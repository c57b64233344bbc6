"""The ``bench`` commands about plugins: ``plugins``, ``check-plugin``, ``list``.

Registered on the command group of :mod:`harness.cli.common`; :mod:`harness.cli.commands` imports this module.
"""

from __future__ import annotations

import json
import os
import sys

import click

from harness.api.components import FAMILIES
from harness.cli.common import _manager, data_option, main
from harness.suite.load import describe_params


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json):
    """Installed plugins: distribution, version, load status, components."""
    manager = _manager()
    infos = [p.as_dict() for p in sorted(manager.plugins.values(), key=lambda p: p.name)]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    for p in infos:
        click.echo(f"{p['name']:<12} {p['distribution']} {p['version']}  [{p['status']}]  {p['module']}")
        if p["error"]:
            click.echo(f"    error: {p['error']}")
        if p["components"]:
            click.echo(f"    provides: {', '.join(p['components'])}")


@main.command(name="check-plugin")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--pytest", "pytest_args", default=None, metavar="'ARGS'",
              help="Run the checks as pytest tests instead, one per check, with these pytest arguments "
                   "(quoted; '' for none): e.g. --pytest \"-k theorem --junitxml=kit.xml\".")
def check_plugin_(names, as_json, pytest_args):
    """Run the conformance kit on plugins: every component on tiny CPU inputs.

    NAME is an entry-point name as `bench plugins` lists it (e.g. models, or
    your own). Prints ✓ passed, ✗ failed, – skipped per check; exit status 1
    when any check fails. With --pytest, pytest runs them (one test per check:
    -k, -x, --junitxml apply) and its exit status is returned.
    """
    from harness.conformance import check_plugin, format_report

    if pytest_args is not None:
        if as_json:
            raise click.UsageError("--json and --pytest do not combine: pytest reports with its own options "
                                   "(e.g. --pytest \"--junitxml=kit.xml\")")
        import shlex
        import subprocess

        command = [sys.executable, "-m", "pytest", "-p", "harness.conformance.pytest_plugin", "--pyargs",
                   "harness.conformance.kit", "--rootdir", ".", "-c", os.devnull, "-p", "no:cacheprovider",
                   *[a for n in names for a in ("--bench-plugin", n)], *shlex.split(pytest_args)]
        sys.exit(subprocess.run(command).returncode)
    manager = _manager()
    reports = []
    for name in names:
        try:
            reports.append(check_plugin(name, manager=manager))
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
    else:
        for r in reports:
            text = format_report(r)
            for line in text.splitlines():
                stripped = line.lstrip()
                color = {"✓": "green", "✗": "red", "–": "yellow"}.get(stripped[:1])
                click.secho(line, fg=color)
    sys.exit(0 if all(r.ok for r in reports) else 1)


FAMILY_ALIASES = {"models": "model", "algorithms": "algorithm", "metrics": "metric", "datasets": "dataset",
                  "run_kinds": "run_kind", "kinds": "run_kind", "executors": "executor", "trackers": "tracker"}


@main.command(name="list")
@click.argument("family", required=False,
                type=click.Choice(sorted(FAMILY_ALIASES) + list(FAMILIES)))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(family, as_json):
    """Components with their parameters and defaults."""
    manager = _manager()
    family = FAMILY_ALIASES.get(family, family)
    comps = manager.registry.all(family)
    if as_json:
        click.echo(json.dumps([{"family": c.family, "name": c.name, "plugin": c.plugin, "doc": c.doc,
                                "params": describe_params(c.params),
                                "slots": [{"name": sl.name, "family": sl.family, "many": sl.many,
                                           "default": None if sl.required else sl.default} for sl in c.slots]}
                               for c in comps], indent=2, default=str))
        return
    current = None
    for c in comps:
        if c.family != current:
            current = c.family
            click.secho(f"{c.family}s:", bold=True)
        click.echo(f"  {c.name}  ({c.plugin})  {c.doc}")
        for sl in c.slots:
            default = "required" if sl.required else f"default {sl.default!r}"
            click.echo(f"      slot {sl.name}: {'list of ' if sl.many else ''}{sl.family}, {default}")
        for p in c.params:
            click.echo(f"      {_param_line(p)}")
    if family in (None, "run_kind"):
        from harness.suite.spec import RUN_KEYS

        click.secho("keys every run accepts (besides its kind's slots and parameters):", bold=True)
        for p in RUN_KEYS.values():
            click.echo(f"  {_param_line(p)}")


def _param_line(p) -> str:
    """``name: type, default … — doc`` for `bench list`."""
    default = "required" if p.required else f"default {p.default!r}"
    return f"{p.name}: {p.describe_type()}, {default}" + (f" — {p.doc}" if p.doc else "")
