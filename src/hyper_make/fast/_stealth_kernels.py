"""Compiled, array-level kernels of the stealth stage (:mod:`hyper_make.stealth`), bit-identical to it.

Contract (for the compiled ladder path)
---------------------------------------
``bitgen = bitgen_table(rng)`` (:mod:`hyper_make.fast._entropy`): the kernels draw from ``rng``'s bit generator
with NumPy's own samplers, so the variates and the generator's state after the call are those of the Python
stage's ``rng.gamma`` / ``rng.standard_normal`` calls (the Python stage draws nothing when the allocation is empty,
and neither do these kernels).

* :func:`dirichlet_sizes_kernel` ``(sizes, caps_coins, min_size_coins, lot_coins, lot_inverse, concentration,
  bitgen) -> sizes`` = ``stealth.dirichlet_sizes(sizes, problem, concentration, rng)``: ``sizes``, caps and
  minimum orders in coins (shape ``(n,)``), ``lot_coins`` the lot (coins), ``lot_inverse`` ``10^d`` when the lot
  is ``10^-d`` else 0 (:func:`lot_inverse`, once per instrument), ``concentration`` κ (dimensionless). Returns
  coins on the lot grid.
* :func:`posterior_draw_kernel` ``(a, b, edge_sd_frac, impact_sd_log, bitgen, loops) -> (a_draw, b_draw)`` =
  ``stealth.posterior_curves(curves, config, rng)`` from ``a = curves.a`` (USD per coin) and ``b = curves.b``
  (USD per coin^(1+β)); ``loops`` is :data:`~hyper_make.fast._entropy.NUMPY_LOOPS` (NumPy's own ``exp``). The exact
  solve of the drawn curves is the impact allocator's (KKT and lot search), which the compiled ladder path owns.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from .._exact import np_sum_n
from ..allocate._base import SideProblem
from ..economics.curve import LevelCurves
from ..instrument import _decimal_inverse
from ..stealth import StealthConfig, _spread_lots
from ._entropy import NUMPY_LOOPS, _np_unary, _standard_gamma, _standard_normal, bitgen_table


def lot_inverse(lot_coins: float) -> int:
    """``10^d`` when the lot (coins) is ``10^-d``, else 0 (how ``instrument.lots_to_coins`` turns lots to coins)."""
    return int(_decimal_inverse(float(lot_coins)))


@nb.njit(cache=True)
def dirichlet_sizes_kernel(sizes, caps_coins, min_size_coins, lot_coins, lot_inverse, concentration, bitgen):  # type: ignore[no-untyped-def]
    """Dirichlet draw ``p ~ Dir(κ·s/Σs)`` over the levels in use, ``Σs`` re-spread by ``p`` on the lot grid (coins).

    The same operations as :func:`hyper_make.stealth.dirichlet_sizes`: one ``Gamma(κ·s_i/Σs)`` per level with
    ``s_i > 0``, in level order; caps, lots and minimum orders re-imposed by the stage's own compiled spread.
    Raises ``ValueError`` when ``caps_coins`` or ``min_size_coins`` is not one entry per level.
    """
    n = sizes.shape[0]
    if caps_coins.shape[0] != n or min_size_coins.shape[0] != n or bitgen.shape[0] != 3:
        raise ValueError("dirichlet kernel: sizes, caps_coins and min_size_coins need one entry per level")
    total = np_sum_n(sizes, n)
    out = np.zeros(n)
    k = 0
    for i in range(n):
        if sizes[i] > 0:
            k += 1
    if total <= 0 or k == 0:
        return out
    idx = np.empty(k, dtype=np.int64)
    g = np.empty(k)
    j = 0
    for i in range(n):
        if sizes[i] > 0:
            idx[j] = i
            j += 1
    for j in range(k):
        g[j] = 1.0 * _standard_gamma(bitgen, concentration * sizes[idx[j]] / total)
    gs = np_sum_n(g, k)
    p = np.zeros(n)
    for j in range(k):
        p[idx[j]] = g[j] / gs if gs > 0 else sizes[idx[j]] / total
    m_lots = np.empty(n)
    for i in range(n):
        m_lots[i] = max(np.ceil(np.round(min_size_coins[i] / lot_coins, 6)), 1.0)
    lots = np.zeros(n, dtype=np.int64)
    _spread_lots(p, total, caps_coins, lot_coins, m_lots, lots)
    for i in range(n):
        out[i] = float(lots[i]) / lot_inverse if lot_inverse else float(lots[i]) * lot_coins
    return out


@nb.njit(cache=True)
def posterior_draw_kernel(a, b, edge_sd_frac, impact_sd_log, bitgen, loops):  # type: ignore[no-untyped-def]
    """One posterior draw ``a' = a·(1 + σ_a·z)``, ``b' = b·exp(σ_b·z' - σ_b²/2)`` (``z, z'`` standard normal).

    The same variates as ``rng.standard_normal((2, n))`` (``z`` the first row), the same operations as
    :func:`hyper_make.stealth.posterior_curves`, NumPy's ``exp``. Raises ``ValueError`` when ``b`` is not ``a``'s
    length.
    """
    n = a.shape[0]
    if b.shape[0] != n or bitgen.shape[0] != 3 or loops.shape[0] != 7:
        raise ValueError("posterior kernel: a and b need one entry per level")
    z = np.empty(2 * n)
    for i in range(2 * n):
        z[i] = _standard_normal(bitgen)
    a_draw = np.empty(n)
    for i in range(n):
        a_draw[i] = a[i] * (1.0 + edge_sd_frac * z[i])
    s = impact_sd_log
    half = 0.5 * s * s
    arg = np.empty(n)
    for i in range(n):
        arg[i] = s * z[n + i] - half
    e = np.empty(n)
    _np_unary(loops, 0, arg, e, n)
    b_draw = np.empty(n)
    for i in range(n):
        b_draw[i] = b[i] * e[i]
    return a_draw, b_draw


def dirichlet_sizes_fast(
    sizes: NDArray[np.float64], problem: SideProblem, concentration: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``stealth.dirichlet_sizes(sizes, problem, concentration, rng)`` through :func:`dirichlet_sizes_kernel`."""
    lot = float(problem.lot_coins)
    return dirichlet_sizes_kernel(
        np.ascontiguousarray(sizes, dtype=np.float64), problem.caps_coins, problem.min_size_coins, lot,
        lot_inverse(lot), float(concentration), bitgen_table(rng),
    )  # fmt: skip


def posterior_curves_fast(
    curves: LevelCurves, config: StealthConfig, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``stealth.posterior_curves(curves, config, rng)`` through :func:`posterior_draw_kernel`."""
    return posterior_draw_kernel(
        curves.a, curves.b, float(config.edge_sd_frac), float(config.impact_sd_log), bitgen_table(rng), NUMPY_LOOPS
    )
