"""The `bench` command line, as a user sees it."""

import json

import pytest
from click.testing import CliRunner

from conftest import write_dist
from harness.cli.commands import WARNING_WIDTH, main

SUITE = """
    [defaults]
    kind = "score"
    seeds = [0, 1]
    device = "cpu"
    model = { name = "const", offset = 1.0 }

    [[runs]]
    name = "one"

    [[runs]]
    name = "two"
    mode = "fail"

    [tables.main]
    rows = ["name"]
    metrics = ["score"]
    format = ".1f"
"""


@pytest.fixture
def cli(fake_site, monkeypatch, tmp_path):
    write_dist(fake_site, "bench-testplugin", "0.0.1", {"testplugin": "harness_test_plugin"}, {})
    monkeypatch.setenv("BENCH_PLUGINS", "testplugin")
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_validate_misspelled_key(cli, suite_file):
    path = suite_file(SUITE.replace("offset = 1.0", "ofset = 1.0"))
    result = cli("validate", path)
    assert result.exit_code == 1
    assert str(path) in result.output
    assert "model.ofset: unknown key 'ofset' for model 'const'; did you mean 'offset'?" in result.output


def test_validate_ok(cli, suite_file):
    result = cli("validate", suite_file(SUITE))
    assert result.exit_code == 0, result.output
    assert "valid: 4 run(s) of kind score; tables: main" in result.output


def test_run_status_table_and_resume(cli, suite_file, tmp_path):
    path = suite_file(SUITE)
    result = cli("run", path)
    assert result.exit_code == 1  # a run failed: the exit code tells
    assert "summary: 2 done, 2 failed" in result.output
    assert "| one    | 1.5 ± 0.7" in result.output  # table printed at the end
    status = cli("status", path)
    assert status.exit_code == 1  # runs failed: scripts can tell
    assert status.output.count("done ") == 2 and status.output.count("failed ") == 2
    assert "RuntimeError: deliberate failure for the test" in status.output
    again = cli("run", path)
    assert again.exit_code == 1  # the failed runs are still failed
    assert "4 run(s) already recorded, skipped (2 done, 2 failed; --rerun-failed" in again.output
    assert "summary: 2 skipped:done, 2 skipped:failed" in again.output
    dry = cli("run", path, "--dry-run", "--only", "one")
    assert dry.exit_code == 0 and dry.output.count("skip  one-") == 2


def test_status_names_results_of_an_earlier_configuration(cli, suite_file, tmp_path):
    path = suite_file(SUITE)
    cli("run", path, "--only", "one")
    assert "not in this suite" not in cli("status", path).output
    changed = suite_file(SUITE.replace("offset = 1.0", "offset = 2.0"))  # new ids for every run
    assert changed == path
    out = cli("status", changed).output
    assert "total: 4 missing" in out
    assert "not in this suite: 2 result directories" in out and "tables ignore them: one-s0-" in out, out


def test_status_shortens_long_warnings_unless_asked_for_them_whole(cli, suite_file, tmp_path):
    path = suite_file(SUITE)
    cli("run", path, "--only", "one")
    [done] = sorted((tmp_path / "results" / path.stem).glob("one-s0-*/status.json"))
    long = "the free phase has not settled " + "x" * 200 + ": raise T"
    done.write_text(json.dumps({**json.loads(done.read_text()), "warnings": [long, "short one",
                                                                            "a\x1b]0;pwned\x07\nb"]}))
    out = cli("status", path, "--only", "one").output
    assert "warning: " + long[:WARNING_WIDTH - 1] + "…\n" in out and "raise T" not in out
    assert "warning: short one\n" in out and "`bench status --full` prints them whole" in out
    assert "warning: a?]0;pwned??b\n" in out and "\x1b" not in out  # no terminal escape, one line
    full = cli("status", path, "--only", "one", "--full").output
    assert f"warning: {long}\n" in full and "--full` prints" not in full


def test_table_formats_and_output(cli, suite_file, tmp_path):
    path = suite_file(SUITE)
    cli("run", path, "--only", "one")
    latex = cli("table", path, "--format", "latex")
    assert "\\toprule" in latex.output and "1.5 $\\pm$ 0.7" in latex.output
    out = tmp_path / "t.csv"
    cli("table", path, "--format", "csv", "--output", out)
    assert out.read_text().splitlines()[:2] == ["name,score", "one,1.5 ± 0.7"]  # the printed table's shape
    cli("table", path, "--format", "csv", "--long", "--output", out)
    assert out.read_text().splitlines()[0].startswith("name,metric,mean,std,n")  # tidy
    bad = cli("table", path, "--table", "mian")
    assert bad.exit_code == 1 and "no table 'mian'" in bad.output


