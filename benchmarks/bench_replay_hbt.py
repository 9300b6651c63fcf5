"""The hftbacktest side of ``bench_replay.py``: a 20-level grid per side, refreshed every interval (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, uint64
from numba.typed import Dict

GTX = 1  # hftbacktest.order.GTX (post-only)
LIMIT = 0  # hftbacktest.order.LIMIT
BUY = 1


@njit
def grid_strategy(hbt, refresh_ns, depths_bps, qty):  # type: ignore[no-untyped-def]
    """Every ``refresh_ns``: cancel orders not on the new grid, submit the missing ones; returns submissions."""
    submits = 0
    while hbt.elapse(refresh_ns) == 0:
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        if depth.best_bid_tick <= -2147483648 + 1 or depth.best_ask_tick >= 2147483647 - 1:
            continue
        if depth.best_bid <= 0 or depth.best_ask <= depth.best_bid:
            continue
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
        for oid, px in new_bids.items():
            if oid not in orders:
                hbt.submit_buy_order(0, oid, px, qty, GTX, LIMIT, False)
                submits += 1
        for oid, px in new_asks.items():
            if oid not in orders:
                hbt.submit_sell_order(0, oid, px, qty, GTX, LIMIT, False)
                submits += 1
    return submits
