"""`bench compare`: Welch's t-test against reference values, and two result sets through the CLI."""

import math

import pytest
from click.testing import CliRunner

from conftest import write_dist
from harness.cli.commands import main
from harness.results.compare import betainc, t_two_sided_p, welch

# Two-sided Student-t p-values (from published t tables / SciPy's stats.t.sf, written out here).
T_TABLE = [(2.228, 10, 0.0500118), (0.5, 3, 0.6514480), (4.0, 2.5, 0.0390130), (10.0, 1, 0.0634510),
           (2.0, 7.3, 0.0839410), (1.96, 1e6, 0.0499961)]


@pytest.mark.parametrize("t,df,p", T_TABLE)
def test_t_tail_matches_the_table(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-7)
    assert t_two_sided_p(-t, df) == t_two_sided_p(t, df)


def test_betainc_identities():
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(1 - betainc(3.0, 2.0, 0.6), abs=1e-14)
    assert betainc(1.0, 1.0, 0.3) == pytest.approx(0.3, abs=1e-14)  # uniform
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5, abs=1e-14)  # symmetric


def test_welch_statistic_and_degrees_of_freedom():
    t, df, p = welch(1.0, 0.5, 5, 2.0, 0.7, 4)  # mean 2 − mean 1 = 1
    v1, v2 = 0.25 / 5, 0.49 / 4
    assert t == pytest.approx(1 / math.sqrt(v1 + v2))
    assert df == pytest.approx((v1 + v2) ** 2 / (v1 ** 2 / 4 + v2 ** 2 / 3))
    assert p == pytest.approx(0.0583053, abs=2e-7)
    assert welch(1.0, 0.0, 3, 1.0, 0.0, 3)[2] == 1.0 and welch(1.0, 0.0, 3, 2.0, 0.0, 3)[2] == 0.0


SUITE = """
    [defaults]
    kind = "score"
    seeds = [0, 1, 2, 3]
    device = "cpu"
    model = {{ name = "const", offset = {offset} }}

    [[runs]]
    name = "one"

    [[runs]]
    name = "two"
    model = {{ offset = 3.0 }}

    [tables.main]
    rows = ["name"]
    metrics = ["score"]
    format = ".2f"
"""


