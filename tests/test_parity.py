"""One strategy, three venues: the same scripted market through the simulator's venue, the replay's venue and the
local exchange (its replay market, through the SDK and the live loop) gives the same order plan at every refresh
where the venues show the strategy the same book, the same resting orders and the same position.

The script is a book whose mid walks on a 1 USD grid every 0.5 s, with no trade (so nothing fills and the
position stays flat). The σ and volume estimates are pinned to the prior (a prior weight of 10^7 s): the live loop
may see its first book a refresh later than the others (it waits for its WebSocket), and a different history
would be a different ladder. What cannot agree and is not compared: client order ids (the live loop gives each
session its own) and the venues' latencies (they set when deferred orders are released and the post-only guard's
margin, far from this ladder); a refresh whose inputs differ (book, resting or pending orders, position) is
skipped, and the test requires all but two refreshes to be compared.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from eth_account import Account

from hyper_make import default_snapshot, make_allocator
from hyper_make.backtest._core import QUEUE_RISK_AVERSE
from hyper_make.backtest.venue import ReplayVenue
from hyper_make.connectors import HyperliquidClient, RateLimiter
from hyper_make.data.book import BookGrid
from hyper_make.data.events import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, LOCAL_EVENT, SELL_EVENT, event_dtype
from hyper_make.exchange_local import LocalExchange, LocalServer
from hyper_make.exchange_local.market import ReplayMarket
from hyper_make.instrument import InstrumentSpec
from hyper_make.ladder import LadderConfig
from hyper_make.live import LoopConfig, QuotingLoop
from hyper_make.sim import market as mk
from hyper_make.sim.config import MarketConfig, SimConfig, StrategyConfig
from hyper_make.sim.market import Market
from hyper_make.sim.venue import SimVenue
from hyper_make.strategy import CloidFactory, EstimatorConfig
from hyper_make.strategy.quoter import Quoter, QuoterConfig
from live_harness import VirtualClock

BTC = InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0)
T0_NS = 1_700_000_000_000_000_000
REFRESHES = 30
MARGIN_USD = 100_000.0  # the local exchange's first-use balance: every venue backs the ladder with the same
QUOTER = QuoterConfig(estimator=EstimatorConfig(prior_weight_s=1e7))
LADDER = LadderConfig()


def script_mids(n_steps: int, seed: int = 4) -> np.ndarray:
    """The mid every 0.5 s after the first: 90,000.5 USD plus a ±1 USD walk (bid and ask at mid ∓ 0.5)."""
    steps = np.random.default_rng(seed).choice([-1.0, 0.0, 1.0], size=n_steps)
    return 90_000.5 + np.concatenate([[0.0], np.cumsum(steps[1:])])


def script_events(mids: np.ndarray) -> np.ndarray:
    """Depth rows: each half second the new best bid and ask (5 coins each), the old ones removed."""
    rows = []
    prev_bid = prev_ask = None
    for i, m in enumerate(mids):
        # between refreshes (at 0.25 s, 0.75 s, ...), so that no venue's clock rounding decides which book it sees
        t = T0_NS + i * 500_000_000 + (250_000_000 if i else 0)
        bid, ask = m - 0.5, m + 0.5
        for px, old, flag in ((bid, prev_bid, BUY_EVENT), (ask, prev_ask, SELL_EVENT)):
            if old is not None and old != px:
                rows.append((DEPTH_EVENT | flag | EXCH_EVENT | LOCAL_EVENT, t, t, old, 0.0, 0, 0, 0.0))
            rows.append((DEPTH_EVENT | flag | EXCH_EVENT | LOCAL_EVENT, t, t, px, 5.0, 0, 0, 0.0))
        prev_bid, prev_ask = bid, ask
    return np.array(rows, dtype=event_dtype)


def prior():
    return dataclasses.replace(default_snapshot(), margin_usd=MARGIN_USD, max_position_coins=0.5)


def quoter(allocator: str) -> Quoter:
    return Quoter(
        spec=BTC, allocator=make_allocator(allocator), prior=prior(), ladder=LADDER, config=QUOTER,
        cloids=CloidFactory(1), rng=0,
    )  # fmt: skip


def record(view, r):
    """What is compared at one refresh: the inputs the plan depends on, and the plan (ids left out)."""
    seen = (
        (view.book.best_bid_usd, view.book.best_ask_usd) if view.book else None,
        tuple(sorted((o.side, o.price, o.size) for o in view.resting)),
        tuple(sorted((o.side, o.price, o.size) for o in view.pending)),
        view.position_coins,
    )
    plan = (
        tuple(sorted((o.side, o.price, o.size) for o in r.plan.kept)),
        tuple(sorted((a.side, a.price, a.size) for a in (*r.plan.places, *r.plan.modifies))),
        len(r.plan.cancels),
    )
    return seen, plan


def replay_run(allocator: str, events: np.ndarray) -> list:
    venue = ReplayVenue(
        events, BookGrid.around(events, tick_usd=1.0), lot_coins=BTC.lot_size, maker_fee_frac=0.0,
        margin_usd=MARGIN_USD, latency_ms=0.0, feed_latency=False, queue_kind=QUEUE_RISK_AVERSE, queue_n=2.0,
        use_bbo=True, slots=64,
    )  # fmt: skip
    q = quoter(allocator)
    out = []
    for k in range(1, REFRESHES + 1):
        t = T0_NS + k * 1_000_000_000
        venue.advance(t)
        out.append(drive(q, venue, lambda dt, t=t: venue.advance(t + round(dt * 1e9)) == 0))
    return out


def drive(q: Quoter, venue, wait) -> tuple:
    """:meth:`Quoter.drive`, recording the view the refresh saw and its plan."""
    seen = []
    real = q.refresh

    def refresh(view):
        r = real(view)
        seen.append(record(view, r))
        return r

    q.refresh = refresh  # type: ignore[method-assign]
    q.drive(venue, wait)
    q.refresh = real  # type: ignore[method-assign]
    return seen[0]


def sim_run(allocator: str, mids: np.ndarray) -> list:
    # no outside flow, no diffusion: the book is others' quotes around a fair value the script sets
    cfg = SimConfig(
        market=MarketConfig(
            sigma_bps_per_sqrt_s=1e-9, jump_rate_per_s=0.0, mo_rate_per_s=1e-9, informed_frac=0.0,
            lean_bps_per_s=0.0, step_ahead_frac=0.0, maker_fee_bps=0.0, order_latency_s=0.0, cancel_latency_s=0.0,
        ),
        strategy=StrategyConfig(ladder=LADDER, quoter=QUOTER),
    )  # fmt: skip
    m = Market(cfg.market, 0)
    venue = SimVenue(m, margin_usd=MARGIN_USD)
    q = quoter(allocator)
    out = []
    for k in range(1, REFRESHES + 1):
        m.run_until(float(k))
        m.s[mk.S_F] = mids[2 * k - 1]  # the script's fair value now (its last row was at k - 0.25 s): F ∓ 0.5
        out.append(drive(q, venue, lambda dt, k=k: m.run_until(k + dt) >= 0))
    return out


def live_run(allocator: str, events: np.ndarray) -> list:
    clock = VirtualClock(speed=1.0, tick_s=0.05)
    ex = LocalExchange([BTC], ReplayMarket(BTC, events), clock_ms=clock.ms)
    out: list = []
    with LocalServer(ex) as srv:
        client = HyperliquidClient(
            Account.create(), base_url=srv.url, meta=ex.meta(), coin="BTC", timeout_s=5.0,
            limiter=RateLimiter(clock=clock), clock_ms=clock.ms,
        )  # fmt: skip
        loop = QuotingLoop(
            client, allocator=make_allocator(allocator), prior=prior(), quoter=QUOTER, ladder=LADDER,
            config=LoopConfig(refresh_s=1.0, duration_s=REFRESHES + 0.5), clock=clock, sleep=clock.sleep,
        )  # fmt: skip
        real = loop.quoter.refresh

        def refresh(view):
            r = real(view)
            out.append((round(view.ts_ns / 1e9), record(view, r)))
            return r

        loop.quoter.refresh = refresh  # type: ignore[method-assign]
        clock.attach(ex, loop)
        loop.run()
    # refresh at loop time t sees the market of script time t: index it like the other venues (k = 1..)
    by_t = dict(out)
    return [by_t.get(k) for k in range(1, REFRESHES + 1)]


@pytest.mark.parametrize("allocator", ["impact", "flat", "learned"])
def test_the_three_venues_plan_the_same_where_they_see_the_same(allocator):
    mids = script_mids(2 * REFRESHES + 2)
    events = script_events(mids)
    runs = {
        "replay": replay_run(allocator, events),
        "sim": sim_run(allocator, mids),
        "live": live_run(allocator, events),
    }
    compared = {pair: 0 for pair in (("replay", "sim"), ("replay", "live"))}
    for k in range(REFRESHES):
        for a, b in compared:
            ra, rb = runs[a][k], runs[b][k]
            if ra is None or rb is None or ra[0] != rb[0]:
                continue  # not the same inputs (the live loop's first refresh waits for its book)
            assert ra[1] == rb[1], (allocator, a, b, k, ra, rb)
            compared[(a, b)] += 1
    # the venues do see the same thing: the books agree everywhere, and so do the orders after the first quotes
    assert all(runs["replay"][k][0][0] == runs["sim"][k][0][0] for k in range(REFRESHES))
    assert compared[("replay", "sim")] >= REFRESHES - 2, compared
    assert compared[("replay", "live")] >= REFRESHES - 2, compared
    assert any(r[1][1] for r in runs["replay"])  # orders were placed, and moved with the book
