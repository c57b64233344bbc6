"""bench-hopfield's own tests, written with the harness's conformance kit.

Run them with the package installed next to eqprop-bench::

    pip install -e examples/hopfield-plugin
    python -m pytest examples/hopfield-plugin/tests

The fixture ``bench_manager`` comes from the kit's pytest plugin, loaded by ../conftest.py.
"""

from pathlib import Path

import torch

from bench_hopfield import HopfieldNet
from harness.conformance import assert_passed, check_model, check_plugin
from harness.suite.load import load_suite

SUITE = Path(__file__).resolve().parents[1] / "suites" / "hopfield.toml"


def _by_check(results):
    return {r.check: r for r in results}


def test_model_conforms_and_the_gdu_theorem_holds():
    # HopfieldNet.example gives the kit its small sizes; assert_passed raises on any failure
    results = _by_check(assert_passed(check_model(HopfieldNet)))
    assert results["GDU theorem"].status == "pass"
    assert results["GDU theorem"].data["max_relmse"] < 1e-3


def test_theorem_with_other_settings():
    results = _by_check(assert_passed(check_model(HopfieldNet, {"hidden_size": 16, "eps": 0.3, "lateral": 1.0,
                                                                "activation": "sigmoid"})))
    assert results["GDU theorem"].status == "pass"


def test_lateral_weights_stay_symmetric_with_zero_diagonal_when_trained():
    from bench_algorithms import BPTT, EP

    torch.manual_seed(0)
    m = HopfieldNet(input_size=5, hidden_size=6, output_size=3, eps=0.5)
    x = torch.rand(4, 5)
    y = m.target(torch.tensor([0, 1, 2, 0]))
    before = m.A.detach().clone()
    for alg in (EP(beta=0.5, lr=[0.1, 0.1, 0.1]), BPTT(lr=[0.1, 0.1, 0.1])):
        alg.train_step(m, x, y, T=20, K=5)
    L = m.lateral().detach()
    assert not torch.equal(m.A.detach(), before)  # the lateral weights do learn
    assert torch.equal(L, L.t()) and torch.count_nonzero(torch.diagonal(L)) == 0


def test_installed_plugin_conforms(bench_manager):
    report = assert_passed(check_plugin("hopfield", manager=bench_manager))  # as `bench check-plugin hopfield`
    assert report.count("pass") > 0


def test_suite_is_valid(bench_manager):
    suite = load_suite(SUITE, bench_manager.registry)
    assert {r.kind for r in suite.runs} == {"gdu", "train"}
