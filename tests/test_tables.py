"""Aggregation over seeds, references, and rendering (golden files)."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from harness.results.aggregate import TableError, collect, summarize
from harness.results.claims import Claim
from harness.results.render import latex_escape, render
from harness.results.store import write_json
from harness.run.runner import Runner
from harness.suite.load import load_suite

GOLDEN = Path(__file__).parent / "golden"

SUITE = """
    name = "tables_demo"
    [defaults]
    kind = "score"
    seeds = [0, 1, 2]
    device = "cpu"
    model = { name = "const", offset = 1.0 }

    [[runs]]
    name = "net_a"
    seeds = [0, 1, 2, 4, 5, 6]

    [[runs]]
    name = "net_b & co"
    seeds = [0, 1, 2, 3, 4, 5]
    model = { offset = 2.0 }
    mode = "fail_seeds_from_3"

    [[references]]
    source = "Doe et al. 2020, Table 9"
    columns = ["name", "metric", "score", "score_std"]
    rows = [["net_a", "score", 2.5, 0.5]]

    [tables.main]
    title = "Scores (%)"
    rows = ["name"]
    columns = ["metric"]
    metrics = ["score"]
    format = ".2f"

    [tables.layers]
    rows = ["name", "layer"]
    columns = ["metric"]
    metrics = ["per_layer"]
    where = { seed = [0, 1, 2] }
    format = ".1f"
