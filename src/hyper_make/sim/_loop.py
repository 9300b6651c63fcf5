"""The simulator's strategy loop compiled: the market kernel and the refresh core in numba, thousands of refreshes a
call.

:func:`run_compiled` runs what :func:`~hyper_make.sim.strategy.run_path`'s Python loop does (the market to each
refresh, :class:`~hyper_make.sim.venue.SimVenue`'s view, :meth:`Quoter.drive` with its release, the run record,
the equity samples), returning to Python only every :data:`STRETCH` refreshes (so that Ctrl-C is heard): the
view's orders are the venue's in its order (the order they were placed, as its dict keeps them), the plan is applied
as ``SimVenue.apply`` does (cancels, then modifies and new orders into the lowest free slots), and the refresh core
is :mod:`hyper_make.fast._refresh`. The same seed gives the Python loop's fills, PnL and record exactly
(``tests/sim/test_compiled_loop.py``).

:func:`loop_reason` says why a configuration runs the Python loop instead: an allocator that learns (its payout
learner is Python), an allocator or ladder the fast path does not compile, a GLFT touch (a grid per refresh).
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from ..fast import _refresh as rc
from ..fast._refresh import core_config, core_state, loop_reason, plan_arrays, view_arrays
from ..instrument import _ticks_of
from . import market as mk

# loop parameters (lp, float64) and (li, int64)
LP_REFRESH_S, LP_HORIZON_S, LP_WINDOW_S, LP_TICK_USD, LP_MARGIN_USD, LP_LATENCY_S, LP_BOOK_INTERVAL_S = range(7)
LP_ORDER_LATENCY_S, LP_CANCEL_LATENCY_S = 7, 8
LP_SIZE = 9
LI_N_REF, LI_STRIDE, LI_SHAPES_EVERY, LI_N_LEVELS = range(4)
LI_SIZE = 4
#: the loop's own state between stretches (ls, float64)
LS_EVENTS, LS_NEXT_WINDOW, LS_STOPPED, LS_N_EQ, LS_N_SHAPES = range(5)
LS_SIZE = 5
#: what the kernel returns: ran its stretch; needs the Python loop (its error)
DONE, NEEDS_PYTHON = 0, 1
#: refreshes per compiled call: Python gets control back every few tenths of a second (Ctrl-C, nothing else)
STRETCH = 16_384


@nb.njit(cache=True)
def _view(m, lp, vs, vf, vi, rest, pend, track):  # type: ignore[no-untyped-def]
    """:meth:`SimVenue.view` into the refresh core's view arrays; the fills are taken (the core does not read them).

    ``track`` rows (per tracked order, in placement order): slot, id, price USD, size coins as last reported,
    reduce-only; ``vs``: ``[n_tracked, traded_seen]``."""
    p, s, o_side, o_tick, o_size, o_cancel_t, o_init = m[0], m[1], m[5], m[6], m[7], m[10], m[11]
    tick = lp[LP_TICK_USD]
    t_ns = int(np.rint(s[mk.S_T] * 1e9))
    bid, ask = mk.visible_best(p, s[mk.S_F], o_side, o_tick, o_init)
    bid_usd, ask_usd = bid * tick, ask * tick
    if s[mk.S_FILL_N] != 0:
        s[mk.S_FILL_N] = 0
    n_track = int(vs[0])
    kept = 0
    nr = 0
    npd = 0
    for r in range(n_track):
        slot = int(track[r, 0])
        if o_side[slot] == 0:
            continue
        if kept != r:
            track[kept, :] = track[r, :]
        size = o_size[slot]
        if size != track[kept, 3]:
            track[kept, 3] = size
        if math.isfinite(o_cancel_t[slot]):
            pend[npd, rc.P_SIDE] = 0.0 if o_side[slot] > 0 else 1.0
            pend[npd, rc.P_PX] = track[kept, 2]
            pend[npd, rc.P_SZ] = size
            npd += 1
        else:
            rest[nr, rc.R_ID] = track[kept, 1]
            rest[nr, rc.R_SIDE] = 0.0 if o_side[slot] > 0 else 1.0
            rest[nr, rc.R_PX] = track[kept, 2]
            rest[nr, rc.R_SZ] = size
            rest[nr, rc.R_RO] = track[kept, 4]
            rest[nr, 5] = slot
            nr += 1
        kept += 1
    vs[0] = kept
    traded = s[mk.S_MO_VOL] - vs[1]
    vs[1] = s[mk.S_MO_VOL]
    q = s[mk.S_Q]
    vf[rc.VF_BID] = bid_usd
    vf[rc.VF_ASK] = ask_usd
    vf[rc.VF_TRADED] = traded
    vf[rc.VF_POS] = q
    vf[rc.VF_MARGIN] = lp[LP_MARGIN_USD]
    vf[rc.VF_PNL] = s[mk.S_CASH] + q * (0.5 * (bid_usd + ask_usd))
    vf[rc.VF_LATENCY] = lp[LP_LATENCY_S]
    vf[rc.VF_BOOK_INTERVAL] = lp[LP_BOOK_INTERVAL_S]
    vi[rc.VI_TS_NS] = t_ns
    vi[rc.VI_BOOK_NS] = t_ns
    vi[rc.VI_HAS_BOOK] = 1
    vi[rc.VI_HALTED] = 0
    vi[rc.VI_N_REST] = nr
    vi[rc.VI_N_PEND] = npd
    vi[rc.VI_N_UNSEEN] = 0


@nb.njit(cache=True)
def _apply(m, lp, vs, rest, track, cancel, n_cancel, mods, n_mod, places, n_place, counters):  # type: ignore[no-untyped-def]
    """:meth:`SimVenue.apply`: cancels and the modified orders' targets after the cancel latency, then the modifies'
    and the new orders into free slots after the order latency. Returns ``False`` for a price off the tick grid
    (the Python venue raises)."""
    s, o_side, o_tick, o_size, o_ahead, o_active_t, o_cancel_t, o_init = (
        m[1], m[5], m[6], m[7], m[8], m[9], m[10], m[11]
    )  # fmt: skip
    n_gone = n_cancel + n_mod
    if n_gone:
        gone = np.empty(n_gone, dtype=np.int64)
        for j in range(n_cancel):
            gone[j] = int(rest[cancel[j], 5])
        for j in range(n_mod):
            gone[n_cancel + j] = int(rest[int(mods[j, 0]), 5])
        mk._cancel_orders(o_side, o_cancel_t, gone, s[mk.S_T] + lp[LP_CANCEL_LATENCY_S])
    n_add = n_mod + n_place
    if n_add == 0:
        return True
    prices = np.empty(n_add)
    sides = np.empty(n_add, dtype=np.int64)
    sizes = np.empty(n_add)
    for j in range(n_add):
        row = mods[j, 1:] if j < n_mod else places[j - n_mod]
        prices[j] = row[2]
        sides[j] = 1 if row[1] == 0 else -1
        sizes[j] = row[3]
    ticks, bad = _ticks_of(prices, lp[LP_TICK_USD])
    if bad >= 0:
        return False
    slots = mk._place_orders(
        o_side, o_tick, o_size, o_ahead, o_active_t, o_cancel_t, o_init, sides, ticks, sizes,
        s[mk.S_T] + lp[LP_ORDER_LATENCY_S],
    )  # fmt: skip
    n_track = int(vs[0])
    for j in range(n_add):
        if slots[j] < 0:
            counters[0] += 1
            continue
        row = mods[j, 1:] if j < n_mod else places[j - n_mod]
        track[n_track, 0] = slots[j]
        track[n_track, 1] = row[0]
        track[n_track, 2] = row[2]
        track[n_track, 3] = row[3]
        track[n_track, 4] = row[4]
        n_track += 1
    vs[0] = n_track
    return True


@nb.njit(cache=True)
def _run_market(m, t_end):  # type: ignore[no-untyped-def]
    return mk.run_until(
        t_end, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
    )


@nb.njit(cache=True)
def run_loop(m, lp, li, qc, qs, qi, lad, plan, view, track, vs, eq, shapes, counters, ls, i0, i1):  # type: ignore[no-untyped-def]
    """Refreshes ``i0`` to ``i1 - 1`` of the path (see the module docstring), and the market to the horizon when
    ``i1`` is the last; the loop's own state in ``ls`` (``LS_*``: events so far, the next volume window (s), whether a
    risk stop fired, equity and shape rows written). Returns :data:`DONE` or :data:`NEEDS_PYTHON`."""
    vf, vi, rest, pend, unseen = view
    cancel, mods, places, counts = plan[1], plan[2], plan[3], plan[5]
    out = lad[10]
    s = m[1]
    refresh_s, horizon = lp[LP_REFRESH_S], lp[LP_HORIZON_S]
    window = lp[LP_WINDOW_S]
    n_ref, stride, shapes_every, n_levels = li[LI_N_REF], li[LI_STRIDE], li[LI_SHAPES_EVERY], li[LI_N_LEVELS]
    events = int(ls[LS_EVENTS])
    next_window = ls[LS_NEXT_WINDOW]
    stopped = ls[LS_STOPPED] != 0.0
    n_eq = int(ls[LS_N_EQ])
    n_shapes = int(ls[LS_N_SHAPES])
    code = DONE
    for i in range(i0, i1):
        t = min(i * refresh_s, horizon)
        events += _run_market(m, t)
        if t >= next_window:
            s[mk.S_REF_F] = s[mk.S_F]
            next_window += window
        if not stopped:
            t_next = min((i + 1) * refresh_s, horizon)
            _view(m, lp, vs, vf, vi, rest, pend, track)
            status, n_bid, n_ask = rc.refresh(qc, qs, qi, vf, vi, rest, pend, unseen, lad, plan)
            if status == rc.ST_REFERENCE or not _apply(
                m, lp, vs, rest, track, cancel, counts[1], mods, counts[2], places, counts[3], counters
            ):
                code = NEEDS_PYTHON
                break
            if status == rc.ST_QUOTING and counts[4] > 0:
                dt = 2.0 * max(vf[rc.VF_LATENCY], 1e-3)
                if t + dt < t_next:
                    events += _run_market(m, t + dt)
                    _view(m, lp, vs, vf, vi, rest, pend, track)
                    n_rel = rc.release(qc, qs, qi, vf, vi, rest, pend, unseen, plan)
                    if not _apply(m, lp, vs, rest, track, cancel, 0, mods, 0, places, n_rel, counters):
                        code = NEEDS_PYTHON
                        break
                else:
                    qi[rc.QI_N_DEF] = 0
            stopped = status == rc.ST_STOP_DRAWDOWN or status == rc.ST_STOP_POSITION
            if status == rc.ST_QUOTING and shapes_every > 0 and (qi[rc.QI_REFRESHES] - 1) % shapes_every == 0:
                rc.shape_row(out, n_bid, n_ask, n_levels, shapes[n_shapes])
                n_shapes += 1
        if i % stride == 0:
            eq[0, n_eq] = s[mk.S_T]
            eq[1, n_eq] = s[mk.S_CASH] + s[mk.S_Q] * s[mk.S_F] * lp[LP_TICK_USD]
            n_eq += 1
    if code == DONE and i1 >= n_ref:
        events += _run_market(m, horizon)
    ls[LS_EVENTS] = events
    ls[LS_NEXT_WINDOW] = next_window
    ls[LS_STOPPED] = 1.0 if stopped else 0.0
    ls[LS_N_EQ] = n_eq
    ls[LS_N_SHAPES] = n_shapes
    return code


def market_arrays(market: Any) -> tuple[Any, ...]:
    """The market's state in the order of the kernel's ``run_until`` arguments (from ``p``)."""
    return (
        market.p, market.s, market.deficit, market.tlast, market.mk, market.o_side, market.o_tick, market.o_size,
        market.o_ahead, market.o_active_t, market.o_cancel_t, market.o_init, market.vol_hist, market.rng,
        market.tape, market.fl,
    )  # fmt: skip


def run_compiled(
    market: Any, venue: Any, quoter: Any, rec: Any, *, refresh_s: float, horizon_s: float, n_ref: int, stride: int
) -> tuple[int, list[float], list[float], bool] | None:
    """The Python loop of :func:`~hyper_make.sim.strategy.run_path` from ``n_ref`` refreshes of ``refresh_s``, in one
    compiled call; ``rec`` (a :class:`LadderRecord`) gets the record's sums. Returns ``(events, equity times,
    equity values, stopped)``, or ``None`` when the path needs the Python loop (a build the reference must raise
    for, a price off the tick grid): the caller reruns it there from the start (the market has moved)."""
    n_levels = quoter.ladder_config.grid.n_levels
    lad = quoter._fast.kernel_args(quoter.prior, quoter.rng)
    m = market_arrays(market)
    cfg = market.cfg
    lp = np.zeros(LP_SIZE)
    lp[LP_REFRESH_S], lp[LP_HORIZON_S], lp[LP_WINDOW_S] = refresh_s, horizon_s, quoter.ladder_config.horizon_s
    lp[LP_TICK_USD], lp[LP_MARGIN_USD] = venue.tick_usd, venue.margin_usd
    lp[LP_LATENCY_S], lp[LP_BOOK_INTERVAL_S] = venue.latency_s, venue.book_interval_s
    lp[LP_ORDER_LATENCY_S], lp[LP_CANCEL_LATENCY_S] = cfg.order_latency_s, cfg.cancel_latency_s
    li = np.zeros(LI_SIZE, dtype=np.int64)
    li[LI_N_REF], li[LI_STRIDE], li[LI_SHAPES_EVERY], li[LI_N_LEVELS] = n_ref, stride, rec.shapes_every, n_levels
    qc = core_config(quoter, rec.scale)
    qs, qi = core_state()
    qi[rc.QI_NEXT_ID] = quoter.cloids.issued
    cap = mk.MAX_ORDERS
    plan = plan_arrays(n_levels, cap)
    view = view_arrays(cap)
    track = np.zeros((cap, 5))
    vs = np.array([0.0, market.traded_coins])
    n_eq_max = n_ref // stride + 2
    eq = np.zeros((2, n_eq_max))
    shapes = np.zeros((n_ref // rec.shapes_every + 1 if rec.shapes_every else 0, 2 * n_levels))
    counters = np.zeros(1, dtype=np.int64)
    ls = np.zeros(LS_SIZE)
    for i0 in range(0, n_ref, STRETCH):
        code = run_loop(
            m, lp, li, qc, qs, qi, lad, plan, view, track, vs, eq, shapes, counters, ls, i0, min(i0 + STRETCH, n_ref)
        )
        if code != DONE:
            return None
    events, n_eq, n_shapes, stopped = int(ls[LS_EVENTS]), int(ls[LS_N_EQ]), int(ls[LS_N_SHAPES]), ls[LS_STOPPED] != 0
    rec.model_impact_usd += float(qs[rc.QS_REC_IMPACT])
    rec.model_expected_usd += float(qs[rc.QS_REC_EXPECTED])
    rec._eff_sum += float(qs[rc.QS_REC_EFF_SUM])
    rec._eff_n += int(qs[rc.QS_REC_EFF_N])
    rec.refreshes += int(qi[rc.QI_REFRESHES])
    rec._shapes.extend(shapes[:n_shapes])
    venue.no_slot += int(counters[0])
    return int(events), eq[0, :n_eq].tolist(), eq[1, :n_eq].tolist(), bool(stopped)


__all__ = ["loop_reason", "run_compiled"]
