"""Simulator configuration: frozen parameter bags for the synthetic market and the quoting strategy, and presets.

Units: prices in USD (the core works in ticks of ``tick_usd``), sizes in coins, time in seconds, volatility in
bps of price per √s, rates per second, probabilities and fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from .._validate import PYDANTIC_CONFIG, check_int, check_real
from ..errors import InvalidParameterError
from ..ladder import LadderConfig
from ..strategy.quoter import QuoterConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class MarketConfig:
    """The synthetic market: latent fair value, other participants' book and order flow, reactions to our size.

    Parameters
    ----------
    mid0_usd : starting fair value (USD), ``> 0``.
    tick_usd : price grid step (USD), ``> 0``; our prices are rounded to it.
    sigma_bps_per_sqrt_s : Brownian volatility of the fair value (bps of price per √s), ``> 0``.
    jump_rate_per_s : Poisson rate of fair-value jumps (1/s), ``>= 0``.
    jump_std_bps : standard deviation of a jump (bps), ``>= 0``.
    quote_update_rate_per_s : how often others re-centre their quotes on the fair value (1/s), ``> 0``; each
        update is one event (fair value diffuses continuously, the book only sees it at events).
    half_spread_ticks : others' quotes sit at ``floor(F - h)`` and ``ceil(F + h)`` ticks, ``> 0``.
    depth_per_tick_coins : others' resting size at the best tick (coins), ``> 0``.
    depth_slope_per_tick : growth of others' size per tick away from their best (fraction per tick), ``>= 0``.
    depth_profile_ticks, depth_profile_coins : optional depth profile that replaces the linear law above: segment
        ``i`` starts ``depth_profile_ticks[i]`` ticks beyond others' best (integers, the first 0, increasing) and
        holds ``depth_profile_coins[i]`` coins at each of its ticks (``> 0``); the last segment runs on without end.
        Empty (the default) = the linear law ``depth_per_tick_coins·(1 + depth_slope_per_tick·k)``.
    refill_rate_per_s : consumed depth comes back at this exponential rate (1/s), ``> 0``.
    mo_rate_per_s : Poisson rate of market orders (1/s), ``> 0``.
    mo_size_min_coins : Pareto scale of market-order sizes (coins), ``> 0``.
    mo_size_tail : Pareto tail index α (sizes heavier-tailed for smaller α), ``> 1``.
    mo_size_max_coins : cap on one market order (coins), ``>= mo_size_min_coins``.
    mo_size_table_probs, mo_size_table_coins : optional size law that replaces the Pareto one: the size (coins,
        increasing, ``> 0``) at each probability (the first 0, increasing, below 1) of the size distribution,
        log-linear in between, and beyond the last point a Pareto tail of index ``mo_size_tail``. Empty (the
        default) = the Pareto law of ``mo_size_min_coins`` and ``mo_size_tail``.
    mo_sign_trend_share, mo_sign_trend_persistence : order-flow memory. A share ``w`` in ``[0, 1)`` of market
        orders take the sign of the flow's trend, which flips with probability ``(1 - φ)/2`` at each order (``φ`` in
        ``[0, 1)``); the others' signs are fair coins. The signs' autocorrelation at lag ``l`` orders is ``w²·φ^l``.
        ``w = 0`` (the default): independent signs.
    informed_frac : probability that a market order is informed, in ``[0, 1]``.
    informed_size_mult : informed orders are this many times larger (they sweep levels), ``>= 1``.
    informed_move_bps : the fair value moves this far in the informed order's direction right after it
        (the coming move it traded on), bps, ``>= 0``.
    pickoff_ticks : a resting order of ours further than this beyond the fair value is taken at once by
        latency arbitrageurs (ticks), ``>= 0``.
    react_threshold_frac : our size at a tick above this fraction of the usual depth there draws reactions, ``>= 0``.
    step_ahead_frac : others put this fraction of our excess size in the queue ahead of our new order, ``>= 0``
        (forward impact: stepping ahead).
    lean_bps_per_s : the fair value drifts away from our net displayed excess (up for excess bids), per unit of
        excess (in multiples of the usual depth of a tick), bps per second, ``>= 0`` (forward impact: others
        front-run what they read as our intention).
    order_latency_s, cancel_latency_s : time until a new order rests / a cancel takes effect (s), ``>= 0``.
    maker_fee_bps, taker_fee_bps : fees on our fills (bps of notional; negative = rebate).
    window_ticks : width of the simulated price window around the start (ticks); prices outside are clamped.
    markout_s : horizon of the adverse-selection markout (s), ``> 0``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    mid0_usd: float = 90_000.5
    tick_usd: float = 1.0
    sigma_bps_per_sqrt_s: float = 0.5e4 / math.sqrt(365.0 * 86_400.0)
    jump_rate_per_s: float = 1.0 / 600.0
    jump_std_bps: float = 10.0
    quote_update_rate_per_s: float = 10.0
    half_spread_ticks: float = 0.5
    depth_per_tick_coins: float = 0.05
    depth_slope_per_tick: float = 0.05
    depth_profile_ticks: tuple[int, ...] = ()
    depth_profile_coins: tuple[float, ...] = ()
    refill_rate_per_s: float = 0.2
    mo_rate_per_s: float = 6.0
    mo_size_min_coins: float = 0.02
    mo_size_tail: float = 1.4
    mo_size_max_coins: float = 30.0
    mo_size_table_probs: tuple[float, ...] = ()
    mo_size_table_coins: tuple[float, ...] = ()
    mo_sign_trend_share: float = 0.0
    mo_sign_trend_persistence: float = 0.0
    informed_frac: float = 0.2
    informed_size_mult: float = 4.0
    informed_move_bps: float = 1.0
    pickoff_ticks: float = 2.0
    react_threshold_frac: float = 0.2
    step_ahead_frac: float = 0.5
    lean_bps_per_s: float = 0.05
    order_latency_s: float = 0.05
    cancel_latency_s: float = 0.05
    maker_fee_bps: float = 1.5
    taker_fee_bps: float = 4.5
    window_ticks: int = 40_000
    markout_s: float = 10.0

    def __post_init__(self) -> None:
        p = "sim.market."
        check_real(p + "mid0_usd", self.mid0_usd, lo=0.0, lo_open=True, unit="USD")
        check_real(p + "tick_usd", self.tick_usd, lo=0.0, lo_open=True, hi=self.mid0_usd, unit="USD")
        check_real(p + "sigma_bps_per_sqrt_s", self.sigma_bps_per_sqrt_s, lo=0.0, lo_open=True, hi=1e3)
        check_real(p + "jump_rate_per_s", self.jump_rate_per_s, lo=0.0, unit="1/s")
        check_real(p + "jump_std_bps", self.jump_std_bps, lo=0.0, unit="bps")
        check_real(p + "quote_update_rate_per_s", self.quote_update_rate_per_s, lo=0.0, lo_open=True, unit="1/s")
        check_real(p + "half_spread_ticks", self.half_spread_ticks, lo=0.0, lo_open=True, unit="ticks")
        check_real(p + "depth_per_tick_coins", self.depth_per_tick_coins, lo=0.0, lo_open=True, unit="coins")
        check_real(p + "depth_slope_per_tick", self.depth_slope_per_tick, lo=0.0, unit="1/tick")
        # a TOML list arrives as a list: hold tuples (hashable, immutable like the rest of the frozen config)
        object.__setattr__(self, "depth_profile_ticks", tuple(self.depth_profile_ticks))
        object.__setattr__(self, "depth_profile_coins", tuple(self.depth_profile_coins))
        _check_profile(self.depth_profile_ticks, self.depth_profile_coins)
        object.__setattr__(self, "mo_size_table_probs", tuple(self.mo_size_table_probs))
        object.__setattr__(self, "mo_size_table_coins", tuple(self.mo_size_table_coins))
        _check_size_table(self.mo_size_table_probs, self.mo_size_table_coins)
        check_real(p + "refill_rate_per_s", self.refill_rate_per_s, lo=0.0, lo_open=True, unit="1/s")
        check_real(p + "mo_rate_per_s", self.mo_rate_per_s, lo=0.0, lo_open=True, unit="1/s")
        check_real(p + "mo_size_min_coins", self.mo_size_min_coins, lo=0.0, lo_open=True, unit="coins")
        check_real(p + "mo_size_tail", self.mo_size_tail, lo=1.0, lo_open=True)
        check_real(p + "mo_size_max_coins", self.mo_size_max_coins, lo=self.mo_size_min_coins, unit="coins")
        check_real(p + "mo_sign_trend_share", self.mo_sign_trend_share, lo=0.0, hi=1.0, hi_open=True)
        check_real(p + "mo_sign_trend_persistence", self.mo_sign_trend_persistence, lo=0.0, hi=1.0, hi_open=True)
        check_real(p + "informed_frac", self.informed_frac, lo=0.0, hi=1.0, unit="(probability)")
        check_real(p + "informed_size_mult", self.informed_size_mult, lo=1.0)
        check_real(p + "informed_move_bps", self.informed_move_bps, lo=0.0, unit="bps")
        check_real(p + "pickoff_ticks", self.pickoff_ticks, lo=0.0, unit="ticks")
        check_real(p + "react_threshold_frac", self.react_threshold_frac, lo=0.0)
        check_real(p + "step_ahead_frac", self.step_ahead_frac, lo=0.0)
        check_real(p + "lean_bps_per_s", self.lean_bps_per_s, lo=0.0, unit="bps/s")
        check_real(p + "order_latency_s", self.order_latency_s, lo=0.0, hi=60.0, unit="s")
        check_real(p + "cancel_latency_s", self.cancel_latency_s, lo=0.0, hi=60.0, unit="s")
        check_real(p + "maker_fee_bps", self.maker_fee_bps, lo=-10.0, hi=100.0, unit="bps")
        check_real(p + "taker_fee_bps", self.taker_fee_bps, lo=-10.0, hi=100.0, unit="bps")
        check_int(p + "window_ticks", self.window_ticks, lo=100, hi=10_000_000, unit="ticks")
        check_real(p + "markout_s", self.markout_s, lo=0.0, lo_open=True, unit="s")

    @property
    def mean_mo_size_coins(self) -> float:
        """Mean uninformed market-order size (coins): Pareto ``α·x_min/(α-1)`` ignoring the cap; with a size table,
        its log-linear segments (exact integrals) plus the Pareto tail beyond ``x_n``, capped at
        ``mo_size_max_coins``."""
        a = self.mo_size_tail
        if not self.mo_size_table_probs:
            return a * self.mo_size_min_coins / (a - 1.0)
        u, x = self.mo_size_table_probs, self.mo_size_table_coins
        total = 0.0
        for i in range(len(u) - 1):
            x0, x1, du = x[i], x[i + 1], u[i + 1] - u[i]
            # ∫ exp(log x0 + w·log(x1/x0)) du over the segment = du·(x1 - x0)/log(x1/x0)
            total += du * ((x1 - x0) / math.log(x1 / x0) if x1 != x0 else x0)
        # the tail, Pareto from x_n, capped: E[min(X, cap)] = x_n + x_n/(α-1)·(1 - (cap/x_n)^(1-α))
        xn, cap = x[-1], max(self.mo_size_max_coins, x[-1])
        return total + (1.0 - u[-1]) * (xn + xn / (a - 1.0) * (1.0 - (cap / xn) ** (1.0 - a)))

    @property
    def total_sigma_bps_per_sqrt_s(self) -> float:
        """Volatility of the fair value including jumps and informed moves (bps per √s):
        ``sqrt(σ² + λ_jump·σ_jump² + λ_mo·informed_frac·move²·M)``, where ``M = 1 + 2·π·w²·φ/(1-φ)`` counts the
        informed moves' sign memory (1 without it)."""
        var = (
            self.sigma_bps_per_sqrt_s**2
            + self.jump_rate_per_s * self.jump_std_bps**2
            + self.mo_rate_per_s * self.informed_frac * self.informed_move_bps**2 * self.informed_memory_mult
        )
        return math.sqrt(var)

    @property
    def informed_memory_mult(self) -> float:
        """``1 + 2·π·w²·φ/(1-φ)``: the long-run variance of the informed moves over that of independent ones (the
        moves of informed orders ``l`` orders apart are correlated ``π·w²·φ^l``)."""
        if self.mo_sign_trend_share == 0.0:
            return 1.0
        phi = self.mo_sign_trend_persistence
        return 1.0 + 2.0 * self.informed_frac * self.mo_sign_trend_share**2 * phi / (1.0 - phi)

    @property
    def daily_volume_coins(self) -> float:
        """Expected market-order volume per day (coins), informed orders counted at their larger size."""
        mult = 1.0 + self.informed_frac * (self.informed_size_mult - 1.0)
        return self.mo_rate_per_s * self.mean_mo_size_coins * mult * 86_400.0