"""


@pytest.fixture
def done_suite(manager, suite_file, tmp_path):
    suite = load_suite(suite_file(SUITE), manager.registry)
    Runner(suite, manager.registry, tmp_path / "results").execute(suite.runs)
    return suite, tmp_path / "results"


def test_mean_std_over_seeds_and_references(done_suite):
    suite, results = done_suite
    runs, records = collect(suite, results)
    assert len(runs) == 12 and (runs["status"] == "done").sum() == 9
    stats = summarize(suite, suite.tables["main"], runs, records).set_index("name")
    a = stats.loc["net_a"]
    # offset 1, seeds 0, 1, 2, 4, 5, 6: values 1,2,3,5,6,7 -> mean 4, sample std sqrt(5.6)
    assert a["mean"] == pytest.approx(4.0)
    assert a["std"] == pytest.approx(5.6 ** 0.5)
    assert (a["n"], a["expected"], a["done"], a["failed"]) == (6, 6, 6, 0)
    assert (a["ref"], a["ref_std"], a["delta"]) == (2.5, 0.5, pytest.approx(1.5))
    assert a["source"] == "Doe et al. 2020, Table 9"
    b = stats.loc["net_b & co"]
    assert (b["mean"], b["std"], b["n"], b["expected"], b["failed"]) == (3.0, 1.0, 3, 6, 3)
    assert b["ref"] != b["ref"]  # NaN: no reference for this row


def test_scale_and_where(done_suite):
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = suite.tables["layers"]
    stats = summarize(suite, spec, runs, records)
    assert set(stats["layer"]) == {"W01", "W12"}
    w12 = stats[(stats["name"] == "net_b & co") & (stats["layer"] == "W12")].iloc[0]
    assert (w12["mean"], w12["n"], w12["expected"]) == (4.0, 3, 3)  # failed seeds filtered out by where
    spec.scale = 100.0
    stats = summarize(suite, spec, runs, records)
    assert stats[(stats["name"] == "net_b & co") & (stats["layer"] == "W12")]["mean"].iloc[0] == 400.0


@pytest.mark.parametrize("fmt,ext", [("markdown", "md"), ("latex", "tex"), ("csv", "csv")])
def test_rendering_matches_golden_files(done_suite, fmt, ext):
    suite, results = done_suite
    runs, records = collect(suite, results)
    text = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records), fmt)
    golden = GOLDEN / f"tables_main.{ext}"
    if not golden.exists():  # pragma: no cover - writes the file once, to be reviewed and committed
        golden.write_text(text)
    assert text == golden.read_text()


def test_a_blank_cell_is_explained_under_the_table(done_suite):
    """Per seed, net_a has no seed 3 and net_b none after 2 (failed): those cells are blank, and the
    note says why; the `layers` table, every cell filled and no reference, has neither note."""
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = dataclasses.replace(suite.tables["main"], rows=["seed"], columns=["name", "metric"])
    text = render(spec, summarize(suite, spec, runs, records))
    row3 = next(line for line in text.splitlines() if line.startswith("| 3 "))
    assert [c.strip() for c in row3.strip(" |").split("|")[:3]] == ["3", "", ""], row3
    assert "a blank cell: no run of that row records that value" in text
    full = render(suite.tables["layers"], summarize(suite, suite.tables["layers"], runs, records))
    assert "a blank" not in full


def test_latex_escaping():
    assert latex_escape("a_b & 50% #1 {x} $y ~ ^ \\") == \
        r"a\_b \& 50\% \#1 \{x\} \$y \textasciitilde{} \^{} \textbackslash{}"


def test_missing_runs_are_flagged(manager, suite_file, tmp_path):
    suite = load_suite(suite_file(SUITE), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r").execute([r for r in suite.runs if r.seed in (0, 5)])
    runs, records = collect(suite, tmp_path / "r")
    text = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records))
    row = next(line for line in text.splitlines() if line.startswith("| net_a "))
    assert row.split("|")[2].strip() == "3.50 ± 3.54 †"
    assert "† name=net_a: 2/6 runs done (0 failed, 4 not run)" in text
    # the footnotes follow the table's rows, whatever order the summary holds its cells in
    spec = dataclasses.replace(suite.tables["main"], rows=["seed"], columns=["name", "metric"])
    text = render(spec, summarize(suite, spec, runs, records))
    lines = text.splitlines()
    rows = [int(line.split("|")[1]) for line in lines[4:] if line.startswith("| ")]  # seeds 0, 5, 1, ...
    noted = [int(line.split("seed=")[1].split(",")[0]) for line in lines if line.startswith("_† ")]
    assert len(noted) > 2 and noted == sorted(noted, key=rows.index), text


def test_runs_training_or_stopped_midway_are_not_counted_as_not_run(manager, suite_file, tmp_path):
    suite = load_suite(suite_file(SUITE), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r").execute([r for r in suite.runs if r.seed in (0, 5)])
    net_a = {r.seed: tmp_path / "r" / suite.name / r.id for r in suite.runs if r.name == "net_a"}
    for seed, state in ((1, "running"), (2, "interrupted"), (4, "running")):
        write_json(net_a[seed] / "status.json", {"status": state})
    claim = Claim(net_a[1])  # seed 1 has a live worker; seed 4's worker died without a word
    assert claim.acquire()
    try:
        runs, records = collect(suite, tmp_path / "r")
        text = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records))
    finally:
        claim.release()
    assert "† name=net_a: 2/6 runs done (0 failed, 1 running, 2 interrupted, 1 not run)" in text


def test_a_final_value_table_says_when_its_rows_end_at_different_epochs(manager, suite_file, tmp_path):
    """A row of 10-epoch runs beside rows of 50 once read as if all had trained as long."""
    from harness.results.store import read_json

    suite = load_suite(suite_file(SUITE), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r").execute([r for r in suite.runs if r.seed < 3])

    def table(lengths, spec=suite.tables["main"]):
        for run in suite.runs:
            path = tmp_path / "r" / suite.name / run.id / "metrics.json"
            if path.exists():
                data = read_json(path)
                n = lengths[run.name] if isinstance(lengths[run.name], int) else lengths[run.name][run.seed]
                write_json(path, {**data, "curves": [{"epoch": e, "score": 1.0} for e in range(1, n + 1)]})
        runs, records = collect(suite, tmp_path / "r")
        return render(spec, summarize(suite, spec, runs, records))

    assert "runs end at different epochs: 10 (net_a); 50 (net_b & co)" in table({"net_a": 10, "net_b & co": 50})
    assert "different epochs" not in table({"net_a": 50, "net_b & co": 50})
    # one row whose own runs differ, sorted by the shortest
    assert "runs end at different epochs: 10 and 50 (net_b & co); 30 (net_a)" in table(
        {"net_a": 30, "net_b & co": {0: 50, 1: 10, 2: 50}})
    # a table of values at one epoch compares runs at the same point: nothing to say
    assert "different epochs" not in table({"net_a": 10, "net_b & co": 50},
                                           dataclasses.replace(suite.tables["main"], epoch=3))


def test_a_cell_never_averages_runs_that_differ_in_more_than_the_seed(manager, suite_file, tmp_path):
    text = SUITE.replace('seeds = [0, 1, 2, 4, 5, 6]', 'grid.model = [{ offset = 1.0 }, { offset = 5.0 }]')
    suite = load_suite(suite_file(text), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r").execute([r for r in suite.runs if r.name == "net_a"])
    runs, records = collect(suite, tmp_path / "r")
    with pytest.raises(TableError) as info:
        summarize(suite, suite.tables["main"], runs, records)
    assert str(info.value) == ("table 'main': the cell name=net_a would average runs that differ in model.offset "
                               "(1.0 vs 5.0), not only in their seed; add 'model.offset' to the table's rows "
                               "or columns, or give the runs different names")
    suite.tables["main"].rows = ["name", "model.offset"]  # the grid value's parameter is a column
    stats = summarize(suite, suite.tables["main"], runs, records)
    got = {(r["model.offset"], r["mean"]) for _, r in stats[stats["name"] == "net_a"].iterrows()}
    assert got == {("1.0", 2.0), ("5.0", 6.0)}


def test_a_misspelled_metric_or_column_is_refused_once_results_exist(done_suite):
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = suite.tables["main"]
    spec.metrics = ["scroe"]
    with pytest.raises(TableError, match="metric 'scroe' is recorded by none of its finished runs; did you mean "
                                         "'score'"):
        summarize(suite, spec, runs, records)
    spec.metrics, spec.rows = ["score"], ["nmae"]
    with pytest.raises(TableError, match="rows names 'nmae', which is neither a run column nor recorded by its "
                                         "runs; did you mean 'name'"):
        summarize(suite, spec, runs, records)


def test_numbers_are_written_out_unless_the_format_asks_for_e_notation():
    from harness.results.numbers import number

    assert number(2390.4, ".3g") == "2390" and number(1.2e-5, ".2g") == "0.000012" and number(-15000.0, "+.2g") == "-15000"
    assert number(15000.0, "+.2g") == "+15000" and number(2390.4, ".3e") == "2.390e+03" and number(0.5, ".3g") == "0.5"
    # no significant digit lost in writing out (3.3e-06 once printed as 0.000003)
    assert number(3.3e-06, ".2g") == "0.0000033" and number(2.25e-06, ".3g") == "0.00000225"
    assert number(1.0e-4, ".2g") == "0.0001" and number(1e20, ".2g") == "1e+20"


def test_a_difference_always_shows_its_sign_whatever_the_format_says():
    from harness.results.numbers import signed

    assert signed(0.5, ".2f") == "+0.50" and signed(-0.5, ".2f") == "-0.50" and signed(0.5, "+.2f") == "+0.50"
    assert signed(2390.4, ".3g") == "+2390" and signed(float("nan"), ".2f") == "—"
    assert signed(-0.001, ".2f") == "+0.00" and signed(0.0, ".1e") == "+0.0e+00"  # no "-0.00" from noise


def test_a_table_can_give_each_metric_its_own_format(done_suite):
    """A table that mixes errors and counts formats each metric its own way (the others: .3g), the
    reference and Δ cells in their metric's format."""
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = dataclasses.replace(suite.tables["main"], format={"score": ".3f"})
    row = next(line for line in render(spec, summarize(suite, spec, runs, records)).splitlines()
               if line.startswith("| net_a "))
    assert [c.strip() for c in row.strip(" |").split("|")] == ["net_a", "4.000 ± 2.366", "2.500 ± 0.500", "+1.500"]
    spec = dataclasses.replace(suite.tables["main"], format={"per_layer": ".1f"})  # score not named: .3g
    row = next(line for line in render(spec, summarize(suite, spec, runs, records)).splitlines()
               if line.startswith("| net_a "))
    assert [c.strip() for c in row.strip(" |").split("|")] == ["net_a", "4 ± 2.37", "2.5 ± 0.5", "+1.5"]


