"""Cost of the order path per refresh: diff (plan_orders), signing (build_requests) and a round trip of the
SDK's client to the local exchange, each as a median and as a ratio to build_ladder run in the same process.

    python benchmarks/bench_orders.py [--repeats 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from eth_account import Account

from _machine import machine, print_machine, write_json
from hyper_make.allocate import make_allocator
from hyper_make.connectors import HyperliquidClient, NonceSource, build_requests
from hyper_make.defaults import default_snapshot
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import build_ladder
from hyper_make.strategy import CloidFactory, OrderManagerConfig, RestingOrder, plan_orders


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``fn`` over ``repeats`` calls, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = machine()
    print_machine(info)

    spec = InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0)
    snap = default_snapshot()
    alloc = make_allocator("entropy")
    ladder = build_ladder(snap, spec, alloc, rng=0)
    n = len(ladder.bids) + len(ladder.asks)
    rng = np.random.default_rng(0)
    # resting = the ladder with every other order moved by a few ticks / resized: a typical refresh
    resting = []
    for i, o in enumerate(ladder.bids + ladder.asks):
        px = o.price + (float(rng.integers(-3, 4)) if i % 2 else 0.0)
        resting.append(RestingOrder(o.side, px, o.size, f"0x{i:032x}", 1000 + i))
    cfg = OrderManagerConfig(requote_price_bps=0.0, requote_size_frac=0.0)
    wallet = Account.create()

    def diff():
        return plan_orders(
            ladder, resting, inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(1), config=cfg
        )

    plan = diff()
    nonces = NonceSource()

    def sign():
        return build_requests(plan, spec, wallet, base_url="https://api.hyperliquid-testnet.xyz", nonces=nonces)

    rows = {
        "build_ladder (baseline)": median_s(lambda: build_ladder(snap, spec, alloc, rng=0), args.repeats),
        f"plan_orders ({n} desired vs {n} resting)": median_s(diff, args.repeats),
        f"build_requests ({len(plan.batches)} signed requests)": median_s(sign, args.repeats),
    }
    market = RandomWalkMarket({spec: 90_000.5}, seed=0, trades_per_s=0.0)
    with LocalServer(LocalExchange([spec], market)) as srv:
        client = HyperliquidClient(wallet, base_url=srv.url, meta=srv.exchange.meta(), coin="BTC")
        fresh = plan_orders(ladder, [], inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(2))
        client.send(fresh)
        cancel_all = plan_orders(
            [], client.open_orders(), inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(3)
        )
        client.send(cancel_all)
        counter = [10]

        def round_trip():
            counter[0] += 2
            p = plan_orders(ladder, [], inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(counter[0]))
            client.send(p)
            c = plan_orders(
                [], p.final_orders(), inventory_coins=0.0, max_position_coins=0.5, cloids=CloidFactory(counter[0] + 1)
            )
            client.send(c)

        label = f"SDK to local exchange: place {n} + cancel {n} (2 requests)"
        rows[label] = median_s(round_trip, max(args.repeats // 10, 5))
    base = rows["build_ladder (baseline)"]
    print(f"{'step':<62} {'median':>12} {'x build_ladder':>15}")
    for name, t in rows.items():
        print(f"{name:<62} {t * 1e3:>9.3f} ms {t / base:>15.2f}")
    ratios = {k: v / base for k, v in rows.items()}
    write_json(args.json, {"machine": info, "median_s": rows, "ratio_to_build_ladder": ratios})


if __name__ == "__main__":
    main()
