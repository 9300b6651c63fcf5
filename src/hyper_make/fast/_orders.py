"""The order diff, the worst-case fit and the last look as compiled kernels: one refresh's plan, arrays in and out.

:func:`plan_refresh` does in one call what the Python refresh core does after the ladder is built:
:func:`~hyper_make.strategy.orders.plan_orders` (requote thresholds, the assignment, the position guard, new ids),
``Quoter._fit`` (additions that could take the worst case past the limit deferred) and ``Quoter.last_look``
(:func:`~hyper_make.strategy.orders.crossing_cloids` + :func:`~hyper_make.strategy.orders.demote`);
:func:`release_plan` is ``Quoter.release``. They give the same plan as the Python code on every input: the same
kept, cancelled, modified and placed orders, prices, sizes, reduce-only flags, levels and new ids, and every list in
the same order (``tests/fast/test_orders_kernel.py`` checks it against the Python on random refreshes). The Python
stays the reference; these let a compiled loop refresh without a Python object per order.

:func:`lsap` is SciPy's ``linear_sum_assignment`` (Crouse 2016's shortest augmenting path as SciPy implements it in
``scipy/optimize/rectangular_lsap/rectangular_lsap.cpp``: the transpose of a tall matrix, the reversed column scan,
ties broken towards an unassigned column), so that the assignment, ties included, is the reference's.

Conventions: side index 0 = bid, 1 = ask; an order id is the counter of a
:class:`~hyper_make.strategy.orders.CloidFactory` cloid (``int(cloid[18:], 16)``), an int64 below 2^53 (the output
rows hold it as a float64, exact below 2^53); every resting order carries an id of the one factory (the Python's
``skip_past`` and its cancels by cloid then read the same). Prices in USD, sizes in coins. Output rows (float64):

* ``out_mod`` (one modify a row): :data:`M_TARGET` (index of the modified order in the resting arrays), :data:`M_ID`
  (its new id), :data:`M_SIDE`, :data:`M_PRICE` (USD), :data:`M_SIZE` (coins), :data:`M_RO` (reduce-only, 0/1),
  :data:`M_LEVEL` (the ladder level);
* ``out_place`` and ``out_def`` (a new order a row; ``out_def`` the additions ``_fit`` deferred to the release):
  :data:`P_ID`, :data:`P_SIDE`, :data:`P_PRICE` (USD), :data:`P_SIZE` (coins), :data:`P_RO` (0/1), :data:`P_LEVEL`;
* ``out_kept`` and ``out_cancel`` (int64): indices into the resting arrays, in the plan's order.

:func:`new_outputs` allocates arrays large enough for any plan of a given size. :func:`plan_refresh_objects` and
:func:`release_objects` run the kernels on a ladder and a :class:`~hyper_make.strategy.venue.VenueView` and return the
Python refresh core's objects (the same :class:`~hyper_make.strategy.orders.OrderPlan`, batches and reasons included,
and the same deferred orders), for a loop that drives a Python venue.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import NDArray

from .._validate import check_real
from ..errors import InvalidParameterError
from ..ladder import Ladder
from ..strategy.orders import (
    Cancel,
    CloidFactory,
    Modify,
    OrderManagerConfig,
    OrderPlan,
    Place,
    RestingOrder,
    _costs,
    _keepable,
    assemble_plan,
    side_limit_coins,
)
from ..strategy.venue import VenueView

SIDES = ("bid", "ask")

#: Tolerance (coins, relative) of the position guard and the worst-case fit, as in the Python refresh core.
_EPS = 1e-9
#: Ids are written to float64 output rows: exact below 2^53.
MAX_ID = 2**53

# columns of out_mod
M_TARGET, M_ID, M_SIDE, M_PRICE, M_SIZE, M_RO, M_LEVEL = range(7)
N_MOD_COLS = 7
# columns of out_place / out_def / release_plan's out_place
P_ID, P_SIDE, P_PRICE, P_SIZE, P_RO, P_LEVEL = range(6)
N_PLACE_COLS = 6


def new_outputs(
    n_resting: int, n_desired: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``(out_kept, out_cancel, out_mod, out_place, out_def)`` for :func:`plan_refresh` with at most ``n_resting``
    resting orders and ``n_desired`` desired orders (both sides): every plan fits (each resting order is kept,
    cancelled or modified once; each desired order is kept, modified, placed or deferred once)."""
    n_r, n_d = max(int(n_resting), 0), max(int(n_desired), 0)
    return (
        np.empty(n_r, np.int64),
        np.empty(n_r, np.int64),
        np.empty((min(n_r, n_d), N_MOD_COLS)),
        np.empty((n_d, N_PLACE_COLS)),
        np.empty((n_d, N_PLACE_COLS)),
    )


