"""The replay read chunk by chunk: split points anywhere give the fills of the unsplit run (hypothesis, on
synthetic tapes with every fill rule and latency option), the band follows a price that walks out of it, the
CSVs are written as the replay goes, and an interrupted run keeps what it had."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data._files import FUTURES, real
from hyper_make.allocate import make_allocator
from hyper_make.backtest import ReplayConfig, ReplayInterrupted, replay, replay_fixed_grid, run_backtest
from hyper_make.backtest._core import CROSS_ALL, CROSS_OFF, CROSS_QTY, QUEUE_POWER, QUEUE_RISK_AVERSE
from hyper_make.backtest._feed import EventFeed, PathRecorder, array_chunks, clock_shift_ns, enter
from hyper_make.backtest.venue import ReplayVenue
from hyper_make.data.book import BookGrid, MarketPath, OrderBook, PathBuilder
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    KIND_MASK,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
)
from hyper_make.errors import DataError
from hyper_make.strategy.orders import Cancel, Place, assemble_plan

TICK = 0.5
GRID = BookGrid(tick_usd=TICK, base_tick=160, n=80)  # 80 .. 119.5 USD
LOT = 1e-3
MS = 1_000_000


@st.composite
def tapes(draw: st.DrawFn) -> np.ndarray:
    """A random market around 100 USD: depth rows near the touch, best-price rows, trades at and through the
    touch, timestamps with ties, receive times 0-30 ms after the exchange's."""
    n = draw(st.integers(40, 160))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = np.zeros(n + 2, dtype=event_dtype)
    both = EXCH_EVENT | LOCAL_EVENT
    out[0] = (DEPTH_EVENT | BUY_EVENT | both, 0, 0, 100.0, 5.0, 0, 0, 0.0)
    out[1] = (DEPTH_EVENT | SELL_EVENT | both, 0, 0, 100.5, 5.0, 0, 0, 0.0)
    mid = 200  # ticks, the fair value the rows wander around
    t = 0
    for i in range(2, n + 2):
        t += int(rng.choice([0, 0, 1, 2, 5, 20])) * MS
        mid += int(rng.integers(-1, 2)) if rng.random() < 0.2 else 0
        r = rng.random()
        if r < 0.55:
            buy = rng.random() < 0.5
            tick = mid - int(rng.integers(0, 4)) if buy else mid + 1 + int(rng.integers(0, 4))
            qty = float(rng.choice([0.0, 0.5, 1.0, 3.0, 6.0]))
            kind, side = DEPTH_EVENT, BUY_EVENT if buy else SELL_EVENT
        elif r < 0.65:
            buy = rng.random() < 0.5
            tick = mid if buy else mid + 1
            qty, kind, side = float(rng.choice([1.0, 4.0])), DEPTH_BBO_EVENT, BUY_EVENT if buy else SELL_EVENT
        else:
            buy = rng.random() < 0.5  # the aggressor
            tick = mid + 1 + int(rng.integers(0, 2)) if buy else mid - int(rng.integers(0, 2))
            qty = float(rng.choice([0.001, 0.3, 1.0, 2.5]))
            kind, side = TRADE_EVENT, BUY_EVENT if buy else SELL_EVENT
        out[i] = (kind | side | both, t, t + int(rng.integers(0, 30)) * MS, tick * TICK, qty, 0, 0, 0.0)
    # receive times in file order, as a recorder writes them
    out["local_ts"] = np.maximum.accumulate(out["local_ts"])
    return out


def _split(events: np.ndarray, cuts: list[int]) -> list[np.ndarray]:
    edges = [0, *sorted({c % max(events.size, 1) for c in cuts}), events.size]
    return [events[a:b] for a, b in itertools.pairwise(edges)]


def _fill_tuples(f):  # type: ignore[no-untyped-def]
    return list(zip(f.ts_ns.tolist(), f.side.tolist(), f.price_usd.tolist(), f.qty_coins.tolist(), strict=True))


