"""Peer check: hyper_make's replay against hftbacktest 2.4.4, fill for fill, on the same events and the same grid.

Run: ``python benchmarks/peer_hftbacktest.py [FILE] [--json]`` (needs the ``bench`` extra; about a minute).
FILE defaults to ``../shared/data/binance-usdm-btcusdt-20240808.gz``.

Both sides replay **hftbacktest's own conversion** of FILE (``binancefutures.convert``: depth diffs, trades,
snapshot, local timestamps corrected, event order corrected), with the same fixed grid: 5 levels per side at
0.1-2 bps from the mid (geometric), 0.002 BTC each, refreshed every 100 ms or 1 s (hftbacktest's grid-trading
example: an order still on the grid is kept, one off it cancelled, a price without an order gets one), tick 0.1,
lot 0.001, 50 ms order entry and 50 ms response latency, the strategy seeing the market at ``local_ts``.

* hftbacktest: ``HashMapMarketDepthBacktest``, partial-fill exchange, the queue model of the row;
  ``bench_replay_hbt.grid_strategy_fills`` (numba), its fills rebuilt from its order records (its own
  position/balance count only an order's last fill, issue #316; sizes sent a hair below whole lots so that an
  order filled for exactly its remainder does not stop the run with status 14, issue #312).
* hyper_make: :func:`hyper_make.backtest.replay_fixed_grid` with ``latency="feed"``, ``cross="all"``,
  ``equal_ts="market_first"`` (hftbacktest's rules) and the same queue model.

Fills are compared per order and exchange ns (hftbacktest's order records cannot tell apart two fills of one order
in the same ns): count, time, side, price and size must be identical. Equity = cash + position x the last mid, at
0 fee; fees at a 2 bps maker fee, both from the fills. Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _machine import machine

TICK = 0.1  # USD
LOT = 0.001  # coins
LEVEL_QTY = 0.002  # coins per level
DEPTHS_BPS = np.geomspace(0.1, 2.0, 5)
LATENCY_NS = 50_000_000
MAKER_FEE = 2e-4  # 2 bps, for the fee column
SETTINGS = [  # (name, refresh ns, queue, queue n)
    ("risk_averse 100 ms", 100_000_000, "risk_averse", 2.0),
    ("risk_averse 1 s", 1_000_000_000, "risk_averse", 2.0),
    ("power(2) 100 ms", 100_000_000, "power", 2.0),
    ("log 100 ms", 100_000_000, "log", 2.0),
    ("power(2) 1 s", 1_000_000_000, "power", 2.0),
    ("log 1 s", 1_000_000_000, "log", 2.0),
]


def _hbt(events: np.ndarray, refresh_ns: int, queue: str, n: float) -> tuple[np.ndarray, dict[str, float]]:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    from bench_replay_hbt import grid_strategy_fills

    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(LATENCY_NS, LATENCY_NS)
        .partial_fill_exchange()
        .trading_value_fee_model(MAKER_FEE, MAKER_FEE)
        .tick_size(TICK)
        .lot_size(LOT)
        .last_trades_capacity(0)
    )
    asset = {"risk_averse": asset.risk_adverse_queue_model, "power": lambda: asset.power_prob_queue_model(n),
             "log": asset.log_prob_queue_model}[queue]()  # fmt: skip
    hbt = HashMapMarketDepthBacktest([asset])
    cap = events.size
    ts, side, tick, qty = np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap)
    t0 = time.perf_counter()
    nf, submits, status = grid_strategy_fills(hbt, refresh_ns, DEPTHS_BPS, LEVEL_QTY, LOT, ts, side, tick, qty)
    wall = time.perf_counter() - t0
    sv = hbt.state_values(0)
    own = {"own_position": float(sv.position), "own_balance": float(sv.balance), "own_fee": float(sv.fee),
           "submissions": float(submits), "last_status": float(status), "wall_s": wall}  # fmt: skip
    hbt.close()
    f = np.zeros(nf, dtype=[("ts", np.int64), ("side", np.int64), ("tick", np.int64), ("qty", np.float64)])
    f["ts"], f["side"], f["tick"], f["qty"] = ts[:nf], side[:nf], tick[:nf], qty[:nf]
    return f, own


def _ours(events: np.ndarray, refresh_ns: int, queue: str, n: float) -> tuple[np.ndarray, dict[str, float]]:
    from hyper_make.backtest import ReplayConfig, replay_fixed_grid
    from hyper_make.data.book import BookGrid

    cfg = ReplayConfig(
        refresh_s=refresh_ns / 1e9, latency_ms=LATENCY_NS / 1e6, response_latency_ms=LATENCY_NS / 1e6,
        latency="feed", cross="all", equal_ts="market_first", queue=queue, queue_n=n, warmup_s=0.0,  # type: ignore[arg-type]
    )  # fmt: skip
    grid = BookGrid.around(events, tick_usd=TICK)
    t0 = time.perf_counter()
    fills, rejects = replay_fixed_grid(events, DEPTHS_BPS, LEVEL_QTY, config=cfg, grid=grid, lot_coins=LOT)
    wall = time.perf_counter() - t0
    f = np.zeros(len(fills), dtype=[("ts", np.int64), ("side", np.int64), ("tick", np.int64), ("qty", np.float64)])
    f["ts"], f["side"] = fills.ts_ns, fills.side
    f["tick"] = np.rint(fills.price_usd / TICK).astype(np.int64)
    f["qty"] = fills.qty_coins
    return f, {"fill_prints": float(len(fills)), "post_only_rejects": float(rejects), "wall_s": wall}


def _per_order_ns(f: np.ndarray) -> Counter[tuple[int, int, int, int]]:
    """Fills summed per (ns, side, price): one order per price and side at a time in this grid. Size in lots."""
    agg: dict[tuple[int, int, int], float] = {}
    for ts, s, t, q in zip(f["ts"], f["side"], f["tick"], f["qty"], strict=True):
        k = (int(ts), int(s), int(t))
        agg[k] = agg.get(k, 0.0) + float(q)
    return Counter((*k, round(v / LOT)) for k, v in agg.items())


def _account(c: Counter[tuple[int, int, int, int]], mid_end: float) -> dict[str, float]:
    bought = sold = cash = fees = 0.0
    for (_ts, s, t, lots), m in c.items():
        q, px = lots * LOT * m, t * TICK
        if s > 0:
            bought += q
        else:
            sold += q
        cash -= s * q * px
        fees += px * q * MAKER_FEE
    pos = bought - sold
    return {"fills": float(sum(c.values())), "bought_coins": bought, "sold_coins": sold, "position_coins": pos,
            "equity_usd": cash + pos * mid_end, "fees_usd": -fees}  # fmt: skip


def main() -> None:
    from hftbacktest.data.utils import binancefutures

    from hyper_make.data.book import BookGrid, market_path

    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm-btcusdt-20240808.gz"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=default)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    with contextlib.redirect_stdout(io.StringIO()) as said:  # the converter's progress lines are not the JSON
        events = binancefutures.convert(str(args.file), combined_stream=True)
    if not args.json:
        print(said.getvalue(), end="")
    path = market_path(events, BookGrid.around(events, tick_usd=TICK))
    mid_end = float(path.mid_usd[-1])
    out: dict[str, object] = {"machine": machine(), "file": args.file.name, "events": int(events.size),
                              "mid_end_usd": mid_end, "settings": {}}  # fmt: skip
    for name, refresh_ns, queue, n in SETTINGS:
        hf, h_own = _hbt(events, refresh_ns, queue, n)
        of, o_diag = _ours(events, refresh_ns, queue, n)
        hc, oc = _per_order_ns(hf), _per_order_ns(of)
        only_h, only_o = hc - oc, oc - hc
        row = {
            "hftbacktest": _account(hc, mid_end) | h_own,
            "hyper_make": _account(oc, mid_end) | o_diag,
            "identical_fills": not only_h and not only_o,
            "only_hftbacktest": sorted(only_h.elements())[:5],
            "only_hyper_make": sorted(only_o.elements())[:5],
            "n_only_hftbacktest": sum(only_h.values()),
            "n_only_hyper_make": sum(only_o.values()),
        }
        out["settings"][name] = row  # type: ignore[index]
    if args.json:
        print(json.dumps(out, default=str))
        return
    m = out["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}; python {m['python']}; "  # type: ignore[index]
          f"date {m['date_utc']} UTC")  # type: ignore[index]  # fmt: skip
    print(f"file: {args.file.name}, {events.size:,} rows (hftbacktest's conversion); last mid {mid_end:.2f} USD")
    cols = ("fills", 6), ("bought", 8), ("sold", 8), ("position", 9), ("equity $", 10), ("fees $", 8)
    print(f"{'setting':<20} {'':>11} " + " ".join(f"{c:>{w}}" for c, w in cols))
    for name, row in out["settings"].items():  # type: ignore[attr-defined]
        for who in ("hyper_make", "hftbacktest"):
            a = row[who]
            print(f"{name if who == 'hyper_make' else '':<20} {who:>11} {a['fills']:>6.0f} {a['bought_coins']:>8.3f} "
                  f"{a['sold_coins']:>8.3f} {a['position_coins']:>9.3f} {a['equity_usd']:>10.2f} "
                  f"{a['fees_usd']:>8.2f}")  # fmt: skip
        same = "identical" if row["identical_fills"] else (
            f"differ: {row['n_only_hyper_make']} only ours, {row['n_only_hftbacktest']} only hftbacktest; "
            f"first ours {row['only_hyper_make'][:1]}, theirs {row['only_hftbacktest'][:1]}")  # fmt: skip
        h = row["hftbacktest"]
        print(f"{'':<20} fills {same}; hftbacktest's own position {h['own_position']:.3f} (issue #316)")


if __name__ == "__main__":
    main()
