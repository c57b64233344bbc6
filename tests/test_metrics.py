"""RelMSE (Eq. 67) and sign agreement on hand-made numbers."""

from __future__ import annotations

import math

import pytest
import torch

from bench_metrics import RelMSE, SignAgreement


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_relmse_by_hand():
    m = RelMSE()
    assert m.direction == "lower"
    # K = 2 steps, 2 elements. Element 0: f = (1, 1), g = (1, −1): ‖f−g‖ = √((0+4)/2) = √2,
    # max(‖f‖, ‖g‖) = 1 → √2. Element 1: both identically zero → contributes 0 (still counted).
    f = t([[1.0, 0.0], [1.0, 0.0]])
    g = t([[1.0, 0.0], [-1.0, 0.0]])
    assert m(f, g) == pytest.approx(math.sqrt(2) / 2)
    # one zero process against a nonzero one: exactly 1
    assert m(t([[3.0], [4.0]]), t([[0.0], [0.0]])) == pytest.approx(1.0)
    # g = f/2: ‖f−g‖ = ‖f‖/2 → 0.5, whatever the scale and the time profile
    f = t([[2.0, -8.0], [6.0, 1.0], [0.5, 3.0]])
    assert m(f, f / 2) == pytest.approx(0.5)
    assert m(f / 2, f) == pytest.approx(0.5)  # symmetric
    assert m(1e-9 * f, 0.5e-9 * f) == pytest.approx(0.5)  # relative
    assert m(f, f) == 0.0
    assert m(f, -f) == pytest.approx(2.0)  # the maximum: a sign error


def test_relmse_per_element_then_mean_over_layer():
    """Eq. 67 normalises each element by its own norm before averaging (not by the layer's)."""
    m = RelMSE()
    f = t([[100.0, 1.0], [100.0, 1.0]])
    g = t([[100.0, 0.0], [100.0, 0.0]])
    assert m(f, g) == pytest.approx(0.5)  # element 0 exact, element 1 off by 100 %


def test_relmse_shapes():
    m = RelMSE()
    a = torch.randn(5, 3, 4, 4)
    assert m(a, a.clone()) == 0.0
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(3, 2), torch.zeros(3, 3))
    assert m(torch.zeros(4, 3), torch.zeros(4, 3)) == 0.0  # all zero: perfect agreement


def test_sign_agreement_on_cumulative_sums_with_zeros():
    s = SignAgreement()
    assert s.direction == "higher"
    f = t([[1.0, -1.0, 0.0, 2.0, 0.0],
           [1.0, -3.0, 0.0, -1.0, 1.0]])   # sums: 2, −4, 0, 1, 1
    g = t([[5.0, -1.0, 0.0, -1.0, 0.0],
           [-4.0, 0.0, 0.0, -1.0, 0.0]])   # sums: 1, −1, 0, −2, 0
    # agree: +/+, −/−, 0/0; disagree: +/−, +/0
    assert s(f, g) == pytest.approx(3 / 5)
    # per-step signs differ (element 0 at t = 1) but the totals agree: only totals count
    assert s(t([[1.0], [-0.5]]), t([[1.0], [0.1]])) == 1.0
    with pytest.raises(ValueError, match="shape"):
        s(torch.zeros(2, 2), torch.zeros(2, 3))
