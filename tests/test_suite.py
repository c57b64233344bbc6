"""Suite files: expansion and every validation error, with its message."""

import pytest

from harness.suite.load import SuiteError, load_suite

BASE = """
    name = "demo"
    [defaults]
    kind = "score"
    seeds = [0, 1, 2]
    model = { name = "const", offset = 1.0 }

    [[runs]]
    name = "A"

    [[runs]]
    name = "B"
    model = { width = 5 }
    grid.epochs = [1, 2]
"""


def problems(manager, path):
    with pytest.raises(SuiteError) as info:
        load_suite(path, manager.registry)
    text = str(info.value)
    assert str(path) in text  # every error names the file
    return info.value.problems


def test_defaults_grid_and_seeds_expand(manager, suite_file):
    suite = load_suite(suite_file(BASE), manager.registry)
    assert len(suite.runs) == 3 + 2 * 3
    b = [r for r in suite.runs if r.name == "B"]
    assert {(r.params["epochs"], r.seed) for r in b} == {(e, s) for e in (1, 2) for s in (0, 1, 2)}
    # a table merges over the default component: offset kept, width overridden
    assert b[0].slots["model"] == {"name": "const", "params": {"offset": 1.0, "width": 5}}
    a = suite.runs[0]
    assert a.slots["model"]["params"] == {"offset": 1.0, "width": 3}  # declared default filled in
    assert a.params == {"mode": "ok", "epochs": 2, "hold_file": ""}
    assert len({r.id for r in suite.runs}) == len(suite.runs)


def test_run_ids_are_stable_and_follow_the_config(manager, suite_file):
    ids = [r.id for r in load_suite(suite_file(BASE), manager.registry).runs]
    assert ids == [r.id for r in load_suite(suite_file(BASE), manager.registry).runs]
    assert ids[0].startswith("A-s0-")
    changed = load_suite(suite_file(BASE.replace("offset = 1.0", "offset = 2.0")), manager.registry)
    assert not set(ids) & {r.id for r in changed.runs}


def test_misspelled_key_names_path_and_fix(manager, suite_file):
    path = suite_file(BASE.replace("model = { width = 5 }", "model = { widht = 5 }"))
    [p] = problems(manager, path)
    assert p.startswith("runs[1] (B)")
    assert "model.widht" in p and "did you mean 'width'?" in p


def test_unknown_run_key_suggests_kind_param(manager, suite_file):
    [p] = problems(manager, suite_file(BASE.replace('name = "A"', 'name = "A"\nepoch = 3')))
    assert "runs[0] (A).epoch" in p and "did you mean 'epochs'?" in p


def test_wrong_type(manager, suite_file):
    [p] = problems(manager, suite_file(BASE.replace("width = 5", 'width = "five"')))
    assert "model.width: expected int, got str 'five'" in p


def test_float_accepts_int_but_int_refuses_float(manager, suite_file):
    load_suite(suite_file(BASE.replace("offset = 1.0", "offset = 1")), manager.registry)
    [p] = problems(manager, suite_file(BASE.replace("width = 5", "width = 5.5")))
    assert "expected int, got float 5.5" in p


def test_unknown_component_suggests(manager, suite_file):
    ps = problems(manager, suite_file(BASE.replace('name = "const"', 'name = "cosnt"')))
    assert any("model.name: unknown model 'cosnt' (did you mean 'const'?)" in p for p in ps)


def test_unknown_kind(manager, suite_file):
    ps = problems(manager, suite_file(BASE.replace('kind = "score"', 'kind = "scor"')))
    assert ps == ["defaults.kind: unknown run_kind 'scor' (did you mean 'score'?); known run_kinds: score"]


def test_missing_required_parameter(manager, suite_file):
    ps = problems(manager, suite_file(BASE.replace("offset = 1.0", "width = 2")))
    assert ps[0] == ("runs[0] (A).model.offset: missing required parameter of model 'const' "
                     "(float: added to the seed)")
    # reported once per run, not once per grid point and seed
    assert len(ps) == 2


