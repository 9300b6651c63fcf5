"""The replay's compiled strategy loop (backtest/_loop.py) against the Python step: the same replay, fill for fill.

The Python step (:meth:`_Run.step`: the venue, the refresh core in Python, the ladder on the fast path) is the
reference; the fills, the equity curve, the shapes and every metric but the timings must be identical, on a real
recording cut into several chunks, with and without feed latency, with a warm-up, a tight position limit (the fit
defers additions and releases them two round trips later), a response latency of its own and a drawdown stop.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from data._files import FUTURES, SPOT, real
from hyper_make.allocate import make_allocator
from hyper_make.backtest import ReplayConfig, run_backtest
from hyper_make.config import AppConfig
from hyper_make.data import load_events
from hyper_make.strategy.quoter import Quoter

TIMINGS = ("wall_s", "strategy_s", "events_per_s")


@pytest.fixture(scope="module")
def futures() -> np.ndarray:
    events, _ = load_events(real(FUTURES))
    return events


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    for f in ("ts_ns", "side", "price_usd", "qty_coins", "level", "mid_usd"):
        np.testing.assert_array_equal(getattr(a.fills, f), getattr(b.fills, f), err_msg=f)
    for u, v in zip(a.equity, b.equity, strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.shapes, b.shapes)
    ma, mb = a.metrics(), b.metrics()
    assert ma.keys() == mb.keys()
    for k, x in ma.items():
        if k not in TIMINGS:
            y = mb[k]
            assert x == y or (math.isnan(x) and math.isnan(y)), (k, x, y)


def _both(source, app: AppConfig, cfg: ReplayConfig, chunk_rows: int, monkeypatch, which=("impact", "flat")) -> dict:  # type: ignore[no-untyped-def]
    names = {name: make_allocator(name) for name in which}
    slow, _ = run_backtest(source, names, app=app, config=cfg, chunk_rows=chunk_rows, compiled=False)

    def no_python(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("the compiled run called the Python refresh core")

    with monkeypatch.context() as m:
        m.setattr(Quoter, "drive", no_python)
        fast, _ = run_backtest(source, names, app=app, config=cfg, chunk_rows=chunk_rows)
    for name in names:
        _same(fast[name], slow[name])
    return fast


def test_compiled_loop_gives_the_python_replay(futures: np.ndarray, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two allocators in lockstep over chunks of 20,000 rows, 100 ms refreshes after a 2 s warm-up."""
    cfg = ReplayConfig(refresh_s=0.1, latency_ms=50.0, warmup_s=2.0)
    res = _both(futures, AppConfig(), cfg, 20_000, monkeypatch)
    assert futures.size > 3 * 20_000
    assert len(res["impact"].fills) > 0 and len(res["flat"].fills) > 0
    assert res["impact"].diagnostics["quoted_refreshes"] > 1000


def test_compiled_loop_with_feed_latency_deferrals_and_a_stop(futures: np.ndarray, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Feed latency and a response latency of its own; a position limit of 0.01 coins (additions deferred and
    released), then a drawdown stop of 0.5 USD (observe only after it)."""
    cfg = ReplayConfig(refresh_s=0.1, latency_ms=20.0, response_latency_ms=30.0, warmup_s=1.0, latency="feed")
    app = AppConfig()
    tight = replace(app, snapshot=replace(app.snapshot, max_position_coins=0.01))
    res = _both(futures, tight, cfg, 15_000, monkeypatch, which=("impact",))
    assert len(res["impact"].fills) > 0
    stop = replace(app, quoter=replace(app.quoter, max_drawdown_usd=0.5))
    res = _both(futures[:150_000], stop, cfg, 25_000, monkeypatch, which=("flat",))
    assert res["flat"].diagnostics["risk_stops"] == 1.0
    assert res["flat"].diagnostics["quoted_refreshes"] < res["flat"].diagnostics["refreshes"] - 100


def test_compiled_loop_with_the_other_fill_rules(futures: np.ndarray, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Fills by the crossed quantity only, the power queue, our orders first at equal timestamps, no best-price rows,
    an order latency that does not fit the release in a refresh (the deferrals wait for the next one)."""
    cfg = ReplayConfig(refresh_s=0.1, latency_ms=60.0, warmup_s=0.5, cross="crossed_qty", queue="power",
                       queue_n=3.0, equal_ts="order_first", use_bbo=False)  # fmt: skip
    app = AppConfig()
    tight = replace(app, snapshot=replace(app.snapshot, max_position_coins=0.01))
    res = _both(futures[:200_000], tight, cfg, 40_000, monkeypatch, which=("flat",))
    assert len(res["flat"].fills) > 0


def test_hand_over_after_the_book_warm_up_of_a_recording_without_snapshot(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The spot recording has no book snapshot: the Python step observes until the reader knows where the book's
    warm-up ends, then the compiled loop takes over; the replay is the Python one."""
    path = real(SPOT)
    cfg = ReplayConfig(refresh_s=0.2, latency_ms=50.0, warmup_s=0.0)
    names = {"flat": make_allocator("flat")}
    slow, _ = run_backtest(path, names, config=cfg, chunk_rows=30_000, compiled=False)
    calls = []
    orig = Quoter.drive

    def counted(self, *a, **k):  # type: ignore[no-untyped-def]
        calls.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(Quoter, "drive", counted)
    fast, _ = run_backtest(path, names, config=cfg, chunk_rows=30_000)
    _same(fast["flat"], slow["flat"])
    assert not calls  # nothing was quoted before the hand-over
    assert fast["flat"].diagnostics["quoted_refreshes"] > 0


def test_what_steps_in_python_says_why(futures: np.ndarray) -> None:
    from hyper_make.backtest._feed import EventFeed, array_chunks
    from hyper_make.backtest.replay import _book_warmup_gate, _Run

    feed = EventFeed(array_chunks(futures[:5_000], 5_000))
    gate = _book_warmup_gate(None, 1.0, feed.t0)
    cfg = ReplayConfig()
    app = AppConfig()
    assert _Run(feed, make_allocator("impact"), app, cfg, warmup_s=gate).loop_reason == ""
    assert _Run(feed, make_allocator("impact"), app, cfg, warmup_s=gate, compiled=False).loop_reason == "compiled=False"
    off = replace(app, quoter=replace(app.quoter, fast_path=False))
    assert "fast path is off" in _Run(feed, make_allocator("impact"), off, cfg, warmup_s=gate).loop_reason
    assert "learns" in _Run(feed, make_allocator("learned"), app, cfg, warmup_s=gate).loop_reason
