"""The conformance kit (`bench check-plugin`, harness.conformance) and the example plugin bench-hopfield.

The example is made visible the way an installed package is: its source
directory on sys.path and a dist-info with its `bench` entry point (no pip).
"""

from __future__ import annotations

import csv
import importlib.metadata as md
import io
import json
import os

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from conftest import REPO, SHARED_DATA, write_dist
from harness.api.dataset import Split, Splits
from harness.api.model import ConvergentRNN
from harness.cli.commands import main
from harness.conformance import (
    FAIL,
    PASS,
    SKIP,
    Report,
    assert_passed,
    check_dataset,
    check_metric,
    check_model,
    check_plugin,
    format_report,
)
from harness.plugins import PluginManager

EXAMPLE = REPO / "examples" / "hopfield-plugin"
SUITE = EXAMPLE / "suites" / "hopfield.toml"
BUILTINS = ["models", "algorithms", "metrics", "datasets", "runs", "executors"]


@pytest.fixture
def example_site(fake_site, monkeypatch):
    """bench-hopfield as if installed: its package on sys.path, its entry point in a dist-info."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    # a real `pip install -e` (or the egg-info it leaves in EXAMPLE) already provides the entry point
    if not any(ep.name == "hopfield" for ep in md.entry_points(group="bench")):
        write_dist(fake_site, "bench-hopfield", "0.1.0", {"hopfield": "bench_hopfield"}, {})
    return fake_site


def _by_check(results):
    return {r.check: r for r in results}


# -- (a) the example package through the CLI --------------------------------------
@pytest.mark.slow
def test_example_plugin_loads_checks_and_runs_its_suite(example_site, tmp_path):
    runner = CliRunner()

    def bench(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    out = bench("plugins")
    assert out.exit_code == 0, out.output
    assert "hopfield     bench-hopfield 0.1.0  [loaded]  bench_hopfield" in out.output
    assert "provides: model:hopfield" in out.output

    out = bench("check-plugin", "hopfield")
    assert out.exit_code == 0, out.output
    assert "✓ F = ∂Φ/∂s: step(x, s) = ∂Φ/∂s" in out.output
    assert "✓ GDU theorem: ΔEP = −∇BPTT in float64" in out.output
    assert "✓ EP train step" in out.output and "✓ BPTT train step" in out.output
    assert "0 failed" in out.output.splitlines()[-1]

    results = tmp_path / "results"
    out = bench("run", SUITE, "--results-dir", results, "--no-table")
    assert out.exit_code == 0, out.output
    assert "summary: 3 done" in out.output

    out = bench("table", SUITE, "--results-dir", results, "--table", "gdu", "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {r["layer"] for r in rows} == {"s0", "h", "W1x", "W1x.1", "Lhh", "W01", "W01.1"}
    for r in rows:  # float64, steady state, β = 0.001: ΔEP = −∇BPTT up to O(β), same signs
        for col, value in r.items():
            if "relmse" in col and value:
                assert float(value.split()[0]) < 5e-3, (r["layer"], col, value)
            if "sign" in col and value:
                assert float(value.split()[0]) == 1.0, (r["layer"], col, value)

    out = bench("table", SUITE, "--results-dir", results, "--table", "train")
    assert out.exit_code == 0, out.output
    assert "Hopfield-train" in out.output and "EP test" in out.output and "BPTT test" in out.output


# -- (b) the GDU theorem for the example model, through the kit ------------------------
def test_gdu_theorem_holds_for_the_example_model_in_float64(example_site):
    from bench_hopfield import HopfieldNet

    results = _by_check(assert_passed(check_model(HopfieldNet)))  # raises on any failed check
    assert results["F = ∂Φ/∂s"].status == PASS
    theorem = results["GDU theorem"]
    assert theorem.status == PASS, theorem.message
    data = theorem.data
    assert data["max_relmse"] < 1e-3
    assert set(data["relmse"]) == {"neurons:s0", "neurons:h", "weights:W1x.0", "weights:W1x.1",
                                   "weights:Lhh.0", "weights:W01.0", "weights:W01.1"}
    assert 8 < data["median_ratio_10beta"] < 12  # the remaining error is O(β)
    assert data["residual"] < 1e-12 and data["T"] == data["steady_steps"] + data["K"]

    # a larger net, with the paper's sigmoid, without biases
    results = _by_check(assert_passed(check_model(HopfieldNet, {"hidden_size": 12, "activation": "sigmoid",
                                                                "bias": False})))
    assert results["GDU theorem"].status == PASS


# -- (c) every built-in plugin passes ------------------------------------------------
def _mnist_files(data_dir) -> bool:
    raw = data_dir / "MNIST" / "raw"
    return all(any((raw / f"{n}{gz}").is_file() for gz in ("", ".gz")) for n in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


@pytest.mark.slow
def test_check_plugin_passes_on_every_builtin(monkeypatch, tmp_path):
    from pathlib import Path

    if os.environ.get("BENCH_DATA_DIR"):
        data_dir = Path(os.environ["BENCH_DATA_DIR"]).resolve()
    elif SHARED_DATA.exists():
        data_dir = SHARED_DATA
    else:
        data_dir = tmp_path / "no-data"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    import harness.plugins as hp

    monkeypatch.setattr(hp, "_DEFAULT", None)
    out = CliRunner().invoke(main, ["check-plugin", *BUILTINS, "--json"], catch_exceptions=False)
    reports = json.loads(out.output)
    assert [r["plugin"] for r in reports] == BUILTINS
    for r in reports:
        failed = [f"{x['component']} {x['check']}: {x['message']}" for x in r["results"] if x["status"] == FAIL]
        assert r["ok"] and not failed, (r["plugin"], failed)
    assert out.exit_code == 0
    results = {(x["component"], x["check"]): x for r in reports for x in r["results"]}
    for model in ("toy", "eb"):  # the exact models: F = ∂Φ/∂s, and the theorem holds
        assert results[(f"model:{model}", "GDU theorem")]["status"] == PASS
        assert results[(f"model:{model}", "GDU theorem")]["data"]["max_relmse"] < 1e-3
    for model in ("p", "pconv"):  # F ≈ ∂Φ/∂s only: skipped with the reason
        assert results[(f"model:{model}", "GDU theorem")]["status"] == SKIP
        assert "derives_from_phi is False" in results[(f"model:{model}", "GDU theorem")]["message"]
    mnist = results[("dataset:mnist", "load")]
    if _mnist_files(data_dir):
        assert mnist["status"] == PASS, mnist
    else:
        assert mnist["status"] == SKIP and mnist["message"].startswith("needs data: MNIST files missing")
    for comp in ("algorithm:ep", "algorithm:bptt"):
        assert results[(comp, "processes")]["status"] == PASS
    assert results[("metric:relmse", "direction")]["message"] == "lower is better"
    assert results[("metric:sign", "direction")]["message"] == "higher is better"


# -- (d) deliberately broken components fail with a message saying what is wrong --------------
class TinyEnergy(ConvergentRNN):
    """A correct minimal model written from scratch: Φ = ½(1−ε)Σ‖s‖² + ε(σ(s0)·W·σ(h) + σ(h)·V·x + b·σ(s0))."""

    layer_names = ("s0", "h")
    input_size = 4

    def __init__(self, hidden: int = 5, eps: float = 0.5):
        super().__init__()
        self.eps = eps
        self.nudge_scale = eps
        self.W = nn.Parameter(torch.empty(3, hidden).uniform_(-0.5, 0.5))
        self.V = nn.Parameter(torch.empty(hidden, 4).uniform_(-0.5, 0.5))
        self.b = nn.Parameter(torch.zeros(3))

    @property
    def num_classes(self):
        return 3

    def init_state(self, x):
        return x.new_zeros(x.shape[0], 3), x.new_zeros(x.shape[0], self.V.shape[0])

    def param_groups(self):
        return {"V": [self.V], "W": [self.W, self.b]}

    def phi(self, x, s):
        s0, h = s
        a0, ah = torch.tanh(s0), torch.tanh(h)
        sq = (s0 * s0).sum(1) + (h * h).sum(1)
        return 0.5 * (1 - self.eps) * sq + self.eps * (((a0 @ self.W) * ah).sum(1) + ((ah @ self.V) * x).sum(1)
                                                       + a0 @ self.b)

    def step(self, x, s, y=None, beta=0.0):
        s0, h = s
        a0, ah = torch.tanh(s0), torch.tanh(h)
        e = self.eps
        n0 = (1 - e) * s0 + e * (1 - a0 * a0) * (ah @ self.W.t() + self.b)
        nh = (1 - e) * h + e * (1 - ah * ah) * (a0 @ self.W + x @ self.V.t())
        if beta != 0.0 and y is not None:
            n0 = n0 + beta * e * (y - s0)
        return n0, nh


class StepChangesShape(TinyEnergy):
    def step(self, x, s, y=None, beta=0.0):
        n0, nh = super().step(x, s, y, beta)
        return n0, torch.cat([nh, nh[:, :1]], 1)


class PhiInconsistent(TinyEnergy):
    def phi(self, x, s):  # forgot the ½ on the quadratic term; still claims derives_from_phi
        return super().phi(x, s) + 0.5 * (1 - self.eps) * (s[1] * s[1]).sum(1)


class NondeterministicInit(TinyEnergy):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
        with torch.no_grad():
            self.W.copy_(torch.rand(self.W.shape, generator=g) - 0.5)


class GroupMissesBias(TinyEnergy):
    def param_groups(self):
        return {"V": [self.V], "W": [self.W]}


class WrongNudgeScale(TinyEnergy):
    def __init__(self):
        super().__init__()
        self.nudge_scale = 1.0  # the step nudges by β·ε


class Oscillates(ConvergentRNN):
    """Φ = −½‖s‖² + s·(Wx): F = −s + Wx = ∂Φ/∂s exactly, but s flips between 0 and Wx forever."""

    layer_names = ("s0",)
    input_size = 4

    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.empty(3, 4).uniform_(-1, 1))

    num_classes = 3

    def init_state(self, x):
        return (x.new_zeros(x.shape[0], 3),)

    def param_groups(self):
        return {"W": [self.W]}

    def phi(self, x, s):
        return -0.5 * (s[0] * s[0]).sum(1) + ((x @ self.W.t()) * s[0]).sum(1)

    def step(self, x, s, y=None, beta=0.0):
        new = -s[0] + x @ self.W.t()
        if beta != 0.0 and y is not None:
            new = new + beta * (y - s[0])
        return (new,)


def test_a_correct_model_written_from_scratch_passes():
    results = _by_check(assert_passed(check_model(TinyEnergy)))
    assert results["GDU theorem"].status == PASS
    assert results["fast paths"].status == SKIP


@pytest.mark.parametrize("factory,check,message", [
    (StepChangesShape, "step shapes",
     "step(x, s) changed layer 'h': found (3, 6) torch.float32, expected (3, 5) torch.float32 as the state it "
     "was given; a step must keep every layer's shape and dtype"),
    (PhiInconsistent, "F = ∂Φ/∂s",
     "F(x, s) = step(x, s) differs from ∂Φ/∂s (autograd of phi) on layer 'h' by up to"),
    (NondeterministicInit, "determinism",
     "building twice with the same seed (seed_everything(0)) gave different values for 'W'"),
    (GroupMissesBias, "param groups",
     "parameter 'b' (shape (3,)) is trainable but in no parameter group; EP and BPTT only update what "
     "param_groups() lists"),
    (WrongNudgeScale, "nudge",
     "the nudge on layer 's0' is not −β·nudge_scale·∂ℓ/∂s"),
    (Oscillates, "GDU theorem", "the free dynamics did not settle: after 20000 steps in float64"),
], ids=["shape", "phi", "init", "groups", "nudge", "settle"])
def test_broken_models_fail_with_what_is_wrong(factory, check, message):
    results = _by_check(check_model(factory))
    assert results[check].status == FAIL, results[check]
    assert message in results[check].message, results[check].message
    # only what is broken (and what depends on it) fails
    failed = {c for c, r in results.items() if r.status == FAIL}
    assert failed == {check}, failed
    with pytest.raises(AssertionError, match="conformance checks failed"):
        assert_passed(check_model(factory))


def test_broken_model_details():
    msg = _by_check(check_model(WrongNudgeScale))["nudge"].message
    assert "nudge_scale = 1.0; the nudge found corresponds to a scale of 0.5" in msg
    msg = _by_check(check_model(PhiInconsistent))["F = ∂Φ/∂s"].message
    assert "claims derives_from_phi = True" in msg
    results = _by_check(check_model(StepChangesShape))
    assert results["GDU theorem"].status == SKIP and "not run: check 'step shapes' failed" in \
        results["phi"].message


class NoDirection:
    def __call__(self, a, b):
        return float((a - b).abs().mean())


class BadLabels:
    def load(self, device, dtype):
        x = torch.rand(6, 2, dtype=dtype, device=device)
        return Splits(Split(x, torch.tensor([0, 1, 2, 3, 0, 1])), Split(x, torch.zeros(6, dtype=torch.int64)), 3)


def test_broken_metric_and_dataset():
    r = _by_check(check_metric(NoDirection))
    assert r["direction"].status == FAIL
    assert r["direction"].message.startswith("direction is None; a metric declares direction = \"lower\" or")
    r = _by_check(check_dataset(BadLabels))
    assert r["load"].status == FAIL
    assert r["load"].message == "train.y has labels in [0, 3], expected 0 … num_classes − 1 = 2"


def test_an_integer_parameter_without_an_upper_bound_fails_the_declaration():
    """`epochs = 99999999999999999999999` once trained with an ETA of 10^17 hours: every integer
    parameter declares its bound, and the kit refuses one that does not."""
    from harness.api.components import Component, Param

    def factory(width: int = 3, depth: int = 2, mode: int = 0):
        return object()

    comp = Component("metric", "loose", factory, params=(
        Param("width", int, 3, min=1, max=100), Param("depth", int | None, 2, min=1), Param("mode", int, 0, choices=(0, 1))))
    r = _by_check(check_metric(comp))
    assert r["declaration"].status == FAIL
    assert "parameter 'depth': an integer without an upper bound; declare max=..." in r["declaration"].message
    assert "'width'" not in r["declaration"].message and "'mode'" not in r["declaration"].message


BROKEN_PLUGIN = """
    import torch
    from harness import hookimpl, Param
    from test_conformance import GroupMissesBias

    @hookimpl
    def register_models(register):
        register("leaky", GroupMissesBias, doc="forgets its bias in param_groups")

    @hookimpl
    def register_metrics(register):
        register("nodir", lambda: (lambda a, b: 0.0), doc="no direction")
