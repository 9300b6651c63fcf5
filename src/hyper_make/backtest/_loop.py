"""The replay's strategy loop compiled: many refreshes of one replay in one numba call.

:func:`run_loop` does what :meth:`~hyper_make.backtest.replay._Run.step` does refresh after refresh, without
returning to Python until the exchange side or the strategy's side reaches the end of its chunk of the feed, the
fill buffer or the equity/shape buffers are full, or the data ends:

* :meth:`ReplayVenue.advance`: the replay kernel to the refresh (:func:`~._core.run_until`), the strategy's book
  with feed latency (:func:`~._core.local_until`), the exchange's account of every fill, the fills the strategy has
  been told of (a response latency after each: its position, cash and each order's filled size);
* the equity row (exchange account at the strategy's mid), the warm-up and a stopped run (observe only);
* :meth:`ReplayVenue.view` (orders it knows are gone forgotten; resting and pending orders in the order they were
  placed, sizes reduced by the fills seen, rounded to lots), :meth:`Quoter.drive` through the compiled refresh
  core (:mod:`hyper_make.fast._refresh`) with its release two round trips later, and :meth:`ReplayVenue.apply`
  (cancels, modifies, new orders in whole lots, the zero-lot and no-slot counts);
* the run record's sums (in the core's state) and one ladder-shape row per quoted refresh.

Python (:class:`CompiledRun`) fetches and enters the next chunk exactly as :meth:`ReplayVenue.advance` does and
calls again: the loop resumes inside the refresh where it stopped (its phase and stage are in the state). Equity
rows, shapes and the fills go to buffers Python drains at each return (the CSVs, the thinned curves and the
markouts stay Python). The Python step stays the reference: the same data gives the same fills, equity, record
and metrics (``tests/backtest/test_compiled_loop.py``).

:func:`loop_reason` says why a replay runs the Python step instead: an allocator that learns, the fast path off, a
GLFT touch (:func:`hyper_make.fast._refresh.loop_reason`), or a warm-up the reader has not decided yet (a recording
without a book snapshot: the Python step observes until it is decided, then the compiled loop takes over).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numba as nb
import numpy as np

from ..errors import InvalidParameterError
from ..fast import _refresh as rc
from ..fast._refresh import core_config, core_state, plan_arrays, view_arrays
from ..fast._refresh import loop_reason as core_reason
from ._core import (
    DONE,
    FREE,
    LIVE,
    NEVER,
    PENDING,
    STATUS_END,
    STATUS_FILLS_FULL,
    local_until,
    place,
    run_until,
)  # fmt: skip

# the loop's int64 state (si)
(
    SI_K,  # the exchange side's row in its chunk
    SI_CLOCK,  # the exchange clock (ns)
    SI_NFILL,  # fills in the buffer
    SI_BOOKED,  # fills in the exchange's account
    SI_SEEN,  # fills the strategy has been told of
    SI_LK,  # the strategy side's row in its chunk (feed latency)
    SI_NEXT_OID,  # the kernel's next order id
    SI_REJECTS,
    SI_NO_SLOT,
    SI_ZERO_LOT,
    SI_N_TRACK,  # orders the venue tracks (rows of track)
    SI_ENDED,  # the exchange side has reached the end of the data
    SI_L_ENDED,  # the strategy side has
    SI_PHASE,  # 0: the refresh's advance; 1: the release's wait
    SI_STAGE,  # inside an advance: 0 the exchange side, 1 the strategy side
    SI_X_STATUS,  # the exchange side's status of the advance under way
    SI_T_NOW,  # the refresh under way (exchange ns)
    SI_T_WAIT,  # the release's time (ns)
    SI_N_REFRESH,  # refreshes with a two-sided book
    SI_STOP,  # 0, or the core's ST_STOP_* status that stopped the run
    SI_N_EQ,  # equity rows in the buffer
    SI_N_SHAPES,  # shape rows in the buffer
) = range(22)
SI_SIZE = 22
# the loop's float64 state (sf): the exchange's account, what the strategy knows, the traded volume seen (coins, USD)
SF_POS, SF_CASH, SF_SEEN_POS, SF_SEEN_CASH, SF_MAX_ABS, SF_LOCAL_TRADED, SF_TRADED_SEEN, SF_L_PART = range(8)
SF_SIZE = 8
# parameters (pf float64, pi int64)
PF_TICK, PF_LOT, PF_QUEUE_N, PF_FEE, PF_MARGIN, PF_WARM_S = range(6)
PF_SIZE = 6
PI_QUEUE, PI_USE_BBO, PI_CROSS, PI_MARKET_FIRST, PI_LATENCY_NS, PI_RESP_NS, PI_FEED, PI_STEP_NS, PI_T0 = range(9)
PI_N_LEVELS = 9
PI_SIZE = 10
# rows of track: the venue's orders in the order they were placed
T_SLOT, T_CLOID, T_OID, T_SIDE, T_PX, T_SZ, T_RO, T_FILLED = range(8)
T_SIZE = 8

#: why :func:`run_loop` returned
(
    R_END,  # the data has ended (the step returned False)
    R_NEED_X,  # the exchange side needs its next chunk
    R_NEED_L,  # the strategy side needs its next chunk
    R_FILLS_FULL,  # grow the fill buffer
    R_BUF_FULL,  # drain the equity and shape buffers
    R_REFERENCE,  # a ladder build the reference must raise for
    R_OFF_GRID,  # a price off the tick grid (the Python venue raises)
) = range(7)
_ADV_OK = -1  # an advance that completed (its status is in SI_X_STATUS)
#: rows of the equity and shape buffers between drains
BUFFER_ROWS = 4096


@nb.njit(cache=True)
def _book_fills(fills, si, sf, pf):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue._book_fills`: every fill in the exchange's account at its time."""
    tick, fee = pf[PF_TICK], pf[PF_FEE]
    for j in range(si[SI_BOOKED], si[SI_NFILL]):
        f = fills[j]
        side, q = f.side, f.qty
        price = float(f.tick) * tick
        sf[SF_POS] += side * q
        sf[SF_CASH] -= side * q * price + price * q * fee
        sf[SF_MAX_ABS] = max(sf[SF_MAX_ABS], abs(sf[SF_POS]))
    si[SI_BOOKED] = si[SI_NFILL]


