"""Every fast path gives the generic path's results (``fast = False``: autograd on Φ, every
layer updated at every step, the input's drive recomputed at every step).

Tolerances: float64, 1e-12 relative to the values' scale (the fast paths reorder sums: a fused
``addmm``, one matmul for a difference of two, one gradient for a drive reused K times), except
where the comparison is exact (``torch.equal``). float32: 2e-5 relative after a training step.
Batched seeds vs separate runs: float64 1e-12; float32 5e-5 on the final checksum after two
epochs through the runner (tests/test_speed.py; batched matmuls may round differently).
"""

from __future__ import annotations

import copy

import pytest
import torch

from bench_algorithms import BPTT, EP
from bench_models import DCHN, EBNet, PConvNet, PNet, ToyModel
from bench_runs.train import error_rate, error_rates
from conftest import ReplayBackend
from harness.api.model import Clamped, ConvergentRNN, member_state, stack_members

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


P_HIDDEN = {"P-1h": [12], "P-2h": [12, 9], "P-3h": [12, 9, 8]}

MODELS = {
    **{k: (lambda h=h, **kw: PNet(hidden=h, input_size=15, output_size=4, activation="sigmoid", **kw))
       for k, h in P_HIDDEN.items()},
    "P-2h-tanh": lambda **kw: PNet(hidden=[12, 9], input_size=15, output_size=4, activation="tanh", **kw),
    "P-2h-leaky": lambda **kw: PNet(hidden=[12, 9], input_size=15, output_size=4, activation="sigmoid", dt=0.2, **kw),
    "EB-1h": lambda **kw: EBNet(hidden=[12], input_size=15, output_size=4, activation="sigmoid", eps=0.2,
                                clip=True, **kw),
    "EB-2h": lambda **kw: EBNet(hidden=[12, 9], input_size=15, output_size=4, activation="tanh", eps=0.3, **kw),
    "toy": lambda **kw: ToyModel(input_size=15, hidden_size=12, output_size=4, bias=True, **kw),
    "P-conv": lambda **kw: PConvNet(input_shape=[1, 12, 12], channels=[3, 4], kernel=3, output_size=4,
                                    activation="tanh", init="torch", **kw),
    # the DCHN's cross-entropy readout (no output layer) and linear output (σ per layer)
    "DCHN-CE": lambda **kw: DCHN(input_shape=[3, 8, 8], channels=[3, 4], padding=[1, 1], output_size=4,
                                 init="torch", loss="cross_entropy", **kw),
    "DCHN-linear": lambda **kw: DCHN(input_shape=[3, 8, 8], channels=[3, 4], padding=[1, 1], output_size=4,
                                     init="torch", output="linear", **kw),
}
LRS = {"P-1h": [0.3, 0.2], "P-2h": [0.3, 0.2, 0.1], "P-3h": [0.3, 0.2, 0.1, 0.05], "P-2h-tanh": [0.3, 0.2, 0.1],
       "P-2h-leaky": [0.3, 0.2, 0.1],
       "EB-1h": [0.3, 0.2], "EB-2h": [0.3, 0.2, 0.1], "toy": [0.3, 0.2, 0.1], "P-conv": [0.3, 0.2, 0.1],
       "DCHN-CE": [0.3, 0.2, 0.1], "DCHN-linear": [0.3, 0.2, 0.1]}


def _pair(name, dtype=D, seed=0, device="cpu"):
    torch.manual_seed(seed)
    fast = MODELS[name]().to(device, dtype)
    generic = copy.deepcopy(fast)
    generic.fast = False
    assert fast.fast
    return fast, generic


def _data(model, batch=5, seed=1, dtype=D):
    """A batch drawn on the CPU (the same numbers on any device), placed on the model's device."""
    g = torch.Generator().manual_seed(seed)
    shape = model.input_shape if isinstance(model, PConvNet) else (15,)
    x = torch.rand(batch, *shape, generator=g, dtype=dtype)
    y = model.target(torch.randint(0, model.num_classes, (batch,), generator=g)).to(dtype)
    device = next(model.parameters()).device
    return x.to(device), y.to(device)


def _close(a, b, rtol):
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() <= rtol * scale


