"""Our account on one coin as the quoting loop knows it: fills, position, cash, fees, and our orders.

Fills are keyed by ``(tid, oid)`` and applied once, so a fill message that arrives twice (a WebSocket resend, a
reconnect snapshot, a ``userFills`` read after a reconnect) changes nothing the second time. Position and cash
are sums over the set of fills, so the order in which fills arrive does not matter either:

    position q = q0 + Σ ±sz                                 (coins; + for buys)
    cash       = Σ ∓px·sz                                   (USD; a buy spends)
    pnl        = cash - fees + q·mark - q0·mark0            (USD; mark-to-market since the start)

Orders are tracked by key (cloid, else ``"oid:<oid>"``) in two sets:

* ``resting``: orders the exchange acknowledged and that we have not asked to remove;
* ``pending``: orders whose end is not confirmed yet: cancelled or modified ones (a fill may have reached them
  before the cancel, and its message may still be on its way), and ones whose request timed out. They keep
  counting against the position limit until an ``/info`` read confirms them gone (:meth:`Ledger.reconcile`).

:meth:`Ledger.exposure` is the side's worst case: the position if every resting *and* pending order of that
side filled. Fills keep it unchanged (a bid fill moves size from the resting set into the position), so a
ladder that keeps it within the limit keeps the position within the limit whatever fills next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DataError
from ..instrument import Side
from ..strategy.orders import RestingOrder

#: Tolerance (coins) for sums of lot multiples.
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our fills: ids, side, price (USD), size (coins), fee (USD), exchange time (UNIX ms), taker flag."""

    tid: int
    oid: int
    cloid: str | None
    side: Side
    px: float
    sz: float
    fee_usd: float
    time_ms: int
    crossed: bool

    @property
    def key(self) -> tuple[int, int]:
        """Identity of the fill: ``(tid, oid)``."""
        return (self.tid, self.oid)

    @property
    def signed_sz(self) -> float:
        """Size with the sign of the position change (coins): ``+sz`` for a buy."""
        return self.sz if self.side == "bid" else -self.sz


def fill_from_json(row: Mapping[str, Any]) -> Fill:
    """A :class:`Fill` from a Hyperliquid fill row (``userFills`` or the WebSocket ``userFills`` channel).

    Raises
    ------
    DataError
        If a field is missing or not a number.
    """
    try:
        side: Side = "bid" if row["side"] == "B" else "ask"
        return Fill(
            tid=int(row["tid"]),
            oid=int(row["oid"]),
            cloid=row.get("cloid"),
            side=side,
            px=float(row["px"]),
            sz=float(row["sz"]),
            fee_usd=float(row["fee"]),  # a fill without its fee is not a free fill: it is not read
            time_ms=int(row["time"]),
            crossed=bool(row.get("crossed", False)),
        )
    except KeyError as exc:
        raise DataError(f"fill message: missing field {exc.args[0]!r} in {dict(row)!r}"[:300]) from None
    except (TypeError, ValueError) as exc:
        raise DataError(f"fill message: {exc} in {dict(row)!r}"[:300]) from None


