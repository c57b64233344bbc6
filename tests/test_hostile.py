"""A hostile-input corpus: malformed suites, bad options and damaged result trees, through `bench`.

Each case asserts the exit code, that no traceback is printed, that the message names the file,
key or run at fault, and that nothing is written outside the results directory (nor anything
at all when the input is refused before running).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_net_suite
from harness.cli.commands import main

BASE = "\n" + tiny_net_suite("hostile") + """
[[references]]
source = "a test"
columns = ["name", "algorithm", "test_error"]
rows = [["net", "ep", 10.0]]

[tables.main]
rows = ["name"]
columns = ["algorithm", "metric"]
metrics = ["test_error"]
"""


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (id, suite text or bytes, what the message must contain)
SUITES = [
    ("name-parent", edit('name = "hostile"', 'name = "../../x"'), ["name: '../../x' cannot name the suite's results"]),
    ("name-absolute", edit('name = "hostile"', 'name = "/tmp/x"'), ["name: '/tmp/x' cannot name"]),
    ("name-empty", edit('name = "hostile"', 'name = ""'), ["name: '' cannot name"]),
    ("name-dotdot", edit('name = "hostile"', 'name = ".."'), ["name: '..' cannot name"]),
    ("name-slash", edit('name = "hostile"', 'name = "a/b"'), ["name: 'a/b' cannot name"]),
    ("name-not-text", edit('name = "hostile"', "name = 3"), ["name: expected str, got 3"]),
    ("binary", bytes(range(256)) * 4, ["not UTF-8 text"]),
    ("latin-1", "name = \"caf\xe9\"\n".encode("latin-1"), ["not UTF-8 text (byte b'\\xe9' at offset 11)"]),
    ("nested-deep", "x = " + "[" * 5000 + "]" * 5000 + "\n", ["nested too deeply"]),
    ("not-toml", "name = \n[[runs", ["not valid TOML"]),
    ("top-key", BASE + "\n[tabels.x]\n", ["tabels: unknown key 'tabels' for a suite; did you mean 'tables'?"]),
    ("run-key", edit('name = "net"', 'name = "net"\nepoch = 3'), ["runs[0] (net).epoch", "did you mean 'epochs'?"]),
    ("model-name", edit('name = "p", input_size', 'name = "pp", input_size'), ["defaults.model.name: unknown model 'pp'"]),
    ("algorithm-plugin", edit('"bptt"]', '"eqprop"]'), ["unknown algorithm 'eqprop'"]),
    ("kind", edit('kind = "train"', 'kind = "trian"'), ["defaults.kind: unknown run_kind 'trian'", "'train'"]),
    ("dropped-default", edit('name = "net"', 'name = "net"\nmodel = { name = "eb", input_size = 6, output_size = 3 }'),
     ["runs[0] (net).model: names model 'eb', not [defaults]'s 'p', so [defaults]'s model.activation = \"sigmoid\" "
      "would not apply", "model.hidden = [5] would not apply"]),
    ("dropped-by-grid", edit('algorithm = { lr = [0.1, 0.1] }', 'algorithm = { name = "ep", beta = 0.5, lr = [0.1, 0.1] }')
     .replace('[{ name = "ep", beta = 0.5 }, "bptt"]', '["ep", "bptt"]'),
     ["runs[0] (net).grid.algorithm: names algorithm 'bptt', not the run's 'ep', so the run's algorithm.beta = 0.5"]),
    ("default-refused-by-a-kind", BASE + '\n[[runs]]\nname = "gdu"\nkind = "gdu"\nalgorithm = "ep"\n',
     ["defaults.epochs: unknown key 'epochs' for a run of kind 'gdu'", "(in run 'gdu')"]),
    ("where-no-run", BASE + 'where = { algorithm = "epp" }\n',
     ["tables.main.where.algorithm: 'epp' matches no run", "did you mean 'ep'?"]),
    ("reference-no-run", edit('rows = [["net", "ep", 10.0]]', 'rows = [["nett", "ep", 10.0]]'),
     ["references[0].rows[0]: {'name': 'nett', 'algorithm': 'ep'} matches no run", "name = 'net'"]),
    ("duplicate-name", BASE + '\n[[runs]]\nname = "net"\nalgorithm = "bptt"\n', ["duplicate run name 'net'"]),
    ("seeds-type", edit("seeds = [0]", 'seeds = ["zero"]'), ["seeds: expected a non-empty list[int]"]),
    ("grid-not-list", edit('grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]', 'grid.T = 5'),
     ["runs[0] (net).grid.T: expected a non-empty list of values, got 5"]),
    ("T-type", edit("T = 5", 'T = "5"'), ["defaults.T: expected int in [1, 100_000_000], got str '5'"]),
    ("K-above-T", edit("K = 2", "K = 9"), ["runs[0] (net)", "K"]),
    ("T-missing", edit("T = 5\n", ""), ["T: missing required parameter of run kind 'train'"]),
    ("T-huge", edit("T = 5", f"T = {2**63 - 1}"), ["defaults.T: 9223372036854775807 is out of range: expected int in [1, 100_000_000]"]),
    ("tracker-escape", edit('name = "hostile"', 'name = "hostile"\ntrackers = [{ name = "tensorboard", log_dir = "../../x" }]'), ["trackers[0]: tracker 'tensorboard': log_dir '../../x' leads outside the suite's results directory"]),
    ("epochs-huge", edit("epochs = 1", "epochs = 99999999999999999999"), ["defaults.epochs: 99999999999999999999 is out of range: expected int in [1, 100000]"]),
    ("name-newline", edit('name = "net"', 'name = "net\\nrow"'), ["runs[0].name: 'net\\nrow': a run name labels table rows", "printable characters only"]),
    ("name-escape", edit('name = "net"', 'name = "net\\u001b[31m"'), ["runs[0].name: 'net\\x1b[31m'", "no newline, tab or control character"]),
    ("name-long", edit('name = "net"', f'name = "{"n" * 400}"'), ["runs[0].name: '" + "n" * 60 + "'...: a run name", "at most 100"]),
    ("T-zero", edit("T = 5", "T = 0"), ["defaults.T: 0 is out of range"]),
    ("n-train-zero", edit("n_train = 40", "n_train = 0"), ["defaults.dataset.n_train: 0 is out of range"]),
    ("beta-nan", edit("beta = 0.5", "beta = nan"), ["runs[0] (net).algorithm.beta: expected a finite number, got nan"]),
    ("lr-inf", edit("lr = [0.1, 0.1]", "lr = [inf, 0.1]"), ["defaults.algorithm.lr: expected a finite number, got inf"]),
    ("lr-negative", edit("lr = [0.1, 0.1]", "lr = [-0.1, 0.1]"), ["defaults.algorithm.lr: -0.1 is out of range"]),
    ("beta-zero", edit("beta = 0.5", "beta = 0.0"), ["runs[0] (net).grid.algorithm: algorithm 'ep': EP needs beta != 0 (its updates are divided by beta) "
      "(grid point {'algorithm': {'name': 'ep', 'beta': 0.0}})"]),
    ("dtype", edit('device = "cpu"', 'device = "cpu"\ndtype = "float16"'), ["dtype: expected one of 'float32', 'float64'"]),
    ("executor", BASE + '\n[executor]\nname = "slurmm"\n', ["executor.name: unknown executor 'slurmm'"]),
    ("flag-type", edit('device = "cpu"', 'device = "cpu"\nbatch_seeds = "yes"'), ["batch_seeds: expected bool, got str 'yes'"]),
    ("grid-seeds", edit('grid.algorithm', 'grid.seeds = [[0], [1]]\ngrid.algorithm'), ["'seeds' cannot vary in a grid; use `seeds = [...]`"]),
    ("hidden-zero", edit("hidden = [5]", "hidden = [0]"), ["defaults.model.hidden: 0 is out of range"]),
    ("lr-length", edit("lr = [0.1, 0.1]", "lr = [0.1, 0.1, 0.1]"),
     ["defaults.algorithm.lr: 3 learning rate(s) for the 2 parameter groups of model 'p' (W12, W01, input → output)"]),
    ("classes-mismatch", edit("output_size = 3", "output_size = 10"),
     ["defaults.model: model 'p' has 10 output units but dataset 'blobs' has 3 classes"]),
    ("input-mismatch", edit("input_size = 6, output_size", "input_size = 7, output_size"),
     ["defaults.model: model 'p' takes inputs of 7 values but dataset 'blobs' gives 6"]),
]


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """``bench(*args)`` run in ``tmp_path``: (exit code, output); checks nothing escaped results/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))

    def run(*args):
        before = {p for p in tmp_path.rglob("*") if "results" not in p.relative_to(tmp_path).parts}
        result = CliRunner().invoke(main, [str(a) for a in args])
        after = {p for p in tmp_path.rglob("*") if "results" not in p.relative_to(tmp_path).parts}
        assert after == before, f"written outside the results directory: {sorted(map(str, after - before))}"
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result.exit_code, result.output

    return run


