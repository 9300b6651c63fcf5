"""The quoting loop under the local exchange's injected faults: each is survived with no rejected order, the
position and its worst case within the limit at every moment, nothing left resting, and the books reconciled."""

from __future__ import annotations

import pytest

from hyper_make.exchange_local import Faults
from live_harness import check_run, run_loop

DAY_MS = 86_400_000


def test_exchange_error_answers_change_nothing():
    run = run_loop(faults=Faults(exchange_error_frac=0.2, seed=3), duration_s=6.0)
    check_run(run)
    assert run.summary["request_errors"] > 0


def test_http_timeouts_are_reconciled():
    # a tenth of the answers come 0.5 s late (the exchange's clock); the client gives up after 0.1 s (real): the
    # outcome is unknown until /info says, and the late request still lands (it expires 1.1 s after it was sent).
    # Its orders count as pending until it has expired (2.1 s after it was sent), then a full reconcile settles them
    run = run_loop(faults=Faults(http_delay_s=0.5, http_delay_frac=0.1, seed=9), http_timeout_s=0.1, duration_s=8.0)
    check_run(run)
    assert run.summary["timeouts"] > 0
    assert run.summary["full_reconciles"] > 2  # start, after the timeouts, end


def test_dropped_websocket_reconnects_and_reconciles():
    run = run_loop(faults=Faults(ws_drop_after_s=2.0), duration_s=8.0)
    check_run(run)
    assert run.summary["reconnects"] >= 2
    assert run.summary["fills"] > 0


def test_duplicate_and_out_of_order_fill_messages_are_idempotent():
    run = run_loop(faults=Faults(duplicate_fill_frac=0.5, reorder_fills=True, seed=5), duration_s=6.0)
    check_run(run)
    assert run.summary["fills_seen_again"] > run.summary["fills"]  # the duplicates came, and changed nothing


@pytest.mark.parametrize("skew_ms", [-3 * DAY_MS, 2 * DAY_MS])
def test_exchange_clock_skew_moves_nonces_and_dead_man_to_its_clock(skew_ms):
    # the SDK's nonces (our clock) fall outside (now - 2 days, now + 1 day) of the exchange's clock
    run = run_loop(faults=Faults(clock_skew_ms=skew_ms), duration_s=4.0)
    check_run(run)
    assert run.summary["clock_offset_ms"] == pytest.approx(skew_ms, abs=5_000)
    assert run.summary["request_errors"] == 0
    assert run.summary["dead_man_sets"] >= 1


def test_exchange_killed_mid_run_leaves_the_end_unknown_not_zero():
    # the exchange dies at 3 s with our orders resting: no read succeeds after that, so nothing read is a number
    run = run_loop(duration_s=6.0, kill_exchange_at_s=3.0)
    s = run.summary
    assert s["orders_sent"] > 0
    assert run.open_orders  # the dead exchange's own records: our orders still rest there
    assert s["open_orders"] is None and s["exchange"]["open_orders"] is None
    assert s["exchange"]["position_coins"] is None and s["exchange"]["pnl_usd"] is None
    assert s["funding_usd"] is None and s["pnl"] is None and s["pnl_fills_usd"] is not None
    assert s["reconciled"] is False and s["end_confirmed"] is False
    # the dead-man switch was not unset (it is what cancels them): set until a time after the kill
    assert s["dead_man_state"] == "set"
    assert s["dead_man_until_ms"] >= max(o.timestamp_ms for o in run.open_orders)
    assert run.exchange.accounts[run.address].cancel_at_ms == s["dead_man_until_ms"]
