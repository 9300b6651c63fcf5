"""Discreteness: the exact optimum on the exchange's lot grid, and the minimum order value.

**Lots.** With sizes ``k_i`` lots of ``L`` coins, ``f_i(k) = a_i·kL - b_i·(kL)^(1+β)`` is concave in k, so the
problem ``max Σ f_i(k_i)`` s.t. ``Σ k_i <= K``, ``lo_i <= k_i <= hi_i`` is solved exactly by taking lots in order
of decreasing marginal gain ``g_i(k) = f_i(k+1) - f_i(k)`` while the gain is positive and lots remain. Rather
than one lot at a time from zero, :func:`lot_optimum` starts from the floored continuous optimum and only
ranks the gains of a window of lots around it (a few per level, one vectorised sort); the answer is then
*certified*: it is optimal iff no single lot can be added, removed or moved between two levels with a gain,
i.e. ``min_i g_i(k_i - 1) >= max_i g_i(k_i)``, every kept last lot has a gain ``>= 0``, and, when lots are left,
no next lot has a positive gain (separable concave maximisation over a budget is M♮-concave, so this local
optimality is global). If the certificate fails, the window grows.

**Minimum order.** Each level must rest 0 or at least ``m_i`` lots (the exchange's minimum order value): a
non-convex constraint. Levels that the lot optimum leaves strictly between 0 and ``m_i`` are resolved
explicitly: up to ``max_search_levels`` of them are tried both ways (dropped, or raised to ``m_i`` with the
rest re-optimised) exhaustively; beyond that they are dropped. Levels that a re-solve pushes below their
minimum are dropped and the rest re-solved. The best feasible candidate is kept, and its loss against the
continuous optimum is reported.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Window half-width (lots per level) ranked around the start point on the first attempt.
_WINDOW = 2
#: Up to this many levels the lot search runs on Python scalars.
_SMALL_N = 32


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


def _gains(
    a: NDArray[np.float64], b: NDArray[np.float64], beta: float, lot: float, k: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Gain of lot number ``k + 1``: ``f(k+1) - f(k) = a·L - b·L^(1+β)·((k+1)^(1+β) - k^(1+β))`` (USD).

    The difference of powers is computed as ``k^(1+β)·expm1((1+β)·log1p(1/k))`` to avoid cancellation.
    """
    q = 1.0 + beta
    kk = np.maximum(k, 0.0)
    diff = np.where(kk > 0, kk**q * np.expm1(q * np.log1p(1.0 / np.maximum(kk, 1.0))), 1.0)
    return a * lot - b * lot**q * diff


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

    ``start`` is any guess; the floored continuous optimum is within a lot or two of the answer per level.
    Up to ``_SMALL_N`` levels the certified local search runs on Python scalars (NumPy's per-call overhead
    dominates there); above, the vectorised window ranking is used.
    """
    lo = lo.astype(np.int64)
    hi = np.maximum(hi.astype(np.int64), lo)
    k = np.clip(start.astype(np.int64), lo, hi)
    if a.shape[0] <= _SMALL_N:
        # only levels with room to move take part; the others stay at their lower bound
        idx = np.flatnonzero(hi > lo)
        out = lo.copy()
        if idx.size:
            out[idx] = _local_search(
                a[idx].tolist(),
                b[idx].tolist(),
                1.0 + beta,
                lot,
                budget_lots - int(lo.sum()) + int(lo[idx].sum()),
                lo[idx].tolist(),
                hi[idx].tolist(),
                k[idx].tolist(),
            )
        return out
    span = int((hi - lo).max()) if hi.size else 0
    tol = _tol(a, lot)
    w = _WINDOW
    while True:
        base = np.maximum(k - w, lo)
        top = np.minimum(k + w, hi)
        rest = budget_lots - int(base.sum())
        if rest >= 0:
            width = int((top - base).max()) if top.size else 0
            if width > 0:
                offs = np.arange(width)
                kk = base[:, None] + offs[None, :]
                g = _gains(a[:, None], b[:, None], beta, lot, kk.astype(np.float64))
                g = np.where(kk < top[:, None], g, -np.inf).ravel()
                pos = np.flatnonzero(g > 0)
                if pos.size > rest:
                    pos = pos[np.argsort(-g[pos], kind="stable")[:rest]]
                counts = np.bincount(pos // width, minlength=a.shape[0])
                cand = base + counts
            else:
                cand = base.copy()
            if _certified(a, b, beta, lot, budget_lots, lo, hi, cand, tol):
                return cand
            k = cand
        if w >= span:
            return k  # the window covered every lot: the selection above was exhaustive
        w *= 4


def _tol(a: NDArray[np.float64], lot: float) -> float:
    """Absolute tolerance on lot gains (USD): 1e-12 of the largest linear gain of one lot."""
    return 1e-12 * (float(np.max(np.abs(a))) * lot if a.size else 0.0) + 1e-300


def _local_search(
    a: list[float],
    b: list[float],
    q: float,
    lot: float,
    budget: int,
    lo: list[int],
    hi: list[int],
    k: list[int],
) -> list[int]:
    """Certified local search on Python scalars: add the best lot, drop the worst, or move one, until none helps.

    Each step strictly improves the objective (or restores the budget), and the stopping rule is the
    optimality certificate of :func:`_certified`, so the result is the exact optimum.
    """
    n = len(a)
    lq = lot**q
    al = [x * lot for x in a]
    bl = [x * lq for x in b]
    tol = 1e-12 * max((abs(x) for x in al), default=0.0) + 1e-300
    expm1, log1p, inf = math.expm1, math.log1p, math.inf

    def gain(i: int, kk: int) -> float:
        # gain of lot kk + 1 at level i: a·L - b·L^q·((kk+1)^q - kk^q)
        d = kk**q * expm1(q * log1p(1.0 / kk)) if kk > 0 else 1.0
        return al[i] - bl[i] * d

    nxt = [gain(i, k[i]) if k[i] < hi[i] else -inf for i in range(n)]
    last = [gain(i, k[i] - 1) if k[i] > lo[i] else inf for i in range(n)]
    total = sum(k)
    for _ in range(8 * (n + 1) + 4 * max(total, budget) + 16):
        i_add = max(range(n), key=nxt.__getitem__)
        i_del = min(range(n), key=last.__getitem__)
        g_add, g_del = nxt[i_add], last[i_del]
        if total > budget or g_del < -tol:
            j, step = i_del, -1
        elif g_add > tol and total < budget:
            j, step = i_add, 1
        elif g_add > g_del + tol:
            # move one lot from the worst kept to the best next; both sides change
            k[i_del] -= 1
            kd = k[i_del]
            nxt[i_del] = gain(i_del, kd)
            last[i_del] = gain(i_del, kd - 1) if kd > lo[i_del] else inf
            j, step, total = i_add, 1, total - 1
        else:
            return k
        k[j] += step
        total += step
        kj = k[j]
        nxt[j] = gain(j, kj) if kj < hi[j] else -inf
        last[j] = gain(j, kj - 1) if kj > lo[j] else inf
    return k  # pragma: no cover - the bound above is far beyond any start within a few lots of the optimum


def _certified(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    beta: float,
    lot: float,
    budget_lots: int,
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    k: NDArray[np.int64],
    tol: float,
) -> bool:
    """No single add, removal or move between two levels improves ``k`` (hence ``k`` is optimal)."""
    kf = k.astype(np.float64)
    last = np.where(k > lo, _gains(a, b, beta, lot, kf - 1.0), np.inf)
    nxt = np.where(k < hi, _gains(a, b, beta, lot, kf), -np.inf)
    min_last = float(last.min()) if last.size else np.inf
    max_next = float(nxt.max()) if nxt.size else -np.inf
    if min_last < -tol or max_next > min_last + tol:
        return False
    return not (int(k.sum()) < budget_lots and max_next > tol)


def _to_lots(x: NDArray[np.float64] | float, lot: float) -> NDArray[np.int64]:
    """Coins -> whole lots rounded down, after rounding to 1e-6 lot (the projection's rule)."""
    return np.floor(np.round(np.asarray(x, dtype=np.float64) / lot, 6)).astype(np.int64)


def _to_coins(lots: NDArray[np.int64], lot: float) -> NDArray[np.float64]:
    """Whole lots -> coins, exact decimal floats when the lot is ``10^-d``."""
    inv = round(1.0 / lot)
    if inv >= 1 and abs(inv * lot - 1.0) < 1e-12:
        return lots.astype(np.float64) / inv
    return lots.astype(np.float64) * lot


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
        return DiscreteSolution(k, _to_coins(k, lot), float("nan"), 0, 0)

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

    best = zero
    best_val = 0.0
    search = viol if viol.size <= max_search_levels else viol[:0]
    for choice in itertools.product((False, True), repeat=search.size):
        raise_idx = search[np.array(choice, dtype=bool)] if search.size else search
        lo = zero.copy()
        lo[raise_idx] = m[raise_idx]
        hi = hi0.copy()
        hi[np.setdiff1d(viol, raise_idx)] = 0
        cand = resolve(lo, hi, np.where(hi > 0, np.maximum(k, lo), 0))
        if cand is not None:
            v = value(cand)
            if v > best_val:
                best, best_val = cand, v
    raised = int(np.count_nonzero((best >= m) & (k < m) & (k > 0)))
    dropped = int(np.count_nonzero((best == 0) & (k > 0)))
    return DiscreteSolution(best, _to_coins(best, lot), best_val, dropped, raised)


__all__ = ["DiscreteSolution", "discrete_allocation", "lot_optimum"]
