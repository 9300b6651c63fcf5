"""Replay backtester: every allocator runs on the real recording, fills obey the queue model, the PnL split
adds up, runs are deterministic; the queue models on a hand-made tape (known answers)."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_make.allocate import ALLOCATORS, make_allocator
from hyper_make.backtest import ReplayConfig, replay, run_backtest
from hyper_make.backtest._core import (
    CROSS_OFF,
    DONE,
    LIVE,
    NEVER,
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
    fill_dtype,
    order_dtype,
    place,
    run_until,
)
from hyper_make.config import AppConfig
from hyper_make.data.book import BookGrid, OrderBook, market_path
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
from hyper_make.ladder import LadderConfig
from hyper_make.levels import GridConfig


@pytest.fixture(scope="module")
def results(futures):
    events = futures[0]
    res, _ = run_backtest(events, {n: make_allocator(n) for n in ALLOCATORS}, config=ReplayConfig(refresh_s=1.0))
    return events, res


def test_every_allocator_runs_and_fills_only_where_the_market_traded_or_crossed_us(results):
    events, res = results
    path = market_path(events)
    assert set(res) == set(ALLOCATORS)
    total_fills = crossed = 0
    for name, r in res.items():
        f = r.fills
        total_fills += len(f)
        for ts, side, px in zip(f.ts_ns, f.side, f.price_usd, strict=True):
            at = path.trade_ts_ns == ts
            book = path.ts_ns == ts
            if side > 0:  # our bid: a seller traded at or below it then, or the best ask came down to it
                ok = at & ~path.trade_buy & (path.trade_px_usd <= px + 1e-9)
                cross = book & (path.ask_usd <= px + 1e-9)
            else:
                ok = at & path.trade_buy & (path.trade_px_usd >= px - 1e-9)
                cross = book & (path.bid_usd >= px - 1e-9)
            crossed += not ok.any()
            assert ok.any() or cross.any(), f"{name}: fill at {px} ({'bid' if side > 0 else 'ask'}) with no trade at "
            "or through it and no book crossing it"
        assert np.all(f.qty_coins > 0)
        m = r.metrics()
        parts = m["spread_capture_usd"] + m["adverse_selection_usd"] + m["fees_usd"] + m["inventory_usd"]
        assert parts == pytest.approx(m["pnl_usd"], abs=1e-6)
        assert m["model_impact_usd"] <= 0
        assert m["fees_usd"] <= 0
        for h in (1, 5, 30, 60):
            assert f"markout_{h}s_bps" in m
        assert abs(m["final_inventory_coins"] - float(np.sum(f.side * f.qty_coins))) < 1e-9
    assert total_fills > 0 and 0 < crossed < total_fills


def test_replay_is_deterministic(futures):
    events = futures[0]
    cfg = ReplayConfig(refresh_s=2.0, queue="power", latency="feed")
    a = replay(events[:200_000], make_allocator("entropy"), config=cfg)
    b = replay(events[:200_000], make_allocator("entropy"), config=cfg)
    assert np.array_equal(a.fills.ts_ns, b.fills.ts_ns) and np.array_equal(a.fills.qty_coins, b.fills.qty_coins)
    assert a.pnl == b.pnl


def test_bad_replay_parameters():
    with pytest.raises(InvalidParameterError, match="'queue' must be one of"):
        ReplayConfig(queue="fifo")
    with pytest.raises(InvalidParameterError, match="'refresh_s'"):
        ReplayConfig(refresh_s=0.0)


# ---- queue models on a hand-made tape -------------------------------------------------------------------------
def _tape(rows):
    out = np.zeros(len(rows), dtype=event_dtype)
    for i, (t, kind, side, px, qty) in enumerate(rows):
        flag = BUY_EVENT if side == "buy" else SELL_EVENT
        out[i] = (kind | flag | EXCH_EVENT | LOCAL_EVENT, t, t, px, qty, 0, 0, 0.0)
    return out


def _run(rows, queue_kind, *, order_px=100.0, order_qty=1.0):
    """One resting bid of ``order_qty`` at ``order_px`` arriving at t=2; returns (fill qtys, rejects, its state)."""
    events = _tape(rows)
    grid = BookGrid(tick_usd=0.5, base_tick=180, n=40)
    book = OrderBook(grid)
    orders = np.zeros(4, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = NEVER
    place(orders, 7, 1, round(order_px / 0.5), order_qty, 0, 2, 1e-3)
    fills = np.zeros(64, dtype=fill_dtype)
    status, k, _clock, nfill, rej = run_until(
        book.bid_qty, book.ask_qty, book.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
        0, 10**18, 0, orders, np.full(grid.n, -1), np.full(grid.n, -1), fills, 0,
        0.5, 1e-3, queue_kind, 2.0, True, CROSS_OFF, True,
    )  # fmt: skip
    assert status == 1 and k == events.size
    assert (fills["oid"][:nfill] == 7).all()
    return fills["qty"][:nfill].tolist(), rej, orders["state"][0]


BASE = [
    (1, DEPTH_EVENT, "buy", 100.0, 10.0),
    (1, DEPTH_EVENT, "sell", 100.5, 5.0),
    (3, DEPTH_EVENT, "buy", 100.0, 14.0),  # 4 join behind us
    (4, DEPTH_EVENT, "buy", 100.0, 10.0),  # 4 cancel: behind us (risk-averse) or partly ahead (probabilistic)
]
TRADE_8 = [(5, TRADE_EVENT, "sell", 100.0, 8.0)]


def test_risk_averse_queue_only_trades_at_our_price_advance_us():
    fills, rej, _ = _run(BASE + TRADE_8, QUEUE_RISK_AVERSE)
    assert fills == [] and rej == 0  # 10 ahead, 8 traded
    fills, _, _ = _run([*BASE, *TRADE_8, (6, TRADE_EVENT, "sell", 100.0, 2.5)], QUEUE_RISK_AVERSE)
    assert fills == pytest.approx([0.5])


def test_probabilistic_queues_split_cancels_by_f_of_back_and_front():
    # power n=2: P(back) = 4²/(4²+10²); front = 10 - (1 - P)·4 = 6.552 -> an 8 trade fills all of our 1
    fills, _, state = _run(BASE + TRADE_8, QUEUE_POWER)
    assert fills == pytest.approx([1.0]) and state == DONE
    # log: P(back) = ln5/(ln5+ln11); front = 10 - (1 - P)·4 = 7.6065 -> 0.3935 past it: 394 lots of 0.001
    p = np.log(5) / (np.log(5) + np.log(11))
    fills, _, state = _run(BASE + TRADE_8, QUEUE_LOG)
    assert fills == pytest.approx([round(8 - (10 - (1 - p) * 4), 3)], abs=1e-12) and state == LIVE


def test_fills_are_whole_lots_and_a_fraction_of_a_lot_stays_owed():
    # 10 ahead; trades of 10.0004 then 0.0003 at our price: 0.4 then 0.7 thousandths past the queue
    first = [*BASE[:1], (5, TRADE_EVENT, "sell", 100.0, 10.0004)]
    fills, _, state = _run(first, QUEUE_RISK_AVERSE)
    assert fills == [] and state == LIVE  # less than half a lot: nothing filled, nothing recorded as dust
    fills, _, _ = _run([*first, (6, TRADE_EVENT, "sell", 100.0, 0.0003)], QUEUE_RISK_AVERSE)
    assert fills == pytest.approx([0.001], abs=1e-15)  # the owed 0.0004 plus 0.0003 rounds to one lot
    # an order is done once its remainder rounds to zero lots: no 1e-17 leftovers filled later
    fills, _, state = _run([*BASE[:1], (5, TRADE_EVENT, "sell", 100.0, 10.9996)], QUEUE_RISK_AVERSE)
    assert fills == pytest.approx([1.0]) and state == DONE


def test_trade_through_fills_everything_and_post_only_rejects_a_crossing_order():
    fills, _, _ = _run([*BASE, (5, TRADE_EVENT, "sell", 99.5, 0.1)], QUEUE_RISK_AVERSE)
    assert fills == [1.0]
    fills, rej, _ = _run(BASE, QUEUE_RISK_AVERSE, order_px=100.5)
    assert fills == [] and rej == 1
    # buy trades never fill a bid
    fills, _, _ = _run([*BASE, (5, TRADE_EVENT, "buy", 100.0, 50.0)], QUEUE_RISK_AVERSE)
    assert fills == []


def _filled_per_order(events, app, queue):
    """Total coins filled per (side, price) and the replayed PnL, for the flat allocator under ``queue``."""
    r = replay(events, make_allocator("flat"), app=app, config=ReplayConfig(queue=queue))
    per: dict[tuple[int, float], float] = {}
    for s, p, q in zip(r.fills.side, r.fills.price_usd, r.fills.qty_coins, strict=True):
        per[(int(s), float(p))] = round(per.get((int(s), float(p)), 0.0) + float(q), 9)
    return per, r.pnl["pnl_usd"], len(r.fills)


def test_queue_models_change_pnl_near_the_touch_but_not_for_the_default_ladder(futures):
    """What the README states: with the default ladder (2 to 200 bps, rebuilt every second) every order of ours
    that trades at all is emptied by the same burst of prints, so the queue model decides only which print fills
    it; near the touch, trades stop at our prices and the models fill different amounts."""
    events = futures[0]
    default = {q: _filled_per_order(events, AppConfig(), q) for q in ("risk_averse", "power", "log")}
    base, pnl, _ = default["risk_averse"]
    for q in ("power", "log"):
        assert default[q][0] == base and default[q][1] == pytest.approx(pnl, abs=1e-6)
    assert default["log"][2] > default["risk_averse"][2]  # more prints, the same orders and quantities

    grid = GridConfig(n_levels=10, min_depth_bps=0.02, max_depth_bps=5.0)
    touch = AppConfig(ladder=LadderConfig(grid=grid))
    near = {q: _filled_per_order(events, touch, q) for q in ("risk_averse", "log")}
    assert near["log"][0] != near["risk_averse"][0]
    assert abs(near["log"][1] - near["risk_averse"][1]) > 0.01  # USD


def test_markouts_use_only_fills_whose_horizon_ends_inside_the_data(results):
    events, res = results
    path = market_path(events)
    t_end = int(path.ts_ns[-1])
    for r in res.values():
        f = r.fills
        for h, got in r.markouts_bps.items():
            full = f.ts_ns + int(h * 1e9) <= t_end
            if not full.any():
                assert np.isnan(got)
                continue
            later = path.mid_at(f.ts_ns[full] + int(h * 1e9))
            s, p, q = f.side[full], f.price_usd[full], f.qty_coins[full]
            assert got == pytest.approx(float(np.sum(s * (later - p) / p * 1e4 * q) / np.sum(q)))