@nb.njit(cache=True)
def _tell_fills(fills, track, si, sf, pf, pi):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue._tell_fills`: the fills whose report has reached the strategy by the clock."""
    tick, fee_frac = pf[PF_TICK], pf[PF_FEE]
    lim = si[SI_CLOCK] - pi[PI_RESP_NS]
    j = si[SI_SEEN]
    n_track = si[SI_N_TRACK]
    while j < si[SI_NFILL] and fills[j].ts <= lim:
        f = fills[j]
        side, q = f.side, f.qty
        price = float(f.tick) * tick
        fee = price * q * fee_frac
        sf[SF_SEEN_POS] += side * q
        sf[SF_SEEN_CASH] -= side * q * price + fee
        for r in range(n_track):
            if track[r, T_OID] == f.oid:
                track[r, T_FILLED] += q
                break
        j += 1
    si[SI_SEEN] = j


@nb.njit(cache=True)
def _advance(t, xb, lb, xc, lc, ob, si, sf, pf, pi, track):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue.advance` to ``t`` (ns), resumable: ``_ADV_OK`` when done, else the ``R_*`` to return."""
    orders, bid_slot, ask_slot, fills, path = ob
    if si[SI_STAGE] == 0:
        ev, ets, px, qty = xc
        status, k, clock, nfill, rej = run_until(
            xb[0], xb[1], xb[2], ev, ets, px, qty, si[SI_K], t, si[SI_CLOCK], orders, bid_slot, ask_slot, fills,
            si[SI_NFILL], pf[PF_TICK], pf[PF_LOT], pi[PI_QUEUE], pf[PF_QUEUE_N], pi[PI_USE_BBO] != 0, pi[PI_CROSS],
            pi[PI_MARKET_FIRST] != 0, path,
        )  # fmt: skip
        si[SI_K], si[SI_CLOCK], si[SI_NFILL] = k, clock, nfill
        si[SI_REJECTS] += rej
        _book_fills(fills, si, sf, pf)
        if status == STATUS_FILLS_FULL:
            return R_FILLS_FULL
        if status == STATUS_END and si[SI_ENDED] == 0:
            return R_NEED_X  # Python: the next chunk (entered, row 0), or the end of the data
        si[SI_X_STATUS] = status
        si[SI_STAGE] = 1
    if pi[PI_FEED] != 0:
        lev, lts, lpx, lqty = lc
        while True:
            lk, traded = local_until(
                lb[0], lb[1], lb[2], lev, lts, lpx, lqty, si[SI_LK], t, pf[PF_TICK], pi[PI_USE_BBO] != 0,
                sf[SF_L_PART],
            )  # fmt: skip
            si[SI_LK] = lk
            sf[SF_L_PART] = traded
            if lk < lev.size or si[SI_L_ENDED] != 0:
                break
            return R_NEED_L
        sf[SF_LOCAL_TRADED] += sf[SF_L_PART]
        sf[SF_L_PART] = 0.0
    _tell_fills(fills, track, si, sf, pf, pi)
    si[SI_STAGE] = 0
    return _ADV_OK


@nb.njit(cache=True)
def _top(lb, pf):  # type: ignore[no-untyped-def]
    """:attr:`ReplayVenue.book_top`: ``(two-sided, bid USD, ask USD)`` of the book the strategy holds."""
    st = lb[2]
    tick = pf[PF_TICK]
    bb, ba, n, base = st[0], st[1], st[2], st[5]
    bid = (base + bb) * tick if bb >= 0 else math.nan
    ask = (base + ba) * tick if ba < n else math.nan
    return 0.0 < bid < ask, bid, ask


@nb.njit(cache=True)
def _forget_done(orders, track, si, pi):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue._forget_done`: free the slots of the orders the strategy knows are gone."""
    known = si[SI_CLOCK] - pi[PI_RESP_NS]
    kept = 0
    for r in range(si[SI_N_TRACK]):
        slot = int(track[r, T_SLOT])
        o = orders[slot]
        mine = o.oid == int(track[r, T_OID])
        if not mine or (o.state == DONE and o.done_ts <= known):
            if mine:
                o.state = FREE
            continue
        if kept != r:
            track[kept, :] = track[r, :]
        kept += 1
    si[SI_N_TRACK] = kept


