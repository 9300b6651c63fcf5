"""Rate limits with a fake clock: token bucket, IP weight per minute, per-address request budget."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.connectors.rate_limit import (
    AddressBudget,
    RateLimiter,
    TokenBucket,
    batch_weight,
)
from hyper_make.strategy.orders import (
    Batch,
    Cancel,
    Place,
    RestingOrder,
)


class FakeClock:
    """Seconds that only move when told to."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def orders(n: int) -> Batch:
    return Batch("order", tuple(Place(f"0x{i:032x}", "bid", 1.0, 1.0, False, i) for i in range(n)))


def cancels(n: int) -> Batch:
    return Batch("cancel", tuple(Cancel(RestingOrder("bid", 1.0, 1.0, f"0x{i:032x}")) for i in range(n)))


def test_bucket_grants_its_capacity_then_refills_at_its_rate():
    clock = FakeClock()
    b = TokenBucket(10, 2.0, clock)
    assert b.try_take(10) and not b.try_take(1)
    assert b.wait_s(4) == pytest.approx(2.0)
    clock.t = 1.0
    assert b.try_take(2) and not b.try_take(0.5)
    clock.t = 100.0
    assert b.tokens == 10  # never above capacity
    assert b.wait_s(11) == math.inf


def test_bucket_ignores_a_clock_that_steps_back():
    clock = FakeClock(5.0)
    b = TokenBucket(4, 1.0, clock)
    assert b.try_take(4)
    clock.t = 1.0
    assert b.tokens == 0
    clock.t = 6.0
    assert b.tokens == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 5.0), st.integers(1, 120)), min_size=1, max_size=200),
    st.floats(0.05, 0.95),
    st.floats(0.1, 1.0),
)
def test_no_sixty_second_window_exceeds_the_allowed_ip_weight(requests, burst, share):
    clock = FakeClock()
    rl = RateLimiter(clock=clock, burst_frac=burst, ip_share_frac=share, address=AddressBudget(initial_requests=10**9))
    sent: list[tuple[float, int]] = []
    for dt, n in requests:
        clock.t += dt
        b = orders(n)
        if rl.try_send(b):
            sent.append((clock.t, batch_weight(b)))
    allowed = 1200 * share
    for t0, _ in sent:
        assert sum(w for t, w in sent if t0 <= t < t0 + 60.0) <= allowed + 1e-9


def test_a_refused_batch_charges_nothing():
    clock = FakeClock()
    rl = RateLimiter(clock=clock, ip_share_frac=1.0, burst_frac=0.25)  # burst 300, refill 15/s
    for _ in range(300):
        assert rl.try_send(orders(1))
    before = (rl.ip.tokens, rl.address.used)
    assert not rl.try_send(orders(1))
    assert (rl.ip.tokens, rl.address.used) == before
    assert rl.wait_s(orders(1)) == pytest.approx(1 / 15)
    clock.t += 1 / 15
    assert rl.try_send(orders(1))


def test_address_budget_counts_actions_and_earns_one_request_per_usd_traded():
    clock = FakeClock()
    budget = AddressBudget(initial_requests=100)
    rl = RateLimiter(clock=clock, address=budget)
    assert rl.try_send(orders(60))
    assert not rl.try_send(orders(41))  # 60 + 41 > 100: a batch of n counts n requests
    budget.record_fill(1.5)  # floor(1.5 USD) = 1 more request
    assert budget.limit == 101
    assert rl.try_send(orders(41))
    assert budget.used == 101


def test_cancels_keep_working_past_the_order_limit():
    budget = AddressBudget(initial_requests=100, used=100)
    assert budget.cancel_limit == 200  # min(100 + 100000, 2 * 100)
    rl = RateLimiter(clock=FakeClock(), address=budget)
    assert not rl.try_send(orders(5))
    assert rl.try_send(cancels(50))
    big = AddressBudget(initial_requests=200_000)
    assert big.cancel_limit == 300_000  # min(limit + 100000, 2 * limit)


def test_exhausted_address_sends_one_single_action_request_every_ten_seconds():
    clock = FakeClock()
    budget = AddressBudget(initial_requests=10, used=10)
    rl = RateLimiter(clock=clock, address=budget)
    assert not rl.try_send(orders(2))  # only one action per throttled request
    assert rl.wait_s(orders(2)) == math.inf
    assert rl.try_send(orders(1))
    clock.t += 9.9
    assert not rl.try_send(orders(1))
    assert rl.wait_s(orders(1)) == pytest.approx(0.1)
    clock.t += 0.1
    assert rl.try_send(orders(1))


def test_defaults_match_the_documented_limits():
    b = AddressBudget()
    assert (b.initial_requests, b.requests_per_usd, b.throttled_interval_s) == (10_000, 1.0, 10.0)
    rl = RateLimiter(clock=FakeClock(), ip_share_frac=1.0)
    assert rl.allowed_weight_per_minute == 1200
    assert rl.ip.capacity + rl.ip.refill_per_s * 60 == pytest.approx(1200)


def test_address_budget_adopts_the_exchanges_count_and_grows_from_it():
    budget = AddressBudget()
    budget.sync(used=9_000, cap=12_345, cum_volume_usd=2_345.6)  # userRateLimit: nRequestsUsed, nRequestsCap, cumVlm
    assert (budget.used, budget.limit, budget.left) == (9_000, 12_345, 3_345)
    budget.record_fill(10.5)  # 2,356.1 USD traded: one request per whole USDC, 11 more
    assert budget.limit == 12_356
