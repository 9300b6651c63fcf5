"""Order-book reconstruction on a dense integer tick grid, in numba: snapshot + diffs + BBO updates.

The book holds, per side, the resting quantity (coins) at every tick of a band around a reference price
(``band_frac`` of it either way). Depth and snapshot rows set a level's quantity (0 removes it); a clear row
empties a side; a BBO row (Binance ``bookTicker``) sets the best level and removes stale better ones. Rows
outside the band are counted and ignored. With ``uncross=True`` a positive bid at or above the best ask removes
those asks (and vice versa): the newer update wins, as a live book would have it.

:func:`apply_events` also counts the messages after which the book was crossed (bid >= ask), checking at the end
of each message (rows of one message share their local timestamp and kind), so a reconstruction can be tested
against the data's own consistency with ``uncross=False``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..errors import DataError
from .events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    KIND_MASK,
)

# state slots of the int64 state vector
_BEST_BID, _BEST_ASK, _N, _OUT_OF_BAND, _CROSSED, _BASE = 0, 1, 2, 3, 4, 5


def infer_tick(px: np.ndarray) -> float:
    """The price tick (USD) of a set of prices: the greatest common divisor of their values on a 1e-8 grid."""
    p = np.asarray(px, dtype=np.float64)
    g, distinct, first = _tick_scan(p, 200_000, 1024)
    if first <= 0:
        raise DataError("cannot infer the price tick: no positive price in the data")
    # a single distinct price would give the price itself: fall back to its last significant decimal
    return max(g, 1) / 1e8 if distinct else 10.0 ** math.floor(math.log10(first) - 4)


@nb.njit(cache=True)
def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return abs(a)


@nb.njit(cache=True)
def _tick_scan(p: np.ndarray, limit: int, head: int) -> tuple[int, bool, float]:
    """``(g, distinct, first)`` over the first ``limit`` positive prices, each as ``rint(p·1e8)``: the gcd of the
    first ``head`` checked to divide all (then it is the gcd of all: one pass, no sort or hash), whether two differ,
    and the first price (``0.0``: none)."""
    g = 0
    first = 0.0
    k0 = 0
    seen = 0
    ok = True
    distinct = False
    for i in range(p.shape[0]):
        x = p[i]
        if not x > 0:
            continue
        v = np.int64(np.rint(x * 1e8))
        if seen == 0:
            first = x
            k0 = v
        elif v != k0:
            distinct = True
        if seen < head:
            g = _gcd(g, v)
        elif ok and (g == 0 or v % g != 0):
            ok = False
        seen += 1
        if seen >= limit:
            break
    if not ok:
        g = 0
        seen = 0
        for i in range(p.shape[0]):
            x = p[i]
            if not x > 0:
                continue
            g = _gcd(g, np.int64(np.rint(x * 1e8)))
            seen += 1
            if seen >= limit:
                break
    return g, distinct, first


@nb.njit(cache=True)
def _scan_down(q: np.ndarray, i: int) -> int:
    while i >= 0 and q[i] <= 0.0:
        i -= 1
    return i


@nb.njit(cache=True)
def _scan_up(q: np.ndarray, i: int, n: int) -> int:
    while i < n and q[i] <= 0.0:
        i += 1
    return i


@nb.njit(cache=True)
def book_row(
    bid: np.ndarray, ask: np.ndarray, st: np.ndarray, ev: np.uint64, tick_idx: int, qty: float, uncross: bool
) -> None:
    """Apply one event row to the book (kind from ``ev``); ``tick_idx`` relative to the band's first tick."""
    kind = int(ev & np.uint64(KIND_MASK))
    is_bid = (ev & np.uint64(BUY_EVENT)) != 0
    n = st[_N]
    if kind == DEPTH_CLEAR_EVENT:
        if is_bid:
            bid[:] = 0.0
            st[_BEST_BID] = -1
        else:
            ask[:] = 0.0
            st[_BEST_ASK] = n
        return
    if kind != DEPTH_EVENT and kind != DEPTH_SNAPSHOT_EVENT and kind != DEPTH_BBO_EVENT:
        return
    if tick_idx < 0 or tick_idx >= n:
        st[_OUT_OF_BAND] += 1
        return
    i = tick_idx
    if is_bid:
        if kind == DEPTH_BBO_EVENT:
            for j in range(i + 1, st[_BEST_BID] + 1):
                bid[j] = 0.0
            if st[_BEST_BID] > i:
                st[_BEST_BID] = _scan_down(bid, i)
        bid[i] = qty
        if qty > 0.0:
            if i > st[_BEST_BID]:
                st[_BEST_BID] = i
            if uncross and i >= st[_BEST_ASK]:
                for j in range(st[_BEST_ASK], i + 1):
                    ask[j] = 0.0
                st[_BEST_ASK] = _scan_up(ask, i + 1, n)
        elif i == st[_BEST_BID]:
            st[_BEST_BID] = _scan_down(bid, i)
    else:
        if kind == DEPTH_BBO_EVENT:
            lim = min(i, n)
            for j in range(st[_BEST_ASK], lim):
                ask[j] = 0.0
            if st[_BEST_ASK] < i:
                st[_BEST_ASK] = _scan_up(ask, i, n)
        ask[i] = qty
        if qty > 0.0:
            if i < st[_BEST_ASK]:
                st[_BEST_ASK] = i
            if uncross and i <= st[_BEST_BID]:
                for j in range(i, st[_BEST_BID] + 1):
                    bid[j] = 0.0
                st[_BEST_BID] = _scan_down(bid, i - 1)
        elif i == st[_BEST_ASK]:
            st[_BEST_ASK] = _scan_up(ask, i, n)