# ---- the assignment ---------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def lsap(cost):  # type: ignore[no-untyped-def]
    """The minimum-cost assignment of a rectangular cost matrix: ``scipy.optimize.linear_sum_assignment(cost)``.

    Minimises ``Σ_k cost[rows[k], cols[k]]`` over ``min(n, m)`` pairs with distinct rows and distinct columns; returns
    ``(rows, cols)`` (int64) with ``rows`` ascending, the same pairs as SciPy's on every input (ties included: the
    same shortest augmenting path, the same scan order, the same tie rule, the same float operations in the same
    order). Raises ``ValueError`` on a NaN or ``-inf`` entry, or when no finite assignment exists (SciPy's errors).
    """
    nr, nc = cost.shape
    k = min(nr, nc)
    rows = np.empty(k, np.int64)
    cols = np.empty(k, np.int64)
    if k == 0:
        return rows, cols
    # a tall matrix is solved transposed (rows must not outnumber columns), as SciPy does
    transpose = nc < nr
    if transpose:
        c = np.ascontiguousarray(cost.T)
        nr, nc = nc, nr
    else:
        c = np.ascontiguousarray(cost)
    for i in range(nr):
        for j in range(nc):
            x = c[i, j]
            if x != x or x == -np.inf:
                raise ValueError("lsap: the cost matrix contains invalid numeric entries (NaN or -inf)")
    fw = np.zeros(nr + 2 * nc)  # one block per type: the duals and the path costs
    u = fw[:nr]
    v = fw[nr : nr + nc]
    spc = fw[nr + nc :]  # shortest path costs
    iw = np.full(nr + 3 * nc, -1, np.int64)
    path = iw[:nc]
    col4row = iw[nc : nc + nr]
    row4col = iw[nc + nr : 2 * nc + nr]
    remaining = iw[2 * nc + nr :]
    bw = np.zeros(nr + nc, np.bool_)
    sr = bw[:nr]
    sc = bw[nr:]
    for cur in range(nr):
        # the shortest augmenting path from row `cur`
        min_val = 0.0
        num_remaining = nc
        for it in range(nc):
            # reversed, as SciPy fills it: a constant matrix then gives the identity
            remaining[it] = nc - it - 1
        sr[:] = False
        sc[:] = False
        spc[:] = np.inf
        sink = -1
        i = cur
        while sink == -1:
            index = -1
            lowest = np.inf
            sr[i] = True
            for it in range(num_remaining):
                j = remaining[it]
                r = min_val + c[i, j] - u[i] - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                # among equal costs prefer a column that ends the path (SciPy's rule for integer costs)
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if min_val == np.inf:
                raise ValueError("lsap: the cost matrix is infeasible")
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            num_remaining -= 1
            remaining[index] = remaining[num_remaining]
        # the dual variables
        u[cur] += min_val
        for i in range(nr):
            if sr[i] and i != cur:
                u[i] += min_val - spc[col4row[i]]
        for j in range(nc):
            if sc[j]:
                v[j] -= min_val - spc[j]
        # augment along the path
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            t = col4row[i]
            col4row[i] = j
            j = t
            if i == cur:
                break
    if transpose:
        # the original rows are the solved columns; SciPy sorts them (distinct: any sort gives this order)
        order = np.argsort(col4row)
        for t in range(nr):
            rows[t] = col4row[order[t]]
            cols[t] = order[t]
    else:
        for t in range(nr):
            rows[t] = t
            cols[t] = col4row[t]
    return rows, cols


# ---- helpers ----------------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def _stable_order(keys, n):  # type: ignore[no-untyped-def]
    """Indices ``0..n-1`` sorted by ``keys[:n]`` ascending, equal keys in their order (Python's ``sorted``; an
    insertion sort: the lists are a ladder long)."""
    idx = np.empty(n, np.int64)
    for a in range(n):
        idx[a] = a
        b = a
        while b > 0 and keys[idx[b - 1]] > keys[a]:
            idx[b] = idx[b - 1]
            b -= 1
        idx[b] = a
    return idx


@nb.njit(cache=True)
def _side_limits(inventory, max_position):  # type: ignore[no-untyped-def]
    """``side_limit_coins`` of both sides (coins): bids ``max - q``, asks ``max + q``."""
    return max_position - inventory, max_position + inventory


@nb.njit(cache=True)
def _crossing_limits(u_side, u_px, best_bid, best_ask, margin_frac):  # type: ignore[no-untyped-def]
    """``crossing_cloids``' limits (USD): a bid at or above ``ask_limit`` and an ask at or below ``bid_limit`` may
    cross; our unseen orders count as part of the book."""
    bid_limit = best_bid * (1.0 + margin_frac)
    ask_limit = best_ask * (1.0 - margin_frac)
    for t in range(u_side.shape[0]):
        # Python's max/min keep the first of equal values: replace only on a strict improvement
        if u_side[t] == 0:
            if u_px[t] > bid_limit:
                bid_limit = u_px[t]
        elif u_px[t] < ask_limit:
            ask_limit = u_px[t]
    return bid_limit, ask_limit


@nb.njit(cache=True)
def _crosses(side, price, bid_limit, ask_limit):  # type: ignore[no-untyped-def]
    return price >= ask_limit if side == 0 else price <= bid_limit


@nb.njit(cache=True, inline="always")
def _worst_from_pending(inventory, p_side, p_sz):  # type: ignore[no-untyped-def]
    """The worst-case positions (coins, each on its side's sign: bid ``q``, ask ``-q``) with every pending order
    filled, summed in the view's order as ``Quoter._worst_base`` does; the caller adds the resting ones."""
    w0 = inventory
    w1 = -inventory
    for t in range(p_side.shape[0]):
        if p_side[t] == 0:
            w0 += p_sz[t]
        else:
            w1 += p_sz[t]
    return w0, w1


@nb.njit(cache=True, inline="always")
def _order_row(row, oid, side, price, size, ro, level):  # type: ignore[no-untyped-def]
    """A new order into ``row`` (place-row layout: id, side, price USD, size coins, reduce-only, level)."""
    row[P_ID] = oid
    row[P_SIDE] = side
    row[P_PRICE] = price
    row[P_SIZE] = size
    row[P_RO] = ro
    row[P_LEVEL] = level


