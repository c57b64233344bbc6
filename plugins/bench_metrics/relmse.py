"""RelMSE of Eq. 67 (Appendix C.1).

Per element e of a layer: ``‖f_e − g_e‖ / max(‖f_e‖, ‖g_e‖)`` with
``‖f‖ = sqrt(mean_t f(t)²)``, then the mean over the layer's elements. An
element where both processes are identically zero (e.g. a saturated neuron,
or a unit BPTT and EP both leave untouched) agrees perfectly and contributes
0; it still counts in the mean. Computed in float64. It is 0 iff f = g, at most 2
(reached by g = −f), and 1 when one process is zero and the other not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harness.api.metric import float64_pair


class RelMSE:
    """Eq. 67: per-element ‖f−g‖/max(‖f‖,‖g‖) with ‖f‖ = RMS over t, averaged over the layer; both-zero
    elements count as 0; lower is better"""

    direction = "lower"

    def __call__(self, candidate: Tensor, reference: Tensor) -> float:
        f, g = (p.flatten(1) for p in float64_pair(candidate, reference))
        nf = f.pow(2).mean(0).sqrt()
        ng = g.pow(2).mean(0).sqrt()
        d = (f - g).pow(2).mean(0).sqrt()
        den = torch.maximum(nf, ng)
        per_element = torch.where(den > 0, d / torch.where(den > 0, den, torch.ones_like(den)),
                                  torch.zeros_like(d))
        return float(per_element.mean())
