"""Converters of the shared recordings' real content into the Tardis CSV and Hyperliquid archive formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl

from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    TRADE_EVENT,
    kinds,
)
from hyper_make.data.tardis import BOOK_COLUMNS, TRADE_COLUMNS


def events_to_tardis(events: np.ndarray, book: Path, trades: Path, symbol: str = "BTCUSDT") -> None:
    """Write the depth/snapshot rows of ``events`` as an incremental_book_L2 file and its trades as a trades file
    (gzip if the name ends in .gz; timestamps floored to µs; clear rows are implied by the snapshot blocks; BBO
    rows have no Tardis twin)."""
    k = kinds(events)
    buy = (events["ev"] & np.uint64(BUY_EVENT)) != 0
    for path, sel, cols in (
        (book, (k == DEPTH_EVENT) | (k == DEPTH_SNAPSHOT_EVENT), BOOK_COLUMNS),
        (trades, k == TRADE_EVENT, TRADE_COLUMNS),
    ):
        e = events[sel]
        n = e.size
        df = pl.DataFrame({
            "exchange": ["binance-futures"] * n,
            "symbol": [symbol] * n,
            "timestamp": e["exch_ts"] // 1000,
            "local_timestamp": e["local_ts"] // 1000,
            "is_snapshot": np.where(kinds(e) == DEPTH_SNAPSHOT_EVENT, "true", "false"),
            "id": e["order_id"].astype(str),
            "side": np.where(buy[sel], *(("bid", "ask") if cols is BOOK_COLUMNS else ("buy", "sell"))),
            "price": e["px"],
            "amount": e["qty"],
        }).select(list(cols))  # fmt: skip
        text = df.write_csv().encode()
        path.write_bytes(gzip.compress(text, 1) if path.suffix == ".gz" else text)


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
