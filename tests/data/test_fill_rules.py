"""The replay's fill rules on tiny hand-made tapes, each answer worked out by hand in the comments: fill by
crossing (all / up to the quantity that crossed / off), the equal-timestamp rule, whole-lot fills, response and
feed latency at the venue, integer nanoseconds in the fills CSV."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_make.backtest import ReplayConfig
from hyper_make.backtest._core import (
    CROSS_ALL,
    CROSS_OFF,
    CROSS_QTY,
    LIVE,
    NEVER,
    QUEUE_LOG,
    QUEUE_RISK_AVERSE,
    cancel,
    fill_dtype,
    order_dtype,
    place,
    run_until,
)
from hyper_make.backtest.venue import ReplayVenue
from hyper_make.data.book import BookGrid, OrderBook
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
)
from hyper_make.errors import InvalidParameterError
from hyper_make.strategy.orders import Cancel, Place, RestingOrder, assemble_plan

GRID = BookGrid(tick_usd=0.5, base_tick=180, n=40)  # 90 .. 109.5 USD
LOT = 1e-3
BOOK = [(1, DEPTH_EVENT, "buy", 100.0, 10.0), (1, DEPTH_EVENT, "sell", 100.5, 5.0)]  # 10 bid at 100, 5 asked at 100.5


def tape(rows, local_delay_ns=0):
    out = np.zeros(len(rows), dtype=event_dtype)
    for i, (t, kind, side, px, qty) in enumerate(rows):
        flag = BUY_EVENT if side == "buy" else SELL_EVENT
        out[i] = (kind | flag | EXCH_EVENT | LOCAL_EVENT, t, t + local_delay_ns, px, qty, 0, 0, 0.0)
    return out


def run(rows, *, qty=1.0, px=100.0, arrive=2, cross=CROSS_ALL, market_first=True, queue=QUEUE_RISK_AVERSE,
        cancel_at=None):  # fmt: skip
    """Our bid of ``qty`` at ``px`` arriving at ``arrive`` ns; returns [(ts, qty)] of its fills and its state."""
    events = tape(rows)
    book = OrderBook(GRID)
    orders = np.zeros(2, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = orders["done_ts"] = NEVER
    assert place(orders, 7, 1, round(px / 0.5), qty, 0, arrive, LOT) == 0
    if cancel_at is not None:
        cancel(orders, 7, cancel_at)
    fills = np.zeros(64, dtype=fill_dtype)
    status, k, _c, nfill, _r = run_until(
        book.bid_qty, book.ask_qty, book.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
        0, 10**18, 0, orders, np.full(GRID.n, -1), np.full(GRID.n, -1), fills, 0, 0.5, LOT, queue, 2.0, True,
        cross, market_first,
    )  # fmt: skip
    assert status == 1 and k == events.size
    return [(int(f["ts"]), float(f["qty"])) for f in fills[:nfill]], int(orders["state"][0])


# ---- crossing -------------------------------------------------------------------------------------------------
ASK_ON_US = [*BOOK, (5, DEPTH_EVENT, "sell", 100.0, 3.0)]  # the best ask comes down to our bid, no trade


def test_crossing_fills_the_whole_order_by_default_and_nothing_when_off():
    assert run(ASK_ON_US)[0] == [(5, 1.0)]  # hftbacktest's rule: the remainder, at our price, at that row's time
    assert run(ASK_ON_US, cross=CROSS_OFF)[0] == []
    # an ask that stops above us (100.5 -> 100.5 with more size) crosses nothing
    assert run([*BOOK, (5, DEPTH_EVENT, "sell", 100.5, 9.0)])[0] == []


def test_crossing_up_to_the_quantity_that_crossed_in_whole_lots():
    # 3 coins offered at our price: all of our 1 fills
    assert run(ASK_ON_US, cross=CROSS_QTY)[0] == [(5, 1.0)]
    # 0.4 then 0.2504 more offered at 100, then 0.3 at 99.5 (through us): 400 lots, 250 lots (rounded down), then
    # the 350 left of our 1000 lots, capped at our remainder
    rows = [*BOOK, (5, DEPTH_EVENT, "sell", 100.0, 0.4), (6, DEPTH_EVENT, "sell", 100.0, 0.6504),
            (7, DEPTH_EVENT, "sell", 99.5, 0.5)]  # fmt: skip
    fills, state = run(rows, cross=CROSS_QTY)
    assert fills == [(5, 0.4), (6, 0.25), (7, 0.35)]  # whole lots, each the float nearest its decimal
    assert state != LIVE
    # a decrease of the crossing level offers nothing new
    fills, state = run([*BOOK, (5, DEPTH_EVENT, "sell", 100.0, 0.4), (6, DEPTH_EVENT, "sell", 100.0, 0.1)],
                       cross=CROSS_QTY)  # fmt: skip
    assert fills == [(5, 0.4)] and state == LIVE


# ---- equal timestamps -----------------------------------------------------------------------------------------
def test_equal_timestamps_market_rows_first_by_default():
    # a sell through our bid stamped with our arrival's ns: it happened before we got there (market first)
    through = [*BOOK, (5, TRADE_EVENT, "sell", 99.5, 0.1)]
    assert run(through, arrive=5)[0] == []
    assert run(through, arrive=5, market_first=False)[0] == [(5, 1.0)]
    # 4 join the queue at our arrival's ns: behind them (14 ahead) market first, ahead of them (10) order first;
    # then 12 trade at our price: 14 - 12 = 2 still ahead, or 12 - 10 = 2 past the queue, our 1 fills
    queue = [*BOOK, (5, DEPTH_EVENT, "buy", 100.0, 14.0), (6, TRADE_EVENT, "sell", 100.0, 12.0)]
    assert run(queue, arrive=5)[0] == []
    assert run(queue, arrive=5, market_first=False)[0] == [(6, 1.0)]
    # a cancel effective at the trade's ns: the trade fills it first (market first) or finds it gone
    assert run(through, cancel_at=5)[0] == [(5, 1.0)]
    assert run(through, cancel_at=5, market_first=False)[0] == []


# ---- lots -----------------------------------------------------------------------------------------------------
def test_fills_are_exact_lot_multiples_and_leave_no_dust():
    # 3 lots behind 10: 10.0012 traded -> 1.2 lots past the queue, 1 filled (0.2 owed); 0.0017 more -> 1.9, 2
    # filled: exactly 0.001 + 0.002, the order done (0.003 - 0.001 - 0.001 in floats would leave 0.0009999...)
    rows = [*BOOK, (5, TRADE_EVENT, "sell", 100.0, 10.0012), (6, TRADE_EVENT, "sell", 100.0, 0.0017),
            (7, TRADE_EVENT, "sell", 100.0, 5.0)]  # fmt: skip
    fills, state = run(rows, qty=0.003)
    assert fills == [(5, 0.001), (6, 0.002)] and state != LIVE
    # an order size is rounded to whole lots when placed (0.0026 -> 3 lots) and a sub-lot order is not placed
    orders = np.zeros(1, dtype=order_dtype)
    assert place(orders, 1, 1, 200, 0.0026, 0, 0, LOT) == 0 and orders["lots"][0] == 3
    assert orders["qty"][0] == 0.003
    assert place(np.zeros(1, dtype=order_dtype), 1, 1, 200, 0.0004, 0, 0, LOT) == -2


def test_a_probabilistic_queue_fills_whole_lots():
    # log queue: 4 join behind (14), 4 leave: P(back) = ln5 / (ln5 + ln11), 10 - (1 - P)·4 = 7.6065 ahead; an 8
    # trade leaves 0.3935 past the queue -> 394 lots (nearest), an exact multiple of the lot
    p = np.log(5) / (np.log(5) + np.log(11))
    rows = [*BOOK, (3, DEPTH_EVENT, "buy", 100.0, 14.0), (4, DEPTH_EVENT, "buy", 100.0, 10.0),
            (5, TRADE_EVENT, "sell", 100.0, 8.0)]  # fmt: skip
    fills, _ = run(rows, queue=QUEUE_LOG)
    lots = round((8 - (10 - (1 - p) * 4)) / LOT)
    assert lots == 394 and fills == [(5, 0.394)]


# ---- the venue: response and feed latency ---------------------------------------------------------------------
def venue(events, **kw):
    return ReplayVenue(
        events, GRID, lot_coins=LOT, maker_fee_frac=0.0, margin_usd=1e6, latency_ms=10.0, queue_kind=0, queue_n=2.0,
        use_bbo=True, slots=8, **kw,
    )  # fmt: skip


def plan(*places, cancels=()):
    return assemble_plan((), [Cancel(c) for c in cancels], (), list(places), {}, 10)


MS = 1_000_000


def test_fills_and_order_ends_reach_the_strategy_a_response_latency_later():
    # our bid sent at 0 arrives at 10 ms; a sell through it at 20 ms fills it; the report comes 30 ms later
    rows = [(0, DEPTH_EVENT, "buy", 100.0, 10.0), (0, DEPTH_EVENT, "sell", 100.5, 5.0),
            (20 * MS, TRADE_EVENT, "sell", 99.5, 2.0), (200 * MS, DEPTH_EVENT, "buy", 100.0, 9.0)]  # fmt: skip
    v = venue(tape(rows), feed_latency=False, response_latency_ms=30.0)
    v.advance(0)
    v.view()
    v.apply(plan(Place("a", "bid", 100.0, 0.5, False, 0)))
    v.advance(49 * MS)
    seen = v.view()
    assert v.position_coins == 0.5  # the exchange's account has it at 20 ms
    assert seen.fills == () and seen.position_coins == 0.0 and [o.cloid for o in seen.resting] == ["a"]
    v.advance(50 * MS)
    seen = v.view()
    assert [(f.ts_ns, f.size_coins) for f in seen.fills] == [(20 * MS, 0.5)]
    assert seen.position_coins == 0.5 and seen.resting == () and seen.pending == ()


def test_a_post_only_reject_and_a_cancel_are_learned_a_response_latency_later():
    rows = [(0, DEPTH_EVENT, "buy", 100.0, 10.0), (0, DEPTH_EVENT, "sell", 100.5, 5.0),
            (200 * MS, DEPTH_EVENT, "buy", 100.0, 9.0)]  # fmt: skip
    v = venue(tape(rows), feed_latency=False, response_latency_ms=30.0)
    v.advance(0)
    v.view()
    # a bid at the ask is rejected on arrival (10 ms), known at 40 ms; a bid at 99 rests, cancelled at 5 ms
    v.apply(plan(Place("x", "bid", 100.5, 0.5, False, 0), Place("b", "bid", 99.0, 0.5, False, 1)))
    v.advance(5 * MS)
    b = next(o for o in v.view().resting if o.cloid == "b")
    v.apply(plan(cancels=[RestingOrder.trusted("bid", 99.0, 0.5, "b", None, False)]))  # effective 15 ms
    v.advance(39 * MS)
    seen = v.view()
    assert {o.cloid for o in seen.resting} == {"x"} and [o.cloid for o in seen.pending] == [b.cloid]
    v.advance(40 * MS)
    seen = v.view()
    assert seen.resting == () and [o.cloid for o in seen.pending] == ["b"]  # its end is known at 15 + 30 ms
    v.advance(45 * MS)
    assert v.view().pending == ()
    assert v.rejects == 1


def test_feed_latency_shows_the_book_at_its_receive_time():
    # the bid moves up at 100 ms exchange time, received 7 ms later
    rows = [(0, DEPTH_EVENT, "buy", 100.0, 10.0), (0, DEPTH_EVENT, "sell", 101.0, 5.0),
            (100 * MS, DEPTH_EVENT, "buy", 100.5, 1.0), (300 * MS, DEPTH_EVENT, "buy", 100.0, 9.0)]  # fmt: skip
    events = tape(rows, local_delay_ns=7 * MS)
    v = venue(events, feed_latency=True)
    v.advance(106 * MS)
    assert v.view().book.best_bid_usd == 100.0 and v.book.best_bid_usd == 100.5  # the exchange has it already
    v.advance(107 * MS)
    assert v.view().book.best_bid_usd == 100.5
    same = venue(events, feed_latency=False)
    same.advance(100 * MS)
    assert same.view().book.best_bid_usd == 100.5


def test_bad_fill_rule_options_name_the_field():
    with pytest.raises(InvalidParameterError, match="'cross' must be one of"):
        ReplayConfig(cross="some")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'equal_ts' must be one of"):
        ReplayConfig(equal_ts="random")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'response_latency_ms'"):
        ReplayConfig(response_latency_ms=-1.0)


def test_the_fills_csv_keeps_every_nanosecond(tmp_path):
    import polars as pl

    from hyper_make.backtest import Fills

    ts = np.array([1_723_075_200_123_456_789, 1_723_075_200_123_456_790], dtype=np.int64)  # not multiples of 256
    f = Fills(ts, np.array([1, -1]), np.array([61_000.1, 61_000.2]), np.array([0.001, 0.002]), np.array([0, 3]),
              np.array([61_000.15, 61_000.15]))  # fmt: skip
    f.write_csv(tmp_path / "f.csv")
    back = pl.read_csv(tmp_path / "f.csv")
    assert back["ts_ns"].dtype == pl.Int64 and back["ts_ns"].to_list() == ts.tolist()
    assert back["price_usd"].to_list() == [61_000.1, 61_000.2] and back["qty_coins"].to_list() == [0.001, 0.002]


def test_lots_to_coins_is_the_decimal_for_decimal_lots():
    from hyper_make.backtest._core import lots_to_coins

    assert lots_to_coins(350, 1e-3) == 0.35 and 350 * 1e-3 != 0.35  # 0.35000000000000003
    assert lots_to_coins(55, 1e-3) == 0.055 and lots_to_coins(7, 1e-5) == 7e-5
    assert lots_to_coins(3, 0.25) == 0.75 and lots_to_coins(3, 0.3) == 3 * 0.3  # not a decimal lot: n·lot


# ---- the fixed grid: hftbacktest's grid example with the strategy's view --------------------------------------
def test_fixed_grid_keeps_a_partly_filled_order_and_replaces_a_filled_one_once_it_knows():
    from hyper_make.backtest import replay_fixed_grid

    s = 1_000_000_000
    # bid 99 x5, ask 101 x5: a 100 bps grid level puts our bid at 99 (5 ahead) and our ask at 101, from t = 1 s
    # (arriving 10 ms later). 5.002 sold at 99: 2 of our 3 lots; at the 2 s refresh the order is still on the grid,
    # kept with its place (replacing it would put it behind 5 again): 0.001 more sold fills its last lot. At the
    # 3 s refresh its end (2.5 s) is known (10 ms later) and a new bid goes out, arriving at 3.01 s: the sale at
    # 3.005 s misses it, the 5.001 at 3.5 s fills one lot.
    rows = [(0, DEPTH_EVENT, "buy", 99.0, 5.0), (0, DEPTH_EVENT, "sell", 101.0, 5.0),
            (s + s // 2, TRADE_EVENT, "sell", 99.0, 5.002), (2 * s + s // 2, TRADE_EVENT, "sell", 99.0, 0.001),
            (3 * s + 5_000_000, TRADE_EVENT, "sell", 99.0, 1.0), (3 * s + s // 2, TRADE_EVENT, "sell", 99.0, 5.001),
            (4 * s + s // 5, DEPTH_EVENT, "buy", 98.0, 1.0)]  # fmt: skip
    grid = BookGrid(tick_usd=1.0, base_tick=90, n=21)

    def fills(resp_ms):
        cfg = ReplayConfig(refresh_s=1.0, latency_ms=10.0, response_latency_ms=resp_ms, warmup_s=0.0)
        f, rejects = replay_fixed_grid(tape(rows), np.array([100.0]), 0.003, config=cfg, grid=grid, lot_coins=LOT)
        assert rejects == 0
        return [(int(t), int(sd), float(p), float(q)) for t, sd, p, q in zip(f.ts_ns, f.side, f.price_usd,
                                                                              f.qty_coins, strict=True)]  # fmt: skip

    assert fills(10.0) == [(s + s // 2, 1, 99.0, 0.002), (2 * s + s // 2, 1, 99.0, 0.001),
                           (3 * s + s // 2, 1, 99.0, 0.001)]  # fmt: skip
    # answers 600 ms late: at 3 s the fill of 2.5 s is not known yet, the new bid waits for the 4 s refresh
    assert fills(600.0) == [(s + s // 2, 1, 99.0, 0.002), (2 * s + s // 2, 1, 99.0, 0.001)]
