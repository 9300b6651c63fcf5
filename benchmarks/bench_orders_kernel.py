"""Cost of one refresh's order plan: the Python refresh core (``plan_orders`` + ``Quoter._fit`` +
``Quoter.last_look``) against the compiled :func:`hyper_make.fast._orders.plan_refresh`, called from Python and
from a compiled loop (how a compiled strategy loop calls it), and through the object wrapper
(``plan_refresh_objects``: a ladder and a view in, the same ``OrderPlan`` out), on a 10 + 10 ladder against 20
resting orders with
every other one moved or re-sized and one on the wrong side (a typical refresh: keeps, modifies, a cancel, a new
order, a fit with room). The kernel's plan is checked equal to the Python's first.

With ``--identity N`` it first runs ``N`` random refreshes (``tests/fast/test_orders_kernel.py``'s ``random_case``:
ladders, resting, pending and unseen orders, inventories, limits, thresholds, books) through the kernels and the
Python refresh core, then the release of each one's deferred orders on another random view, and counts the
refreshes whose plans differ in any element.

    python benchmarks/bench_orders_kernel.py [--repeats 2000] [--identity 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba as nb
import numpy as np

from _machine import machine, print_machine, write_json
from hyper_make import LadderConfig, build_ladder, default_snapshot, default_spec, make_allocator
from hyper_make.fast._orders import M_ID, M_TARGET, P_ID, new_outputs, plan_refresh, plan_refresh_objects
from hyper_make.levels import GridConfig
from hyper_make.strategy.orders import CloidFactory, RestingOrder, plan_orders
from hyper_make.strategy.quoter import Quoter, QuoterConfig
from hyper_make.strategy.venue import BookTop, VenueView


def identity(n: int, seed: int = 20261201) -> int:
    """Refreshes of ``n`` random cases whose kernel plan (or release) differs from the Python's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fast"))
    import test_orders_kernel as t

    ss = np.random.SeedSequence(seed)
    bad = 0
    for child in ss.spawn(n):
        a, b = child.spawn(2)
        try:
            t.check_case(t.random_case(np.random.default_rng(a)), t.random_case(np.random.default_rng(b)))
        except AssertionError:
            bad += 1
    return bad


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``fn`` over ``repeats`` calls, after 5 warm-up calls."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@nb.njit
def _loop(n, args, outs):  # type: ignore[no-untyped-def]
    """``plan_refresh`` ``n`` times in compiled code (the ids restart each time: every call plans the same)."""
    acc = 0
    for _ in range(n):
        r = plan_refresh(*args, *outs)
        acc += r[0] + r[3]
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--identity", type=int, default=0, help="random refreshes to check against the Python first")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = machine()
    print_machine(info)
    differences = None
    if args.identity > 0:
        t0 = time.perf_counter()
        differences = identity(args.identity)
        took = time.perf_counter() - t0
        print(f"identity: {differences} differences on {args.identity} random refreshes ({took:.0f} s)")

    snap, spec = default_snapshot(), default_spec()
    # the flat allocator fills all 10 levels a side (impact leaves the deep ones empty on the default market)
    ladder = build_ladder(snap, spec, make_allocator("flat"), config=LadderConfig(grid=GridConfig(n_levels=10)), rng=0)
    orders = list(ladder.bids) + list(ladder.asks)
    rng = np.random.default_rng(0)
    tick = 1.0  # default_spec's BTC-like price step (USD)
    seed = 5
    prefix = CloidFactory(seed)._prefix
    resting = []
    for i, o in enumerate(orders):
        px = o.price + (tick * float(rng.choice([-1, 1]) * rng.integers(10, 40)) if i % 2 else 0.0)
        sz = o.size * (1.5 if i % 4 == 1 else 1.0)
        resting.append(RestingOrder(o.side, px, sz, f"0x{prefix}{i:016x}", None))
    # one side one order longer than its ladder, the other one shorter: a cancel and a new order too
    deep = min(o.price for o in ladder.bids) - 50 * tick
    resting[-1] = RestingOrder("bid", deep, resting[-1].size, resting[-1].cloid, None)
    q = Quoter(
        spec=spec, allocator=make_allocator("flat"), prior=snap, ladder=LadderConfig(),
        config=QuoterConfig(fast_path=False), cloids=CloidFactory(seed),
    )  # fmt: skip
    q.max_position_coins = 10.0 * sum(o.size for o in orders)  # room: no deferral, the common case
    view = VenueView(
        ts_ns=10**10, book=BookTop(snap.best_bid_usd, snap.best_ask_usd, 10**10), traded_coins=0.0,
        resting=tuple(resting), pending=(), unseen=(), fills=(), position_coins=0.0, margin_usd=1e6, pnl_usd=0.0,
        latency_s=0.05, book_interval_s=0.05,
    )  # fmt: skip
    book = view.book
    assert book is not None
    tau = max(view.book_interval_s, view.latency_s)
    margin = q.config.alo_guard_sigmas * q.estimator.sigma_frac_per_sqrt_s(10.0) * math.sqrt(tau)  # Quoter.crossing

    def python() -> object:
        plan = plan_orders(
            ladder, view.resting, inventory_coins=0.0, max_position_coins=q.max_position_coins,
            cloids=CloidFactory(seed), config=q.config.orders,
        )  # fmt: skip
        plan, _ = q._fit(plan, view)
        return q.last_look(plan, view)[0]

    nd = max(len(ladder.bids), len(ladder.asks))
    d_px, d_sz, d_lv = np.zeros((2, nd)), np.zeros((2, nd)), np.zeros((2, nd), np.int64)
    for s, side in enumerate((ladder.bids, ladder.asks)):
        d_px[s, : len(side)] = [o.price for o in side]
        d_sz[s, : len(side)] = [o.size for o in side]
        d_lv[s, : len(side)] = [o.level for o in side]
    n_d = np.array([len(ladder.bids), len(ladder.asks)], np.int64)
    r_id = np.arange(len(resting), dtype=np.int64)
    r_side = np.array([o.side == "ask" for o in resting], np.int64)
    r_px = np.array([o.price for o in resting])
    r_sz = np.array([o.size for o in resting])
    r_ro = np.zeros(len(resting), np.bool_)
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
    cfg = q.config.orders
    kargs = (
        d_px, d_sz, d_lv, n_d, r_id, r_side, r_px, r_sz, r_ro, empty_i, empty_f, empty_i, empty_f, 0.0,
        q.max_position_coins, cfg.requote_price_bps, cfg.requote_size_frac, cfg.reduce_only, True,
        book.best_bid_usd, book.best_ask_usd, margin, 0,
    )  # fmt: skip
    outs = new_outputs(len(resting), int(n_d.sum()))

    # the same plan first
    ref = python()
    n_kept, n_cancel, n_mod, n_place, n_def, _, _, _, _ = plan_refresh(*kargs, *outs)
    kept, cancel, mod, place, _ = outs
    counter = lambda c: int(c[18:], 16)  # noqa: E731
    assert [counter(r.cloid) for r in ref.kept] == kept[:n_kept].tolist()
    assert [counter(c.target.cloid) for c in ref.cancels] == cancel[:n_cancel].tolist()
    assert [(counter(m.target.cloid), counter(m.cloid)) for m in ref.modifies] == [
        (int(m[M_TARGET]), int(m[M_ID])) for m in mod[:n_mod]
    ]
    assert [counter(p.cloid) for p in ref.places] == [int(p[P_ID]) for p in place[:n_place]] and n_def == 0
    shape = f"{n_kept} kept, {n_mod} modifies, {n_cancel} cancels, {n_place} new"

    def objects() -> object:
        return plan_refresh_objects(
            ladder, view, cloids=CloidFactory(seed), max_position_coins=q.max_position_coins, config=cfg,
            margin_frac=margin,
        )[0]  # fmt: skip

    assert objects().to_dict() == ref.to_dict()  # type: ignore[attr-defined]

    loops = 1000
    _loop(1, kargs, outs)  # compile
    t_loop = median_s(lambda: _loop(loops, kargs, outs), max(args.repeats // 100, 5)) / loops
    rows = {
        "python (plan_orders + _fit + last_look)": median_s(python, args.repeats),
        "plan_refresh_objects (Ladder + view in, OrderPlan out)": median_s(objects, args.repeats),
        "plan_refresh called from Python": median_s(lambda: plan_refresh(*kargs, *outs), args.repeats),
        "plan_refresh in a compiled loop": t_loop,
    }
    base = rows["python (plan_orders + _fit + last_look)"]
    print(f"{len(orders)} desired vs {len(resting)} resting: {shape}")
    print(f"{'path':<56} {'median':>10} {'speed-up':>9}")
    for name, t in rows.items():
        print(f"{name:<56} {t * 1e6:>7.2f} us {base / t:>8.1f}x")
    write_json(
        args.json,
        {
            "machine": info,
            "plan": shape,
            "identity": {"refreshes": args.identity, "differences": differences},
            "median_us": {k: v * 1e6 for k, v in rows.items()},
            "speedup": {k: base / v for k, v in rows.items()},
        },
    )


if __name__ == "__main__":
    main()