class Ledger:
    """Fills, position, cash and our orders on one coin (single-threaded: the loop's thread owns it).

    Parameters
    ----------
    coin : the perp.
    position0_coins : position at the start (coins).
    mark0_usd : mark price at the start (USD), for the PnL of the starting position.
    """

    def __init__(self, coin: str, position0_coins: float = 0.0, mark0_usd: float = 0.0) -> None:
        self.coin = coin
        self.position0_coins = float(position0_coins)
        self.mark0_usd = float(mark0_usd)
        self.position_coins = float(position0_coins)
        self.cash_usd = 0.0
        self.fees_usd = 0.0
        self.volume_coins = 0.0
        self.volume_usd = 0.0
        self.n_fills = 0
        self.n_duplicate_fills = 0
        self._path: list[tuple[int, int, float]] = []  # (time ms, tid, signed size) of every fill
        #: fills applied since the owner last emptied it (the quoting loop hands them to the strategy)
        self.new_fills: list[Fill] = []
        self.resting: dict[str, RestingOrder] = {}
        self.pending: dict[str, RestingOrder] = {}
        self._seen: set[tuple[int, int]] = set()
        self._by_oid: dict[int, str] = {}

    # ---- fills ---------------------------------------------------------------------------------------
    def mark_seen(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record fills that happened before the start: they are never applied (baseline)."""
        for r in rows:
            self._seen.add((int(r["tid"]), int(r["oid"])))

    def apply_fill(self, fill: Fill) -> bool:
        """Apply a fill once; return whether it was new (a duplicate changes nothing)."""
        if fill.key in self._seen:
            self.n_duplicate_fills += 1
            return False
        self._seen.add(fill.key)
        self.position_coins += fill.signed_sz
        if abs(self.position_coins) < _EPS:
            self.position_coins = 0.0
        self.cash_usd -= fill.signed_sz * fill.px
        self.fees_usd += fill.fee_usd
        self.volume_coins += fill.sz
        self.volume_usd += fill.sz * fill.px
        self.n_fills += 1
        self._path.append((fill.time_ms, fill.tid, fill.signed_sz))
        self.new_fills.append(fill)
        key = fill.cloid if fill.cloid is not None and self._known(fill.cloid) else self._by_oid.get(fill.oid)
        if key is not None:
            for book in (self.resting, self.pending):
                o = book.get(key)
                if o is not None:
                    left = o.size - fill.sz
                    if left <= _EPS:
                        del book[key]
                    else:
                        book[key] = RestingOrder(o.side, o.price, left, o.cloid, o.oid, o.reduce_only)
        return True

    @property
    def max_abs_position_coins(self) -> float:
        """Largest ``|position|`` (coins) along the fills in exchange order (time, then trade id).

        Computed from the fills, not from the order their messages arrived in: a late or replayed message would
        otherwise show a path the position never took.
        """
        q = self.position0_coins
        peak = abs(q)
        for _, _, d in sorted(self._path):
            q += d
            peak = max(peak, abs(q))
        return peak

    def _known(self, key: str) -> bool:
        return key in self.resting or key in self.pending

    def pnl_usd(self, mark_usd: float) -> float:
        """Mark-to-market PnL since the start (USD): ``cash - fees + q·mark - q0·mark0``."""
        return self.cash_usd - self.fees_usd + self.position_coins * mark_usd - self.position0_coins * self.mark0_usd

    # ---- orders --------------------------------------------------------------------------------------
    def add_resting(self, order: RestingOrder) -> None:
        """An order the exchange acknowledged as resting."""
        self.resting[order.key] = order
        self.pending.pop(order.key, None)
        if order.oid is not None:
            self._by_oid[order.oid] = order.key

    def add_pending(self, order: RestingOrder) -> None:
        """An order whose end (or whose existence, after a timeout) is not confirmed: it still counts."""
        self.resting.pop(order.key, None)
        self.pending[order.key] = order
        if order.oid is not None:
            self._by_oid[order.oid] = order.key

    def exposure(self, side: Side) -> float:
        """Worst-case position (coins, toward ``side``) if every resting and pending order of that side filled.

        Bids: ``q + Σ bids``; asks: ``-q + Σ asks``.
        """
        q = self.position_coins if side == "bid" else -self.position_coins
        book = list(self.resting.values()) + list(self.pending.values())
        return q + sum(o.size for o in book if o.side == side)

    def reconcile(self, open_orders: Iterable[RestingOrder], fills: Iterable[Mapping[str, Any]]) -> int:
        """Adopt the exchange's view: its open orders and every fill of ours it reports; return new fills applied.

        ``open_orders`` must be read *before* ``fills``: a fill in between is then in the fills and not yet netted
        from the order's size in the snapshot, which over-counts the order (safe), never the reverse. Pending
        orders that are no longer open are confirmed gone; orders open on the exchange that we had not seen
        (a request that timed out but went through) are adopted as resting.
        """
        opened = list(open_orders)
        n = 0
        for row in fills:
            if row.get("coin") == self.coin and self.apply_fill(fill_from_json(row)):
                n += 1
        # the snapshot's sizes already net every fill before it: set them after the fills, not before
        self.resting = {}
        self.pending = {}
        for o in opened:
            self.add_resting(o)
        return n

    def to_dict(self, mark_usd: float) -> dict[str, Any]:
        """JSON-ready state (units in the keys)."""
        return {
            "position_coins": self.position_coins,
            "cash_usd": self.cash_usd,
            "fees_usd": self.fees_usd,
            "pnl_usd": self.pnl_usd(mark_usd),
            "fills": self.n_fills,
            "fills_seen_again": self.n_duplicate_fills,
            "volume_coins": self.volume_coins,
            "volume_usd": self.volume_usd,
            "max_abs_position_coins": self.max_abs_position_coins,
            "resting_orders": len(self.resting),
            "pending_orders": len(self.pending),
        }
