"""A synthetic Binance futures recording for batch tests (no real data needed): a random-walk book."""

from __future__ import annotations

import numpy as np

from data._files import depth_line, snapshot_line, trade_line


def market_lines(seconds: int, seed: int) -> list[str]:
    """A Binance futures recording of a random-walk book: a diff every 100 ms and a trade every 200 ms."""
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000_000_000
    lines, u, bid = [snapshot_line(t, 100)], 99, 1000
    for i in range(1, seconds * 10 + 1):
        ts = t + i * 100_000_000
        old, bid = bid, bid + int(rng.integers(-1, 2))
        gone = [(f"{(old - k) / 10:.1f}", "0") for k in range(3)] + [
            (f"{(old + 1 + k) / 10:.1f}", "0") for k in range(3)
        ]
        bids = [(f"{(bid - k) / 10:.1f}", f"{1 + k}.0") for k in range(3)]
        asks = [(f"{(bid + 1 + k) / 10:.1f}", f"{1 + k}.0") for k in range(3)]
        lines.append(depth_line(ts, u + 1, u + 5, u, bids=gone[:3] + bids, asks=gone[3:] + asks))
        u += 5
        if i % 2 == 0:
            buy = bool(rng.integers(2))
            px = (bid + 1) / 10 if buy else bid / 10
            lines.append(trade_line(ts + 1_000_000, f"{px:.1f}", f"{rng.uniform(0.05, 0.5):.3f}", not buy, i))
    return lines
