"""P-conv at its initial weights, before any training: where the free phase leaves the output units,
and whether BPTT's first step moves any parameter, for the Glorot initialisation the paper's text
states (the suite's) and PyTorch's default (the authors' code); seeds of torch.manual_seed, not the
suite's streams. The output units over the first 200 MNIST training images (T = 200); BPTT's step on
the first 20 (K = 10, Table 4's learning rates). About a minute on a CPU.
Run from the repository root: python results/table1/pconv_init_check.py --data-dir ../shared/data"""

import copy

import torch
from mnist_check import mnist

from bench_algorithms import BPTT
from bench_models.conv import PConvNet

data = mnist(n_train=200, n_test=10, flatten=False)[1]
for init in ("glorot", "torch"):
    for seed in range(5):
        torch.manual_seed(seed)
        net = PConvNet(init=init)
        x, y = data.train.x, net.target(data.train.y)
        with torch.no_grad():
            out = net.relax(net.prepare(x), net.init_state(x), 200)[0]
        x, y = x[:20], y[:20]
        trained = copy.deepcopy(net)
        BPTT(lr=[0.15, 0.035, 0.015]).train_step(trained, x, y, T=200, K=10)
        moved = max(float((p - q).detach().abs().max()) for p, q in zip(trained.parameters(), net.parameters()))
        print(f"init {init:6s} seed {seed}: output units at 0: {float((out <= 0).float().mean()):4.0%}, "
              f"at 1: {float((out >= 1).float().mean()):4.0%}, "
              f"in between: {float(((out > 0) & (out < 1)).float().mean()):4.0%}; "
              f"BPTT's first step moves the parameters by {moved:.3g}")
