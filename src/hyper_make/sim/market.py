"""Event-driven synthetic market (numba core): fair value, others' book, order flow, our queue positions.

Mechanics, all in integer price ticks (``tick_usd``) with a continuous latent fair value ``F`` (ticks):

* ``F`` diffuses as Brownian motion (σ in ticks per √s) plus Poisson jumps; the book only sees it at events.
* Others quote ``depth(k) = d0·(1 + slope·k)`` coins at each tick ``k`` beyond their best (``floor(F-h)`` bid,
  ``ceil(F+h)`` ask), or, with a depth profile, the coins per tick of the profile segment holding ``k``. Depth
  taken by trades is a per-tick deficit that refills at rate ``r``:
  ``deficit(t) = deficit(t0)·exp(-r·(t - t0))``.
* Market orders arrive as a Poisson process with Pareto sizes (or sizes from a table of their quantiles with a
  Pareto tail), their signs fair coins or, with order-flow memory, following a persistent trend sign; a fraction
  is informed: larger (they sweep several ticks) and followed at once by a fair-value move in their direction
  (the move they traded on).
* Our orders join the back of the queue at their tick (``ahead`` = others' visible size there) after the order
  latency, are filled by price-time priority (others ahead first), and leave after the cancel latency.
* Reaction to displayed size: when our size at a tick exceeds ``θ`` times the usual depth, others put
  ``φ·excess`` in the queue ahead of us (they step ahead), and the fair value drifts away from our net displayed
  excess at ``ℓ`` ticks/s per unit of excess (they front-run it: a large bid lifts the price out of its reach and
  against a short position it is meant to cover). Resting orders of ours beyond the fair value by
  more than ``pickoff_ticks`` are taken by latency arbitrageurs.
* Our taker orders (inventory exits) walk others' visible book, consuming it.

Accounting identity (checked by the tests): ``cash + q·F·tick = spread + adverse + impact + fees + inventory``,
where ``inventory = Σ q·dF (not caused by us) - adverse`` and ``impact = taker slippage + Σ q·dF(lean)``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .config import MarketConfig

# ---- parameter vector indices ---------------------------------------------------------------------------------
P_SIGMA, P_JUMP_RATE, P_JUMP_STD, P_QUOTE_RATE, P_HALF_SPREAD, P_DEPTH0, P_DEPTH_SLOPE, P_REFILL = range(8)
P_MO_RATE, P_MO_XMIN, P_MO_ALPHA, P_MO_XMAX, P_INF_FRAC, P_INF_MULT, P_INF_MOVE, P_PICKOFF = range(8, 16)
P_REACT_THR, P_STEP_AHEAD, P_LEAN, P_MAKER_FEE, P_TAKER_FEE, P_TICK_USD, P_MARKOUT, P_BASE_TICK = range(16, 24)
#: segments of a depth profile (0: the linear ``d0·(1 + slope·k)`` law); the profile follows the fixed parameters:
#: ``p[N_PARAMS + i]`` the first tick of segment ``i``, ``p[N_PARAMS + n + i]`` its coins per tick
P_PROFILE_N = 24
#: points of a market-order size table (0: the Pareto law); after the profile: ``n`` probabilities, then ``n`` sizes
P_SIZE_N = 25
#: order-sign memory: the share of market orders that follow the flow's trend sign, and its persistence per order
P_SIGN_W, P_SIGN_PHI = 26, 27
N_PARAMS = 28

# ---- state vector indices -------------------------------------------------------------------------------------
S_T, S_F, S_CASH, S_Q, S_SPREAD, S_ADVERSE, S_IMPACT, S_FEES, S_QDF, S_CUM_LEAN = range(10)
S_EVENTS, S_FILLS, S_MAKER_VOL, S_TAKERS, S_TAKER_VOL, S_PEAK_EQ, S_MAX_DD, S_PEAK_Q = range(10, 18)
S_PEND_TAKER, S_PEND_T, S_PICKOFFS, S_REJECTED, S_LEAN_USD, S_SLIP_USD, S_MOS, S_INFORMED = range(18, 26)
S_INF_FILLS, S_MK_HEAD, S_MK_CNT, S_MAKER_NOTIONAL, S_REF_F, S_TAPE_N, S_TAPE_BID, S_TAPE_ASK = range(26, 34)
S_MO_VOL, S_FILL_N, S_FILL_LOST = range(34, 37)
#: the next market event, drawn ahead and kept across calls: its time, its five uniform/normal draws, whether it is
#: pending, and the time of the last event (inter-arrival times run from events, not from the calls)
S_NXT_PENDING, S_NXT_T, S_NXT_UTYPE, S_NXT_Z, S_NXT_UDIR, S_NXT_UINF, S_NXT_USIZE, S_T_EV = range(37, 45)
#: the order flow's trend sign (+1/-1, 0 before the first order) and the next event's draw for its flip (drawn only
#: with sign memory, so a market without it keeps its random stream)
S_TREND, S_NXT_UTREND = 45, 46
N_STATE = 47

#: our fills since the strategy last read them (:meth:`Market.take_fills`): time (s), order slot, side (+1 bought,
#: -1 sold), price (ticks), size (coins), fee (USD)
FILL_T, FILL_SLOT, FILL_SIDE, FILL_TICK, FILL_QTY, FILL_FEE = range(6)
FILL_CAP = 4096

#: tape row columns (optional recording for calibration): time (s), kind (2 trade, 5 BBO), side (+1 buy
#: aggressor / bid book, -1 sell / ask book), price (ticks), size (coins)
TAPE_T, TAPE_KIND, TAPE_SIDE, TAPE_TICK, TAPE_QTY = range(5)
TAPE_TRADE, TAPE_BBO = 2, 5

#: order slots: side +1 bid, -1 ask, 0 free
MAX_ORDERS = 64
MARKOUT_CAP = 4096
WALK_LIMIT_TICKS = 1_000_000


@nb.njit(cache=True, inline="always")
def _usual_depth(p: np.ndarray, k: float) -> float:
    """Others' usual size (coins) ``k`` ticks beyond their best: the profile segment holding ``k``, else the
    linear law ``d0·(1 + slope·k)``."""
    n = int(p[P_PROFILE_N])
    if n == 0:
        return p[P_DEPTH0] * (1.0 + p[P_DEPTH_SLOPE] * max(k, 0.0))
    i = n - 1
    while i > 0 and p[N_PARAMS + i] > k:  # few segments: a scan from the deep end is cheapest
        i -= 1
    return p[N_PARAMS + n + i]


@nb.njit(cache=True, inline="always")
def _mo_size(p: np.ndarray, u: float) -> float:
    """A market order's size (coins) for the uniform draw ``u``: the Pareto law ``x_min·(1-u)^(-1/α)``, or, with a
    size table ``(u_i, x_i)``, log-linear between its points and the Pareto tail ``x_n·((1-u)/(1-u_n))^(-1/α)``
    beyond the last (the cap applies after)."""
    n = int(p[P_SIZE_N])
    if n == 0:
        return p[P_MO_XMIN] * (1.0 - u) ** (-1.0 / p[P_MO_ALPHA])
    o = N_PARAMS + 2 * int(p[P_PROFILE_N])
    if u >= p[o + n - 1]:
        return p[o + 2 * n - 1] * ((1.0 - u) / (1.0 - p[o + n - 1])) ** (-1.0 / p[P_MO_ALPHA])
    i = 0
    while i < n - 2 and p[o + i + 1] <= u:
        i += 1
    w = (u - p[o + i]) / (p[o + i + 1] - p[o + i])
    return math.exp((1.0 - w) * math.log(p[o + n + i]) + w * math.log(p[o + n + i + 1]))


@nb.njit(cache=True, inline="always")
def _signed_flow(p: np.ndarray, s: np.ndarray, u_dir: float, u_trend: float) -> int:
    """A market order's sign with order-flow memory: the trend sign flips with probability ``(1 - φ)/2`` at each
    order (so it keeps its sign over ``l`` orders with correlation ``φ^l``); the order follows it with probability
    ``w``, else its sign is a fair coin: the signs' autocorrelation at lag ``l`` is ``w²·φ^l``."""
    if s[S_TREND] == 0.0:
        s[S_TREND] = 1.0 if u_trend < 0.5 else -1.0
    elif u_trend < 0.5 * (1.0 - p[P_SIGN_PHI]):
        s[S_TREND] = -s[S_TREND]
    w = p[P_SIGN_W]
    if u_dir < w:
        return int(s[S_TREND])
    return 1 if (u_dir - w) / (1.0 - w) < 0.5 else -1


