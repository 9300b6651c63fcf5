"""Guards of the quoting loop: a stale book stops quoting and cancels everything (the loop resubscribes and
quotes again on the fresh snapshot), the dead-man switch cancels the orders of a loop that died without cleaning
up, and the loop refuses a bad configuration by name."""

from __future__ import annotations

import dataclasses
import time

import pytest
from eth_account import Account

from hyper_make.allocate import make_allocator
from hyper_make.connectors import HyperliquidClient
from hyper_make.defaults import default_snapshot
from hyper_make.errors import InvalidParameterError
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from hyper_make.live import LoopConfig, LoopStatus, QuotingLoop
from hyper_make.strategy.quoter import QuoterConfig
from live_harness import BTC, VirtualClock, check_run, run_loop


def make_loop(srv, ex, clock: VirtualClock | None = None, quoter: QuoterConfig | None = None, **cfg):
    timing = {} if clock is None else {"clock_ms": clock.ms}
    client = HyperliquidClient(Account.create(), base_url=srv.url, meta=ex.meta(), coin="BTC", timeout_s=5.0, **timing)
    config = LoopConfig(refresh_s=0.1, **cfg)
    loop_timing = {} if clock is None else {"clock": clock, "sleep": clock.sleep}
    prior = dataclasses.replace(default_snapshot(), max_position_coins=0.05)
    loop = QuotingLoop(
        client, allocator=make_allocator("impact"), prior=prior, config=config, quoter=quoter, **loop_timing
    )
    return client, loop


def test_stale_book_cancels_everything_and_stops_quoting():
    clock = VirtualClock()
    ex = LocalExchange([BTC], RandomWalkMarket({BTC: 90_000.5}, seed=1), clock_ms=clock.ms)
    with LocalServer(ex) as srv:  # no market steps: the book is only sent on (re)subscription
        client, loop = make_loop(srv, ex, clock, quoter=QuoterConfig(stale_after_s=0.5), duration_s=4.0)
        clock.attach(None, loop)
        user = client.address.lower()
        seen: list[tuple[float, int]] = []  # (age of the loop's book in s, our orders on the exchange)

        def watch(t: float) -> None:
            last = loop.last_book_s
            with ex.lock:
                n = sum(o.user == user for o in ex.orders.values())
            if last is not None:
                seen.append((t - last, n))

        clock.on_tick = watch
        summary = loop.run()
    assert summary["orders_sent"] > 0  # quoted while the book was fresh
    assert any(n > 0 for age, n in seen if age < 0.5)
    # once the book is older than stale_after_s (plus a refresh for the cancel to land), nothing rests
    stale = [n for age, n in seen if age > 0.5 + 0.25]
    assert stale and all(n == 0 for n in stale)
    assert summary["rejected"] == 0 and summary["reconciled"] is True


def test_dead_man_switch_cancels_the_orders_of_a_loop_that_died():
    shift_ms = [0]
    ex = LocalExchange(
        [BTC], RandomWalkMarket({BTC: 90_000.5}, seed=2), clock_ms=lambda: int(time.time() * 1000) + shift_ms[0]
    )
    with LocalServer(ex) as srv:
        client, loop = make_loop(srv, ex, dead_man_s=10.0)
        loop._start()
        for _ in range(20):
            ex.advance(0.5)
            time.sleep(0.02)
            loop.step(loop.clock())
            if loop.ledger.resting:
                break
        loop._drop_ws("crashed")  # the process dies: no shutdown, orders left resting
        user = client.address.lower()
        assert any(o.user == user for o in ex.orders.values())
        assert loop.counters.dead_man_sets == 1
        shift_ms[0] = 9_000
        ex.info({"type": "meta"})
        assert any(o.user == user for o in ex.orders.values())  # not yet
        shift_ms[0] = 10_500
        ex.info({"type": "meta"})
        assert not any(o.user == user for o in ex.orders.values())


def test_refused_dead_man_switch_is_asked_again_only_once_a_period():
    # Hyperliquid refuses scheduleCancel below $1M traded: the loop quotes on, reports it, and does not spend a
    # request on it every refresh
    run = run_loop(duration_s=4.0, dead_man_s=5.0, exchange_kwargs={"schedule_cancel_min_volume_usd": 1e6})
    check_run(run)
    s = run.summary
    assert s["stop_reason"] == "duration" and s["orders_sent"] > 0
    assert s["dead_man_sets"] == 0
    assert "Cannot set scheduled cancel time until enough volume traded" in s["dead_man_refused"]
    assert s["dead_man_refusals"] == 1  # 4 s of 0.2 s refreshes, one ask per 5 s period


