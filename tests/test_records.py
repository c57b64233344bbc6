"""What a run kind declares it records (``harness.api.records.Records``): a table naming anything else fails
``bench validate`` with every misspelling at once, and a kind cannot record a name it did not declare."""

import textwrap
import types

import harness_test_plugin
import pytest

from harness import Param, Slot, hookimpl
from harness.api.records import Records
from harness.plugins import PluginManager
from harness.results.store import RunStore
from harness.run.runner import Runner
from harness.suite.load import SuiteError, load_suite


class Declared:
    """Records one final value per layer and a loss per epoch; with ``extra``, a name it never declared."""

    records = Records(metrics=("score",), columns=("layer",), curves=("loss",))

    def __init__(self, extra: str = ""):
        self.extra = extra

    def __call__(self, ctx):
        ctx.build("model")
        ctx.log_epoch(1, loss=0.5)
        for layer in ("W01", "W12"):
            ctx.record("score", 1.0, layer=layer)
        if self.extra:
            ctx.record(self.extra, 2.0)


@pytest.fixture
def declaring():
    plugin = types.SimpleNamespace(register_run_kinds=hookimpl(lambda register: register(
        "declared", Declared, params=[Param("extra", str, "")], slots=[Slot("model", "model")])))
    m = PluginManager()
    m.register_plugin(harness_test_plugin, "testplugin")  # the `const` model and the undeclared `score` kind
    m.register_plugin(plugin, "declaring")
    return m.registry


def suite(tmp_path, tables: str, kind: str = "declared") -> str:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(f"""
        name = "s"
        [[runs]]
        name = "a"
        kind = "{kind}"
        device = "cpu"
        model = {{ name = "const", offset = 1.0 }}
    """) + textwrap.dedent(tables))
    return path


def test_every_misspelled_table_key_is_named_at_once(declaring, tmp_path):
    path = suite(tmp_path, """
        [tables.t]
        rows = ["nmae", "layer"]
        columns = ["modle", "metric"]
        metrics = ["scor"]
        where = { knd = "declared" }
        [tables.u]
        epoch = 1
        metrics = ["score"]
        labels = { los = "loss" }
    """)
    with pytest.raises(SuiteError) as err:
        load_suite(path, declaring)
    text = str(err.value)
    assert "6 problem(s)" in text, text
    for where, word, hint in (("tables.t.rows", "'nmae'", "'name'"), ("tables.t.columns", "'modle'", "'model'"),
                              ("tables.t.where", "'knd'", "'kind'"), ("tables.t.metrics", "'scor'", "'score'"),
                              ("tables.u.labels.los", "'los'", "'loss'")):
        line = next(li for li in text.splitlines() if li.strip().startswith(f"- {where}:"))
        assert word in line and f"did you mean {hint}" in line, line
    # a per-epoch table knows the curves (loss), not the final values (score)
    line = next(li for li in text.splitlines() if li.strip().startswith("- tables.u.metrics:"))
    assert "'score' is not among the per-epoch values" in line and "(they record: loss)" in line, line


def test_at_lowest_must_name_a_per_epoch_value_and_lets_a_table_show_the_epoch(declaring, tmp_path):
    path = suite(tmp_path, """
        [tables.t]
        at_lowest = "los"
        metrics = ["loss"]
        [tables.u]
        at_lowest = "loss"
        metrics = ["loss", "epoch"]
    """)
    with pytest.raises(SuiteError) as err:
        load_suite(path, declaring)
    text = str(err.value)
    assert "1 problem(s)" in text, text  # table u is correct: `epoch` is a value of an at_lowest table
    line = next(li for li in text.splitlines() if li.strip().startswith("- tables.t.at_lowest:"))
    assert "'los' is not among the per-epoch values" in line and "did you mean 'loss'" in line, line


def test_a_correct_table_and_labels_of_values_pass(declaring, tmp_path):
    path = suite(tmp_path, """
        [tables.t]
        rows = ["name"]
        columns = ["metric"]
        metrics = ["score"]
        where = { kind = "declared", layer = "W01" }
        labels = { score = "S", declared = "D" }
        [tables.u]
        epoch = 1
        metrics = ["loss"]
        labels = { los = "typo" }
    """)
    with pytest.raises(SuiteError) as err:
        load_suite(path, declaring)
    assert str(err.value).count("problem") == 1 and "tables.u.labels.los" in str(err.value)


def test_a_kind_that_declares_nothing_is_checked_only_once_results_exist(declaring, tmp_path):
    path = suite(tmp_path, '[tables.t]\nmetrics = ["whatever"]\n', kind="score")
    assert load_suite(path, declaring).tables["t"].metrics == ["whatever"]


def test_recording_an_undeclared_name_fails_the_run_naming_it(declaring, tmp_path):
    path = suite(tmp_path, "")
    path.write_text(path.read_text().replace('device = "cpu"', 'device = "cpu"\nextra = "scroe"'))
    s = load_suite(path, declaring)
    Runner(s, declaring, tmp_path / "results").execute(s.runs)
    store = RunStore(tmp_path / "results" / "s" / s.runs[0].id)
    assert store.status() == "failed"
    error = store.status_record()["error"]
    assert "'scroe'" in error and "Records.metrics" in error and "'declared'" in error, error


def test_every_built_in_kind_declares_what_it_records(registry):
    for name in ("gdu", "bias", "train", "speed"):
        assert isinstance(registry.get("run_kind", name).factory.records, Records), name


def test_the_issues_misspellings_of_a_training_table_fail_validation(registry, tmp_path):
    """The four misspellings once caught only by `bench table` after the runs, on a built-in kind."""
    path = tmp_path / "typo.toml"
    path.write_text(textwrap.dedent("""
        [[runs]]
        name = "P-1h"
        kind = "train"
        model = { name = "p", hidden = [8], input_size = 20 }
        dataset = { name = "blobs" }
        algorithm = { name = "ep", beta = 0.1, lr = [0.1, 0.1] }
        T = 5
        K = 2
        [tables.errors]
        rows = ["nmae"]
        columns = ["algoritm", "metric"]
        metrics = ["test_err"]
        where = { knd = "train" }
    """))
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    text = str(err.value)
    assert "4 problem(s)" in text, text
    for hint in ("'name'", "'algorithm'", "'test_error'", "'kind'"):
        assert f"did you mean {hint}" in text, text


def test_a_bare_string_is_refused_where_a_tuple_of_names_is_declared():
    with pytest.raises(TypeError, match=r"Records.costs must be a tuple of names, e.g. \('seconds',\) for one"):
        Records(metrics=("seconds",), costs=("seconds"))
    with pytest.raises(TypeError, match="Records.metrics must be a tuple of names"):
        Records(metrics=("a", 1))
    assert Records(metrics=["a", "b"]).metrics == ("a", "b")  # a list is taken as one