@nb.njit(cache=True)
def _deficit(p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, tick: int, t: float) -> float:
    idx = tick - int(p[P_BASE_TICK])
    if idx < 0 or idx >= deficit.shape[0]:
        return 0.0
    return deficit[idx] * math.exp(-p[P_REFILL] * (t - tlast[idx]))


@nb.njit(cache=True)
def _consume(p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, tick: int, x: float, t: float) -> None:
    idx = tick - int(p[P_BASE_TICK])
    if idx < 0 or idx >= deficit.shape[0] or x <= 0.0:
        return
    deficit[idx] = deficit[idx] * math.exp(-p[P_REFILL] * (t - tlast[idx])) + x
    tlast[idx] = t


@nb.njit(cache=True)
def others_best(p: np.ndarray, f: float) -> tuple[int, int]:
    """Others' best bid and ask ticks for fair value ``f`` (ticks)."""
    # int(): numba's math.floor/ceil return floats for float input in some versions
    return int(math.floor(f - p[P_HALF_SPREAD])), int(math.ceil(f + p[P_HALF_SPREAD]))  # noqa: RUF046


@nb.njit(cache=True)
def visible_best(
    p: np.ndarray, f: float, o_side: np.ndarray, o_tick: np.ndarray, o_init: np.ndarray
) -> tuple[int, int]:
    """The visible best bid and ask ticks: others' (for fair value ``f``, ticks) and our orders that rest."""
    bid, ask = others_best(p, f)
    for j in range(o_side.shape[0]):
        if o_init[j] == 1:
            if o_side[j] > 0 and o_tick[j] > bid:
                bid = o_tick[j]
            elif o_side[j] < 0 and o_tick[j] < ask:
                ask = o_tick[j]
    if ask <= bid:  # cannot happen with post-only orders; keep the snapshot valid anyway
        ask = bid + 1
    return int(bid), int(ask)