def _write(tmp_path: Path, content, name="suite.toml") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_the_base_suite_is_valid(bench, tmp_path):
    code, out = bench("validate", _write(tmp_path, BASE))
    assert code == 0, out


@pytest.mark.parametrize("content,expected", [c[1:] for c in SUITES], ids=[c[0] for c in SUITES])
def test_a_malformed_suite_is_refused_by_validate_and_run(bench, tmp_path, content, expected):
    path = _write(tmp_path, content)
    for command in ("validate", "run", "show"):
        code, out = bench(command, path)
        assert code == 1, out
        assert str(path) in out  # the file is named
        for text in expected:
            assert text in out, (command, out)
    assert not (tmp_path / "results").exists()  # refused before anything was written


def test_a_suite_file_named_unsafely_needs_a_name(bench, tmp_path):
    path = _write(tmp_path, BASE.replace('name = "hostile"\n', ""), name="my suite.toml")
    code, out = bench("validate", path)
    assert code == 1 and "name (the file's stem 'my suite', as no `name` is set)" in out


def test_a_missing_suite_file(bench, tmp_path):
    code, out = bench("validate", tmp_path / "nope.toml")
    assert code == 1 and "nope.toml" in out and "file not found" in out


def test_a_directory_given_as_suite(bench, tmp_path):
    code, out = bench("run", tmp_path)
    assert code == 2 and "is a directory" in out


