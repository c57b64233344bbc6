"""How far a training step is from what the device can do: counted FLOPs, the measured rate of its
dominant product, and the time its operator dispatches cost.

:class:`OpCounter` watches one training step at the ATen level (a ``TorchDispatchMode``, so it sees
every operator the step runs, autograd's backward included, for any model): the number of operators
dispatched, and the floating-point operations of every matrix product and convolution, counted from
their shapes by ``torch.utils.flop_counter`` (2 per multiply-add). Element-wise operations are not
counted: on the 512-wide nets with several hidden layers they are a small share, but on EB-1h and
P-1h (10 output units) they are about 15 flops per hidden unit and step against the products' ~40,
so the achieved rate there undercounts the arithmetic done (not the time, which is measured). The
*dominant* operation is the (operator, shapes) that carries the most FLOPs; :func:`measured_rate`
times that very operation on fresh tensors of the same shapes (median of repeats), the device's
rate for the step's main work at the run's sizes. A step mixes shapes (EB-1h: a few input-sized
products and hundreds of tiny ones), so its limit is :meth:`OpCounter.products_seconds`: each of
its largest products timed alone at its own shapes, summed, which is how fast the step could be if
nothing but its products cost time (their timings include their own dispatch). :func:`dispatch_seconds`
times an operator on a one-element tensor, about the fixed cost every dispatched operator pays.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry

from harness.run.environment import synchronize


class _Spec:
    """A tensor argument remembered by shape, dtype and device (a pytree leaf)."""

    def __init__(self, t: torch.Tensor):
        self.shape, self.stride, self.dtype, self.device = tuple(t.shape), tuple(t.stride()), t.dtype, t.device

    def __repr__(self) -> str:
        return f"{self.dtype}{self.shape}"

    def fresh(self) -> torch.Tensor:
        """Random values in the same layout (a transposed operand stays transposed, an expanded one, whose
        elements share memory, stays expanded: the values are drawn in its storage, then viewed)."""
        span = 1 + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) if all(self.shape) else 0
        storage = torch.empty(span, dtype=self.dtype, device=self.device).uniform_()
        return storage.as_strided(self.shape, self.stride)


def _spec(a: Any) -> Any:
    return _Spec(a) if isinstance(a, torch.Tensor) else a


class OpCounter(TorchDispatchMode):
    """Within ``with OpCounter() as c:``: ``c.ops`` operators dispatched, ``c.flops`` FLOPs of the
    products, ``c.by_op`` FLOPs per (operator, argument specs)."""

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.flops = 0
        self.by_op: Counter = Counter()
        self._calls: dict[tuple, tuple[torch._ops.OpOverload, tuple, dict]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            flops = int(count(*args, **kwargs, out_val=out))
            key = (str(func._overloadpacket), repr(tree_map(_spec, (args, kwargs))))
            self.by_op[key] += flops
            self._calls.setdefault(key, (func, tree_map(_spec, args), tree_map(_spec, kwargs)))
            self.flops += flops
        return out

    def dominant(self) -> tuple[str, Callable[[], Any], int] | None:
        """(description, a call of the operation with the most FLOPs on fresh tensors, its FLOPs per
        call), or None when the step ran no product."""
        if not self.by_op:
            return None
        return self.call(self.by_op.most_common(1)[0][0])

    def products_seconds(self, device: torch.device, share: float = 0.99, most: int = 8) -> float:
        """How long the step's products take alone: the largest (operator, shapes), ``most`` at most and
        until they carry ``share`` of the FLOPs, each timed on fresh tensors (its FLOPs over its measured
        rate); the rest at the slowest measured rate. The step's own roofline: its products' time."""
        seconds, covered, slowest = 0.0, 0, math.inf
        for key, flops in self.by_op.most_common(most):
            _, call, per_call = self.call(key)
            rate = measured_rate(call, per_call, device)
            seconds += flops / rate
            covered += flops
            slowest = min(slowest, rate)
            if covered >= share * self.flops:
                break
        return seconds + (self.flops - covered) / slowest if self.flops > covered else seconds

    def call(self, key: tuple) -> tuple[str, Callable[[], Any], int]:
        """(description, a call of one recorded (operator, shapes) on fresh tensors, its FLOPs per call)."""
        func, args, kwargs = self._calls[key]

        def fresh(a):
            return a.fresh() if isinstance(a, _Spec) else a

        real_args, real_kwargs = tree_map(fresh, args), tree_map(fresh, kwargs)
        out = func(*real_args, **real_kwargs)
        per_call = int(flop_registry[func._overloadpacket](*real_args, **real_kwargs, out_val=out))
        shapes = " · ".join(str(a.shape) for a in args if isinstance(a, _Spec))
        return f"{func._overloadpacket.__name__} {shapes}", lambda: func(*real_args, **real_kwargs), per_call


def median_seconds(call: Callable[[], Any], device: torch.device, *, repeats: int = 7,
                   min_seconds: float = 0.02) -> float:
    """Median over ``repeats`` timings of ``call``, each repeated until it lasts ``min_seconds``."""
    call()
    synchronize(device)
    n = 1
    while True:  # how many calls make one timing long enough to read
        start = time.perf_counter()
        for _ in range(n):
            call()
        synchronize(device)
        if time.perf_counter() - start >= min_seconds or n >= 1 << 16:
            break
        n *= 2
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            call()
        synchronize(device)
        times.append((time.perf_counter() - start) / n)
    return statistics.median(times)


def measured_rate(call: Callable[[], Any], flops: int, device: torch.device) -> float:
    """FLOP/s of ``call`` (``flops`` per call), from the median time."""
    return flops / median_seconds(call, device)


def dispatch_seconds(device: torch.device, dtype: torch.dtype) -> float:
    """The time of one operator on a one-element tensor: about what any dispatched operator costs
    besides its arithmetic (an estimate: some in-place operators cost a little less)."""
    a = torch.ones(1, dtype=dtype, device=device)
    return median_seconds(lambda: torch.add(a, a), device)


def profile_table(step: Callable[[], Any], rows: int = 12) -> str:
    """``torch.profiler``'s table of one call of ``step`` (CPU; after one untimed call), operators sorted
    by their own time: how many calls of each, and how little time each takes beside the products."""
    from torch.profiler import ProfilerActivity, profile

    step()  # warm: first-call costs (allocations, lazy initialisation) are not the step's
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
