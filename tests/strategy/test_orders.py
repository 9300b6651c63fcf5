"""Order manager: fewest actions, requote threshold, reduce-only flags, position guard, cloids, batching."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hyperliquid.utils.types import Cloid
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make.allocate import make_allocator
from hyper_make.connectors.rate_limit import address_requests, batch_weight, exchange_weight, plan_weight
from hyper_make.errors import InvalidParameterError
from hyper_make.ladder import build_ladder
from hyper_make.projection import Order
from hyper_make.strategy.orders import (
    Batch,
    Cancel,
    CloidFactory,
    Modify,
    OrderManagerConfig,
    Place,
    RestingOrder,
    apply_plan,
    crossing_cloids,
    plan_orders,
    reduce_only_flags,
)

#: exact diff, reduce-only marking on (the feature under test; off by default)
EXACT = OrderManagerConfig(requote_price_bps=0.0, requote_size_frac=0.0, reduce_only=True)


def bid(price: float, size: float, level: int = 0) -> Order:
    return Order("bid", price, size, 1.0, level)


def ask(price: float, size: float, level: int = 0) -> Order:
    return Order("ask", price, size, 1.0, level)


def rest(side: str, price: float, size: float, n: int, reduce_only: bool = False) -> RestingOrder:
    return RestingOrder(side, price, size, f"0x{n:032x}", 1000 + n, reduce_only)  # type: ignore[arg-type]


def plan(desired, resting, *, q: float = 0.0, max_pos: float = 100.0, config=EXACT, seed: int = 1):
    return plan_orders(
        desired, resting, inventory_coins=q, max_position_coins=max_pos, cloids=CloidFactory(seed), config=config
    )


def as_set(orders) -> Counter:
    return Counter((o.side, o.price, o.size) for o in orders)


# ---- minimality ------------------------------------------------------------------------------------


def test_empty_book_places_every_order_post_only_and_nothing_else():
    desired = [bid(100, 1), bid(99, 2), ask(101, 1)]
    p = plan(desired, [])
    assert (len(p.places), len(p.modifies), len(p.cancels), len(p.kept)) == (3, 0, 0, 0)
    assert as_set(p.final_orders()) == as_set(desired)


def test_unchanged_orders_are_kept_with_zero_actions():
    desired = [bid(100, 1), bid(99, 2), ask(101, 1)]
    resting = [rest("bid", 100, 1, 1), rest("bid", 99, 2, 2), rest("ask", 101, 1, 3)]
    p = plan(desired, resting)
    assert p.n_actions == 0 and p.batches == ()
    assert set(p.kept) == set(resting)


def test_a_moved_order_is_one_modify_not_a_cancel_and_a_new():
    p = plan([bid(100, 1), bid(98, 2)], [rest("bid", 100, 1, 1), rest("bid", 99, 2, 2)])
    assert (len(p.modifies), len(p.cancels), len(p.places)) == (1, 0, 0)
    m = p.modifies[0]
    assert m.target.cloid == f"0x{2:032x}" and (m.price, m.size) == (98, 2)
    assert m.cloid != m.target.cloid  # the replacement gets a fresh id


def test_surplus_resting_orders_are_cancelled_and_missing_ones_placed():
    p = plan([bid(100, 1)], [rest("bid", 100, 1, 1), rest("bid", 95, 1, 2), rest("bid", 90, 1, 3)])
    assert (len(p.kept), len(p.cancels), len(p.modifies), len(p.places)) == (1, 2, 0, 0)
    p = plan([ask(101, 1), ask(102, 1), ask(103, 1)], [rest("ask", 101, 1, 1)])
    assert (len(p.kept), len(p.places)) == (1, 2)


def test_requote_threshold_keeps_small_moves_and_replaces_larger_ones():
    cfg = OrderManagerConfig(requote_price_bps=2.0, requote_size_frac=0.1, reduce_only=True)
    # 1 bp and 5 % size: kept
    p = plan([bid(10_000, 1.0)], [rest("bid", 9_999, 1.05, 1)], config=cfg)
    assert p.n_actions == 0
    # 3 bps: modified
    p = plan([bid(10_000, 1.0)], [rest("bid", 9_997, 1.0, 1)], config=cfg)
    assert len(p.modifies) == 1
    # 20 % size: modified
    p = plan([bid(10_000, 1.0)], [rest("bid", 10_000, 1.2, 1)], config=cfg)
    assert len(p.modifies) == 1


def test_exact_matches_are_preferred_over_threshold_matches():
    cfg = OrderManagerConfig(requote_price_bps=5.0, requote_size_frac=0.5, reduce_only=True)
    # the resting 10_000 order could serve either desired price; it must serve its exact twin
    p = plan([bid(10_000, 1), bid(9_999, 1)], [rest("bid", 10_000, 1, 1), rest("bid", 9_999, 1, 2)], config=cfg)
    assert p.n_actions == 0
    assert sorted(o.price for o in p.kept) == [9_999, 10_000]


def exact(r: RestingOrder, d: Order) -> bool:
    return r.price == d.price and r.size == d.size


def test_a_keep_near_the_threshold_still_beats_a_modify():
    cfg = OrderManagerConfig(requote_price_bps=1.0, requote_size_frac=0.1, reduce_only=True)
    # 0.9 bps and 9 % away from the 100 bid: keepable, though a modify to 99 would be the smaller change "cost"
    p = plan([bid(100, 1), bid(99, 1)], [rest("bid", 100.009, 1.09, 1)], config=cfg)
    assert (len(p.kept), len(p.places), len(p.modifies)) == (1, 1, 0)


def max_keeps_brute_force(desired, resting, flags_by_side, match=exact) -> int:
    """Largest number of (resting, desired) pairs that ``match`` with equal flags, trying every injection (oracle)."""
    best = 0
    for side in ("bid", "ask"):
        d = [o for o in desired if o.side == side]
        r = [o for o in resting if o.side == side]
        flags = flags_by_side[side]
        side_best = 0
        k = min(len(r), len(d))
        for perm in itertools.permutations(range(max(len(r), len(d))), k):
            # an injection of the smaller side into the larger one
            pairs = zip(perm, range(k), strict=True) if len(r) >= len(d) else zip(range(k), perm, strict=True)
            side_best = max(
                side_best,
                sum(
                    match(r[i], d[j]) and r[i].reduce_only == flags[j] and not (flags[j] and r[i].size > d[j].size)
                    for i, j in pairs
                ),
            )
        best += side_best
    return best


prices = st.sampled_from([97.0, 98.0, 99.0, 100.0])
sizes = st.sampled_from([1.0, 2.0, 3.0])


@st.composite
def books(draw):
    def side_orders(side, k):
        px = draw(st.lists(prices, min_size=0, max_size=k, unique=True))
        return [Order(side, p if side == "bid" else p + 10, draw(sizes), 1.0, i) for i, p in enumerate(px)]

    desired = side_orders("bid", 4) + side_orders("ask", 4)
    resting = []
    for i, side in enumerate(draw(st.lists(st.sampled_from(["bid", "ask"]), max_size=7))):
        p = draw(prices) + (10 if side == "ask" else 0)
        resting.append(RestingOrder(side, p, draw(sizes), f"0x{i:032x}", None, draw(st.booleans())))
    q = draw(st.sampled_from([-4.0, -1.0, 0.0, 1.0, 4.0]))
    return desired, resting, q


@settings(max_examples=150, deadline=None)
@given(books())
def test_applying_the_plan_yields_exactly_the_desired_set_with_the_fewest_actions(book):
    desired, resting, q = book
    p = plan(desired, resting, q=q, max_pos=100.0)
    after = apply_plan(resting, p)
    assert as_set(after) == as_set(desired)
    # every order of the final set has the reduce-only flag the position implies
    for side in ("bid", "ask"):
        mine = sorted((o for o in after if o.side == side), key=lambda o: -o.price if side == "bid" else o.price)
        assert [o.reduce_only for o in mine] == reduce_only_flags(side, [o.size for o in mine], q)
    # fewest actions: max(n, m) - k per side, k the brute-force maximum number of keeps
    desired_sorted = sorted(desired, key=lambda o: (o.side, -o.price if o.side == "bid" else o.price))
    flags = {s: reduce_only_flags(s, [o.size for o in desired_sorted if o.side == s], q) for s in ("bid", "ask")}
    k = max_keeps_brute_force(desired_sorted, resting, flags)
    lower = sum(max(sum(o.side == s for o in desired), sum(o.side == s for o in resting)) for s in ("bid", "ask")) - k
    assert p.n_actions == lower
    assert len(p.kept) == k


@settings(max_examples=100, deadline=None)
@given(books(), st.floats(0.0, 150.0), st.floats(0.0, 0.6))
def test_with_a_threshold_every_final_order_is_within_it_of_a_distinct_desired_one(book, thr_bps, thr_frac):
    desired, resting, q = book
    cfg = OrderManagerConfig(requote_price_bps=thr_bps, requote_size_frac=thr_frac, reduce_only=True)
    p = plan(desired, resting, q=q, config=cfg)
    after = apply_plan(resting, p)
    assert len(after) == len(desired)
    assert p.n_actions <= plan(desired, resting, q=q).n_actions  # a threshold never costs actions

    def within(r: RestingOrder, d: Order) -> bool:
        return abs(d.price - r.price) / d.price * 1e4 <= thr_bps + 1e-9 and abs(d.size - r.size) / d.size <= thr_frac

    desired_sorted = sorted(desired, key=lambda o: (o.side, -o.price if o.side == "bid" else o.price))
    flags = {s: reduce_only_flags(s, [o.size for o in desired_sorted if o.side == s], q) for s in ("bid", "ask")}
    k = max_keeps_brute_force(desired_sorted, resting, flags, within)
    n_m = sum(max(sum(o.side == s for o in desired), sum(o.side == s for o in resting)) for s in ("bid", "ask"))
    assert len(p.kept) == k and p.n_actions == n_m - k
    kept_keys = {o.key for o in p.kept}
    for o in after:
        if o.key in kept_keys:
            assert any(
                d.side == o.side
                and abs(d.price - o.price) / d.price * 1e4 <= thr_bps + 1e-9
                and abs(d.size - o.size) / d.size <= thr_frac + 1e-9
                for d in desired
            )


# ---- reduce-only and the position guard ------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "sizes", "q", "expected"),
    [
        ("ask", [1, 1, 1], 2.0, [True, True, False]),  # long 2: the two best asks only reduce
        ("ask", [1, 2, 1], 2.0, [True, False, False]),  # the straddling order may flip the position
        ("bid", [1, 1], 2.0, [False, False]),  # bids add when long
        ("bid", [0.5, 0.5, 1], -1.0, [True, True, False]),  # short 1: bids reduce
        ("ask", [1], 0.0, [False]),  # flat: nothing is reduce-only
    ],
)
def test_reduce_only_flags_count_from_the_best_price(side, sizes, q, expected):
    assert reduce_only_flags(side, sizes, q) == expected


def test_reduce_only_orders_in_the_plan_when_long():
    p = plan([ask(102, 1), ask(101, 1), bid(99, 1)], [], q=1.5)
    flags = {(a.side, a.price): a.reduce_only for a in p.places}
    assert flags == {("ask", 101): True, ("ask", 102): False, ("bid", 99): False}


def test_a_flag_change_is_a_modify():
    # the position went from flat to long: the resting best ask must become reduce-only
    p = plan([ask(101, 1)], [rest("ask", 101, 1, 1, reduce_only=False)], q=1.0)
    assert len(p.modifies) == 1 and p.modifies[0].reduce_only


def test_stale_ladder_beyond_the_position_limit_stops_the_side():
    # the ladder was sized for a flat book; the position is now 9 of 10 coins long
    desired = [bid(100, 1), bid(99, 1), ask(101, 1)]
    resting = [rest("bid", 100, 1, 1), rest("bid", 98, 1, 2), rest("ask", 101, 1, 3)]
    p = plan(desired, resting, q=9.0, max_pos=10.0)
    assert "bid" in p.stopped and "position limit" in p.stopped["bid"]
    assert {c.target.cloid for c in p.cancels} == {f"0x{1:032x}", f"0x{2:032x}"}
    assert not [a for a in p.places + p.modifies if a.side == "bid"]  # type: ignore[operator]
    assert sum(o.size for o in p.final_orders() if o.side == "bid") == 0


def test_kept_orders_larger_than_their_target_are_resized_when_the_side_would_breach():
    cfg = OrderManagerConfig(requote_price_bps=1.0, requote_size_frac=0.2, reduce_only=True)
    resting = [rest("bid", 100, 1.1, 1), rest("bid", 99, 1.1, 2)]
    # limit 2.1 coins on bids; desired 1 + 1 fits, keeping both 1.1 orders would rest 2.2: one re-size suffices
    p = plan([bid(100, 1), bid(99, 1)], resting, max_pos=2.1, config=cfg)
    assert sum(o.size for o in p.final_orders() if o.side == "bid") <= 2.1 + 1e-12
    assert len(p.modifies) == 1 and len(p.kept) == 1
    # limit 2 coins: both must be re-sized
    p = plan([bid(100, 1), bid(99, 1)], resting, max_pos=2.0, config=cfg)
    assert len(p.modifies) == 2 and sum(o.size for o in p.final_orders()) == 2.0


@settings(max_examples=100, deadline=None)
@given(books(), st.floats(0.5, 12.0), st.floats(0.0, 0.3))
def test_no_plan_lets_the_position_exceed_the_limit_if_every_resting_order_filled(book, max_pos, thr):
    desired, resting, q = book
    q = max(min(q, max_pos), -max_pos)
    p = plan(desired, resting, q=q, max_pos=max_pos, config=OrderManagerConfig(requote_size_frac=thr, reduce_only=True))
    after = p.final_orders()
    assert q + sum(o.size for o in after if o.side == "bid") <= max_pos + 1e-9
    assert q - sum(o.size for o in after if o.side == "ask") >= -max_pos - 1e-9


def test_real_ladder_round_trip(snapshot, spec):
    ladder = build_ladder(snapshot, spec, make_allocator("entropy"), rng=0)
    p = plan(ladder, [], max_pos=snapshot.max_position_coins, config=OrderManagerConfig(reduce_only=True))
    assert p.n_actions == len(ladder.bids) + len(ladder.asks) and not p.stopped
    again = plan(
        ladder, p.final_orders(), max_pos=snapshot.max_position_coins, config=OrderManagerConfig(reduce_only=True)
    )
    assert again.n_actions == 0


# ---- ids and batches -------------------------------------------------------------------------------


def test_cloids_are_deterministic_unique_and_accepted_by_the_sdk():
    a, b = CloidFactory(7), CloidFactory(7)
    ids = [a() for _ in range(5)]
    assert ids == [b() for _ in range(5)] and len(set(ids)) == 5
    assert CloidFactory(8)() != CloidFactory(7)()
    for c in ids:
        assert Cloid.from_str(c).to_raw() == c and len(c) == 34


def test_new_ids_never_collide_with_resting_ones_from_the_same_seed():
    first = plan([bid(100, 1)], [], seed=3)
    again = plan([bid(99, 1)], first.final_orders(), seed=3)
    assert again.modifies[0].cloid != first.places[0].cloid


@pytest.mark.parametrize(("n", "w"), [(1, 1), (39, 1), (40, 2), (79, 2), (80, 3)])
def test_exchange_weight_is_one_plus_floor_batch_over_40(n, w):
    assert exchange_weight(n) == w


def test_batches_respect_the_maximum_length_and_go_cancels_first():
    desired = [bid(100 - i, 1, i) for i in range(7)]
    resting = [rest("ask", 200 + i, 1, i) for i in range(2)] + [
        RestingOrder("ask", 300, 1, None, 77)  # placed elsewhere: cancelled by oid
    ]
    p = plan(desired, resting, config=OrderManagerConfig(max_batch_len=3, reduce_only=True))
    kinds = [b.kind for b in p.batches]
    assert kinds == ["cancel", "cancel_oid", "order", "order", "order"]
    assert [len(b.actions) for b in p.batches] == [2, 1, 3, 3, 1]
    assert plan_weight(p) == 5 and address_requests(p) == 10


def test_bad_resting_orders_are_one_line_errors():
    with pytest.raises(InvalidParameterError, match=r"'resting\.size' must be in"):
        RestingOrder("bid", 100.0, 0.0, f"0x{1:032x}")
    with pytest.raises(InvalidParameterError, match=r"'resting\.cloid' must be '0x' followed by 32 hex"):
        RestingOrder("bid", 100.0, 1.0, "0x12")
    with pytest.raises(InvalidParameterError, match="needs a 'cloid' or an 'oid'"):
        RestingOrder("bid", 100.0, 1.0)
    with pytest.raises(InvalidParameterError, match="same id"):
        plan([], [rest("bid", 1, 1, 1), rest("bid", 2, 1, 1)])
    with pytest.raises(InvalidParameterError, match="'max_position_coins' must be in"):
        plan([], [], max_pos=0.0)


def test_batch_of_places_reports_weight_and_requests():
    b = Batch("order", tuple(Place(f"0x{i:032x}", "bid", 1.0, 1.0, False, i) for i in range(45)))
    assert batch_weight(b) == 2 and b.n_actions == 45


def test_bad_desired_orders_are_one_line_errors():
    with pytest.raises(InvalidParameterError, match=r"'desired\[1\]\.size' must be in \(0, inf\) coins"):
        plan([bid(100, 1), bid(99, 0.0)], [])
    with pytest.raises(InvalidParameterError, match=r"'desired\[0\]\.side' must be one of"):
        plan([Order("buy", 100.0, 1.0, 1.0, 0)], [])  # type: ignore[arg-type]


def test_crossing_flags_prices_the_book_may_move_through_by_arrival():
    # book 99@101, margin 1%: a bid at or above 101·0.99 = 99.99 and an ask at or below 99·1.01 = 99.99 may cross
    acts = [
        Place(f"0x{1:032x}", "bid", 99.0, 1.0, False, 0),
        Place(f"0x{2:032x}", "bid", 100.0, 1.0, False, 0),
        Place(f"0x{3:032x}", "ask", 99.99, 1.0, False, 0),
        Place(f"0x{4:032x}", "ask", 101.0, 1.0, False, 0),
        Modify(rest("ask", 102.0, 1.0, 5), f"0x{6:032x}", 98.0, 1.0, False, 0),
        Cancel(rest("bid", 200.0, 1.0, 7)),  # removals never cross
    ]
    got = crossing_cloids(acts, best_bid_usd=99.0, best_ask_usd=101.0, margin_frac=0.01)
    assert got == [f"0x{2:032x}", f"0x{3:032x}", f"0x{6:032x}"]
    assert crossing_cloids(acts, best_bid_usd=99.0, best_ask_usd=101.0) == [f"0x{6:032x}"]


def test_crossing_counts_our_orders_that_may_land_unseen():
    # an ask of ours at 100 whose request went unanswered may rest any moment: a bid at 100 would cross it
    unseen = [rest("ask", 100.0, 1.0, 1), rest("bid", 95.0, 1.0, 2)]
    acts = [
        Place(f"0x{10:032x}", "bid", 100.0, 1.0, False, 0),
        Place(f"0x{11:032x}", "bid", 99.0, 1.0, False, 0),
        Place(f"0x{12:032x}", "ask", 95.0, 1.0, False, 0),
        Place(f"0x{13:032x}", "ask", 96.0, 1.0, False, 0),
    ]
    assert crossing_cloids(acts, best_bid_usd=90.0, best_ask_usd=110.0) == []
    got = crossing_cloids(acts, best_bid_usd=90.0, best_ask_usd=110.0, own_unseen=unseen)
    assert got == [f"0x{10:032x}", f"0x{12:032x}"]