"""


def test_check_plugin_cli_reports_broken_plugin(fake_site, monkeypatch):
    import harness.plugins as hp

    write_dist(fake_site, "bench-broken", "0.0.1", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_PLUGIN})
    monkeypatch.setenv("BENCH_PLUGINS", "broken,algorithms")
    out = CliRunner().invoke(main, ["check-plugin", "broken"], catch_exceptions=False)
    assert out.exit_code == 1, out.output
    assert "model:leaky" in out.output and "metric:nodir" in out.output
    assert "  ✗ param groups: parameter 'b' (shape (3,)) is trainable but in no parameter group" in out.output
    assert "  ✗ direction: direction is None" in out.output
    assert "  – dphi_dtheta: not run: check 'param groups' failed" in out.output
    assert out.output.splitlines()[-1].startswith("plugin broken: ") and "2 failed" in out.output

    # a plugin that fails to load is reported as such; an unknown name gets a hint
    monkeypatch.setenv("BENCH_PLUGINS", "algorithms")
    monkeypatch.setattr(hp, "_DEFAULT", None)  # the CLI's manager is cached per process
    out = CliRunner().invoke(main, ["check-plugin", "broken"], catch_exceptions=False)
    assert out.exit_code == 1 and "✗ loads: the plugin is disabled" in out.output
    out = CliRunner().invoke(main, ["check-plugin", "algoritms"], catch_exceptions=False)
    assert out.exit_code == 1 and "no plugin 'algoritms' (did you mean 'algorithms'?)" in out.output


def test_report_api():
    m = PluginManager()
    import bench_metrics

    m.register_plugin(bench_metrics, "metrics")
    report = check_plugin("metrics", manager=m)
    assert assert_passed(report) is report and report.ok and report.count(FAIL) == 0 and report.count(PASS) == 9
    text = format_report(report)
    assert "metric:relmse\n  ✓ declaration" in text and text.endswith("plugin metrics: 9 passed, 0 failed, 0 skipped")


def test_assert_passed_lists_the_failed_checks_of_results_or_a_report():
    from harness.conformance import CheckResult

    ok = [CheckResult("metric:m", "builds", PASS, "fine"), CheckResult("metric:m", "values", SKIP, "why")]
    assert assert_passed(ok) is ok  # skipped checks do not fail
    report = Report("p", results=[*ok, CheckResult("metric:m", "direction", FAIL, "direction is None")])
    with pytest.raises(AssertionError) as exc:
        assert_passed(report)
    assert str(exc.value) == "conformance checks failed (plugin p):\n  metric:m: ✗ direction: direction is None"


def test_lazy_checks_give_the_eager_results(example_site):
    """The pytest kit runs each check on demand (its prerequisites first): same outcomes as the
    eager run, whatever order the checks are asked for in."""
    from harness.conformance import as_component
    from harness.conformance.plugin import plan_component

    eager = {r.check: r.status for r in check_model("hopfield")}
    lazy = plan_component(as_component("model", "hopfield"))
    assert list(lazy.plan) == list(eager) and not lazy.results  # planned, nothing run yet
    for name in reversed(list(lazy.plan)):  # the last first: it pulls in what it needs
        assert lazy.result(name).status == eager[name], name


@pytest.mark.slow
def test_check_plugin_as_pytest_tests(fake_site, tmp_path):
    """`bench check-plugin NAME --pytest ARGS`: one pytest test per check, -k and --junitxml apply,
    a failed check is a failure with the kit's message, what it prevented is skipped."""
    import subprocess
    import sys
    import xml.etree.ElementTree as ET

    from conftest import HERE

    write_dist(fake_site, "bench-broken", "0.0.1", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN_PLUGIN})
    env = {**os.environ, "BENCH_PLUGINS": "broken,algorithms,metrics",
           "PYTHONPATH": os.pathsep.join([str(fake_site), str(HERE), os.environ.get("PYTHONPATH", "")])}
    junit = tmp_path / "kit.xml"
    out = subprocess.run([sys.executable, "-m", "harness.cli", "check-plugin", "broken", "--pytest",
                          f"-q -k 'leaky and not train' --junitxml={junit}"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert "test_conformance[model:leaky::builds]" in cases and not any("train" in n for n in cases)
    failed = cases["test_conformance[model:leaky::param groups]"].find("failure")
    assert failed is not None and "is trainable but in no parameter group" in failed.get("message"), failed
    skipped = cases["test_conformance[model:leaky::dphi_dtheta]"].find("skipped")
    assert skipped is not None and "not run: check 'param groups' failed" in skipped.get("message")


@pytest.mark.slow
def test_check_plugin_counts_the_same_checks_with_and_without_pytest():
    """The plugin's own `loads` check is a test too: 14 checks on the command line were 13 under --pytest."""
    import re
    import subprocess
    import sys

    pytest.importorskip("bench_hopfield")
    plain = CliRunner().invoke(main, ["check-plugin", "hopfield"])
    passed, skipped = map(int, re.search(r"(\d+) passed, 0 failed, (\d+) skipped", plain.output).groups())
    out = subprocess.run([sys.executable, "-m", "harness.cli", "check-plugin", "hopfield", "--pytest", "-q"],
                         capture_output=True, text=True, timeout=300)
    assert f"{passed} passed, {skipped} skipped" in out.stdout, out.stdout[-500:]


def test_every_integer_key_of_the_suite_format_has_an_upper_bound():
    from harness.api.components import type_name
    from harness.suite.spec import RUN_KEYS, TABLE_KEYS

    unbounded = [p.name for p in [*RUN_KEYS.values(), *TABLE_KEYS.values()]
                 if "int" in type_name(p.type).split("[")[-1] and p.choices is None and p.max is None]
    assert unbounded == []


def test_a_prototypical_step_is_checked_against_its_activation_of_grad_phi(registry):
    """P and P-conv claim s ← σ(∂Φ/∂s) + nudge (step_activation), the DCHN σ(∂Φ/∂s + nudge)
    (nudge_in_activation); a wrong σ, or a nudge outside σ claimed inside, is caught."""
    from bench_models.prototypical import PNet

    class WrongSigma(PNet):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.step_activation = torch.tanh  # the step applies the shifted sigmoid, not tanh

    class ClaimsInside(PNet):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.nudge_in_activation = True  # but PNet's step nudges outside σ

    small = {"input_shape": [3, 8, 8], "channels": [3, 4], "padding": [1, 0], "output_size": 3}
    ok = _by_check(check_model("dchn", small, registry=registry))
    assert ok["F = ∂Φ/∂s"].status == PASS and "σ(∂Φ/∂s + nudge)" in ok["F = ∂Φ/∂s"].message
    assert ok["nudge"].status == PASS and "(inside σ)" in ok["nudge"].message
    outside = _by_check(check_model("dchn", {**small, "nudge": "outside"}, registry=registry))
    assert outside["F = ∂Φ/∂s"].status == PASS and "σ(∂Φ/∂s) + nudge" in outside["F = ∂Φ/∂s"].message
    lying = _by_check(check_model(ClaimsInside, {"hidden": [5], "input_size": 4, "output_size": 3,
                                                 "activation": "hard_sigmoid"}))
    assert lying["nudge"].status == FAIL and lying["F = ∂Φ/∂s"].status == FAIL
    bad = _by_check(check_model(WrongSigma, {"hidden": [5], "input_size": 4, "output_size": 3,
                                              "activation": "sigmoid"}))
    assert bad["F = ∂Φ/∂s"].status == FAIL and "differs from σ(∂Φ/∂s) + nudge" in bad["F = ∂Φ/∂s"].message


def test_the_dchn_defaults_to_the_authors_cifar10_net(registry):
    """Their code's command: --channels 128 256 512 512 --kernels 3 3 3 3 --pools mmmm --paddings 1 1 1 0 --fc 10."""
    net = registry.get("model", "dchn").build({})
    shapes = [tuple(net.w[g].shape) for g in net.group_order]
    assert shapes == [(128, 3, 3, 3), (256, 128, 3, 3), (512, 256, 3, 3), (512, 512, 3, 3), (10, 512)]
    assert [tuple(s) for s in net.h_shapes] == [(512, 1, 1), (512, 4, 4), (256, 8, 8), (128, 16, 16)]