@nb.njit(cache=True)
def _place_orders(o_side, o_tick, o_size, o_ahead, o_active_t, o_cancel_t, o_init, sides, ticks, sizes, t_active):  # type: ignore[no-untyped-def]
    """Put new orders into the lowest free slots, in order; their slots (``-1`` past the free ones)."""
    out = np.full(sides.shape[0], -1, dtype=np.int64)
    j = 0
    for k in range(sides.shape[0]):
        while j < o_side.shape[0] and o_side[j] != 0:
            j += 1
        if j == o_side.shape[0]:
            break
        o_side[j] = sides[k]
        o_tick[j] = ticks[k]
        o_size[j] = sizes[k]
        o_ahead[j] = 0.0
        o_active_t[j] = t_active
        o_cancel_t[j] = np.inf
        o_init[j] = 0
        out[k] = j
    return out


@nb.njit(cache=True)
def _cancel_orders(o_side, o_cancel_t, slots, t_cancel):  # type: ignore[no-untyped-def]
    """Mark live orders of ``slots`` cancelled as of ``t_cancel`` (they may fill until then)."""
    for j in slots:
        if o_side[j] != 0:
            o_cancel_t[j] = t_cancel


@nb.njit(cache=True)
def visible(p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, tick: int, side: int, f: float, t: float) -> float:
    """Others' visible size (coins) at ``tick`` on ``side`` (+1 bid, -1 ask)."""
    obb, oba = others_best(p, f)
    if side > 0:
        if tick > obb:
            return 0.0
        k = obb - tick
    else:
        if tick < oba:
            return 0.0
        k = tick - oba
    return max(_usual_depth(p, k) - _deficit(p, deficit, tlast, tick, t), 0.0)


