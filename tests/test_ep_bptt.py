"""EP and BPTT against each other (Theorem 1) and against independent references.

The theorem test is the alignment check: in float64 with a converged first
phase, ΔEP must equal −∇BPTT at every step for every layer up to O(β); a
one-step shift or a sign error must break it.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call

from bench_algorithms import BPTT, EP
from bench_metrics import RelMSE
from bench_models import EBNet, ToyModel

D = torch.float64
relmse = RelMSE()


def _data(model, batch, in_size, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, in_size, generator=g, dtype=D)
    y = model.target(torch.randint(0, model.num_classes, (batch,), generator=g))
    return x, y


def _all_relmse(pe, pb):
    out = {f"neurons:{k}": relmse(pe.neurons[k], pb.neurons[k]) for k in pe.neurons}
    out.update({f"weights:{k}": relmse(pe.weights[k], pb.weights[k]) for k in pe.weights})
    return out


def _shifted(pe, pb):
    """RelMSE after misaligning by one step either way, and after a sign flip (all must be large)."""
    out = []
    for what in ("neurons", "weights"):
        for k, e in getattr(pe, what).items():
            b = getattr(pb, what)[k]
            out += [relmse(e[1:], b[:-1]), relmse(e[:-1], b[1:])]
            flip = relmse(e, -b)
            assert flip > 1.9, f"{what} {k}: a sign error would go unnoticed ({flip})"
    return min(out)


# (name, factory, input size, T, K); eps 0.5 makes the tiny nets converge to machine precision
# within T − K steps; the toy model uses the paper's settings (ε = 0.08, T = 5000, K = 80).
THEOREM_CASES = [
    ("toy-paper", lambda: ToyModel(), 10, 5000, 80),
    ("eb-1h", lambda: EBNet(hidden=[12], input_size=15, output_size=4, eps=0.5), 15, 1000, 30),
    ("eb-2h", lambda: EBNet(hidden=[12, 10], input_size=15, output_size=4, eps=0.5), 15, 1000, 30),
    ("eb-3h", lambda: EBNet(hidden=[12, 10, 8], input_size=15, output_size=4, eps=0.5), 15, 1000, 30),
]


@pytest.mark.device
@pytest.mark.parametrize("name,factory,n_in,T,K", THEOREM_CASES, ids=[c[0] for c in THEOREM_CASES])
@pytest.mark.slow
def test_theorem_gdu_exact_for_models_deriving_from_phi(name, factory, n_in, T, K, device):
    torch.manual_seed(0)
    m = factory().to(device, D)
    assert m.derives_from_phi
    x, y = (t.to(device) for t in _data(m, 4, n_in, seed=1))
    # the theorem's assumption: steady state reached before the last K steps
    s = m.relax(x, m.init_state(x), T - K)
    assert max((a - b).abs().max().item() for a, b in zip(s, m.step(x, s))) < 1e-13
    pb = BPTT().processes(m, x, y, T=T, K=K)
    small = _all_relmse(EP(beta=1e-4).processes(m, x, y, T=T, K=K), pb)
    larger = _all_relmse(EP(beta=1e-3).processes(m, x, y, T=T, K=K), pb)
    assert set(small) == {f"neurons:{k}" for k in m.layer_names} | {
        f"weights:{g}.{i}" for g, ps in m.param_groups().items() for i in range(len(ps))}
    for key in small:
        assert small[key] < 1e-3, (key, small[key])
        # O(β): ten times smaller β, about ten times smaller error (measured ratios ≈ 10)
        assert 5 < larger[key] / small[key] < 15, (key, larger[key], small[key])
    ep = EP(beta=1e-4).processes(m, x, y, T=T, K=K)
    assert _shifted(ep, pb) > 100 * max(small.values())
    # the processes really are K steps of the shapes of the layers and parameters
    for k, v in ep.neurons.items():
        assert v.shape == (K, *m.init_state(x)[m.layer_names.index(k)].shape[1:])
        assert v.device.type == torch.device(device).type


def _unrolled_reference(m, x, y, T, K):
    """∂L/∂θ_j and ∂L/∂s_j for each of the last K steps, one full unrolled graph per j."""
    names = [n for n, _ in m.named_parameters()]
    base = {n: p.detach() for n, p in m.named_parameters()}
    w_grads, s_grads = [], []
    for j in range(K):  # step s_{T−K+j} → s_{T−K+j+1} uses θ_{T−K+j}
        theta_j = {n: p.clone().requires_grad_() for n, p in base.items()}
        s = m.relax(x, m.init_state(x), T - K + j)
        s = tuple(t.clone().requires_grad_() for t in s)
        start = s
        for i in range(j, K):
            s = functional_call(m, theta_j if i == j else base, (x, s))
        loss = m.loss(s, y).mean()
        grads = torch.autograd.grad(loss, [theta_j[n] for n in names] + list(start), allow_unused=True)
        w_grads.append({n: g if g is not None else torch.zeros_like(base[n])
                        for n, g in zip(names, grads[: len(names)])})
        s_grads.append([g if g is not None else torch.zeros_like(t) for g, t in zip(grads[len(names):], start)])
    return w_grads, s_grads


def test_bptt_per_step_gradients_equal_unrolled_autograd_and_finite_differences():
    torch.manual_seed(0)
    m = EBNet(hidden=[5, 4], input_size=6, output_size=3, eps=0.3).to(D)
    x, y = _data(m, 3, 6, seed=2)
    T, K = 40, 6
    pb = BPTT().processes(m, x, y, T=T, K=K)
    w_ref, s_ref = _unrolled_reference(m, x, y, T, K)
    pname = {id(p): n for n, p in m.named_parameters()}
    for j in range(K):
        t = K - 1 - j  # ∇_θ(t) = ∂L/∂θ_{T−1−t}
        for g, ps in m.param_groups().items():
            for i, p in enumerate(ps):
                assert torch.allclose(-pb.weights[f"{g}.{i}"][t], w_ref[j][pname[id(p)]], atol=1e-14)
        if j >= 1:  # ∇_s(t) = ∂L/∂s_{T−t}, batch-averaged per-sample gradient = sum of ∂(mean ℓ)/∂s
            t = K - j
            for li, layer in enumerate(m.layer_names):
                assert torch.allclose(-pb.neurons[layer][t], s_ref[j][li].sum(0), atol=1e-14)
    # ∇_s(0) = ∂ℓ/∂s(s_T): s_T − y on the output, zero elsewhere
    s_T = m.relax(x, m.init_state(x), T)
    assert torch.allclose(-pb.neurons["s0"][0], (s_T[0] - y).mean(0), atol=1e-14)
    # finite differences on one weight of one step's copy
    base = {n: p.detach() for n, p in m.named_parameters()}
    j, h = 2, 1e-6

    def loss_with(delta):
        theta = dict(base)
        theta["w.W12"] = base["w.W12"].clone()
        theta["w.W12"][1, 2] += delta
        s = m.relax(x, m.init_state(x), T - K)
        for i in range(K):
            s = functional_call(m, theta if i == j else base, (x, s))
        return m.loss(s, y).mean()

    fd = (loss_with(h) - loss_with(-h)) / (2 * h)
    assert -pb.weights["W12.0"][K - 1 - j][1, 2].item() == pytest.approx(fd.item(), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("algo", ["ep", "bptt"])
def test_train_step_applies_lr_times_the_sum_of_per_step_updates(algo):
    torch.manual_seed(0)
    m = EBNet(hidden=[5, 4], input_size=6, output_size=3, eps=0.3).to(D)
    x, y = _data(m, 3, 6, seed=3)
    lrs = [0.3, 0.2, 0.1]
    alg = EP(beta=0.05, lr=lrs) if algo == "ep" else BPTT(lr=lrs)
    proc = alg.processes(m, x, y, T=60, K=8)
    before = copy.deepcopy(m)
    out = alg.train_step(m, x, y, T=60, K=8)
    assert set(out) == {"loss", "error"} and out["loss"].dim() == 0
    for (g, ps), lr in zip(m.param_groups().items(), lrs):
        for i, (p, q) in enumerate(zip(ps, before.param_groups()[g])):
            expected = lr * proc.weights[f"{g}.{i}"].sum(0)
            assert torch.allclose(p.detach() - q.detach(), expected, atol=1e-13), (g, i)


def test_train_step_needs_one_lr_per_group():
    m = EBNet(hidden=[4], input_size=3, output_size=2).to(D)
    x, y = _data(m, 2, 3, seed=0)
    with pytest.raises(ValueError, match="lr is required"):
        EP(beta=0.1).train_step(m, x, y, T=5, K=2)
    with pytest.raises(ValueError, match="parameter groups"):
        BPTT(lr=[0.1]).train_step(m, x, y, T=5, K=2)
    with pytest.raises(ValueError, match="K <= T"):
        BPTT().processes(m, x, y, T=2, K=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_algorithms_in_float32_and_float64(dtype):
    """float32 works and agrees with float64 (EP needs a larger β in float32: cancellation)."""
    torch.manual_seed(0)
    ref = ToyModel(eps=0.3).to(D)
    m = copy.deepcopy(ref).to(dtype)
    x, y = _data(ref, 4, 10, seed=4)
    T, K = 600, 20
    pe = EP(beta=0.01).processes(m, x.to(dtype), y.to(dtype), T=T, K=K)
    pb = BPTT().processes(m, x.to(dtype), y.to(dtype), T=T, K=K)
    pb64 = BPTT().processes(ref, x, y, T=T, K=K)
    for proc in (pe, pb):
        assert all(v.dtype == dtype for v in [*proc.neurons.values(), *proc.weights.values()])
    for k in pb.weights:
        assert torch.allclose(pb.weights[k].double(), pb64.weights[k], rtol=1e-4, atol=1e-6)
    assert max(_all_relmse(pe, pb).values()) < 1e-2
