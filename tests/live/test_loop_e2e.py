"""Done-when of the quoting loop: against the local exchange, through the SDK, a few simulated minutes with each
allocator: no rejected order, the position and its worst case within the limit at every moment (from the
exchange's own state), every order cancelled at exit, and our PnL and position equal to the exchange's.

On virtual time (``live_harness.VirtualClock``), except one run on the wall clock with the server's own market
thread: the loop, HTTP and WebSocket in real time, as ``hyper-make run`` meets them."""

from __future__ import annotations

import pytest

from hyper_make.allocate import ALLOCATORS
from live_harness import MAX_POSITION, check_run, run_loop


@pytest.mark.parametrize("allocator", sorted(ALLOCATORS))
def test_loop_each_allocator_reconciles_within_limits(allocator):
    run = run_loop(allocator)  # 12 s of loop time (virtual), 2 minutes of market time
    s = run.summary
    check_run(run)
    assert s["stop_reason"] == "duration"
    assert s["orders_sent"] > 0 and s["fills"] > 0  # the market did trade with us
    assert s["dead_man_sets"] >= 1
    if getattr(ALLOCATORS[allocator], "learns", False):  # the live loop feeds its learner like the other venues
        assert run.learner is not None and run.learner.n_updates > 0
        assert run.learner.state["exposure_coin_s"].sum() > 0


def test_one_sided_flow_takes_the_position_to_the_limit_and_no_further():
    run = run_loop("impact", sellers_only=True, duration_s=8.0)
    check_run(run)
    s = run.summary
    assert s["position_coins"] > 0.9 * MAX_POSITION  # every fill was a buy of ours: long, up to the limit
    assert run.max_exposure <= MAX_POSITION + 1e-12


def test_funding_payments_are_reconciled():
    # a long position pays 1 bp of its value every 5 market seconds (0.5 s of wall time): the exchange's balance
    # moves with no fill of ours, and the summary must still agree with it to the cent
    run = run_loop(
        "impact",
        sellers_only=True,
        duration_s=6.0,
        exchange_kwargs={"funding_rate_frac": 1e-4, "funding_interval_s": 5.0},
    )
    check_run(run)
    assert run.summary["funding_usd"] < 0  # long, positive rate: paid


def test_loop_in_real_time_reconciles_within_limits():
    # the one end-to-end run on the wall clock: 4 s, 40 s of market time
    run = run_loop("impact", realtime=True, duration_s=4.0)
    s = run.summary
    check_run(run)
    assert s["stop_reason"] == "duration"
    assert s["orders_sent"] > 0 and s["fills"] > 0
    assert s["dead_man_sets"] >= 1


def test_funding_over_more_than_one_page_of_user_funding_is_reconciled():
    # a payment every 0.5 market s (one a market step): about 120 userFunding rows, answered 25 at a time (as
    # Hyperliquid answers 500 at most): the loop reads on from each page's last time
    run = run_loop(
        "impact",
        sellers_only=True,
        duration_s=6.0,
        exchange_kwargs={"funding_rate_frac": 1e-5, "funding_interval_s": 0.5, "time_range_max_rows": 25},
    )
    check_run(run)
    assert len(run.exchange.account(run.address).funding) > 4 * 25
    assert run.summary["funding_usd"] < 0