# -- options and the results tree ------------------------------------------------------------
def test_an_absent_device_is_refused_before_anything_is_written(bench, tmp_path):
    code, out = bench("run", _write(tmp_path, BASE), "--device", "cuda:7")
    assert code == 1 and "device 'cuda:7' asked for" in out and "nothing was run" in out
    assert not (tmp_path / "results").exists()


def test_only_matching_no_run(bench, tmp_path):
    code, out = bench("run", _write(tmp_path, BASE), "--only", "nett")
    assert code == 1 and "--only nett matches no run (did you mean 'net'?)" in out


@pytest.mark.parametrize("command", ["run", "status", "table", "report", "plot"])
def test_a_results_path_through_a_file(bench, tmp_path, command):
    (tmp_path / "results").write_text("not a directory")
    path = _write(tmp_path, BASE)
    code, out = bench(command, path)  # the option's own check
    assert code == 2 and "'--results-dir': Directory" in out and "is a file" in out
    code, out = bench(command, path, "--results-dir", tmp_path / "results" / "sub")
    assert code == 1 and f"{tmp_path / 'results'} is a file, not a directory" in out


def test_an_unknown_table(bench, tmp_path):
    code, out = bench("table", _write(tmp_path, BASE), "--table", "mian")
    assert code == 1 and "no table 'mian' (did you mean 'main'?); tables: main" in out


@pytest.fixture
def ran(bench, tmp_path):
    path = _write(tmp_path, BASE)
    code, out = bench("run", path)
    assert code == 0, out
    runs = sorted((tmp_path / "results" / "hostile").iterdir())
    assert len(runs) == 2
    return path, runs


@pytest.mark.parametrize("damage", ["truncated-metrics", "garbage-status", "unknown-status", "no-metrics",
                                    "metrics-not-an-object", "binary-metrics"])
