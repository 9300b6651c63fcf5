"""Market snapshot: the state of one market and of our account at the moment quotes are refreshed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ._validate import PYDANTIC_CONFIG, check_array, check_int, check_real
from .errors import InvalidParameterError


@dataclass(frozen=True, kw_only=True, slots=True)
class Regime:
    """Market regime indicators that the legacy entropy allocator turns into a temperature.

    Parameters
    ----------
    toxicity : float, default 1.0
        Informed-flow intensity relative to normal (dimensionless ratio, ``>= 0``; 1 = normal).
    vol_ratio : float, default 1.0
        Current volatility over its baseline (dimensionless ratio, ``>= 0``).
    cascade_severity : float, default 0.0
        Liquidation-cascade severity in ``[0, 1]``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    toxicity: float = 1.0
    vol_ratio: float = 1.0
    cascade_severity: float = 0.0

    def __post_init__(self) -> None:
        check_real("regime.toxicity", self.toxicity, lo=0.0)
        check_real("regime.vol_ratio", self.vol_ratio, lo=0.0)
        check_real("regime.cascade_severity", self.cascade_severity, lo=0.0, hi=1.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketSnapshot:
    """One market and our account, as seen when the ladder is rebuilt.

    Parameters
    ----------
    mid_usd : float
        Reference mid price (USD per coin), ``> 0``, within ``[best_bid_usd, best_ask_usd]``.
    best_bid_usd, best_ask_usd : float
        Best bid and best ask of the book (USD), ``0 < best_bid_usd < best_ask_usd``.
    sigma_frac : float
        Volatility of the mid over ``sigma_horizon_s``, as a fraction of price (std of the log return), ``> 0``.
    sigma_horizon_s : float, default 1.0
        Horizon over which ``sigma_frac`` is measured (seconds), ``> 0``.
    inventory_coins : float, default 0.0
        Current position (coins; positive long).
    max_position_coins : float
        Absolute position limit (coins), ``> 0``. Bids may add at most ``max - q``, asks at most ``max + q``.
    margin_usd : float
        Collateral available to back new orders (USD), ``> 0``.
    leverage : float, default 20.0
        Leverage allowed on this market, ``>= 1``: an order of value ``v`` uses ``v / leverage`` of margin.
    maker_fee_bps, taker_fee_bps : float
        Fees in bps of notional (negative = rebate), in ``[-10, 100]``.
    daily_volume_coins : float, default 0.0
        Traded volume over 24 h (coins), ``>= 0``; the impact model derives volume at depth from it when no
        ``volume_profile`` is given (0 = unknown).
    volume_profile_depth_bps, volume_profile_coins : tuple of float, default ()
        Optional volume at depth: coins that trade at or through each depth (bps) over ``sigma_horizon_s``,
        depths strictly increasing, volumes non-increasing and ``> 0``.
    regime : Regime
        Regime indicators for the entropy allocator's adaptive temperature.
    ts_ns : int, default 0
        Timestamp of the snapshot (UNIX ns).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    mid_usd: float
    best_bid_usd: float
    best_ask_usd: float
    sigma_frac: float
    max_position_coins: float
    margin_usd: float
    sigma_horizon_s: float = 1.0
    inventory_coins: float = 0.0
    leverage: float = 20.0
    maker_fee_bps: float = 1.5
    taker_fee_bps: float = 4.5
    daily_volume_coins: float = 0.0
    volume_profile_depth_bps: tuple[float, ...] = ()
    volume_profile_coins: tuple[float, ...] = ()
    regime: Regime = field(default_factory=Regime)
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_real("mid_usd", self.mid_usd, lo=0.0, lo_open=True, unit="USD")
        check_real("best_bid_usd", self.best_bid_usd, lo=0.0, lo_open=True, unit="USD")
        check_real("best_ask_usd", self.best_ask_usd, lo=0.0, lo_open=True, unit="USD")
        if not self.best_bid_usd < self.best_ask_usd:
            raise InvalidParameterError(
                f"'best_bid_usd' must be < 'best_ask_usd' (a crossed or locked book cannot be quoted); "
                f"got bid {self.best_bid_usd!r} >= ask {self.best_ask_usd!r}"
            )
        if not self.best_bid_usd <= self.mid_usd <= self.best_ask_usd:
            raise InvalidParameterError(
                f"'mid_usd' must lie in [best_bid_usd, best_ask_usd] = [{self.best_bid_usd!r}, {self.best_ask_usd!r}]"
                f" USD; got {self.mid_usd!r}"
            )
        check_real("sigma_frac", self.sigma_frac, lo=0.0, lo_open=True, hi=1.0, unit="(fraction of price)")
        check_real("sigma_horizon_s", self.sigma_horizon_s, lo=0.0, lo_open=True, unit="s")
        check_real("inventory_coins", self.inventory_coins, unit="coins")
        check_real("max_position_coins", self.max_position_coins, lo=0.0, lo_open=True, unit="coins")
        check_real("margin_usd", self.margin_usd, lo=0.0, lo_open=True, unit="USD")
        check_real("leverage", self.leverage, lo=1.0, hi=200.0)
        check_real("maker_fee_bps", self.maker_fee_bps, lo=-10.0, hi=100.0, unit="bps")
        check_real("taker_fee_bps", self.taker_fee_bps, lo=-10.0, hi=100.0, unit="bps")
        check_real("daily_volume_coins", self.daily_volume_coins, lo=0.0, unit="coins")
        if len(self.volume_profile_depth_bps) != len(self.volume_profile_coins):
            raise InvalidParameterError(
                "'volume_profile_depth_bps' and 'volume_profile_coins' must have the same length; got "
                f"{len(self.volume_profile_depth_bps)} and {len(self.volume_profile_coins)}"
            )
        if self.volume_profile_depth_bps:
            d = check_array("volume_profile_depth_bps", self.volume_profile_depth_bps, lo=0.0, unit="bps")
            v = check_array("volume_profile_coins", self.volume_profile_coins, lo=0.0, lo_open=True, unit="coins")
            if np.any(np.diff(d) <= 0):
                raise InvalidParameterError("'volume_profile_depth_bps' must be strictly increasing")
            if np.any(np.diff(v) > 0):
                raise InvalidParameterError("'volume_profile_coins' must be non-increasing in depth")
        check_int("ts_ns", self.ts_ns, lo=0, unit="ns")
        if not isinstance(self.regime, Regime):
            raise InvalidParameterError(f"'regime' must be a Regime; got {type(self.regime).__name__}")

    def derive(self, **changes: Any) -> MarketSnapshot:
        """A copy with ``changes``, checked only for what the refresh core cannot vouch for (about 2 µs, against 10
        for :func:`dataclasses.replace`, which reruns every check).

        For the refresh core, whose values come from checked inputs (the configured snapshot, a book the estimator
        keeps two-sided, a clipped σ): every venue's data is checked where it comes in, so the snapshot of each
        refresh is not checked again field by field. The position and margin, which a venue reports, are checked
        finite here; anything else must already satisfy the class's ranges.
        """
        new = object.__new__(MarketSnapshot)
        for name in _FIELDS:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        for name in ("inventory_coins", "margin_usd"):
            v = getattr(new, name)
            if not math.isfinite(v):
                raise InvalidParameterError(f"{name!r} must be finite; got {v!r}")
        return new

    @property
    def spread_bps(self) -> float:
        """Quoted spread ``(ask - bid) / mid`` in bps."""
        return (self.best_ask_usd - self.best_bid_usd) / self.mid_usd * 1e4

    def sigma_price_per_sqrt_s(self) -> float:
        """Volatility of the mid in USD per square-root second: ``sigma_frac * mid / sqrt(horizon)``."""
        return self.sigma_frac * self.mid_usd / self.sigma_horizon_s**0.5


_FIELDS = tuple(f.name for f in fields(MarketSnapshot))