@nb.njit(cache=True)
def _drop_crossing(rows, n, bid_limit, ask_limit):  # type: ignore[no-untyped-def]
    """The new orders ``rows[:n]`` (place rows) that do not cross, moved to the front in order; their count."""
    kept = 0
    for t in range(n):
        if not _crosses(rows[t, P_SIDE], rows[t, P_PRICE], bid_limit, ask_limit):
            if kept != t:
                rows[kept, :N_PLACE_COLS] = rows[t, :N_PLACE_COLS]
            kept += 1
    return kept


@nb.njit(cache=True, inline="always")
def _sole_keeps(rp, rs, rro, d_px, d_sz, s, m, flags, thr_bps, thr_frac, rows, cols, col_seen):  # type: ignore[no-untyped-def]
    """The assignment without a solve, when it is forced: ``k`` (rows, cols written, rows ascending) if the keepable
    pairs of side ``s`` form a matching of ``k = min(n, m)`` pairs (each resting and each desired order in at most
    one), else ``-1``.

    Then the matching is the one optimum of :func:`_costs`' matrix: it costs ``< k·eps < 1/2`` and every other
    assignment holds a pair that is not keepable, which costs ``>= 1``. :func:`lsap` would return it; this skips
    the matrix and the solve in the common refresh where every resting order stays.
    """
    n = rp.shape[0]
    col_seen[:m] = False
    k = 0
    for i in range(n):
        c = -1
        for j in range(m):
            if _keepable(rp[i], rs[i], rro[i], d_px[s, j], d_sz[s, j], flags[j], thr_bps, thr_frac)[0]:
                if c >= 0 or col_seen[j]:
                    return -1
                c = j
                col_seen[j] = True
        if c >= 0:
            rows[k] = i
            cols[k] = c
            k += 1
    return k if k == min(n, m) else -1


@nb.njit(cache=True)
def _check_view(r_id, r_side, r_px, r_sz, p_side, u_side, max_position):  # type: ignore[no-untyped-def]
    """The view's values (the lengths are :func:`plan_refresh`'s own check)."""
    for t in range(r_id.shape[0]):
        if r_side[t] != 0 and r_side[t] != 1:
            raise ValueError("plan_refresh: r_side must be 0 (bid) or 1 (ask)")
        if r_id[t] < 0 or r_id[t] >= MAX_ID:
            raise ValueError("plan_refresh: r_id must be in [0, 2^53)")
        if not (0.0 < r_px[t] < np.inf and 0.0 < r_sz[t] < np.inf):
            raise ValueError("plan_refresh: resting prices (USD) and sizes (coins) must be finite and > 0")
    for t in range(p_side.shape[0]):
        if p_side[t] != 0 and p_side[t] != 1:
            raise ValueError("plan_refresh: p_side must be 0 (bid) or 1 (ask)")
    for t in range(u_side.shape[0]):
        if u_side[t] != 0 and u_side[t] != 1:
            raise ValueError("plan_refresh: u_side must be 0 (bid) or 1 (ask)")
    if not (max_position > 0.0 and math.isfinite(max_position)):
        raise ValueError("plan_refresh: max_position must be finite and > 0 coins")


# ---- one refresh ------------------------------------------------------------------------------------------------


