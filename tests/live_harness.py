"""The quoting loop against the local exchange on a free loopback port, through the SDK, with the exchange's
own records kept beside it: a watcher recomputes, after every request and every market step, the account's
worst case (position plus every resting order of a side, as if all filled) from the exchange's state.

Runs are on virtual time by default (:class:`VirtualClock`): the loop, its client and the exchange share one
clock that moves only while the loop sleeps, and each of its steps moves the market and delivers that step's
book to the loop's WebSocket before the next. A 12 s run then takes the time its work takes (about a second),
not 12 s, and the same run does the same thing on a loaded machine (the clock waits for the work, not the
reverse). HTTP and the WebSocket are the real ones, through the SDK.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from hyper_make.allocate import make_allocator
from hyper_make.connectors import HyperliquidClient, RateLimiter
from hyper_make.defaults import default_snapshot
from hyper_make.exchange_local import Faults, LocalExchange, LocalServer, MarketTrade, RandomWalkMarket
from hyper_make.instrument import InstrumentSpec
from hyper_make.live import LoopConfig, LoopStatus, QuotingLoop

BTC = InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0)
MAX_POSITION = 0.02  # coins (about 1,800 USD): small, so that the market takes the position to its limit


class WatchedExchange(LocalExchange):
    """The local exchange, recording each account's worst-case exposure and |position| from its own state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_exposure: dict[str, float] = {}
        self.max_abs_position: dict[str, float] = {}
        self.exposure_path: list[tuple[str, float]] = []

    def _watch(self) -> None:
        for a in self.accounts.values():
            q = a.szi.get("BTC", 0.0)
            bids = sum(o.sz for o in self.orders.values() if o.user == a.address and o.is_buy)
            asks = sum(o.sz for o in self.orders.values() if o.user == a.address and not o.is_buy)
            worst = max(q + bids, -q + asks)
            self.max_exposure[a.address] = max(self.max_exposure.get(a.address, 0.0), worst)
            self.max_abs_position[a.address] = max(self.max_abs_position.get(a.address, 0.0), abs(q))

    def exchange(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            out = super().exchange(payload)
            self._watch()
            return out

    def advance(self, dt_s: float):  # type: ignore[no-untyped-def]
        with self.lock:
            out = super().advance(dt_s)
            self._watch()
            return out


class VirtualClock:
    """Seconds that pass only while the loop sleeps; each ``tick_s`` of them steps the exchange's market.

    ``clock()`` and ``sleep(dt)`` go to the loop, ``ms()`` (UNIX ms, from the real time at creation) to its client
    and to the exchange, so nonces, request expiry, the dead-man switch and the WebSocket drop fault all run on
    it. A sleep advances in steps of at most ``tick_s``: the clock moves a step, the market ``speed`` times as far
    (``LocalExchange.advance``), then the step's book is awaited on the loop's WebSocket (up to ``deliver_s`` real
    seconds; not awaited while it is down), so the loop receives every book at the time it was made. ``on_tick``
    (optional) is called after every step with the clock's time (seconds). With no exchange attached the market
    stands still and only the book each (re)subscription sends is awaited.
    """

    def __init__(self, *, speed: float = 1.0, tick_s: float = 0.05, deliver_s: float = 0.5) -> None:
        self.t = 0.0
        self.speed, self.tick_s, self.deliver_s = speed, tick_s, deliver_s
        self.epoch_ms = time.time() * 1000.0
        self.exchange: LocalExchange | None = None
        self.loop: QuotingLoop | None = None
        self.on_tick: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.t

    def ms(self) -> int:
        return int(self.epoch_ms + 1000.0 * self.t)

    def attach(self, exchange: LocalExchange | None, loop: QuotingLoop) -> None:
        """The market to step (``None``: it stands still) and the loop whose WebSocket receives its books."""
        self.exchange, self.loop = exchange, loop

    def sleep(self, dt_s: float) -> None:
        end = self.t + max(dt_s, 0.0)
        while self.t < end:  # the last step lands on `end` exactly: a sleep always moves the clock by dt_s
            t = min(self.t + self.tick_s, end)
            step, self.t = t - self.t, t
            if self.exchange is not None:
                seen = self.loop.counters.books_received if self.loop is not None else 0
                self.exchange.advance(step * self.speed)
                self._await_book(seen)
            elif self.loop is not None:
                # the market stands still: a book comes only on (re)subscription, one per connection
                self._await_book(self.loop.counters.reconnects)
            if self.on_tick is not None:
                self.on_tick(self.t)

    def _await_book(self, seen: int) -> None:
        loop = self.loop
        if loop is None:
            return
        deadline = time.monotonic() + self.deliver_s
        while loop.ws_alive and loop.counters.books_received <= seen and time.monotonic() < deadline:
            time.sleep(0.0002)


class SellersMarket(RandomWalkMarket):
    """Every taker trade is a sale (buys mirrored through the mid): our bids fill, the position only grows."""

    def step(self, dt_s: float) -> list[MarketTrade]:
        out = []
        for t in super().step(dt_s):
            px = t.px if t.side == "A" else round(2 * self.mid(t.coin) - t.px)
            out.append(MarketTrade(t.coin, "A", float(px), t.sz))
        return out


@dataclass
class LoopRun:
    """A finished run: the loop's summary, the exchange, our address, and the exchange's records."""

    summary: dict[str, Any]
    exchange: WatchedExchange
    address: str
    fills: list[dict[str, Any]]
    open_orders: list[Any]
    learner: Any = None  # the quoter's payout learner at the end (an allocator that learns)

    @property
    def max_exposure(self) -> float:
        return self.exchange.max_exposure.get(self.address, 0.0)

    @property
    def max_abs_position(self) -> float:
        return self.exchange.max_abs_position.get(self.address, 0.0)


def run_loop(
    allocator: str = "impact",
    *,
    faults: Faults | None = None,
    duration_s: float = 12.0,
    speed: float = 10.0,
    seed: int = 7,
    max_position: float = MAX_POSITION,
    http_timeout_s: float = 5.0,
    sellers_only: bool = False,
    exchange_kwargs: dict[str, Any] | None = None,
    realtime: bool = False,
    kill_exchange_at_s: float | None = None,
    market_kwargs: dict[str, Any] | None = None,
    on_status: Callable[[LoopStatus], None] | None = None,
    **loop_kwargs: Any,
) -> LoopRun:
    """Run the loop for ``duration_s`` loop seconds against a market running ``speed`` times faster.

    On a :class:`VirtualClock` (default) or, with ``realtime``, on the wall clock with the server's market thread.
    ``kill_exchange_at_s``: the server stops answering (HTTP and WebSocket) at that loop time, as a killed process
    (virtual time only); the exchange's records stay readable for the checks.
    """
    sigma, rate, trade_usd, mid = 2e-4, 10.0, 3_000.0, 90_000.5  # per market second; USD
    walk = {"sigma_frac_per_sqrt_s": sigma, "trades_per_s": rate, "through_bps_mean": 3.33, "mean_trade_usd": trade_usd}
    market = (SellersMarket if sellers_only else RandomWalkMarket)(
        {BTC: mid}, seed=seed, **walk | (market_kwargs or {})
    )
    # the prior describes the market as the loop sees it, in wall seconds: `speed` market seconds each
    prior = dataclasses.replace(
        default_snapshot(),
        sigma_frac=sigma * math.sqrt(speed),
        daily_volume_coins=rate * speed * trade_usd / mid * 86_400.0,
        max_position_coins=max_position,
    )
    clock = None if realtime else VirtualClock(speed=speed, tick_s=0.05)
    timing: dict[str, Any] = {} if clock is None else {"clock_ms": clock.ms}
    ex = WatchedExchange([BTC], market, faults=faults, **timing, **(exchange_kwargs or {}))
    with LocalServer(ex, tick_s=0.05 if realtime else None, speed=speed) as srv:
        client = HyperliquidClient(
            Account.create(),
            base_url=srv.url,
            meta=ex.meta(),
            coin="BTC",
            timeout_s=http_timeout_s,
            limiter=RateLimiter() if clock is None else RateLimiter(clock=clock),
            **timing,
        )
        cfg = LoopConfig(
            refresh_s=0.2,
            duration_s=duration_s,
            http_timeout_s=http_timeout_s,
            seed=seed,
            **loop_kwargs,
        )
        loop_timing: dict[str, Any] = {} if clock is None else {"clock": clock, "sleep": clock.sleep}
        loop = QuotingLoop(
            client, allocator=make_allocator(allocator), prior=prior, config=cfg, on_status=on_status, **loop_timing
        )
        if clock is not None:
            clock.attach(ex, loop)
            if kill_exchange_at_s is not None:
                kill_at = kill_exchange_at_s
                clock.on_tick = lambda t: srv.close() if t >= kill_at else None
        summary = loop.run()
        addr = client.address.lower()
        with ex.lock:
            fills = list(ex.account(addr).fills)
            left = [o for o in ex.orders.values() if o.user == addr]
    return LoopRun(summary, ex, addr, fills, left, loop.quoter.learner)


def check_run(run, max_position=MAX_POSITION):
    s = run.summary
    assert s["rejected"] == 0, s["rejections"]
    assert run.open_orders == [] and s["exchange"]["open_orders"] == 0
    # the exchange's own state, watched after every request and market step
    assert run.max_abs_position <= max_position + 1e-12
    assert run.max_exposure <= max_position + 1e-12
    assert s["max_abs_position"] <= max_position + 1e-12
    # ours against the exchange's records, to the cent
    assert s["reconciled"] is True
    assert s["position_coins"] == pytest.approx(s["exchange"]["position_coins"], abs=1e-9)
    assert s["pnl"] == pytest.approx(s["exchange"]["pnl_usd"], abs=0.01)
    assert s["fills"] == len(run.fills)