@nb.njit(cache=True)
def book_levels(
    p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, f: float, t: float, n: int
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Others' book at fair value ``f`` (ticks), time ``t`` (s): their nominal best bid and ask ticks and the
    visible size (coins) at each of the ``n`` ticks from there outwards (index 0 the best)."""
    obb, oba = others_best(p, f)
    bq = np.empty(n)
    aq = np.empty(n)
    for k in range(n):
        bq[k] = visible(p, deficit, tlast, obb - k, 1, f, t)
        aq[k] = visible(p, deficit, tlast, oba + k, -1, f, t)
    return obb, oba, bq, aq


@nb.njit(cache=True)
def _tape_push(s: np.ndarray, tape: np.ndarray, t: float, kind: int, side: int, tick: float, qty: float) -> None:
    n = int(s[S_TAPE_N])
    if n >= tape.shape[0]:
        return
    tape[n, TAPE_T] = t
    tape[n, TAPE_KIND] = kind
    tape[n, TAPE_SIDE] = side
    tape[n, TAPE_TICK] = tick
    tape[n, TAPE_QTY] = qty
    s[S_TAPE_N] = n + 1


@nb.njit(cache=True)
def _tape_bbo(s: np.ndarray, p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, tape: np.ndarray, t: float) -> None:
    """Record others' best bid and ask (first ticks with visible size) when either changed."""
    if tape.shape[0] == 0:
        return
    obb, oba = others_best(p, s[S_F])
    vb = visible(p, deficit, tlast, obb, 1, s[S_F], t)
    for _ in range(1000):
        if vb > 1e-12:
            break
        obb -= 1
        vb = visible(p, deficit, tlast, obb, 1, s[S_F], t)
    va = visible(p, deficit, tlast, oba, -1, s[S_F], t)
    for _ in range(1000):
        if va > 1e-12:
            break
        oba += 1
        va = visible(p, deficit, tlast, oba, -1, s[S_F], t)
    if obb != s[S_TAPE_BID] or oba != s[S_TAPE_ASK]:
        _tape_push(s, tape, t, TAPE_BBO, 1, obb, vb)
        _tape_push(s, tape, t, TAPE_BBO, -1, oba, va)
        s[S_TAPE_BID] = obb
        s[S_TAPE_ASK] = oba


@nb.njit(cache=True)
def _equity(s: np.ndarray, p: np.ndarray) -> float:
    return s[S_CASH] + s[S_Q] * s[S_F] * p[P_TICK_USD]


@nb.njit(cache=True)
def _settle_markouts(s: np.ndarray, p: np.ndarray, mk: np.ndarray, t: float, force: bool) -> None:
    """Book the adverse-selection markout of fills older than the horizon (all of them when ``force``)."""
    cap = mk.shape[0]
    f_now = s[S_F] - s[S_CUM_LEAN]
    while s[S_MK_CNT] > 0:
        h = int(s[S_MK_HEAD])
        if not force and mk[h, 0] + p[P_MARKOUT] > t:
            break
        s[S_ADVERSE] += mk[h, 1] * (f_now - mk[h, 2]) * p[P_TICK_USD]
        s[S_MK_HEAD] = (h + 1) % cap
        s[S_MK_CNT] -= 1


@nb.njit(cache=True)
def _maker_fill(
    s: np.ndarray, p: np.ndarray, mk: np.ndarray, o_side: np.ndarray, o_tick: np.ndarray, o_size: np.ndarray,
    j: int, y: float, t: float, informed: bool, fl: np.ndarray,
) -> None:  # fmt: skip
    sgn = float(o_side[j])
    px = o_tick[j] * p[P_TICK_USD]
    s[S_CASH] -= sgn * y * px
    s[S_Q] += sgn * y
    s[S_SPREAD] += sgn * y * (s[S_F] - o_tick[j]) * p[P_TICK_USD]
    fee = p[P_MAKER_FEE] * y * px
    s[S_CASH] -= fee
    s[S_FEES] -= fee
    n = int(s[S_FILL_N])
    if n < fl.shape[0]:
        fl[n, FILL_T] = t
        fl[n, FILL_SLOT] = j
        fl[n, FILL_SIDE] = sgn
        fl[n, FILL_TICK] = o_tick[j]
        fl[n, FILL_QTY] = y
        fl[n, FILL_FEE] = fee
        s[S_FILL_N] = n + 1
    else:  # not read for a long time: the fill is booked, only its report is lost (counted)
        s[S_FILL_LOST] += 1
    s[S_FILLS] += 1
    s[S_MAKER_VOL] += y
    s[S_MAKER_NOTIONAL] += y * px
    if informed:
        s[S_INF_FILLS] += 1
    o_size[j] -= y
    if o_size[j] <= 1e-12:
        o_side[j] = 0
    cap = mk.shape[0]
    if s[S_MK_CNT] >= cap:  # ring full: settle the oldest now
        _settle_markouts(s, p, mk, mk[int(s[S_MK_HEAD]), 0] + p[P_MARKOUT], False)
        if s[S_MK_CNT] >= cap:
            _settle_markouts(s, p, mk, math.inf, False)
    tail = int((s[S_MK_HEAD] + s[S_MK_CNT]) % cap)
    mk[tail, 0] = t
    mk[tail, 1] = sgn * y
    mk[tail, 2] = s[S_F] - s[S_CUM_LEAN]
    s[S_MK_CNT] += 1


@nb.njit(cache=True)
def taker_walk(s: np.ndarray, p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, qty: float, t: float) -> float:
    """Our market order for ``qty`` coins (+ buy, - sell) through others' visible book; returns coins filled."""
    if qty == 0.0:
        return 0.0
    side = -1 if qty > 0 else 1  # the side of the book we take from
    rem = abs(qty)
    obb, oba = others_best(p, s[S_F])
    tick = oba if qty > 0 else obb
    cost = 0.0
    done = 0.0
    for _ in range(WALK_LIMIT_TICKS):
        if rem <= 1e-12:
            break
        v = visible(p, deficit, tlast, tick, side, s[S_F], t)
        x = min(rem, v)
        if x > 0:
            _consume(p, deficit, tlast, tick, x, t)
            cost += x * tick * p[P_TICK_USD]
            done += x
            rem -= x
        tick += 1 if qty > 0 else -1
    sgn = 1.0 if qty > 0 else -1.0
    s[S_CASH] -= sgn * cost
    s[S_Q] += sgn * done
    slip = sgn * (done * s[S_F] * p[P_TICK_USD] - cost)
    s[S_IMPACT] += slip
    s[S_SLIP_USD] += slip
    fee = p[P_TAKER_FEE] * cost
    s[S_CASH] -= fee
    s[S_FEES] -= fee
    s[S_TAKERS] += 1
    s[S_TAKER_VOL] += done
    return done


@nb.njit(cache=True)
def _market_order(
    s: np.ndarray, p: np.ndarray, deficit: np.ndarray, tlast: np.ndarray, mk: np.ndarray,
    o_side: np.ndarray, o_tick: np.ndarray, o_size: np.ndarray, o_ahead: np.ndarray, o_init: np.ndarray,
    buf: np.ndarray, direction: int, qty: float, t: float, informed: bool, vol_hist: np.ndarray, tape: np.ndarray,
    fl: np.ndarray,
) -> None:  # fmt: skip
    """An outside market order: ``direction`` +1 buys (takes asks), -1 sells (takes bids), ``qty`` coins."""
    book_side = -direction
    obb, oba = others_best(p, s[S_F])
    start = oba if direction > 0 else obb
    for j in range(o_side.shape[0]):
        if o_side[j] == book_side and o_init[j] == 1:
            if (direction > 0 and o_tick[j] < start) or (direction < 0 and o_tick[j] > start):
                start = o_tick[j]
    rem = qty
    tick = start
    deepest = start
    for _ in range(WALK_LIMIT_TICKS):
        if rem <= 1e-12:
            break
        rem0 = rem
        v = visible(p, deficit, tlast, tick, book_side, s[S_F], t)
        n_own = 0
        for j in range(o_side.shape[0]):
            if o_side[j] == book_side and o_init[j] == 1 and o_tick[j] == tick:
                buf[n_own] = j
                n_own += 1
        # own orders in queue order (least others ahead first)
        for a in range(1, n_own):
            b = a
            while b > 0 and o_ahead[buf[b]] < o_ahead[buf[b - 1]]:
                tmp = buf[b]
                buf[b] = buf[b - 1]
                buf[b - 1] = tmp
                b -= 1
        consumed = 0.0
        for a in range(n_own):
            j = buf[a]
            before = max(min(o_ahead[j], v) - consumed, 0.0)
            x = min(rem, before)
            consumed += x
            rem -= x
            if rem <= 1e-12:
                break
            y = min(rem, o_size[j])
            rem -= y
            _maker_fill(s, p, mk, o_side, o_tick, o_size, j, y, t, informed, fl)
        x = min(rem, max(v - consumed, 0.0))
        consumed += x
        rem -= x
        _consume(p, deficit, tlast, tick, consumed, t)
        for a in range(n_own):
            j = buf[a]
            if o_side[j] != 0:
                o_ahead[j] = max(min(o_ahead[j], v) - consumed, 0.0)
        if consumed > 0.0 or n_own > 0:
            deepest = tick
        if tape.shape[0] > 0 and rem0 - rem > 0.0:
            _tape_push(s, tape, t, TAPE_TRADE, direction, tick, rem0 - rem)
        tick += direction
    # volume by the deepest price it reached, in bps beyond the reference fair value (set by the strategy at the
    # start of each quote-horizon window): V(δ) = Σ over bins >= δ is the volume at or through δ over a window
    depth_bps = max(direction * (deepest - s[S_REF_F]), 0.0) / s[S_REF_F] * 1e4
    vol_hist[min(int(depth_bps), vol_hist.shape[0] - 1)] += qty - max(rem, 0.0)
    s[S_MO_VOL] += qty - max(rem, 0.0)


@nb.njit(cache=True)
def run_until(
    t_end: float,
    p: np.ndarray,
    s: np.ndarray,
    deficit: np.ndarray,
    tlast: np.ndarray,
    mk: np.ndarray,
    o_side: np.ndarray,
    o_tick: np.ndarray,
    o_size: np.ndarray,
    o_ahead: np.ndarray,
    o_active_t: np.ndarray,
    o_cancel_t: np.ndarray,
    o_init: np.ndarray,
    vol_hist: np.ndarray,
    rng: np.random.Generator,
    tape: np.ndarray,
    fl: np.ndarray,
) -> int:
    """Advance the market from ``s[S_T]`` to ``t_end`` (s); returns the number of market events processed.

    Every event draws the same six random numbers whatever our orders do, and the next event is drawn ahead and
    kept across calls (the fair value diffuses over the whole interval between two events, at the event), so two
    strategies run on one seed see the same arrival times, sizes, directions and diffusion however often each one
    calls (paired paths: a strategy that refreshes again soon after a refresh sees the same market); they differ
    only through our own effects.
    """
    # our orders occupy the lowest slots (placed into the lowest free ones, never added during a call): the loops
    # over them stop at the last slot in use
    hw = o_side.shape[0]
    while hw > 0 and o_side[hw - 1] == 0:
        hw -= 1
    o_side, o_tick, o_size, o_ahead = o_side[:hw], o_tick[:hw], o_size[:hw], o_ahead[:hw]
    o_active_t, o_cancel_t, o_init = o_active_t[:hw], o_cancel_t[:hw], o_init[:hw]
    buf = np.empty(max(o_side.shape[0], 1), dtype=np.int64)
    total_rate = p[P_MO_RATE] + p[P_JUMP_RATE] + p[P_QUOTE_RATE]
    n0 = s[S_EVENTS]
    while True:
        if s[S_NXT_PENDING] == 0.0:
            s[S_NXT_T] = s[S_T_EV] + rng.exponential(1.0 / total_rate)
            s[S_NXT_UTYPE] = rng.random()
            s[S_NXT_Z] = rng.standard_normal()
            s[S_NXT_UDIR] = rng.random()
            s[S_NXT_UINF] = rng.random()
            s[S_NXT_USIZE] = rng.random()
            if p[P_SIGN_W] > 0.0:
                s[S_NXT_UTREND] = rng.random()
            s[S_NXT_PENDING] = 1.0
        u_type, z, u_dir, u_inf, u_size = s[S_NXT_UTYPE], s[S_NXT_Z], s[S_NXT_UDIR], s[S_NXT_UINF], s[S_NXT_USIZE]
        t_next = s[S_NXT_T]
        last = t_next > t_end
        if last:
            t_next = t_end
        dt = t_next - s[S_T]  # since the last call or event: our orders' effects accrue over it
        # the market's own diffusion, over the whole interval since the last event, at the event
        dt_ev = 0.0 if last else t_next - s[S_T_EV]
        # fair value: diffusion (not ours) and lean against our displayed excess (ours)
        net_excess = 0.0
        obb, oba = others_best(p, s[S_F])
        for j in range(o_side.shape[0]):
            if o_side[j] != 0 and o_init[j] == 1:
                k = (obb - o_tick[j]) if o_side[j] > 0 else (o_tick[j] - oba)
                ex = o_size[j] / _usual_depth(p, k) - p[P_REACT_THR]
                if ex > 0:
                    net_excess += ex * o_side[j]
        d_diff = p[P_SIGMA] * math.sqrt(dt_ev) * z
        d_lean = p[P_LEAN] * net_excess * dt  # others front-run: the price moves away from our size
        s[S_QDF] += s[S_Q] * d_diff * p[P_TICK_USD]
        s[S_LEAN_USD] += s[S_Q] * d_lean * p[P_TICK_USD]
        s[S_IMPACT] += s[S_Q] * d_lean * p[P_TICK_USD]
        s[S_F] += d_diff + d_lean
        s[S_CUM_LEAN] += d_lean
        s[S_T] = t_next
        t = t_next
        # our order life cycle: cancels, activations (post-only: reject if crossing), pending taker exit
        obb, oba = others_best(p, s[S_F])
        for j in range(o_side.shape[0]):
            if o_side[j] == 0:
                continue
            if o_cancel_t[j] <= t:
                o_side[j] = 0
                continue
            if o_init[j] == 0 and o_active_t[j] <= t:
                if (o_side[j] > 0 and o_tick[j] >= oba) or (o_side[j] < 0 and o_tick[j] <= obb):
                    o_side[j] = 0
                    s[S_REJECTED] += 1
                    continue
                k = (obb - o_tick[j]) if o_side[j] > 0 else (o_tick[j] - oba)
                usual = _usual_depth(p, k)
                v = visible(p, deficit, tlast, o_tick[j], o_side[j], s[S_F], t)
                o_ahead[j] = v + p[P_STEP_AHEAD] * max(o_size[j] - p[P_REACT_THR] * usual, 0.0)
                o_init[j] = 1
        if s[S_PEND_TAKER] != 0.0 and s[S_PEND_T] <= t:
            taker_walk(s, p, deficit, tlast, s[S_PEND_TAKER], t)
            s[S_PEND_TAKER] = 0.0
        if last:
            break
        s[S_NXT_PENDING] = 0.0
        s[S_T_EV] = t
        s[S_EVENTS] += 1
        r = u_type * total_rate
        if r < p[P_MO_RATE]:
            informed = u_inf < p[P_INF_FRAC]
            direction = 1 if u_dir < 0.5 else -1
            if p[P_SIGN_W] > 0.0:
                direction = _signed_flow(p, s, u_dir, s[S_NXT_UTREND])
            qty = _mo_size(p, u_size)
            if informed:
                qty *= p[P_INF_MULT]
            qty = min(qty, p[P_MO_XMAX])
            s[S_MOS] += 1
            _market_order(
                s, p, deficit, tlast, mk, o_side, o_tick, o_size, o_ahead, o_init, buf, direction, qty, t,
                informed, vol_hist, tape, fl,
            )  # fmt: skip
            if informed:
                s[S_INFORMED] += 1
                mv = direction * p[P_INF_MOVE]
                s[S_QDF] += s[S_Q] * mv * p[P_TICK_USD]
                s[S_F] += mv
        elif r < p[P_MO_RATE] + p[P_JUMP_RATE]:
            jmp = p[P_JUMP_STD] * z  # reuse the normal: the diffusion step before a jump is immaterial
            s[S_QDF] += s[S_Q] * jmp * p[P_TICK_USD]
            s[S_F] += jmp
        # latency arbitrage: our stale orders beyond the fair value are taken whole
        for j in range(o_side.shape[0]):
            if o_side[j] != 0 and o_init[j] == 1:
                if (o_side[j] > 0 and o_tick[j] > s[S_F] + p[P_PICKOFF]) or (
                    o_side[j] < 0 and o_tick[j] < s[S_F] - p[P_PICKOFF]
                ):
                    s[S_PICKOFFS] += 1
                    _maker_fill(s, p, mk, o_side, o_tick, o_size, j, o_size[j], t, True, fl)
        _settle_markouts(s, p, mk, t, False)
        _tape_bbo(s, p, deficit, tlast, tape, t)
        eq = _equity(s, p)
        if eq > s[S_PEAK_EQ]:
            s[S_PEAK_EQ] = eq
        if s[S_PEAK_EQ] - eq > s[S_MAX_DD]:
            s[S_MAX_DD] = s[S_PEAK_EQ] - eq
        if abs(s[S_Q]) > s[S_PEAK_Q]:
            s[S_PEAK_Q] = abs(s[S_Q])
    return int(s[S_EVENTS] - n0)


class Market:
    """One simulated market path: the numba state arrays and the operations the strategy loop needs.

    ``Market(cfg, seed)``; ``place``/``cancel`` take effect after the configured latencies; ``run_until(t_s)``
    advances the events; ``liquidate()`` exits the inventory through the book at the current time.
    """

    def __init__(self, cfg: MarketConfig, seed: int | np.random.Generator, *, tape_rows: int = 0) -> None:
        self.cfg = cfg
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        f0 = cfg.mid0_usd / cfg.tick_usd
        n_prof = len(cfg.depth_profile_ticks)
        n_size = len(cfg.mo_size_table_probs)
        p = np.zeros(N_PARAMS + 2 * n_prof + 2 * n_size)
        ticks_per_bps = f0 * 1e-4
        p[P_SIGMA] = cfg.sigma_bps_per_sqrt_s * ticks_per_bps
        p[P_JUMP_RATE] = cfg.jump_rate_per_s
        p[P_JUMP_STD] = cfg.jump_std_bps * ticks_per_bps
        p[P_QUOTE_RATE] = cfg.quote_update_rate_per_s
        p[P_HALF_SPREAD] = cfg.half_spread_ticks
        p[P_DEPTH0] = cfg.depth_per_tick_coins
        p[P_DEPTH_SLOPE] = cfg.depth_slope_per_tick
        p[P_REFILL] = cfg.refill_rate_per_s
        p[P_MO_RATE] = cfg.mo_rate_per_s
        p[P_MO_XMIN] = cfg.mo_size_min_coins
        p[P_MO_ALPHA] = cfg.mo_size_tail
        p[P_MO_XMAX] = cfg.mo_size_max_coins
        p[P_INF_FRAC] = cfg.informed_frac
        p[P_INF_MULT] = cfg.informed_size_mult
        p[P_INF_MOVE] = cfg.informed_move_bps * ticks_per_bps
        p[P_PICKOFF] = cfg.pickoff_ticks
        p[P_REACT_THR] = cfg.react_threshold_frac
        p[P_STEP_AHEAD] = cfg.step_ahead_frac
        p[P_LEAN] = cfg.lean_bps_per_s * ticks_per_bps
        p[P_MAKER_FEE] = cfg.maker_fee_bps * 1e-4
        p[P_TAKER_FEE] = cfg.taker_fee_bps * 1e-4
        p[P_TICK_USD] = cfg.tick_usd
        p[P_MARKOUT] = cfg.markout_s
        p[P_BASE_TICK] = math.floor(f0) - cfg.window_ticks // 2
        p[P_PROFILE_N] = n_prof
        p[N_PARAMS : N_PARAMS + n_prof] = cfg.depth_profile_ticks
        p[N_PARAMS + n_prof : N_PARAMS + 2 * n_prof] = cfg.depth_profile_coins
        p[P_SIZE_N] = n_size
        p[P_SIGN_W] = cfg.mo_sign_trend_share
        p[P_SIGN_PHI] = cfg.mo_sign_trend_persistence
        o = N_PARAMS + 2 * n_prof
        p[o : o + n_size] = cfg.mo_size_table_probs
        p[o + n_size :] = cfg.mo_size_table_coins
        self.p = p
        self.s = np.zeros(N_STATE)
        self.s[S_F] = f0
        self.s[S_REF_F] = f0
        self.deficit = np.zeros(cfg.window_ticks)
        self.tlast = np.zeros(cfg.window_ticks)
        self.mk = np.zeros((MARKOUT_CAP, 3))
        self.o_side = np.zeros(MAX_ORDERS, dtype=np.int64)
        self.o_tick = np.zeros(MAX_ORDERS, dtype=np.int64)
        self.o_size = np.zeros(MAX_ORDERS)
        self.o_ahead = np.zeros(MAX_ORDERS)
        self.o_active_t = np.zeros(MAX_ORDERS)
        self.o_cancel_t = np.full(MAX_ORDERS, np.inf)
        self.o_init = np.zeros(MAX_ORDERS, dtype=np.int64)
        #: market-order volume (coins) by the deepest price reached, 1-bps bins beyond the reference fair value
        self.vol_hist = np.zeros(500)
        #: optional trade and BBO tape for calibration (``tape_rows`` rows at most; recording stops when full)
        self.tape = np.zeros((tape_rows, 5))
        self.fl = np.zeros((FILL_CAP, 6))
        self.s[S_TAPE_BID] = -1.0
        self.s[S_TAPE_ASK] = -1.0

    # ---- state ------------------------------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        """Current time (s)."""
        return float(self.s[S_T])

    @property
    def fair_usd(self) -> float:
        """Latent fair value (USD)."""
        return float(self.s[S_F] * self.cfg.tick_usd)

    @property
    def inventory_coins(self) -> float:
        """Our position (coins)."""
        return float(self.s[S_Q])

    @property
    def equity_usd(self) -> float:
        """``cash + q·F`` (USD), PnL marked to the fair value."""
        return float(self.s[S_CASH] + self.s[S_Q] * self.s[S_F] * self.cfg.tick_usd)

    def bbo_ticks(self) -> tuple[int, int]:
        """Visible best bid and ask (ticks), our resting orders included."""
        return visible_best(self.p, float(self.s[S_F]), self.o_side, self.o_tick, self.o_init)

    def resting(self) -> list[tuple[int, int, int, float]]:
        """Our live or pending orders not being cancelled: ``(slot, side, tick, size)``."""
        idx = np.nonzero((self.o_side != 0) & ~np.isfinite(self.o_cancel_t))[0]
        return [(int(j), int(self.o_side[j]), int(self.o_tick[j]), float(self.o_size[j])) for j in idx]

    # ---- actions ----------------------------------------------------------------------------------------------
    def place(self, side: int, tick: int, size_coins: float) -> int:
        """Send a post-only order (+1 bid, -1 ask) that rests after the order latency; returns its slot or -1."""
        return int(self.place_many(np.array([side]), np.array([tick]), np.array([size_coins]))[0])

    def place_many(self, sides: np.ndarray, ticks: np.ndarray, sizes_coins: np.ndarray) -> np.ndarray:
        """:meth:`place` for several orders at once; returns their slots, ``-1`` for the orders past the free
        slots."""
        return _place_orders(
            self.o_side, self.o_tick, self.o_size, self.o_ahead, self.o_active_t, self.o_cancel_t, self.o_init,
            sides, ticks, sizes_coins, self.t_s + self.cfg.order_latency_s,
        )  # fmt: skip

    def cancel_many(self, slots: np.ndarray) -> None:
        """:meth:`cancel` for several slots at once."""
        _cancel_orders(self.o_side, self.o_cancel_t, slots, self.t_s + self.cfg.cancel_latency_s)

    def cancel(self, slot: int) -> None:
        """Cancel an order; it can still fill until the cancel latency has passed."""
        self.cancel_many(np.array([slot], dtype=np.int64))

    def send_taker(self, qty_coins: float) -> None:
        """Market order of ``qty_coins`` (+ buy, - sell) through others' book, executed after the order latency."""
        self.s[S_PEND_TAKER] = qty_coins
        self.s[S_PEND_T] = self.t_s + self.cfg.order_latency_s

    def set_reference(self) -> None:
        """Start a new volume-at-depth window: depths of later market orders are measured from today's fair value."""
        self.s[S_REF_F] = self.s[S_F]

    def run_until(self, t_end_s: float) -> int:
        """Advance to ``t_end_s`` (s); returns the number of market events processed."""
        return run_until(
            float(t_end_s), self.p, self.s, self.deficit, self.tlast, self.mk, self.o_side, self.o_tick,
            self.o_size, self.o_ahead, self.o_active_t, self.o_cancel_t, self.o_init, self.vol_hist, self.rng,
            self.tape, self.fl,
        )  # fmt: skip

    def book_levels(self, n_ticks: int) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Others' book now: nominal best bid and ask ticks and the visible coins on the ``n_ticks`` ticks from
        each outwards (see :func:`book_levels`)."""
        return book_levels(self.p, self.deficit, self.tlast, float(self.s[S_F]), self.t_s, int(n_ticks))

    def take_fills(self) -> np.ndarray:
        """Our fills since the last call, rows of ``FILL_*`` columns (time s, slot, side, tick, coins, fee USD)."""
        n = int(self.s[S_FILL_N])
        out = self.fl[:n].copy()
        self.s[S_FILL_N] = 0
        return out

    @property
    def traded_coins(self) -> float:
        """Others' market-order volume so far (coins, cumulative)."""
        return float(self.s[S_MO_VOL])

    @property
    def cash_usd(self) -> float:
        """Our cash (USD): what our fills and fees moved."""
        return float(self.s[S_CASH])

    def liquidate(self) -> None:
        """Cancel everything and exit the inventory through others' book now (taker), then settle markouts."""
        self.o_side[:] = 0
        self.s[S_PEND_TAKER] = 0.0
        if self.s[S_Q] != 0.0:
            taker_walk(self.s, self.p, self.deficit, self.tlast, -float(self.s[S_Q]), self.t_s)
        _settle_markouts(self.s, self.p, self.mk, self.t_s, True)

    def decomposition(self) -> dict[str, float]:
        """PnL split (USD): spread capture, adverse selection, impact, fees, inventory (the rest of Σ q·dF)."""
        s = self.s
        return {
            "spread_capture_usd": float(s[S_SPREAD]),
            "adverse_selection_usd": float(s[S_ADVERSE]),
            "impact_usd": float(s[S_IMPACT]),
            "fees_usd": float(s[S_FEES]),
            "inventory_usd": float(s[S_QDF] - s[S_ADVERSE]),
        }
