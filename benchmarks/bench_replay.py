"""Replay throughput (events/s): hyper_make's replay backtester against hftbacktest on the same file.

Run: ``python benchmarks/bench_replay.py [FILE] [--json]`` (about a minute; needs the ``bench`` extra for hftbacktest).
FILE defaults to ``../shared/data/binance-usdm-btcusdt-20240808.gz``.

Both replay the **same event array**: hftbacktest's own converter output for the file
(``hftbacktest.data.utils.binancefutures.convert``: depth diffs, trades, snapshot, event order corrected),
in one process, with the same set-up: a 20-level ladder per side refreshed every 100 ms (geometric depths
2-200 bps, equal sizes), the risk-averse queue model, partial fills, 50 ms order latency, maker/taker fees.
hftbacktest must reach the end of the data (status 1): an early stop is an error, not a faster run (its loop
used to end silently at status 14, hftbacktest's issue #312, which overstated its speed about 1.24x).

* hftbacktest: ``HashMapMarketDepthBacktest`` with a numba ``@njit`` strategy (its grid-trading pattern:
  cancel the orders not in the new grid, submit the missing ones as GTX).
* hyper_make, same work: :func:`hyper_make.backtest.replay_fixed_grid`, the same fixed grid computed in numba
  around the replay kernel (no Python per refresh). This is the like-for-like engine comparison.
* hyper_make, full pipeline: :func:`hyper_make.backtest.replay` with the ``flat`` allocator (``--allocator NAME``),
  i.e. the refresh core every refresh (``Quoter``: estimation, the compiled ladder build, or the Python reference
  with ``--reference``, the order diff, the limit guard) around the same kernel, stepped in Python
  (``compiled=False``); printed beside, with its share of time spent in the refresh core.
* hyper_make, compiled loop: the same replay with ``compiled=True`` (:mod:`hyper_make.backtest._loop`: the venue
  and the compiled refresh core in one numba call per chunk; the same fills, checked), the ratio to hftbacktest
  measured in the same process (target >= 1); and the same compiled replay with a warm-up over the whole data
  (observe only: the venue, the feed and the estimates without a quote), what the strategy's refreshes add to.

Throughput = rows of the input array / wall time of the replay (data already in memory, JIT warmed up).
Medians of ``REPEATS`` runs; the ratio is hyper_make / hftbacktest (target >= 0.5).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _machine import machine

REPEATS = 5
REFRESH_NS = 100_000_000
N_LEVELS = 20
LATENCY_NS = 50_000_000
LEVEL_QTY = 0.002  # coins per level (both engines)
TICK = 0.1  # USD, BTCUSDT futures (both engines)
LOT = 0.001  # coins, BTCUSDT futures (both engines)


def _hftbacktest_run(events: np.ndarray, tick: float, lot: float) -> tuple[float, int]:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    from bench_replay_hbt import grid_strategy  # njit strategy (separate module keeps numba's cache simple)

    t0 = time.perf_counter()
    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(LATENCY_NS, LATENCY_NS)
        .risk_adverse_queue_model()
        .partial_fill_exchange()
        .trading_value_fee_model(0.00015, 0.00045)
        .tick_size(tick)
        .lot_size(lot)
        .last_trades_capacity(0)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    depths = np.geomspace(2.0, 200.0, N_LEVELS)
    n_submits, status = grid_strategy(hbt, REFRESH_NS, depths, LEVEL_QTY, lot)
    hbt.close()
    if status != 1:  # the loop used to stop here silently (status 14, hftbacktest's issue #312): a shorter run
        raise RuntimeError(f"hftbacktest stopped before the end of the data with status {status}")
    return time.perf_counter() - t0, n_submits


def _ours_grid(events: np.ndarray) -> tuple[float, int]:
    from hyper_make.backtest import ReplayConfig, replay_fixed_grid

    cfg = ReplayConfig(
        refresh_s=REFRESH_NS / 1e9, latency_ms=LATENCY_NS / 1e6, queue="risk_averse", warmup_s=0.0, latency="feed"
    )  # the same rules as hftbacktest's (feed latency, crossing, market rows first): peer_hftbacktest.py checks it
    t0 = time.perf_counter()
    fills, _ = replay_fixed_grid(events, np.geomspace(2.0, 200.0, N_LEVELS), LEVEL_QTY, config=cfg, lot_coins=LOT)
    return time.perf_counter() - t0, len(fills)


def _ours_run(
    events: np.ndarray, allocator: str = "flat", fast_path: bool = True, compiled: bool = False, warmup_s: float = 1.0
) -> tuple[float, float, int]:
    from hyper_make.allocate import make_allocator
    from hyper_make.backtest import ReplayConfig, replay
    from hyper_make.config import AppConfig
    from hyper_make.ladder import LadderConfig
    from hyper_make.levels import GridConfig
    from hyper_make.strategy.quoter import QuoterConfig

    app = AppConfig(
        ladder=LadderConfig(grid=GridConfig(n_levels=N_LEVELS), level_cap_frac=1.0),
        quoter=QuoterConfig(fast_path=fast_path),
    )
    cfg = ReplayConfig(refresh_s=REFRESH_NS / 1e9, latency_ms=LATENCY_NS / 1e6, queue="risk_averse", warmup_s=warmup_s)
    t0 = time.perf_counter()
    res = replay(events, make_allocator(allocator), app=app, config=cfg, compiled=compiled)
    wall = time.perf_counter() - t0
    return wall, res.diagnostics["strategy_s"], len(res.fills)


def main() -> None:
    from hftbacktest.data.utils import binancefutures

    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm-btcusdt-20240808.gz"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=default)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--allocator", default="flat", help="the full pipeline's allocator (default flat)")
    ap.add_argument("--reference", action="store_true", help="the full pipeline on the Python reference ladder path")
    ap.add_argument("--repeats", type=int, default=REPEATS, help=f"timed runs of each engine (default {REPEATS})")
    args = ap.parse_args()
    fast_path = not args.reference
    src = args.file
    m = machine()
    if args.json:
        sys.stdout = io.StringIO()  # the progress lines are not the JSON
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['platform']}; python {m['python']}, numpy {m['numpy']}")
    print(f"date: {m['date_utc']} UTC; load average (1 min) {m['load_avg_1m']}")
    print(f"file: {src.name}")
    t0 = time.perf_counter()
    events = binancefutures.convert(str(src), combined_stream=True)
    print(f"hftbacktest convert: {events.size:,} rows in {time.perf_counter() - t0:.2f} s")
    from hyper_make.data import load_events

    t0 = time.perf_counter()
    ours_events, rep = load_events(src)
    print(f"hyper_make reader: {ours_events.size:,} rows in {time.perf_counter() - t0:.2f} s "
          f"({rep.lines / (time.perf_counter() - t0):,.0f} lines/s)")  # fmt: skip

    # warm both JITs on a slice, then time the full array
    warm = events[: events.size // 20]
    _hftbacktest_run(warm, TICK, LOT)
    _ours_grid(warm)
    _ours_run(warm, args.allocator, fast_path)
    _ours_run(warm, args.allocator, fast_path, compiled=True)
    hb, grid, full, share, comp, idle = [], [], [], [], [], []
    for _ in range(args.repeats):
        w, n_sub = _hftbacktest_run(events, TICK, LOT)
        hb.append(events.size / w)
        w, n_grid_fills = _ours_grid(events)
        grid.append(events.size / w)
        w, strategy_s, n_fills = _ours_run(events, args.allocator, fast_path)
        full.append(events.size / w)
        share.append(strategy_s / w)
        w, _, n_comp_fills = _ours_run(events, args.allocator, fast_path, compiled=True)
        comp.append(events.size / w)
        if n_comp_fills != n_fills:  # the compiled loop is the Python step's replay: the same fills
            raise RuntimeError(f"compiled loop: {n_comp_fills} fills, Python step: {n_fills}")
        # the same compiled replay with a warm-up over the whole data: the venue, the feed and the estimates, no
        # quotes (what the strategy's refreshes add is the difference)
        w, _, _ = _ours_run(events, args.allocator, fast_path, compiled=True, warmup_s=1e9)
        idle.append(events.size / w)
    h, g, f = statistics.median(hb), statistics.median(grid), statistics.median(full)
    c, o = statistics.median(comp), statistics.median(idle)
    print(f"hftbacktest               : median {h:,.0f} events/s ({args.repeats} runs; {n_sub:,} order submissions)")
    print(f"hyper_make fixed grid     : median {g:,.0f} events/s ({n_grid_fills} fills)")
    path = "fast path" if fast_path else "reference path"
    print(f"hyper_make full pipeline  : median {f:,.0f} events/s ({args.allocator}, {path}; {n_fills} fills; "
          f"{statistics.median(share):.0%} of the time in the refresh core)")  # fmt: skip
    print(f"hyper_make compiled loop  : median {c:,.0f} events/s ({args.allocator}, backtest/_loop.py; the same "
          f"{n_fills} fills)")  # fmt: skip
    print(f"hyper_make observe only   : median {o:,.0f} events/s (the compiled loop warming up over the whole data: "
          f"the venue, feed and estimates without quotes)")  # fmt: skip
    print(f"ratio hyper_make / hftbacktest: {g / h:.2f} same work (target >= 0.5); {f / h:.2f} with the strategy "
          f"(Python step), {c / h:.2f} with the strategy in the compiled loop (target >= 1)")  # fmt: skip
    if args.json:
        sys.stdout = sys.__stdout__
        print(json.dumps({"machine": m, "file": src.name, "rows": int(events.size), "repeats": args.repeats,
                          "allocator": args.allocator, "ladder_path": "fast" if fast_path else "reference",
                          "hftbacktest_events_per_s": h, "hyper_make_grid_events_per_s": g,
                          "hyper_make_full_events_per_s": f, "ratio_same_work": g / h, "ratio_with_strategy": f / h,
                          "hyper_make_compiled_events_per_s": c, "ratio_compiled": c / h,
                          "hyper_make_observe_only_events_per_s": o,
                          "hftbacktest_submissions": n_sub, "hyper_make_grid_fills": n_grid_fills,
                          "hyper_make_full_fills": n_fills,
                          "refresh_core_share": statistics.median(share)}))  # fmt: skip


if __name__ == "__main__":
    main()
