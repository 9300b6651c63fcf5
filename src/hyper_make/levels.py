"""Level grid: the depths (bps from mid) and valid prices of each side's levels.

Depth spacing is geometric or linear from a touch depth out to a maximum, or every ``ticks_per_level``
ticks of the exchange's price grid. The touch is either fixed or the GLFT optimal half-spread
``δ* = (1/γ)·ln(1 + γ/κ) + fee``. Prices are placed around the reservation price, rounded away from the mid
onto the exchange grid (bids down, asks up), kept off the opposite best (post-only), and de-duplicated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from ._validate import PYDANTIC_CONFIG, check_choice, check_int, check_real
from .errors import InvalidParameterError
from .instrument import InstrumentSpec, Side
from .snapshot import MarketSnapshot


@dataclass(frozen=True, kw_only=True, slots=True)
class GridConfig:
    """How many levels a side has and where they sit.

    Parameters
    ----------
    n_levels : int, default 10
        Levels per side, in ``[1, 200]``.
    min_depth_bps : float, default 2.0
        Depth of the first level (bps from the reference price) when ``touch = "fixed"``; a floor under the
        GLFT touch otherwise. ``> 0``.
    max_depth_bps : float, default 200.0
        Depth of the last level (bps), ``> min_depth_bps``, at most 5000.
    spacing : {"geometric", "linear", "ticks"}, default "geometric"
        Geometric or linear in depth, or every ``ticks_per_level`` ticks from the touch.
    ticks_per_level : int, default 1
        Tick step between levels for ``spacing = "ticks"``, ``>= 1``.
    touch : {"fixed", "glft"}, default "fixed"
        First-level depth: ``min_depth_bps``, or the GLFT half-spread (never below ``min_depth_bps``).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    n_levels: int = 10
    min_depth_bps: float = 2.0
    max_depth_bps: float = 200.0
    spacing: Literal["geometric", "linear", "ticks"] = "geometric"
    ticks_per_level: int = 1
    touch: Literal["fixed", "glft"] = "fixed"

    def __post_init__(self) -> None:
        check_int("grid.n_levels", self.n_levels, lo=1, hi=200)
        check_real("grid.min_depth_bps", self.min_depth_bps, lo=0.0, lo_open=True, hi=5000.0, unit="bps")
        check_real("grid.max_depth_bps", self.max_depth_bps, lo=0.0, lo_open=True, hi=5000.0, unit="bps")
        if not self.max_depth_bps > self.min_depth_bps:
            raise InvalidParameterError(
                f"'grid.max_depth_bps' must be > 'grid.min_depth_bps' = {self.min_depth_bps!r} bps; "
                f"got {self.max_depth_bps!r}"
            )
        check_choice("grid.spacing", self.spacing, ("geometric", "linear", "ticks"))
        check_int("grid.ticks_per_level", self.ticks_per_level, lo=1, hi=1_000_000)
        check_choice("grid.touch", self.touch, ("fixed", "glft"))


def glft_touch_depth_bps(risk_aversion: float, kappa_per_bps: float, mid_usd: float, fee_bps: float) -> float:
    """GLFT optimal half-spread in bps: ``δ* = (1/γ)·ln(1 + γ/κ) + fee``.

    ``γ`` is the CARA risk aversion (1/USD, inventory in coins) and ``κ = kappa_per_bps·1e4/mid`` the
    intensity decay per USD of depth; ``δ*`` is computed in USD and returned in bps. ``γ → 0`` gives ``1/κ``.
    """
    kappa_per_usd = kappa_per_bps * 1e4 / mid_usd
    if risk_aversion <= 0:
        half_usd = 1.0 / kappa_per_usd
    else:
        half_usd = math.log1p(risk_aversion / kappa_per_usd) / risk_aversion
    return half_usd / mid_usd * 1e4 + fee_bps


