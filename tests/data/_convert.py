"""Converters of the shared recordings' real content into the Tardis CSV and Hyperliquid archive formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    TRADE_EVENT,
    kinds,
)
from hyper_make.data.tardis import write_tardis_book, write_tardis_trades


def events_to_tardis(events: np.ndarray, book: Path, trades: Path, symbol: str = "BTCUSDT") -> None:
    """Write the depth/snapshot rows of ``events`` as an incremental_book_L2 file and its trades as a trades file
    (timestamps floored to µs; clear rows are implied by the snapshot blocks; BBO rows have no Tardis twin)."""
    k = kinds(events)
    buy = (events["ev"] & np.uint64(BUY_EVENT)) != 0
    exch_us = events["exch_ts"] // 1000
    local_us = events["local_ts"] // 1000
    book_rows = []
    for i in np.flatnonzero((k == DEPTH_EVENT) | (k == DEPTH_SNAPSHOT_EVENT)):
        snap = bool(k[i] == DEPTH_SNAPSHOT_EVENT)
        side = "bid" if buy[i] else "ask"
        book_rows.append(("binance-futures", symbol, int(exch_us[i]), int(local_us[i]), snap, side,
                          float(events["px"][i]), float(events["qty"][i])))  # fmt: skip
    trade_rows = []
    for i in np.flatnonzero(k == TRADE_EVENT):
        tid = str(int(events["order_id"][i]))
        side = "buy" if buy[i] else "sell"
        trade_rows.append(("binance-futures", symbol, int(exch_us[i]), int(local_us[i]), tid, side,
                           float(events["px"][i]), float(events["qty"][i])))  # fmt: skip
    write_tardis_book(book, book_rows)
    write_tardis_trades(trades, trade_rows)


def expected_from_tardis(events: np.ndarray) -> np.ndarray:
    """What reading :func:`events_to_tardis`'s two files back must give, clear rows left out: the depth, snapshot
    and trade rows at µs resolution, in receive order with trades first at equal receive times."""
    k = kinds(events)
    keep = (k == DEPTH_EVENT) | (k == DEPTH_SNAPSHOT_EVENT) | (k == TRADE_EVENT)
    out = events[keep].copy()
    out["exch_ts"] = out["exch_ts"] // 1000 * 1000
    out["local_ts"] = out["local_ts"] // 1000 * 1000
    out["ival"] = 0
    is_trade = kinds(out) == TRADE_EVENT
    out["order_id"][~is_trade] = 0
    order = np.lexsort((np.arange(out.size), ~is_trade, out["local_ts"]))
    return out[order]


def without_clears(events: np.ndarray) -> np.ndarray:
    return events[kinds(events) != DEPTH_CLEAR_EVENT]


def hyperliquid_to_archive(src: Path, archive: Path, trades: Path | None = None, compress: str = "lz4") -> int:
    """Rewrite a live Hyperliquid recording's l2Book lines as archive NDJSON (lz4 frame, gzip or plain) and, if
    ``trades`` is given, its trades lines as a live-format recording of their own. Returns the l2Book count."""
    import datetime as dt

    import lz4.frame

    out, tr = [], []
    for line in gzip.open(src, "rt"):
        ts, _, js = line.strip().partition(" ")
        msg = json.loads(js)
        if msg.get("channel") == "l2Book":
            sec, ns = divmod(int(ts), 1_000_000_000)
            iso = dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}"
            out.append(json.dumps({"time": iso, "ver_num": 1, "raw": msg}) + "\n")
        elif msg.get("channel") == "trades":
            tr.append(line)
    data = "".join(out).encode()
    if compress == "lz4":
        archive.write_bytes(lz4.frame.compress(data))
    elif compress == "gzip":
        archive.write_bytes(gzip.compress(data))
    else:
        archive.write_bytes(data)
    if trades is not None:
        trades.write_bytes(gzip.compress("".join(tr).encode()))
    return len(out)
