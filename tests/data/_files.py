"""Recorded files (read from ../shared/data, never copied) and builders of synthetic broken files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from conftest import shared_data_file

FUTURES = "binance-usdm-btcusdt-20240808.gz"
SPOT = "binance-spot-btcusdt-20240808.gz"
HYPERLIQUID = "hyperliquid-btc-20250126.gz"


def real(name: str) -> Path:
    return shared_data_file(name)


def snapshot_line(ts: int, last_id: int) -> str:
    msg = {"lastUpdateId": last_id, "E": ts // 1_000_000, "T": ts // 1_000_000,
           "bids": [["100.0", "1.0"], ["99.9", "2.0"]], "asks": [["100.1", "1.5"], ["100.2", "3.0"]]}  # fmt: skip
    return f"{ts} {json.dumps(msg)}"


def depth_line(ts: int, first: int, last: int, prev: int, bids=(), asks=()) -> str:
    data = {"e": "depthUpdate", "E": ts // 1_000_000, "T": ts // 1_000_000, "s": "X", "U": first, "u": last,
            "pu": prev, "b": [list(b) for b in bids], "a": [list(a) for a in asks]}  # fmt: skip
    return f"{ts} {json.dumps({'stream': 'x@depth@0ms', 'data': data})}"


def trade_line(ts: int, px: str, qty: str, buyer_maker: bool, tid: int = 1) -> str:
    data = {"e": "trade", "E": ts // 1_000_000, "T": ts // 1_000_000, "s": "X", "t": tid, "p": px, "q": qty,
            "m": buyer_maker}  # fmt: skip
    return f"{ts} {json.dumps({'stream': 'x@trade', 'data': data})}"


def good_lines() -> list[str]:
    """A small valid Binance futures recording: snapshot, three chained diffs, two trades."""
    t = 1_700_000_000_000_000_000
    return [
        snapshot_line(t, 100),
        depth_line(t + 1_000_000, 95, 105, 90, bids=[("100.0", "0.5")]),
        trade_line(t + 2_000_000, "100.1", "0.2", False),
        depth_line(t + 3_000_000, 106, 110, 105, asks=[("100.1", "1.3")]),
        trade_line(t + 4_000_000, "100.0", "0.1", True, 2),
        depth_line(t + 5_000_000, 111, 120, 110, bids=[("99.8", "4.0")]),
    ]


def many_lines(n: int) -> list[str]:
    """A valid recording of ``n`` chained diffs and trades after a snapshot, times increasing."""
    t = 1_700_000_000_000_000_000
    lines = [snapshot_line(t, 100)]
    u = 99  # the first diff straddles the snapshot's lastUpdateId
    for i in range(1, n + 1):
        lines.append(depth_line(t + 2 * i * 1_000_000, u + 1, u + 5, u, bids=[(f"{99 + (i % 10) / 10:.1f}", "1.0")]))
        lines.append(trade_line(t + (2 * i + 1) * 1_000_000, "100.1", "0.01", i % 2 == 0, i))
        u += 5
    return lines


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def real_lines(name: str, n: int) -> list[str]:
    """The first ``n`` lines of a shared recording, as text (to build variants of real data in tmp_path)."""
    out: list[str] = []
    with gzip.open(real(name), "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(line.rstrip("\n"))
            if len(out) >= n:
                break
    return out


def without_snapshot(lines: list[str]) -> list[str]:
    """The lines less the REST snapshot line (``lastUpdateId``)."""
    return [ln for ln in lines if '"lastUpdateId"' not in ln]
