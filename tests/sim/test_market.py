"""The simulated market: determinism, accounting identity, queue priority, latency, pairing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.sim import market as mk
from hyper_make.sim.config import MarketConfig, SimConfig, with_overrides
from hyper_make.sim.market import Market
from hyper_make.sim.strategy import run_path

SHORT = with_overrides(SimConfig(), horizon_s=30.0)


def quiet_market(**kw: float) -> Market:
    """A market whose fair value barely moves and whose flow we drive by hand."""
    cfg = MarketConfig(
        sigma_bps_per_sqrt_s=1e-6, jump_rate_per_s=0.0, informed_frac=0.0, lean_bps_per_s=0.0,
        step_ahead_frac=0.0, **kw,
    )  # fmt: skip
    m = Market(cfg, 0)
    m.s[mk.S_F] = 90_000.3  # away from a tick boundary, so others' best ticks do not flicker
    return m


def market_order(m: Market, direction: int, qty: float) -> None:
    buf = np.empty(mk.MAX_ORDERS, dtype=np.int64)
    mk._market_order(
        m.s, m.p, m.deficit, m.tlast, m.mk, m.o_side, m.o_tick, m.o_size, m.o_ahead, m.o_init, buf, direction, qty,
        m.t_s, False, m.vol_hist, m.tape, m.fl,
    )  # fmt: skip


def test_same_seed_same_path_and_different_seed_differs():
    a = run_path(SHORT, "entropy", 7)
    b = run_path(SHORT, "entropy", 7)
    c = run_path(SHORT, "entropy", 8)
    assert a.pnl_usd == b.pnl_usd and a.decomposition == b.decomposition and a.events == b.events
    assert (a.pnl_usd, a.events) != (c.pnl_usd, c.events)


@pytest.mark.parametrize("allocator", ["entropy", "flat"])
def test_accounting_identity_cash_plus_inventory_at_fair_value(allocator):
    m = Market(MarketConfig(lean_bps_per_s=0.5, informed_frac=0.5), 3)
    f0 = int(m.s[mk.S_F])
    for k in range(1, 6):
        m.place(1, f0 - 2 * k, 0.05)
        m.place(-1, f0 + 2 * k, 0.05)
    for t in (5.0, 20.0, 60.0):
        m.run_until(t)
        assert m.equity_usd == pytest.approx(sum(m.decomposition().values()), abs=1e-6)
    m.send_taker(0.2)
    m.run_until(61.0)
    m.liquidate()
    assert m.inventory_coins == 0.0
    assert m.s[mk.S_CASH] == pytest.approx(sum(m.decomposition().values()), abs=1e-6)
    assert m.s[mk.S_FILLS] > 0  # the test exercised fills


def test_path_pnl_equals_its_decomposition():
    r = run_path(SHORT, "flat", 1)
    assert r.pnl_usd == pytest.approx(sum(r.decomposition.values()), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(size=st.floats(0.01, 0.5), q1=st.floats(0.0, 0.3), q2=st.floats(0.0, 0.6))
def test_no_fill_ahead_of_the_queue(size, q1, q2):
    m = quiet_market(order_latency_s=0.0, react_threshold_frac=100.0)
    _, oba = mk.others_best(m.p, float(m.s[mk.S_F]))
    j = m.place(-1, oba, size)
    m.run_until(1e-3)
    ahead = float(m.o_ahead[j])
    assert m.o_init[j] == 1 and ahead == pytest.approx(m.cfg.depth_per_tick_coins, rel=1e-3)
    market_order(m, +1, q1)
    filled1 = size - (m.o_size[j] if m.o_side[j] else 0.0)
    assert filled1 == pytest.approx(max(0.0, min(size, q1 - ahead)), abs=1e-9)
    market_order(m, +1, q2)
    filled2 = size - (m.o_size[j] if m.o_side[j] else 0.0)
    assert filled2 == pytest.approx(max(0.0, min(size, q1 + q2 - ahead)), abs=1e-6)


def test_step_ahead_puts_others_in_front_of_large_orders():
    big = Market(
        MarketConfig(sigma_bps_per_sqrt_s=1e-6, jump_rate_per_s=0.0, order_latency_s=0.0, step_ahead_frac=1.0), 0
    )
    _, oba = mk.others_best(big.p, float(big.s[mk.S_F]))
    j_small = big.place(-1, oba + 5, 0.001)
    j_big = big.place(-1, oba + 10, 1.0)
    big.run_until(1e-3)
    usual = big.cfg.depth_per_tick_coins
    assert big.o_ahead[j_small] < usual * 2
    assert big.o_ahead[j_big] > big.o_ahead[j_small] + 0.5  # others stepped ahead of the large order


def test_order_and_cancel_latency_respected():
    m = quiet_market(order_latency_s=0.5, cancel_latency_s=0.3, quote_update_rate_per_s=200.0, mo_rate_per_s=1e-9)
    _, oba = mk.others_best(m.p, float(m.s[mk.S_F]))
    j = m.place(-1, oba, 0.1)
    market_order(m, +1, 10.0)  # sweeps the book, but our order is still in flight
    assert m.o_size[j] == 0.1 and m.o_side[j] == -1 and m.s[mk.S_FILLS] == 0
    m.run_until(0.45)
    assert m.o_init[j] == 0
    m.run_until(0.6)
    assert m.o_init[j] == 1
    m.cancel(j)
    m.run_until(0.8)
    assert m.o_side[j] == -1  # still resting during the cancel latency
    market_order(m, +1, 10.0)
    assert m.s[mk.S_FILLS] == 1  # and can be filled then
    j2 = m.place(-1, oba + 3, 0.1)
    m.run_until(1.2)
    m.cancel(j2)
    m.run_until(1.6)
    assert m.o_side[j2] == 0


def test_paired_paths_see_the_same_market_flow():
    a = run_path(SHORT, "entropy", 11)
    b = run_path(SHORT, "flat", 11)
    assert a.events == b.events
    assert a.stats["market_orders"] == b.stats["market_orders"]


def test_bad_market_parameters_name_the_field():
    with pytest.raises(Exception, match=r"'sim.market.informed_frac' must be in \[0, 1\]"):
        MarketConfig(informed_frac=1.5)
    with pytest.raises(Exception, match=r"'sim.strategy.horizon_s' must be in \(0"):
        with_overrides(SimConfig(), horizon_s=0.0)


def test_the_market_path_does_not_depend_on_how_often_the_strategy_calls():
    """Paired paths: a strategy that refreshes again right after a refresh (the limit guard's release) sees the
    same market flow and the same fair value as one that does not."""
    once, often = Market(MarketConfig(), 5), Market(MarketConfig(), 5)
    once.run_until(30.0)
    for t in (0.05, 0.3, 1.0, 1.1, 7.25, 7.3, 19.999, 30.0):
        often.run_until(t)
    for k in (mk.S_EVENTS, mk.S_MOS, mk.S_INFORMED, mk.S_MO_VOL):
        assert once.s[k] == often.s[k]
    assert once.s[mk.S_F] == pytest.approx(often.s[mk.S_F], rel=0, abs=1e-9)