@nb.njit(cache=True)
def plan_refresh(  # type: ignore[no-untyped-def]
    d_px,
    d_sz,
    d_lv,
    n_d,
    r_id,
    r_side,
    r_px,
    r_sz,
    r_ro,
    p_side,
    p_sz,
    u_side,
    u_px,
    inventory,
    max_position,
    thr_bps,
    thr_frac,
    reduce_only,
    has_book,
    best_bid,
    best_ask,
    margin_frac,
    next_id,
    out_kept,
    out_cancel,
    out_mod,
    out_place,
    out_def,
    checked=True,
):
    """One refresh's plan: ``plan_orders`` then ``Quoter._fit`` then ``Quoter.last_look``, as arrays.

    Parameters
    ----------
    d_px, d_sz, d_lv : (2, nd) float64 USD, float64 coins, int64 — the desired orders per side (0 bid, 1 ask), best
        first (bids by descending price, asks ascending), with their ladder levels; sizes ``> 0``. Ids, sides,
        levels and the reduce-only flags may also come as float64 columns of whole numbers (a compiled loop's view
        rows, read without a copy).
    n_d : (2,) int64 — desired orders per side (the first ``n_d[s]`` columns of row ``s``).
    r_id, r_side, r_px, r_sz, r_ro : (n_r,) int64, int64, float64 USD, float64 coins, bool — our resting orders in
        the view's order (``view.resting``): id (cloid counter, distinct), side, price, size, reduce-only.
    p_side, p_sz : (n_p,) int64, float64 coins — the pending orders (``view.pending``: being cancelled, may still
        fill), counted in the worst case.
    u_side, u_px : (n_u,) int64, float64 USD — our unseen orders (``view.unseen``), part of the book for the last look.
    inventory, max_position : float — the position ``q`` (coins, + long) and the limit (coins, ``> 0``).
    thr_bps, thr_frac, reduce_only : ``OrderManagerConfig.requote_price_bps`` (bps), ``requote_size_frac``
        (fraction of the desired size) and ``reduce_only``.
    has_book, best_bid, best_ask, margin_frac : whether the view has a two-sided book (else nothing is flagged), its
        best bid and ask (USD) and the last look's margin (fraction of price: ``alo_guard_sigmas·σ·√τ``).
    next_id : int — the cloid factory's counter before the plan.
    out_kept, out_cancel, out_mod, out_place, out_def : the outputs (module docstring; :func:`new_outputs`).
    checked : validate the desired orders and the view (``False``: a compiled loop's own arrays, valid by
        construction; the shapes of the outputs are checked either way).

    Returns
    -------
    ``(n_kept, n_cancel, n_mod, n_place, n_def, n_crossing, next_id, stopped_bid, stopped_ask)``: the rows written
    to each output; how many new prices the last look dropped; the factory's counter after the plan; whether each
    side was not quoted because its desired total passed ``side_limit_coins`` (every resting order of it cancelled).
    """
    nd_cap = d_px.shape[1]
    if d_px.shape[0] != 2 or d_sz.shape[0] != 2 or d_lv.shape[0] != 2 or n_d.shape[0] != 2:
        raise ValueError("plan_refresh: d_px, d_sz, d_lv must have 2 rows (bid, ask) and n_d 2 counts")
    if d_sz.shape[1] != nd_cap or d_lv.shape[1] != nd_cap:
        raise ValueError("plan_refresh: d_px, d_sz and d_lv must have the same shape")
    for s in range(2):
        if n_d[s] < 0 or n_d[s] > nd_cap:
            raise ValueError("plan_refresh: n_d[s] must be in [0, d_px.shape[1]]")
    n_r = r_id.shape[0]
    if r_side.shape[0] != n_r or r_px.shape[0] != n_r or r_sz.shape[0] != n_r or r_ro.shape[0] != n_r:
        raise ValueError("plan_refresh: r_id, r_side, r_px, r_sz and r_ro must have the same length")
    if p_side.shape[0] != p_sz.shape[0]:
        raise ValueError("plan_refresh: p_side and p_sz must have the same length")
    if u_side.shape[0] != u_px.shape[0]:
        raise ValueError("plan_refresh: u_side and u_px must have the same length")
    if checked:
        for s in range(2):
            for j in range(n_d[s]):
                if not (0.0 < d_px[s, j] < np.inf and 0.0 < d_sz[s, j] < np.inf):
                    raise ValueError("plan_refresh: desired prices (USD) and sizes (coins) must be finite and > 0")
        _check_view(r_id, r_side, r_px, r_sz, p_side, u_side, max_position)
        if not math.isfinite(inventory):
            raise ValueError("plan_refresh: inventory must be finite (coins)")
        if not (0.0 <= thr_bps <= 1000.0 and 0.0 <= thr_frac < 1.0):
            raise ValueError("plan_refresh: thr_bps must be in [0, 1000] bps and thr_frac in [0, 1)")
        if has_book and not (math.isfinite(best_bid) and math.isfinite(best_ask) and math.isfinite(margin_frac)):
            raise ValueError("plan_refresh: best_bid, best_ask (USD) and margin_frac must be finite with a book")
    n_des = n_d[0] + n_d[1]
    if out_kept.shape[0] < n_r or out_cancel.shape[0] < n_r:
        raise ValueError("plan_refresh: out_kept and out_cancel need a row per resting order")
    if out_mod.shape[0] < min(n_r, n_des) or out_mod.shape[1] < N_MOD_COLS:
        raise ValueError("plan_refresh: out_mod needs min(n_resting, n_desired) rows of 7 columns")
    if out_place.shape[0] < n_des or out_def.shape[0] < n_des:
        raise ValueError("plan_refresh: out_place and out_def need a row per desired order")
    if out_place.shape[1] < N_PLACE_COLS or out_def.shape[1] < N_PLACE_COLS:
        raise ValueError("plan_refresh: out_place and out_def need 6 columns")
    if next_id < 0:
        raise ValueError("plan_refresh: next_id must be >= 0")

    # cloids.skip_past: never hand out an id that is still resting
    for t in range(n_r):
        if int(r_id[t]) + 1 > next_id:
            next_id = int(r_id[t]) + 1
    if next_id + n_des > MAX_ID:
        raise ValueError("plan_refresh: ids must stay below 2^53 (they are written to float64 rows)")

    n_kept = 0
    n_cancel = 0
    n_mod = 0
    n_place = 0
    # the sides' scratch, one block per type (an allocation costs as much as a few pairs' arithmetic)
    ib = np.empty(3 * n_r + nd_cap, np.int64)
    bb = np.zeros(3 * nd_cap + 4 * n_r + 2, np.bool_)
    fb = np.empty(3 * n_r)
    stopped = bb[:2]
    lim_bid, lim_ask = _side_limits(inventory, max_position)
    idx = ib[:n_r]  # the side's resting orders (indices), in the view's order
    col_seen = bb[2 * nd_cap + 4 * n_r + 2 :]
    for s in range(2):
        m = n_d[s]
        limit = lim_bid if s == 0 else lim_ask
        n = 0
        for t in range(n_r):
            if r_side[t] == s:
                idx[n] = t
                n += 1
        total = 0.0
        for j in range(m):
            total += d_sz[s, j]
        if total > limit * (1 + _EPS) + _EPS:
            # the desired ladder itself breaches the limit (a stale inventory): the side is not quoted
            stopped[s] = True
            for a in range(n):
                out_cancel[n_cancel] = idx[a]
                n_cancel += 1
            continue
        # reduce_only_flags: asks when long, bids when short, from the best price while within |q|
        flags = bb[2 : 2 + m]
        flags[:] = False
        if reduce_only:
            reducing = inventory > 0 if s == 1 else inventory < 0
            room = abs(inventory) if reducing else 0.0
            cum = 0.0
            for j in range(m):
                cum += d_sz[s, j]
                flags[j] = reducing and cum <= room * (1 + _EPS) + _EPS
        # _diff_side: the assignment, in desired order (pair_r[j] the resting order assigned to desired j, or -1)
        pair_r = ib[n_r : n_r + m]
        pair_r[:] = -1
        used_r = bb[2 + nd_cap : 2 + nd_cap + n]
        used_r[:] = False
        kept_r = bb[2 + nd_cap + n_r : 2 + nd_cap + n_r + n]  # position in the side's list -> kept
        kept_r[:] = False
        if n > 0 and m > 0:
            rp = fb[:n]
            rs = fb[n_r : n_r + n]
            rro = bb[2 + nd_cap + 2 * n_r : 2 + nd_cap + 2 * n_r + n]
            for a in range(n):
                rp[a] = r_px[idx[a]]
                rs[a] = r_sz[idx[a]]
                rro[a] = r_ro[idx[a]] != 0
            keep_i = ib[n_r + nd_cap : 2 * n_r + nd_cap]  # the kept pairs in row order
            keep_j = ib[2 * n_r + nd_cap : 3 * n_r + nd_cap]
            nk = _sole_keeps(rp, rs, rro, d_px, d_sz, s, m, flags, thr_bps, thr_frac, keep_i, keep_j, col_seen)
            if nk >= 0:
                for t in range(nk):
                    pair_r[keep_j[t]] = keep_i[t]
                    used_r[keep_i[t]] = True
            else:
                dp = np.ascontiguousarray(d_px[s, :m])
                ds = np.ascontiguousarray(d_sz[s, :m])
                cost, ok = _costs(rp, rs, rro, dp, ds, flags, thr_bps, thr_frac)
                rows, cols = lsap(cost)
                nk = 0
                for t in range(rows.shape[0]):
                    i, j = rows[t], cols[t]
                    pair_r[j] = i
                    used_r[i] = True
                    if ok[i, j]:
                        keep_i[nk] = i
                        keep_j[nk] = j
                        nk += 1
            if nk > 0:
                # position guard: kept orders larger than their target may push the side past its limit; re-size
                # the largest excesses first until the side fits (Python sums in the same order)
                kept_d = bb[2 + nd_cap + 4 * n_r : 2 + nd_cap + 4 * n_r + m]
                kept_d[:] = False
                for t in range(nk):
                    kept_d[keep_j[t]] = True
                s1 = 0.0
                for t in range(nk):
                    s1 += rs[keep_i[t]]
                s2 = 0.0
                for j in range(m):
                    if not kept_d[j]:
                        s2 += d_sz[s, j]
                final_total = s1 + s2
                cap = limit * (1 + _EPS) + _EPS
                alive = bb[2 + nd_cap + 3 * n_r : 2 + nd_cap + 3 * n_r + nk]
                alive[:] = True
                if final_total > cap:
                    keys = fb[2 * n_r : 2 * n_r + nk]
                    for t in range(nk):
                        keys[t] = d_sz[s, keep_j[t]] - rs[keep_i[t]]
                    order = _stable_order(keys, nk)
                    for o in range(nk):
                        t = order[o]
                        i, j = keep_i[t], keep_j[t]
                        if rs[i] <= d_sz[s, j]:
                            break
                        alive[t] = False
                        final_total -= rs[i] - d_sz[s, j]
                        if final_total <= cap:
                            break
                for t in range(nk):
                    if alive[t]:
                        kept_r[keep_i[t]] = True
                        out_kept[n_kept] = idx[keep_i[t]]
                        n_kept += 1
        # modifies in desired order, then cancels in resting order, then places in desired order
        for j in range(m):
            i = pair_r[j]
            if i >= 0 and not kept_r[i]:
                out_mod[n_mod, M_TARGET] = idx[i]
                _order_row(out_mod[n_mod, M_ID:], next_id, s, d_px[s, j], d_sz[s, j], flags[j], d_lv[s, j])
                next_id += 1
                n_mod += 1
        for a in range(n):
            if not used_r[a]:
                out_cancel[n_cancel] = idx[a]
                n_cancel += 1
        for j in range(m):
            if pair_r[j] < 0:
                _order_row(out_place[n_place], next_id, s, d_px[s, j], d_sz[s, j], flags[j], d_lv[s, j])
                next_id += 1
                n_place += 1

    # _fit: the worst case counts the pending, kept, cancelled and replaced orders as live
    lim = max_position * (1 + _EPS) + _EPS
    w0, w1 = _worst_from_pending(inventory, p_side, p_sz)
    for t in range(n_kept):
        if r_side[out_kept[t]] == 0:
            w0 += r_sz[out_kept[t]]
        else:
            w1 += r_sz[out_kept[t]]
    for t in range(n_cancel):
        if r_side[out_cancel[t]] == 0:
            w0 += r_sz[out_cancel[t]]
        else:
            w1 += r_sz[out_cancel[t]]
    for t in range(n_mod):
        ti = np.int64(out_mod[t, M_TARGET])
        if r_side[ti] == 0:
            w0 += r_sz[ti]
        else:
            w1 += r_sz[ti]
    t0, t1 = w0, w1
    for t in range(n_place):
        if out_place[t, P_SIDE] == 0:
            t0 += out_place[t, P_SIZE]
        else:
            t1 += out_place[t, P_SIZE]
    for t in range(n_mod):
        if out_mod[t, M_SIDE] == 0:
            t0 += out_mod[t, M_SIZE]
        else:
            t1 += out_mod[t, M_SIZE]
    n_def = 0
    if not (t0 <= lim and t1 <= lim):
        # additions by level (a stable sort of the places, then the modifies), kept while they fit
        n_add = n_place + n_mod
        levels = np.empty(n_add)
        for t in range(n_place):
            levels[t] = out_place[t, P_LEVEL]
        for t in range(n_mod):
            levels[n_place + t] = out_mod[t, M_LEVEL]
        order = _stable_order(levels, n_add)
        places0 = out_place[:n_place].copy()
        mods0 = out_mod[:n_mod].copy()
        n_place2 = 0
        n_mod2 = 0
        for o in range(n_add):
            a = order[o]
            is_place = a < n_place
            row = places0[a] if is_place else mods0[a - n_place]
            side = row[P_SIDE] if is_place else row[M_SIDE]
            size = row[P_SIZE] if is_place else row[M_SIZE]
            w = w0 if side == 0 else w1
            if w + size <= lim:
                if side == 0:
                    w0 += size
                else:
                    w1 += size
                if is_place:
                    out_place[n_place2, :N_PLACE_COLS] = row[:N_PLACE_COLS]
                    n_place2 += 1
                else:
                    out_mod[n_mod2, :N_MOD_COLS] = row[:N_MOD_COLS]
                    n_mod2 += 1
            elif is_place:
                out_def[n_def, :N_PLACE_COLS] = row[:N_PLACE_COLS]
                n_def += 1
            else:
                # a deferred replacement: its order is cancelled now, the new one placed (same id) by the release
                out_cancel[n_cancel] = np.int64(row[M_TARGET])
                n_cancel += 1
                out_def[n_def, P_ID] = row[M_ID]
                out_def[n_def, P_SIDE] = row[M_SIDE]
                out_def[n_def, P_PRICE] = row[M_PRICE]
                out_def[n_def, P_SIZE] = row[M_SIZE]
                out_def[n_def, P_RO] = row[M_RO]
                out_def[n_def, P_LEVEL] = row[M_LEVEL]
                n_def += 1
        n_place = n_place2
        n_mod = n_mod2

    # last look: crossing new prices dropped (places), or turned into cancels of their target (modifies)
    n_cross = 0
    if has_book:
        bid_limit, ask_limit = _crossing_limits(u_side, u_px, best_bid, best_ask, margin_frac)
        n_place2 = _drop_crossing(out_place, n_place, bid_limit, ask_limit)
        n_cross = n_place - n_place2
        n_mod2 = 0
        for t in range(n_mod):
            if _crosses(out_mod[t, M_SIDE], out_mod[t, M_PRICE], bid_limit, ask_limit):
                n_cross += 1
                out_cancel[n_cancel] = np.int64(out_mod[t, M_TARGET])
                n_cancel += 1
            else:
                if n_mod2 != t:
                    out_mod[n_mod2, :N_MOD_COLS] = out_mod[t, :N_MOD_COLS]
                n_mod2 += 1
        n_place = n_place2
        n_mod = n_mod2
    return n_kept, n_cancel, n_mod, n_place, n_def, n_cross, next_id, stopped[0], stopped[1]