@settings(max_examples=60, deadline=None)
@given(
    tapes(),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from(["all", "crossed_qty", "off"]),
    st.sampled_from(["market_first", "order_first"]),
    st.sampled_from(["constant", "feed"]),
    st.sampled_from(["risk_averse", "power", "log"]),
    st.sampled_from([1.0, 7.0, 30.0]),
    st.sampled_from([None, 0.0, 13.0]),
)
def test_the_fixed_grid_gives_the_same_fills_whatever_the_split(events, cuts, cross, equal_ts, latency, queue,
                                                                refresh_ms, resp_ms):  # fmt: skip
    cfg = ReplayConfig(refresh_s=refresh_ms / 1e3, latency_ms=3.0, response_latency_ms=resp_ms, latency=latency,
                       cross=cross, equal_ts=equal_ts, queue=queue, warmup_s=0.0)  # fmt: skip
    depths = np.array([10.0, 30.0, 60.0])
    whole, rej = replay_fixed_grid(events, depths, 0.002, config=cfg, grid=GRID, lot_coins=LOT)
    shift = clock_shift_ns([events]) if latency == "feed" else None
    feed = EventFeed(_split(events, cuts), grid=GRID, clock_shift=shift)
    split, rej_s = replay_fixed_grid(feed, depths, 0.002, config=cfg, lot_coins=LOT)
    assert _fill_tuples(split) == _fill_tuples(whole)
    assert np.array_equal(split.mid_usd, whole.mid_usd) and rej_s == rej


def _venue(source, feed_lat, *, queue=QUEUE_RISK_AVERSE, use_bbo=True, **kw):  # type: ignore[no-untyped-def]
    """The tests' venue on ``GRID``: 3 ms latency, 16 slots, a 2 bps maker fee (``kw``: ReplayVenue's options)."""
    return ReplayVenue(
        source, GRID, lot_coins=LOT, maker_fee_frac=2e-4, margin_usd=1e6, latency_ms=3.0, feed_latency=feed_lat,
        queue_kind=queue, queue_n=2.0, use_bbo=use_bbo, slots=16, **kw,
    )  # fmt: skip


def _scripted(venue: ReplayVenue, refreshes: int) -> list:
    """A strategy that keeps a bid and an ask at the touch it sees and cancels everything every third refresh;
    returns what it saw at each refresh (fills, position, orders, book, volume)."""
    seen = []
    n = 0
    for k in range(1, refreshes + 1):
        venue.advance(k * 4 * MS)
        v = venue.view()
        seen.append(([(f.ts_ns, f.side, f.price_usd, f.size_coins) for f in v.fills], v.position_coins,
                     sorted((o.side, o.price, o.size) for o in v.resting), len(v.pending),
                     None if v.book is None else (v.book.best_bid_usd, v.book.best_ask_usd), v.traded_coins,
                     venue.cash_usd))  # fmt: skip
        if v.book is None:
            continue
        if k % 3 == 0:
            venue.apply(assemble_plan((), [Cancel(o) for o in v.resting], (), [], {}, 10))
            continue
        places = []
        sides = {o.side for o in v.resting}
        for side, px in (("bid", v.book.best_bid_usd), ("ask", v.book.best_ask_usd)):
            if side not in sides:
                places.append(Place(f"c{n}", side, px, 0.7, False, 0))
                n += 1
        venue.apply(assemble_plan((), [], (), places, {}, 10))
    return seen