def test_table_of_some_runs_and_some_tables(cli, suite_file):
    """--only keeps those runs' rows and counts the † against them alone; --table repeats; a table
    whose `where` keeps none of the chosen runs is left out, and a misspelled table gets a hint."""
    path = suite_file(SUITE + """
    [tables.seeds]
    title = "per seed"
    rows = ["name", "seed"]
    metrics = ["score"]
    where = { name = "two" }
    """)
    cli("run", path)
    full = cli("table", path).output
    assert "| two    | — †" in full and "† name=two: 0/2 runs done (2 failed, 0 not run)" in full
    one = cli("table", path, "--only", "one")
    assert one.exit_code == 0 and "| one    | 1.5 ± 0.7" in one.output
    assert "two" not in one.output and "†" not in one.output and "per seed" not in one.output
    both = cli("table", path, "--table", "seeds", "--table", "main").output
    assert both.index("**per seed**") < both.index("| one ")  # both tables, in the order asked
    none = cli("table", path, "--only", "one", "--table", "seeds")
    assert none.exit_code == 1 and "no table shows the runs chosen by --only one: the `where` of 'seeds'" in none.output
    some = cli("table", path, "--only", "one", "--table", "seeds", "--table", "main")
    assert some.exit_code == 0 and "table(s) 'seeds' left out: their `where` keeps none of the runs" in some.output
    unrun = cli("table", path, "--only", "two", "--set", "model.offset=3.0")  # the hint repeats the selection
    assert unrun.exit_code == 1 and "`bench run " in unrun.output
    assert "--only two --set model.offset=3.0` makes them" in unrun.output, unrun.output
    bad = cli("table", path, "--table", "sedes")
    assert bad.exit_code == 1 and "no table 'sedes' (did you mean 'seeds'?); tables: main, seeds" in bad.output


def test_only_matches_nothing(cli, suite_file):
    result = cli("run", suite_file(SUITE), "--only", "onee")
    assert result.exit_code == 1 and "did you mean 'one'?" in result.output


def test_plugins_and_list(cli):
    result = cli("plugins", "--json")
    [info] = [p for p in json.loads(result.output) if p["name"] == "testplugin"]
    assert info["status"] == "loaded" and info["distribution"] == "bench-testplugin"
    assert info["version"] == "0.0.1" and "run_kind:score" in info["components"]
    listing = cli("list", "models")
    assert "const  (testplugin)  A model that is a constant." in listing.output
    assert "offset: float, required — added to the seed" in listing.output
    assert "width: int, default 3" in listing.output
    kinds = cli("list", "run_kinds")
    assert "slot model: model, required" in kinds.output
    assert "keys every run accepts" in kinds.output and "batch_algorithms: bool, default False" in kinds.output
    assert "keys every run accepts" not in listing.output  # only with the run kinds


