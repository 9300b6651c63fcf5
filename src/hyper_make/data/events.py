"""The one columnar event representation: hftbacktest's ``event_dtype`` and its bit flags, unchanged.

Every reader yields NumPy structured arrays of :data:`event_dtype` (64 bytes a row, C-aligned)::

    ev        u8   kind (low byte: DEPTH_EVENT, TRADE_EVENT, ...) | side flag (BUY_EVENT / SELL_EVENT) | EXCH/LOCAL
    exch_ts   i8   exchange timestamp (UNIX ns)
    local_ts  i8   local receive timestamp (UNIX ns)
    px        f8   price (USD)
    qty       f8   size (coins); for depth rows the new total at that price, 0 = level removed
    order_id  u8   exchange trade id for trades (0 when unknown)
    ival      i8   Binance final update id ``u`` of the depth message a row came from (0 otherwise)
    fval      f8   unused (0.0)

Side convention (as hftbacktest): a depth row is BUY for the bid book and SELL for the ask book; a trade row
is flagged by its **aggressor** side (BUY: a buyer lifted the ask; SELL: a seller hit the bid).
A full-book snapshot is one ``DEPTH_CLEAR_EVENT`` row per side followed by ``DEPTH_SNAPSHOT_EVENT`` rows.
"""

from __future__ import annotations

import numpy as np

#: hftbacktest ``event_dtype`` (``py-hftbacktest/hftbacktest/types.py``), field for field.
event_dtype = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)

#: Market-depth change at one price: ``qty`` is the new total (0 removes the level).
DEPTH_EVENT = 1
#: A trade (market order execution) of ``qty`` at ``px``, flagged by the aggressor's side.
TRADE_EVENT = 2
#: Clear one side of the book (side flag) before a snapshot.
DEPTH_CLEAR_EVENT = 3
#: One level of a full-book snapshot.
DEPTH_SNAPSHOT_EVENT = 4
#: Best bid or offer (Binance ``bookTicker``): the best level of one side, better levels are gone.
DEPTH_BBO_EVENT = 5
#: The event is seen by the exchange-side (matching) processor.
EXCH_EVENT = 1 << 31
#: The event is seen by the local (strategy) processor.
LOCAL_EVENT = 1 << 30
#: Bid side of the book / buyer-initiated trade.
BUY_EVENT = 1 << 29
#: Ask side of the book / seller-initiated trade.
SELL_EVENT = 1 << 28
#: Mask of the kind in ``ev`` (the low byte).
KIND_MASK = 0xFF

#: Kind code -> readable name (reports, counts).
KIND_NAMES = {
    DEPTH_EVENT: "depth",
    TRADE_EVENT: "trade",
    DEPTH_CLEAR_EVENT: "depth_clear",
    DEPTH_SNAPSHOT_EVENT: "depth_snapshot",
    DEPTH_BBO_EVENT: "bbo",
}


def empty_events(n: int = 0) -> np.ndarray:
    """A zeroed event array of ``n`` rows."""
    return np.zeros(n, dtype=event_dtype)


def kinds(events: np.ndarray) -> np.ndarray:
    """Kind code of every row (``ev & KIND_MASK``)."""
    return (events["ev"] & np.uint64(KIND_MASK)).astype(np.int64)


def exchange_view(events: np.ndarray) -> np.ndarray:
    """The rows the exchange sees (``EXCH_EVENT`` set), in order.

    hftbacktest's ``correct_event_order`` splits out-of-order rows into an exchange-only and a local-only copy;
    the book, the matching and the calibration use the exchange copy. Our readers flag every row with both, so
    for them this returns ``events`` itself.
    """
    exch = (events["ev"] & np.uint64(EXCH_EVENT)) != 0
    return events if bool(exch.all()) else events[exch]


def is_buy(events: np.ndarray) -> np.ndarray:
    """True for bid-side depth rows and buyer-initiated trades."""
    return (events["ev"] & np.uint64(BUY_EVENT)) != 0


__all__ = [
    "BUY_EVENT",
    "DEPTH_BBO_EVENT",
    "DEPTH_CLEAR_EVENT",
    "DEPTH_EVENT",
    "DEPTH_SNAPSHOT_EVENT",
    "EXCH_EVENT",
    "KIND_MASK",
    "KIND_NAMES",
    "LOCAL_EVENT",
    "SELL_EVENT",
    "TRADE_EVENT",
    "empty_events",
    "event_dtype",
    "exchange_view",
    "is_buy",
    "kinds",
]