@nb.njit(cache=True)
def release_plan(  # type: ignore[no-untyped-def]
    def_rows,
    n_def,
    r_side,
    r_sz,
    p_side,
    p_sz,
    u_side,
    u_px,
    inventory,
    max_position,
    has_book,
    best_bid,
    best_ask,
    margin_frac,
    out_place,
):
    """``Quoter.release``: the deferred additions that fit the worst case now, minus those the last look drops.

    The worst case per side (coins) is the position plus every pending and resting order of the side (as if all
    filled); each deferred row (``def_rows[:n_def]``, :func:`plan_refresh`'s ``out_def``) is kept, in order, while
    ``worst + size <= max_position·(1 + 1e-9) + 1e-9``; then a kept bid at or above the ask limit and a kept ask at or
    below the bid limit (``crossing_cloids`` with ``margin_frac`` and the unseen orders; nothing without a book) are
    dropped. ``r_side``/``r_sz`` (int64 side, float64 coins) are the view's resting orders, ``p_side``/``p_sz`` its
    pending ones, ``u_side``/``u_px`` (USD) its unseen ones; ``inventory`` and ``max_position`` in coins, the book in
    USD. Writes the new orders to ``out_place`` (rows as ``out_def``) and returns ``(n_place, n_crossing)``.
    """
    if r_side.shape[0] != r_sz.shape[0] or p_side.shape[0] != p_sz.shape[0] or u_side.shape[0] != u_px.shape[0]:
        raise ValueError("release_plan: the side and size (or price) arrays of an order group must have one length")
    if n_def < 0 or n_def > def_rows.shape[0] or out_place.shape[0] < n_def:
        raise ValueError("release_plan: n_def must be in [0, def_rows.shape[0]] and out_place needs n_def rows")
    if def_rows.shape[1] < N_PLACE_COLS or out_place.shape[1] < N_PLACE_COLS:
        raise ValueError("release_plan: def_rows and out_place need 6 columns")
    for t in range(r_side.shape[0]):
        if r_side[t] != 0 and r_side[t] != 1:
            raise ValueError("release_plan: r_side must be 0 (bid) or 1 (ask)")
    for t in range(p_side.shape[0]):
        if p_side[t] != 0 and p_side[t] != 1:
            raise ValueError("release_plan: p_side must be 0 (bid) or 1 (ask)")
    for t in range(u_side.shape[0]):
        if u_side[t] != 0 and u_side[t] != 1:
            raise ValueError("release_plan: u_side must be 0 (bid) or 1 (ask)")
    if not (max_position > 0.0 and math.isfinite(max_position) and math.isfinite(inventory)):
        raise ValueError("release_plan: max_position must be finite and > 0 coins, inventory finite (coins)")
    lim = max_position * (1 + _EPS) + _EPS
    w0, w1 = _worst_from_pending(inventory, p_side, p_sz)
    for t in range(r_side.shape[0]):
        if r_side[t] == 0:
            w0 += r_sz[t]
        else:
            w1 += r_sz[t]
    n_place = 0
    for t in range(n_def):
        side = def_rows[t, P_SIDE]
        size = def_rows[t, P_SIZE]
        w = w0 if side == 0 else w1
        if w + size <= lim:
            if side == 0:
                w0 += size
            else:
                w1 += size
            out_place[n_place, :N_PLACE_COLS] = def_rows[t, :N_PLACE_COLS]
            n_place += 1
    n_cross = 0
    if has_book:
        bid_limit, ask_limit = _crossing_limits(u_side, u_px, best_bid, best_ask, margin_frac)
        n2 = _drop_crossing(out_place, n_place, bid_limit, ask_limit)
        n_cross = n_place - n2
        n_place = n2
    return n_place, n_cross