def test_csv_has_the_shape_of_the_printed_table_and_long_is_tidy(done_suite):
    import csv
    import io

    suite, results = done_suite
    runs, records = collect(suite, results)
    stats = summarize(suite, suite.tables["main"], runs, records)
    wide = list(csv.reader(io.StringIO(render(suite.tables["main"], stats, "csv"))))
    markdown = render(suite.tables["main"], stats, "markdown").splitlines()
    assert wide[0] == [h.strip() for h in markdown[2].strip("|").split("|")]
    assert wide[1] == ["net_a", "4.00 ± 2.37", "2.50 ± 0.50", "+1.50"]
    tidy = list(csv.DictReader(io.StringIO(render(suite.tables["main"], stats, "csv", long=True))))
    assert {(r["name"], r["n"], r["expected"]) for r in tidy} == {("net_a", "6", "6"), ("net_b & co", "3", "6")}


def test_a_table_can_take_the_values_at_one_epoch(done_suite):
    from harness.results.aggregate import at_epoch

    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = suite.tables["main"]
    spec.metrics = ["loss"]  # the score kind logs loss = 1 / epoch at epochs 1 and 2
    for epoch, loss in ((1, 1.0), (2, 0.5)):
        spec.epoch = epoch
        stats = summarize(suite, spec, runs, at_epoch(suite, results, records, epoch)).set_index("name")
        assert stats.loc["net_a", "mean"] == loss and stats.loc["net_a", "n"] == 6
        assert stats.loc["net_b & co", "n"] == 3  # only finished runs count, as for final values
    spec.epoch = 3  # an epoch no run reached: no values, and no "unknown metric" error
    stats = summarize(suite, spec, runs, at_epoch(suite, results, records, 3))
    assert stats["n"].fillna(0).eq(0).all()


