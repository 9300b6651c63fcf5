"""The replay kernel (numba): book updates, our orders' activation and cancellation, queue position, fills.

One call advances the replay from event row ``k0`` until the exchange clock passes ``t_end_ns`` and returns a
status code, as hftbacktest's ``elapse()`` does:

* ``STATUS_OK`` (0): stopped at ``t_end_ns``; ``STATUS_END`` (1): end of data; ``STATUS_FILLS_FULL`` (2): the
  fill buffer is nearly full, or the market-path recorder full (the caller grows it and calls again from the
  returned row).

Fill rules (the exchange side; the strategy's view, with the response latency, is the venue's business):

* **Queue** (``queue_kind``): ``QUEUE_RISK_AVERSE`` (the quantity ahead of us shrinks only by trades at our
  price, and never exceeds the level's quantity); ``QUEUE_POWER`` and ``QUEUE_LOG``: hftbacktest's probabilistic
  models, where a decrease of the level not explained by trades is a cancellation that falls behind us with
  probability ``f(back) / (f(back) + f(front))``, ``f(x) = x^n`` or ``log(1 + x)``; the estimate is kept ``>= 0``
  (hftbacktest lets it go negative, so that a later trade can fill more than its own size).
* **Trades**: a trade *through* our price (a sell below our bid, a buy above our ask) fills us completely; at our
  price, the quantity past the queue ahead fills us, in whole lots.
* **Crossing** (``cross``): when a book row moves the best opposite price onto or through our resting price
  without a trade, a price-time-priority book cannot stay crossed: our order was executed. ``CROSS_ALL`` (the
  default, as hftbacktest's partial-fill exchange): the whole remainder fills at our price. ``CROSS_QTY``: only
  the quantity that crossed, i.e. the increase of the opposite level that reached our price, allotted to our
  crossed orders best price first, in whole lots (rounded down); the rest keeps resting. ``CROSS_OFF``: trades
  only (the rule before crossing fills existed).
* **Equal timestamps** (``market_first``): an order arrival or cancel stamped with the same ns as market rows
  comes after them (``True``, the default, as hftbacktest's event loop, and the cautious reading of a millisecond
  clock: the rows stamped ``t`` may all have happened before our order got there, so it neither trades on them nor
  gets ahead of what they added to its queue) or before them (``False``).
* **Lots**: an order's size is a whole number of lots (``lot`` coins, its size rounded to the nearest lot when
  placed; an order of zero lots is not placed) and so is every fill: the quantity past the queue is rounded to the
  nearest lot, as hftbacktest's ``is_filled`` does (less than half a lot stays owed, the queue position negative,
  until more trades make up a lot); a crossing of ``CROSS_QTY`` rounds down. A fill's size is its whole number
  of lots in coins (:func:`lots_to_coins`: 350 lots of 0.001 are 0.35), never a floating-point leftover.

Our orders never change the replayed book. An order that leaves the book (filled, cancelled, post-only rejected)
is ``DONE`` with its exchange time in ``done_ts`` until its owner frees the slot: the strategy learns of it a
response latency later.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..data.book import book_row, path_bbo, path_trade
from ..data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    EXCH_EVENT,
    KIND_MASK,
    LOCAL_EVENT,
    TRADE_EVENT,
)

STATUS_OK = 0
STATUS_END = 1
STATUS_FILLS_FULL = 2

#: the market-path recorder's carry (int64): rows written, the path clock (ns), the last two-sided best (ticks of
#: the band)
P_NQ, P_NT, P_CLOCK, P_LAST_BID, P_LAST_ASK = range(5)

QUEUE_RISK_AVERSE = 0
QUEUE_POWER = 1
QUEUE_LOG = 2

CROSS_OFF = 0
CROSS_ALL = 1
CROSS_QTY = 2

# order slot states
FREE = 0
PENDING = 1
LIVE = 2
DONE = 3
WHY_FILLED = 1
WHY_CANCELLED = 2
WHY_REJECTED = 3

#: One order slot of ours: ``state`` (FREE; PENDING: sent, not yet arrived; LIVE: resting; DONE: left the book at
#: ``done_ts``, the slot not yet freed by its owner), ``side`` (+1 bid, -1 ask), ``tick`` (price, ticks of the book
#: grid), ``lots`` (remaining size, lots), ``qty`` (the same in coins, :func:`lots_to_coins`), ``front`` (quantity
#: ahead of us, coins; <= 0 at the front, a negative value being trades past the queue not yet a whole lot),
#: ``cum_trade`` (trades at our price since the last depth update, coins), ``live_ts`` (arrival, ns), ``dead_ts``
#: (cancel takes effect, ns; int64 max: none), ``done_ts`` (left the book, ns), ``why`` (why it left:
#: ``WHY_FILLED``, ``WHY_CANCELLED``, ``WHY_REJECTED``), ``level`` (ladder level) and ``oid`` (the venue's id of
#: the order). One record array, not one array a field: two fields of one dtype cannot be swapped silently.
order_dtype = np.dtype(
    [("state", np.int64), ("side", np.int64), ("tick", np.int64), ("lots", np.int64), ("qty", np.float64),
     ("front", np.float64), ("cum_trade", np.float64), ("live_ts", np.int64), ("dead_ts", np.int64),
     ("done_ts", np.int64), ("why", np.int64), ("level", np.int64), ("oid", np.int64)],
    align=True,
)  # fmt: skip
#: One fill of ours: exchange time (ns), side (+1 bought, -1 sold), price (ticks), size (coins, whole lots), ladder
#: level, the mid when it happened (USD) and the order's ``oid``.
fill_dtype = np.dtype(
    [("ts", np.int64), ("side", np.int64), ("tick", np.int64), ("qty", np.float64), ("level", np.int64),
     ("mid", np.float64), ("oid", np.int64)],
    align=True,
)  # fmt: skip
NEVER = np.iinfo(np.int64).max

# book state slots (see hyper_make.data.book)
_BEST_BID, _BEST_ASK, _N, _BASE = 0, 1, 2, 5


@nb.njit(cache=True, inline="always")
def _f(x: float, kind: int, n: float) -> float:
    if kind == QUEUE_POWER:
        return x**n
    return np.log1p(x)


@nb.njit(cache=True)
def _slots_in_use(orders):  # type: ignore[no-untyped-def]
    """One past the last slot holding a pending or live order (0 if none): no other slot can change while the
    kernel runs (orders are placed between its calls, in the lowest free slot), so its loops stop there."""
    for s in range(orders.shape[0] - 1, -1, -1):
        if orders[s].state == PENDING or orders[s].state == LIVE:
            return s + 1
    return 0


@nb.njit(cache=True)
def _next_order_event(orders, n_used):  # type: ignore[no-untyped-def]
    """Earliest pending activation or cancellation time of our orders (ns); int64 max if none."""
    t = np.iinfo(np.int64).max
    for s in range(n_used):
        o = orders[s]
        if o.state == PENDING and o.live_ts < t:
            t = o.live_ts
        if (o.state == PENDING or o.state == LIVE) and o.dead_ts < t:
            t = o.dead_ts
    return t


@nb.njit(cache=True)
def _done(s, orders, bid_slot, ask_slot, base, nb_ticks, t, why):  # type: ignore[no-untyped-def]
    """Order ``s`` leaves the book at ``t`` (ns) for reason ``why``: DONE until its owner frees the slot."""
    o = orders[s]
    if o.state == LIVE:
        i = o.tick - base
        if 0 <= i < nb_ticks:
            lookup = bid_slot if o.side > 0 else ask_slot
            if lookup[i] == s:
                lookup[i] = -1
    o.state = DONE
    o.done_ts = t
    o.why = why


@nb.njit(cache=True)
def _order_events(clock, bid, ask, st, orders, bid_slot, ask_slot, n_used):  # type: ignore[no-untyped-def]
    """Activate the orders arrived by ``clock`` (post-only check, back of the queue) and remove the ones whose
    cancel took effect; returns the post-only rejects."""
    base = st[_BASE]
    nb_ticks = st[_N]
    rejects = 0
    for s in range(n_used):
        o = orders[s]
        if o.state == PENDING and o.live_ts <= clock:
            i = o.tick - base
            if i < 0 or i >= nb_ticks:  # outside the replayed band: the exchange cannot show it to us
                _done(s, orders, bid_slot, ask_slot, base, nb_ticks, o.live_ts, WHY_REJECTED)
                continue
            if o.side > 0:
                if st[_BEST_ASK] < nb_ticks and i >= st[_BEST_ASK]:
                    _done(s, orders, bid_slot, ask_slot, base, nb_ticks, o.live_ts, WHY_REJECTED)
                    rejects += 1
                    continue
                o.front = bid[i]
                bid_slot[i] = s
            else:
                if st[_BEST_BID] >= 0 and i <= st[_BEST_BID]:
                    _done(s, orders, bid_slot, ask_slot, base, nb_ticks, o.live_ts, WHY_REJECTED)
                    rejects += 1
                    continue
                o.front = ask[i]
                ask_slot[i] = s
            o.cum_trade = 0.0
            o.state = LIVE
        if (o.state == PENDING or o.state == LIVE) and o.dead_ts <= clock:
            _done(s, orders, bid_slot, ask_slot, base, nb_ticks, o.dead_ts, WHY_CANCELLED)
    return rejects


@nb.njit(cache=True, inline="always")
def lots_to_coins(n, lot):  # type: ignore[no-untyped-def]
    """``n`` lots of ``lot`` coins, in coins: ``n / (1/lot)`` when ``1/lot`` is a whole number (a decimal lot such
    as 0.001: 350 lots give 0.35, the float nearest the decimal, not 350·0.001 = 0.35000000000000003), else
    ``n·lot``."""
    inv = np.rint(1.0 / lot)
    if inv >= 1.0 and abs(inv * lot - 1.0) < 1e-12:
        return n / inv
    return n * lot


@nb.njit(cache=True)
def _fill(s, n_lots, clock, mid, orders, bid_slot, ask_slot, base, nb_ticks, fills, nfill, lot):  # type: ignore[no-untyped-def]
    """Record a fill of ``n_lots`` of order ``s`` (at most its remainder) at ``clock``; returns the fill count."""
    o = orders[s]
    if n_lots > o.lots:
        n_lots = o.lots
    if n_lots <= 0:
        return nfill
    f = fills[nfill]
    f.ts = clock
    f.side = o.side
    f.tick = o.tick
    f.qty = lots_to_coins(n_lots, lot)
    f.level = o.level
    f.mid = mid
    f.oid = o.oid
    o.lots -= n_lots
    o.qty = lots_to_coins(o.lots, lot)
    if o.lots <= 0:
        _done(s, orders, bid_slot, ask_slot, base, nb_ticks, clock, WHY_FILLED)
    return nfill + 1


@nb.njit(cache=True)
def _cross(is_bid_row, row_i, added, clock, mid, st, orders, bid_slot, ask_slot, fills, nfill, lot, cross, n_used):  # type: ignore[no-untyped-def]
    """Fill our orders on the other side that the best ``is_bid_row`` price now reaches (see the module doc)."""
    base = st[_BASE]
    nb_ticks = st[_N]
    if cross == CROSS_ALL:
        best = st[_BEST_BID] if is_bid_row else st[_BEST_ASK]
        for s in range(n_used):
            o = orders[s]
            if o.state != LIVE or (o.side > 0) == is_bid_row:
                continue
            i = o.tick - base
            if (is_bid_row and i <= best) or (not is_bid_row and i >= best):
                nfill = _fill(s, o.lots, clock, mid, orders, bid_slot, ask_slot, base, nb_ticks, fills, nfill, lot)
        return nfill
    # CROSS_QTY: the increase `added` (coins) at row_i meets our orders at or better than row_i, best price first
    left = int(np.floor(added / lot + 1e-9))
    while left > 0:
        pick = -1
        for s in range(n_used):
            o = orders[s]
            if o.state != LIVE or (o.side > 0) == is_bid_row:
                continue
            i = o.tick - base
            if is_bid_row and i <= row_i and (pick < 0 or o.tick < orders[pick].tick):
                pick = s
            elif not is_bid_row and i >= row_i and (pick < 0 or o.tick > orders[pick].tick):
                pick = s
        if pick < 0:
            break
        take = min(left, orders[pick].lots)
        left -= take
        nfill = _fill(pick, take, clock, mid, orders, bid_slot, ask_slot, base, nb_ticks, fills, nfill, lot)
    return nfill


@nb.njit(cache=True)
def run_until(
    bid, ask, st,  # book
    ev, exch_ts, px, qty,  # events
    k0, t_end_ns, clock0,
    orders, bid_slot, ask_slot,  # our orders; tick index -> slot of our live order there (-1: none)
    fills, nfill0,  # fills out
    tick, lot, queue_kind, queue_n, use_bbo, cross, market_first,
    path=None,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """Advance to ``t_end_ns``; returns ``(status, next row, clock ns, fills so far, post-only rejects)``.

    ``path``: ``None``, or the chunk's market-path recorder ``(bbo, trades, times, carry, traded)``
    (:class:`PathRecorder`'s arrays), to which every change of the two-sided best bid or ask and every trade on a
    two-sided book is appended as this book walks the rows (:func:`hyper_make.data.book.market_path`'s rules: the
    clock is the running maximum of the rows' exchange times); ``traded[0]`` is the coins of every trade row before
    the next row, summed row by row from the data's start (the book walks every row once, in order)."""
    m = ev.size
    n_slots = orders.shape[0]
    cap = fills.shape[0]
    base = st[_BASE]
    nb_ticks = st[_N]
    clock = clock0
    nfill = nfill0
    rejects = 0
    k = k0
    n_used = _slots_in_use(orders)
    next_order_ts = _next_order_event(orders, n_used)
    # the path recorder's carry in locals (an array read per row costs as much as the row), written back on return
    nq = nt = pclock = last_b = last_a = 0
    vol = 0.0
    if path is not None:
        carry = path[3]
        nq, nt, pclock, last_b, last_a = carry[P_NQ], carry[P_NT], carry[P_CLOCK], carry[P_LAST_BID], carry[P_LAST_ASK]
        vol = path[4][0]
    while k < m:
        e = ev[k]
        if (e & np.uint64(EXCH_EVENT)) == 0:
            k += 1  # a local-only copy (hftbacktest's event-order correction): the exchange side skips it
            continue
        t = exch_ts[k]
        if t > t_end_ns:
            # the next row is later: our orders arrive and cancels take effect by then all the same (on this book)
            if next_order_ts <= t_end_ns:
                rejects += _order_events(t_end_ns, bid, ask, st, orders, bid_slot, ask_slot, n_used)
            if path is not None:
                _carry_out(path, nq, nt, pclock, last_b, last_a, vol)
            return 0, k, max(clock, t_end_ns), nfill, rejects
        # a row adds at most one fill per slot (and a cross a second) and one path row: stop while they all fit
        if nfill > cap - 2 * n_slots or (path is not None and (nq >= path[0].shape[0] or nt >= path[1].shape[0])):
            if path is not None:
                _carry_out(path, nq, nt, pclock, last_b, last_a, vol)
            return 2, k, clock, nfill, rejects
        # our arrivals and cancels due before this row (at its ns too unless the market goes first)
        if next_order_ts < t or (next_order_ts == t and not market_first):
            rejects += _order_events(t - 1 if market_first else t, bid, ask, st, orders, bid_slot, ask_slot, n_used)
            next_order_ts = _next_order_event(orders, n_used)
        if t > clock:
            clock = t
        kind = int(e & np.uint64(KIND_MASK))
        is_buy = (e & np.uint64(BUY_EVENT)) != 0
        if path is not None and t > pclock:
            pclock = t
        if kind == TRADE_EVENT:
            vol += qty[k]
            tt = int(np.rint(px[k] / tick))
            mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
            if path is not None:
                nt = path_trade(path[0], path[1], path[2], nt, st, tick, pclock, px[k], qty[k], is_buy)
            for s in range(n_used):
                o = orders[s]
                if o.state != LIVE:
                    continue
                # a sell aggressor hits bids, a buy aggressor lifts asks
                if (o.side > 0) == is_buy:
                    continue
                through = tt < o.tick if o.side > 0 else tt > o.tick
                if through:
                    nfill = _fill(s, o.lots, clock, mid, orders, bid_slot, ask_slot, base, nb_ticks, fills, nfill, lot)
                elif tt == o.tick:
                    o.cum_trade += qty[k]
                    o.front -= qty[k]
                    lots = int(np.rint(-o.front / lot))
                    if lots > 0:
                        o.front = 0.0
                        nfill = _fill(
                            s, lots, clock, mid, orders, bid_slot, ask_slot, base, nb_ticks, fills, nfill, lot
                        )
        elif kind != DEPTH_BBO_EVENT or use_bbo:
            prev_bb = st[_BEST_BID]
            prev_ba = st[_BEST_ASK]
            i = -1
            added = 0.0
            if kind == DEPTH_CLEAR_EVENT:
                book_row(bid, ask, st, e, 0, 0.0, True)
            else:
                i = int(np.rint(px[k] / tick)) - base
                if 0 <= i < nb_ticks:
                    prev = bid[i] if is_buy else ask[i]
                    book_row(bid, ask, st, e, i, qty[k], True)
                    new = bid[i] if is_buy else ask[i]
                    added = new - prev
                    s = bid_slot[i] if is_buy else ask_slot[i]
                    if s >= 0:
                        o = orders[s]
                        if queue_kind == QUEUE_RISK_AVERSE:
                            o.front = min(o.front, new)
                        else:
                            chg = prev - new - o.cum_trade
                            o.cum_trade = 0.0
                            if chg <= 0.0:
                                o.front = min(o.front, new)
                            else:
                                front = o.front
                                back = max(prev - front, 0.0)
                                fb = _f(back, queue_kind, queue_n)
                                ff = _f(front, queue_kind, queue_n)
                                p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
                                est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
                                o.front = max(min(est, new), 0.0)
                else:
                    book_row(bid, ask, st, e, i, qty[k], True)
                    i = -1
            if path is not None:
                nq, last_b, last_a = path_bbo(path[0], path[1], path[2], nq, st, tick, pclock, last_b, last_a)
            if cross != CROSS_OFF and kind != DEPTH_CLEAR_EVENT:
                mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
                if is_buy and (st[_BEST_BID] > prev_bb or (cross == CROSS_QTY and added > 0.0 and i >= 0)):
                    nfill = _cross(True, i, added, clock, mid, st, orders, bid_slot, ask_slot, fills, nfill, lot,
                                   cross, n_used)  # fmt: skip
                elif not is_buy and (st[_BEST_ASK] < prev_ba or (cross == CROSS_QTY and added > 0.0 and i >= 0)):
                    nfill = _cross(False, i, added, clock, mid, st, orders, bid_slot, ask_slot, fills, nfill, lot,
                                   cross, n_used)  # fmt: skip
        k += 1
    if path is not None:
        _carry_out(path, nq, nt, pclock, last_b, last_a, vol)
    return 1, k, clock, nfill, rejects


@nb.njit(cache=True, inline="always")
def _carry_out(path, nq, nt, pclock, last_b, last_a, vol):  # type: ignore[no-untyped-def]
    carry = path[3]
    carry[P_NQ], carry[P_NT], carry[P_CLOCK], carry[P_LAST_BID], carry[P_LAST_ASK] = nq, nt, pclock, last_b, last_a
    path[4][0] = vol


@nb.njit(cache=True)
def local_until(bid, ask, st, ev, local_ts, px, qty, k0, t_end_ns, tick, use_bbo, traded0):  # type: ignore[no-untyped-def]
    """The strategy's copy of the book: apply the rows it has received (``LOCAL_EVENT`` rows, in order, while their
    local time is ``<= t_end_ns``) from row ``k0``; returns ``(next row, traded0 + traded coins received)`` (the
    running sum is passed in so that a call split at a chunk boundary adds the same floats in the same order)."""
    m = ev.size
    base = st[_BASE]
    traded = traded0
    k = k0
    while k < m:
        e = ev[k]
        if (e & np.uint64(LOCAL_EVENT)) == 0:
            k += 1
            continue
        if local_ts[k] > t_end_ns:
            break
        kind = int(e & np.uint64(KIND_MASK))
        if kind == TRADE_EVENT:
            traded += qty[k]
        elif kind == DEPTH_CLEAR_EVENT:
            book_row(bid, ask, st, e, 0, 0.0, True)
        elif kind != DEPTH_BBO_EVENT or use_bbo:
            book_row(bid, ask, st, e, int(np.rint(px[k] / tick)) - base, qty[k], True)
        k += 1
    return k, traded


@nb.njit(cache=True)
def place(orders, oid, side, tick, qty, level, arrive_ns, lot):  # type: ignore[no-untyped-def]
    """Send a new order (``oid``; +1 bid, -1 ask; ``tick``; ``qty`` coins, rounded to whole lots of ``lot`` coins;
    ladder ``level``) that arrives at ``arrive_ns`` and joins the back of its queue; returns its slot, -1 when every
    slot is in use, -2 when ``qty`` rounds to zero lots."""
    lots = int(np.rint(qty / lot))
    if lots <= 0:
        return -2
    for s in range(orders.shape[0]):
        o = orders[s]
        if o.state == FREE:
            o.state = PENDING
            o.side = side
            o.tick = tick
            o.lots = lots
            o.qty = lots_to_coins(lots, lot)
            o.front = 0.0
            o.cum_trade = 0.0
            o.live_ts = arrive_ns
            o.dead_ts = NEVER
            o.done_ts = NEVER
            o.why = 0
            o.level = level
            o.oid = oid
            return s
    return -1


@nb.njit(cache=True)
def cancel(orders, oid, at_ns):  # type: ignore[no-untyped-def]
    """Cancel order ``oid`` effective at ``at_ns`` (it may fill until then); returns its slot or -1 if gone."""
    for s in range(orders.shape[0]):
        o = orders[s]
        if (o.state == PENDING or o.state == LIVE) and o.oid == oid:
            if o.dead_ts > at_ns:
                o.dead_ts = at_ns
            return s
    return -1


@nb.njit(cache=True)
def _grid_refresh(
    t_now, orders, n_side, n_tick, n_new, entry_ns, resp_ns, level_qty, lot, next_oid,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """One refresh of the fixed grid, with what the strategy knows at ``t_now`` (hftbacktest's grid-trading
    example): an order whose end it has seen (``done_ts + resp_ns <= t_now``) is forgotten; an acknowledged order
    (``live_ts + resp_ns <= t_now``) with no cancel sent and not on the new grid is cancelled; a new price without
    an order of ours there (any side, forgotten or not) gets one of ``level_qty``. Returns the next oid."""
    n_slots = orders.shape[0]
    for s in range(n_slots):
        o = orders[s]
        if o.state == DONE and o.done_ts <= t_now - resp_ns:
            o.state = FREE
    for s in range(n_slots):
        o = orders[s]
        if o.state == FREE or o.dead_ts != NEVER or o.live_ts > t_now - resp_ns:
            continue
        if o.state == DONE and o.why == WHY_REJECTED:  # acknowledged as rejected: never cancellable
            continue
        keep = False
        for j in range(n_new):
            if n_side[j] == o.side and n_tick[j] == o.tick:
                keep = True
                break
        if not keep:  # (an order already gone at the exchange: the cancel is sent and answered "not found")
            o.dead_ts = t_now + entry_ns
    for j in range(n_new):
        taken = False
        for s in range(n_slots):
            if orders[s].state != FREE and orders[s].tick == n_tick[j]:
                taken = True
                break
        if not taken:
            place(orders, next_oid, n_side[j], n_tick[j], level_qty, j, t_now + entry_ns, lot)
            next_oid += 1
    return next_oid


#: :func:`run_grid` stopped at the end of the exchange side's chunk (give it the next one) / of the local side's.
GRID_NEED_EXCH = 3
GRID_NEED_LOCAL = 4
# slots of run_grid's int64 state vector (see :func:`grid_state`)
_G_PHASE, _G_K, _G_KL, _G_CLOCK, _G_TNEXT, _G_T0, _G_NFILL, _G_REJ, _G_OID, _G_END = range(10)


def grid_state(t0_ns: int, refresh_ns: int) -> np.ndarray:
    """The resumable state of :func:`run_grid`: ``[phase, exchange row, local row, clock ns, next refresh ns, t0 ns,
    fills in the buffer, post-only rejects, next oid, end seen]``, starting at ``t0_ns`` (the first row either side
    sees)."""
    return np.array([0, 0, 0, t0_ns, t0_ns + refresh_ns, t0_ns, 0, 0, 0, 0], dtype=np.int64)


@nb.njit(cache=True)
def run_grid(
    bid, ask, st, lbid, lask, lst, ev, exch_ts, px, qty, lev, local_ts, lpx, lqty, exch_last, local_last, orders,
    bid_slot, ask_slot, fills, gs, tick, lot, queue_kind, queue_n, use_bbo, cross, market_first, refresh_ns, entry_ns,
    resp_ns, warmup_ns, depths_bps, level_qty,
):  # type: ignore[no-untyped-def]  # fmt: skip
    """The replay in numba for a fixed ladder, resumable chunk by chunk: every ``refresh_ns`` the same depths (bps
    from the mid of the book the strategy holds, ``lbid/lask/lst``, rebuilt from the rows received by then) and
    equal sizes (coins) on both sides, sent with ``entry_ns`` latency, fills and acknowledgements seen ``resp_ns``
    after they happen.

    The exchange side reads the chunk ``ev, exch_ts, px, qty`` and the strategy's side the chunk ``lev, local_ts,
    lpx, lqty`` (the same rows, or a later or earlier chunk: each side is at its own place in the data);
    ``exch_last``/``local_last`` say whether each is the data's last chunk. The state ``gs``
    (:func:`grid_state`) carries everything else between calls. Returns ``GRID_NEED_EXCH`` / ``GRID_NEED_LOCAL``
    (call again with that side's next chunk, its row reset to 0), ``STATUS_FILLS_FULL`` (take the fills out, reset
    their count, call again) or ``STATUS_END``. A run split at any rows gives the fills of the unsplit run: each
    side resumes at the row, clock and order state where it stopped.
    """
    n = depths_bps.size
    n_side = np.empty(2 * n, np.int64)
    n_tick = np.empty(2 * n, np.int64)
    t0 = gs[_G_T0]
    while True:
        if gs[_G_PHASE] == 0:
            status, k, clock, nfill, rej = run_until(
                bid, ask, st, ev, exch_ts, px, qty, gs[_G_K], gs[_G_TNEXT], gs[_G_CLOCK], orders, bid_slot, ask_slot,
                fills, gs[_G_NFILL], tick, lot, queue_kind, queue_n, use_bbo, cross, market_first,
            )  # fmt: skip
            gs[_G_K] = k
            gs[_G_CLOCK] = clock
            gs[_G_NFILL] = nfill
            gs[_G_REJ] += rej
            if status == STATUS_FILLS_FULL:
                return STATUS_FILLS_FULL
            if status == STATUS_END:
                if not exch_last:
                    return GRID_NEED_EXCH
                gs[_G_END] = 1
            gs[_G_PHASE] = 1
        kl, _ = local_until(lbid, lask, lst, lev, local_ts, lpx, lqty, gs[_G_KL], gs[_G_TNEXT], tick, use_bbo, 0.0)
        gs[_G_KL] = kl
        if kl >= lev.size and not local_last:
            return GRID_NEED_LOCAL
        if gs[_G_END] != 0:
            return STATUS_END
        gs[_G_PHASE] = 0
        t_now = gs[_G_TNEXT]
        gs[_G_TNEXT] = t_now + refresh_ns
        bb = lst[_BEST_BID]
        ba = lst[_BEST_ASK]
        lbase = lst[_BASE]  # read each refresh: the band may have moved (re-centred)
        if t_now - t0 < warmup_ns or bb < 0 or ba >= lst[_N]:
            continue
        # hftbacktest's arithmetic: best prices as tick·price, the mid their mean
        bid_usd = (bb + lbase) * tick
        ask_usd = (ba + lbase) * tick
        if bid_usd <= 0.0 or ask_usd <= bid_usd:
            continue
        mid = 0.5 * (bid_usd + ask_usd)
        n_new = 0
        for i in range(n):
            b = int(np.floor(mid * (1.0 - depths_bps[i] * 1e-4) / tick))
            if b - lbase < ba:
                dup = False
                for j in range(n_new):
                    dup = dup or (n_side[j] == 1 and n_tick[j] == b)
                if not dup:
                    n_side[n_new] = 1
                    n_tick[n_new] = b
                    n_new += 1
        for i in range(n):
            a = int(np.ceil(mid * (1.0 + depths_bps[i] * 1e-4) / tick))
            if a - lbase > bb:
                dup = False
                for j in range(n_new):
                    dup = dup or (n_side[j] == -1 and n_tick[j] == a)
                if not dup:
                    n_side[n_new] = -1
                    n_tick[n_new] = a
                    n_new += 1
        gs[_G_OID] = _grid_refresh(t_now, orders, n_side, n_tick, n_new, entry_ns, resp_ns, level_qty, lot, gs[_G_OID])