def depth_grid_bps(grid: GridConfig, touch_bps: float) -> NDArray[np.float64]:
    """Depths (bps) of a side's levels from ``touch_bps`` out to ``max_depth_bps`` (geometric or linear).

    For ``spacing = "ticks"`` only the touch is returned: the tick enumeration needs prices (see
    :func:`side_prices`).
    """
    first = min(max(touch_bps, grid.min_depth_bps), grid.max_depth_bps)
    if grid.spacing == "ticks" or grid.n_levels == 1:
        return np.array([first])
    steps = np.arange(grid.n_levels) / (grid.n_levels - 1)
    if grid.spacing == "geometric":
        return first * (grid.max_depth_bps / first) ** steps
    return first + (grid.max_depth_bps - first) * steps


def side_prices(
    snapshot: MarketSnapshot,
    spec: InstrumentSpec,
    grid: GridConfig,
    side: Side,
    depths_bps: NDArray[np.float64],
    reference_usd: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Valid, distinct, post-only prices of one side's levels and their depths from the mid (bps).

    Prices are ``reference·(1 ∓ δ/1e4)``, rounded away from the mid, moved behind the opposite best (a bid
    strictly below the best ask, an ask strictly above the best bid) and de-duplicated (shallowest kept).
    Returns ``(price_usd, depth_from_mid_bps)``, best first; empty arrays when nothing valid remains.
    """
    return ladder_prices(snapshot, spec, grid, depths_bps, reference_usd, (side,))[0]


def ladder_prices(
    snapshot: MarketSnapshot,
    spec: InstrumentSpec,
    grid: GridConfig,
    depths_bps: NDArray[np.float64],
    reference_usd: float,
    sides: tuple[Side, ...] = ("bid", "ask"),
) -> tuple[tuple[NDArray[np.float64], NDArray[np.float64]], ...]:
    """:func:`side_prices` of each of ``sides``, with one rounding pass for all of them.

    The results are those of one :func:`side_prices` call per side; the rounding
    (:meth:`InstrumentSpec.round_prices_batch`) pays NumPy's per-call overhead once instead of once per side.
    """
    offsets = depths_bps * 1e-4  # δ/1e4, shared by the sides
    raws = [_raw_prices(snapshot, spec, grid, side, offsets, reference_usd) for side in sides]
    out = [(raw, raw) for raw, _ in raws]  # an empty side stays empty
    live = [i for i, (raw, _) in enumerate(raws) if raw.size]
    if live:
        rounded = spec.round_prices_batch([raws[i][0] for i in live], [sides[i] for i in live])
        for i, px in zip(live, rounded, strict=True):
            out[i] = _behind_best(snapshot, sides[i], px, raws[i][1])
    return tuple(out)


def _raw_prices(
    snapshot: MarketSnapshot,
    spec: InstrumentSpec,
    grid: GridConfig,
    side: Side,
    offsets: NDArray[np.float64],
    reference_usd: float,
) -> tuple[NDArray[np.float64], float]:
    """A side's positive prices ``reference·(1 ∓ offsets)`` before rounding (USD), and its post-only limit (USD)."""
    sign = -1.0 if side == "bid" else 1.0
    limit = _post_only_limit(snapshot, spec, side)
    # 1 - δ/1e4 is 1 + (-δ)/1e4 bit for bit (IEEE signs)
    raw = reference_usd * ((1.0 - offsets) if side == "bid" else (1.0 + offsets))
    if raw.size and limit > 0 and sign * (raw[0] - limit) < 0:
        # the reference is past the opposite best (a position far over its limit skews it there): the ladder
        # leans in, its touch at the best post-only price and its spacing kept, instead of every level
        # collapsing onto that one price
        raw = raw + (limit - raw[0])
    raw = raw[raw > 0]
    if grid.spacing == "ticks" and raw.size:
        first = float(spec.round_prices(raw[:1], side)[0])
        raw = _tick_ladder(spec, first, side, grid) if first > 0 else raw[:0]
    return raw, limit


def _behind_best(
    snapshot: MarketSnapshot, side: Side, rounded: NDArray[np.float64], limit: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Rounded prices (USD) kept behind the opposite best, positive, distinct and best first (bids descending, asks
    ascending), and their depths from the mid (bps).

    Done on a set of Python floats: for a few dozen prices that costs half of np.minimum + np.unique.
    """
    values = rounded.tolist()
    # min(p, limit) and max(p, limit) written out (a builtin call per price costs more than the comparison)
    kept = (
        {p if p <= limit else limit for p in values} if side == "bid" else {p if p >= limit else limit for p in values}
    )
    px = np.array(sorted([p for p in kept if p > 0], reverse=side == "bid"), dtype=np.float64)
    sign = -1.0 if side == "bid" else 1.0
    return px, sign * (px - snapshot.mid_usd) / snapshot.mid_usd * 1e4


def _post_only_limit(snapshot: MarketSnapshot, spec: InstrumentSpec, side: Side) -> float:
    """The best valid post-only price of a side (USD): the highest bid strictly below the best ask, or the
    lowest ask strictly above the best bid (0.0 for a bid when no valid price exists)."""
    if side == "bid":
        limit = spec.round_price(snapshot.best_ask_usd, "bid")
        return _step(spec, limit, "bid") if limit >= snapshot.best_ask_usd else limit
    limit = spec.round_price(snapshot.best_bid_usd, "ask")
    return _step(spec, limit, "ask") if limit <= snapshot.best_bid_usd else limit


def _step(spec: InstrumentSpec, price: float, side: Side) -> float:
    """The next valid price one tick further from the mid (down for bids, up for asks); 0.0 if none exists."""
    if price <= 0:
        return 0.0
    if side == "bid":
        # the tick just below ``price`` may be finer than at ``price`` itself (e.g. 10000 -> 9999.9)
        below = price - spec.price_tick(price * (1 - 1e-12))
        return spec.round_price(below, "bid") if below > 0 else 0.0
    return spec.round_price(price + spec.price_tick(price), "ask")


def _step_ticks(spec: InstrumentSpec, price: float, side: Side, k: int) -> float:
    """The valid price ``k`` ticks further from the mid than ``price`` (down for bids, up for asks); 0.0 if none.

    The tick is constant within a decade of price (Hyperliquid's 5 significant figures), so the walk moves a whole
    decade's worth of ticks at once: at most one iteration per decade crossed, whatever ``k`` (one tick at a
    time, ``ticks_per_level = 10^6`` on 200 levels took minutes).
    """
    p = price
    while k > 0 and p > 0:
        if side == "bid":
            tau = spec.price_tick(p * (1 - 1e-12))  # the tick just below p (finer at a decade boundary)
            floor_px = math.ceil(10.0 ** math.floor(math.log10(p * (1 - 1e-12))) / tau - 1e-9) * tau
            room = round((p - floor_px) / tau)
        else:
            tau = spec.price_tick(p)
            room = round((10.0 ** (math.floor(math.log10(p)) + 1) - p) / tau)
        if room <= 0:
            p, k = _step(spec, p, side), k - 1
        elif k <= room:
            target = p - k * tau if side == "bid" else p + k * tau
            return spec.round_price(target, side) if target > 0 else 0.0
        else:
            target = p - room * tau if side == "bid" else p + room * tau
            p, k = (spec.round_price(target, side) if target > 0 else 0.0), k - room
    return p if p > 0 else 0.0


def _tick_ladder(spec: InstrumentSpec, first: float, side: Side, grid: GridConfig) -> NDArray[np.float64]:
    """``n_levels`` valid prices ``ticks_per_level`` ticks apart from ``first``, stopping at the max depth."""
    out = [first]
    limit = first * (1.0 + (-1.0 if side == "bid" else 1.0) * grid.max_depth_bps * 1e-4)
    p = first
    while len(out) < grid.n_levels:
        p = _step_ticks(spec, p, side, grid.ticks_per_level)
        if (side == "bid" and (p < limit or p <= 0)) or (side == "ask" and p > limit):
            break
        out.append(p)
    return np.array(out)
