"""The refresh core on hand-made views: guards, the worst-case limit with deferred additions, the post-only last
look, the allocator's state carried across refreshes, and the fill statistics."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make import LadderConfig, default_snapshot, default_spec, make_allocator
from hyper_make.strategy import CloidFactory, Place, RestingOrder, apply_plan
from hyper_make.strategy.quoter import FillStats, Quoter, QuoterConfig
from hyper_make.strategy.venue import BookTop, VenueFill, VenueView

T = 1_000_000_000  # 1 s in ns


def view(t_s: float = 10.0, *, book_age_s: float = 0.0, bid: float = 90_000.0, **kw) -> VenueView:
    base = {
        "ts_ns": round(t_s * T),
        "book": BookTop(bid, bid + 1.0, round((t_s - book_age_s) * T)),
        "traded_coins": 0.0,
        "resting": (),
        "pending": (),
        "unseen": (),
        "fills": (),
        "position_coins": 0.0,
        "margin_usd": 10_000.0,
        "pnl_usd": 0.0,
        "latency_s": 0.05,
        "book_interval_s": 0.05,
    }
    return VenueView(**(base | kw))


def quoter(allocator: str = "flat", **cfg) -> Quoter:
    prior = dataclasses.replace(default_snapshot(), max_position_coins=0.5)
    return Quoter(
        spec=default_spec(), allocator=make_allocator(allocator), prior=prior, ladder=LadderConfig(),
        config=QuoterConfig(**cfg), cloids=CloidFactory(3), rng=0,
    )  # fmt: skip


def resting_after(v: VenueView, r) -> tuple[RestingOrder, ...]:
    return apply_plan(v.resting, r.plan)


def test_no_quote_without_a_fresh_book_and_everything_cancelled():
    q = quoter()
    live = q.refresh(view())
    assert live.state == "quoting" and live.plan.places
    orders = resting_after(view(), live)
    for v, why in (
        (view(11.0, resting=orders, halted="disconnected"), "disconnected"),
        (view(11.0, resting=orders, book=None), "waiting for the book"),
        (view(11.0, resting=orders, book_age_s=6.0), "stale book"),
    ):
        r = q.refresh(v)
        assert r.state == why and r.ladder is None and not r.plan.places
        assert len(r.plan.cancels) == len(orders)


def test_a_drawdown_past_the_limit_and_a_position_past_it_are_risk_stops():
    q = quoter(max_drawdown_usd=100.0)
    assert q.refresh(view(pnl_usd=50.0)).stop == ""
    assert q.refresh(view(11.0, pnl_usd=-49.0)).stop == ""  # 99 USD below the peak
    r = q.refresh(view(12.0, pnl_usd=-51.0))
    assert r.stop == "max_drawdown" and r.ladder is None
    assert quoter().refresh(view(position_coins=0.6)).stop == "position_limit"
    assert quoter(max_drawdown_usd=None).refresh(view(pnl_usd=-1e9)).stop == ""  # no drawdown stop


@settings(max_examples=60, deadline=None)
@given(st.floats(-0.45, 0.45), st.floats(0.0, 0.3), st.floats(0.0, 20.0))
def test_the_worst_case_never_passes_the_limit_and_deferred_orders_fit_when_released(q0, pending, move_usd):
    """Whatever is resting, pending or moved: nothing is added to a side unless the position plus every resting,
    pending, replaced and new order of that side (as if all filled) stays within the limit, after the refresh and
    after the release (a side already over it, by what is pending, only cancels)."""
    qt = quoter("flat")
    first = qt.refresh(view(position_coins=q0))
    orders = resting_after(view(position_coins=q0), first)
    pend = (RestingOrder("bid", 89_900.0, pending, f"0x{9:032x}"),) if pending > 0 else ()
    v = view(11.0, bid=90_000.0 + move_usd, position_coins=q0, resting=orders, pending=pend)
    r = qt.refresh(v)

    def worst(resting, pending_orders, plan):
        out = {"bid": q0, "ask": -q0}
        for o in (*resting, *pending_orders):
            out[o.side] += o.size
        for a in (*plan.places, *plan.modifies):
            out[a.side] += a.size
        return out

    def check(resting, pending_orders, plan):
        w = worst(resting, pending_orders, plan)
        for side in ("bid", "ask"):
            if any(a.side == side for a in (*plan.places, *plan.modifies)):
                assert w[side] <= 0.5 + 1e-9, (side, w)

    check(v.resting, v.pending, r.plan)
    if r.again_after_s is not None:
        assert r.guard_demoted and r.again_after_s == pytest.approx(0.1)
        # the cancels took effect: what the first step left rests; the release places what fits now
        after = apply_plan(v.resting, r.plan)
        v2 = view(11.1, bid=90_000.0 + move_usd, position_coins=q0, resting=after, pending=pend)
        rel = qt.release(v2)
        check(v2.resting, v2.pending, rel)
        assert not rel.cancels and not rel.modifies


def test_new_prices_the_book_moved_through_are_dropped():
    q = quoter("flat")
    r = q.refresh(view())
    bids = [a.price for a in r.plan.places if a.side == "bid"]
    # the book falls through our best bid: on arrival it would cross the new best ask, so the last look drops it
    moved = view(10.0, bid=max(bids) - 5.0)
    crossing = q.crossing(r.plan.places, moved)
    assert crossing
    assert all(
        a.side == "bid" and a.price >= moved.book.best_ask_usd - 1.0 for a in r.plan.places if a.cloid in crossing
    )
    plan, n = q.last_look(r.plan, moved)
    assert n == len(crossing) and not {a.cloid for a in plan.places} & set(crossing)


def test_the_allocators_state_is_carried_from_one_refresh_to_the_next_and_nothing_else_moves_it():
    q = quoter("entropy")
    q.refresh(view())
    s1 = q.state
    q.snapshot(view(11.0))  # a what-if look changes nothing
    assert q.state is s1
    q.refresh(view(11.0))
    assert q.state is not s1 and q.state.bid.target_nats < s1.bid.target_nats


def test_fill_markouts_are_per_level_net_of_fees_at_the_first_refresh_past_each_horizon():
    fs = FillStats((1.0, 5.0))
    fs.placed((Place("0x" + "0" * 31 + "1", "bid", 99.0, 2.0, False, 3),))
    fill = VenueFill("f1", "0x" + "0" * 31 + "1", "bid", 99.0, 2.0, 0.02, 10 * T)
    fs.observe((fill,), 10 * T, 100.0)
    fs.observe((), round(10.5 * T), 101.0)  # before the first horizon: nothing settled
    fs.observe((), 11 * T, 101.5)  # 1 s: +2.5 per coin, less the fee of 0.01 per coin
    fs.observe((), 16 * T, 98.0)  # 5 s: -1.0 per coin, less 0.01
    (row,) = fs.table(100.0)
    assert (row["side"], row["level"], row["fills"], row["size_coins"]) == ("bid", 3, 1, 2.0)
    assert row["markout_1s_bps"] == pytest.approx((2.5 - 0.01) / 100.0 * 1e4)
    assert row["markout_5s_bps"] == pytest.approx((-1.0 - 0.01) / 100.0 * 1e4)


def test_fill_stats_forget_the_levels_of_orders_long_gone_but_keep_late_fills_within_the_grace():
    fs = FillStats((1.0,), grace_s=10.0)
    ids = [f"0x{i:032x}" for i in range(3)]
    fs.placed(Place(c, "bid", 99.0, 1.0, False, k) for k, c in enumerate(ids))
    fs.prune(0, lambda: ids)  # the first call starts the clock
    fs.prune(10 * T, lambda: ids[:2])  # ids[2] stopped resting: still known for a late fill
    fs.observe((VenueFill("f1", ids[2], "bid", 99.0, 1.0, 0.0, 11 * T),), 11 * T, 100.0)
    fs.prune(20 * T, lambda: ids[:1])  # ids[2] gone for a grace period: forgotten; ids[1] just stopped
    fs.prune(30 * T, lambda: ids[:1])
    fs.observe((VenueFill("f2", ids[1], "bid", 99.0, 1.0, 0.0, 31 * T),), 31 * T, 100.0)
    levels = {r["level"]: r["fills"] for r in fs.table(100.0)}
    assert levels == {2: 1, -1: 1}
    assert fs.orders_tracked == 1  # bounded: only what rests is remembered