@nb.njit(cache=True)
def _view(xb, lb, xc, ob, si, sf, pf, pi, track, view):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue.view` into the refresh core's view arrays (``rest`` column 5: the row of ``track``)."""
    vf, vi, rest, pend, _unseen = view
    orders = ob[0]
    _forget_done(orders, track, si, pi)
    lot = pf[PF_LOT]
    nr = 0
    npd = 0
    for r in range(si[SI_N_TRACK]):
        o = orders[int(track[r, T_SLOT])]
        size = track[r, T_SZ]
        filled = track[r, T_FILLED]
        if filled > 0.0:
            size = np.rint((size - filled) / lot) * lot
        if o.dead_ts == NEVER:
            rest[nr, rc.R_ID] = track[r, T_CLOID]
            rest[nr, rc.R_SIDE] = track[r, T_SIDE]
            rest[nr, rc.R_PX] = track[r, T_PX]
            rest[nr, rc.R_SZ] = size
            rest[nr, rc.R_RO] = track[r, T_RO]
            rest[nr, 5] = r
            nr += 1
        else:
            pend[npd, rc.P_SIDE] = track[r, T_SIDE]
            pend[npd, rc.P_PX] = track[r, T_PX]
            pend[npd, rc.P_SZ] = size
            npd += 1
    traded = sf[SF_LOCAL_TRADED] if pi[PI_FEED] != 0 else ob[4][4][0]
    two, bid, ask = _top(lb, pf)
    vf[rc.VF_BID] = bid
    vf[rc.VF_ASK] = ask
    vf[rc.VF_TRADED] = traded - sf[SF_TRADED_SEEN]
    sf[SF_TRADED_SEEN] = traded
    vf[rc.VF_POS] = sf[SF_SEEN_POS]
    vf[rc.VF_MARGIN] = pf[PF_MARGIN]
    vf[rc.VF_PNL] = sf[SF_SEEN_CASH] + sf[SF_SEEN_POS] * (0.5 * (bid + ask)) if two else math.nan
    vf[rc.VF_LATENCY] = pi[PI_LATENCY_NS] / 1e9
    vf[rc.VF_BOOK_INTERVAL] = 0.0  # the rebuilt book is the market's at every view
    vi[rc.VI_TS_NS] = si[SI_CLOCK]
    vi[rc.VI_BOOK_NS] = si[SI_CLOCK]
    vi[rc.VI_HAS_BOOK] = 1 if two else 0
    vi[rc.VI_HALTED] = 0
    vi[rc.VI_N_REST] = nr
    vi[rc.VI_N_PEND] = npd
    vi[rc.VI_N_UNSEEN] = 0


@nb.njit(cache=True)
def _place(row, orders, track, si, pf, at):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue._place` of a plan row ``(id, side, price USD, size coins, reduce-only, level)``;
    ``False`` for a price off the tick grid."""
    tick, lot = pf[PF_TICK], pf[PF_LOT]
    price = row[2]
    x = price / tick
    kt = np.rint(x)  # half to even, as Python's round()
    if not (np.isfinite(x) and price > 0 and abs(x - kt) <= 1e-6):
        return False
    oid = si[SI_NEXT_OID]
    si[SI_NEXT_OID] += 1
    size = row[3]
    slot = place(orders, oid, 1 if row[1] == 0 else -1, int(kt), size, int(row[5]), at, lot)
    if slot == -2:
        si[SI_ZERO_LOT] += 1
        return True
    if slot < 0:
        si[SI_NO_SLOT] += 1
        return True
    held = orders[slot].qty
    if abs(held - size) > 1e-6 * lot:  # the exchange holds whole lots
        size = held
    n = si[SI_N_TRACK]
    track[n, T_SLOT] = slot
    track[n, T_CLOID] = row[0]
    track[n, T_OID] = oid
    track[n, T_SIDE] = row[1]
    track[n, T_PX] = price
    track[n, T_SZ] = size
    track[n, T_RO] = row[4]
    track[n, T_FILLED] = 0.0
    si[SI_N_TRACK] = n + 1
    return True


@nb.njit(cache=True)
def _cancel(r, orders, track, at):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue._cancel` of the order in ``track`` row ``r``: the kernel's ``cancel`` finds the order by
    its id, which a tracked order keeps in its own slot until the slot is freed (then it is no longer tracked)."""
    o = orders[int(track[r, T_SLOT])]
    if (o.state == PENDING or o.state == LIVE) and o.oid == int(track[r, T_OID]):
        if o.dead_ts > at:
            o.dead_ts = at
        return
    if o.state == DONE and o.dead_ts == NEVER:
        o.dead_ts = at  # gone already, unknown to the strategy: the cancel goes out all the same


