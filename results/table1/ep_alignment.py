"""Does P-2h's EP step still point downhill late in training? The step EP takes against the step BPTT
would take, on nets saved during the `P-2h (torch init)` EP runs.

The torch-init EP runs reach their lowest training error at epochs 10-22 and then climb (seed 0: 0.95 %
at epoch 10, 3.83 % at 50), where BPTT's runs keep descending. EP's update is the gradient only in the
limit β → 0 at a fixed point; at the row's β = 0.5 it carries a bias of order β. This script measures,
on each saved net, how the update EP trains with compares with BPTT's update there:

* for each of ``--batches`` mini-batches of 20 training images (the first ones, the same for every
  net), the parameter change Δθ one training step would make (the row's learning rates, T = 100,
  K = 20), by EP (β = 0.5, the row's), by centered EP (±β: the O(β) bias cancels), by EP at β = 0.05,
  by EP at β = 0.05 with ``zero_phase`` (its zero side K free steps from s_*, so that the drift of an
  unsettled free phase cancels instead of entering the update divided by β), and by BPTT (K = 20, the
  row's other algorithm), each from the same net;
* ``cos``: the cosine between a candidate's Δθ and BPTT's, over all weights and biases at once, per
  batch (mean over batches) and for the batches' summed steps (the expected step, where the
  mini-batch noise averages out), and the norm ratio of the summed steps;
* ``loss``: the training loss (½‖s⁰ − y‖² per image, BPTT's objective, at the free phase's end)
  over the batches' images before and after each candidate's summed step scaled to one step's
  size (the mean of the batch steps): a negative change is a step downhill;
* ``unsettled``: the % of those images whose free phase of T steps has not settled (the train kind's
  measure: one more step moves a unit by 1e-3 or more).

Nets: a fresh torch-init net (``torch.manual_seed(0)``), then each checkpoint given, either a file or
``REV:PATH`` (a file in this repository's history, read with ``git show``: the in-progress runs'
checkpoints are committed at each session's end, e.g. ``5b62b8a:results/table1/P-2h-torch-init-ep-
s3-91f7a252/checkpoint.pt``). One torch thread; about 10 s per net and 25 batches.

    python3 results/table1/ep_alignment.py --data-dir ../shared/data [--batches 25] [--T 100 --T 500] CHECKPOINT...
"""

from __future__ import annotations

import argparse
import copy
import io
import subprocess
import sys
from pathlib import Path

import torch
from mnist_check import mnist

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench_algorithms import BPTT, EP, EPCentered  # noqa: E402
from bench_models import PNet  # noqa: E402
from bench_runs.settle import unsettled_share  # noqa: E402

LR = [0.2, 0.05, 0.005]  # suites/table1.toml's P-2h rows, input → output
T, K, BETA = 100, 20, 0.5


def load(spec: str) -> tuple[str, dict]:
    """A checkpoint from a file, or from ``REV:PATH`` in this repository's history."""
    if Path(spec).exists():
        return spec, torch.load(spec, map_location="cpu", weights_only=False)
    rev, _, path = spec.partition(":")
    blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True).stdout
    return spec, torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)


def flat(net: PNet) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()]).double()


def step(net: PNet, algorithm, x: torch.Tensor, y: torch.Tensor, T: int) -> torch.Tensor:
    """Δθ of one training step of ``algorithm`` from ``net`` (on a copy)."""
    moved = copy.deepcopy(net)
    algorithm.train_step(moved, x, y, T=T, K=K)
    return flat(moved) - flat(net)


@torch.no_grad()
def loss(net: PNet, x: torch.Tensor, y: torch.Tensor, T: int) -> float:
    c = net.prepare(x)
    s = net.relax(c, net.init_state(x), T)
    return float(net.loss(s, y).mean())  # ½‖s⁰ − y‖² per image: the model's own ℓ, which BPTT minimises


def with_params(net: PNet, theta: torch.Tensor) -> PNet:
    out = copy.deepcopy(net)
    torch.nn.utils.vector_to_parameters(theta.float(), out.parameters())
    return out


def measure(name: str, net: PNet, x: torch.Tensor, y: torch.Tensor, batches: int, T: int = T) -> None:
    algorithms = {"EP β 0.5": EP(beta=BETA, lr=LR), "centered EP ±0.5": EPCentered(beta=BETA, lr=LR),
                  "EP β 0.05": EP(beta=0.05, lr=LR), "EP β 0.05, zero": EP(beta=0.05, lr=LR, zero_phase=True),
                  "BPTT K 20": BPTT(lr=LR)}
    steps: dict[str, list[torch.Tensor]] = {k: [] for k in algorithms}
    for b in range(batches):
        xb, yb = x[20 * b:20 * (b + 1)], y[20 * b:20 * (b + 1)]
        for key, algorithm in algorithms.items():
            steps[key].append(step(net, algorithm, xb, yb, T))
    ref = torch.stack(steps["BPTT K 20"])
    theta = flat(net)
    before = loss(net, x, y, T)
    unsettled = unsettled_share(net, x, T)[0]
    print(f"{name}, T = {T}: training loss {before:.4f} on {len(x)} images, {unsettled:.1f} % unsettled")
    for key, s in steps.items():
        s = torch.stack(s)
        per_batch = torch.nn.functional.cosine_similarity(s, ref, dim=1).mean()
        total, total_ref = s.sum(0), ref.sum(0)
        cos = torch.nn.functional.cosine_similarity(total, total_ref, dim=0)
        ratio = total.norm() / total_ref.norm()
        after = loss(with_params(net, theta + total / batches), x, y, T)
        print(f"    {key:18s} cos per batch {float(per_batch):6.3f}, cos of summed steps {float(cos):6.3f}, "
              f"norm / BPTT's {float(ratio):5.2f}, loss change of one mean step {after - before:+.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", help="checkpoint files or REV:PATH")
    parser.add_argument("--batches", type=int, default=25, help="mini-batches of 20 (the first training images)")
    parser.add_argument("--T", type=int, action="append", help="free-phase steps (repeatable: each measured in "
                        f"turn; default {T}, the rows'; e.g. --T 100 --T 500 on a dt = 0.2 net: 500 steps of 0.2 "
                        "span the time of dt = 1's 100)")
    parser.add_argument("--no-fresh", action="store_true", help="skip the untrained torch-init net")
    known, _ = parser.parse_known_args()
    args, data = mnist(n_train=20 * known.batches, n_test=1, parser=parser)
    x, y = data.train.x, None
    torch.manual_seed(0)
    fresh = PNet(hidden=[512, 512], activation="sigmoid", init="torch")
    y = fresh.target(data.train.y)
    for steps in args.T or [T]:
        if not args.no_fresh:
            measure("torch init, seed 0, untrained", fresh, x, y, args.batches, steps)
        for spec in args.checkpoints:
            label, saved = load(spec)
            config = saved["config"]
            net = PNet(**config["slots"]["model"]["params"])
            net.load_state_dict(saved["state"]["model"])
            measure(f"{config['id']} after epoch {saved['state']['epoch']}", net, x, y, args.batches, steps)


if __name__ == "__main__":
    main()