@settings(max_examples=40, deadline=None)
@given(
    tapes(),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from([CROSS_ALL, CROSS_QTY, CROSS_OFF]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([QUEUE_RISK_AVERSE, QUEUE_POWER]),
)
def test_the_venue_gives_the_same_fills_and_views_whatever_the_split(events, cuts, cross, market_first, feed_lat,
                                                                     queue):  # fmt: skip
    def venue(source):  # type: ignore[no-untyped-def]
        return _venue(source, feed_lat, queue=queue, response_latency_ms=5.0, cross=cross, market_first=market_first)

    refreshes = int(events["exch_ts"][-1] // (4 * MS)) + 3
    whole = _scripted(venue(events), refreshes)
    shift = clock_shift_ns([events]) if feed_lat else None
    split = _scripted(venue(EventFeed(_split(events, cuts), grid=GRID, clock_shift=shift)), refreshes)
    assert split == whole


@settings(max_examples=40, deadline=None)
@given(
    tapes(),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from([CROSS_ALL, CROSS_QTY, CROSS_OFF]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1, 3, 4096]),
)
def test_the_venues_market_path_is_the_books_whatever_the_split(events, cuts, cross, feed_lat, use_bbo, room):
    # the exchange side records the markouts' path as it replays: the path of one book over the whole data
    shift = clock_shift_ns([events]) if feed_lat else None
    feed = EventFeed(_split(events, cuts), grid=GRID, clock_shift=shift, use_bbo=use_bbo)
    venue = _venue(feed, feed_lat, use_bbo=use_bbo, cross=cross)
    venue.path = PathRecorder(room)  # a recorder that fills up mid-chunk: the kernel stops, it grows, goes on
    _scripted(venue, int(events["exch_ts"][-1] // (4 * MS)) + 3)  # our orders resting, crossed and filled
    venue.advance(1 << 62)
    assert venue.ended
    pieces = venue.take_pieces()
    ref = PathBuilder(GRID, use_bbo=use_bbo).add(events)
    for name in MarketPath.__dataclass_fields__:
        got = np.concatenate([getattr(p, name) for p in pieces])
        want = getattr(ref, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name


@settings(max_examples=60, deadline=None)
@given(tapes(), st.lists(st.integers(0, 10_000), max_size=12), st.lists(st.integers(0, 400), min_size=1, max_size=30))
def test_the_venues_traded_volume_is_the_running_sum_of_the_datas_trades(events, cuts, steps_ms):
    # the exchange side sums the trades as it walks the rows: the same floats as one cumsum over the whole data
    chunks = [c for c in _split(events, cuts) if c.size]  # the feed skips empty ones
    starts = np.cumsum([0] + [c.size for c in chunks])
    exch_trade = ((events["ev"] & np.uint64(KIND_MASK)) == TRADE_EVENT) & ((events["ev"] & np.uint64(EXCH_EVENT)) != 0)
    cum = np.cumsum(np.where(exch_trade, events["qty"], 0.0))
    venue = _venue(EventFeed(chunks, grid=GRID), False)
    t = 0
    for dt in steps_ms:
        t += dt * MS // 4
        venue.advance(t)
        row = int(starts[venue._xc.index]) + venue.k  # the next row of the data
        want = float(cum[row - 1]) if row > 0 else 0.0
        assert venue.path.traded[0] == want


def _exchange_and_local_copies(events: np.ndarray, seed: int) -> np.ndarray:
    """Some rows split into an exchange-only copy in place and a local-only copy moved to its receive time, as
    hftbacktest's event-order correction writes them (the strategy side can then finish a chunk first)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, r in enumerate(events):
        if i > 1 and rng.random() < 0.5:
            x, loc = r.copy(), r.copy()
            x["ev"] = r["ev"] & ~np.uint64(LOCAL_EVENT)
            loc["ev"] = r["ev"] & ~np.uint64(EXCH_EVENT)
            rows += [(int(r["exch_ts"]), i, 0, x), (int(r["local_ts"]), i, 1, loc)]
        else:
            rows.append((int(r["exch_ts"]), i, 0, r))
    rows.sort(key=lambda t: t[:3])
    return np.array([t[3] for t in rows], dtype=event_dtype)


@settings(max_examples=60, deadline=None)
@given(tapes(), st.integers(0, 2**32 - 1), st.lists(st.integers(0, 10_000), min_size=4, max_size=24), st.booleans())
def test_a_strategy_side_that_finishes_a_chunk_first_sees_the_unsplit_replay(events, seed, cuts, recentring):
    # exchange-only rows later than the strategy's clock hold the exchange side back in a chunk the strategy side
    # has finished: the band before the next chunk is decided ahead, on a copy of the exchange side's book
    events = _exchange_and_local_copies(events, seed)
    shift = clock_shift_ns([events])

    refreshes = int(events["exch_ts"].max() // (4 * MS)) + 3
    whole = _scripted(_venue(events, True), refreshes)
    feed = EventFeed(_split(events, cuts), grid=GRID, clock_shift=shift, recentring=recentring)
    assert _scripted(_venue(feed, True), refreshes) == whole
    cfg = ReplayConfig(refresh_s=0.004, latency_ms=3.0, latency="feed", warmup_s=0.0)
    depths = np.array([10.0, 30.0])
    grid_whole, _ = replay_fixed_grid(events, depths, 0.002, config=cfg, grid=GRID, lot_coins=LOT)
    grid_split, _ = replay_fixed_grid(EventFeed(_split(events, cuts), grid=GRID, clock_shift=shift), depths, 0.002,
                                      config=cfg, lot_coins=LOT)  # fmt: skip
    assert _fill_tuples(grid_split) == _fill_tuples(grid_whole)
    # the compiled strategy loop, chunk by chunk
    rcfg = ReplayConfig(refresh_s=0.004, latency_ms=3.0, latency="feed", warmup_s=0.0)
    a = replay(events, make_allocator("flat"), config=rcfg)
    b = replay(events, make_allocator("flat"), config=rcfg, chunk_rows=7)
    assert _fill_tuples(a.fills) == _fill_tuples(b.fills) and np.array_equal(a.equity[1], b.equity[1])


def test_the_full_replay_is_the_same_in_small_chunks(futures):
    events = futures[0][:150_000]  # 92 s
    cfg = ReplayConfig(refresh_s=0.5, warmup_s=2.0, latency="feed", cross="crossed_qty")
    a = replay(events, make_allocator("flat"), config=cfg)
    b = replay(events, make_allocator("flat"), config=cfg, chunk_rows=7_001)
    assert len(a.fills) > 0
    assert _fill_tuples(a.fills) == _fill_tuples(b.fills)
    assert a.pnl == b.pnl
    assert np.array_equal(list(a.markouts_bps.values()), list(b.markouts_bps.values()), equal_nan=True)
    assert np.array_equal(a.equity[1], b.equity[1])


def test_the_band_follows_a_price_that_walks_out_of_it():
    # the price walks from 100 to 140 USD, far out of a band of 80 .. 119.5; the re-centred books keep the touch
    both = EXCH_EVENT | LOCAL_EVENT
    rows = []
    t = 0
    for step in range(400):
        bid = 100.0 + step * 0.1
        t += MS
        rows.append((DEPTH_EVENT | BUY_EVENT | both, t, t, round(bid / TICK) * TICK, 2.0, 0, 0, 0.0))
        rows.append((DEPTH_EVENT | SELL_EVENT | both, t, t, round(bid / TICK) * TICK + TICK, 2.0, 0, 0, 0.0))
        # the old levels go away (a diff removing them), as a real book that moves would
        rows.append((DEPTH_EVENT | BUY_EVENT | both, t, t, round(bid / TICK) * TICK - 5.0, 0.0, 0, 0, 0.0))
        rows.append((DEPTH_EVENT | SELL_EVENT | both, t, t, round(bid / TICK) * TICK - 4.5, 0.0, 0, 0, 0.0))
    events = np.array(rows, dtype=event_dtype)
    wide = BookGrid(tick_usd=TICK, base_tick=100, n=400)  # 50 .. 249.5 USD: never left
    feed = EventFeed(array_chunks(events, 40), grid=GRID)
    ref = OrderBook(wide)
    book = OrderBook(GRID)
    k = 0
    while feed.get(k) is not None:
        # the book replays every row before the chunk: it decides the band (as a venue's exchange side does)
        enter(feed.band(k, book.state), book)
        ref.apply(events[k * 40 : (k + 1) * 40])
        book.apply(events[k * 40 : (k + 1) * 40])
        assert (book.best_bid_usd, book.best_ask_usd) == (ref.best_bid_usd, ref.best_ask_usd)
        k += 1
    assert feed.recentres >= 2 and book.best_bid_usd > 135.0
    # an order of ours far above the first band rests and fills by crossing
    v = ReplayVenue(events, GRID, lot_coins=LOT, maker_fee_frac=0.0, margin_usd=1e6, latency_ms=0.0,
                    feed_latency=False, queue_kind=0, queue_n=2.0, use_bbo=True, slots=4, chunk_rows=40)  # fmt: skip
    v.advance(300 * MS)
    top = v.view().book
    assert top is not None and top.best_bid_usd > 125.0
    v.apply(assemble_plan((), [], (), [Place("x", "ask", top.best_ask_usd + 1.0, 0.5, False, 0)], {}, 10))
    v.advance(400 * MS)
    assert [(f.price_usd, f.size_coins) for f in v.view().fills] == [(top.best_ask_usd + 1.0, 0.5)]


def test_the_csvs_are_written_as_the_replay_goes_and_an_interrupted_run_keeps_them(tmp_path):
    src = real(FUTURES)
    cfg = ReplayConfig(refresh_s=2.0)
    res, _ = run_backtest(src, {"flat": make_allocator("flat")}, config=cfg, out_dir=tmp_path, chunk_rows=50_000)
    whole = res["flat"]
    whole.fills.write_csv(tmp_path / "ref.csv")
    assert (tmp_path / "fills_flat.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    eq = pl.read_csv(tmp_path / "equity_flat.csv")
    assert eq.height == whole.diagnostics["refreshes"]
    assert np.array_equal(eq["equity_usd"].to_numpy(), whole.equity[1][:-1])

    calls = []

    def stop_late(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 6:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    part.mkdir()
    with pytest.raises(ReplayInterrupted) as info:
        run_backtest(src, {"flat": make_allocator("flat")}, config=cfg, out_dir=part, chunk_rows=50_000,
                     progress=stop_late)  # fmt: skip
    got = info.value.results["flat"]
    assert 0 < len(got.fills) < len(whole.fills)
    kept = pl.read_csv(part / "fills_flat.csv")
    assert kept.height == len(got.fills)  # every fill computed before Ctrl-C is on disk
    assert kept["ts_ns"].to_list() == whole.fills.ts_ns[: kept.height].tolist()


def test_no_event_is_one_clear_error():
    with pytest.raises(DataError, match=r"^no event could be read from the events given$"):
        run_backtest(np.zeros(0, dtype=event_dtype), {"flat": make_allocator("flat")})
