"""Discreteness: the exact optimum on the exchange's lot grid, and the minimum order value.

**Lots.** With sizes ``k_i`` lots of ``L`` coins, ``f_i(k) = a_i·kL - b_i·(kL)^(1+β)`` is concave in k, so the
problem ``max Σ f_i(k_i)`` s.t. ``Σ k_i <= K``, ``lo_i <= k_i <= hi_i`` is solved exactly by taking lots in order
of decreasing marginal gain ``g_i(k) = f_i(k+1) - f_i(k)`` while the gain is positive and lots remain. Rather
than one lot at a time from zero (88 s for a calibrated side of 5·10^6 lots), :func:`lot_optimum` starts from
the floor of the continuous optimum of the same bounds, solved exactly in lot units by the KKT kernel. By the
mean value theorem ``g_i(k) = f_i'(ξ)`` with ``ξ in (k, k+1)``, so at the continuous shadow price ``λ`` the lot
threshold solution (every lot with ``g > λ``) has ``⌊x_i⌋`` or ``⌈x_i⌉`` lots per level, and its total is
within ``n`` lots of the budget: the start is at most about ``2n`` single-lot steps from the optimum, whatever
the lot counts. A compiled local search then adds the best next lot, drops the worst kept one, or moves one
between levels, while that improves (capped at ``4n + 64`` steps by construction). It stops exactly at the
*certificate* of optimality: no single lot can be added, removed or moved with a gain, i.e.
``min_i g_i(k_i - 1) >= max_i g_i(k_i)``, every kept last lot has a gain ``>= 0``, and, when lots are left, no next
lot has a positive gain (separable concave maximisation over a budget is M♮-concave, so this local optimality
is global).

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

from ..errors import InvalidParameterError
from ..instrument import MAX_LOTS, lots_to_coins
from ._kkt import FAILED, _kkt


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
    steps : local-search steps over every lot optimum solved (each about ``2n`` at most).
    certified : every lot optimum ended on its optimality certificate (False only if a step cap stopped one).
    """

    lots: NDArray[np.int64]
    sizes: NDArray[np.float64]
    objective: float
    dropped: int
    raised: int
    steps: int = 0
    certified: bool = True


