"""Hyperliquid tick/lot rules: the official page's examples, and rounding properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyper_make import PERP_SPECS, InstrumentSpec, InvalidParameterError, perp_spec
from hyper_make.connectors.hyperliquid import spec_from_meta


@pytest.mark.parametrize(
    ("sz_decimals", "price", "valid"),
    [
        (0, 1234.5, True),  # 5 significant figures
        (0, 1234.56, False),  # 6 significant figures
        (0, 0.001234, True),  # 4 sig figs, 6 decimals = 6 - 0
        (0, 0.0012345, False),  # 7 decimals > 6
        (1, 0.01234, True),  # 5 decimals = 6 - 1
        (1, 0.012345, False),  # 6 decimals > 5
        (0, 123456.0, True),  # integer prices are always valid
        (0, 12345.6, False),  # 6 significant figures, not an integer
        (5, 90000.0, True),
        (5, 90000.5, False),  # BTC: 6 - 5 = 1 decimal, but 6 significant figures
        (5, 9000.5, True),
        (5, 9000.55, False),
    ],
)
def test_official_price_examples(sz_decimals, price, valid):
    # Arrange
    spec = InstrumentSpec(coin="X", sz_decimals=sz_decimals)
    # Act / Assert
    assert spec.is_valid_price(price) is valid


def test_spot_allows_eight_minus_sz_decimals():
    spot = InstrumentSpec(coin="PURR", sz_decimals=0, is_spot=True)
    perp = InstrumentSpec(coin="PURR", sz_decimals=0)
    assert spot.is_valid_price(0.00012345)  # 8 decimals, 5 sig figs
    assert not perp.is_valid_price(0.00012345)


def test_shipped_perps():
    assert {c: perp_spec(c).sz_decimals for c in ("BTC", "ETH", "SOL", "HYPE")} == {
        "BTC": 5,
        "ETH": 4,
        "SOL": 2,
        "HYPE": 2,
    }
    assert perp_spec("btc").lot_size == pytest.approx(1e-5)
    assert perp_spec(" sol ").coin == "SOL"  # spelled as the exchange spells it
    with pytest.raises(InvalidParameterError, match=r"'coin' must be one of the shipped perps \['BTC', 'ETH'"):
        perp_spec("DOGE")


@pytest.mark.parametrize("bad", [5, None, b"BTC", ""])
def test_perp_spec_of_a_non_string_names_coin(bad):
    with pytest.raises(InvalidParameterError, match=f"'coin' must be one of the shipped perps .*; got {bad!r}"):
        perp_spec(bad)


def test_a_spec_built_without_asset_index_cannot_be_signed():
    # the asset index is never defaulted: 0 would be BTC's
    spec = InstrumentSpec(coin="DOGE", sz_decimals=0)
    assert spec.asset_id is None
    with pytest.raises(InvalidParameterError, match="'asset_id' of DOGE is unknown"):
        spec.require_asset_id()
    assert InstrumentSpec(coin="DOGE", sz_decimals=0, asset_id=0).require_asset_id() == 0
    assert {s.coin: s.asset_id for s in PERP_SPECS.values()} == {"BTC": 0, "ETH": 1, "SOL": 5, "HYPE": 159}


META = {
    "universe": [{"name": "BTC", "szDecimals": 5}, {"name": "kPEPE", "szDecimals": 0}, {"name": "SOL", "szDecimals": 2}]
}


@pytest.mark.parametrize(("typed", "coin", "asset"), [("SOL", "SOL", 2), ("sol", "SOL", 2), ("kpepe", "kPEPE", 1)])
def test_spec_from_meta_spells_the_coin_as_the_exchange_does(typed, coin, asset):
    spec = spec_from_meta(META, typed)
    assert (spec.coin, spec.asset_id, spec.sz_decimals) == (coin, asset, META["universe"][asset]["szDecimals"])


def test_spec_from_meta_refuses_unknown_and_ambiguous_coins():
    with pytest.raises(InvalidParameterError, match="'coin' 'DOGE' is not in the exchange's meta"):
        spec_from_meta(META, "DOGE")
    twins = {"universe": [{"name": "ABC", "szDecimals": 0}, {"name": "abc", "szDecimals": 1}]}
    assert spec_from_meta(twins, "abc").asset_id == 1  # an exact match wins
    with pytest.raises(InvalidParameterError, match="matches several perps"):
        spec_from_meta(twins, "Abc")


@pytest.mark.parametrize(
    ("price", "side", "expected"),
    [
        (90123.456, "bid", 90123.0),
        (90123.456, "ask", 90124.0),
        (99999.5, "ask", 100000.0),  # crossing a power of ten stays valid
        (9999.95, "bid", 9999.9),
        (1234.56, "bid", 1234.5),
        (1234.56, "ask", 1234.6),
        (0.0012345, "bid", 0.001234),
        (0.0012345, "ask", 0.001235),
    ],
)
def test_round_price_direction(price, side, expected):
    spec = InstrumentSpec(coin="X", sz_decimals=0) if price < 1 else perp_spec("BTC")
    if 1 < price < 10_000:
        spec = InstrumentSpec(coin="X", sz_decimals=0)
    assert spec.round_price(price, side) == expected


def test_sizes_floor_to_lots_and_min_size():
    btc = perp_spec("BTC")
    assert btc.size_to_lots([0.3, 0.00001, 0.123456789]).tolist() == [30000, 1, 12345]
    assert btc.round_size_down(0.1 + 0.2) == 0.3  # float noise does not lose a lot
    m = float(btc.min_size(90000.0))
    assert m * 90000.0 >= 10.0 and (m - btc.lot_size) * 90000.0 < 10.0
    assert btc.format_price(90123.0) == "90123" and btc.format_size(0.3) == "0.3"


def test_bad_spec_fields():
    with pytest.raises(InvalidParameterError, match="'sz_decimals' must be in \\[0, 6\\]"):
        InstrumentSpec(coin="X", sz_decimals=7)
    with pytest.raises(InvalidParameterError, match="'min_notional_usd'"):
        InstrumentSpec(coin="X", sz_decimals=2, min_notional_usd=float("nan"))


prices = st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False)


@given(price=prices, sz=st.integers(0, 6), side=st.sampled_from(["bid", "ask"]))
def test_rounded_prices_are_valid_and_in_the_right_direction(price, sz, side):
    spec = InstrumentSpec(coin="X", sz_decimals=sz)
    r = spec.round_price(price, side)
    if side == "bid" and r == 0.0:  # below the first tick: no valid bid exists
        assert price < float(spec.tick_at(price))
        return
    assert spec.is_valid_price(r)
    if side == "bid":
        assert r <= price * (1 + 1e-12)
    else:
        assert r >= price * (1 - 1e-12)
    # rounding moves at most one tick
    assert abs(r - price) <= float(spec.tick_at(max(r, price))) * (1 + 1e-9) + 1e-12


@given(size=st.floats(min_value=0, max_value=1e6), sz=st.integers(0, 8))
def test_sizes_on_lot_grid_never_rounded_up(size, sz):
    spec = InstrumentSpec(coin="X", sz_decimals=sz, is_spot=True)
    r = spec.round_size_down(size)
    assert r <= size * (1 + 1e-12)
    assert size - r < spec.lot_size * (1 + 1e-6) + size * 1e-12
    if r > 0:
        assert spec.is_valid_size(r)
    assert np.isfinite(r)


@given(price=prices, sz=st.integers(0, 6), side=st.sampled_from(["bid", "ask"]))
def test_scalar_and_vector_rounding_agree(price, sz, side):
    spec = InstrumentSpec(coin="X", sz_decimals=sz)
    assert spec.round_price(price, side) == float(spec.round_prices(np.array([price]), side)[0])


@settings(deadline=None)  # the first example loads the compiled kernel
@given(
    st.lists(st.integers(1, 10**9), min_size=0, max_size=20),
    st.sampled_from([0.1, 0.01, 1.0, 0.5, 1e-5]),
)
def test_prices_to_ticks_is_the_checked_scalar_conversion_of_each_price(ks, tick):
    from hyper_make.instrument import price_to_ticks, prices_to_ticks

    prices = np.array([k * tick for k in ks], dtype=np.float64)
    got = prices_to_ticks(prices, tick)
    assert got.dtype == np.int64
    assert got.tolist() == [price_to_ticks(float(p), tick) for p in prices]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -100.0, 0.0, 100.05])
def test_prices_to_ticks_names_the_first_bad_price_by_its_index(bad):
    from hyper_make.instrument import prices_to_ticks

    with pytest.raises(InvalidParameterError, match=r"'order price\[2\]'"):
        prices_to_ticks(np.array([100.0, 100.1, bad, float("nan")]), 0.1, name="order price")


@pytest.mark.parametrize("tick", [0.0, -0.1, float("nan")])
def test_prices_to_ticks_refuses_a_bad_tick_even_for_no_prices(tick):
    from hyper_make.instrument import prices_to_ticks

    with pytest.raises(InvalidParameterError, match="tick_usd"):
        prices_to_ticks(np.array([]), tick)
