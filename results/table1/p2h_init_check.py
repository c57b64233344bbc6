"""P-2h at its initial weights, before any training: where the free phase (T = 100) leaves the output
and hidden units over the first 500 MNIST training images, for the Glorot initialisation the paper's
text states (the suite's) and PyTorch's default (the authors' code); seeds 0–4 of torch.manual_seed,
not the suite's streams. Half a minute on a CPU.
Run from the repository root: python results/table1/p2h_init_check.py --data-dir ../shared/data"""

import torch
from mnist_check import mnist

from bench_models import PNet

x = mnist(n_train=500, n_test=10)[1].train.x
for init in ("glorot", "torch"):
    for seed in range(5):
        torch.manual_seed(seed)
        net = PNet(hidden=[512, 512], activation="sigmoid", init=init)
        with torch.no_grad():
            state = net.relax(net.prepare(x), net.init_state(x), 100)
        saturated = [float(((s < 0.01) | (s > 0.99)).float().mean()) for s in state]  # σ' < 0.04 of its peak
        dead = int((state[0].max(0).values < 0.01).sum())  # output units below 0.01 on every image
        print(f"init {init:6s} seed {seed}: units below 0.01 or above 0.99: output {saturated[0]:4.0%}, "
              f"hidden {saturated[1]:4.0%}, {saturated[2]:4.0%}; output units below 0.01 on all 500 images: {dead}")
