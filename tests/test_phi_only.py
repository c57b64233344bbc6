"""A model is its Φ: the generic step is ∂Φ/∂s by autograd (plus the nudge and an optional clip).

The smallest model plugin is `init_state`, `phi` and `param_groups`; EP, BPTT, the GDU analysis,
training and the conformance kit work on it unchanged. Compared here with a hand-written step of
the same Φ (float64), and through `bench check-plugin` as a third-party package.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from test_conformance import TinyEnergy

from conftest import write_dist
from harness.api.model import ConvergentRNN
from harness.cli.commands import main

PHI_ONLY = '''
    from harness import hookimpl
    from harness.api.model import ConvergentRNN
    from test_conformance import TinyEnergy


    class PhiOnly(TinyEnergy):
        """TinyEnergy's Φ, written without a step: its dynamics derive from Φ."""

        step = ConvergentRNN.step


    @hookimpl
    def register_models(register):
        register("phionly", PhiOnly, doc="a model written as its Φ alone")
'''


class DerivedTiny(TinyEnergy):
    """TinyEnergy without its hand-written step."""

    step = ConvergentRNN.step


def _pair():
    torch.manual_seed(0)
    written = TinyEnergy().double()
    derived = DerivedTiny().double()
    derived.load_state_dict(written.state_dict())
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 4, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 2]), 3).double()
    s = tuple(torch.rand(t.shape, generator=g, dtype=torch.float64) for t in written.init_state(x))
    return written, derived, x, y, s


def test_the_derived_step_equals_the_written_one_free_and_nudged():
    written, derived, x, y, s = _pair()
    with torch.no_grad():
        for beta in (0.0, 0.3):
            for a, b in zip(written.step(x, s, y, beta), derived.step(x, s, y, beta)):
                assert not b.requires_grad
                torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_bptt_through_the_derived_step_gives_the_written_steps_gradients():
    """In grad mode the derived step stays in the graph (second derivatives of Φ): the gradient of
    a loss after 5 steps w.r.t. the parameters and the initial state equals the written step's."""
    written, derived, x, y, s = _pair()
    grads = []
    for model in (written, derived):
        s0 = tuple(t.clone().requires_grad_() for t in s)
        state = s0
        for _ in range(5):
            state = model.step(x, state)
        loss = model.loss(state, y).sum()
        grads.append(torch.autograd.grad(loss, [*model.parameters(), *s0]))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-13)


def test_bptt_processes_through_the_derived_step_equal_the_written_steps():
    """BPTT reads ∂L/∂s_t through retain_grad: the derived step's inner gradient of Φ must not
    leak into it (it once did, and the GDU theorem failed for Φ-only models)."""
    from bench_algorithms import BPTT

    written, derived, x, y, _ = _pair()
    a, b = BPTT().processes(written, x, y, T=40, K=5), BPTT().processes(derived, x, y, T=40, K=5)
    for what in ("neurons", "weights"):
        for k, v in getattr(a, what).items():
            torch.testing.assert_close(getattr(b, what)[k], v, rtol=1e-10, atol=1e-14)


def test_the_clip_range_clips_the_derived_step():
    written, derived, x, y, s = _pair()
    derived.clip_range = (0.0, 0.1)
    with torch.no_grad():
        for a, b in zip(written.step(x, s, y, 0.3), derived.step(x, s, y, 0.3)):
            torch.testing.assert_close(b, a.clamp(0.0, 0.1), rtol=1e-12, atol=1e-14)


def test_a_phi_only_package_passes_check_plugin_with_the_gdu_theorem(fake_site, monkeypatch):
    write_dist(fake_site, "bench-phionly", "0.0.1", {"phionly": "phi_only_plugin"}, {"phi_only_plugin": PHI_ONLY})
    monkeypatch.setenv("BENCH_PLUGINS", "phionly,algorithms,metrics")
    out = CliRunner().invoke(main, ["check-plugin", "phionly"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    lines = {line.strip()[2:].split(":")[0]: line.strip()[0] for line in out.output.splitlines()
             if line.strip()[:1] in "✓✗–"}
    assert lines["F = ∂Φ/∂s"] == "✓" and lines["GDU theorem"] == "✓" and lines["nudge"] == "✓", out.output
    assert "ΔEP = −∇BPTT in float64" in out.output


def test_the_kit_checks_a_written_clipped_step_against_the_derived_one():
    from bench_models.energy import EBNet
    from harness.conformance import FAIL, PASS, check_model

    params = {"hidden": [7, 5], "input_size": 6, "output_size": 3, "clip": True, "activation": "sigmoid"}
    result = {r.check: r for r in check_model(EBNet, params)}["F = ∂Φ/∂s"]
    assert result.status == PASS and "step = clip(∂Φ/∂s + nudge) to [0.0, 1.0]" in result.message, result

    class ClipsWrong(EBNet):  # says [0, 1] but clips the output layer to [0, 0.5]
        def step(self, x, state, y=None, beta=0.0):
            new = super().step(x, state, y, beta)
            return (new[0].clamp(0, 0.5), *new[1:])

    result = {r.check: r for r in check_model(ClipsWrong, params)}["F = ∂Φ/∂s"]
    assert result.status == FAIL and "differs from the derived step clip(∂Φ/∂s − β·nudge_scale·∂ℓ/∂s) to " \
        "clip_range [0.0, 1.0] on layer 's0'" in result.message, result


@pytest.mark.slow
def test_the_kit_on_a_third_party_package_imports_no_builtin_plugin(fake_site):
    """The core knows no plugin by name: with only a third-party plugin loaded, importing harness
    and running the kit on it imports none of the built-in plugin modules (the checks that need
    EP, BPTT or RelMSE say they are not registered and are skipped)."""
    import os
    import subprocess
    import sys

    write_dist(fake_site, "bench-phionly", "0.0.1", {"phionly": "phi_only_plugin"}, {"phi_only_plugin": PHI_ONLY})
    script = (
        "import sys\n"
        "from harness.plugins import PluginManager\n"
        "from harness.conformance import check_plugin, format_report\n"
        "m = PluginManager(); m.load_entry_points()\n"
        "report = check_plugin('phionly', manager=m)\n"
        "print(format_report(report))\n"
        "print('IMPORTED', sorted(n for n in sys.modules if n.split('.')[0] in {'bench_models', 'bench_algorithms', "
        "'bench_metrics', 'bench_datasets', 'bench_runs', 'bench_executors', 'bench_trackers'}))\n"
    )
    from conftest import HERE

    env = {**os.environ, "BENCH_PLUGINS": "phionly",
           "PYTHONPATH": os.pathsep.join([str(fake_site), str(HERE), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stdout, out.stdout
    assert "✓ F = ∂Φ/∂s" in out.stdout and "– GDU theorem: needs the algorithm 'bptt', which no loaded plugin " \
        "registers" in out.stdout, out.stdout


def test_a_clipped_model_claiming_exact_gdu_is_refused():
    """clip_range with derives_from_phi = True would run the GDU theorem on clipped dynamics."""
    from harness.conformance import FAIL, check_model

    class ClippedClaimsExact(DerivedTiny):
        clip_range = (0.0, 1.0)

    results = {r.check: r for r in check_model(ClippedClaimsExact)}
    assert results["F = ∂Φ/∂s"].status == FAIL and "set derives_from_phi = False" in results["F = ∂Φ/∂s"].message
    assert results["GDU theorem"].message == "not run: check 'F = ∂Φ/∂s' failed"
