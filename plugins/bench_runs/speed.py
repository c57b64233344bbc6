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
layer updated at every step, ``∂Φ/∂θ`` by autograd on Φ, eager. On CUDA one more
path, *eager*, steps a copy of the fast model without the graph: ``eager_samples_per_s`` and
``graph_speedup`` (eager time / fast time) say what the CUDA graph alone brings.

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

Roofline (:mod:`bench_runs.roofline`), of the fast path: ``flops_per_sample`` (the products'
FLOPs counted from their shapes during one step), ``achieved_gflops`` (that × samples/s),
``dominant_gflops`` (the step's dominant product timed alone at its shapes, in the same run),
``products_gflops`` (the step's FLOPs over the time its products take when each is timed alone at
its shapes: the step's own limit), ``roofline_pct`` (achieved / that limit, i.e. the share of the
step's time its products alone account for), ``ops_per_batch`` (operators dispatched by one step),
``dispatch_us`` (one operator on a one-element tensor) and ``dispatch_share_pct`` (ops × that
/ the step's time: an estimate of the time the step spends dispatching; it overlaps
``roofline_pct``, whose product timings include their own dispatch). On CUDA, when the fast path
replays a CUDA graph, both shares are of one eager step's time. The dominant product, the FLOPs
per operator and (CPU only) a profile of one step are written to ``artifacts/roofline.txt``.

Compiled (``compiled = true``): one more path in the same interleaved repetitions,
``torch.compile`` of the whole training step on a copy of the fast model. Recorded:
``compiled_samples_per_s``, ``compiled_speedup`` (fast time / compiled time),
``compile_seconds`` (the first call: compilation and one step, excluded from the timings) and
``compiled_max_rel_diff`` (its parameters against the fast path's after one repetition from the
same weights: the check that it computes the same step; it found torch 2.13's inductor dropping a
coefficient, results/speed/TABLE-cpu.md).

Batched runs (``members = S``): more paths join the interleaved repetitions, all
on the fast path and the same mini-batches: ``seeds``, S copies of the model
stacked as one (what ``batch_seeds`` runs) and, for EP, ``paired``, S EP and S
BPTT members at the same learning rates (what ``batch_algorithms`` runs), with
``bptt``, the single BPTT run, as its baseline. Recorded: ``seeds_speedup`` (S
single fast repetitions' time / the stacked one's) and, for EP,
``paired_speedup`` ((S single EP + S single BPTT) / the paired one): above 1,
batching pays on this device; ``seeds_samples_per_s``, ``paired_samples_per_s``
count every member's samples.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import ClassVar

import torch

from harness.api.algorithm import capability, shared_step
from harness.api.components import Param, Slot
from harness.api.model import stack_members
from harness.api.records import Records
from harness.api.run_kind import RunKind
from harness.api.steps import batch_size, check_steps, step_params
from harness.run.acceleration import StepFn, compile_step, graphed_train_step
from harness.run.context import RunContext
from harness.run.environment import peak_memory_mb, synchronize, torch_threads

from .roofline import OpCounter, dispatch_seconds, measured_rate, median_seconds, profile_table


class Speed(RunKind):
    """Training speed (the speed suite): samples/s, s/epoch and peak memory of the fast path and of the
    generic path (fast = false: autograd on Φ, no fast paths) in the same run, interleaved repetitions
    after a warm-up, medians, and the speed-up"""

    params: ClassVar[tuple[Param, ...]] = (
        *step_params(),
        batch_size(),
        Param("batches", int, 5, min=1,
              doc="mini-batches per repetition (a seeded sample of the training set)", max=10**9),
        Param("warmup", int, 1, min=0, doc="untimed repetitions of each path first", max=10**6),
        Param("repeats", int, 5,
              min=1, doc="timed repetitions of each path, interleaved; the median is kept", max=10**6),
        Param("epoch_samples", int, 60000, min=1, doc="samples of the epoch that seconds_per_epoch is "
              "extrapolated to (MNIST: 60,000)", max=10**12),
        Param("threads", int, 0, min=0,
              doc="torch intra-op threads during the run (0: leave torch's setting)", max=4096),
        Param("members", int, 0, min=0, doc="also time this many runs batched as one stacked model "
              "(batch_seeds), and for EP, paired with as many BPTT runs at the same learning rates "
              "(batch_algorithms); 0: not measured", max=10**4),
        Param("compiled", bool, False, "also time torch.compile of the whole training step (its compile "
              "time apart) and check its parameters against the fast path's", quiet_default=True),
    )
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "model", "the network"),
        Slot("algorithm", "algorithm", "how it learns (ep or bptt, with lr and β)"),
        Slot("dataset", "dataset", "where the mini-batches come from"),
    )
    example: ClassVar[dict | None] = {"T": 10, "K": 2}

    #: What it records (some only on CUDA, with ``members`` or with ``compiled``).
    records = Records(metrics=(
        "samples_per_s", "generic_samples_per_s", "speedup", "ms_per_batch", "generic_ms_per_batch",
        "seconds_per_epoch", "generic_seconds_per_epoch", "peak_memory_mb", "max_rel_diff", "cuda_graph",
        "torch_threads", "eager_samples_per_s", "graph_speedup", "compiled_samples_per_s", "compiled_speedup",
        "compile_seconds", "compiled_max_rel_diff", "seeds_samples_per_s", "seeds_speedup", "paired_samples_per_s",
        "paired_speedup", "flops_per_sample", "ops_per_batch", "achieved_gflops", "dispatch_us", "dispatch_share_pct",
        "dominant_gflops", "products_gflops", "roofline_pct"),
        # all but the checks of equal results and the counts of work, which do not depend on the machine
        costs=("torch_threads", "cuda_graph", "samples_per_s", "generic_samples_per_s", "speedup", "ms_per_batch",
               "generic_ms_per_batch",
               "seconds_per_epoch", "generic_seconds_per_epoch", "peak_memory_mb", "eager_samples_per_s",
               "graph_speedup", "compiled_samples_per_s", "compiled_speedup", "compile_seconds", "seeds_samples_per_s",
               "seeds_speedup", "paired_samples_per_s", "paired_speedup", "achieved_gflops", "dispatch_us",
               "dispatch_share_pct", "dominant_gflops", "products_gflops", "roofline_pct"))
    def __init__(self, T: int, K: int, batch_size: int = 20, batches: int = 5, warmup: int = 1, repeats: int = 5,
                 epoch_samples: int = 60000, threads: int = 0, members: int = 0, compiled: bool = False):
        check_steps(T, K, "speed")
        if min(batch_size, batches, repeats, epoch_samples) < 1 or warmup < 0:
            raise ValueError("batch_size, batches, repeats and epoch_samples must be positive, warmup ≥ 0")
        self.T, self.K, self.batch_size, self.batches = T, K, batch_size, batches
        self.warmup, self.repeats, self.epoch_samples = warmup, repeats, epoch_samples
        if threads < 0:
            raise ValueError(f"threads must be ≥ 0 (0: leave torch's setting), got {threads}")
        self.threads = threads
        if members < 0 or members == 1:
            raise ValueError(f"members must be 0 (not measured) or at least 2, got {members}")
        self.members = members
        self.compiled = compiled

    def __call__(self, ctx: RunContext) -> None:
        with torch_threads(self.threads):
            self._measure(ctx)

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
        steps: dict[str, StepFn] = {"fast": graphed_train_step(algorithm, fast, T=self.T, K=self.K),
                                    "generic": lambda x, y: algorithm.train_step(generic, x, y, T=self.T, K=self.K)}
        models = {"fast": fast, "generic": generic}
        if device.type == "cuda":  # the fast path replays a CUDA graph: also time its eager step
            eager = models["eager"] = copy.deepcopy(fast)
            steps["eager"] = lambda x, y: algorithm.train_step(eager, x, y, T=self.T, K=self.K)
        if self.members:
            self._batched_paths(ctx, fast, algorithm, init, steps, models)
        compile_seconds = (self._compiled_path(algorithm, fast, init, batches[0], steps, models)
                           if self.compiled else None)
        inits = {path: copy.deepcopy(m.state_dict()) if m.members else init for path, m in models.items()}
        total = len(steps) * (self.warmup + self.repeats)
        done = 0

        def repetition(path: str) -> float:
            nonlocal done
            models[path].load_state_dict(inits[path])  # in place: a captured graph keeps its buffers
            synchronize(device)
            start = time.perf_counter()
            for x, y in batches:
                steps[path](x, y)
            synchronize(device)
            seconds = time.perf_counter() - start
            done += 1
            ctx.progress(done, total, "repetition", path, eta_after=None)  # paths differ in cost
            return seconds

        for _ in range(self.warmup):
            for path in steps:
                repetition(path)
        times: dict[str, list[float]] = {path: [] for path in steps}
        for r in range(self.repeats):  # interleaved, the order reversed every other time
            for path in (list(steps) if r % 2 == 0 else list(reversed(steps))):
                times[path].append(repetition(path))
        for name, p in fast.named_parameters():
            ctx.check_finite(p, f"parameter {name} after the timed repetitions")
        # Both paths last ran one repetition from the same weights on the same batches.
        with torch.no_grad():
            scale = max(p.abs().max().item() for p in generic.parameters())
            diff = max((p - q).abs().max().item() for p, q in zip(fast.parameters(), generic.parameters()))
            if compile_seconds is not None:  # the compiled path too ran one repetition from there
                cdiff = max((p - q).abs().max().item() for p, q in zip(fast.parameters(),
                                                                      models["compiled"].parameters()))
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
        if "eager" in times:
            t_eager = statistics.median(times["eager"])
            ctx.record("eager_samples_per_s", need / t_eager)
            ctx.record("graph_speedup", t_eager / t_fast)
        if compile_seconds is not None:
            t_compiled = statistics.median(times["compiled"])
            ctx.record("compiled_samples_per_s", need / t_compiled)
            ctx.record("compiled_speedup", t_fast / t_compiled)
            ctx.record("compile_seconds", compile_seconds)
            ctx.record("compiled_max_rel_diff", cdiff / max(scale, 1e-30))
        self._roofline(ctx, algorithm, fast, init, batches[0], t_fast / self.batches,
                       graphed=bool(getattr(steps["fast"], "graphed", False)))
        if self.members:
            med = {path: statistics.median(ts) for path, ts in times.items()}
            S = self.members
            ctx.record("seeds_samples_per_s", S * need / med["seeds"])
            ctx.record("seeds_speedup", S * med["fast"] / med["seeds"])
            if "paired" in med:
                ctx.record("paired_samples_per_s", 2 * S * need / med["paired"])
                ctx.record("paired_speedup", S * (med["fast"] + med["bptt"]) / med["paired"])

    def _compiled_path(self, algorithm, fast, init, batch, steps, models) -> float:
        """The ``compiled`` path: ``torch.compile`` of the whole training step on a copy of the fast
        model (eager, not graphed). Returns the first call's seconds (compilation and one step), which
        the timed repetitions, after their warm-up, do not include."""
        model = copy.deepcopy(fast)
        model.load_state_dict(init)
        step = compile_step(lambda x, y: algorithm.train_step(model, x, y, T=self.T, K=self.K))
        synchronize(model.device)
        start = time.perf_counter()
        try:
            step(*batch)
        except Exception as exc:  # inductor needs a C++ compiler on a CPU, Triton on a GPU
            raise RuntimeError(f"compiled = true: torch.compile of the training step failed ({type(exc).__name__}: "
                               f"{str(exc)[:300]}); on a CPU inductor needs a C++ compiler (g++ or clang++), or "
                               "set compiled = false") from exc
        synchronize(model.device)
        steps["compiled"], models["compiled"] = step, model
        return time.perf_counter() - start

    def _roofline(self, ctx: RunContext, algorithm, fast, init, batch, seconds_per_batch: float, *,
                  graphed: bool = False) -> None:
        """Counted FLOPs and operators of one fast-path step (on a copy, from the initial weights), the
        measured rate of its dominant product and the cost of one dispatch: the achieved share of the
        limit, and the share of the step's time that dispatches alone take (roofline.py). Also the
        profile of one step, as a text artifact."""
        model = copy.deepcopy(fast)
        model.load_state_dict(init)
        x, y = batch
        with OpCounter() as counter:
            algorithm.train_step(model, x, y, T=self.T, K=self.K)
        dominant = counter.dominant()
        if graphed:  # the timed step was a CUDA graph replay: the shares below are of an eager step's time
            seconds_per_batch = median_seconds(lambda: algorithm.train_step(model, x, y, T=self.T, K=self.K),
                                               ctx.device, repeats=3)
        per_sample = counter.flops / self.batch_size
        achieved = per_sample * self.batch_size / seconds_per_batch
        dispatch = dispatch_seconds(ctx.device, ctx.dtype)
        timed = "one eager step; the timed path replays a CUDA graph" if graphed else "median of the timed repetitions"
        ctx.record("flops_per_sample", per_sample)
        ctx.record("ops_per_batch", counter.ops)
        ctx.record("achieved_gflops", achieved / 1e9)
        ctx.record("dispatch_us", dispatch * 1e6)
        ctx.record("dispatch_share_pct", 100 * counter.ops * dispatch / seconds_per_batch)
        lines = [f"one fast-path training step, batch {self.batch_size}, T = {self.T}, K = {self.K}",
                 f"operators dispatched: {counter.ops}; FLOPs of the products: {counter.flops} "
                 f"({per_sample:.4g} per sample)", f"one dispatch (torch.add on one element): {dispatch * 1e6:.2f} µs",
                 f"step time ({timed}): {seconds_per_batch * 1e3:.3f} ms"]
        if dominant is not None:
            what, call, flops = dominant
            limit = measured_rate(call, flops, ctx.device)
            products = counter.products_seconds(ctx.device)
            ctx.record("dominant_gflops", limit / 1e9)
            ctx.record("products_gflops", counter.flops / products / 1e9)
            ctx.record("roofline_pct", 100 * products / seconds_per_batch)
            lines.append(f"dominant product: {what}, {flops} FLOPs per call, "
                         f"{counter.by_op.most_common(1)[0][1] / max(counter.flops, 1):.0%} of the step's FLOPs, "
                         f"measured alone at {limit / 1e9:.3g} GFLOP/s")
            lines.append(f"all the step's products, each timed alone at its shapes: {products * 1e3:.3f} ms "
                         f"({counter.flops / products / 1e9:.3g} GFLOP/s), {100 * products / seconds_per_batch:.0f} % "
                         "of the step's time")
        lines += ["", "FLOPs per (operator, arguments), largest first:"]
        lines += [f"  {f:>12}  {op} {args[:160]}" for (op, args), f in counter.by_op.most_common(8)]
        if ctx.device.type == "cpu":
            lines += ["", profile_table(lambda: algorithm.train_step(model, x, y, T=self.T, K=self.K))]
        ctx.save_text("roofline", "\n".join(lines) + "\n")

    def _batched_paths(self, ctx: RunContext, fast, algorithm, init, steps, models) -> None:
        """The ``seeds`` path (S stacked copies) and, for EP, ``bptt`` and ``paired`` (S EP + S BPTT)."""
        S = self.members
        if not fast.supports_members:
            raise ValueError(f"members = {S}: the model {type(fast).__name__} cannot stack members; "
                             f"set members = 0 for this run")

        def stacked(n: int):
            copies = [copy.deepcopy(fast) for _ in range(n)]
            for m in copies:
                m.load_state_dict(init)
            return stack_members(copies)

        def on_members(step, n: int):  # every member trains on the same mini-batch (timing only)
            return lambda x, y: step(x.expand(n, *x.shape).contiguous(), y.expand(n, *y.shape).contiguous())

        models["seeds"] = stacked(S)
        steps["seeds"] = on_members(graphed_train_step(algorithm, models["seeds"], T=self.T, K=self.K), S)
        lr = capability(algorithm, "lr")
        partner = ctx.registry.get("algorithm", "bptt").build({"lr": lr}) if lr is not None else None
        paired = (shared_step([algorithm] * S + [partner] * S)
                  if partner is not None and type(algorithm) is not type(partner) else None)
        if paired is not None:  # an algorithm that shares its step with BPTT's (EP)
            models["bptt"] = copy.deepcopy(fast)
            steps["bptt"] = graphed_train_step(partner, models["bptt"], T=self.T, K=self.K)
            models["paired"] = stacked(2 * S)
            steps["paired"] = on_members(graphed_train_step(paired, models["paired"], T=self.T, K=self.K), 2 * S)