def test_missing_suite_file(cli, tmp_path):
    result = cli("validate", tmp_path / "nope.toml")
    assert result.exit_code == 1 and "nope.toml" in result.output and "file not found" in result.output


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted(tmp_path):
    """`kill` of a running `bench run` records the run as interrupted; the next run resumes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from harness.results.store import RunStore

    site = tmp_path / "site"
    site.mkdir()
    write_dist(site, "bench-slow", "0.1", {"slow": "slow_plugin"}, {"slow_plugin": """
        import time
        from harness import Slot, hookimpl

        def make():
            def execute(ctx):
                (ctx.store.dir / "started").write_text("yes")
                time.sleep(60)
            return execute

        @hookimpl
        def register_run_kinds(register):
            register("sleep", make)
    """})
    suite = tmp_path / "slow.toml"
    suite.write_text('[[runs]]\nname = "zzz"\nkind = "sleep"\ndevice = "cpu"\n')
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "BENCH_PLUGINS": "slow", "BENCH_RESULTS_DIR": str(tmp_path / "results")}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_dir = None
    deadline = time.monotonic() + 600  # generous: the child imports torch, and CI may be loaded
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "results" / "slow").glob("*/started"))
        if found:
            run_dir = found[0].parent
            break
        time.sleep(0.1)
    assert run_dir is not None, proc.communicate(timeout=5)[0]
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "run the same command again to resume" in out
    assert RunStore(run_dir).status() == "interrupted"


def test_table_without_results_says_how_to_make_them(cli, suite_file):
    path = suite_file(SUITE)
    result = cli("table", path)
    assert result.exit_code == 1
    assert "no finished run of suite 'demo' in " in result.output and f"`bench run {path}` makes them" in result.output


def test_a_table_of_single_runs_claims_no_standard_deviation(cli, suite_file):
    path = suite_file(SUITE.replace("seeds = [0, 1]", "seeds = [0]"))
    result = cli("run", path)
    assert "one run per cell: values without a standard deviation" in result.output
    assert "± std" not in result.output


def test_help_does_not_import_torch():
    """`bench --help` answers without importing torch (about 3 s of a 2-core machine's time): only the
    commands that run, or that load plugins whose components need it, import it."""
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom harness.cli.commands import main\n"
            "out = CliRunner().invoke(main, ['--help'])\nassert out.exit_code == 0 and 'Commands:' in out.output\n"
            "print('torch' in sys.modules, 'harness.run.runner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"], out.stdout


def test_a_run_claimed_by_another_invocation_is_not_called_recorded(cli, suite_file, tmp_path):
    """A run that another live process holds is skipped as being run, not as '1 already recorded
    (1 missing)', which contradicted itself."""
    from harness.plugins import PluginManager
    from harness.results.claims import Claim
    from harness.suite.load import load_suite

    path = suite_file(SUITE)
    manager = PluginManager()
    manager.load_entry_points()
    run = load_suite(path, manager.registry).runs[0]
    claim = Claim(tmp_path / "results" / "demo" / run.id)
    assert claim.acquire()
    try:
        out = cli("run", path, "--results-dir", tmp_path / "results", "--no-table")
    finally:
        claim.release()
    assert "1 run(s) being run now by another worker or invocation, skipped" in out.output
    assert "already recorded" not in out.output


def test_the_installed_version_is_harness_version():
    """One place for the version: the package's metadata reads harness.__version__ (pyproject's dynamic
    version), and `bench --version` prints it."""
    from importlib.metadata import version

    from harness import __version__

    assert version("eqprop-bench") == __version__
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"bench, version {__version__}"


def test_a_run_left_running_by_a_dead_worker_is_interrupted_in_status_and_dry_run(cli, suite_file, tmp_path):
    """status.json says "running" but no live worker claims the run: both commands call it interrupted
    (and the dry run would run it), as the runner treats it."""
    path = suite_file(SUITE)
    cli("run", path, "--only", "one")
    [record] = sorted((tmp_path / "results" / path.stem).glob("one-s0-*/status.json"))
    record.write_text(json.dumps({"status": "running", "started": "T"}))  # no claim.json beside it
    run_id = record.parent.name
    assert f"run   {run_id}  (interrupted)" in cli("run", path, "--only", "one", "--dry-run").output
    assert f"interrupted {run_id}" in cli("status", path, "--only", "one").output


def test_a_missing_suite_file_names_the_closest_one(cli, tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    for name in ("table1.toml", "table1-quick.toml", "table3.toml"):
        (tmp_path / "suites" / name).write_text("")
    monkeypatch.chdir(tmp_path)
    assert "file not found; did you mean suites/table1-quick.toml?" in cli("validate", "suites/tabel1-quick.toml").output
    assert "file not found; did you mean suites/table1.toml?" in cli("table", "table1").output  # folder left out
    far = cli("validate", "suites/zzzz.toml").output  # nothing close: the files that are there
    assert "file not found (suite files there: suites/table1-quick.toml, suites/table1.toml, suites/table3.toml)" in far
    assert "file not found (there is no folder nowhere)" in cli("status", "nowhere/t.toml").output


def test_a_table_none_of_whose_runs_finished_says_so(cli, suite_file):
    path = suite_file(SUITE + """
    [tables.failing]
    where = { name = "two" }
    rows = ["name"]
    metrics = ["score"]
""")
    cli("run", path)  # "one" is done, "two" fails: the second table has no finished run
    out = cli("table", path, "--table", "failing").output
    assert "_no finished run yet; † a cell with fewer finished runs than planned" in out, out
    assert "one run per cell" not in out and "name=two: 0/2 runs done (2 failed, 0 not run)" in out


def test_a_run_waiting_in_a_live_bench_run_is_queued_in_status(cli, suite_file, tmp_path):
    """`bench run` lists the runs it has yet to execute in a queue file that lives as long as it does:
    `bench status` calls them queued and says whose turn they wait for, not missing or interrupted; a
    dead invocation's list counts for nothing, and `bench run` leaves none behind."""
    import os
    import socket

    from harness.results.claims import Queue

    path = suite_file(SUITE)
    cli("run", path, "--only", "one", "--no-table")
    base = tmp_path / "results" / path.stem
    assert not list(base.glob("queue-*.json"))  # a finished `bench run` leaves no list behind
    [first, second] = sorted(p.name for p in base.glob("one-s*"))
    (base / first / "status.json").write_text(json.dumps({"status": "running", "started": "T"}))  # a dead worker's
    queue = Queue(base, [first, "two-s0-x"])
    with queue:
        out = cli("status", path).output
        assert f"queued      {first}" in out and f"done        {second}" in out, out
        assert f"waiting for its turn in the `bench run` of pid {os.getpid()}" in out
        assert "(its `bench run` resumes there)" not in out  # (it has no checkpoint)
        table = cli("table", path).output  # the table's footnote counts it the same way
        assert "† name=one: 1/2 runs done (0 failed, 1 queued, 0 not run)" in table, table
    assert not queue.path.exists()
    assert f"interrupted {first}" in cli("status", path).output  # its bench run is gone
    dead = {"runs": [first], "host": socket.gethostname(), "pid": 2 ** 22 + 12345, "expires": 1e12, "started": 0}
    (base / "queue-dead.json").write_text(json.dumps(dead))  # a killed invocation's, on this host (pid > pid_max)
    assert f"interrupted {first}" in cli("status", path).output
    cli("run", path, "--only", "one", "--no-table")
    assert not list(base.glob("queue-*.json"))  # the next `bench run` clears it away
