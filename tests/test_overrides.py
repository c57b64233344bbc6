"""`--set KEY=VALUE`: a change without editing the suite, validated like the suite, part of the ids."""

import json
import tomllib

import pytest
from click.testing import CliRunner

from conftest import tiny_net_suite
from harness.cli.commands import main

SUITE = "\n" + tiny_net_suite("over")


@pytest.fixture
def bench(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "results"))
    path = tmp_path / "over.toml"
    path.write_text(SUITE)

    def run(*args):
        result = CliRunner().invoke(main, [args[0], str(path), *map(str, args[1:])])
        assert "Traceback" not in result.output
        return result.exit_code, result.output

    return run


def test_an_override_is_shown_and_changes_the_ids(bench):
    plain = tomllib.loads(bench("show")[1])["runs"]
    code, out = bench("show", "--set", "epochs=2", "--set", "model.hidden=[4]", "--set", "seeds=[1, 2]")
    assert code == 0, out
    runs = tomllib.loads(out)["runs"]
    assert {(r["epochs"], tuple(r["model"]["hidden"]), r["seed"]) for r in runs} == {(2, (4,), 1), (2, (4,), 2)}
    assert not {r["id"] for r in runs} & {r["id"] for r in plain}
    assert {r["model"]["activation"] for r in runs} == {"sigmoid"}  # the rest of the table is kept


@pytest.mark.parametrize("option,message", [
    ("epoch=2", "--set epoch: unknown key 'epoch' for a run of kind 'train'; did you mean 'epochs'?"),
    ("model.hiddn=[4]", "--set model.hiddn: unknown key 'hiddn' for model 'p'; did you mean 'hidden'?"),
    ("modl.hidden=[4]", "--set modl.hidden: unknown key 'modl' for a run of kind 'train'; did you mean 'model'?"),
    ("T=0", "--set T: 0 is out of range"),
    ("algorithm=ep", "--set algorithm: run 'net' varies 'algorithm' in its grid; edit the suite"),
    ("algorithm.beta=0.2", "--set algorithm.beta: run 'net' varies 'algorithm.beta' in its grid; edit the suite"),
    ("resources.cpu=2", "--set resources.cpu: unknown key 'cpu' for a run's resources; did you mean 'cpus'?"),
    ("name=x", "--set name: a run's name cannot be overridden"),
])
def test_a_bad_override_is_refused_naming_it(bench, option, message):
    for command in ("validate", "run", "show"):
        code, out = bench(command, "--set", option)
        assert code == 1 and message in out, out


@pytest.mark.parametrize("executor", ["local", "processes"])
@pytest.mark.slow
def test_a_run_with_an_override_records_it(bench, tmp_path, executor):
    workers = ["--workers", "1"] if executor == "processes" else []
    code, out = bench("run", "--set", "epochs=2", "--executor", executor, *workers, "--no-table")
    assert code == 0 and "summary: 2 done" in out, out
    for run in (tmp_path / "results" / "over").iterdir():
        config = json.loads((run / "config.json").read_text())
        assert config["params"]["epochs"] == 2 and config["overrides"] == {"epochs": 2}
        assert [c["epoch"] for c in json.loads((run / "metrics.json").read_text())["curves"]] == [1, 2]
    assert bench("status", "--set", "epochs=2")[1].count("done ") == 2
    assert "total: 2 missing" in bench("status")[1]  # the suite as written: other runs


def test_the_report_gives_the_commands_with_the_overrides(bench, tmp_path):
    assert bench("run", "--set", "epochs=2", "--set", "model.hidden=[4]", "--no-table")[0] == 0
    code, out = bench("report", "--set", "epochs=2", "--set", "model.hidden=[4]")
    assert code == 0, out
    text = (tmp_path / "results" / "over" / "report.md").read_text()
    assert "--set epochs=2 --set 'model.hidden=[4]'" in text


def test_threads_option_sets_torch_threads_where_runs_execute(bench, monkeypatch):
    import torch

    seen = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    before = torch.get_num_threads()
    try:
        code, out = bench("run", "--threads", "1", "--no-table")
        assert code == 0, out
        assert seen and set(seen) == {1}
        assert bench("run", "--threads", "0")[0] == 2  # refused by the option itself
    finally:
        real(before)


def test_status_says_which_set_would_find_runs_made_with_one(bench):
    """Runs made with --set are not this suite's runs without it: `bench status` names the --set that
    would read them, so that a table or report is not made (empty) without it."""
    assert bench("run", "--set", "epochs=2", "--set", "T=6", "--no-table")[0] == 0
    code, out = bench("status")
    assert "not in this suite: 2 result directories" in out
    assert "2 of them are runs of this suite with other settings: --set 'T=6' --set 'epochs=2'" in out
    code, out = bench("status", "--set", "epochs=2", "--set", "T=6")
    assert code == 0 and "not in this suite" not in out and out.count("done ") == 2