def test_choices(manager, suite_file):
    [p] = problems(manager, suite_file(BASE.replace('name = "A"', 'name = "A"\nmode = "fial"')))
    assert "mode: expected one of" in p and "did you mean 'fail'?" in p


def test_top_level_and_table_keys(manager, suite_file):
    text = BASE + '\n[tables.main]\nrows = ["name"]\nmetrix = ["score"]\n'
    ps = problems(manager, suite_file("descripton = 'x'\n" + text))
    assert any(p.startswith("descripton: unknown key") and "did you mean 'description'?" in p for p in ps)
    assert any(p.startswith("tables.main.metrix") and "did you mean 'metrics'?" in p for p in ps)


def test_missing_name_and_duplicate_name(manager, suite_file):
    ps = problems(manager, suite_file(BASE.replace('name = "B"', 'name = "A"')))
    assert any("duplicate run name 'A'" in p for p in ps)
    ps = problems(manager, suite_file(BASE.replace('name = "B"\n', "")))
    assert any("runs[1].name: missing" in p for p in ps)


def test_not_toml(manager, suite_file):
    [p] = problems(manager, suite_file("this is = = not toml"))
    assert p.startswith("not valid TOML")


def test_references_are_checked(manager, suite_file):
    bad = BASE + '\n[[references]]\ncolumns = ["name", "score"]\nrows = [["A", 1.0, 3]]\n'
    ps = problems(manager, suite_file(bad))
    assert any(p.startswith("references[0].source: missing") for p in ps)
    assert any("references[0].rows: expected a list of rows of 2 values" in p for p in ps)


def test_nothing_in_a_suite_is_code(manager, suite_file):
    """A string that looks like Python is just an unknown component name."""
    ps = problems(manager, suite_file(BASE.replace('name = "const"', 'name = "__import__(\'os\').system(\'x\')"')))
    assert any("unknown model" in p for p in ps)


def test_execution_switches_do_not_change_run_ids(manager, suite_file):
    """`fast` and `batch_seeds` change how a run executes, not what it computes."""
    base = load_suite(suite_file(BASE), manager.registry)
    switched = load_suite(suite_file(BASE.replace("[defaults]", "[defaults]\nfast = false\nbatch_seeds = true")),
                          manager.registry)
    assert [r.id for r in base.runs] == [r.id for r in switched.runs]
    assert all(r.fast and not r.batch_seeds for r in base.runs)
    assert all(not r.fast and r.batch_seeds for r in switched.runs)
    ps = problems(manager, suite_file(BASE.replace("[defaults]", "[defaults]\nfast = 0")))
    assert ps == ["defaults.fast: expected bool, got int 0"]


def _toml(value):
    return str(value).lower() if isinstance(value, bool) else f'"{value}"' if isinstance(value, str) else str(value)


def test_a_switch_declared_once_is_read_checked_shown_and_kept_out_of_run_ids(manager, suite_file, monkeypatch):
    """Adding an execution switch is one Param in SWITCHES: this test declares one more there (and in
    RUN_KEYS, which takes them from SWITCHES), and that one, like every switch, is read from a suite and
    from --set, checked with the usual message, refused in a grid, printed by `bench show`, and leaves
    the run ids as they are."""
    import sys

    from harness.api.components import Param
    from harness.suite import spec
    from harness.suite.show import as_toml, resolved

    extra = Param("trace", str, "off", "a switch only this test declares", choices=("off", "on"))
    declared = spec.SWITCHES
    switches = (*declared, extra)
    for module in list(sys.modules.values()):  # wherever SWITCHES was imported, as adding it there would
        if getattr(module, "SWITCHES", None) is declared:
            monkeypatch.setattr(module, "SWITCHES", switches)
    monkeypatch.setitem(spec.RUN_KEYS, "trace", extra)
    base = load_suite(suite_file(BASE), manager.registry)
    assert [r.switches for r in base.runs] == [{p.name: p.default for p in switches}] * len(base.runs)
    for p in switches:
        value = not p.default if p.type is bool else next(c for c in p.choices if c != p.default)
        wrong = "yes" if p.type is bool else 1
        text = BASE.replace("[defaults]", f"[defaults]\n{p.name} = {_toml(value)}")
        for switched in (load_suite(suite_file(text), manager.registry),
                         load_suite(suite_file(BASE), manager.registry, {p.name: value})):
            assert [r.id for r in switched.runs] == [r.id for r in base.runs], p.name
            assert all(r.switches[p.name] == value for r in switched.runs)
            if isinstance(getattr(spec.RunSpec, p.name, None), property):  # its typed access, where it has one
                assert all(getattr(r, p.name) == value for r in switched.runs)
            assert all(resolved(r)[p.name] == value for r in switched.runs)
            assert as_toml(switched.runs).count(f"\n{p.name} = {_toml(value)}\n") == len(base.runs)
        ps = problems(manager, suite_file(BASE.replace("[defaults]", f"[defaults]\n{p.name} = {_toml(wrong)}")))
        assert ps == [f"defaults.{p.name}: expected {p.describe_type()}, got {type(wrong).__name__} {wrong!r}"]
        ps = problems(manager, suite_file(BASE.replace("grid.epochs", f"grid.{p.name} = [{_toml(value)}]\ngrid.epochs")))
        assert ps == [f"runs[1] (B).grid.{p.name}: {p.name!r} cannot vary in a grid"]


