"""Why the DCHN's estimators leave their asymptotic order above β ≈ 3·10⁻⁴ (results/dchn/TABLE.md).

Per β: how many units change side of the hard sigmoid's kinks (at 0 and 1) between the free fixed point
and the ±β nudged ones, beside the one-sided and centered EP errors against RBP. A net of the suite's
shape (3×16×16 random inputs, 8 and 16 maps, 10 outputs, no biases, PyTorch's init, float64, 20 images)
built here with torch.manual_seed(0), not the suite's run itself (the runner seeds it otherwise), T =
400, K = 100. Run from the repository root (about a minute):

    python3 results/dchn/kinks.py
"""
import torch

from bench_algorithms.ep import EP, EPCentered
from bench_algorithms.rbp import RBP
from bench_models.dchn import DCHN
from bench_runs.bias import total_error

D = torch.float64
torch.manual_seed(0)
m = DCHN(input_shape=[3, 16, 16], channels=[8, 16], padding=[1, 1], output_size=10, bias=False, init="torch").to(D)
g = torch.Generator().manual_seed(1)
x = torch.rand(20, 3, 16, 16, generator=g, dtype=D)
y = m.target(torch.randint(0, 10, (20,), generator=g))
T, K = 400, 100
def relax(s, beta, n):
    with torch.no_grad():
        for _ in range(n):
            s = m.step(x, s, y, beta)
    return s
free = relax(m.init_state(x), 0.0, T)
def side(s):  # -1 at 0, +1 at 1, 0 inside
    return [(t >= 1).to(torch.int8) - (t <= 0).to(torch.int8) for t in s]
f = side(free)
ref = RBP().processes(m, x, y, T=T, K=K)
for beta in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2):
    flips = []
    for b in (beta, -beta):
        n = side(relax(free, b, K))
        flips.append(sum(int((a != c).sum()) for a, c in zip(f, n)))
    e1 = total_error(EP(beta).processes(m, x, y, T=T, K=K), ref)
    e2 = total_error(EPCentered(beta).processes(m, x, y, T=T, K=K), ref)
    print(f"beta {beta:g}: units changing side +β {flips[0]}, −β {flips[1]}; error ep {e1:.2g}, centered {e2:.2g}")
