"""``erfc`` in compiled code: the C library's, the function the reference calls (:mod:`hyper_make.economics._special`).

The reference pipeline evaluates the first-passage fill probability and the occupation profile
(``Φ(-z) = erfc(z/√2)/2``) with ``math.erfc``, which is the C library's ``erfc``; numba's ``math.erfc`` calls the
same function, so a compiled ladder gets the very same numbers (tested on a million points,
``tests/fast/test_special.py``).
"""

from __future__ import annotations

import math

import numba as nb

#: ``1/√2``, the same constant as the reference's
INV_SQRT_2 = 1.0 / math.sqrt(2.0)


@nb.njit(cache=True, inline="always")
def erfc(x: float) -> float:
    """``erfc(x)`` (dimensionless), the C library's."""
    return math.erfc(x)
