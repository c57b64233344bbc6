"""torch.compile against eager: the inductor rewrite that once made the P nets' compiled EP step wrong,
and EP.train_step compiled on a P net, an EB net and the generic path (results/speed/TABLE-cpu.md,
"Compiled steps"). About two minutes on a 2-core CPU (four compilations; the
speed suite times the compiled step).
Run from the repository root: python results/speed/compile_check.py"""

import copy
import warnings

import torch

from bench_algorithms import EP
from bench_models import EBNet, PNet

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.manual_seed(0)

# torch 2.13's inductor (torch/_inductor/fx_passes/post_grad.py, pattern `addmm`) rewrites
# add(p, mm(a, b), alpha=c) as addmm(p, a, b) and drops c. EP's direction for a P net's input weights
# is one product (Δs)ᵀx, and the plain SGD update was p.add_(d, alpha=lr·k): compiled, those weights
# moved 1/(lr·k) times too far. harness.api.optimizer.apply_update now writes p.add_(d * c) while compiling.
a, b = torch.randn(8, 5), torch.randn(8, 12)
eager = torch.add(torch.zeros(5, 12), a.mT @ b, alpha=0.1)
compiled = torch.compile(lambda p, a, b: torch.add(p, a.mT @ b, alpha=0.1))(torch.zeros(5, 12), a, b)
print(f"torch.add(p, a.mT @ b, alpha=0.1): compiled / eager = {float(compiled.abs().max() / eager.abs().max()):.4g}")

x = torch.rand(5, 12)
y = torch.nn.functional.one_hot(torch.randint(0, 4, (5,)), 4).float()
T, K, BETA, LR = 10, 4, 0.2, 0.1


def gap(a, b):
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def train_step(model):
    EP(BETA, lr=[LR, LR]).train_step(model, x, y, T=T, K=K)


pnet = PNet(hidden=[8], input_size=12, output_size=4, activation="sigmoid")
generic = copy.deepcopy(pnet)
generic.fast = False  # the generic path: autograd on Φ, no cached drive, no explicit ∂Φ/∂θ
eb = EBNet(hidden=[8], input_size=12, output_size=4, activation="sigmoid", eps=0.2, clip=True)
for name, net in (("P net, fast path", pnet), ("EB net, fast path", eb), ("P net, generic path", generic)):
    torch._dynamo.reset()
    c, e = copy.deepcopy(net), copy.deepcopy(net)
    torch.compile(train_step)(c)
    train_step(e)
    print(f"EP.train_step, {name}: compiled moved the parameters by {gap(c, net):.4g}, eager by {gap(e, net):.4g}, "
          f"largest difference {gap(c, e):.2g}")