def test_a_table_can_take_each_runs_values_at_its_lowest_epoch(manager, suite_file, tmp_path):
    """``at_lowest``: each finished run at the epoch where a per-epoch metric is lowest, the first on a tie
    (dip = |e - 2| |e - 4| + seed is lowest at epochs 2 and 4), with ``epoch`` as a metric; a run that
    did not record the metric (seed 6 logs NaN) drops out of the cell; references do not apply."""
    text = SUITE.replace('kind = "score"', 'kind = "score"\n    epochs = 5').replace(
        'metrics = ["score"]\n    format = ".2f"', 'metrics = ["dip", "loss", "epoch"]\n    format = ".2f"\n'
        '    scale = 10.0\n    at_lowest = "dip"', 1).replace(
        'rows = [["net_a", "score", 2.5, 0.5]]', 'rows = [["net_a", "score", 2.5, 0.5], ["net_a", "dip", 9.0, 1.0]]')
    suite = load_suite(suite_file(text), manager.registry)
    Runner(suite, manager.registry, tmp_path / "results").execute(suite.runs)
    runs, records = collect(suite, tmp_path / "results")
    spec = suite.tables["main"]
    from harness.results.aggregate import at_epoch

    values = at_epoch(suite, tmp_path / "results", records, None, "dip")
    a = values[values["name"] == "net_a"].pivot(index="seed", columns="metric", values="value")
    assert list(a.index) == [0, 1, 2, 4, 5]  # seed 6 recorded no dip
    assert (a["epoch"] == 2).all() and (a["loss"] == 0.5).all() and list(a["dip"]) == [0, 1, 2, 4, 5]
    stats = summarize(suite, spec, runs, values)
    cells = stats.set_index(["name", "metric"])
    assert cells.loc[("net_a", "dip"), "n"] == 5 and cells.loc[("net_a", "dip"), "mean"] == pytest.approx(24.0)
    # the epoch is a count: not scaled; the reference (a final value) is not set beside a lowest one
    assert cells.loc[("net_b & co", "epoch"), "mean"] == 2 and stats["ref"].isna().all()
    out = render(spec, stats)
    assert "each run's values at its epoch of lowest dip (the first such epoch), not after its last" in out
    # the score kind declares nothing, so a misspelling is caught when the table is made
    with pytest.raises(TableError, match="at_lowest = 'dpi': no finished run's curve records it; did you mean 'dip'"):
        at_epoch(suite, tmp_path / "results", records, None, "dpi")


