"""The loop's ledger (fills idempotent and order-free, exposure unchanged by fills, reconcile ordering) and its
online estimator (σ and volume converge to the truth, start on the prior)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyper_make.defaults import default_snapshot
from hyper_make.errors import DataError
from hyper_make.live import EstimatorConfig, Ledger, MarketEstimator, fill_from_json
from hyper_make.strategy import RestingOrder


def row(tid, oid, side, px, sz, fee=0.01, cloid=None):
    r = {"coin": "BTC", "tid": tid, "oid": oid, "side": side, "px": str(px), "sz": str(sz), "fee": str(fee)}
    r["time"] = 1_700_000_000_000 + tid
    return r | ({"cloid": cloid} if cloid else {})


fills_st = st.lists(
    st.tuples(
        st.sampled_from("BA"),
        st.floats(80_000, 100_000, allow_nan=False),
        st.integers(1, 500).map(lambda n: n * 1e-5),
    ),
    min_size=1,
    max_size=30,
)


@given(fills_st, st.randoms(use_true_random=False), st.lists(st.integers(0, 29), max_size=20))
def test_fills_are_idempotent_and_order_free(fills, rnd, dups):
    rows = [row(i + 1, 100 + i, s, px, sz) for i, (s, px, sz) in enumerate(fills)]
    a = Ledger("BTC")
    for r in rows:
        assert a.apply_fill(fill_from_json(r))
    b = Ledger("BTC")
    stream = rows + [rows[i % len(rows)] for i in dups]
    rnd.shuffle(stream)
    for r in stream:
        b.apply_fill(fill_from_json(r))
    assert b.n_fills == a.n_fills == len(rows)
    assert b.n_duplicate_fills == len(dups)
    assert b.position_coins == pytest.approx(a.position_coins, abs=1e-9)
    assert b.cash_usd == pytest.approx(a.cash_usd, rel=1e-12, abs=1e-6)
    assert b.fees_usd == pytest.approx(a.fees_usd)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 100).map(lambda n: n * 1e-4)), max_size=15))
def test_fills_leave_exposure_unchanged(partials):
    led = Ledger("BTC", position0_coins=0.003, mark0_usd=90_000.0)
    for i, (side, px) in enumerate([("bid", 89_990.0), ("bid", 89_980.0), ("ask", 90_010.0), ("ask", 90_020.0)]):
        led.add_resting(RestingOrder(side, px, 0.01, f"0x{i:032x}", 10 + i))
    before = {s: led.exposure(s) for s in ("bid", "ask")}
    tid = 1
    for k, sz in partials:
        o = led.resting.get(f"0x{k:032x}")
        if o is None:
            continue
        take = min(sz, o.size)
        led.apply_fill(fill_from_json(row(tid, o.oid, "B" if o.side == "bid" else "A", o.price, take)))
        tid += 1
        # the side that filled keeps its worst case; the other side's only shrinks
        side, other = o.side, "ask" if o.side == "bid" else "bid"
        assert led.exposure(side) == pytest.approx(before[side], abs=1e-9)
        assert led.exposure(other) <= before[other] + 1e-9
        before[other] = led.exposure(other)


def test_pending_orders_count_until_reconciled_and_reconcile_does_not_double_count():
    led = Ledger("BTC")
    o = RestingOrder("bid", 89_990.0, 0.01, "0x" + "1" * 32, 7)
    led.add_resting(o)
    led.add_pending(o)  # cancelled: a fill may still be on its way
    assert led.exposure("bid") == pytest.approx(0.01)
    # the exchange: the order filled 0.004 before the cancel; the open-orders read no longer has it
    n = led.reconcile([], [row(1, 7, "B", 89_990.0, 0.004)])
    assert n == 1 and not led.pending and not led.resting
    assert led.position_coins == pytest.approx(0.004)
    # a partially filled order still open: its snapshot size already nets the fill (not netted twice)
    o2 = RestingOrder("ask", 90_010.0, 0.006, "0x" + "2" * 32, 8)
    led.reconcile([o2], [row(2, 8, "A", 90_010.0, 0.004)])
    assert led.resting[o2.key].size == pytest.approx(0.006)
    assert led.position_coins == pytest.approx(0.0)


def test_pnl_is_cash_fees_and_mark():
    led = Ledger("BTC")
    led.apply_fill(fill_from_json(row(1, 1, "B", 100.0, 2.0, fee=0.5)))
    led.apply_fill(fill_from_json(row(2, 2, "A", 110.0, 1.0, fee=0.5)))
    assert led.pnl_usd(105.0) == pytest.approx(-200.0 + 110.0 - 1.0 + 1.0 * 105.0)


def test_bad_fill_message_is_a_data_error():
    with pytest.raises(DataError, match="missing field 'tid'"):
        fill_from_json({"oid": 1, "side": "B", "px": "1", "sz": "1"})
    with pytest.raises(DataError, match="fill message"):
        fill_from_json(row(1, 1, "B", "abc", 1.0))
    for field in ("fee", "time"):  # not read is not 0: no free fill, no fill at the epoch
        bad = row(1, 1, "B", 100.0, 1.0)
        del bad[field]
        with pytest.raises(DataError, match=f"missing field '{field}'"):
            fill_from_json(bad)


def test_estimator_starts_on_the_prior_and_converges():
    prior = default_snapshot()
    est = MarketEstimator(prior, EstimatorConfig(halflife_s=600.0, prior_weight_s=10.0))
    s0 = prior.sigma_frac / math.sqrt(prior.sigma_horizon_s)
    assert est.sigma_frac_per_sqrt_s(0.0) == pytest.approx(s0)
    assert est.daily_volume_coins(0.0) == pytest.approx(prior.daily_volume_coins)
    rng = np.random.default_rng(1)
    sigma, dt, mid = 5e-4, 0.25, 90_000.0
    true_rate = 0.0
    for i in range(8_000):  # 2,000 s
        mid *= math.exp(sigma * math.sqrt(dt) * rng.standard_normal())
        t = i * dt
        est.on_book(t, mid - 0.5, mid + 0.5)
        if i % 4 == 0:
            est.on_trade(t, 0.02)
            true_rate += 0.02
    t_end = 8_000 * dt
    assert est.sigma_frac_per_sqrt_s(t_end) == pytest.approx(sigma, rel=0.1)
    assert est.daily_volume_coins(t_end) == pytest.approx(0.02 / 1.0 * 86_400, rel=0.1)
    snap = est.snapshot(t_end, inventory_coins=0.01, max_position_coins=0.1, ts_ns=1)
    assert snap.sigma_horizon_s == 1.0 and snap.inventory_coins == 0.01
    assert snap.best_bid_usd < snap.mid_usd < snap.best_ask_usd
    assert snap.regime.vol_ratio == pytest.approx(sigma / s0, rel=0.1)


def test_estimator_ignores_crossed_books_and_needs_one():
    est = MarketEstimator(default_snapshot())
    est.on_book(0.0, 101.0, 100.0)
    with pytest.raises(RuntimeError, match="no book yet"):
        est.snapshot(0.0, inventory_coins=0.0, max_position_coins=1.0, ts_ns=0)