def _values(
    a: NDArray[np.float64], b: NDArray[np.float64], beta: float, lot: float, k: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``f(k) = a·kL - b·(kL)^(1+β)`` (USD) elementwise."""
    s = k * lot
    return a * s - b * s ** (1.0 + beta)


@nb.njit(cache=True, inline="always")
def _gain(a: float, b: float, q: float, lot: float, lq: float, kk: int) -> float:
    """Gain of lot ``kk + 1``: ``a·L - b·L^q·((kk+1)^q - kk^q)`` (USD), powers differenced without cancellation
    (``(k+1)^q - k^q = k^q·expm1(q·log1p(1/k))``; for q = 1.5 the difference of cubes over the sum of the square roots'
    powers and for q = 2 ``2k + 1``, within 2 ulps and a third of the time)."""
    if kk <= 0:
        d = 1.0
    elif q == 1.5:  # the square-root law: (k+1)^1.5 - k^1.5 = ((k+1)^3 - k^3) / ((k+1)^1.5 + k^1.5), two roots
        x = float(kk)
        d = (3.0 * x * (x + 1.0) + 1.0) / ((x + 1.0) * math.sqrt(x + 1.0) + x * math.sqrt(x))
    elif q == 2.0:
        d = 2.0 * kk + 1.0
    else:
        d = kk**q * math.expm1(q * math.log1p(1.0 / kk))
    return a * lot - b * lq * d


@nb.njit(cache=True)
def _local_search(a, b, q, lot, budget, lo, hi, k, max_steps):  # type: ignore[no-untyped-def]
    """Certified local search (compiled): add the best lot, drop the worst, or move one, until none helps.

    Each step strictly improves the objective (or restores the budget); the stopping rule is the optimality
    certificate (no add, removal or move improves), so ``k`` (updated in place) ends at the exact optimum.
    At most ``max_steps`` steps: returns ``(steps, certified)``, ``certified`` False if the cap stopped it.
    """
    n = a.shape[0]
    lq = lot**q
    scale = 0.0
    for i in range(n):
        scale = max(scale, abs(a[i]) * lot)
    tol = 1e-12 * scale + 1e-300
    gains = np.empty((2, n))
    nxt = gains[0]
    last = gains[1]
    total = 0
    for i in range(n):
        nxt[i] = _gain(a[i], b[i], q, lot, lq, k[i]) if k[i] < hi[i] else -np.inf
        last[i] = _gain(a[i], b[i], q, lot, lq, k[i] - 1) if k[i] > lo[i] else np.inf
        total += k[i]
    steps = 0
    while steps < max_steps:
        i_add = np.argmax(nxt)
        i_del = np.argmin(last)
        g_add = nxt[i_add]
        g_del = last[i_del]
        if total > budget or g_del < -tol:
            if g_del == np.inf:
                return steps, True  # nothing above its lower bound to remove (callers keep Σ lo <= budget)
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
            return steps, True
        k[j] += step
        total += step
        kj = k[j]
        nxt[j] = _gain(a[j], b[j], q, lot, lq, kj) if kj < hi[j] else -np.inf
        last[j] = _gain(a[j], b[j], q, lot, lq, kj - 1) if kj > lo[j] else np.inf
        steps += 1
    # capped (never seen): stay within the budget, taking the excess from the weakest last lots in bulk
    while total > budget:
        i_del = np.argmin(last)
        if last[i_del] == np.inf:
            break
        take = min(total - budget, k[i_del] - lo[i_del])
        k[i_del] -= take
        total -= take
        last[i_del] = np.inf
    return steps, False


def lot_optimum(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: float,
    lot: float,
    budget_lots: int,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
) -> tuple[NDArray[np.int64], int, bool]:
    """Exact maximiser of ``Σ f_i(k_i)`` over integers, ``Σ k <= budget_lots``, ``lo <= k <= hi`` (needs ``Σ lo <= K``).

    Starts from the floor of the continuous optimum *of the same bounds* (the exact KKT solve in lot units),
    which is within one lot per level of the lot optimum at the same threshold, whose total is within ``n`` lots
    of the budget; the certified local search then needs at most about ``2n`` steps, whatever the lot counts
    (they may reach 2^53). Its step cap (``4n + 64``) is never reached in practice; if it were, the answer stays
    feasible and ``certified`` is False. Returns ``(lots, steps, certified)``.
    """
    k = np.empty(a.shape[0], dtype=np.int64)
    steps, certified = _lot_optimum(
        a, b, float(beta), float(lot), int(budget_lots), lo.astype(np.int64), hi.astype(np.int64), k
    )
    return k, int(steps), bool(certified)


@nb.njit(cache=True)
def _lot_optimum(a, b, beta, lot, budget, lo, hi_in, k):  # type: ignore[no-untyped-def]
    """Compiled body of :func:`lot_optimum` (one dispatch: it runs hundreds of times in the minimum-order search)."""
    n = a.shape[0]
    q = 1.0 + beta
    hi = np.empty(n, np.int64)
    lq = lot**q
    blk = np.empty(5 * n)  # one allocation for the solve's rows (each costs as much as a level's arithmetic)
    aL = blk[:n]
    bq = blk[n : 2 * n]
    lo_f = blk[2 * n : 3 * n]
    hi_f = blk[3 * n : 4 * n]
    x = blk[4 * n :]
    for i in range(n):
        hi[i] = max(hi_in[i], lo[i])
        aL[i] = a[i] * lot
        bq[i] = b[i] * lq
        lo_f[i] = lo[i]
        hi_f[i] = hi[i]
    code, _, _, _ = _kkt(aL, bq, lo_f, hi_f, float(budget), beta, x)  # the sizes only, not kkt_solve's objective
    for i in range(n):
        if code == FAILED:
            k[i] = lo[i]
        else:
            xi = math.floor(x[i])
            k[i] = lo[i] if xi < lo_f[i] else (hi[i] if xi > hi_f[i] else int(xi))
    return _local_search(a, b, q, lot, budget, lo, hi, k, 4 * n + 64)


def discrete_allocation(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: float,
    lot: float,
    budget: float,
    caps: NDArray[np.float64],
    min_size: NDArray[np.float64],
    *,
    max_search_levels: int = 4,
) -> DiscreteSolution:
    """Lot-exact optimum of one side with every level at 0 or at least its minimum order (see module docstring).

    Parameters
    ----------
    a, b, beta : the side's payout curves (USD per coin, USD per coin^(1+β), dimensionless).
    lot : exchange size increment (coins).
    budget : side budget (coins), at most ``MAX_LOTS`` lots; ``caps``: per-level caps (coins, ``inf`` allowed);
        ``min_size``: per-level minimum order (coins).
    max_search_levels : levels below their minimum tried both ways exhaustively (``2^n`` re-solves).

    Raises
    ------
    InvalidParameterError
        If the budget is more than ``MAX_LOTS`` (2^53) lots.
    """
    n = a.shape[0]
    budget_lots = budget_in_lots(budget, lot)
    # one rounding pass for caps and minimum (to 1e-6 lot, the projection's rule), then floor/ceil; nothing can
    # exceed the budget, so both are clipped there before the integer conversion (caps may be infinite)
    top = float(budget_lots) + 1.0
    scaled = np.minimum(np.round(np.concatenate((caps, min_size)) / lot, 6), top)
    cap = np.floor(scaled[:n]).astype(np.int64)
    m = np.maximum(np.ceil(scaled[n:]).astype(np.int64), 1)
    # a level that cannot hold its minimum (cap or budget) or has no edge never rests anything
    hi0 = np.where((a > 0) & (m <= np.minimum(cap, budget_lots)), cap, 0)
    zero = np.zeros(n, dtype=np.int64)
    stats = [0, True]  # local-search steps over every lot optimum, and whether each ended certified

    def optimum(lo: NDArray[np.int64], hi: NDArray[np.int64]) -> NDArray[np.int64]:
        kk, steps, certified = lot_optimum(a, b, beta, lot, budget_lots, lo, hi)
        stats[0] += steps
        stats[1] = stats[1] and certified
        return kk

    def done(kk: NDArray[np.int64], value: float, dropped: int = 0, raised: int = 0) -> DiscreteSolution:
        return DiscreteSolution(kk, lots_to_coins(kk, lot), value, dropped, raised, int(stats[0]), bool(stats[1]))

    k = optimum(zero, hi0)
    viol = np.flatnonzero((k > 0) & (k < m))
    if viol.size == 0:
        return done(k, float("nan"))

    def value(kk: NDArray[np.int64]) -> float:
        return float(_values(a, b, beta, lot, kk.astype(np.float64)).sum())

    def resolve(lo: NDArray[np.int64], hi: NDArray[np.int64]) -> NDArray[np.int64] | None:
        """Lot optimum under ``lo <= k <= hi``, dropping levels that fall strictly below their minimum."""
        hi = hi.copy()
        for _ in range(n + 1):
            if int(lo.sum()) > budget_lots:
                return None
            kk = optimum(lo, hi)
            bad = (kk > 0) & (kk < m)
            if not bad.any():
                return kk
            hi[bad] = 0
        return None  # pragma: no cover - each pass removes a level

    # too many to search: drop the weakest one (fewest lots, then lowest edge) and re-solve, one at a time
    base_hi = hi0.copy()
    kk = k
    while viol.size > max_search_levels:
        worst = viol[np.lexsort((a[viol], kk[viol]))[0]]
        base_hi[worst] = 0
        kk = optimum(zero, base_hi)
        viol = np.flatnonzero((kk > 0) & (kk < m))
    best = zero
    best_val = 0.0
    for choice in itertools.product((False, True), repeat=viol.size):
        up = np.array(choice, dtype=bool)
        lo = zero.copy()
        lo[viol[up]] = m[viol[up]]
        hi = base_hi.copy()
        hi[viol[~up]] = 0
        cand = resolve(lo, hi)
        if cand is not None:
            v = value(cand)
            if v > best_val:
                best, best_val = cand, v
    raised = int(np.count_nonzero((best >= m) & (k < m) & (k > 0)))
    dropped = int(np.count_nonzero((best == 0) & (k > 0)))
    return done(best, best_val, dropped, raised)


def budget_in_lots(budget: float, lot: float) -> int:
    """``floor(budget / lot)`` after rounding to 1e-6 lot (the projection's rule), as an int <= ``MAX_LOTS``.

    Raises
    ------
    InvalidParameterError
        If the budget is more than ``MAX_LOTS`` = 2^53 lots (sizes are exact float64 integers of lots up to there).
    """
    lots = round(budget / lot, 6)
    if not lots <= MAX_LOTS:  # NaN too
        raise InvalidParameterError(
            f"side budget {budget:.6g} coins is {lots:.4g} lots of {lot:g} coins; at most 2^53 = {MAX_LOTS:.4g} "
            "lots are supported: lower 'max_position_coins' or 'margin_usd'"
        )
    return math.floor(lots)


__all__ = ["DiscreteSolution", "budget_in_lots", "discrete_allocation", "lot_optimum"]