@nb.njit(cache=True)
def _apply_all(bid, ask, st, ev, px, qty, local_ts, tick, use_bbo, uncross):  # type: ignore[no-untyped-def]
    m = ev.size
    base = st[_BASE]
    for k in range(m):
        if (ev[k] & np.uint64(EXCH_EVENT)) == 0:
            continue
        kind = int(ev[k] & np.uint64(KIND_MASK))
        if kind < DEPTH_EVENT or kind > DEPTH_BBO_EVENT or kind == 2:
            continue
        if kind == DEPTH_BBO_EVENT and not use_bbo:
            continue
        idx = int(np.rint(px[k] / tick)) - base
        book_row(bid, ask, st, ev[k], idx, qty[k], uncross)
        # end of a message: next row has another local time or kind (or this is the last row)
        last = k == m - 1 or local_ts[k + 1] != local_ts[k] or int(ev[k + 1] & np.uint64(KIND_MASK)) != kind
        if last and kind != DEPTH_CLEAR_EVENT and st[_BEST_BID] >= 0 and st[_BEST_ASK] < st[_N]:
            if st[_BEST_BID] >= st[_BEST_ASK]:
                st[_CROSSED] += 1


@nb.njit(cache=True)
def shift_band(bid, ask, st, new_base):  # type: ignore[no-untyped-def]
    """Re-centre a book: its band starts at tick ``new_base`` from now on. A level at absolute tick ``t`` moves
    from index ``t - old_base`` to ``t - new_base``; levels that fall outside are dropped and counted as out of
    band; the best prices are found again (no level lies beyond a side's best, so a scan finds it)."""
    n = st[_N]
    d = new_base - st[_BASE]
    if d == 0:
        return
    lost = 0
    if d > 0:
        for i in range(min(d, n)):
            lost += (bid[i] > 0.0) + (ask[i] > 0.0)
        for i in range(n):
            j = i + d
            bid[i] = bid[j] if j < n else 0.0
            ask[i] = ask[j] if j < n else 0.0
    else:
        for i in range(max(n + d, 0), n):
            lost += (bid[i] > 0.0) + (ask[i] > 0.0)
        for i in range(n - 1, -1, -1):
            j = i + d
            bid[i] = bid[j] if j >= 0 else 0.0
            ask[i] = ask[j] if j >= 0 else 0.0
    st[_BASE] = new_base
    st[_OUT_OF_BAND] += lost
    st[_BEST_BID] = _scan_down(bid, n - 1)
    st[_BEST_ASK] = _scan_up(ask, 0, n)


@nb.njit(cache=True)
def shift_slots(slots, d):  # type: ignore[no-untyped-def]
    """A tick-index lookup (``-1``: empty) after its band moved ``d`` ticks up: index ``i`` now holds ``i + d``."""
    n = slots.shape[0]
    if d > 0:
        for i in range(n):
            slots[i] = slots[i + d] if i + d < n else -1
    elif d < 0:
        for i in range(n - 1, -1, -1):
            slots[i] = slots[i + d] if i + d >= 0 else -1


def recentred_base(state: np.ndarray) -> int | None:
    """Where a two-sided book's band should start so that its mid is in the middle (first tick), or ``None``
    while the mid is inside the middle half of the band (or the book is one-sided): the band of ``±band_frac``
    follows the price once it has walked half-way to an edge."""
    n = int(state[_N])
    bb, ba = int(state[_BEST_BID]), int(state[_BEST_ASK])
    if bb < 0 or ba >= n:
        return None
    mid = (bb + ba) // 2
    if n // 4 <= mid <= n - 1 - n // 4:
        return None
    return int(state[_BASE]) + mid - n // 2


