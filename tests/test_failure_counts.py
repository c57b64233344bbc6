"""The exact test behind the README's failure counts (results/table1/failure_counts.py)."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "results" / "table1" / "failure_counts.py"
spec = importlib.util.spec_from_file_location("failure_counts", PATH)
failure_counts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(failure_counts)


@pytest.mark.parametrize("a,n1,b,n2,two,one", [
    (3, 4, 1, 4, 0.485714, 0.242857),  # Fisher's tea tasting: 3 of 4 against 1 of 4
    (0, 3, 5, 5, 1 / 56, 1 / 56),      # the most extreme 3-vs-5 table: one table of 56
    (0, 3, 2, 5, 0.464286, 0.357143),  # EB-1h straight-through against Glorot
    (2, 5, 2, 5, 1.0, 0.738095),
])
def test_fisher_exact_matches_the_hypergeometric_values(a, n1, b, n2, two, one):
    got = failure_counts.fisher(a, n1, b, n2)
    assert got == pytest.approx((two, one), rel=1e-5)


def test_a_lost_class_is_read_at_an_epoch_or_up_to_it():
    history = [{"epoch": 1, "unpredicted_classes": 1.0}, {"epoch": 2, "unpredicted_classes": 0.0}]
    assert failure_counts.lost(history, 1) and not failure_counts.lost(history, 2)
    assert failure_counts.lost(history, 2, anywhere=True)


def test_error_tests_compare_rows_of_equal_length_with_welch(tmp_path):
    """results/table1/error_tests.py: per-seed finals read from run directories; Welch's p as scipy 1.17 gives it."""
    import json
    import subprocess
    import sys

    rows = {("EB-1h", 30): [2.4, 2.5, 2.6], ("EB-1h (torch init)", 30): [2.2, 2.3, 2.2], ("EB-1h (x)", 10): [3.0, 3.1]}
    for (name, epochs), errors in rows.items():
        for seed, error in enumerate(errors):
            run = tmp_path / "table1" / f"{name}-{seed}"
            run.mkdir(parents=True)
            (run / "status.json").write_text('{"status": "done"}')
            (run / "config.json").write_text(json.dumps({"name": name, "seed": seed, "params": {"epochs": epochs},
                                                         "slots": {"algorithm": {"name": "ep"}}}))
            (run / "metrics.json").write_text(json.dumps({"final": [{"metric": "test_error", "value": error}],
                                                          "curves": []}))
    script = PATH.parent / "error_tests.py"
    out = subprocess.run([sys.executable, str(script), "--results-dir", str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout
    ours = next(line for line in out.splitlines() if line.startswith("| EB-1h (torch init) | ep |") and "our EB-1h" in line)
    p = 0.024817461725749643  # scipy.stats.ttest_ind([2.2, 2.3, 2.2], [2.4, 2.5, 2.6], equal_var=False)
    assert ours.split("|")[6].strip() == "-0.27" and float(ours.split("|")[9]) == pytest.approx(p, rel=1e-3)
    assert ours.split("|")[10].strip() == "0.1"  # exact rank-sum: every seed below every other, 2 of 20 splits
    paper = next(line for line in out.splitlines() if line.startswith("| EB-1h | ep |"))
    p = 0.0037013886494190493  # scipy.stats.ttest_ind_from_stats(2.06, 0.17, 5, 2.5, 0.1, 3, equal_var=False)
    assert "the paper's EB-1h" in paper and float(paper.split("|")[9]) == pytest.approx(p, rel=1e-3)
    assert "10 epochs, not EB-1h's 30" in out


def test_error_tests_take_the_value_at_an_epoch_or_at_the_lowest_training_error(tmp_path):
    """--epoch and --at-lowest read each run's curve (harness.results.aggregate.epoch_point), not its finals."""
    import json
    import subprocess
    import sys

    # seed s: test error 3 + s at epoch 1, 2 + s at epoch 2 (the lowest train error), 9 + s at epoch 3
    for name in ("P-2h", "P-2h (torch init)"):
        for seed in range(3):
            run = tmp_path / "table1" / f"{name}-{seed}"
            run.mkdir(parents=True)
            (run / "status.json").write_text('{"status": "done"}')
            (run / "config.json").write_text(json.dumps({"name": name, "seed": seed, "params": {"epochs": 3},
                                                         "slots": {"algorithm": {"name": "ep"}}}))
            shift = 0.5 * seed + (1.0 if name == "P-2h" else 0.0)
            curve = [{"epoch": e, "test_error": t + shift, "train_error": r}
                     for e, t, r in ((1, 3.0, 2.0), (2, 2.0, 0.5), (3, 9.0, 4.0))]
            (run / "metrics.json").write_text(json.dumps({"final": [{"metric": "test_error", "value": 9.0 + shift}],
                                                          "curves": curve}))
    script = PATH.parent / "error_tests.py"

    def row(*args):
        out = subprocess.run([sys.executable, str(script), "--results-dir", str(tmp_path), *args],
                             capture_output=True, text=True, check=True).stdout
        return next(li for li in out.splitlines() if li.startswith("| P-2h (torch init) | ep |") and "our P-2h" in li)

    assert "| 9.50 ± 0.50 (n=3) |" in row()                       # final: 9 + 0.5 s
    assert "| 2.50 ± 0.50 (n=3) |" in row("--at-lowest", "train_error")  # epoch 2
    assert "| 3.50 ± 0.50 (n=3) | our P-2h | 4.50 ± 0.50 (n=3) | -1.00 |" in row("--epoch", "1")


@pytest.mark.parametrize("x,y,p", [
    ([35, 34, 29, 33, 22], [3, 12, 17], 2 / 56),  # complete separation, 5 against 3: 2 of 56 splits
    ([1, 2, 3], [4, 5, 6], 2 / 20),               # 3 against 3: 2 of 20
    ([1, 2, 4], [3, 5, 6], 4 / 20),               # U = 1 of 9: the 4 splits with U <= 1 or U >= 8
    ([1, 1], [1, 1], 1.0),                        # all tied: every split as extreme
])
def test_the_exact_rank_sum_test_counts_the_splits_at_least_as_extreme(x, y, p):
    from harness.results.compare import rank_sum_p

    assert rank_sum_p(x, y) == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize("above, below, p", [
    (5, 0, 2 / 32), (0, 5, 2 / 32),   # every pair one way: 2 of the 32 sign patterns as extreme
    (4, 1, 12 / 32),                  # 2·(1 + 5)/32
    (3, 2, 1.0), (0, 0, 1.0),         # the middle, and no untied pair: nothing to say
    (10, 0, 2 / 1024),
])
def test_the_sign_test_is_the_two_sided_binomial_tail(above, below, p):
    from harness.results.compare import sign_test_p

    assert sign_test_p(above, below) == pytest.approx(p, rel=1e-12)


def test_seed_courses_reads_each_seeds_curve(tmp_path):
    """results/table1/seed_courses.py: a seed's last, lowest and highest test error, its unsettled range and the
    epochs with a lost class, from its curves; a row with no finished run is an error that names it."""
    import json
    import subprocess
    import sys

    curves = [{"epoch": 1, "test_error": 9.0, "train_error": 8.5, "unsettled": 40.0, "unpredicted_classes": 1,
               "seconds": 100.0},
              {"epoch": 2, "test_error": 5.25, "train_error": 4.0, "unsettled": 2.5, "unpredicted_classes": 0,
               "seconds": 9000.0},
              {"epoch": 3, "test_error": 7.5, "train_error": 6.75, "unsettled": 10.0, "unpredicted_classes": 0,
               "seconds": 120.0}]
    run = tmp_path / "table1" / "r"
    run.mkdir(parents=True)
    (run / "status.json").write_text('{"status": "done"}')
    (run / "config.json").write_text(json.dumps({"name": "P-2h (x)", "seed": 4, "slots": {"algorithm": {"name": "ep"}}}))
    (run / "metrics.json").write_text(json.dumps({"final": [], "curves": curves}))
    script = PATH.parent / "seed_courses.py"
    out = subprocess.run([sys.executable, str(script), "--row", "P-2h (x)", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "| P-2h (x) | ep | 4 | 7.50 % (6.75 %) | 5.25 % (epoch 2) to 9.00 % | 2.5–40.0 % | 1 | 120 (longest 9000, epoch 2) |" in out
    bad = subprocess.run([sys.executable, str(script), "--row", "P-2h (y)", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "no finished run of ['P-2h (y)']" in bad.stderr


def test_row_tests_compare_every_pair_of_rows_seed_for_seed(tmp_path):
    """results/p2h-free-phase/row_tests.py: per-seed test errors, Welch's p, the exact rank-sum p and how many
    seeds end above the other row's same seed."""
    import json
    import subprocess
    import sys

    rows = {"dt = 0.2, T = 100": [30.0, 17.0, 27.0], "dt = 0.2, T = 500": [12.0, 18.0, 11.0]}
    for name, errors in rows.items():
        for seed, error in enumerate(errors):
            run = tmp_path / "p2h-free-phase" / f"{name}-{seed}"
            run.mkdir(parents=True)
            (run / "status.json").write_text('{"status": "done"}')
            (run / "config.json").write_text(json.dumps({"name": name, "seed": seed, "slots": {}}))
            (run / "metrics.json").write_text(json.dumps({"final": [{"metric": "test_error", "value": error}], "curves": []}))
    script = Path(__file__).resolve().parent.parent / "results" / "p2h-free-phase" / "row_tests.py"
    out = subprocess.run([sys.executable, str(script), "--results-dir", str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout
    line = next(row for row in out.splitlines() if row.startswith("| dt = 0.2, T = 100 |"))
    cells = [c.strip() for c in line.split("|")]
    # U = 8 of 9: the 4 of 20 splits with U <= 1 or U >= 8; seed 1 is the one where T = 500 ends above
    assert cells[2] == "30.00, 17.00, 27.00" and cells[5] == "+11.00" and cells[7] == "0.2"
    assert cells[8] == "2 of 3 (sign test p = 1)"  # 2 of 3 pairs one way: 2·(1 + 3)/8 = 1
