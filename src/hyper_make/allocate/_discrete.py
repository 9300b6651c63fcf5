"""Discreteness: the exact optimum on the exchange's lot grid, and the minimum order value.

**Lots.** With sizes ``k_i`` lots of ``L`` coins, ``f_i(k) = a_i·kL - b_i·(kL)^(1+β)`` is concave in k, so the
problem ``max Σ f_i(k_i)`` s.t. ``Σ k_i <= K``, ``lo_i <= k_i <= hi_i`` is solved exactly by taking lots in order
of decreasing marginal gain ``g_i(k) = f_i(k+1) - f_i(k)`` while the gain is positive and lots remain. Rather
than one lot at a time from zero, :func:`lot_optimum` starts from the floored continuous optimum (within a lot
or two per level of the answer) and runs a compiled local search: add the best next lot, drop the worst kept
one, or move one between levels, while that improves. It stops exactly at the *certificate* of optimality: no
single lot can be added, removed or moved with a gain, i.e. ``min_i g_i(k_i - 1) >= max_i g_i(k_i)``, every kept
last lot has a gain ``>= 0``, and, when lots are left, no next lot has a positive gain (separable concave
maximisation over a budget is M♮-concave, so this local optimality is global).

**Minimum order.** Each level must rest 0 or at least ``m_i`` lots (the exchange's minimum order value): a
non-convex constraint. Levels that the lot optimum leaves strictly between 0 and ``m_i`` are resolved
explicitly: while there are more than ``max_search_levels`` of them, the weakest (fewest lots, then lowest
edge) is dropped and the rest re-solved; the remaining ones are tried both ways (dropped, or raised to ``m_i``
with the rest re-optimised) exhaustively. Levels that a re-solve pushes below their minimum are dropped and the
rest re-solved. The best feasible candidate is kept, and its loss against the
continuous optimum is reported.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from ..instrument import lots_to_coins


@dataclass(frozen=True, slots=True, eq=False)
class DiscreteSolution:
    """Lot-exact sizes satisfying the minimum order, and what it took.

    Attributes
    ----------
    lots : whole lots per level, ``>= 0``.
    sizes : ``lots`` in coins.
    objective : ``Σ E[PnL]_i`` of ``sizes`` (USD); NaN when not computed (no level needed the minimum-order search).
    dropped : levels the minimum order removed (the continuous optimum had them below the minimum).
    raised : levels raised to their minimum order.
    """

    lots: NDArray[np.int64]
    sizes: NDArray[np.float64]
    objective: float
    dropped: int
    raised: int


def _values(
    a: NDArray[np.float64], b: NDArray[np.float64], beta: float, lot: float, k: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``f(k) = a·kL - b·(kL)^(1+β)`` (USD) elementwise."""
    s = k * lot
    return a * s - b * s ** (1.0 + beta)


@nb.njit(cache=True, inline="always")
def _gain(a: float, b: float, q: float, lot: float, lq: float, kk: int) -> float:
    """Gain of lot ``kk + 1``: ``a·L - b·L^q·((kk+1)^q - kk^q)`` (USD), powers differenced without cancellation."""
    d = kk**q * math.expm1(q * math.log1p(1.0 / kk)) if kk > 0 else 1.0
    return a * lot - b * lq * d


@nb.njit(cache=True)
def _local_search(a, b, q, lot, budget, lo, hi, k):  # type: ignore[no-untyped-def]
    """Certified local search (compiled): add the best lot, drop the worst, or move one, until none helps.

    Each step strictly improves the objective (or restores the budget); the stopping rule is the optimality
    certificate (no add, removal or move improves), so ``k`` (updated in place) ends at the exact optimum.
    Returns the number of steps taken.
    """
    n = a.shape[0]
    lq = lot**q
    scale = 0.0
    for i in range(n):
        scale = max(scale, abs(a[i]) * lot)
    tol = 1e-12 * scale + 1e-300
    nxt = np.empty(n)
    last = np.empty(n)
    total = 0
    for i in range(n):
        nxt[i] = _gain(a[i], b[i], q, lot, lq, k[i]) if k[i] < hi[i] else -np.inf
        last[i] = _gain(a[i], b[i], q, lot, lq, k[i] - 1) if k[i] > lo[i] else np.inf
        total += k[i]
    steps = 0
    while True:
        i_add = np.argmax(nxt)
        i_del = np.argmin(last)
        g_add = nxt[i_add]
        g_del = last[i_del]
        if total > budget or g_del < -tol:
            if g_del == np.inf:
                return steps  # nothing above its lower bound to remove (callers keep Σ lo <= budget)
            j, step = i_del, -1
        elif g_add > tol and total < budget:
            j, step = i_add, 1
        elif g_add > g_del + tol:
            # move one lot from the worst kept to the best next
            k[i_del] -= 1
            kd = k[i_del]
            nxt[i_del] = _gain(a[i_del], b[i_del], q, lot, lq, kd)
            last[i_del] = _gain(a[i_del], b[i_del], q, lot, lq, kd - 1) if kd > lo[i_del] else np.inf
            total -= 1
            j, step = i_add, 1
        else:
            return steps
        k[j] += step
        total += step
        kj = k[j]
        nxt[j] = _gain(a[j], b[j], q, lot, lq, kj) if kj < hi[j] else -np.inf
        last[j] = _gain(a[j], b[j], q, lot, lq, kj - 1) if kj > lo[j] else np.inf
        steps += 1


