"""Does P-2h's free phase end on a fixed point? EP's update assumes it does (∂Φ/∂θ at s_*).

A P net updates all its layers at once (dt = 1), and its layers split into two chains that never meet
(Appendix C.6): layer n at time t feeds only layers n ± 1 at time t + 1. If the two chains settle on
different states, the net ends in a 2-cycle, not on a fixed point. The authors' code relaxes its P nets
with dt = 0.2 (``s ← s + 0.2 (σ(…) − s)``; --dt defaults to 0.2 and its Table 1 P commands do not set
it): the same fixed points, but the leak couples the chains.

For each epoch checkpoint given (a run's ``checkpoint.pt``, copied while it trained: a finished run
keeps none) and for both initialisations at seed 0, over the first 1,000 MNIST test images: the free
phase of the run's T steps from zero; ``r1 = max |s_T − s_{T−1}|`` and ``r2 = max |s_T − s_{T−2}|``
over all units, per image; an image is *settled* when r1 < 1e-3, in a *2-cycle* when r1 ≥ 1e-3 but
r2 < 1e-3; *flips*: the predicted class differs between T − 1 and T. Then the same nets relaxed
as the authors' code relaxes them, T steps of dt = 0.2: settled when ``max |σ(…) − s| < 1e-3``
(the fixed-point equation's residual, which the leak does not change). Last, EP's update on the
same images (the row's β = 0.5 and K, T free steps then K nudged ones, ``(∂Φ/∂θ(s^β) − ∂Φ/∂θ(s_T)) / β``)
computed both ways: per weight layer (input → output), how large the authors' dt = 0.2 update is
against ours (norm ratio) and the cosine between them: with the same learning rates, the ratio is
how much smaller a step the authors' code takes.
About a minute per net on one free core.
Run from the repository root:
python results/table1/p2h_fixed_point_check.py --data-dir ../shared/data CHECKPOINT...
"""

import argparse
from pathlib import Path

import torch
from mnist_check import mnist

from bench_models import PNet
from bench_runs.settle import SETTLE_TOL as TOL  # the train kind's `unsettled` uses the same
from bench_runs.settle import largest_change


def check(net, x, labels, T, dt=1.0):
    c = net.prepare(x)
    with torch.no_grad():
        s = net.init_state(x)
        if dt == 1.0:
            s = net.relax(c, s, T - 2)
            s1 = net.step(c, s)
            s2 = net.step(c, s1)
            r1, r2 = largest_change(net, s2, s1), largest_change(net, s2, s)
            flips = (net.predict(s2) != net.predict(s1)).float().mean()
            settled, cycle = r1 < TOL, (r1 >= TOL) & (r2 < TOL)
            return (f"dt 1, T {T}: settled {settled.float().mean():6.1%}, 2-cycle {cycle.float().mean():6.1%}, "
                    f"other {(~settled & ~cycle).float().mean():6.1%}, flips {flips:5.1%}, "
                    f"test error {(net.predict(s2) != labels).float().mean():6.2%}")
        for _ in range(T):
            f = net.step(c, s)
            r = largest_change(net, f, s)
            s = tuple(u + dt * (v - u) for u, v in zip(s, f))
        return (f"dt {dt}, T {T}: settled {(r < TOL).float().mean():6.1%}, "
                f"test error {(net.predict(s) != labels).float().mean():6.2%}")


def relax(net, c, s, steps, dt, y=None, beta=0.0):
    """``steps`` steps of ``s ← s + dt (F(s) + β (y − s⁰) − s)`` (dt = 1: the model's own step)."""
    for _ in range(steps):
        f = net.step(c, s, y, beta)
        s = f if dt == 1.0 else tuple(u + dt * (v - u) for u, v in zip(s, f))
    return s


def ep_update(net, x, labels, T, K, beta, dt):
    c = net.prepare(x)
    with torch.no_grad():
        free = relax(net, c, net.init_state(x), T, dt)
        nudged = relax(net, c, free, K, dt, net.target(labels), beta)
        return {g: torch.cat([t.flatten() for t in ts]) / beta for g, ts in net.dphi_delta(c, nudged, free).items()}


def compare_updates(net, x, labels, T, K, beta=0.5):
    ours, theirs = ep_update(net, x, labels, T, K, beta, 1.0), ep_update(net, x, labels, T, K, beta, 0.2)
    cells = [f"{g} {float(theirs[g].norm() / ours[g].norm()):.2f} "
             f"(cos {float(torch.nn.functional.cosine_similarity(theirs[g], ours[g], dim=0)):.2f})" for g in ours]
    return f"EP's update, dt 0.2 / dt 1, K {K}: " + ", ".join(cells)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="*", type=Path, help="epoch checkpoints of P-2h runs")
    args, data = mnist(n_train=10, n_test=1000, parser=parser)
    test = data.test
    nets = []
    for init in ("glorot", "torch"):
        torch.manual_seed(0)
        nets.append((f"init {init}, seed 0, untrained", PNet(hidden=[512, 512], activation="sigmoid", init=init),
                     100, 20))
    for path in args.checkpoints:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        config = saved["config"]
        net = PNet(**config["slots"]["model"]["params"])
        net.load_state_dict(saved["state"]["model"])
        nets.append((f"{config['id']} after epoch {saved['state']['epoch']}", net, config["params"]["T"],
                     config["params"]["K"]))
    for name, net, T, K in nets:
        print(name)
        print("   ", check(net, test.x, test.y, T))
        print("   ", check(net, test.x, test.y, T, dt=0.2))
        print("   ", compare_updates(net, test.x, test.y, T, K))


if __name__ == "__main__":
    main()
