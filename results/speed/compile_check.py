"""torch.compile against eager on a tiny P net: the free phase, the EP update written out, and
EP.train_step (results/speed/TABLE-cpu.md, "Compiled steps"). About two minutes on a 2-core CPU
(four compilations). Run from the repository root: python results/speed/compile_check.py"""

import copy
import time
import warnings

import torch

from bench_algorithms import EP
from bench_models import EBNet, PNet
from bench_runs.roofline import median_seconds
from harness.update import apply_update

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.manual_seed(0)
net = PNet(hidden=[8], input_size=12, output_size=4, activation="sigmoid")
x = torch.rand(5, 12)
y = torch.nn.functional.one_hot(torch.randint(0, 4, (5,)), 4).float()
T, K, BETA, LR = 10, 4, 0.2, 0.1


def gap(a, b):
    return max(float((p - q).detach().abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def free(model):
    with torch.no_grad():
        xp = model.prepare(x)
    return model.relax(xp, model.init_state(x), T)


def written_out_returning(model):
    """The EP update written out: free phase, nudged phase, ΔEP, plain SGD; returns the directions."""
    with torch.no_grad():
        xp = model.prepare(x)
    s = model.relax(xp, model.init_state(x), T)
    d = model.dphi_delta(xp, model.relax(xp, s, K, y, BETA), s)
    apply_update(model, d, {g: LR / (BETA * x.shape[0]) for g in d})
    return d


def written_out(model):
    """The same, returning nothing (what a training step does with its directions)."""
    written_out_returning(model)


def train_step(model):
    EP(BETA, lr=[LR, LR]).train_step(model, x, y, T=T, K=K)


a, b = copy.deepcopy(net), copy.deepcopy(net)
out_c, out_e = torch.compile(free)(a), free(b)
print(f"free phase: largest difference {max(float((u - v).abs().max()) for u, v in zip(out_c, out_e)):.2g}")
for name, fn in (("EP update written out", written_out),
                 ("EP update written out, returning its directions", written_out_returning),
                 ("EP.train_step", train_step)):
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    compiled = torch.compile(fn)
    start = time.perf_counter()
    compiled(a)
    first = time.perf_counter() - start
    fn(b)
    print(f"{name}: compiled moved the parameters by {gap(a, net):.4g}, eager by {gap(b, net):.4g}, "
          f"difference {gap(a, b):.2g} (first compiled call, compile included: {first:.0f} s)")

a, b = copy.deepcopy(net), copy.deepcopy(net)
torch.compile(train_step)(a)
train_step(b)
for (name, p), q, o in zip(a.named_parameters(), b.parameters(), net.parameters()):
    print(f"  {name}: compiled moved it by {float((p - o).detach().abs().max()):.4g}, "
          f"eager by {float((q - o).detach().abs().max()):.4g}")

eb = EBNet(hidden=[8], input_size=12, output_size=4, activation="sigmoid", eps=0.2, clip=True)
a, b = copy.deepcopy(eb), copy.deepcopy(eb)
torch.compile(train_step)(a)
train_step(b)
print(f"EP.train_step on an EB net (fast path): difference {gap(a, b):.2g}")

generic = copy.deepcopy(net)
generic.fast = False  # the generic path: autograd on Φ, no cached drive, no explicit ∂Φ/∂θ
a, b = copy.deepcopy(generic), copy.deepcopy(generic)
torch.compile(train_step)(a)
train_step(b)
print(f"EP.train_step on the generic path (fast = False): difference {gap(a, b):.2g}")

cpu = torch.device("cpu")
a, b = copy.deepcopy(net), copy.deepcopy(net)
compiled = torch.compile(train_step)
compiled(a)
print(f"EP.train_step per call: compiled {median_seconds(lambda: compiled(a), cpu) * 1e3:.3f} ms, "
      f"eager {median_seconds(lambda: train_step(b), cpu) * 1e3:.3f} ms (median)")
