"""The ladder's shortcuts give, bit for bit, what the per-side and per-price functions give.

``build_ladder`` rounds both sides' prices in one pass, evaluates both sides' economics in one call, computes
one tick or one lot count in plain Python and builds orders through their slots, all to pay NumPy's and Python's
per-call overhead less often. Each shortcut is checked here against the plain function it replaces, by the bits of
the floats (``==`` would let ``-0.0`` pass for ``0.0``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ladder_fuzz
from hyper_make import (
    InstrumentSpec,
    InvalidParameterError,
    LadderConfig,
    SideProblem,
    build_ladder,
    default_snapshot,
    default_spec,
    make_allocator,
)
from hyper_make.economics import build_curves, build_curves_batch
from hyper_make.instrument import lots_to_coins
from hyper_make.ladder import _depth_grid, reservation_price
from hyper_make.levels import depth_grid_bps, glft_touch_depth_bps, ladder_prices, side_prices
from hyper_make.projection import Order, _order, project_side

CURVE_ARRAYS = ("depth_bps", "price_usd", "fill_prob", "capture_usd", "adverse_usd", "b_forward", "b_roundtrip")


def same_bits(x: object, y: object) -> bool:
    """Equal dtype, shape and bytes (so ``-0.0`` differs from ``0.0`` and NaNs compare equal)."""
    a, b = np.asarray(x), np.asarray(y)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def near_powers_of_ten() -> list[float]:
    """Prices within a few ulps of ``10^k`` (USD): there ``math.log10`` and NumPy's ``log10`` can floor apart."""
    out = [999.9999999999994, 9.99999999999999e-07]
    for k in range(-7, 9):
        for towards in (0.0, math.inf):
            p = 10.0**k
            for _ in range(4):
                p = math.nextafter(p, towards)
                out.append(p)
        out.append(10.0**k)
    return out


# ---- one price, one count -----------------------------------------------------------------------------------
@pytest.mark.parametrize("sz", [0, 2, 5])
def test_the_scalar_tick_is_tick_at_of_one_price(sz):
    spec = InstrumentSpec(coin="X", sz_decimals=sz)
    rng = np.random.default_rng(1)
    for price in [*near_powers_of_ten(), *(10.0 ** rng.uniform(-7.0, 8.0, 3000)).tolist()]:
        assert same_bits(spec.price_tick(price), float(spec.tick_at(price))), price


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_the_scalar_tick_of_an_invalid_price_names_it(bad):
    with pytest.raises(InvalidParameterError, match="'price' must be finite and > 0 USD"):
        default_spec().price_tick(bad)


@pytest.mark.parametrize("lot", [1.0, 1e-2, 1e-5, 1e-8, 0.25])
@pytest.mark.parametrize("k", [0, 1, 7, 123_456_789, 2**53 - 1, 2**53])
def test_one_lot_count_converts_as_an_array_of_one(lot, k):
    for count in (k, np.int64(k)):
        one = lots_to_coins(count, lot)
        assert isinstance(one, np.float64)
        assert same_bits(one, lots_to_coins(np.array([k]), lot)[0])


