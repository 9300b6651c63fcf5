"""The replay kernel (numba): book updates, our orders' activation and cancellation, queue position, fills.

One call advances the replay from event row ``k0`` until the exchange clock passes ``t_end_ns`` and returns a
status code, as hftbacktest's ``elapse()`` does:

* ``STATUS_OK`` (0): stopped at ``t_end_ns``; ``STATUS_END`` (1): end of data; ``STATUS_FILLS_FULL`` (2): the
  fill buffer is nearly full (the caller grows it and calls again from the returned row).

Queue models (``queue_kind``): ``QUEUE_RISK_AVERSE`` (the quantity ahead of us shrinks only by trades at our
price, and never exceeds the level's quantity); ``QUEUE_POWER`` and ``QUEUE_LOG``: hftbacktest's probabilistic
models, where a decrease of the level not explained by trades is a cancellation that falls behind us with
probability ``f(back) / (f(back) + f(front))``, ``f(x) = x^n`` or ``log(1 + x)``.
A trade *through* our price (a sell below our bid, a buy above our ask) fills us completely; our own orders
never change the replayed book.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..data.book import book_row
from ..data.events import BUY_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT, KIND_MASK, TRADE_EVENT

STATUS_OK = 0
STATUS_END = 1
STATUS_FILLS_FULL = 2

QUEUE_RISK_AVERSE = 0
QUEUE_POWER = 1
QUEUE_LOG = 2

# order slot states
FREE = 0
PENDING = 1
LIVE = 2

# book state slots (see hyper_make.data.book)
_BEST_BID, _BEST_ASK, _N, _BASE = 0, 1, 2, 5


@nb.njit(cache=True, inline="always")
def _f(x: float, kind: int, n: float) -> float:
    if kind == QUEUE_POWER:
        return x**n
    return np.log1p(x)


@nb.njit(cache=True)
def run_until(
    bid,
    ask,
    st,  # book
    ev,
    exch_ts,
    px,
    qty,  # events
    k0,
    t_end_ns,
    clock0,
    o_state,
    o_side,
    o_tick,
    o_qty,
    o_front,
    o_cum_trade,
    o_live_ts,
    o_dead_ts,
    o_level,  # our orders
    f_ts,
    f_side,
    f_tick,
    f_qty,
    f_level,
    f_mid,
    nfill0,  # fills out
    tick,
    queue_kind,
    queue_n,
    use_bbo,
):  # type: ignore[no-untyped-def]
    """Advance to ``t_end_ns``; returns ``(status, next row, clock ns, fills so far, post-only rejects)``."""
    m = ev.size
    n_slots = o_state.size
    cap = f_ts.size
    base = st[_BASE]
    nb_ticks = st[_N]
    clock = clock0
    nfill = nfill0
    rejects = 0
    k = k0
    while k < m:
        t = exch_ts[k]
        if t > clock:
            clock = t
        if clock > t_end_ns:
            return 0, k, clock, nfill, rejects
        if nfill > cap - n_slots:
            return 2, k, clock, nfill, rejects
        # orders: activation (post-only check, join the back of the queue) and cancellation
        for s in range(n_slots):
            if o_state[s] == PENDING and o_live_ts[s] <= clock:
                i = o_tick[s] - base
                if i < 0 or i >= nb_ticks:
                    o_state[s] = FREE
                    continue
                if o_side[s] > 0:
                    if st[_BEST_ASK] < nb_ticks and i >= st[_BEST_ASK]:
                        o_state[s] = FREE
                        rejects += 1
                        continue
                    o_front[s] = bid[i]
                else:
                    if st[_BEST_BID] >= 0 and i <= st[_BEST_BID]:
                        o_state[s] = FREE
                        rejects += 1
                        continue
                    o_front[s] = ask[i]
                o_cum_trade[s] = 0.0
                o_state[s] = LIVE
            if o_state[s] != FREE and o_dead_ts[s] <= clock:
                o_state[s] = FREE
        e = ev[k]
        kind = int(e & np.uint64(KIND_MASK))
        is_buy = (e & np.uint64(BUY_EVENT)) != 0
        if kind == TRADE_EVENT:
            tt = int(np.rint(px[k] / tick))
            mid = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
            for s in range(n_slots):
                if o_state[s] != LIVE:
                    continue
                # a sell aggressor hits bids, a buy aggressor lifts asks
                if (o_side[s] > 0) == is_buy:
                    continue
                fill = 0.0
                through = tt < o_tick[s] if o_side[s] > 0 else tt > o_tick[s]
                if through:
                    fill = o_qty[s]
                elif tt == o_tick[s]:
                    o_cum_trade[s] += qty[k]
                    left = o_front[s] - qty[k]
                    if left < 0.0:
                        fill = min(-left, o_qty[s])
                        o_front[s] = 0.0
                    else:
                        o_front[s] = left
                if fill > 0.0:
                    f_ts[nfill] = clock
                    f_side[nfill] = o_side[s]
                    f_tick[nfill] = o_tick[s]
                    f_qty[nfill] = fill
                    f_level[nfill] = o_level[s]
                    f_mid[nfill] = mid
                    nfill += 1
                    o_qty[s] -= fill
                    if o_qty[s] <= 1e-12:
                        o_state[s] = FREE
        elif kind != DEPTH_BBO_EVENT or use_bbo:
            if kind == DEPTH_CLEAR_EVENT:
                book_row(bid, ask, st, e, 0, 0.0, True)
            else:
                ti = int(np.rint(px[k] / tick))
                i = ti - base
                prev = 0.0
                if 0 <= i < nb_ticks:
                    prev = bid[i] if is_buy else ask[i]
                book_row(bid, ask, st, e, i, qty[k], True)
                if 0 <= i < nb_ticks:
                    new = bid[i] if is_buy else ask[i]
                    for s in range(n_slots):
                        if o_state[s] != LIVE or o_tick[s] != ti or (o_side[s] > 0) != is_buy:
                            continue
                        if queue_kind == QUEUE_RISK_AVERSE:
                            o_front[s] = min(o_front[s], new)
                        else:
                            chg = prev - new - o_cum_trade[s]
                            o_cum_trade[s] = 0.0
                            if chg <= 0.0:
                                o_front[s] = min(o_front[s], new)
                            else:
                                front = o_front[s]
                                back = max(prev - front, 0.0)
                                fb = _f(back, queue_kind, queue_n)
                                ff = _f(front, queue_kind, queue_n)
                                p_back = fb / (fb + ff) if fb + ff > 0.0 else 1.0
                                est = front - (1.0 - p_back) * chg + min(back - p_back * chg, 0.0)
                                o_front[s] = max(min(est, new), 0.0)
        k += 1
    return 1, k, clock, nfill, rejects
