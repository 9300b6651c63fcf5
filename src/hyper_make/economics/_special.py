"""The complementary error function elementwise, from the C library (what numba's ``math.erfc`` calls too).

SciPy's ``erfc``/``ndtr`` would cost ~0.15 s of start-up for a ladder of a few dozen levels, and their last bit can
differ from the C library's, which the compiled fast path uses: one function for both keeps them identical.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def erfc(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``erfc(x) = 2/√π·∫_x^∞ exp(-t²) dt`` elementwise (dimensionless), same shape as ``x``."""
    a = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(math.erfc, a.ravel().tolist()), dtype=np.float64, count=a.size).reshape(a.shape)