# ---- rounding several arrays at once -------------------------------------------------------------------------
prices = st.floats(min_value=1e-7, max_value=1e8, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(
    sz=st.integers(0, 6),
    arrays=st.lists(st.lists(prices | st.sampled_from(near_powers_of_ten()), max_size=12), min_size=1, max_size=3),
    sides=st.lists(st.sampled_from(["bid", "ask"]), min_size=3, max_size=3),
)
def test_rounding_in_one_pass_gives_each_arrays_own_rounding(sz, arrays, sides):
    spec = InstrumentSpec(coin="X", sz_decimals=sz)
    pxs = [np.array(a, dtype=np.float64) for a in arrays]
    got = spec.round_prices_batch(pxs, sides[: len(pxs)])
    for px, side, rounded in zip(pxs, sides, got, strict=False):
        assert same_bits(rounded, spec.round_prices(px, side))


def test_rounding_in_one_pass_refuses_a_bad_price_as_round_prices_does():
    spec = default_spec()
    good, bad = np.array([100.0, 101.0]), np.array([100.0, math.inf])
    with pytest.raises(InvalidParameterError) as direct:
        spec.round_prices(bad, "ask")
    with pytest.raises(InvalidParameterError) as batched:
        spec.round_prices_batch([good, bad], ["bid", "ask"])
    assert str(batched.value) == str(direct.value)


# ---- both sides at once, on random markets -------------------------------------------------------------------
CASES = [ladder_fuzz.case(20261202, i) for i in range(120)]


def _grid_inputs(c: ladder_fuzz.Case) -> tuple[np.ndarray, float]:
    cfg = c.config
    touch = cfg.grid.min_depth_bps
    if cfg.grid.touch == "glft":
        kappa = cfg.fill.kappa_per_bps if hasattr(cfg.fill, "kappa_per_bps") else 0.3
        touch = glft_touch_depth_bps(cfg.risk_aversion, kappa, c.snapshot.mid_usd, c.snapshot.maker_fee_bps)
    return depth_grid_bps(cfg.grid, touch), reservation_price(c.snapshot, cfg)


@pytest.mark.parametrize("c", CASES, ids=lambda c: f"case{c.index}")
def test_both_sides_priced_together_as_each_alone(c):
    depths, ref = _grid_inputs(c)
    both = ladder_prices(c.snapshot, c.spec, c.config.grid, depths, ref)
    for side, (px, depth) in zip(("bid", "ask"), both, strict=True):
        alone_px, alone_depth = side_prices(c.snapshot, c.spec, c.config.grid, side, depths, ref)
        assert same_bits(px, alone_px) and same_bits(depth, alone_depth)


@pytest.mark.parametrize("c", CASES, ids=lambda c: f"case{c.index}")
def test_both_sides_curves_together_as_each_alone(c):
    depths, ref = _grid_inputs(c)
    (pb, db), (pa, da) = ladder_prices(c.snapshot, c.spec, c.config.grid, depths, ref)
    cfg, snap = c.config, c.snapshot
    impact = None if cfg.impact.missing_input(snap) else cfg.impact
    models = {"fill": cfg.fill, "adverse": cfg.adverse, "horizon_s": cfg.horizon_s, "impact": impact}
    inventory = (ref - snap.mid_usd, snap.mid_usd - ref)
    together = build_curves_batch((db, da), (pb, pa), snap, inventory_usd=inventory, **models)
    for curves, depth, px, v in zip(together, (db, da), (pb, pa), inventory, strict=True):
        alone = build_curves(depth, px, snap, inventory_usd=v, **models)
        for name in (*CURVE_ARRAYS, "inventory_usd"):
            assert same_bits(getattr(curves, name), getattr(alone, name)), name
        assert curves.beta == alone.beta and curves.mid_usd == alone.mid_usd


@pytest.mark.parametrize("c", CASES[:60], ids=lambda c: f"case{c.index}")
def test_a_built_ladder_has_the_per_side_functions_numbers(c):
    try:
        ladder = build_ladder(c.snapshot, c.spec, make_allocator(c.allocator), config=c.config, rng=c.index)
    except InvalidParameterError:
        return  # a documented refusal (checked by the fuzz)
    depths, ref = _grid_inputs(c)
    for side in ("bid", "ask"):
        px, depth = side_prices(c.snapshot, c.spec, c.config.grid, side, depths, ref)
        s = ladder.side(side)
        assert same_bits(s.curves.price_usd, px) and same_bits(s.curves.depth_bps, depth)
        lone = project_side(
            side,
            px,
            depth,
            s.allocation.sizes,
            s.budget.budget_coins,
            np.full(px.size, c.config.level_cap_frac * s.budget.budget_coins),
            c.spec,
        )
        assert same_bits(s.projection.lots, lone.lots) and s.orders == lone.orders
        assert s.dropped == lone.dropped and s.size_used_coins == lone.total_coins


# ---- orders, utilities ----------------------------------------------------------------------------------------
def test_an_order_built_through_its_slots_is_the_dataclass_one():
    assert [f.name for f in dataclasses.fields(Order)] == ["side", "price", "size", "depth_bps", "level"]
    assert not hasattr(Order, "__post_init__")
    fast, slow = _order("ask", 90_010.0, 0.00123, 1.1, 3), Order("ask", 90_010.0, 0.00123, 1.1, 3)
    assert type(fast) is Order and fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.size = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("name", ["entropy", "impact", "flat"])
def test_the_shared_cached_arrays_are_read_only_and_builds_repeat(name):
    snap, spec, cfg = default_snapshot(), default_spec(), LadderConfig()
    depths = _depth_grid(cfg.grid, cfg.grid.min_depth_bps)
    with pytest.raises(ValueError, match="read-only"):
        depths[0] = 0.0
    first = build_ladder(snap, spec, name, config=cfg, rng=3)
    again = build_ladder(snap, spec, name, config=cfg, rng=3)
    assert first.bids == again.bids and first.asks == again.asks


def test_rank_utilities_are_one_minus_twice_the_rank_over_n_minus_one():
    alloc = make_allocator("entropy")
    c = build_ladder(default_snapshot(), default_spec(), alloc, rng=0).bid.curves
    problem = SideProblem(
        side="bid", curves=c, budget_coins=1.0, caps_coins=np.ones(c.n), lot_coins=1e-5, min_size_coins=np.zeros(c.n)
    )
    u = alloc.utilities(problem)
    bps = 1e4 / c.mid_usd
    ev = c.fill_prob * (c.capture_usd + c.inventory - alloc.as_confidence * c.adverse_usd) * bps
    ev = np.maximum(ev, alloc.min_touch_ev_bps)
    rank = np.empty(c.n)
    rank[np.argsort(-ev, kind="stable")] = np.arange(c.n)
    assert same_bits(u, 1.0 - 2.0 * rank / (c.n - 1))