@nb.njit(cache=True)
def _apply(ob, si, pf, pi, track, rest, plan, n_cancel, n_mod, n_place):  # type: ignore[no-untyped-def]
    """:meth:`ReplayVenue.apply`: cancels, then modifies (a cancel and a new order), then new orders, all after the
    latency; ``False`` for a price off the grid."""
    orders = ob[0]
    cancel, mods, places = plan[1], plan[2], plan[3]
    at = si[SI_CLOCK] + pi[PI_LATENCY_NS]
    for j in range(n_cancel):
        _cancel(int(rest[cancel[j], 5]), orders, track, at)
    for j in range(n_mod):
        _cancel(int(rest[int(mods[j, 0]), 5]), orders, track, at)
        if not _place(mods[j, 1:], orders, track, si, pf, at):
            return False
    for j in range(n_place):
        if not _place(places[j], orders, track, si, pf, at):
            return False
    return True


@nb.njit(cache=True)
def run_loop(xb, lb, xc, lc, ob, si, sf, pf, pi, track, qc, qs, qi, lad, plan, view, eq, shapes):  # type: ignore[no-untyped-def]
    """Refreshes of :meth:`_Run.step` from ``si[SI_T_NOW]`` until a return (module docstring); returns an ``R_*``.

    ``xb``/``lb``: the exchange's and the strategy's books ``(bid, ask, state)`` (the same arrays without feed
    latency); ``xc``: the exchange side's chunk ``(ev, exch_ts, px, qty)``, ``lc`` the strategy side's
    ``(ev, local_ts, px, qty)``; ``ob``: ``(orders, bid_slot, ask_slot, fills, path)`` (``path``: the venue's
    :class:`~hyper_make.backtest._feed.PathRecorder` arrays); ``eq`` rows ``(t_s, equity USD)``.
    """
    vf, vi, rest, pend, unseen = view
    counts = plan[5]
    out = lad[10]
    step = pi[PI_STEP_NS]
    t0 = pi[PI_T0]
    warm_ns = pf[PF_WARM_S] * 1e9
    n_levels = pi[PI_N_LEVELS]
    cap = eq.shape[0]
    while True:
        if si[SI_PHASE] == 0:
            if si[SI_STAGE] == 0 and (si[SI_N_EQ] >= cap or si[SI_N_SHAPES] >= cap):
                return R_BUF_FULL
            t_now = si[SI_T_NOW]
            code = _advance(t_now, xb, lb, xc, lc, ob, si, sf, pf, pi, track)
            if code != _ADV_OK:
                return code
            if si[SI_X_STATUS] == STATUS_END:
                return R_END
            two, bid, ask = _top(lb, pf)
            if two:
                si[SI_N_REFRESH] += 1
                e = si[SI_N_EQ]
                eq[e, 0] = (t_now - t0) / 1e9
                eq[e, 1] = sf[SF_CASH] + sf[SF_POS] * (0.5 * (bid + ask))
                si[SI_N_EQ] = e + 1
                _view(xb, lb, xc, ob, si, sf, pf, pi, track, view)
                if si[SI_STOP] != 0 or t_now - t0 < warm_ns:
                    rc.observe(qc, qs, qi, vf, vi)  # the warm-up: estimates, no quotes
                else:
                    status, n_bid, n_ask = rc.refresh(qc, qs, qi, vf, vi, rest, pend, unseen, lad, plan)
                    if status == rc.ST_REFERENCE:
                        return R_REFERENCE
                    if not _apply(ob, si, pf, pi, track, rest, plan, counts[1], counts[2], counts[3]):
                        return R_OFF_GRID
                    if status == rc.ST_QUOTING:
                        rc.shape_row(out, n_bid, n_ask, n_levels, shapes[si[SI_N_SHAPES]])
                        si[SI_N_SHAPES] += 1
                    if status == rc.ST_STOP_DRAWDOWN or status == rc.ST_STOP_POSITION:
                        si[SI_STOP] = status
                    if status == rc.ST_QUOTING and counts[4] > 0:
                        dt = 2.0 * max(vf[rc.VF_LATENCY], 1e-3)
                        if dt * 1e9 < step:
                            si[SI_T_WAIT] = t_now + int(np.rint(dt * 1e9))
                            si[SI_PHASE] = 1
                        else:
                            qi[rc.QI_N_DEF] = 0
            if si[SI_PHASE] == 0:
                si[SI_T_NOW] = t_now + step
                continue
        # the release two round trips later (Quoter.drive's wait), unless the data ends first
        code = _advance(si[SI_T_WAIT], xb, lb, xc, lc, ob, si, sf, pf, pi, track)
        if code != _ADV_OK:
            return code
        if si[SI_X_STATUS] != STATUS_END:
            _view(xb, lb, xc, ob, si, sf, pf, pi, track, view)
            n_rel = rc.release(qc, qs, qi, vf, vi, rest, pend, unseen, plan)
            if not _apply(ob, si, pf, pi, track, rest, plan, 0, 0, n_rel):
                return R_OFF_GRID
        else:
            qi[rc.QI_N_DEF] = 0
        si[SI_PHASE] = 0
        si[SI_T_NOW] += step