@dataclass(frozen=True, slots=True)
class BookGrid:
    """The tick band of a book: ``tick_usd`` and the first tick ``base_tick`` (price = tick·(base + i)), ``n``."""

    tick_usd: float
    base_tick: int
    n: int

    @classmethod
    def around(cls, events: np.ndarray, *, band_frac: float = 0.1, tick_usd: float | None = None) -> BookGrid:
        """A band of ``±band_frac`` around the median price of the first rows, on the data's own tick."""
        px = events["px"][:100_000]
        px = px[px > 0]
        if px.size == 0:
            raise DataError("no priced event in the data: cannot build an order book")
        tick = tick_usd or infer_tick(px)
        ref = float(np.median(px))
        lo = math.floor(ref * (1 - band_frac) / tick)
        hi = math.ceil(ref * (1 + band_frac) / tick)
        return cls(tick, lo, hi - lo + 1)


class OrderBook:
    """A rebuilt limit order book on a :class:`BookGrid` (state held in NumPy arrays, updated in numba).

    ``apply(events)`` applies depth, snapshot, clear and (``use_bbo``) BBO rows that carry ``EXCH_EVENT``;
    trades do not change it.
    """

    def __init__(self, grid: BookGrid, *, use_bbo: bool = True, uncross: bool = True) -> None:
        self.grid = grid
        self.use_bbo = use_bbo
        self.uncross = uncross
        self.bid_qty = np.zeros(grid.n)
        self.ask_qty = np.zeros(grid.n)
        self.state = np.array([-1, grid.n, grid.n, 0, 0, grid.base_tick], dtype=np.int64)

    def apply(self, events: np.ndarray) -> None:
        """Apply a chunk of events in order."""
        _apply_all(
            self.bid_qty, self.ask_qty, self.state, events["ev"], events["px"], events["qty"], events["local_ts"],
            self.grid.tick_usd, self.use_bbo, self.uncross,
        )  # fmt: skip

    @property
    def crossed_messages(self) -> int:
        """Messages after which the best bid was at or above the best ask."""
        return int(self.state[_CROSSED])

    @property
    def out_of_band(self) -> int:
        """Rows ignored because their price was outside the band."""
        return int(self.state[_OUT_OF_BAND])

    @property
    def base_tick(self) -> int:
        """The band's first tick now (it moves when the book is re-centred, :meth:`recentre`)."""
        return int(self.state[_BASE])

    def recentre(self, base_tick: int) -> None:
        """Move the band to start at ``base_tick`` (same width): levels that stay inside keep their quantity,
        the ones now outside are dropped (counted in :attr:`out_of_band`)."""
        shift_band(self.bid_qty, self.ask_qty, self.state, int(base_tick))

    def _px(self, i: int) -> float:
        return (int(self.state[_BASE]) + i) * self.grid.tick_usd

    @property
    def best_bid_usd(self) -> float:
        """Best bid (USD), NaN if the bid side is empty."""
        i = int(self.state[_BEST_BID])
        return self._px(i) if i >= 0 else float("nan")

    @property
    def best_ask_usd(self) -> float:
        """Best ask (USD), NaN if the ask side is empty."""
        i = int(self.state[_BEST_ASK])
        return self._px(i) if i < self.grid.n else float("nan")

    @property
    def mid_usd(self) -> float:
        """``(best bid + best ask) / 2`` (USD), NaN if a side is empty."""
        return 0.5 * (self.best_bid_usd + self.best_ask_usd)

    def levels(self, side: str, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` levels of ``"bid"`` or ``"ask"``: ``(prices USD, quantities coins)``, best first."""
        if side == "bid":
            idx = np.flatnonzero(self.bid_qty[: int(self.state[_BEST_BID]) + 1] > 0)[::-1][:n]
            return np.array([self._px(int(i)) for i in idx]), self.bid_qty[idx]
        idx = int(self.state[_BEST_ASK]) + np.flatnonzero(self.ask_qty[int(self.state[_BEST_ASK]) :] > 0)[:n]
        return np.array([self._px(int(i)) for i in idx]), self.ask_qty[idx]


# ---- the market path's rules, shared by PathBuilder and the replay kernel's recorder ------------------------------
# A path is written to three arrays: ``bbo`` rows (best bid, best ask USD), ``trades`` rows (price USD, coins, the mid
# before it USD, buyer-initiated 1/0) and ``times`` rows (the BBO change's clock, the trade's clock; ns). The clock is
# the running maximum of the exchange rows' times.


@nb.njit(cache=True, inline="always")
def path_trade(bbo, trades, times, nt, st, tick, clock, price, coins, buy):  # type: ignore[no-untyped-def]
    """Append a trade to the path if the book is two-sided (its mid then is the mid before it); returns the count."""
    base = st[_BASE]
    if st[_BEST_BID] >= 0 and st[_BEST_ASK] < st[_N]:
        times[nt, 1] = clock
        trades[nt, 0] = price
        trades[nt, 1] = coins
        trades[nt, 2] = 0.5 * (st[_BEST_BID] + st[_BEST_ASK] + 2 * base) * tick
        trades[nt, 3] = 1.0 if buy else 0.0
        return nt + 1
    return nt


@nb.njit(cache=True, inline="always")
def path_bbo(bbo, trades, times, nq, st, tick, clock, last_b, last_a):  # type: ignore[no-untyped-def]
    """Append the book's best bid and ask if they changed since ``(last_b, last_a)`` (band indices) and the book is
    two-sided; returns ``(count, last_b, last_a)``."""
    b, a = st[_BEST_BID], st[_BEST_ASK]
    if (b != last_b or a != last_a) and b >= 0 and a < st[_N]:
        base = st[_BASE]
        times[nq, 0] = clock
        bbo[nq, 0] = (b + base) * tick
        bbo[nq, 1] = (a + base) * tick
        return nq + 1, b, a
    return nq, last_b, last_a


@nb.njit(cache=True)
def _path(bid, ask, st, ev, exch_ts, px, qty, tick, use_bbo, carry):  # type: ignore[no-untyped-def]
    """BBO changes and trades of one chunk; ``carry`` = [clock, last bid index, last ask index] across chunks."""
    m = ev.size
    base = st[_BASE]
    bbo = np.empty((m, 2))
    trades = np.empty((m, 4))
    times = np.empty((m, 2), np.int64)
    nq = 0
    nt = 0
    clock = carry[0]
    last_b = carry[1]
    last_a = carry[2]
    for k in range(m):
        if (ev[k] & np.uint64(EXCH_EVENT)) == 0:
            continue  # local-only copies of reordered rows (hftbacktest): the exchange copy is the one applied
        if exch_ts[k] > clock:
            clock = exch_ts[k]
        kind = int(ev[k] & np.uint64(KIND_MASK))
        if kind == 2:
            nt = path_trade(bbo, trades, times, nt, st, tick, clock, px[k], qty[k], (ev[k] & np.uint64(BUY_EVENT)) != 0)
            continue
        if kind == DEPTH_BBO_EVENT and not use_bbo:
            continue
        book_row(bid, ask, st, ev[k], int(np.rint(px[k] / tick)) - base, qty[k], True)
        nq, last_b, last_a = path_bbo(bbo, trades, times, nq, st, tick, clock, last_b, last_a)
    carry[0] = clock
    carry[1] = last_b
    carry[2] = last_a
    return bbo, trades, times, nq, nt


@nb.njit(cache=True)
def _walk(bid, ask, st, ev, px, qty, tick, use_bbo):  # type: ignore[no-untyped-def]
    """The book of :func:`_path` over one chunk, without the path: every exchange row but trades (and best-price rows
    unless ``use_bbo``)."""
    base = st[_BASE]
    for k in range(ev.size):
        e = ev[k]
        if (e & np.uint64(EXCH_EVENT)) == 0:
            continue
        kind = int(e & np.uint64(KIND_MASK))
        if kind == 2 or (kind == DEPTH_BBO_EVENT and not use_bbo):
            continue
        book_row(bid, ask, st, e, int(np.rint(px[k] / tick)) - base, qty[k], True)


@dataclass(frozen=True, slots=True)
class MarketPath:
    """The market as a strategy sees it: BBO changes and trades, on one monotone exchange clock (ns).

    The clock is the running maximum of ``exch_ts`` in file order (streams interleave with small disorder).

    Attributes
    ----------
    ts_ns, bid_usd, ask_usd : every change of the best bid or ask (two-sided book only).
    trade_ts_ns, trade_px_usd, trade_qty_coins, trade_buy : trades (``trade_buy``: a buyer was the aggressor).
    trade_mid_usd : the mid prevailing just before each trade (in file order).
    """

    ts_ns: np.ndarray
    bid_usd: np.ndarray
    ask_usd: np.ndarray
    trade_ts_ns: np.ndarray
    trade_px_usd: np.ndarray
    trade_qty_coins: np.ndarray
    trade_buy: np.ndarray
    trade_mid_usd: np.ndarray

    @property
    def mid_usd(self) -> np.ndarray:
        """Mid ``(bid + ask) / 2`` at each BBO change (USD)."""
        return 0.5 * (self.bid_usd + self.ask_usd)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last BBO change or trade (s)."""
        ts = np.concatenate([self.ts_ns[:1], self.ts_ns[-1:], self.trade_ts_ns[:1], self.trade_ts_ns[-1:]])
        return float(ts.max() - ts.min()) / 1e9 if ts.size else 0.0

    def mid_at(self, t_ns: np.ndarray) -> np.ndarray:
        """Mid (USD) prevailing at times ``t_ns`` (the last change at or before; the first mid before it)."""
        i = np.searchsorted(self.ts_ns, np.asarray(t_ns), side="right") - 1
        return self.mid_usd[np.clip(i, 0, self.ts_ns.size - 1)]


#: The path clock before any row (ns): below every exchange time.
NO_CLOCK = -(1 << 62)


def path_piece(bbo: np.ndarray, trades: np.ndarray, times: np.ndarray, nq: int, nt: int) -> MarketPath:
    """The :class:`MarketPath` of the first ``nq`` BBO rows and ``nt`` trade rows written by :func:`path_bbo` and
    :func:`path_trade` (copies: the arrays may be written again)."""
    tr = trades[:nt]
    return MarketPath(
        times[:nq, 0].copy(), bbo[:nq, 0].copy(), bbo[:nq, 1].copy(), times[:nt, 1].copy(), tr[:, 0].copy(),
        tr[:, 1].copy(), tr[:, 3] != 0.0, tr[:, 2].copy(),
    )  # fmt: skip


class PathBuilder:
    """A :class:`MarketPath` built chunk by chunk: one book and one clock carried across the chunks (and files).

    ``add(events)`` returns the path piece of that chunk (BBO changes and trades, as :class:`MarketPath` arrays);
    the pieces of consecutive chunks concatenate to the path of the whole data. With ``recentring`` the band
    follows the price: before each chunk, a book whose mid has walked out of the middle half of the band is
    re-centred on it (:func:`recentred_base`); ``recentres`` holds, per chunk, the new first tick or ``None``, so
    that other books fed the same chunks can follow the same band.
    """

    def __init__(self, grid: BookGrid, *, use_bbo: bool = True, recentring: bool = False) -> None:
        self.grid = grid
        self.use_bbo = use_bbo
        self.recentring = recentring
        self.recentres: list[int | None] = []
        self.book = OrderBook(grid, use_bbo=use_bbo)
        self.carry = np.array([NO_CLOCK, -2, -2], dtype=np.int64)

    def _next_band(self) -> None:
        b = self.book
        if self.recentring and (base := recentred_base(b.state)) is not None:
            b.recentre(base)
            self.recentres.append(base)
        else:
            self.recentres.append(None)

    def skip(self, events: np.ndarray) -> None:
        """Walk the next chunk without building its piece (the book and the band move as in :meth:`add`)."""
        self._next_band()
        b = self.book
        _walk(b.bid_qty, b.ask_qty, b.state, events["ev"], events["px"], events["qty"], self.grid.tick_usd,
              self.use_bbo)  # fmt: skip

    def add(self, events: np.ndarray) -> MarketPath:
        """The path piece of the next chunk of events (may be empty)."""
        b = self.book
        self._next_band()
        out = _path(
            b.bid_qty, b.ask_qty, b.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
            self.grid.tick_usd, self.use_bbo, self.carry,
        )  # fmt: skip
        return path_piece(*out)


def market_path(events: np.ndarray, grid: BookGrid | None = None, *, use_bbo: bool = True) -> MarketPath:
    """Replay ``events`` through a fresh :class:`OrderBook` and return its :class:`MarketPath`."""
    g = grid or BookGrid.around(events)
    out = PathBuilder(g, use_bbo=use_bbo).add(events)
    if out.ts_ns.size == 0:
        raise DataError("the data never shows a two-sided book: no mid price can be computed")
    return out


__all__ = [
    "BookGrid",
    "MarketPath",
    "OrderBook",
    "PathBuilder",
    "book_row",
    "infer_tick",
    "market_path",
    "recentred_base",
    "shift_band",
    "shift_slots",
]
