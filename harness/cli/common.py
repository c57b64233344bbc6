"""What every ``bench`` command shares: the command group ``main``, the plugin manager with its
warnings, reading a suite, the common options, and the results directory's checks. The commands
live in :mod:`harness.cli.commands` (suites, results) and :mod:`harness.cli.plugin_commands` (plugins), both built on
this module, so neither imports the other."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

import click

from harness import __version__
from harness.api.dataset import DATA_DIR_ENV
from harness.plugins import PluginError, get_manager
from harness.suite.load import SuiteError, load_suite

RESULTS_ENV = "BENCH_RESULTS_DIR"


def _manager():
    try:
        manager = get_manager()
    except (PluginError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    for info in manager.failures():
        click.secho(f"warning: plugin {info.name!r} ({info.distribution or '?'} {info.version}) failed to "
                    f"load: {info.error}\n  (BENCH_DISABLE_PLUGINS={info.name} hides it; "
                    f"BENCH_STRICT_PLUGINS=1 makes this an error)", fg="yellow", err=True)
    return manager


def _suite(path: str, overrides: tuple[str, ...] = ()):
    manager = _manager()
    try:
        return manager, load_suite(path, manager.registry, dict(_parse_opt(o) for o in overrides))
    except SuiteError as exc:
        raise click.ClickException(str(exc)) from None


def set_option(f):
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a key in every run, as if the suite said it (repeatable; VALUE in "
                             "TOML): epochs=2, seeds=[0], model.hidden=[256], algorithm.lr=[0.1,0.05]. "
                             "Part of the runs' ids: give the same --set to status, table, report.")(f)


def results_option(f):
    return click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=lambda: os.environ.get(RESULTS_ENV, "results"), show_default="results",
                        help=f"Where results live (or ${RESULTS_ENV}).")(f)


def only_option(f):
    return click.option("--only", "only", multiple=True, metavar="RUN",
                        help="Only runs whose name or id matches (glob; repeatable).")(f)


def table_option(f):
    return click.option("--table", "names", multiple=True, metavar="TABLE",
                        help="A table of the suite (repeatable; default: all).")(f)


def data_option(f):
    def set_data_dir(ctx, param, value):
        if value:
            os.environ[DATA_DIR_ENV] = str(Path(value).expanduser().resolve())
        return value

    return click.option("--data-dir", type=click.Path(file_okay=False), expose_value=False,
                        callback=set_data_dir, is_eager=True,
                        help=f"Dataset directory (or ${DATA_DIR_ENV}).")(f)


def _results_dir(results_dir: Path, suite, write: bool) -> Path:
    """The suite's results directory, checked before anything is read or written: a path through a
    file, or one that cannot be written, is an error naming it, not a traceback halfway through."""
    path = Path(results_dir) / suite.name
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            raise click.ClickException(f"results directory {path}: {part} is a file, not a directory; "
                                       f"choose another --results-dir (or ${RESULTS_ENV})")
    if write:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            raise click.ClickException(f"cannot write results in {path}: {exc.strerror or exc}; choose a "
                                       f"writable --results-dir (or ${RESULTS_ENV})") from None
    return path


class _Group(click.Group):
    """Turns a file-system error no check foresaw into one line naming the file, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None:
                raise
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bench")
def main() -> None:
    """Benchmarks of Equilibrium Propagation and BPTT in convergent RNNs.

    Typical use: bench validate SUITE, bench run SUITE, bench table SUITE.
    """


def _parse_opt(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE (VALUE in TOML: 4, true, \"gpu\", [1, 2])")
    try:
        return key.strip(), tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), raw  # a bare word: a string