def test_required_dead_man_switch_refused_is_a_risk_stop():
    run = run_loop(duration_s=4.0, require_dead_man=True, exchange_kwargs={"schedule_cancel_min_volume_usd": 1e6})
    check_run(run)
    assert run.summary["stop_reason"] == "dead_man_refused"
    assert run.summary["duration_s"] < 3.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dead_man_s": 2.0}, "loop.dead_man_s"),
        ({"refresh_s": 0.0}, "loop.refresh_s"),
        ({"refresh_s": float("nan")}, "loop.refresh_s"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "loop.reconnect_max_s"),
    ],
)
def test_bad_loop_config_names_the_field(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        LoopConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_drawdown_usd": -5.0}, "quoter.max_drawdown_usd"),
        ({"stale_after_s": 0.0}, "quoter.stale_after_s"),
        ({"alo_guard_sigmas": float("nan")}, "quoter.alo_guard_sigmas"),
        ({"markout_horizons_s": ()}, "quoter.markout_horizons_s"),
    ],
)
def test_bad_quoter_config_names_the_field(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        QuoterConfig(**kwargs)


def test_ctrl_c_cancels_everything_and_returns_the_summary():
    clock = VirtualClock()
    ex = LocalExchange([BTC], RandomWalkMarket({BTC: 90_000.5}, seed=3), clock_ms=clock.ms)
    with LocalServer(ex) as srv:
        client, loop = make_loop(srv, ex, clock)
        clock.attach(ex, loop)

        def ctrl_c(t: float) -> None:  # Ctrl-C in the thread running the loop, while it waits for the refresh
            if t >= 2.0 and loop.stop_reason == "":
                raise KeyboardInterrupt

        clock.on_tick = ctrl_c
        summary = loop.run()
    assert summary["stop_reason"] == "interrupted"
    assert summary["orders_sent"] > 0
    assert not [o for o in ex.orders.values() if o.user == client.address.lower()]
    assert summary["exchange"]["open_orders"] == 0 and summary["reconciled"] is True


def test_live_view_renders_the_state():
    from rich.console import Console

    from hyper_make.live import LoopStatus
    from hyper_make.live.view import render
    from hyper_make.strategy import RestingOrder

    status = LoopStatus(
        t_s=12.0,
        state="quoting",
        mid_usd=90_000.5,
        sigma_bps_per_sqrt_s=1.25,
        position_coins=0.004,
        pnl_usd=-3.5,
        fills=7,
        orders_sent=40,
        rejected=0,
        resting=(RestingOrder("ask", 90_010.0, 0.002, "0x" + "1" * 32), RestingOrder("bid", 89_990.0, 0.003, oid=5)),
        stopped={"bid": "stale book"},
        note="",
        requests_used=9_100,
        requests_cap=10_000,
        requests_exhaustion_s=195.0,
        warning="request budget: 900 of 10,000 left, spent in ~3 min at this pace",
    )
    console = Console(record=True, width=120)
    console.print(render(status, "BTC", 0.02, log=["warning: websocket: Connection to remote host was lost."]))
    text = console.export_text()
    for part in (
        "BTC quoting",
        "mid 90,000.5 USD",
        "position +0.004 / 0.02 coins",
        "PnL -3.50 USD",
        "89,990",
        "stale book",
        "requests 9,100 / 10,000 (out in ~3 min)",
        "request budget: 900 of 10,000 left",
        "warning: websocket: Connection to remote host was lost.",
    ):
        assert part in text, text


def test_request_budget_warns_then_stops_before_the_exchange_refuses():
    # no trades, so nothing earns requests: 700 to spend (Hyperliquid: 10,000 + 1 per USDC traded)
    seen: list[LoopStatus] = []
    run = run_loop(
        duration_s=60.0,
        market_kwargs={"trades_per_s": 0.0},
        exchange_kwargs={"address_initial_requests": 700},
        min_requests_left=200,
        on_status=seen.append,
    )
    check_run(run)  # every order cancelled (cancels have the higher cap) and reconciled
    s = run.summary
    assert s["stop_reason"] == "request_budget" and s["duration_s"] < 60.0
    assert s["request_errors"] == 0 and s["rate_limited"] == 0  # the exchange never refused a request
    assert s["requests_cap"] == 700 and 0 <= s["requests_left"] < 200
    assert s["requests_used"] == run.exchange.account(run.address).n_requests  # our count is the exchange's
    # the projection and its warning came before the stop, while quoting
    warned = [st for st in seen if st.warning.startswith("request budget:") and "spent in" in st.warning]
    assert warned and warned[0].requests_used < 700 - 200
    assert all(st.requests_exhaustion_s is not None for st in warned)