# ---- the same plan as the Python objects (for a loop that drives a Python venue) ---------------------------------


def _desired_arrays(
    desired: Any,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """``d_px, d_sz, d_lv, n_d`` of a fast build or a :class:`~hyper_make.ladder.Ladder` (each side best first)."""
    if getattr(desired, "is_fast_build", False):
        sides = [(desired.prices(s), desired.sizes(s), desired.levels(s)) for s in ("bid", "ask")]
    elif isinstance(desired, Ladder):
        sides = [
            (np.array([o.price for o in os], np.float64), np.array([o.size for o in os], np.float64),
             np.array([o.level for o in os], np.int64))
            for os in (desired.bids, desired.asks)
        ]  # fmt: skip
    else:
        raise InvalidParameterError(
            f"'desired' must be a Ladder or a fast-path build (FastBuild); got {type(desired).__name__}"
        )
    nd = max(sides[0][0].shape[0], sides[1][0].shape[0], 1)
    d_px, d_sz, d_lv = np.zeros((2, nd)), np.zeros((2, nd)), np.zeros((2, nd), np.int64)
    n_d = np.zeros(2, np.int64)
    for s, (px, sz, lv) in enumerate(sides):
        n = px.shape[0]
        d_px[s, :n], d_sz[s, :n], d_lv[s, :n] = px, sz, lv
        n_d[s] = n
    return d_px, d_sz, d_lv, n_d


def _orders_arrays(orders: tuple[RestingOrder, ...]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Side indices and sizes (coins) of ``orders``."""
    return (
        np.array([o.side == "ask" for o in orders], np.int64),
        np.array([o.size for o in orders], np.float64),
    )


def _book_args(view: VenueView) -> tuple[bool, float, float]:
    book = view.book
    if book is None or not book.is_two_sided:
        return False, 0.0, 0.0
    return True, float(book.best_bid_usd), float(book.best_ask_usd)


def _unseen_arrays(view: VenueView) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    u = view.unseen
    return np.array([o.side == "ask" for o in u], np.int64), np.array([o.price for o in u], np.float64)


def _place_of(row: list[float], cloid: str) -> Place:
    """The :class:`Place` of one output row (a list of Python floats: numpy's scalar indexing costs ~0.1 µs a field)."""
    return Place(cloid, SIDES[int(row[P_SIDE])], row[P_PRICE], row[P_SIZE], bool(row[P_RO]), int(row[P_LEVEL]))


def plan_refresh_objects(
    desired: Any,
    view: VenueView,
    *,
    cloids: CloidFactory,
    max_position_coins: float,
    config: OrderManagerConfig,
    margin_frac: float,
) -> tuple[OrderPlan, tuple[Place, ...], int]:
    """``plan_orders(desired, view.resting, ...)`` then ``Quoter._fit`` then ``Quoter.last_look`` through
    :func:`plan_refresh`: ``(plan, deferred, crossing_skipped)``, the same objects as the Python refresh core's.

    ``desired`` is the refresh's :class:`~hyper_make.ladder.Ladder` or fast build; ``view`` the venue's view (its
    resting orders must carry cloids of ``cloids``, which issues the new ids and is advanced as ``plan_orders``
    would); ``max_position_coins`` the limit (coins, ``> 0``); ``config`` the order manager's thresholds;
    ``margin_frac`` the last look's margin (fraction of price, ``Quoter.crossing``'s ``alo_guard_sigmas·σ·√τ``).
    """
    check_real("inventory_coins", view.position_coins, unit="coins")
    check_real("max_position_coins", max_position_coins, lo=0.0, lo_open=True, unit="coins")
    check_real("margin_frac", margin_frac)
    prefix = "0x" + cloids._prefix
    rest = view.resting
    ids = []
    for k, r in enumerate(rest):
        if r.cloid is None or not r.cloid.startswith(prefix):
            raise InvalidParameterError(
                f"view.resting[{k}] has id {r.key!r}, not a cloid of this factory ({prefix}...): the compiled "
                "plan needs every resting order to carry one"
            )
        ids.append(int(r.cloid[18:], 16))
    if len(set(ids)) != len(ids):
        dup = next(r.key for r, i in zip(rest, ids, strict=True) if ids.count(i) > 1)
        raise InvalidParameterError(f"'resting' holds two orders with the same id {dup!r}")
    d_px, d_sz, d_lv, n_d = _desired_arrays(desired)
    r_side, r_sz = _orders_arrays(rest)
    r_px = np.array([r.price for r in rest], np.float64)
    r_ro = np.array([r.reduce_only for r in rest], np.bool_)
    p_side, p_sz = _orders_arrays(view.pending)
    u_side, u_px = _unseen_arrays(view)
    has_book, bid, ask = _book_args(view)
    outs = new_outputs(len(rest), int(n_d.sum()))
    q, limit = float(view.position_coins), float(max_position_coins)
    n_kept, n_cancel, n_mod, n_place, n_def, n_cross, next_id, stop_b, stop_a = plan_refresh(
        d_px, d_sz, d_lv, n_d, np.array(ids, np.int64), r_side, r_px, r_sz, r_ro, p_side, p_sz, u_side, u_px, q,
        limit, float(config.requote_price_bps), float(config.requote_size_frac), bool(config.reduce_only), has_book,
        bid, ask, float(margin_frac), cloids.issued, *outs,
    )  # fmt: skip
    kept_i, cancel_i, mod, place, deferred = outs
    cl = lambda i: f"{prefix}{int(i):016x}"  # noqa: E731
    stopped: dict[str, str] = {}
    for s, hit in enumerate((stop_b, stop_a)):
        if hit:
            side = SIDES[s]
            # plan_orders' reason, from the same sum
            total = sum(d_sz[s, : n_d[s]].tolist())
            lim_s = side_limit_coins(side, q, limit)
            stopped[side] = (
                f"desired {side}s total {total:g} coins but the position limit leaves {max(lim_s, 0.0):g} "
                f"(inventory {q:g}, max_position {limit:g} coins); side not quoted"
            )
    modifies = [
        Modify(rest[int(m[M_TARGET])], cl(m[M_ID]), m[M_PRICE], m[M_SIZE], bool(m[M_RO]), int(m[M_LEVEL]))
        for m in mod[:n_mod].tolist()
    ]
    plan = assemble_plan(
        [rest[i] for i in kept_i[:n_kept].tolist()],
        [Cancel(rest[i]) for i in cancel_i[:n_cancel].tolist()],
        modifies,
        [_place_of(p, cl(p[P_ID])) for p in place[:n_place].tolist()],
        stopped,
        config.max_batch_len,
    )
    if next_id > cloids.issued:
        cloids.skip_past([cl(next_id - 1)])
    return plan, tuple(_place_of(p, cl(p[P_ID])) for p in deferred[:n_def].tolist()), int(n_cross)


def release_objects(
    deferred: tuple[Place, ...],
    view: VenueView,
    *,
    max_position_coins: float,
    config: OrderManagerConfig,
    margin_frac: float,
) -> OrderPlan:
    """``Quoter.release(view)`` of ``deferred`` (the additions :func:`plan_refresh_objects` deferred) through
    :func:`release_plan`: the ones that fit the worst case now (coins), minus those the last look drops (``margin_frac``
    a fraction of price)."""
    if not deferred:
        return assemble_plan((), (), (), (), {}, config.max_batch_len)
    rows = np.array(
        [(0.0, p.side == "ask", p.price, p.size, p.reduce_only, p.level) for p in deferred], np.float64
    ).reshape(len(deferred), N_PLACE_COLS)
    r_side, r_sz = _orders_arrays(view.resting)
    p_side, p_sz = _orders_arrays(view.pending)
    u_side, u_px = _unseen_arrays(view)
    has_book, bid, ask = _book_args(view)
    # the rows carry the deferred order's position in place of its id: its cloid is a string of any factory
    rows[:, P_ID] = np.arange(len(deferred))
    out = np.empty((len(deferred), N_PLACE_COLS))
    n_place, _ = release_plan(
        rows, len(deferred), r_side, r_sz, p_side, p_sz, u_side, u_px, float(view.position_coins),
        float(max_position_coins), has_book, bid, ask, float(margin_frac), out,
    )  # fmt: skip
    places = [deferred[int(i)] for i in out[:n_place, P_ID].tolist()]
    return assemble_plan((), (), (), places, {}, config.max_batch_len)


def warm_up() -> None:
    """Compile, or load from numba's on-disk cache, :func:`plan_refresh`, :func:`release_plan` and :func:`lsap` with
    the argument types a refresh passes (one two-sided plan with a keep, a modify and a deferral, then its release);
    nothing is kept."""
    i8, f8 = np.int64, np.float64
    d_px = np.array([[99.0], [101.0]])
    d_sz = np.array([[0.5], [0.5]])
    d_lv = np.zeros((2, 1), i8)
    n_d = np.array([1, 1], i8)
    r_id, r_side = np.array([0, 1], i8), np.array([0, 1], i8)
    r_px, r_sz, r_ro = np.array([99.5, 101.0]), np.array([0.5, 0.5]), np.zeros(2, np.bool_)
    p_side, p_sz = np.array([0], i8), np.array([0.2])
    u_side, u_px = np.zeros(0, i8), np.zeros(0, f8)
    outs = new_outputs(2, 2)
    res = plan_refresh(
        d_px, d_sz, d_lv, n_d, r_id, r_side, r_px, r_sz, r_ro, p_side, p_sz, u_side, u_px, 0.0, 1.0, 1.0, 0.1,
        False, True, 100.0, 100.5, 0.0, 0, *outs,
    )  # fmt: skip
    release_plan(
        outs[4], res[4], r_side, r_sz, p_side, p_sz, u_side, u_px, 0.0, 1.0, True, 100.0, 100.5, 0.0,
        np.empty((2, N_PLACE_COLS)),
    )  # fmt: skip


__all__ = [
    "MAX_ID",
    "M_ID",
    "M_LEVEL",
    "M_PRICE",
    "M_RO",
    "M_SIDE",
    "M_SIZE",
    "M_TARGET",
    "N_MOD_COLS",
    "N_PLACE_COLS",
    "P_ID",
    "P_LEVEL",
    "P_PRICE",
    "P_RO",
    "P_SIDE",
    "P_SIZE",
    "lsap",
    "new_outputs",
    "plan_refresh",
    "plan_refresh_objects",
    "release_objects",
    "release_plan",
    "warm_up",
]
