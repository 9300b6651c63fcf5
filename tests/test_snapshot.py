"""MarketSnapshot and model parameters refuse bad values with one line naming the field and its range."""

from __future__ import annotations

import dataclasses

import pytest

from hyper_make import (
    ExponentialIntensity,
    GridConfig,
    InvalidParameterError,
    LadderConfig,
    Regime,
    SquareRootImpact,
    TableFill,
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mid_usd", float("nan"), "'mid_usd' must be in (0, inf) USD; got nan"),
        ("mid_usd", float("inf"), "'mid_usd' must be in (0, inf) USD; got inf"),
        ("sigma_frac", -1e-4, "'sigma_frac' must be in (0, 1] (fraction of price); got -0.0001"),
        ("sigma_frac", 0.0, "'sigma_frac' must be in (0, 1]"),
        ("best_bid_usd", -1.0, "'best_bid_usd' must be in (0, inf) USD; got -1.0"),
        ("best_bid_usd", 90_002.0, "'best_bid_usd' must be < 'best_ask_usd'"),
        ("max_position_coins", 0.0, "'max_position_coins' must be in (0, inf) coins; got 0.0"),
        ("margin_usd", -5.0, "'margin_usd' must be in (0, inf) USD; got -5.0"),
        ("leverage", 0.5, "'leverage' must be in [1, 200]; got 0.5"),
        ("inventory_coins", "1", "'inventory_coins' must be a real number coins; got '1' of type str"),
        ("mid_usd", 95_000.0, "'mid_usd' must lie in [best_bid_usd, best_ask_usd]"),
    ],
)
def test_snapshot_rejects(snapshot, field, value, message):
    with pytest.raises(InvalidParameterError) as info:
        dataclasses.replace(snapshot, **{field: value})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_volume_profile_must_be_consistent(snapshot):
    with pytest.raises(InvalidParameterError, match="same length"):
        dataclasses.replace(snapshot, volume_profile_depth_bps=(1.0, 2.0), volume_profile_coins=(5.0,))
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        dataclasses.replace(snapshot, volume_profile_depth_bps=(2.0, 1.0), volume_profile_coins=(5.0, 4.0))
    with pytest.raises(InvalidParameterError, match="non-increasing"):
        dataclasses.replace(snapshot, volume_profile_depth_bps=(1.0, 2.0), volume_profile_coins=(4.0, 5.0))


def test_model_parameters_reject():
    with pytest.raises(InvalidParameterError, match=r"'regime.cascade_severity' must be in \[0, 1\]"):
        Regime(cascade_severity=1.5)
    with pytest.raises(InvalidParameterError, match=r"'fill.kappa_per_bps' must be in \(0, inf\) 1/bps"):
        ExponentialIntensity(kappa_per_bps=0.0)
    with pytest.raises(InvalidParameterError, match=r"'fill.prob_at_depth\[1\]' must be in \[0, 1\]"):
        TableFill(depth_bps=(1.0, 2.0), prob_at_depth=(0.5, 1.5))
    with pytest.raises(InvalidParameterError, match=r"'impact.beta' must be in \(0, 2\]"):
        SquareRootImpact(beta=2.5)
    with pytest.raises(InvalidParameterError, match=r"'grid\.max_depth_bps' must be > 'grid\.min_depth_bps'"):
        GridConfig(min_depth_bps=10.0, max_depth_bps=5.0)
    with pytest.raises(InvalidParameterError, match=r"'ladder.level_cap_frac' must be in \(0, 1\]"):
        LadderConfig(level_cap_frac=0.0)


def test_derive_equals_replace_and_checks_what_a_venue_reports():
    """``derive`` (the refresh core's unchecked copy) gives the same snapshot as ``dataclasses.replace``, and still
    refuses a non-finite position or margin, naming the field."""
    import dataclasses
    import math

    import pytest

    from hyper_make import default_snapshot
    from hyper_make.errors import InvalidParameterError

    s = default_snapshot()
    k = 1.01
    changes = {"mid_usd": s.mid_usd * k, "best_bid_usd": s.best_bid_usd * k, "best_ask_usd": s.best_ask_usd * k,
               "inventory_coins": -0.2, "margin_usd": 500.0, "ts_ns": 7}  # fmt: skip
    assert s.derive(**changes) == dataclasses.replace(s, **changes)
    assert s.derive() == s
    for name in ("inventory_coins", "margin_usd"):
        with pytest.raises(InvalidParameterError, match=name):
            s.derive(**{name: math.nan})