def test_a_mistake_in_defaults_is_reported_once_at_defaults(manager, suite_file):
    ps = problems(manager, suite_file(BASE.replace("offset = 1.0 }", "offset = 1.0, widht = 2 }")))
    assert ps == ["defaults.model.widht: unknown key 'widht' for model 'const'; did you mean 'width'? "
                  "Allowed: offset, width"]
    # the same key written in a run is that run's mistake
    ps = problems(manager, suite_file(BASE.replace("model = { width = 5 }", "model = { widht = 5 }")))
    assert ps[0].startswith("runs[1] (B).model.widht")


# The old suites/table1.toml: the EB rows named another model than [defaults] and lost its activation.
OLD_TABLE1 = """
    [defaults]
    kind = "train"
    dataset = "mnist"
    model = { name = "p", activation = "sigmoid" }

    [[runs]]
    name = "EB-1h"
    model = { name = "eb", hidden = [512], eps = 0.2, clip = true }
    T = 100
    K = 12
    algorithm = { lr = [0.1, 0.05] }
    grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]

    [[runs]]
    name = "P-1h"
    model = { hidden = [512] }
    T = 30
    K = 10
    algorithm = { lr = [0.08, 0.04] }
    grid.algorithm = [{ name = "ep", beta = 0.1 }, "bptt"]
"""


def test_a_default_key_dropped_by_another_component_is_an_error_naming_the_run(registry, suite_file):
    with pytest.raises(SuiteError) as info:
        load_suite(suite_file(OLD_TABLE1), registry)
    assert info.value.problems == [
        "runs[0] (EB-1h).model: names model 'eb', not [defaults]'s 'p', so [defaults]'s model.activation = "
        "\"sigmoid\" would not apply to it: restate `activation = \"sigmoid\"` (or another value) in this run's "
        "model, or move `activation` from [defaults] into the runs that use 'p'"]
    fixed = OLD_TABLE1.replace("clip = true }", "clip = true, activation = \"sigmoid\" }")
    suite = load_suite(suite_file(fixed), registry)
    acts = {(r.name, r.slots["model"]["name"], r.slots["model"]["params"]["activation"]) for r in suite.runs}
    assert acts == {("EB-1h", "eb", "sigmoid"), ("P-1h", "p", "sigmoid")}
    # restating another value is a choice, not a mistake
    load_suite(suite_file(OLD_TABLE1.replace("clip = true }", "clip = true, activation = \"tanh\" }")), registry)


