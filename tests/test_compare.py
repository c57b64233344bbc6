"""`bench compare`: Welch's t-test against reference values, and two result sets through the CLI."""

import math

import pytest
from click.testing import CliRunner

from conftest import write_dist
from harness.cli import main
from harness.compare import betainc, t_two_sided_p, welch

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


def test_compare_two_result_sets_flags_the_changed_cell(cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(offset=1.0))
    assert cli("run", path, "--results-dir", tmp_path / "a", "--no-table").exit_code == 0
    assert cli("run", path, "--results-dir", tmp_path / "b", "--no-table", "--set", "model.offset=1.5").exit_code == 0
    # row "one": offset 1 -> 1.5 (scores seed + offset: a shift of 0.5 with std 1.29 on 4 seeds: noise)
    same = cli("compare", path, "--results-dir", tmp_path / "b", "--set", "model.offset=1.5", "--base", tmp_path / "a")
    assert same.exit_code == 0, same.output
    line = next(x for x in same.output.splitlines() if x.startswith("| one"))
    assert "2.50 ± 1.29 (n=4)" in line and "3.00 ± 1.29 (n=4)" in line and "+0.50" in line
    p = welch(2.5, math.sqrt(5 / 3), 4, 3.0, math.sqrt(5 / 3), 4)[2]
    assert f"{p:.3g}" in line and "changed" not in line
    # row "two": --set applies to every run, offset 3 -> 1.5: Δ −1.5, t = −1.64 on 6 df, not significant
    two = next(x for x in same.output.splitlines() if x.startswith("| two"))
    assert "-1.50" in two and f"{welch(4.5, math.sqrt(5 / 3), 4, 3.0, math.sqrt(5 / 3), 4)[2]:.3g}" in two
    assert "changed" not in two
    # a shift of 5 is beyond the noise: flagged, exit 1
    assert cli("run", path, "--results-dir", tmp_path / "c", "--no-table", "--set", "model.offset=6.0").exit_code == 0
    moved = cli("compare", path, "--results-dir", tmp_path / "c", "--set", "model.offset=6.0", "--base", tmp_path / "a",
                "--threshold", "1")
    assert moved.exit_code == 1
    assert next(x for x in moved.output.splitlines() if x.startswith("| one")).rstrip(" |").endswith("changed")
    assert "2 cell(s) changed (|Δ| > 1 and Welch p < 0.05)" in moved.output  # one: +5, two: +3