@pytest.mark.parametrize("edit,message", [
    ("    at_lowest = \"dip\"\n    epoch = 2", "tables.main.at_lowest: a table takes its values at one epoch"),
    ("    at_lowest = 3", "tables.main.at_lowest: expected"),
])
def test_at_lowest_and_epoch_are_exclusive_and_at_lowest_names_a_metric(manager, suite_file, edit, message):
    from harness.suite.load import SuiteError

    text = SUITE.replace('format = ".2f"', 'format = ".2f"\n' + edit, 1)
    with pytest.raises(SuiteError, match=message.replace(".", r"\.")):
        load_suite(suite_file(text), manager.registry)


def test_the_dagger_is_explained_only_where_a_cell_carries_one(done_suite):
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = suite.tables["layers"]  # seeds 0-2 only: every cell complete
    text = render(spec, summarize(suite, spec, runs, records))
    assert "†" not in text and "mean ± sample std (ddof=1) over 3 seeds_" in text
    text = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records))
    assert "3.00 ± 1.00 †" in text and "† a cell with fewer finished runs than planned" in text
    assert "over 3 to 6 seeds" in text  # the seed count comes from the cells (net_b: 3 of 6 finished)


def test_columns_follow_the_tables_metric_order(done_suite):
    """Whatever order the records hold the metrics in (an epoch's curve point lists train_error before
    test_error), a table's columns follow its own `metrics` list."""
    suite, results = done_suite
    runs, records = collect(suite, results)
    spec = suite.tables["main"]
    stats = summarize(suite, spec, runs, records)
    other = stats.copy()
    other["metric"] = "other"
    both = pd.concat([other, stats], ignore_index=True)  # "other" seen first
    spec.metrics = ["score", "other"]
    header = render(spec, both).splitlines()[2]
    assert header.index("| score") < header.index("| other"), header


def test_unchecked_references_and_setting_notes_are_printed_under_the_table(manager, suite_file, tmp_path):
    """A reference marked ``checked = false`` says so wherever its values appear; a table's ``notes``
    footnote each row's value of a setting as the runs resolved it (here model.offset: 1.0 in net_a,
    2.0 in "net_b & co"), so a deviation's label cannot disagree with what ran."""
    text = SUITE.replace('source = "Doe et al. 2020, Table 9"',
                         'source = "Doe et al. 2020, Table 9"\n    checked = false\n    note = "read off a figure"')
    text = text.replace('format = ".2f"', 'format = ".2f"\n    notes = { "model.offset" = "the paper used 0" }', 1)
    suite = load_suite(suite_file(text), manager.registry)
    Runner(suite, manager.registry, tmp_path / "results").execute(suite.runs)
    runs, records = collect(suite, tmp_path / "results")
    out = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records), "markdown")
    assert "ref: Doe et al. 2020, Table 9 (values NOT checked against the source: read off a figure)" in out
    assert "model.offset: 1.0 (net_a); 2.0 (net_b & co): the paper used 0" in out
    one = text.replace('model = { offset = 2.0 }', '')
    suite = load_suite(suite_file(one, "one.toml"), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r1").execute(suite.runs)
    runs, records = collect(suite, tmp_path / "r1")
    out = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records), "markdown")
    assert "model.offset = 1.0 in every row: the paper used 0" in out