def test_a_damaged_result_is_corrupt_shown_survived_and_rerun(bench, tmp_path, ran, damage):
    path, (run, other) = ran
    if damage == "truncated-metrics":
        text = (run / "metrics.json").read_text()
        (run / "metrics.json").write_text(text[: len(text) // 2])
    elif damage == "garbage-status":
        (run / "status.json").write_text('{"status": "do')
    elif damage == "unknown-status":
        (run / "status.json").write_text('{"status": "finished"}')
    elif damage == "no-metrics":
        (run / "metrics.json").unlink()
    elif damage == "metrics-not-an-object":
        (run / "metrics.json").write_text("[1, 2]")
    else:
        (run / "metrics.json").write_bytes(b"\xff\xfe\x00")
    code, out = bench("status", path)
    assert code == 1 and f"corrupt     {run.name}" in out and "the next `bench run` re-runs this run" in out
    assert f"done        {other.name}" in out
    for command in ("table", "report"):
        code, out = bench(command, path)
        assert code == 0, out
    code, out = bench("table", path)
    assert "1 corrupt" in out  # the footnote counts it apart
    code, out = bench("run", path)
    assert code == 0 and "1 to do" in out
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert bench("status", path)[0] == 0 and "corrupt" not in bench("status", path)[1]


def test_a_damaged_checkpoint_is_set_aside_not_trusted(bench, tmp_path, ran):
    path, (run, _) = ran
    (run / "status.json").write_text('{"status": "interrupted"}')
    (run / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a checkpoint")
    code, out = bench("run", path)
    assert code == 0, out
    assert "checkpoint.pt cannot be read" in out and "set aside as checkpoint.pt.corrupt" in out
    assert (run / "checkpoint.pt.corrupt").exists() and not (run / "checkpoint.pt").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "done"


def test_a_checkpoint_of_the_right_run_with_the_wrong_shapes_is_set_aside(bench, tmp_path, ran):
    """The run's own id, tensors of another size (a hand-edited or half-copied file): not torch's
    "size mismatch" as the run's failure, but the file named, set aside, and the run trained afresh."""
    import torch

    path, (run, _) = ran
    config = json.loads((run / "config.json").read_text())
    state = {"model": {"w.W01": torch.zeros(2, 2)}, "shuffle": torch.random.get_rng_state(), "epoch": 1,
             "history": [{"epoch": 1, "test_error": 50.0}]}
    torch.save({"config": config, "state": state, "elapsed": 1.0}, run / "checkpoint.pt")
    (run / "status.json").write_text('{"status": "interrupted"}')
    code, out = bench("run", path)
    assert code == 0, out
    assert "checkpoint.pt does not fit this run's model" in out and "set aside as checkpoint.pt.corrupt" in out
    assert (run / "checkpoint.pt.corrupt").exists() and not (run / "checkpoint.pt").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "done"
    assert "resumed" not in json.loads((run / "status.json").read_text())
    # trained afresh: no earlier invocation's environment is claimed for it
    assert "earlier" not in json.loads((run / "environment.json").read_text())


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_a_worker_count_below_one_is_refused(bench, tmp_path, workers):
    path = _write(tmp_path, BASE)
    code, out = bench("run", path, "--executor", "processes", "--workers", workers)
    assert code == 2 and "--workers" in out and "is not in the range x>=1" in out
    code, out = bench("run", path, "--executor", "processes", "--executor-opt", f"workers={workers}")
    assert code == 1 and "workers" in out and "out of range" in out, out


def test_a_table_that_would_average_different_configurations_is_refused(bench, tmp_path):
    text = edit('grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]',
                'grid.algorithm = [{ name = "ep", beta = 0.1 }, { name = "ep", beta = 0.5 }]')
    path = _write(tmp_path, text)
    code, out = bench("run", path, "--no-table")
    assert code == 0, out
    code, out = bench("table", path)
    assert code == 1 and "table 'main': the cell name=net, algorithm=ep would average runs that differ in " \
                         "algorithm.beta (0.1 vs 0.5)" in out and "add 'algorithm.beta' to the table's rows" in out
    fixed = _write(tmp_path, text.replace('columns = ["algorithm", "metric"]',
                                          'columns = ["algorithm", "algorithm.beta", "metric"]'))
    code, out = bench("table", fixed)
    assert code == 0 and "EP" not in out and "ep 0.1 test_error" in out, out


def test_a_misspelled_metric_is_refused_before_any_run(bench, tmp_path, ran):
    """Named by validate from what the train kind declares it records, not after hours by `bench table`."""
    bad = _write(tmp_path, BASE.replace('metrics = ["test_error"]', 'metrics = ["test_eror"]'), "bad.toml")
    for command in ("validate", "table", "run"):
        code, out = bench(command, bad)
        assert code == 1 and ("tables.main.metrics: 'test_eror' is not among the final values its runs' kinds "
                              "record; did you mean 'test_error'?") in out, (command, out)


def test_result_files_are_readable_by_collaborators(ran):
    _, (run, _) = ran
    for f in ("status.json", "metrics.json", "config.json", "environment.json"):
        assert (run / f).stat().st_mode & 0o044 == 0o044, f
    assert not math.isnan(0.0)


def test_a_damaged_artifact_skips_its_figure(bench, tmp_path):
    pytest.importorskip("matplotlib")
    gdu = """
name = "gdu"
[[runs]]
name = "toy"
kind = "gdu"
device = "cpu"
dtype = "float64"
T = 60
K = 5
batch_size = 4
model = { name = "toy", eps = 0.3 }
dataset = { name = "random", n_train = 8, n_test = 2 }
algorithm = { name = "ep", beta = 0.01 }
"""
    path = _write(tmp_path, gdu)
    assert bench("run", path, "--no-table")[0] == 0
    [run] = (tmp_path / "results" / "gdu").iterdir()
    (run / "artifacts" / "processes.pt").write_bytes(b"\x80\x02 truncated")
    code, out = bench("plot", path)
    assert code == 0, out
    assert "processes.pt cannot be read" in out and "its figure is skipped" in out
