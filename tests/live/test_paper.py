"""Paper trading as a new user meets it: ``hyper-make run`` with its defaults against ``hyper-make exchange`` with
its defaults (the same market, account, limits, refresh and allocator), on virtual time: it trades within a
minute, within the limits, and reconciles."""

from __future__ import annotations

from eth_account import Account

from hyper_make.cli.exchange import START_MIDS_USD
from hyper_make.config import load_config
from hyper_make.connectors import HyperliquidClient, RateLimiter
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.instrument import PERP_SPECS, InstrumentSpec
from hyper_make.live import LoopConfig, QuotingLoop
from live_harness import VirtualClock


def run_default_paper(duration_s: float, seed: int = 0) -> tuple[dict, LocalExchange, str]:
    # `hyper-make exchange`: BTC and ETH, the default random walk, the default account; market steps of 0.2 s
    specs = [
        InstrumentSpec(coin=c, sz_decimals=PERP_SPECS[c].sz_decimals, asset_id=i) for i, c in enumerate(("BTC", "ETH"))
    ]
    clock = VirtualClock(speed=1.0, tick_s=0.2)
    ex = LocalExchange(
        specs, RandomWalkMarket({s: START_MIDS_USD[s.coin] for s in specs}, seed=seed), clock_ms=clock.ms
    )
    # `hyper-make run --base-url URL --ephemeral-key`: the default config, limits, refresh and order options
    cfg = load_config(None)
    with LocalServer(ex) as srv:
        client = HyperliquidClient(
            Account.create(), base_url=srv.url, meta=ex.meta(), coin="BTC", timeout_s=5.0,
            limiter=RateLimiter(clock=clock), clock_ms=clock.ms,
        )  # fmt: skip
        loop = QuotingLoop(
            client,
            allocator=cfg.make_allocator(None),
            prior=cfg.snapshot,
            config=LoopConfig(duration_s=duration_s),
            quoter=cfg.quoter,
            ladder=cfg.ladder,
            clock=clock,
            sleep=clock.sleep,
        )
        clock.attach(ex, loop)
        summary = loop.run()
    return summary, ex, client.address.lower()


def test_default_paper_setup_trades_within_a_minute():
    s, ex, user = run_default_paper(60.0)
    assert s["orders_sent"] > 0 and s["rejected"] == 0
    assert s["fills"] >= 3, s  # the default fill model expects about 5 a minute at the best level alone
    assert s["fills"] == len(ex.account(user).fills)
    assert s["max_abs_position"] <= s["max_position_coins"]
    assert s["reconciled"] is True and s["open_orders"] == 0 and not ex.orders