@pytest.fixture
def cli(fake_site, monkeypatch, tmp_path):
    write_dist(fake_site, "bench-testplugin", "0.0.1", {"testplugin": "harness_test_plugin"}, {})
    monkeypatch.setenv("BENCH_PLUGINS", "testplugin")

    def invoke(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert "Traceback" not in result.output
        return result

    return invoke


def test_paired_t_test_of_per_seed_differences():
    from harness.results.compare import paired

    t, df, p = paired([0.5, 0.7, 0.2, 0.6])  # mean 0.5, sd 0.216: t = 4.63 on 3 df
    assert t == pytest.approx(0.5 / (math.sqrt(0.0466667) / 2), rel=1e-5) and df == 3
    assert p == pytest.approx(t_two_sided_p(t, 3))
    assert paired([0.5] * 4)[2] == 0.0 and paired([0.0] * 4)[2] == 1.0  # a constant shift; none


def _lines(result, row):
    return next(x for x in result.output.splitlines() if x.startswith(f"| {row}"))


def test_compare_pairs_seeds_and_flags_a_systematic_shift(cli, tmp_path):
    """Scores are seed + offset: the same seeds on both sides, offset 1 -> 1.5, is a shift of exactly
    0.5 for every seed, which the paired test sees (p = 0) where Welch's, blind to the pairing, would
    call it noise (2.50 ± 1.29 vs 3.00 ± 1.29 on 4 seeds); --threshold 1 lets it pass."""
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", "--set", "model.offset=1.5").exit_code == 0
    shifted = cli("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=1.5", "--base", tmp_path / "a")
    assert shifted.exit_code == 1, shifted.output
    line = _lines(shifted, "one")
    assert "2.50 ± 1.29 (n=4)" in line and "3.00 ± 1.29 (n=4)" in line and "+0.50" in line
    assert "| paired" in line and line.rstrip(" |").endswith("changed")
    assert "2 cell(s) changed (|Δ| > 0, and p < 0.05 where a test was possible)" in shifted.output
    tolerant = cli("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=1.5", "--base",
                   tmp_path / "a", "--threshold", "1")
    assert tolerant.exit_code == 1 and "1 cell(s) changed" in tolerant.output  # two: 3 -> 1.5, |Δ| = 1.5
    path.write_text(SUITE.format(offset=1.0).replace('format = ".2f"', 'format = { score = ".3f" }'))
    per_metric = cli("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=1.5", "--base",
                     tmp_path / "a")  # a cell reads as `bench table` writes it, in its metric's format
    line = _lines(per_metric, "one")
    assert "2.500 ± 1.291 (n=4)" in line and "3.000 ± 1.291 (n=4)" in line and "+0.500" in line, line


def test_compare_falls_back_to_welch_when_the_seeds_differ(cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    new = ("--set", "seeds=[1, 2, 3, 4]", "--set", "model.offset=0.5")
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", *new).exit_code == 0
    out = cli("compare", path, "--results-dir", tmp_path / "b", *new, "--base", tmp_path / "a")
    line = _lines(out, "one")  # seeds 0-3 + 1 against seeds 1-4 + 0.5: means 2.5 and 3.0
    p = welch(2.5, math.sqrt(5 / 3), 4, 3.0, math.sqrt(5 / 3), 4)[2]
    assert "| Welch" in line and f"{p:.3g}" in line and "changed" not in line and out.exit_code == 0, out.output


def test_compare_with_one_seed_says_no_test_was_possible_and_holds_the_difference_to_the_threshold(cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0).replace("seeds = [0, 1, 2, 3]", "seeds = [0]"))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", "--set", "model.offset=31.0").exit_code == 0
    args = ("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=31.0", "--base", tmp_path / "a")
    out = cli(*args, "--alpha", "1", "--threshold", "1")
    line = _lines(out, "one")
    assert "1.00 (n=1)" in line and "31.00 (n=1)" in line and "+30.00" in line and "none (n=1)" in line
    assert line.rstrip(" |").endswith("changed") and out.exit_code == 1
    assert cli(*args, "--threshold", "100").exit_code == 0  # within the threshold: not flagged


def test_compare_refuses_to_compare_against_nothing(cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    missing = cli("compare", path, "--results-dir", tmp_path / "a", "--base", tmp_path / "nowhere")
    assert missing.exit_code == 1 and "--base" in missing.output and "no such directory" in missing.output
    (tmp_path / "empty").mkdir()
    empty = cli("compare", path, "--results-dir", tmp_path / "a", "--base", tmp_path / "empty")
    assert empty.exit_code == 1 and "no finished run of suite" in empty.output and "nothing to compare" in empty.output
    other = cli("compare", path, "--results-dir", tmp_path / "a", "--base", tmp_path / "a", "--base-set",
                "model.offset=9.0")
    assert other.exit_code == 1 and "no finished run of suite" in other.output
    nan = cli("compare", path, "--results-dir", tmp_path / "a", "--base", tmp_path / "a", "--threshold", "nan")
    assert nan.exit_code == 2 and "--threshold" in nan.output
    typo = cli("compare", path, "--results-dir", tmp_path / "a", "--base", tmp_path / "a", "--table", "main",
               "--table", "mian")
    assert typo.exit_code == 1 and "no table 'mian' (did you mean 'main'?)" in typo.output
    assert "| one" not in typo.output  # refused before any table is compared


def test_compare_of_an_at_lowest_table_compares_the_values_and_epochs_it_takes_and_says_so(cli, tmp_path):
    """The score kind's dip is lowest at epoch 2 (|e - 2| |e - 4| + seed): a shift of the offset moves no
    dip, so an at_lowest table of dip and epoch finds nothing changed, and the page says what it compares."""
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0).replace('kind = "score"', 'kind = "score"\n    epochs = 3').replace(
        'metrics = ["score"]', 'metrics = ["dip", "epoch"]\n    at_lowest = "dip"'))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", "--set", "model.offset=1.5").exit_code == 0
    out = cli("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=1.5", "--base", tmp_path / "a")
    assert out.exit_code == 0, out.output
    assert "each run's values at its epoch of lowest dip; the epoch column, in epochs, is compared" in out.output
    assert "0 cell(s) changed" in out.output


def test_compare_shows_a_cost_that_moved_but_does_not_count_it(cli, tmp_path, monkeypatch):
    """A metric the run kind declares as a cost (here `width`, standing in for seconds or samples/s)
    moved by 2 on every seed: the table marks it, the exit status ignores it; the score, unchanged,
    keeps the status 0. Without the declaration the same move is a change (exit 1)."""
    import harness_test_plugin

    from harness.api.records import Records

    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0).replace('metrics = ["score"]', 'metrics = ["score", "width"]'))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    wide = ("--set", "model.width=5")
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", *wide).exit_code == 0
    args = ("compare", path, "--results-dir", tmp_path / "b", *wide, "--base", tmp_path / "a")
    assert cli(*args).exit_code == 1  # the kind declares nothing: width is a result like any other
    monkeypatch.setattr(harness_test_plugin.make_score, "records", Records(
        metrics=("score", "width", "per_layer"), columns=("layer",), curves=("loss", "dip"), costs=("width",)),
        raising=False)
    out = cli(*args)
    width = next(x for x in out.output.splitlines() if x.startswith("| one") and "| width" in x)
    assert "+2.00" in width and "moved (a cost: not counted)" in width, out.output
    assert "0 cell(s) changed" in out.output and "2 cost cell(s) moved, not counted" in out.output
    assert out.exit_code == 0, out.output
