"""Why the cross-entropy DCHN's free phases stay unsettled (results/dchn-digits/TABLE.md): trains the suite's
centered-EP net once per loss (seed 0, the suite's settings: 20 epochs, batch 20, T = 75, K = 15, β = 0.25,
rates 0.1, 0.05, 0.02), then, on the 297 test images, sorts each free phase of T synchronous steps:
settled (one more step moves no unit by 10⁻³), in a 2-cycle (it moves, but two more steps come back within
10⁻³ of where they started), or otherwise moving; and whether 1,000 more synchronous steps, or T
asynchronous sweeps (even layers, then odd ones), settle it. Not a rerun of the suite's runs (their
weights are not kept): a net trained the same way. Run from the repository root (a few minutes on a CPU):

    python3 results/dchn-digits/unsettled_cycles.py
"""

from __future__ import annotations

import torch

from harness.api.relaxation import relax
from harness.plugins import get_manager

TOL = 1e-3  # the train kind's settle tolerance (plugins/bench_runs/settle.py)
T, K, EPOCHS, BATCH = 75, 15, 20, 20


def moved(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Per image: the largest change of any unit between two states."""
    return torch.stack([(u - v).abs().flatten(1).max(1).values for u, v in zip(a, b)]).max(0).values


def trained(loss: str):
    registry = get_manager().registry
    torch.manual_seed(0)
    model = registry.get("model", "dchn").build({"input_shape": [1, 8, 8], "channels": [16, 32], "padding": [1, 1],
                                                 "output_size": 10, "init": "torch", "loss": loss})
    algorithm = registry.get("algorithm", "ep-centered").build({"beta": 0.25, "lr": [0.1, 0.05, 0.02]})
    data = registry.get("dataset", "digits").build({"flatten": False}).load(torch.device("cpu"), torch.float32)
    g = torch.Generator().manual_seed(1)
    n = len(data.train)
    for _ in range(EPOCHS):
        order = torch.randperm(n, generator=g)
        for b in range(n // BATCH):
            idx = order[b * BATCH:(b + 1) * BATCH]
            algorithm.train_step(model, data.train.x[idx], model.target(data.train.y[idx]), T=T, K=K)
    return model, data.test.x


@torch.no_grad()
def sort_free_phases(model, x) -> dict[str, float]:
    s = model.relax(x, model.init_state(x), T)
    s1 = model.step(x, s)
    s2 = model.step(x, s1)
    unsettled = moved(s1, s) >= TOL
    cycle = unsettled & (moved(s2, s) < TOL)
    longer = model.relax(x, s, 1000)
    still = moved(model.step(x, longer), longer) >= TOL
    asynchronous = relax(model, x, model.init_state(x), max_steps=T, schedule="async").state
    async_unsettled = moved(model.step(x, asynchronous), asynchronous) >= TOL
    pct = 100.0 / len(x)
    return {"unsettled after T": float(unsettled.sum()) * pct,
            "of which in a 2-cycle": float(cycle.sum()) * pct,
            "unsettled after T + 1000": float(still.sum()) * pct,
            "unsettled after T async sweeps": float(async_unsettled.sum()) * pct}


def main() -> None:
    rows = {loss: sort_free_phases(*trained(loss)) for loss in ("squared_error", "cross_entropy")}
    keys = list(next(iter(rows.values())))
    print("| loss | " + " | ".join(f"{k} (% of test images)" for k in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for loss, r in rows.items():
        print(f"| {loss} | " + " | ".join(f"{r[k]:.1f}" for k in keys) + " |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