def _params_close(m1, m2, rtol):
    for (n1, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert _close(p1.detach(), p2.detach(), rtol), n1


@pytest.mark.device
@pytest.mark.parametrize("algo", ["ep", "bptt"])
@pytest.mark.parametrize("name", list(MODELS))
def test_train_step_fast_equals_generic(name, algo, device):
    """Parameters after three training steps, and the returned loss and error."""
    fast, generic = _pair(name, device=device)
    x, y = _data(fast)
    T, K = (12, 5) if name == "P-conv" or name.startswith("DCHN") else (30, 7)
    alg = EP(beta=0.3, lr=LRS[name]) if algo == "ep" else BPTT(lr=LRS[name])
    before = copy.deepcopy(fast)
    for _ in range(3):
        out_f = alg.train_step(fast, x, y, T=T, K=K)
        out_g = alg.train_step(generic, x, y, T=T, K=K)
        assert _close(out_f["loss"], out_g["loss"], 1e-12) and torch.equal(out_f["error"], out_g["error"])
    _params_close(fast, generic, 1e-12)
    moved = sum((p - q).abs().max().item() for p, q in zip(fast.parameters(), before.parameters()))
    assert moved > 1e-3  # the comparison is not vacuous


@pytest.mark.device
@pytest.mark.parametrize("name", ["P-1h", "EB-1h"])
def test_train_step_fast_equals_generic_float32(name, device):
    fast, generic = _pair(name, torch.float32, device=device)
    x, y = _data(fast, dtype=torch.float32)
    for alg in (EP(beta=0.3, lr=LRS[name]), BPTT(lr=LRS[name])):
        alg.train_step(fast, x, y, T=30, K=7)
        alg.train_step(generic, x, y, T=30, K=7)
    _params_close(fast, generic, 2e-5)


def test_generic_switch_is_the_generic_path():
    """``fast = False``: no cached input, ∂Φ/∂θ is exactly autograd on Φ."""
    for name in MODELS:
        _, generic = _pair(name)
        x, _ = _data(generic)
        assert generic.prepare(x) is x
        s = tuple(torch.rand_like(t) for t in generic.init_state(x))
        a, b = generic.dphi_dtheta(x, s), ConvergentRNN.dphi_dtheta(generic, x, s)
        assert all(torch.equal(u, v) for g in a for u, v in zip(a[g], b[g]))


@pytest.mark.parametrize("name", list(MODELS))
def test_cached_input_drive_gives_the_same_step(name):
    fast, _ = _pair(name)
    x, y = _data(fast)
    xp = fast.prepare(x)
    assert isinstance(xp, Clamped)
    s = tuple(torch.rand_like(t) for t in fast.init_state(x))
    for beta in (0.0, 0.4):
        for u, v in zip(fast.step(xp, s, y, beta), fast.step(x, s, y, beta)):
            assert _close(u, v, 1e-13)


@pytest.mark.parametrize("name", list(MODELS))
def test_explicit_dphi_and_delta_equal_autograd(name):
    fast, _ = _pair(name)
    x, _ = _data(fast)
    xp = fast.prepare(x)
    s1 = tuple(torch.rand_like(t) for t in fast.init_state(x))
    s0 = tuple(torch.rand_like(t) for t in fast.init_state(x))
    ref1, ref0 = ConvergentRNN.dphi_dtheta(fast, x, s1), ConvergentRNN.dphi_dtheta(fast, x, s0)
    explicit = fast.dphi_dtheta(xp, s1)
    delta = fast.dphi_delta(xp, s1, s0)
    assert list(explicit) == list(ref1) == list(delta)
    for g in ref1:
        assert len(explicit[g]) == len(ref1[g]) == len(delta[g])
        for e, d, r1, r0 in zip(explicit[g], delta[g], ref1[g], ref0[g]):
            assert _close(e, r1, 1e-12), g
            assert _close(d, r1 - r0, 1e-12), g


@pytest.mark.parametrize("name", list(P_HIDDEN))
def test_p_chain_trick_keeps_the_chain_that_reaches_the_output(name):
    """After ``relax(T, output_at=T)`` the layers with n even equal the full update's s_T exactly and
    those with n odd equal its s_{T−1} (the chain reaching s⁰_T, Appendix C.6); the full s_T's odd
    layers are not computed. The same holds when the run is split (BPTT: T − K, then K)."""
    fast, generic = _pair(name)
    x, _ = _data(fast)
    xp = fast.prepare(x)
    T = 9
    s0 = fast.init_state(x)
    full = [s0]
    for _ in range(T):
        full.append(fast.relax(xp, full[-1], 1))
    chain = fast.relax(xp, s0, T, output_at=T)
    split = fast.relax(xp, fast.relax(xp, s0, T - 4, output_at=T), 4, output_at=4)
    for n in range(len(chain)):
        expected = full[T][n] if n % 2 == 0 else full[T - 1][n]
        assert torch.equal(chain[n], expected) and torch.equal(split[n], expected), n
    assert not torch.allclose(chain[1], full[T][1])  # the other chain really is skipped
    generic_out = generic.relax(x, s0, T)[0]
    assert _close(chain[0], generic_out, 1e-13)
    with pytest.raises(ValueError, match="output_at"):
        fast.relax(xp, s0, 3, output_at=2)


def test_chain_trick_not_used_with_a_nudge():
    """β(y − s⁰_t) joins the chains: a nudged relax updates every layer even when asked for the output."""
    fast, _ = _pair("P-2h")
    x, y = _data(fast)
    xp = fast.prepare(x)
    s = tuple(torch.rand_like(t) for t in fast.init_state(x))
    a = fast.relax(xp, s, 5, y, 0.5, output_at=5)
    b = fast.relax(xp, s, 5, y, 0.5)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("name", ["P-3h", "EB-1h", "P-conv"])
def test_error_rate_fast_equals_generic(name):
    fast, generic = _pair(name)
    x, _ = _data(fast, batch=40, seed=5)
    labels = torch.randint(0, 4, (40,), generator=torch.Generator().manual_seed(6))
    assert error_rate(fast, x, labels, 11, 16) == error_rate(generic, x, labels, 11, 16)


# -- batched seeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["ep", "bptt"])
@pytest.mark.parametrize("name", ["P-2h", "EB-1h", "toy", "P-conv", "DCHN-CE", "DCHN-linear"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "generic"])
def test_stacked_members_equal_separate_models(name, algo, fast):
    """Three seeds as one model with a leading seed dimension, each with its own data, train as
    three separate models do (float64); evaluated on a shared input, they predict as they do."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(MODELS[name](fast=fast).to(D))
    stacked = stack_members(models)
    assert stacked.members == 3
    batches = [_data(models[0], seed=10 + i) for i in range(3)]
    x = torch.stack([b[0] for b in batches])
    y = torch.stack([b[1] for b in batches])
    alg = EP(beta=0.3, lr=LRS[name]) if algo == "ep" else BPTT(lr=LRS[name])
    for _ in range(2):
        out = alg.train_step(stacked, x, y, T=20, K=6)
        outs = [alg.train_step(m, xb, yb, T=20, K=6) for m, (xb, yb) in zip(models, batches)]
    assert out["loss"].shape == (3,)
    for i, m in enumerate(models):
        assert _close(out["loss"][i], outs[i]["loss"], 1e-12)
        for k, v in member_state(stacked, i).items():
            assert _close(v, m.state_dict()[k], 1e-12), (i, k)
    xt, _ = _data(models[0], batch=30, seed=4)
    labels = torch.randint(0, 4, (30,), generator=torch.Generator().manual_seed(3))
    assert error_rates(stacked, xt, labels, 10, 7) == [error_rate(m, xt, labels, 10, 7) for m in models]


def test_stacked_p_conv_takes_flat_or_image_inputs_shared_or_per_member():
    """A stacked P-conv reads ``(B, sample)`` as one batch for every member and ``(S, B, sample)``
    as one batch per member, the sample flat or image-shaped; its conv layers' states are
    ``(S, B, C, H, W)`` laid out so that folding the members into the channels copies nothing."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(MODELS["P-conv"]().to(D))
    stacked = stack_members(models)
    x, _ = _data(models[0], batch=4)
    per_member = torch.stack([x, x.flip(0), 1 - x])
    for xs in (x, x.flatten(1), per_member, per_member.flatten(2)):
        s = stacked.init_state(xs)
        assert [t.shape for t in s] == [(3, 4, 4), (3, 4, 4, 1, 1), (3, 4, 3, 5, 5)]
        s = stacked.relax(stacked.prepare(xs), s, 4)
        assert all(stacked._fold(t).data_ptr() == t.data_ptr() for t in s[1:])  # views, not copies
        for i, m in enumerate(models):
            xi = xs if xs.dim() in (2, 4) else xs[i]
            ref = m.relax(m.prepare(xi), m.init_state(xi), 4)
            assert all(_close(u[i], v, 1e-13) for u, v in zip(s, ref)), i


class _NoMembers(ConvergentRNN):
    """A model that does not declare ``supports_members``."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))


def test_stacking_refuses_models_without_members():
    assert not _NoMembers.supports_members
    with pytest.raises(ValueError, match="supports_members"):
        stack_members([_NoMembers(), _NoMembers()])


# -- the CUDA-graph wrapper, with stand-in backends (the CUDA calls themselves need a GPU) ----------
def _graphed_setup(backend):
    from harness.run.acceleration import graphed_train_step

    fast, _ = _pair("P-2h")
    eager = copy.deepcopy(fast)
    alg = EP(beta=0.3, lr=LRS["P-2h"])
    step = graphed_train_step(alg, fast, T=20, K=5, backend=backend)
    batches = [_data(fast, seed=s) for s in range(3)]
    return fast, eager, alg, step, batches


def test_graphed_step_replays_with_the_eager_results():
    backend = ReplayBackend()
    fast, eager, alg, step, batches = _graphed_setup(backend)
    for x, y in batches:
        out = step(x, y)
        ref = alg.train_step(eager, x, y, T=20, K=5)
        assert _close(out["loss"], ref["loss"], 1e-12)
        _params_close(fast, eager, 1e-12)
    assert step.graphed and step.replays == 2 and backend.replays == 3  # the first call checks by replaying


@pytest.mark.parametrize("how", ["broken", "fail"])
def test_graphed_step_falls_back_to_eager_with_a_warning(how):
    backend = ReplayBackend(**{how: True})
    fast, eager, alg, step, batches = _graphed_setup(backend)
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        step(*batches[0])
    alg.train_step(eager, *batches[0], T=20, K=5)
    _params_close(fast, eager, 1e-12)  # the eager result was kept, not the bad replay's
    for x, y in batches[1:]:
        step(x, y)
        alg.train_step(eager, x, y, T=20, K=5)
    _params_close(fast, eager, 1e-12)
    assert not step.graphed and not step.enabled and step.fallback_reason


@pytest.mark.device
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 1e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("algo", ["ep", "bptt"])
@pytest.mark.parametrize("name", ["P-2h", "EB-1h", "P-conv", "DCHN-CE"])
def test_a_real_cuda_graph_replays_the_eager_step(name, algo, dtype, rtol, cuda_device):
    """``torch.cuda.graph`` captures the whole step (autograd and the in-place update included): no
    fallback, and every replay gives the eager step's loss and parameters on new batches."""
    from harness.run.acceleration import graphed_train_step

    fast, _ = _pair(name, dtype, device=cuda_device)
    eager = copy.deepcopy(fast)
    alg = EP(beta=0.3, lr=LRS[name]) if algo == "ep" else BPTT(lr=LRS[name])
    step = graphed_train_step(alg, fast, T=20, K=5)
    for seed in range(3):
        x, y = _data(fast, seed=seed, dtype=dtype)
        out = step(x, y)
        ref = alg.train_step(eager, x, y, T=20, K=5)
        assert _close(out["loss"], ref["loss"], rtol) and torch.equal(out["error"], ref["error"])
        _params_close(fast, eager, rtol)
    assert step.graphed and step.replays == 2, step.fallback_reason


@pytest.mark.device
@pytest.mark.parametrize("name,algo", [("EB-1h", "ep"), ("P-2h", "bptt")])
def test_a_compiled_step_equals_the_eager_step(name, algo, cuda_device):
    """``torch.compile`` of the whole step (inductor's Triton kernels) passes its first-use check and
    stays within float64 rounding of the eager step over three batches. (On a CPU, where a compilation
    costs 20 s here, tests/test_train.py compiles one training run.)"""
    from harness.run.acceleration import compiled_train_step

    fast, _ = _pair(name, device=cuda_device)
    eager = copy.deepcopy(fast)
    alg = EP(beta=0.3, lr=LRS[name]) if algo == "ep" else BPTT(lr=LRS[name])
    step = compiled_train_step(alg, fast, T=8, K=3)
    for seed in range(3):
        x, y = _data(fast, seed=seed)
        step(x, y)
        alg.train_step(eager, x, y, T=8, K=3)
    assert step.graphed, step.fallback_reason  # compiled, and equal to eager at its first call
    _params_close(fast, eager, 1e-9)


def test_graphed_step_is_eager_on_cpu_and_for_the_generic_path():
    from harness.run.acceleration import graphed_train_step

    fast, generic = _pair("P-1h")
    alg = EP(beta=0.3, lr=LRS["P-1h"])
    assert not graphed_train_step(alg, fast, T=5, K=2).enabled  # CPU
    assert not graphed_train_step(alg, generic, T=5, K=2, backend=ReplayBackend()).enabled  # generic path
