"""Run kind ``speed``: training throughput of the fast path against the generic path.

One run = one model and algorithm. ``batches`` mini-batches of ``batch_size``
(a seeded sample of the training set, on the run's device) make one
*repetition*: both paths start it from the same initial weights and train on the
same batches. After ``warmup`` untimed repetitions of each path, ``repeats``
timed repetitions alternate between the paths (fast first, then generic first,
…), so that a change of machine load hits both; each path's time is the
**median** over its repetitions.

The *fast* path is the model as configured (``fast = True`` for the built-in
models, and on CUDA the step replayed as a CUDA graph); the *generic* path is a
copy with ``fast = False``: the input's drive recomputed at every step, every
layer updated at every step, ``∂Φ/∂θ`` by autograd on Φ, eager.

Recorded: ``samples_per_s`` and ``generic_samples_per_s`` (training samples per
second), ``speedup`` (generic time / fast time), ``ms_per_batch``,
``seconds_per_epoch`` and ``generic_seconds_per_epoch`` (*extrapolated* to
``epoch_samples`` = 60,000 samples from the measured throughput; training
only, evaluation excluded), ``peak_memory_mb`` (CUDA: peak allocated by the
fast path; CPU: the process's peak resident memory, which includes the
generic path and the dataset) and ``max_rel_diff``, the largest difference
between the two paths' parameters after one repetition, relative to the
largest parameter (a correctness sentinel: ~1e-7 in float32), and
``torch_threads``. ``threads`` sets torch's intra-op threads for the run (0:
leave them): on a CPU shared with other jobs, two threads can make the tiny
operations of the fast path wait for a busy core, and one thread is steadier.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch

from bench_algorithms.cudagraph import graphed_train_step
from harness.context import RunContext

from .train import peak_memory_mb


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Speed:
    def __init__(self, T: int, K: int, batch_size: int = 20, batches: int = 5, warmup: int = 1, repeats: int = 5,
                 epoch_samples: int = 60000, threads: int = 0):
        if not 0 < K <= T:
            raise ValueError(f"speed needs 0 < K <= T, got T={T}, K={K}")
        if min(batch_size, batches, repeats, epoch_samples) < 1 or warmup < 0:
            raise ValueError("batch_size, batches, repeats and epoch_samples must be positive, warmup ≥ 0")
        self.T, self.K, self.batch_size, self.batches = T, K, batch_size, batches
        self.warmup, self.repeats, self.epoch_samples = warmup, repeats, epoch_samples
        if threads < 0:
            raise ValueError(f"threads must be ≥ 0 (0: leave torch's setting), got {threads}")
        self.threads = threads

    def __call__(self, ctx: RunContext) -> None:
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._measure(ctx)
        finally:
            torch.set_num_threads(before)

    def _measure(self, ctx: RunContext) -> None:
        device = ctx.device
        fast = ctx.build("model").to(device, ctx.dtype)
        algorithm = ctx.build("algorithm")
        data = ctx.build("dataset").load(device, ctx.dtype)
        need = self.batches * self.batch_size
        if len(data.train) < need:
            raise ValueError(f"the dataset has {len(data.train)} training samples, fewer than batches × "
                             f"batch_size = {need}")
        order = torch.randperm(len(data.train), generator=ctx.generator(offset=1))[:need].to(device)
        batches = [(data.train.x[order[i:i + self.batch_size]],
                    fast.target(data.train.y[order[i:i + self.batch_size]]))
                   for i in range(0, need, self.batch_size)]
        generic = copy.deepcopy(fast)
        generic.fast = False
        init = copy.deepcopy(fast.state_dict())
        steps = {"fast": graphed_train_step(algorithm, fast, T=self.T, K=self.K),
                 "generic": lambda x, y: algorithm.train_step(generic, x, y, T=self.T, K=self.K)}
        models = {"fast": fast, "generic": generic}
        total = 2 * (self.warmup + self.repeats)
        done = 0

        def repetition(path: str) -> float:
            nonlocal done
            models[path].load_state_dict(init)  # in place: a captured graph keeps its buffers
            _sync(device)
            start = time.perf_counter()
            for x, y in batches:
                steps[path](x, y)
            _sync(device)
            seconds = time.perf_counter() - start
            done += 1
            ctx.progress(done, total, "repetition", path)
            return seconds

        for _ in range(self.warmup):
            repetition("fast")
            repetition("generic")
        times: dict[str, list[float]] = {"fast": [], "generic": []}
        for r in range(self.repeats):
            for path in (("fast", "generic") if r % 2 == 0 else ("generic", "fast")):
                times[path].append(repetition(path))
        for name, p in fast.named_parameters():
            ctx.check_finite(p, f"parameter {name} after the timed repetitions")
        # Both paths last ran one repetition from the same weights on the same batches.
        with torch.no_grad():
            scale = max(p.abs().max().item() for p in generic.parameters())
            diff = max((p - q).abs().max().item() for p, q in zip(fast.parameters(), generic.parameters()))
        peak = peak_memory_mb(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            repetition("fast")
            peak = peak_memory_mb(device)

        t_fast, t_generic = statistics.median(times["fast"]), statistics.median(times["generic"])
        rate, generic_rate = need / t_fast, need / t_generic
        ctx.record("samples_per_s", rate)
        ctx.record("generic_samples_per_s", generic_rate)
        ctx.record("speedup", t_generic / t_fast)
        ctx.record("ms_per_batch", 1000 * t_fast / self.batches)
        ctx.record("generic_ms_per_batch", 1000 * t_generic / self.batches)
        ctx.record("seconds_per_epoch", self.epoch_samples / rate)
        ctx.record("generic_seconds_per_epoch", self.epoch_samples / generic_rate)
        ctx.record("peak_memory_mb", peak)
        ctx.record("max_rel_diff", diff / max(scale, 1e-30))
        ctx.record("cuda_graph", float(getattr(steps["fast"], "graphed", False)))
        ctx.record("torch_threads", float(torch.get_num_threads()))
