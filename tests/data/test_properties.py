"""Hypothesis properties: the numba book against a dict oracle, the risk-averse queue's fill bound, and whole-lot
fills within the order under every fill rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.backtest._core import CROSS_OFF, NEVER, QUEUE_RISK_AVERSE, fill_dtype, order_dtype, place, run_until
from hyper_make.data.book import BookGrid, OrderBook
from hyper_make.data.events import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT, TRADE_EVENT, event_dtype

GRID = BookGrid(tick_usd=1.0, base_tick=90, n=21)  # prices 90..110

updates = st.lists(
    st.tuples(st.booleans(), st.integers(90, 110), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])), max_size=60
)


def _events(rows):
    out = np.zeros(len(rows), dtype=event_dtype)
    for i, (kind, is_buy, px, qty) in enumerate(rows):
        out[i] = (kind | (BUY_EVENT if is_buy else SELL_EVENT) | EXCH_EVENT | LOCAL_EVENT, i, i, px, qty, 0, 0, 0.0)
    return out


@settings(max_examples=150, deadline=None)
@given(updates)
def test_book_matches_a_dict_oracle(ups):
    book = OrderBook(GRID, uncross=False)
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    for is_buy, px, qty in ups:
        book.apply(_events([(DEPTH_EVENT, is_buy, float(px), qty)]))
        side = bids if is_buy else asks
        if qty > 0:
            side[px] = qty
        else:
            side.pop(px, None)
        best_bid = max(bids) if bids else None
        best_ask = min(asks) if asks else None
        assert np.isnan(book.best_bid_usd) if best_bid is None else book.best_bid_usd == best_bid
        assert np.isnan(book.best_ask_usd) if best_ask is None else book.best_ask_usd == best_ask
    px, q = book.levels("bid", 30)
    assert px.tolist() == sorted(bids, reverse=True) and q.tolist() == [bids[p] for p in sorted(bids, reverse=True)]


tape = st.lists(
    st.one_of(
        st.tuples(st.just(DEPTH_EVENT), st.just(True), st.just(100.0), st.sampled_from([0.0, 1.0, 3.0, 6.0])),
        st.tuples(st.just(TRADE_EVENT), st.booleans(), st.sampled_from([100.0, 101.0]), st.sampled_from([0.5, 2.0])),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(tape, st.sampled_from([0.0, 2.0, 5.0]), st.sampled_from([0.3, 1.0, 4.0]))
def test_risk_averse_fills_never_exceed_what_traded_past_the_queue(rows, ahead, size):
    # the book holds `ahead` at 100 when our bid of `size` arrives (t = 1); later rows at t >= 2
    events = _events([(DEPTH_EVENT, True, 100.0, ahead), (DEPTH_EVENT, False, 105.0, 1.0), *rows])
    events["exch_ts"][2:] += 1
    book = OrderBook(GRID)
    orders = np.zeros(2, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = NEVER
    place(orders, 0, 1, 100, size, 0, 1, 1e-3)
    fills = np.zeros(64, dtype=fill_dtype)
    _s, _k, _c, nfill, _r = run_until(
        book.bid_qty, book.ask_qty, book.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
        0, 10**9, 0, orders, np.full(GRID.n, -1), np.full(GRID.n, -1), fills, 0, 1.0, 1e-3, QUEUE_RISK_AVERSE, 2.0,
        True, CROSS_OFF, True,
    )  # fmt: skip
    filled = float(fills["qty"][:nfill].sum())
    sells_at = sum(q for k, b, p, q in rows if k == TRADE_EVENT and not b and p == 100.0)
    assert filled <= size + 1e-12
    # only sells at our price fill us (no sell ever trades through 100 here), and only past the initial queue
    assert filled <= sells_at + 1e-12
    if not any(k == DEPTH_EVENT for k, *_ in rows):
        # without depth changes the queue ahead only shrinks by those trades: the fill is exact
        assert abs(filled - min(max(sells_at - ahead, 0.0), size)) < 1e-9


rich_tape = st.lists(
    st.tuples(
        st.sampled_from([DEPTH_EVENT, TRADE_EVENT]),
        st.booleans(),
        st.sampled_from([98.0, 99.0, 100.0, 101.0, 102.0]),
        st.sampled_from([0.0, 0.0013, 0.5, 2.0, 3.7]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(rich_tape, st.sampled_from([0.0017, 0.3, 2.5]), st.sampled_from([0, 1, 2]), st.booleans(), st.integers(0, 3))
def test_every_fill_is_whole_lots_within_the_order_at_a_row_time(rows, size, cross, market_first, queue):
    """Whatever the tape, crossing rule, equal-timestamp rule and queue model: each fill is a positive whole number
    of lots, they add up to at most the order (rounded to lots), and each happens at the time of a row after the
    order arrived (at t = 1; rows at t = 1, 2, ...)."""
    events = _events([(DEPTH_EVENT, True, 99.0, 1.0), (DEPTH_EVENT, False, 101.0, 1.0), *rows])
    book = OrderBook(GRID)
    orders = np.zeros(2, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = orders["done_ts"] = NEVER
    lot = 1e-3
    place(orders, 0, 1, 100, size, 0, 1, lot)  # a bid at 100, inside the first spread
    fills = np.zeros(128, dtype=fill_dtype)
    _s, _k, _c, nfill, _r = run_until(
        book.bid_qty, book.ask_qty, book.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
        0, 10**9, 0, orders, np.full(GRID.n, -1), np.full(GRID.n, -1), fills, 0, 1.0, lot, min(queue, 2), 2.0,
        True, cross, market_first,
    )  # fmt: skip
    f = fills[:nfill]
    lots = f["qty"] / lot
    assert np.all(lots >= 1) and np.allclose(lots, np.rint(lots), rtol=0, atol=1e-9)
    assert np.rint(lots).sum() <= round(size / lot)
    assert set(f["ts"].tolist()) <= set(events["exch_ts"][2:].tolist())
    assert np.all(f["ts"] >= (2 if market_first else 1))
    if cross == CROSS_OFF:  # trades only: each fill at the time of a sell at or through 100
        sells = {int(t) for t, (k, b, p, _q) in zip(events["exch_ts"][2:], rows, strict=True)
                 if k == TRADE_EVENT and not b and p <= 100.0}  # fmt: skip
        assert set(f["ts"].tolist()) <= sells