@pytest.mark.parametrize("edit,message", [
    (('format = ".2f"', 'format = ".2f"\n    notes = { "model.ofset" = "why" }'),
     "tables.main.notes.model.ofset: no run has a setting 'model.ofset'"),
    (('source = "Doe et al. 2020, Table 9"', 'source = "Doe et al. 2020, Table 9"\n    checked = "no"'),
     "references[0].checked: expected true or false"),
    (('format = ".2f"', 'format = ".2z"'), "tables.main.format: '.2z' is not a format a table can use"),
    (('format = ".2f"', 'format = { score = 2 }'), "tables.main.format.score: 2 is not a format a table can use"),
    (('format = ".2f"', 'format = ">8.2f"'), "tables.main.format: '>8.2f' is not a format a table can use: write "
     "the precision and the type only"),  # a width would garble the cells ("+    0.50")
    (('format = ".2f"', 'format = { scroe = ".2f" }'), "tables.main.format.scroe: formats 'scroe', which is not "
     "among the table's metrics (score); did you mean 'score'?"),
])
def test_a_wrong_table_setting_or_checked_flag_fails_validation(manager, suite_file, edit, message):
    import re

    from harness.suite.load import SuiteError

    with pytest.raises(SuiteError, match=re.escape(message)):
        load_suite(suite_file(SUITE.replace(*edit, 1)), manager.registry)


def test_a_row_key_that_some_runs_lack_keeps_their_rows_and_daggers(manager, suite_file, tmp_path):
    """A grid value that sets a parameter (model.width) gives its runs a column the other runs lack
    (NaN): those runs' cells must still be counted, flagged and shown, not dropped with the NaN key."""
    text = """
    name = "nan_rows"
    [defaults]
    kind = "score"
    seeds = [0, 1]
    device = "cpu"
    [[runs]]
    name = "net"
    grid.model = [{ name = "const", offset = 1.0, width = 4 }, { name = "const", offset = 2.0 }]
    [tables.main]
    rows = ["model.width", "name"]
    columns = ["metric"]
    metrics = ["score"]
    format = ".2f"
    """
    suite = load_suite(suite_file(text), manager.registry)
    wide = [r for r in suite.runs if r.attributes().get("model.width") == "4"]
    assert len(wide) == 2 and len(suite.runs) == 4
    Runner(suite, manager.registry, tmp_path / "r").execute([*wide, next(r for r in suite.runs if r not in wide)])
    runs, records = collect(suite, tmp_path / "r")
    out = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records))
    rows = {tuple(c.strip() for c in line.strip(" |").split("|")) for line in out.splitlines()[4:]
            if line.startswith("| ")}
    assert rows == {("4", "net", "1.50 ± 0.71"), ("—", "net", "2.00 †")}, out
    assert "† name=net: 1/2 runs done (0 failed, 1 not run)" in out and "nan" not in out, out


def test_a_note_on_a_setting_some_rows_lack_lists_only_the_rows_that_have_it(manager, suite_file, tmp_path):
    """Table 1 footnotes model.dt (P nets) and model.output_sigma_prime (EB nets): a row whose component
    has no such setting is left out of the note, not listed as "null"."""
    text = """
    name = "lacking"
    [defaults]
    kind = "score"
    seeds = [0]
    device = "cpu"
    [[runs]]
    name = "wide"
    model = { name = "const", offset = 1.0, width = 4 }
    [[runs]]
    name = "wider"
    model = { name = "const", offset = 1.0, width = 8 }
    [[runs]]
    name = "plain"
    model = { name = "point", offset = 2.0 }
    [tables.main]
    metrics = ["score"]
    format = ".2f"
    notes = { "model.width" = "why" }
    """
    suite = load_suite(suite_file(text), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r").execute(suite.runs)
    runs, records = collect(suite, tmp_path / "r")
    out = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records), "markdown")
    assert "model.width: 4 (wide); 8 (wider): why" in out and "null" not in out, out
    one = text.replace("width = 8", "width = 4")
    suite = load_suite(suite_file(one, "one.toml"), manager.registry)
    Runner(suite, manager.registry, tmp_path / "r1").execute(suite.runs)
    runs, records = collect(suite, tmp_path / "r1")
    out = render(suite.tables["main"], summarize(suite, suite.tables["main"], runs, records), "markdown")
    assert "model.width = 4 in every row that has it: why" in out, out
