"""One numba pass over recorded events for the simulator-preset fit: the book on a time grid, trades, depth recovery.

:func:`scan` rebuilds its own book (the rules of :func:`hyper_make.data.book.book_row`, exchange rows only, one
monotone exchange clock) and emits, per chunk:

* every ``step_ns`` of the clock (from the first two-sided book): the mid (USD) and the spread (ticks) as they were
  at that time (the book before the first row stamped later);
* every ``prof_every``-th grid time: others' size on the ``K`` ticks from each side's best outwards (coins) and the
  best bid and ask (ticks of the grid);
* every trade: time, price, size, aggressor side and the mid just before it;
* depth-recovery probes: at the first trade of each market order (a new time or aggressor side), the size resting
  at the hit side's best price then, and at that same price ``taus_ns`` later (coins; 0 once the price has
  moved through it; NaN when the feed's levels of that side no longer reach it).

State carried across chunks lives in the arrays the caller passes (``carry``, the probe ring).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..data.book import book_row
from ..data.events import BUY_EVENT, DEPTH_BBO_EVENT, EXCH_EVENT, KIND_MASK

_BEST_BID, _BEST_ASK, _N, _BASE = 0, 1, 2, 5
#: carry slots: exchange clock, next grid time (-1: not started), grid points so far, last trade time, last trade
#: side (+1 buy, -1 sell, 0 none), probe ring head, probe ring count
C_CLOCK, C_NEXT_G, C_G, C_LAST_TS, C_LAST_SIDE, C_HEAD, C_COUNT = range(7)
N_CARRY = 7
PROBE_CAP = 1 << 16


@nb.njit(cache=True)
def _emit_grid(
    bid, ask, st, tick, carry, until, step_ns, prof_every, K, g_ts, g_mid, g_spr, ng, p_ts, p_b0, p_a0, p_bq, p_aq, npf
):  # type: ignore[no-untyped-def]
    n = st[_N]
    b, a = st[_BEST_BID], st[_BEST_ASK]
    two = b >= 0 and a < n
    while carry[C_NEXT_G] >= 0 and carry[C_NEXT_G] < until and two:
        g_ts[ng] = carry[C_NEXT_G]
        g_mid[ng] = 0.5 * (b + a + 2 * st[_BASE]) * tick
        g_spr[ng] = a - b
        ng += 1
        if carry[C_G] % prof_every == 0:
            p_ts[npf] = carry[C_NEXT_G]
            p_b0[npf] = b
            p_a0[npf] = a
            for k in range(K):
                p_bq[npf, k] = bid[b - k] if b - k >= 0 else 0.0
                p_aq[npf, k] = ask[a + k] if a + k < n else 0.0
            npf += 1
        carry[C_G] += 1
        carry[C_NEXT_G] += step_ns
    return ng, npf


@nb.njit(cache=True)
def _probe_qty(bid, ask, side, i):  # type: ignore[no-untyped-def]
    """Size at tick ``i`` of ``side`` (+1 bid), or NaN when the book shows no level of that side beyond it (the feed's
    levels do not reach that far: the size there is unknown, not 0)."""
    q = bid if side > 0 else ask
    if q[i] > 0.0:
        return q[i]
    j = i
    step = -1 if side > 0 else 1
    for _ in range(100_000):
        j += step
        if j < 0 or j >= q.shape[0]:
            return np.nan
        if q[j] > 0.0:
            return 0.0
    return np.nan


@nb.njit(cache=True)
def _check_probes(bid, ask, carry, clock, taus, pr_t0, pr_side, pr_idx, pr_q0, pr_q, pr_next, out_q0, out_q, out_t, no):  # type: ignore[no-untyped-def]
    """Measure the probes whose next horizon ended before ``clock``; emit those done."""
    cap = pr_t0.shape[0]
    nt = taus.shape[0]
    while carry[C_COUNT] > 0:
        h = carry[C_HEAD]
        j = pr_next[h]
        if pr_t0[h] + taus[j] >= clock:
            # probes are in time order and measured in order: the oldest not due means none is
            # (a later probe's earlier horizon may be due: scan on)
            break
        pr_q[h, j] = _probe_qty(bid, ask, pr_side[h], pr_idx[h])
        pr_next[h] = j + 1
        if j + 1 == nt:
            out_t[no] = pr_t0[h]
            out_q0[no] = pr_q0[h]
            for i in range(nt):
                out_q[no, i] = pr_q[h, i]
            no += 1
            carry[C_HEAD] = (h + 1) % cap
            carry[C_COUNT] -= 1
    # later probes: their earlier horizons (the oldest probe waits on a long one)
    c = carry[C_COUNT]
    for m in range(1, c):
        h = (carry[C_HEAD] + m) % cap
        j = pr_next[h]
        while j < nt - 1 and pr_t0[h] + taus[j] < clock:
            pr_q[h, j] = _probe_qty(bid, ask, pr_side[h], pr_idx[h])
            j += 1
        pr_next[h] = j
        if pr_t0[h] + taus[0] >= clock:
            break
    return no


@nb.njit(cache=True)
def scan(
    bid,
    ask,
    st,
    ev,
    exch_ts,
    px,
    qty,
    tick,
    use_bbo,
    carry,
    step_ns,
    prof_every,
    K,
    taus,
    pr_t0,
    pr_side,
    pr_idx,
    pr_q0,
    pr_q,
    pr_next,
    n_grid_cap,
    n_prof_cap,
):  # type: ignore[no-untyped-def]
    """The pass over one chunk (see the module docstring); returns the emitted arrays."""
    m = ev.size
    base = st[_BASE]
    n = st[_N]
    nt = taus.shape[0]
    g_ts = np.empty(n_grid_cap, np.int64)
    g_mid = np.empty(n_grid_cap)
    g_spr = np.empty(n_grid_cap, np.int64)
    p_ts = np.empty(n_prof_cap, np.int64)
    p_b0 = np.empty(n_prof_cap, np.int64)
    p_a0 = np.empty(n_prof_cap, np.int64)
    p_bq = np.empty((n_prof_cap, K))
    p_aq = np.empty((n_prof_cap, K))
    t_ts = np.empty(m, np.int64)
    t_px = np.empty(m)
    t_qty = np.empty(m)
    t_buy = np.empty(m, np.bool_)
    t_mid = np.empty(m)
    o_cap = m + pr_t0.shape[0]
    out_t = np.empty(o_cap, np.int64)
    out_q0 = np.empty(o_cap)
    out_q = np.empty((o_cap, nt))
    ng = 0
    npf = 0
    ntr = 0
    no = 0
    cap = pr_t0.shape[0]
    for k in range(m):
        if (ev[k] & np.uint64(EXCH_EVENT)) == 0:
            continue
        c = exch_ts[k]
        if c > carry[C_CLOCK]:
            ng, npf = _emit_grid(bid, ask, st, tick, carry, c, step_ns, prof_every, K, g_ts, g_mid, g_spr, ng, p_ts,
                                 p_b0, p_a0, p_bq, p_aq, npf)  # fmt: skip
            no = _check_probes(bid, ask, carry, c, taus, pr_t0, pr_side, pr_idx, pr_q0, pr_q, pr_next, out_q0,
                               out_q, out_t, no)  # fmt: skip
            carry[C_CLOCK] = c
        clock = carry[C_CLOCK]
        kind = int(ev[k] & np.uint64(KIND_MASK))
        b, a = st[_BEST_BID], st[_BEST_ASK]
        if kind == 2:
            if b >= 0 and a < n:
                buy = (ev[k] & np.uint64(BUY_EVENT)) != 0
                t_ts[ntr] = clock
                t_px[ntr] = px[k]
                t_qty[ntr] = qty[k]
                t_buy[ntr] = buy
                t_mid[ntr] = 0.5 * (b + a + 2 * base) * tick
                ntr += 1
                side = 1 if buy else -1
                if (clock != carry[C_LAST_TS] or side != carry[C_LAST_SIDE]) and carry[C_COUNT] < cap:
                    h = (carry[C_HEAD] + carry[C_COUNT]) % cap
                    pr_t0[h] = clock
                    pr_side[h] = -side  # the hit side: +1 bid (a seller hit it), -1 ask
                    pr_idx[h] = b if side < 0 else a
                    pr_q0[h] = bid[b] if side < 0 else ask[a]
                    pr_next[h] = 0
                    carry[C_COUNT] += 1
                carry[C_LAST_TS] = clock
                carry[C_LAST_SIDE] = side
            continue
        if kind == DEPTH_BBO_EVENT and not use_bbo:
            continue
        book_row(bid, ask, st, ev[k], int(np.rint(px[k] / tick)) - base, qty[k], True)
        if carry[C_NEXT_G] < 0 and st[_BEST_BID] >= 0 and st[_BEST_ASK] < n:
            carry[C_NEXT_G] = clock + step_ns  # the grid starts at the first two-sided book
    return (g_ts[:ng], g_mid[:ng], g_spr[:ng], p_b0[:npf], p_a0[:npf], p_bq[:npf], p_aq[:npf], t_ts[:ntr],
            t_px[:ntr], t_qty[:ntr], t_buy[:ntr], t_mid[:ntr], out_t[:no], out_q0[:no], out_q[:no],
            p_ts[:npf])  # fmt: skip
