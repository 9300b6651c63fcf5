"""Order-book rebuild: the real diffs never cross the book; unit semantics of deletes, BBO rows and uncrossing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.data.book import BookGrid, OrderBook, infer_tick, market_path
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    event_dtype,
)


@pytest.mark.parametrize("name", ["futures", "spot", "hyperliquid"])
def test_rebuilt_book_is_never_crossed_after_a_valid_update(name, request):
    events, report = request.getfixturevalue(name)
    assert report.gaps == []
    book = OrderBook(BookGrid.around(events), use_bbo=False, uncross=False)
    book.apply(events)
    # without uncrossing, a crossed book after any whole diff message would reveal a wrong synchronisation
    assert book.crossed_messages == 0
    assert book.best_bid_usd < book.best_ask_usd


def test_ticks_of_the_recordings(futures, spot, hyperliquid):
    for (events, _), tick in ((futures, 0.1), (spot, 0.01), (hyperliquid, 1.0)):
        assert infer_tick(events["px"]) == pytest.approx(tick)


def test_market_path_is_monotone_with_a_positive_spread(futures):
    events, _ = futures
    path = market_path(events)
    assert np.all(np.diff(path.ts_ns) >= 0)
    assert np.all(path.ask_usd > path.bid_usd)
    assert path.trade_ts_ns.size == 21_313
    assert 330 < path.duration_s < 350


def _rows(*rows):
    out = np.zeros(len(rows), dtype=event_dtype)
    for i, (kind, side, px, qty) in enumerate(rows):
        out[i]["ev"] = kind | (BUY_EVENT if side == "bid" else SELL_EVENT) | EXCH_EVENT | LOCAL_EVENT
        out[i]["px"], out[i]["qty"] = px, qty
        out[i]["local_ts"] = out[i]["exch_ts"] = i
    return out


GRID = BookGrid(tick_usd=0.5, base_tick=180, n=40)  # prices 90.0 .. 109.5


def test_delete_best_moves_to_the_next_level():
    book = OrderBook(GRID)
    book.apply(_rows((DEPTH_EVENT, "bid", 99.0, 1), (DEPTH_EVENT, "bid", 98.0, 2), (DEPTH_EVENT, "ask", 101.0, 3)))
    assert (book.best_bid_usd, book.best_ask_usd) == (99.0, 101.0)
    book.apply(_rows((DEPTH_EVENT, "bid", 99.0, 0)))
    assert book.best_bid_usd == 98.0
    px, qty = book.levels("bid", 5)
    assert px.tolist() == [98.0] and qty.tolist() == [2.0]


def test_bbo_row_removes_stale_better_levels_and_uncross_removes_crossed_asks():
    book = OrderBook(GRID)
    book.apply(_rows((DEPTH_EVENT, "bid", 99.0, 1), (DEPTH_EVENT, "bid", 98.0, 2), (DEPTH_EVENT, "ask", 101.0, 3)))
    book.apply(_rows((DEPTH_BBO_EVENT, "bid", 98.5, 4)))
    assert book.best_bid_usd == 98.5 and book.bid_qty[GRID.n - 1 :].sum() == 0
    assert book.levels("bid", 5)[0].tolist() == [98.5, 98.0]
    book.apply(_rows((DEPTH_EVENT, "bid", 101.5, 1)))  # a newer bid through the ask: the ask is gone
    assert book.best_bid_usd == 101.5 and np.isnan(book.best_ask_usd)


def test_clear_and_out_of_band():
    book = OrderBook(GRID)
    book.apply(_rows((DEPTH_EVENT, "bid", 99.0, 1), (DEPTH_EVENT, "ask", 500.0, 1), (DEPTH_CLEAR_EVENT, "bid", 0, 0)))
    assert np.isnan(book.best_bid_usd) and book.out_of_band == 1


def _numpy_tick(px: np.ndarray) -> float:
    """The tick as NumPy computes it over every positive price (the gcd of all of them on a 1e-8 grid)."""
    p = px[px > 0][:200_000]
    ints = np.round(p * 1e8).astype(np.int64)
    g = int(np.gcd.reduce(ints))
    return max(g, 1) / 1e8 if np.any(ints != ints[0]) else 10.0 ** math.floor(math.log10(p[0]) - 4)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 5, 1500, 3000]), st.sampled_from([0.01, 0.5, 1e-5, 3.0]))
def test_the_inferred_tick_is_the_gcd_of_every_price(seed, n, tick):
    # the gcd of the first 1,024 prices, checked against the rest: an odd price late in the data still counts
    rng = np.random.default_rng(seed)
    px = np.round(rng.integers(1, 10_000, n) * tick, 8)
    if n > 1100 and rng.random() < 0.5:
        px[rng.integers(1100, n)] += tick / 2  # a price on a finer grid after the first 1,024
    px[rng.random(n) < 0.1] = 0.0  # rows without a price
    if not (px > 0).any():
        px[0] = tick
    assert infer_tick(px) == _numpy_tick(px)
