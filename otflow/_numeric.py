"""Exact rescaling by powers of two, so that squares neither overflow nor underflow.

Dividing a float64 by a power of two is exact (barring subnormals), so a quantity computed on
rescaled input and multiplied back is bit-for-bit the one computed directly whenever the direct
computation does not overflow, and the scale-free ones (ratios, permutations) are exact at any
magnitude.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pow2_scale", "common_scale", "check_no_overflow"]


def pow2_scale(m) -> np.ndarray:
    """The power of two ``2^e > m`` (1 where ``m == 0``), elementwise, for ``m >= 0``.

    Capped at ``2^1023``, the largest power of two in float64: above it ``m / scale`` is below 2.
    """
    m = np.asarray(m, dtype=np.float64)
    return np.where(m > 0, np.ldexp(1.0, np.minimum(np.frexp(m)[1], 1023)), 1.0)


def common_scale(*arrays: np.ndarray) -> float:
    """One power of two above the largest absolute coordinate of all ``arrays``."""
    return float(pow2_scale(max(float(np.abs(a).max()) for a in arrays)))


def check_no_overflow(value, name: str, what: str):
    """``value`` unchanged if all finite, else a ``ValueError`` naming ``name`` and saying ``what`` overflows."""
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"{name}: {what} overflows float64 (the input's magnitude is too large); "
            "divide the input by a common factor first"
        )
    return value