def _check_profile(ticks: tuple[int, ...], coins: tuple[float, ...]) -> None:
    """The depth profile's segments: as many starts as sizes, starts 0 then increasing integers, sizes > 0."""
    p = "sim.market."
    if len(ticks) != len(coins):
        raise InvalidParameterError(
            f"'{p}depth_profile_ticks' and '{p}depth_profile_coins' must have the same length; got {len(ticks)} and "
            f"{len(coins)}"
        )
    for i, k in enumerate(ticks):
        check_int(f"{p}depth_profile_ticks[{i}]", k, lo=0 if i == 0 else ticks[i - 1] + 1, hi=10_000_000,
                  unit="ticks")  # fmt: skip
    if ticks and ticks[0] != 0:
        raise InvalidParameterError(f"'{p}depth_profile_ticks' must start at 0 (the best tick); got {ticks[0]}")
    for i, c in enumerate(coins):
        check_real(f"{p}depth_profile_coins[{i}]", c, lo=0.0, lo_open=True, hi=1e9, unit="coins")


def _check_size_table(probs: tuple[float, ...], coins: tuple[float, ...]) -> None:
    """The size table: as many probabilities as sizes, the first 0, increasing below 1; sizes > 0, increasing."""
    p = "sim.market."
    if len(probs) != len(coins):
        raise InvalidParameterError(
            f"'{p}mo_size_table_probs' and '{p}mo_size_table_coins' must have the same length; got {len(probs)} and "
            f"{len(coins)}"
        )
    if probs and len(probs) < 2:
        raise InvalidParameterError(f"'{p}mo_size_table_probs' needs at least 2 points; got {len(probs)}")
    for i, (u, x) in enumerate(zip(probs, coins, strict=True)):
        check_real(f"{p}mo_size_table_probs[{i}]", u, lo=0.0 if i == 0 else probs[i - 1], lo_open=i > 0, hi=1.0,
                   hi_open=True)  # fmt: skip
        check_real(f"{p}mo_size_table_coins[{i}]", x, lo=0.0 if i == 0 else coins[i - 1], lo_open=i == 0, hi=1e9,
                   unit="coins")  # fmt: skip
    if probs and probs[0] != 0.0:
        raise InvalidParameterError(f"'{p}mo_size_table_probs' must start at 0 (the smallest order); got {probs[0]}")


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyConfig:
    """Our quoting loop on the simulator: refresh cadence, account limits, and the strategy (the ladder's model and
    the refresh core's settings, as ``hyper-make run`` uses them).

    Parameters
    ----------
    horizon_s : length of one simulated run (s), ``> 0``.
    refresh_s : the ladder is rebuilt every ``refresh_s`` seconds, ``> 0``.
    max_position_coins, margin_usd, leverage : account limits passed in the snapshot.
    ladder : the ladder configuration the allocators see (their model of the market; not the market's truth).
    quoter : the refresh core's requote thresholds, estimator and guards (the config's ``[quoter]``).
    volume_profile_depth_bps, volume_profile_coins_per_s : optional measured volume at depth (one side, coins per
        second at or through each depth, non-increasing) passed to the snapshot; empty = the ladder's default
        profile from the daily volume (see ``hyper_make.sim.calibrate_loop``).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    horizon_s: float = 900.0
    refresh_s: float = 1.0
    max_position_coins: float = 0.5
    margin_usd: float = 10_000.0
    leverage: float = 20.0
    ladder: LadderConfig = field(default_factory=LadderConfig)
    quoter: QuoterConfig = field(default_factory=QuoterConfig)
    volume_profile_depth_bps: tuple[float, ...] = ()
    volume_profile_coins_per_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        p = "sim.strategy."
        check_real(p + "horizon_s", self.horizon_s, lo=0.0, lo_open=True, hi=30 * 86_400.0, unit="s")
        check_real(p + "refresh_s", self.refresh_s, lo=0.0, lo_open=True, hi=self.horizon_s, unit="s")
        check_real(p + "max_position_coins", self.max_position_coins, lo=0.0, lo_open=True, unit="coins")
        check_real(p + "margin_usd", self.margin_usd, lo=0.0, lo_open=True, unit="USD")
        check_real(p + "leverage", self.leverage, lo=1.0, hi=200.0)
        if not isinstance(self.ladder, LadderConfig):
            raise InvalidParameterError(f"'sim.strategy.ladder' must be a LadderConfig; got {type(self.ladder)}")
        if not isinstance(self.quoter, QuoterConfig):
            raise InvalidParameterError(f"'sim.strategy.quoter' must be a QuoterConfig; got {type(self.quoter)}")
        if len(self.volume_profile_depth_bps) != len(self.volume_profile_coins_per_s):
            raise InvalidParameterError(
                "'sim.strategy.volume_profile_depth_bps' and 'volume_profile_coins_per_s' must have the same length"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class SimConfig:
    """A full simulation: the market and our strategy."""

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    market: MarketConfig = field(default_factory=MarketConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)


def _fitted_preset(name: str) -> SimConfig:
    """A preset shipped in ``hyper_make/sim/presets/NAME.toml`` (written by ``hyper-make calibrate --sim-preset``):
    its ``[sim.market]`` over the default market, the default strategy."""
    import tomllib
    from importlib import resources

    text = resources.files("hyper_make.sim").joinpath("presets", f"{name}.toml").read_text(encoding="utf-8")
    table = tomllib.loads(text).get("sim", {}).get("market", {})
    return SimConfig(market=replace(MarketConfig(), **table))


#: Fitted presets shipped with the package: name -> the recording they were fitted from (``../shared/data``).
FITTED_PRESETS: dict[str, str] = {
    "binance-usdm-btcusdt": "binance-usdm-btcusdt-20240808.gz (Binance USD-M BTCUSDT, 345 s)",
    "hyperliquid-btc": "hyperliquid-btc-20250126.gz (Hyperliquid BTC perp, 25 s)",
}

#: Presets run by the event-driven simulator (``avellaneda-stoikov-2008`` has its own module): ``default`` (a thin
#: market, ~10x shallower than the venues), ``thin`` (the same market, named as the stress preset it is), and the
#: markets fitted from recordings (:data:`FITTED_PRESETS`).
PRESETS: dict[str, SimConfig] = {
    "default": SimConfig(),
    "thin": SimConfig(),
    **{name: _fitted_preset(name) for name in FITTED_PRESETS},
}
AS_PRESET = "avellaneda-stoikov-2008"
PRESET_NAMES: tuple[str, ...] = (*PRESETS, AS_PRESET)


def get_preset(name: str) -> SimConfig:
    """The event-driven preset ``name``; raises naming the valid presets."""
    if name not in PRESETS:
        raise InvalidParameterError(f"unknown preset {name!r}; choose one of {list(PRESET_NAMES)}")
    return PRESETS[name]


def with_overrides(cfg: SimConfig, *, market: dict[str, Any] | None = None, **strategy: Any) -> SimConfig:
    """``cfg`` with some market and strategy fields replaced (validated again)."""
    m = replace(cfg.market, **(market or {}))
    s = replace(cfg.strategy, **strategy)
    return SimConfig(market=m, strategy=s)