def loop_reason(quoter: Any) -> str:
    """Why a replay of ``quoter`` runs the Python step, or ``""`` when its refresh core compiles (the simulator's
    rule, :func:`hyper_make.fast._refresh.loop_reason`)."""
    return core_reason(quoter)


_STOPS = {rc.ST_STOP_DRAWDOWN: "max_drawdown", rc.ST_STOP_POSITION: "position_limit"}


class CompiledRun:
    """A :class:`~hyper_make.backtest.replay._Run` driven by :func:`run_loop` from its next refresh on.

    It takes over before the strategy has placed an order (at the start, or when the book's warm-up becomes known):
    the estimator's state and the venue's are carried into the arrays; the venue's attributes and the run's
    record, equity and shapes are brought up to date at each return to Python."""

    def __init__(self, run: Any, t_now: int, warm_s: float | None) -> None:
        venue, quoter = run.venue, run.quoter
        if venue._slot_of or venue._next_oid or quoter.last_build is not None or run.stop:
            raise RuntimeError("the compiled loop takes over only before the strategy's first order")
        self.run = run
        n_levels = quoter.ladder_config.grid.n_levels
        cap = venue.orders.shape[0]
        self.lad = quoter._fast.kernel_args(quoter.prior, quoter.rng)
        self.qc = core_config(quoter, run.rec.scale)
        self.qs, self.qi = core_state()
        est = quoter.estimator
        qs, qi = self.qs, self.qi
        qs[rc.QS_SUM_R2], qs[rc.QS_SUM_VOL], qs[rc.QS_SUM_T] = est._sum_r2, est._sum_vol, est._sum_t
        qs[rc.QS_T] = math.nan if est._t is None else est._t
        if est.mid_usd is not None:
            qs[rc.QS_MID], qs[rc.QS_BID], qs[rc.QS_ASK] = est.mid_usd, est.best_bid_usd, est.best_ask_usd
        qs[rc.QS_INTERVAL] = math.nan if quoter.interval_s is None else quoter.interval_s
        qs[rc.QS_PEAK_PNL], qs[rc.QS_MAX_DD] = quoter.peak_pnl_usd, quoter.max_drawdown_usd
        if quoter._last_obs_ns is not None:
            qi[rc.QI_LAST_OBS_NS], qi[rc.QI_HAS_OBS] = quoter._last_obs_ns, 1
        qi[rc.QI_NEXT_ID] = quoter.cloids.issued
        self.plan = plan_arrays(n_levels, cap)
        self.view = view_arrays(cap)
        self.track = np.zeros((cap, T_SIZE))
        self.eq = np.zeros((BUFFER_ROWS, 2))
        self.shapes = np.zeros((BUFFER_ROWS, 2 * n_levels))
        si = self.si = np.zeros(SI_SIZE, dtype=np.int64)
        si[SI_K], si[SI_CLOCK], si[SI_NFILL] = venue.k, venue.clock, venue.nfill
        si[SI_BOOKED], si[SI_SEEN], si[SI_LK] = venue._booked, venue._seen, venue._lk
        si[SI_NEXT_OID], si[SI_REJECTS] = venue._next_oid, venue.rejects
        si[SI_NO_SLOT], si[SI_ZERO_LOT] = venue.no_slot, venue.zero_lot
        si[SI_ENDED] = int(venue._ended)
        si[SI_T_NOW], si[SI_N_REFRESH] = t_now, run.n_refresh
        sf = self.sf = np.zeros(SF_SIZE)
        sf[SF_POS], sf[SF_CASH] = venue.position_coins, venue.cash_usd
        sf[SF_SEEN_POS], sf[SF_SEEN_CASH] = venue.seen_position_coins, venue.seen_cash_usd
        sf[SF_MAX_ABS], sf[SF_LOCAL_TRADED] = venue.max_abs_position_coins, venue._local_traded
        sf[SF_TRADED_SEEN] = venue._traded_seen
        pf = self.pf = np.zeros(PF_SIZE)
        pf[PF_TICK], pf[PF_LOT], pf[PF_QUEUE_N], pf[PF_FEE] = venue.tick_usd, venue.lot_coins, venue.queue_n, venue.fee
        pf[PF_MARGIN] = venue.margin_usd
        pf[PF_WARM_S] = math.inf if warm_s is None else warm_s  # None: the book's warm-up never ends
        pi = self.pi = np.zeros(PI_SIZE, dtype=np.int64)
        pi[PI_QUEUE], pi[PI_USE_BBO], pi[PI_CROSS] = venue.queue_kind, int(venue.use_bbo), venue.cross
        pi[PI_MARKET_FIRST], pi[PI_LATENCY_NS], pi[PI_RESP_NS] = (
            int(venue.market_first),
            venue.latency_ns,
            venue.resp_ns,
        )
        pi[PI_FEED], pi[PI_STEP_NS], pi[PI_T0] = int(venue.feed_latency), run.step_ns, run.t0
        pi[PI_N_LEVELS] = n_levels
        self.done = False

    def resume_ns(self) -> int:
        """The lockstep time (exchange ns) before which :meth:`step` returns at once: the loop's next refresh."""
        return int(self.si[SI_T_NOW])

    def step(self, t_now: int) -> bool:
        """:meth:`_Run.step` at ``t_now``: the loop is ahead of the lockstep's clock until it needs a chunk the feed
        has not read yet; then it waits for the lockstep to reach its refresh (so that the runs read the data in the
        order the Python steps would), reads it and goes on. ``False`` once the data has ended."""
        if self.done:
            return False
        if t_now < int(self.si[SI_T_NOW]):
            return True
        run, venue, feed = self.run, self.run.venue, self.run.feed
        si = self.si
        while True:
            xc, lc = venue._xc, venue._lc
            lt = time.perf_counter()
            code = run_loop(
                (venue.book.bid_qty, venue.book.ask_qty, venue.book.state),
                (venue.local_book.bid_qty, venue.local_book.ask_qty, venue.local_book.state),
                (xc.ev, xc.exch_ts, xc.px, xc.qty), (lc.ev, lc.local_ts, lc.px, lc.qty),
                (venue.orders, venue.bid_slot, venue.ask_slot, venue.fills, venue.path.arrays), si, self.sf, self.pf,
                self.pi,
                self.track, self.qc, self.qs, self.qi, self.lad, self.plan, self.view, self.eq, self.shapes,
            )  # fmt: skip
            run.strategy_s += time.perf_counter() - lt
            self._sync()
            run._take()  # the fills so far to the CSV before anything else (a Ctrl-C while reading keeps them)
            if code == R_END:
                self.done = True
                return False
            if code == R_NEED_X or code == R_NEED_L:
                c = xc if code == R_NEED_X else lc
                # a chunk no run has read yet is read at the lockstep's refresh of this run (see the docstring)
                if not _loaded(feed, c.index + 1) and int(si[SI_T_NOW]) > t_now:
                    return True
                nxt = feed.get(c.index + 1)
                # the venue's own chunk steps (the loop's state was synced to it above)
                if code == R_NEED_X:
                    venue._exchange_enters(nxt)
                    if nxt is None:
                        si[SI_ENDED] = 1
                    else:
                        si[SI_K] = 0
                elif nxt is None:
                    si[SI_L_ENDED] = 1
                else:
                    venue._strategy_enters(nxt)
                    si[SI_LK] = 0
                run._take()
            elif code == R_FILLS_FULL:
                venue._grow()  # the fill buffer or the path recorder
            elif code == R_REFERENCE:
                self._reference_error()
            elif code == R_OFF_GRID:  # (R_BUF_FULL: the buffers were drained above, the loop goes on)
                raise InvalidParameterError(
                    f"an order price is not on the venue's tick grid of {venue.tick_usd!r} USD "
                    f"(exchange time {int(si[SI_CLOCK])} ns)"
                )

    def _reference_error(self) -> None:
        """Raise the error the Python step raises for the build the compiled core declined: the reference pipeline
        on the same snapshot (the estimator brought to the core's state)."""
        quoter, si, qs = self.run.quoter, self.si, self.qs
        est = quoter.estimator
        est._sum_r2, est._sum_vol, est._sum_t = (
            float(qs[rc.QS_SUM_R2]),
            float(qs[rc.QS_SUM_VOL]),
            float(qs[rc.QS_SUM_T]),
        )
        est._t = float(qs[rc.QS_T])
        est.mid_usd, est.best_bid_usd, est.best_ask_usd = (float(qs[j]) for j in (rc.QS_MID, rc.QS_BID, rc.QS_ASK))
        interval = float(qs[rc.QS_INTERVAL])
        ts_ns = int(si[SI_CLOCK])
        vi, pend = self.view[1], self.view[3]
        npd = int(vi[rc.VI_N_PEND])
        reserve = {s: float(sum(pend[j, rc.P_SZ] for j in range(npd) if pend[j, rc.P_SIDE] == k))
                   for k, s in enumerate(("bid", "ask"))}  # fmt: skip
        snap = est.snapshot(
            ts_ns / 1e9, inventory_coins=float(self.sf[SF_SEEN_POS]), max_position_coins=quoter.max_position_coins,
            ts_ns=ts_ns, margin_usd=float(self.pf[PF_MARGIN]),
        )  # fmt: skip
        quoter._fast.build(
            snap, rng=quoter.rng, reserved_coins=reserve, interval_s=None if math.isnan(interval) else interval
        )
        raise InvalidParameterError(  # the reference built a ladder the compiled core could not: report it as such
            f"the compiled replay loop could not build the ladder at exchange time {ts_ns} ns, the reference could; "
            "replay with compiled=False"
        )

    def _sync(self) -> None:
        """The venue's attributes, the run's record, equity, shapes and stop from the loop's state; the buffers
        drained."""
        run, venue, si, sf = self.run, self.run.venue, self.si, self.sf
        venue.k, venue.clock, venue.nfill = int(si[SI_K]), int(si[SI_CLOCK]), int(si[SI_NFILL])
        venue._booked, venue._seen, venue._lk = int(si[SI_BOOKED]), int(si[SI_SEEN]), int(si[SI_LK])
        venue._next_oid, venue.rejects = int(si[SI_NEXT_OID]), int(si[SI_REJECTS])
        venue.no_slot, venue.zero_lot = int(si[SI_NO_SLOT]), int(si[SI_ZERO_LOT])
        venue.position_coins, venue.cash_usd = float(sf[SF_POS]), float(sf[SF_CASH])
        venue.seen_position_coins, venue.seen_cash_usd = float(sf[SF_SEEN_POS]), float(sf[SF_SEEN_CASH])
        venue.max_abs_position_coins = float(sf[SF_MAX_ABS])
        venue._local_traded, venue._traded_seen = float(sf[SF_LOCAL_TRADED]), float(sf[SF_TRADED_SEEN])
        run.n_refresh = int(si[SI_N_REFRESH])
        n_eq = int(si[SI_N_EQ])
        if n_eq:
            run._equity_rows(self.eq[:n_eq, 0], self.eq[:n_eq, 1])
            si[SI_N_EQ] = 0
        n_sh = int(si[SI_N_SHAPES])
        shapes = self.shapes
        run.shapes.extend(n_sh, lambda a, b, c: shapes[a:b:c])
        si[SI_N_SHAPES] = 0
        rec, qs = run.rec, self.qs
        # the core's sums are the whole run's (the Python step records nothing before the hand-over)
        rec.model_impact_usd = float(qs[rc.QS_REC_IMPACT])
        rec.model_expected_usd = float(qs[rc.QS_REC_EXPECTED])
        rec._eff_sum = float(qs[rc.QS_REC_EFF_SUM])
        rec._eff_n = int(qs[rc.QS_REC_EFF_N])
        rec.refreshes = int(self.qi[rc.QI_REFRESHES])
        stop = int(si[SI_STOP])
        if stop:
            run.stop = _STOPS[stop]


def _loaded(feed: Any, index: int) -> bool:
    """Whether getting chunk ``index`` reads nothing more from the source: made already, read ahead (the grid's
    first rows), or the source has ended."""
    return index < feed._next + len(feed._raw) or feed._ended


__all__ = ["BUFFER_ROWS", "CompiledRun", "loop_reason", "run_loop"]
