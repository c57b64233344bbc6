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