MIXED = SUITE.replace("epochs = 1\n", "").replace('name = "net"\n', 'name = "net"\nepochs = 1\n') + """
[[runs]]
name = "gdu"
kind = "gdu"
algorithm = { name = "ep", beta = 0.5 }
"""


def test_an_override_applies_to_the_runs_that_have_the_key(bench, tmp_path):
    """A suite of two kinds: epochs exists for the training runs only, and is written into them; the
    GDU run keeps its id. (The README's own example failed: every run had to accept every key.)"""
    (tmp_path / "over.toml").write_text(MIXED)
    code, plain = bench("show", "--only", "gdu", "--format", "json")
    code, out = bench("show", "--set", "epochs=2", "--format", "json")
    assert code == 0, out
    runs = {r["name"] + r.get("algorithm", {}).get("name", ""): r for r in json.loads(out)}
    assert runs["netep"]["epochs"] == 2 and "epochs" not in runs["gduep"]
    assert runs["gduep"]["id"] == json.loads(plain)[0]["id"]
    code, out = bench("run", "--set", "epochs=2", "--only", "net", "--dry-run")
    assert code == 0 and out.count("(missing)") == 2 and "gdu" not in out, out


def test_an_override_no_selected_run_has_is_an_error_naming_it(bench, tmp_path):
    (tmp_path / "over.toml").write_text(MIXED)
    code, out = bench("run", "--set", "epochs=2", "--only", "gdu", "--dry-run")
    assert code == 1 and "--set epochs: unknown key 'epochs' for a run of kind 'gdu'" in out
    assert "(no run selected by --only gdu has it)" in out
    code, out = bench("validate", "--set", "epoch=2")  # no run of the suite has it: a misspelling
    assert code == 1 and "--set epoch: unknown key 'epoch'" in out and "did you mean 'epochs'?" in out


def test_a_misspelled_key_is_still_named_beside_a_run_of_an_unknown_kind(bench, tmp_path):
    (tmp_path / "over.toml").write_text(MIXED.replace('kind = "gdu"', 'kind = "gdux"'))
    code, out = bench("validate", "--set", "epoch=2")
    assert code == 1 and "gdux" in out and "--set epoch: unknown key 'epoch'" in out, out


def test_a_bad_value_for_a_key_only_some_runs_have_is_one_error_naming_those_runs(bench, tmp_path):
    """`epochs=two` in a suite of two kinds: the training run refuses the value, which is the one error
    (the GDU run, without the key, is not reported as lacking it), with the run it fails in."""
    (tmp_path / "over.toml").write_text(MIXED)
    code, out = bench("validate", "--set", "epochs=two")
    assert code == 1 and "1 problem(s)" in out, out
    assert "--set epochs: expected int in [1, 100000], got str 'two' (in run 'net')" in out
    assert "unknown key" not in out


BOTH = SUITE.replace('grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]', 'grid.algorithm = ["ep", "bptt"]') + """
[[runs]]
name = "ep"
algorithm = { name = "ep", beta = 0.5 }
"""


def test_a_component_key_applies_to_the_runs_whose_every_component_has_it(bench, tmp_path):
    """`--set algorithm.beta` where one run's grid gives it EP (which has beta) and BPTT (which has not):
    not written into that run at all (neither grid point), written into the EP run; an error only when
    no selected run has it."""
    (tmp_path / "over.toml").write_text(BOTH)
    plain = {r["id"] for r in json.loads(bench("show", "--format", "json")[1])}
    code, out = bench("show", "--set", "algorithm.beta=0.2", "--format", "json")
    assert code == 0, out
    runs = {(r["name"], r["algorithm"]["name"]): r for r in json.loads(out)}
    assert runs["ep", "ep"]["algorithm"]["beta"] == 0.2 and runs["ep", "ep"]["id"] not in plain
    assert runs["net", "ep"]["algorithm"]["beta"] != 0.2 and "beta" not in runs["net", "bptt"]["algorithm"]
    assert {runs["net", "ep"]["id"], runs["net", "bptt"]["id"]} <= plain
    code, out = bench("run", "--set", "algorithm.beta=0.2", "--only", "net", "--dry-run")
    assert code == 1 and "--set algorithm.beta: unknown key 'beta' for algorithm 'bptt'" in out, out
    assert "(no run selected by --only net has it)" in out


def test_every_switch_can_be_set_is_shown_and_changes_no_id(bench):
    from harness.suite.spec import SWITCHES

    plain = tomllib.loads(bench("show")[1])["runs"]
    for p in SWITCHES:
        value = not p.default if p.type is bool else next(c for c in p.choices if c != p.default)
        shown = str(value).lower() if isinstance(value, bool) else value
        code, out = bench("show", "--set", f"{p.name}={shown}")
        assert code == 0, out
        runs = tomllib.loads(out)["runs"]
        assert [r["id"] for r in runs] == [r["id"] for r in plain] and {r[p.name] for r in runs} == {value}
