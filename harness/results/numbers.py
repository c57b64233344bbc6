"""How tables write numbers: one format spec per metric, e-notation written out, a difference's
sign always shown. Shared by ``bench table`` and ``bench compare`` so both print a cell alike."""

from __future__ import annotations

import math
from decimal import Decimal


def number(value: float, fmt: str) -> str:
    """``value`` in the table's format; a ``g`` format's e-notation (2.39e+03) is written out
    (2390) unless the format asks for it (``e``), so columns of numbers read alike."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = format(value, fmt)
    if "e" in text and fmt.endswith("g") and 1e-6 <= abs(value) < 1e16:
        text = format(Decimal(text), "f")  # exactly the digits the format kept (3.3e-06 -> 0.0000033)
        if fmt.startswith("+") and not text.startswith("-"):
            text = "+" + text
    return text


def mean_std(mean: float, std: float, n: int, fmt: str) -> str:
    """A cell over ``n`` runs: "—" for none, the mean alone for one, "mean ± std" for more."""
    if not n:
        return "—"
    return number(mean, fmt) + (f" ± {number(std, fmt)}" if n > 1 else "")


def signed(value: float, fmt: str) -> str:
    """``value`` in ``fmt`` (precision and type: a table's format) with its sign always written, as a
    difference reads (+0.42, -0.07); a difference that rounds to zero is +0.00, never -0.00."""
    fmt = fmt.removeprefix("+")
    text = number(value, fmt if fmt.startswith("z") else "z" + fmt)
    return text if text == "—" or text.startswith(("+", "-")) else "+" + text