def test_a_grid_value_naming_another_component_must_restate_the_runs_keys(registry, suite_file):
    text = OLD_TABLE1.replace('model = { name = "eb", hidden = [512], eps = 0.2, clip = true }',
                              'model = { name = "eb", hidden = [512], eps = 0.2, clip = true, activation = "sigmoid" }')
    text = text.replace('algorithm = { lr = [0.1, 0.05] }\n    grid.algorithm = [{ name = "ep", beta = 0.5 }, "bptt"]',
                        'algorithm = { name = "ep", beta = 0.5, lr = [0.1, 0.05] }\n    grid.algorithm = ["ep", "bptt"]')
    with pytest.raises(SuiteError) as info:
        load_suite(suite_file(text), registry)
    ps = info.value.problems
    assert len(ps) == 2 and all(p.startswith("runs[0] (EB-1h).grid.algorithm: names algorithm 'bptt', not the "
                                             "run's 'ep', so the run's algorithm.") for p in ps)
    assert "algorithm.beta = 0.5 would not apply" in ps[0] and "algorithm.lr = [0.1, 0.05] would" in ps[1]
    assert "into the grid values that use 'ep'" in ps[0]


def test_a_default_key_that_some_runs_refuse_names_those_runs(registry, suite_file):
    text = OLD_TABLE1.replace('kind = "train"', 'kind = "train"\nepochs = 3').replace(
        'clip = true }', 'clip = true, activation = "sigmoid" }').replace(
        'name = "P-1h"', 'name = "P-1h"\nkind = "gdu"\nbaseline = "bptt"').replace(
        '[{ name = "ep", beta = 0.1 }, "bptt"]', '[{ name = "ep", beta = 0.1 }]')
    with pytest.raises(SuiteError) as info:
        load_suite(suite_file(text), registry)
    [p] = info.value.problems
    assert p.startswith("defaults.epochs: unknown key 'epochs' for a run of kind 'gdu'") and p.endswith(" (in run 'P-1h')")


@pytest.mark.parametrize("seeds, message", [("[-1]", "-1 is out of range"),
                                            ("[0, 1, 0]", "0 appears more than once: the values of seeds must differ"),
                                            ("[99999999999999999999999]", "99999999999999999999999 is out of range")])
def test_a_seed_out_of_range_is_refused(manager, suite_file, seeds, message):
    path = suite_file(f"""
        [[runs]]
        name = "a"
        kind = "score"
        device = "cpu"
        seeds = {seeds}
        model = {{ name = "const", offset = 1.0 }}
    """)
    with pytest.raises(SuiteError, match=message):
        load_suite(path, manager.registry)


def test_a_repeated_beta_of_a_bias_sweep_is_refused(registry, tmp_path):
    """It ran twice and stored duplicate records."""
    path = tmp_path / "b.toml"
    path.write_text('''
[[runs]]
name = "a"
kind = "bias"
model = { name = "p", input_size = 20, hidden = [8] }
dataset = "blobs"
T = 10
K = 2
betas = [0.01, 0.1, 0.01]
''')
    with pytest.raises(SuiteError, match=r"runs\[0\] \(a\)\.betas: 0\.01 appears more than once"):
        load_suite(path, registry)


def test_a_where_on_a_column_some_runs_record_is_left_to_the_results(suite_file, registry):
    """`baseline` is a gdu run's setting (bptt) and a column a bias run records (one row per baseline):
    where = { baseline = "rbp" } selects the bias run's rbp rows once they exist, so validation keeps it;
    on gdu runs alone the same where is refused as a typo would be."""
    head = """
        name = "w"
        [defaults]
        dtype = "float64"
        model = { name = "p", input_size = 6, hidden = [5], output_size = 3 }
        dataset = { name = "random", input_shape = [6], num_classes = 3, n_train = 8, n_test = 8 }
        T = 20
        K = 5
        [[runs]]
        name = "g"
        kind = "gdu"
        algorithm = { name = "ep", beta = 0.01 }
    """
    bias = """
        [[runs]]
        name = "b"
        kind = "bias"
        betas = [0.01, 0.1]
    """
    table = """
        [tables.t]
        where = { baseline = "rbp" }
        rows = ["name"]
        columns = ["metric"]
        metrics = ["grad_error"]
    """
    assert [r.name for r in load_suite(suite_file(head + bias + table), registry).runs] == ["g", "b"]
    with pytest.raises(SuiteError, match="tables.t.where.baseline: 'rbp' matches no run"):
        load_suite(suite_file(head + table, "only-gdu.toml"), registry)
