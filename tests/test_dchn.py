"""The DCHN's nudge (issue "Beyond 2019"): inside σ, as the authors' code, EP's estimators converge to the
gradient at their order; outside σ, as the 2019 paper's P nets, a saturated output unit leaves a bias that
no β removes. Float64, a tiny net, RBP (the implicit gradient at the fixed point) as the reference."""

import pytest
import torch

from bench_algorithms.ep import EP, EPCentered
from bench_algorithms.rbp import RBP
from bench_models.dchn import DCHN
from bench_runs.bias import fit_slope, total_error

D = torch.float64
T, K = 300, 100  # the free phase settles to rounding in T − K steps; K nudged steps settle the nudged phase
BETAS = [1e-3, 2e-3, 4e-3]


def _case(nudge: str):
    torch.manual_seed(0)
    m = DCHN(input_shape=[3, 8, 8], channels=[4, 8], padding=[1, 1], output_size=10, bias=False, init="torch",
             nudge=nudge).to(D)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 8, 8, generator=g, dtype=D)
    y = m.target(torch.randint(0, 10, (8,), generator=g))
    with torch.no_grad():
        s = m.init_state(x)
        for _ in range(T):
            s = m.step(x, s)
    saturated = float(((s[0] <= 0) | (s[0] >= 1)).to(D).mean())
    return m, x, y, RBP().processes(m, x, y, T=T, K=K), saturated


def _errors(case, algorithm):
    m, x, y, ref, _ = case
    return [total_error(algorithm(b).processes(m, x, y, T=T, K=K), ref) for b in BETAS]


@pytest.mark.parametrize("algorithm, order", [(EP, 1), (EPCentered, 2)])
def test_with_the_nudge_inside_sigma_ep_converges_to_the_gradient_at_its_order(algorithm, order):
    case = _case("inside")
    assert case[4] > 0.2  # the regime that matters: many output units sit on the hard sigmoid's bounds
    errors = _errors(case, algorithm)
    assert fit_slope(BETAS, errors) == pytest.approx(order, abs=0.05), errors
    assert errors[0] < 0.005, errors


def test_with_the_nudge_outside_sigma_saturated_outputs_leave_a_bias_beta_does_not_shrink():
    case = _case("outside")
    assert case[4] > 0.2
    errors = _errors(case, EPCentered)
    assert min(errors) > 0.1 and abs(fit_slope(BETAS, errors)) < 0.05, errors
