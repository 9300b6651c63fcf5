"""The normal CDF ``Φ`` and ``erfc`` in compiled code, bit for bit the values of ``scipy.special.ndtr``/``erfc``.

The reference pipeline evaluates the occupation profile (``ndtr``) and the first-passage fill probability
(``erfc``) with SciPy, whose real-argument versions are the Cephes rational approximations (SciPy's ``xsf``
library). They are re-implemented here from the published Cephes algorithm (same coefficients, same Horner order,
``exp`` from the C library as in SciPy), so that a compiled ladder gets the very same numbers; the identity is
tested against SciPy on a million points (``tests/fast/test_special.py``). A call from numba through SciPy's
Cython export would also give them, but a ctypes pointer cannot be cached on disk.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# Cephes ndtr.c (S. L. Moshier, 1984-1992) coefficients: erfc on [1, 8) (P/Q) and [8, inf) (R/S), erf on [0, 1]
_P = np.array(
    [
        2.46196981473530512524e-10,
        5.64189564831068821977e-1,
        7.46321056442269912687e0,
        4.86371970985681366614e1,
        1.96520832956077098242e2,
        5.26445194995477358631e2,
        9.34528527171957607540e2,
        1.02755188689515710272e3,
        5.57535335369399327526e2,
    ]
)
_Q = np.array(
    [
        1.32281951154744992508e1,
        8.67072140885989742329e1,
        3.54937778887819891062e2,
        9.75708501743205489753e2,
        1.82390916687909736289e3,
        2.24633760818710981792e3,
        1.65666309194161350182e3,
        5.57535340817727675546e2,
    ]
)
_R = np.array(
    [
        5.64189583547755073984e-1,
        1.27536670759978104416e0,
        5.01905042251180477414e0,
        6.16021097993053585195e0,
        7.40974269950448939160e0,
        2.97886665372100240670e0,
    ]
)
_S = np.array(
    [
        2.26052863220117276590e0,
        9.39603524938001434673e0,
        1.20489539808096656605e1,
        1.70814450747565897222e1,
        9.60896809063285878198e0,
        3.36907645100081516050e0,
    ]
)
_T = np.array(
    [
        9.60497373987051638749e0,
        9.00260197203842689217e1,
        2.23200534594684319226e3,
        7.00332514112805075473e3,
        5.55923013010394962768e4,
    ]
)
_U = np.array(
    [
        3.35617141647503099647e1,
        5.21357949780152679795e2,
        4.59432382970980127987e3,
        2.26290000613890934246e4,
        4.92673942608635921086e4,
    ]
)
_MAXLOG = 7.09782712893383996843e2
_SQRT1_2 = 0.70710678118654752440


@nb.njit(cache=True, inline="always")
def _polevl(x: float, c: np.ndarray) -> float:
    """``c[0]·x^N + ... + c[N]`` by Horner's rule (Cephes polevl)."""
    ans = c[0]
    for i in range(1, c.shape[0]):
        ans = ans * x + c[i]
    return ans


@nb.njit(cache=True, inline="always")
def _p1evl(x: float, c: np.ndarray) -> float:
    """``x^N + c[0]·x^(N-1) + ... + c[N-1]`` (Cephes p1evl: leading coefficient 1)."""
    ans = x + c[0]
    for i in range(1, c.shape[0]):
        ans = ans * x + c[i]
    return ans


@nb.njit(cache=True)
def _erf_small(x: float) -> float:
    """``erf(x)`` for ``0 <= x <= 1``: ``x·T(x²)/U(x²)``."""
    z = x * x
    return x * _polevl(z, _T) / _p1evl(z, _U)


@nb.njit(cache=True)
def _erfc_large(a: float) -> float:
    """``erfc(a)`` for ``|a| >= 1``: ``exp(-a²)·P(|a|)/Q(|a|)`` (R/S from 8 on), reflected for ``a < 0``."""
    x = -a if a < 0.0 else a
    z = -a * a
    if z < -_MAXLOG:
        return 2.0 if a < 0 else 0.0
    z = math.exp(z)
    if x < 8.0:
        p = _polevl(x, _P)
        q = _p1evl(x, _Q)
    else:
        p = _polevl(x, _R)
        q = _p1evl(x, _S)
    y = (z * p) / q
    if a < 0:
        y = 2.0 - y
    if y != 0.0:
        return y
    return 2.0 if a < 0 else 0.0


@nb.njit(cache=True)
def erf(x: float) -> float:
    """Error function (dimensionless), as ``scipy.special.erf`` for real arguments."""
    if math.isnan(x):
        return math.nan
    if x < 0.0:
        y = -x
        return -(1.0 - _erfc_large(y)) if y > 1.0 else -_erf_small(y)
    if x > 1.0:
        return 1.0 - _erfc_large(x)
    return _erf_small(x)


@nb.njit(cache=True)
def erfc(a: float) -> float:
    """Complementary error function ``erfc(a) = 1 - erf(a)`` (dimensionless), as ``scipy.special.erfc``."""
    if math.isnan(a):
        return math.nan
    x = -a if a < 0.0 else a
    if x < 1.0:
        return 1.0 - erf(a)
    return _erfc_large(a)


@nb.njit(cache=True)
def ndtr(a: float) -> float:
    """Standard normal CDF ``Φ(a)`` (dimensionless), as ``scipy.special.ndtr``."""
    if math.isnan(a):
        return math.nan
    x = a * _SQRT1_2
    z = abs(x)
    if z < 1.0:
        return 0.5 + 0.5 * erf(x)
    y = 0.5 * erfc(z)
    if x > 0:
        y = 1.0 - y
    return y