def lot_optimum(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: float,
    lot: float,
    budget_lots: int,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    start: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Exact maximiser of ``Σ f_i(k_i)`` over integers, ``Σ k <= budget_lots``, ``lo <= k <= hi`` (needs ``Σ lo <= K``).

    ``start`` is any guess; from the floored continuous optimum (within a lot or two of the answer per level)
    the search takes a handful of steps.
    """
    lo = lo.astype(np.int64)
    hi = np.maximum(hi.astype(np.int64), lo)
    k = np.clip(start.astype(np.int64), lo, hi)
    _local_search(a, b, 1.0 + beta, float(lot), int(budget_lots), lo, hi, k)
    return k


def discrete_allocation(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: float,
    lot: float,
    budget: float,
    caps: NDArray[np.float64],
    min_size: NDArray[np.float64],
    cont_sizes: NDArray[np.float64],
    *,
    max_search_levels: int = 4,
) -> DiscreteSolution:
    """Lot-exact optimum of one side with every level at 0 or at least its minimum order (see module docstring).

    Parameters
    ----------
    a, b, beta : the side's payout curves (USD per coin, USD per coin^(1+β), dimensionless).
    lot : exchange size increment (coins).
    budget : side budget (coins); ``caps``: per-level caps (coins); ``min_size``: per-level minimum order (coins).
    cont_sizes : the continuous optimum (coins), used as the starting point.
    max_search_levels : levels below their minimum tried both ways exhaustively (``2^n`` re-solves).
    """
    n = a.shape[0]
    budget_lots = math.floor(round(budget / lot, 6))
    # one rounding pass for caps, start and minimum (to 1e-6 lot, the projection's rule), then floor/ceil
    scaled = np.round(np.concatenate((caps, cont_sizes, min_size)) / lot, 6)
    cap = np.floor(scaled[:n]).astype(np.int64)
    start_lots = np.floor(scaled[n : 2 * n]).astype(np.int64)
    m = np.maximum(np.ceil(scaled[2 * n :]).astype(np.int64), 1)
    # a level that cannot hold its minimum (cap or budget) or has no edge never rests anything
    hi0 = np.where((a > 0) & (m <= np.minimum(cap, budget_lots)), cap, 0)
    zero = np.zeros(n, dtype=np.int64)
    start = np.minimum(start_lots, hi0)
    k = lot_optimum(a, b, beta, lot, budget_lots, zero, hi0, start)
    viol = np.flatnonzero((k > 0) & (k < m))
    if viol.size == 0:
        return DiscreteSolution(k, lots_to_coins(k, lot), float("nan"), 0, 0)

    def value(kk: NDArray[np.int64]) -> float:
        return float(_values(a, b, beta, lot, kk.astype(np.float64)).sum())

    def resolve(lo: NDArray[np.int64], hi: NDArray[np.int64], k0: NDArray[np.int64]) -> NDArray[np.int64] | None:
        """Lot optimum under ``lo <= k <= hi``, dropping levels that fall strictly below their minimum."""
        hi = hi.copy()
        for _ in range(n + 1):
            if int(lo.sum()) > budget_lots:
                return None
            kk = lot_optimum(a, b, beta, lot, budget_lots, lo, hi, k0)
            bad = (kk > 0) & (kk < m)
            if not bad.any():
                return kk
            hi[bad] = 0
            k0 = np.where(bad, 0, kk)
        return None  # pragma: no cover - each pass removes a level

    # too many to search: drop the weakest one (fewest lots, then lowest edge) and re-solve, one at a time
    base_hi = hi0.copy()
    kk = k
    while viol.size > max_search_levels:
        worst = viol[np.lexsort((a[viol], kk[viol]))[0]]
        base_hi[worst] = 0
        kk = lot_optimum(a, b, beta, lot, budget_lots, zero, base_hi, np.where(base_hi > 0, kk, 0))
        viol = np.flatnonzero((kk > 0) & (kk < m))
    best = zero
    best_val = 0.0
    for choice in itertools.product((False, True), repeat=viol.size):
        raise_idx = viol[np.array(choice, dtype=bool)] if viol.size else viol
        lo = zero.copy()
        lo[raise_idx] = m[raise_idx]
        hi = base_hi.copy()
        hi[np.setdiff1d(viol, raise_idx)] = 0
        cand = resolve(lo, hi, np.where(hi > 0, np.maximum(kk, lo), 0))
        if cand is not None:
            v = value(cand)
            if v > best_val:
                best, best_val = cand, v
    raised = int(np.count_nonzero((best >= m) & (k < m) & (k > 0)))
    dropped = int(np.count_nonzero((best == 0) & (k > 0)))
    return DiscreteSolution(best, lots_to_coins(best, lot), best_val, dropped, raised)


__all__ = ["DiscreteSolution", "discrete_allocation", "lot_optimum"]
