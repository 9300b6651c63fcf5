"""The hftbacktest side of ``bench_replay.py``: a 20-level grid per side, refreshed every interval (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, uint64
from numba.typed import Dict

GTX = 1  # hftbacktest.order.GTX (post-only)
LIMIT = 0  # hftbacktest.order.LIMIT
BUY = 1


@njit
def _requote(hbt, depths_bps, send_qty, sent):  # type: ignore[no-untyped-def]
    """One refresh of the grid around the mid: cancel our orders off the new grid, submit the missing ones as GTX
    (order id = tick), recording each new order's size in ``sent``; returns the submissions (0 without a book)."""
    hbt.clear_inactive_orders(0)
    depth = hbt.depth(0)
    if depth.best_bid_tick <= -2147483648 + 1 or depth.best_ask_tick >= 2147483647 - 1:
        return 0
    if depth.best_bid <= 0 or depth.best_ask <= depth.best_bid:
        return 0
    mid = 0.5 * (depth.best_bid + depth.best_ask)
    tick = depth.tick_size
    new_bids = Dict.empty(np.uint64, np.float64)
    new_asks = Dict.empty(np.uint64, np.float64)
    for d in depths_bps:
        b = np.floor(mid * (1.0 - d * 1e-4) / tick)
        a = np.ceil(mid * (1.0 + d * 1e-4) / tick)
        if b < depth.best_ask_tick:
            new_bids[uint64(b)] = b * tick
        if a > depth.best_bid_tick:
            new_asks[uint64(a)] = a * tick
    orders = hbt.orders(0)
    values = orders.values()
    while values.has_next():
        o = values.get()
        if o.cancellable:
            if (o.side == BUY and o.order_id not in new_bids) or (o.side != BUY and o.order_id not in new_asks):
                hbt.cancel(0, o.order_id, False)
    submits = 0
    for oid, px in new_bids.items():
        if oid not in orders:
            hbt.submit_buy_order(0, oid, px, send_qty, GTX, LIMIT, False)
            sent[oid] = send_qty
            submits += 1
    for oid, px in new_asks.items():
        if oid not in orders:
            hbt.submit_sell_order(0, oid, px, send_qty, GTX, LIMIT, False)
            sent[oid] = send_qty
            submits += 1
    return submits


@njit
def grid_strategy(hbt, refresh_ns, depths_bps, qty, lot):  # type: ignore[no-untyped-def]
    """Every ``refresh_ns``: cancel orders not on the new grid, submit the missing ones; returns ``(submissions,
    the status that ended the loop)``: 1 is the end of the data, anything else an early stop the caller must report.

    Sizes go out a hair below whole lots (``qty - 1e-9·lot``): an order filled for exactly its remaining size stays
    in hftbacktest's exchange book and the next trade there stops ``elapse`` with status 14 (its issue #312)."""
    send_qty = qty - 1e-9 * lot
    sent = Dict.empty(np.uint64, np.float64)  # unused here; one dict for the run, not one per refresh
    submits = 0
    status = 0
    while True:
        status = hbt.elapse(refresh_ns)
        if status != 0:
            break
        submits += _requote(hbt, depths_bps, send_qty, sent)
    return submits, status


@njit
def grid_strategy_fills(hbt, refresh_ns, depths_bps, qty, lot, out_ts, out_side, out_tick, out_qty):  # type: ignore[no-untyped-def]
    """The same grid (``grid_strategy``), with every fill rebuilt from the order records, for the peer check.

    hftbacktest's own position and balance count only the last fill of an order (its issue #316), so the fills are
    read from its orders instead: between two answers an order's ``leaves_qty`` drop is one fill, at the order's
    ``exch_timestamp`` and price. ``wait_next_feed(True, ...)`` returns at every answer, so two fills of one order
    merge only when they share one exchange timestamp (one answer time): the comparison is per order and ns.

    Orders are sent for ``qty - 1e-9·lot``: an order filled for exactly its remaining size stays in hftbacktest's
    exchange book as filled and the next trade there stops the backtest with status 14 (its issue #312); a size a
    hair below whole lots is filled "for more than its remainder" instead, which removes it. The rebuilt sizes are
    rounded to whole lots. Returns ``(fills, submissions, last status)``."""
    send_qty = qty - 1e-9 * lot
    last = Dict.empty(np.uint64, np.float64)  # order id -> leaves_qty at the last look
    n = 0
    submits = 0
    status = hbt.elapse(0)
    t_next = hbt.current_timestamp + refresh_ns
    while status == 0 or status == 2 or status == 3:
        while hbt.current_timestamp < t_next:
            status = hbt.wait_next_feed(True, t_next - hbt.current_timestamp)
            orders = hbt.orders(0)
            values = orders.values()
            while values.has_next():
                o = values.get()
                prev = last.get(o.order_id, o.qty)
                if o.leaves_qty < prev - 1e-12:
                    out_ts[n] = o.exch_timestamp
                    out_side[n] = 1 if o.side == BUY else -1
                    out_tick[n] = o.price_tick
                    out_qty[n] = np.rint((prev - o.leaves_qty) / lot) * lot
                    n += 1
                last[o.order_id] = o.leaves_qty
            if status != 0 and status != 2 and status != 3:
                break
        if status != 0 and status != 2 and status != 3:
            break
        t_next += refresh_ns
        submits += _requote(hbt, depths_bps, send_qty, last)
    return n, submits, status
