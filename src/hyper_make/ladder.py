"""The full pipeline for one refresh: snapshot -> levels -> economics -> allocator -> stealth -> projection -> Ladder.

``build_ladder(snapshot, spec, allocator, config=..., rng=...)`` is the one code path shared by the CLI, the
simulator's strategy loop and the replay backtester.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from ._json import to_jsonable
from ._validate import PYDANTIC_CONFIG, check_choice, check_real
from .allocate import (
    ALLOCATORS,
    AllocationResult,
    Allocator,
    LadderContext,
    SideProblem,
    empty_result,
    make_allocator,
)
from .economics import (
    ExponentialAdverse,
    ExponentialIntensity,
    FirstPassage,
    LevelCurves,
    TableAdverse,
    TableFill,
    build_curves_batch,
)
from .economics.impact import SquareRootImpact
from .errors import InvalidParameterError
from .instrument import MAX_LOTS, InstrumentSpec, Side
from .levels import GridConfig, depth_grid_bps, glft_touch_depth_bps, ladder_prices
from .projection import Dropped, Order, Projection, project_side
from .snapshot import MarketSnapshot
from .stealth import StealthConfig, apply_stealth

FillConfig = ExponentialIntensity | FirstPassage | TableFill
AdverseConfig = ExponentialAdverse | TableAdverse


@dataclass(frozen=True, kw_only=True, slots=True)
class LadderConfig:
    """Everything about the ladder that is not market state.

    Parameters
    ----------
    grid : GridConfig
        Levels per side and their spacing.
    fill : ExponentialIntensity | FirstPassage | TableFill
        Fill-probability model.
    adverse : ExponentialAdverse | TableAdverse
        Adverse-selection model.
    impact : SquareRootImpact
        Self-impact model (enters every allocator's expected PnL; the impact allocator optimises it).
    horizon_s : float, default 30.0
        Quote horizon ``h`` (seconds) over which fills, adverse selection and impact are evaluated, ``> 0``.
    risk_aversion : float, default 0.02
        CARA risk aversion ``γ`` (1/USD, inventory in coins) for the reservation price
        ``r = mid - q·γ·σ²·h`` (σ in USD per √s) and the GLFT touch; ``>= 0``.
    level_cap_frac : float, default 0.25
        No level above this fraction of its side's budget, in ``(0, 1]``.
    stealth : StealthConfig
        Stealth stage between the allocator and the projection (default ``mode = "off"``): Dirichlet noise
        around the allocation or posterior draws of the curves + exact solve; its cost is in the diagnostics.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    grid: GridConfig = field(default_factory=GridConfig)
    fill: FillConfig = field(default_factory=ExponentialIntensity)
    adverse: AdverseConfig = field(default_factory=ExponentialAdverse)
    impact: SquareRootImpact = field(default_factory=SquareRootImpact)
    horizon_s: float = 30.0
    risk_aversion: float = 0.02
    level_cap_frac: float = 0.25
    stealth: StealthConfig = field(default_factory=StealthConfig)

    def __post_init__(self) -> None:
        # nested parts must be their dataclasses: a dict was accepted here and failed deep inside the build
        for key, want in _NESTED.items():
            value = getattr(self, key)
            if not isinstance(value, want):
                names = " or ".join(t.__name__ for t in want) if isinstance(want, tuple) else want.__name__
                raise InvalidParameterError(
                    f"'ladder.{key}' must be a {names}; got {type(value).__name__} (a TOML table is converted by "
                    "hyper_make.load_config; in Python build the dataclass, e.g. GridConfig(n_levels=5))"
                )
        check_real("ladder.horizon_s", self.horizon_s, lo=0.0, lo_open=True, hi=86_400.0, unit="s")
        check_real("ladder.risk_aversion", self.risk_aversion, lo=0.0, unit="1/USD")
        check_real("ladder.level_cap_frac", self.level_cap_frac, lo=0.0, lo_open=True, hi=1.0)


_NESTED: dict[str, type | tuple[type, ...]] = {
    "grid": GridConfig,
    "fill": (ExponentialIntensity, FirstPassage, TableFill),
    "adverse": (ExponentialAdverse, TableAdverse),
    "impact": SquareRootImpact,
    "stealth": StealthConfig,
}


@dataclass(frozen=True, slots=True)
class LadderState:
    """The allocator's state carried from one refresh to the next, per side (see ``SideProblem.state``).

    Pass a ladder's ``state`` to the next :func:`build_ladder` of the same market; a call that does not (a warm-up,
    a what-if) changes nothing. Stateless allocators leave both ``None``.

    Attributes
    ----------
    bid, ask : the allocator's state after the last refresh of that side (``None``: fresh start or stateless).
    """

    bid: object | None = None
    ask: object | None = None

    def side(self, side: Side) -> object | None:
        """The state of ``"bid"`` or ``"ask"``."""
        return self.bid if side == "bid" else self.ask


@dataclass(frozen=True, slots=True)
class SideBudget:
    """How much one side may rest (coins) and what limits it.

    Attributes
    ----------
    budget_coins : ``min(position_room, margin_capacity)`` (coins), ``>= 0``.
    binding : ``"position"`` or ``"margin"``: the smaller of the two.
    position_room_coins : bids ``max_position - q``, asks ``max_position + q`` (floored at 0).
    margin_capacity_coins : ``margin·leverage / mid`` plus what the side would reduce of the position.
    reason : why the budget is zero, or ``""``.
    """

    budget_coins: float
    binding: Literal["position", "margin"]
    position_room_coins: float
    margin_capacity_coins: float
    reason: str = ""


def side_budget(snapshot: MarketSnapshot, side: Side, reserved_coins: float = 0.0) -> SideBudget:
    """A side's budget from the position limit and the margin (orders that reduce the position need none).

    ``reserved_coins`` (coins) is taken off the position room: size that may still fill on that side outside the
    ladder (e.g. orders being replaced whose last fills are not confirmed yet).
    """
    q = snapshot.inventory_coins
    room = snapshot.max_position_coins - q if side == "bid" else snapshot.max_position_coins + q
    room = max(room - reserved_coins, 0.0)
    reducing = max(-q, 0.0) if side == "bid" else max(q, 0.0)
    margin_cap = snapshot.margin_usd * snapshot.leverage / snapshot.mid_usd + reducing
    binding: Literal["position", "margin"] = "position" if room <= margin_cap else "margin"
    budget = min(room, margin_cap)
    reason = ""
    if budget <= 0:
        reason = f"position limit reached: inventory {q:g} coins at max_position {snapshot.max_position_coins:g} coins"
        if reserved_coins > 0:
            reason += f" with {reserved_coins:g} coins reserved"
    return SideBudget(budget, binding, room, margin_cap, reason)


def reservation_price(snapshot: MarketSnapshot, config: LadderConfig) -> float:
    """Inventory-skewed reservation price ``r = mid - q·γ·σ²·h`` (USD), σ in USD per √s.

    The skew is clamped to ``±grid.max_depth_bps`` of the mid: beyond that the ladder would not straddle the
    book at all (and, for extreme inventories, ``r`` could turn negative).
    """
    sigma2 = snapshot.sigma_price_per_sqrt_s() ** 2
    skew = snapshot.inventory_coins * config.risk_aversion * sigma2 * config.horizon_s
    bound = snapshot.mid_usd * config.grid.max_depth_bps * 1e-4
    return snapshot.mid_usd - min(max(skew, -bound), bound)


@dataclass(frozen=True, slots=True, eq=False)
class SideResult:
    """One side of a built ladder: its budget, curves, the allocator's answer and the final orders."""

    side: Side
    budget: SideBudget
    curves: LevelCurves
    allocation: AllocationResult
    projection: Projection
    notes: tuple[str, ...] = ()
    """What a reader of the numbers must know, e.g. that the expected PnL excludes self-impact (no volume)."""

    @property
    def orders(self) -> tuple[Order, ...]:
        """Final orders, best first."""
        return self.projection.orders

    @property
    def size_used_coins(self) -> float:
        """Total size of the final orders (coins)."""
        return self.projection.total_coins

    @property
    def expected_pnl_usd(self) -> float:
        """``Σ E[PnL]_i`` of the final orders under the side's curves, impact included (USD)."""
        return float(self.curves.value(self.projection.sizes).sum()) if self.curves.n else 0.0

    @property
    def entropy_nats(self) -> float:
        """Entropy of the final size shares (nats)."""
        from .allocate import entropy_nats

        return entropy_nats(self.projection.sizes)

    @property
    def effective_levels(self) -> float:
        """``exp(entropy)`` of the final sizes (0 when empty)."""
        return float(np.exp(self.entropy_nats)) if self.size_used_coins > 0 else 0.0

    @property
    def empty_reason(self) -> str:
        """Why no order rests on this side, or ``""``."""
        if self.orders:
            return ""
        if self.budget.reason:
            return self.budget.reason
        if self.allocation.binding == "empty" and self.allocation.message:
            return self.allocation.message
        if self.projection.dropped:
            return "every level fell below the exchange's minimum order value after rounding"
        return "the allocator placed nothing on this side"

    @property
    def dropped(self) -> tuple[Dropped, ...]:
        """Levels removed by the exchange projection, with reasons."""
        return self.projection.dropped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (see the README's schema)."""
        a = self.allocation
        return {
            "budget": self.budget.budget_coins,
            "budget_binding": self.budget.binding,
            "size_used": self.size_used_coins,
            "entropy": self.entropy_nats,
            "effective_levels": self.effective_levels,
            "expected_pnl": self.expected_pnl_usd,
            "expected_pnl_split": self.curves.split(self.projection.sizes) if self.curves.n else {},
            "shadow_price": None if np.isnan(a.shadow_price) else a.shadow_price,
            "binding": a.binding,
            "n_levels": self.curves.n,
            "n_orders": len(self.orders),
            "empty_reason": self.empty_reason or None,
            "message": a.message,
            "notes": list(self.notes),
            "diagnostics": to_jsonable(a.diagnostics),
            "dropped": [
                {"level": d.level, "price": d.price, "reason": d.reason, "notional": d.notional_usd}
                for d in self.dropped
            ],
        }


@dataclass(frozen=True, slots=True, eq=False)
class Ladder:
    """A two-sided ladder ready for the exchange, with per-side diagnostics.

    Attributes
    ----------
    coin, sz_decimals, min_notional_usd : from the instrument spec.
    mid_usd : the snapshot's mid (USD); ``reservation_usd`` the inventory-skewed price quotes centre on.
    allocator : the allocator's registered name.
    bid, ask : :class:`SideResult` per side.
    timings_ns : wall time per pipeline stage (ns): ``grid`` (both sides' prices), ``economics`` (both sides'
        curves and minimum orders), ``allocate`` (budgets, caps and the allocator; also per side as ``allocate_bid``
        and ``allocate_ask``), ``stealth``, ``projection``, and ``total``.
    state : the allocator's state after this build, per side: pass it as ``build_ladder(..., state=)`` on the
        next refresh of the same market.
    """

    coin: str
    sz_decimals: int
    min_notional_usd: float
    mid_usd: float
    reservation_usd: float
    allocator: str
    bid: SideResult
    ask: SideResult
    timings_ns: dict[str, int]
    state: LadderState = field(default_factory=LadderState)

    @property
    def bids(self) -> tuple[Order, ...]:
        """Bid orders, highest price first."""
        return self.bid.orders

    @property
    def asks(self) -> tuple[Order, ...]:
        """Ask orders, lowest price first."""
        return self.ask.orders

    def side(self, side: Side) -> SideResult:
        """The :class:`SideResult` of ``"bid"`` or ``"ask"``."""
        return self.bid if side == "bid" else self.ask

    def to_dict(self) -> dict[str, Any]:
        """The ladder as one JSON-ready dict (schema in the README)."""

        def orders(os: tuple[Order, ...]) -> list[dict[str, Any]]:
            return [{"price": o.price, "size": o.size, "depth_bps": o.depth_bps, "level": o.level} for o in os]

        return {
            "coin": self.coin,
            "mid": self.mid_usd,
            "reservation_price": self.reservation_usd,
            "sz_decimals": self.sz_decimals,
            "min_notional": self.min_notional_usd,
            "allocator": self.allocator,
            "bids": orders(self.bids),
            "asks": orders(self.asks),
            "sides": {"bid": self.bid.to_dict(), "ask": self.ask.to_dict()},
            "timings_us": {k: v / 1e3 for k, v in self.timings_ns.items()},
        }


def build_ladder(
    snapshot: MarketSnapshot,
    spec: InstrumentSpec,
    allocator: Allocator | str,
    *,
    config: LadderConfig | None = None,
    rng: np.random.Generator | int | None = None,
    reserved_coins: Mapping[str, float] | None = None,
    state: LadderState | None = None,
    learner: Any = None,
    interval_s: float | None = None,
) -> Ladder:
    """Build the two-sided ladder for one refresh.

    Parameters
    ----------
    snapshot : market and account state.
    spec : exchange rules of the instrument.
    allocator : any allocator (see :func:`hyper_make.make_allocator`), or a registered name (``"impact"``, ...),
        which is built with its default options.
    config : ladder configuration; defaults to :class:`LadderConfig()`.
    rng : a NumPy ``Generator`` or a non-negative integer seed (the only source of randomness); ``None`` = seed 0.
    reserved_coins : per side (``"bid"``, ``"ask"``), coins taken off that side's position room (see
        :func:`side_budget`); the quoting loop reserves the orders it is replacing. Default none.
    state : the previous ladder's ``state`` for this market (the allocator's cross-refresh state, e.g. the
        entropy allocator's smoothed target); ``None`` = a fresh start. Nothing else carries over between calls.
    learner : the payout learner (:class:`~hyper_make.learn.PayoutLearner`) the ``learned`` allocator takes its
        curves from; ``None`` = a learner that has seen nothing (the prior from ``config``'s models). Other
        allocators ignore it.
    interval_s : time to the next refresh (s), ``> 0``: the interval whose fills the ``learned`` allocator values
        (the refresh core passes the one it measures); ``None`` = the allocator's own ``interval_s``.

    Returns
    -------
    Ladder
        Orders per side satisfying: valid prices and lot sizes, every order at or above the minimum order
        value, no duplicate prices, bids strictly below asks and behind the opposite best, each side's total
        at most its budget. ``Ladder.state`` is the state to pass to the next build.

    Raises
    ------
    InvalidParameterError
        A wrong type for any argument (named), a side budget above 2^53 lots, or a stealth stage set twice (an
        ``impact-dirichlet``/``impact-posterior`` allocator with ``config.stealth.mode`` on).
    """
    if not isinstance(snapshot, MarketSnapshot):
        raise InvalidParameterError(f"'snapshot' must be a MarketSnapshot; got {type(snapshot).__name__}")
    if not isinstance(spec, InstrumentSpec):
        raise InvalidParameterError(f"'spec' must be an InstrumentSpec; got {type(spec).__name__}")
    alloc = _as_allocator(allocator)
    cfg = _as_config(config)
    gen = _as_generator(rng)
    if state is not None and not isinstance(state, LadderState):
        raise InvalidParameterError(f"'state' must be a LadderState (a Ladder's .state) or None; got {state!r}")
    prev = state if state is not None else _FRESH
    two_sided = bool(getattr(alloc, "two_sided", False))
    if interval_s is not None:
        check_real("interval_s", interval_s, lo=0.0, lo_open=True, hi=86_400.0, unit="s")
    name = getattr(alloc, "name", type(alloc).__name__)
    _check_one_stealth_stage(alloc, name, cfg.stealth)
    reserve = dict(reserved_coins or {})
    for k, v in reserve.items():
        check_choice("reserved_coins side", k, ("bid", "ask"))
        check_real(f"reserved_coins[{k!r}]", v, lo=0.0, unit="coins")
    # the impact model is evaluated only if it can be: an allocator that never reads it must not fail on its inputs
    impact_missing = cfg.impact.missing_input(snapshot)
    needs_impact = ""
    if impact_missing:
        if getattr(alloc, "needs_impact", True):
            needs_impact = f"allocator {name!r} needs the impact model: {impact_missing}"
        elif cfg.stealth.mode == "posterior":
            needs_impact = f"the stealth stage 'posterior' needs the impact model: {impact_missing}"
    notes = (f"expected PnL excludes self-impact: {impact_missing}",) if impact_missing else ()
    t0 = time.perf_counter_ns()
    ref = reservation_price(snapshot, cfg)
    touch = cfg.grid.min_depth_bps
    if cfg.grid.touch == "glft":
        kappa = cfg.fill.kappa_per_bps if isinstance(cfg.fill, ExponentialIntensity) else 0.3
        touch = glft_touch_depth_bps(cfg.risk_aversion, kappa, snapshot.mid_usd, snapshot.maker_fee_bps)
    depths = _depth_grid(cfg.grid, touch)
    timings = {"grid": 0, "economics": 0, "allocate": 0, "stealth": 0, "projection": 0}
    sides: dict[str, SideResult] = {}
    ta = time.perf_counter_ns()
    grids = dict(zip(("bid", "ask"), ladder_prices(snapshot, spec, cfg.grid, depths, ref), strict=True))
    tb = time.perf_counter_ns()
    # both sides in one evaluation of the models (elementwise in depth, so each side's numbers are its own).
    # A fill's value is measured from the reservation price: selling when long (buying when short) is worth
    # mid - r per coin more than at a flat position, adding to the position that much less.
    all_curves = build_curves_batch(
        (grids["bid"][1], grids["ask"][1]),
        (grids["bid"][0], grids["ask"][0]),
        snapshot,
        fill=cfg.fill,
        adverse=cfg.adverse,
        horizon_s=cfg.horizon_s,
        impact=None if impact_missing else cfg.impact,
        inventory_usd=(ref - snapshot.mid_usd, snapshot.mid_usd - ref),
    )
    # both sides' minimum orders (coins) in one call: elementwise in price, as the curves
    n_bid = all_curves[0].n
    mins = spec.min_size(np.concatenate((grids["bid"][0], grids["ask"][0])))
    min_sizes = {"bid": mins[:n_bid], "ask": mins[n_bid:]}
    tc = time.perf_counter_ns()
    timings["grid"], timings["economics"] = tb - ta, tc - tb
    problems: dict[str, SideProblem] = {}
    budgets: dict[str, SideBudget] = {}
    results: dict[str, AllocationResult] = {}
    for side, curves in zip(("bid", "ask"), all_curves, strict=True):
        tc = time.perf_counter_ns()
        budget = side_budget(snapshot, side, reserve.get(side, 0.0))
        if budget.budget_coins > MAX_LOTS * spec.lot_size:
            raise InvalidParameterError(
                f"{side} side budget {budget.budget_coins:.6g} coins is {budget.budget_coins / spec.lot_size:.4g} "
                f"lots of {spec.lot_size:g} coins; at most 2^53 = {MAX_LOTS:.4g} lots are supported: lower "
                f"'max_position_coins' ({snapshot.max_position_coins:g} coins) or 'margin_usd' "
                f"({snapshot.margin_usd:g} USD)"
            )
        caps = np.empty(curves.n)  # np.empty + fill: np.full's values without its Python layer
        caps.fill(cfg.level_cap_frac * budget.budget_coins)
        side_state = prev.side(side)
        problems[side] = problem = SideProblem(
            side=side,
            curves=curves,
            budget_coins=budget.budget_coins,
            caps_coins=caps,
            lot_coins=spec.lot_size,
            min_size_coins=min_sizes[side],
            regime=snapshot.regime,
            state=side_state,
        )
        budgets[side] = budget
        if budget.budget_coins <= 0:
            results[side] = empty_result(curves.n, budget.reason, side_state)
        elif curves.n == 0:
            results[side] = empty_result(0, "no valid price level on this side", side_state)
        elif needs_impact:
            results[side] = empty_result(curves.n, needs_impact, side_state)
        elif not two_sided:
            results[side] = alloc.allocate(problem, gen)
        timings[f"allocate_{side}"] = time.perf_counter_ns() - tc
    if two_sided:
        # both sides in one solve (the inventory term couples them); a side already settled above (no budget,
        # no level) enters with a zero budget, so the other is solved with it empty
        tc = time.perf_counter_ns()
        ctx = LadderContext.of(snapshot, spec.coin, cfg, interval_s, learner)
        pb, pa = (
            problems[s] if s not in results else dataclasses.replace(problems[s], budget_coins=0.0)
            for s in ("bid", "ask")
        )
        both = alloc.allocate_both(pb, pa, ctx, gen)  # type: ignore[attr-defined]
        dt = (time.perf_counter_ns() - tc) // 2
        for side, res, lc in (("bid", both.bid, both.bid_curves), ("ask", both.ask, both.ask_curves)):
            timings[f"allocate_{side}"] += dt
            if side not in results:
                results[side] = res
                problems[side] = dataclasses.replace(problems[side], curves=lc)
        notes = (*notes, LEARNED_NOTE)
    for side in ("bid", "ask"):
        td = time.perf_counter_ns()
        problem, budget, alloc_res = problems[side], budgets[side], results[side]
        prices, depth_mid = grids[side]
        if cfg.stealth.mode != "off" and alloc_res.binding != "empty":
            alloc_res = apply_stealth(problem, alloc_res, cfg.stealth, gen)
        tstealth = time.perf_counter_ns()
        timings["stealth"] += tstealth - td
        td = tstealth
        proj = project_side(
            side,
            prices,
            depth_mid,
            alloc_res.sizes,
            budget.budget_coins,
            problem.caps_coins,
            spec,
            min_size_coins=problem.min_size_coins,
        )
        te = time.perf_counter_ns()
        sides[side] = SideResult(side, budget, problem.curves, alloc_res, proj, notes)
        timings["allocate"] += timings[f"allocate_{side}"]
        timings["projection"] += te - td
    timings["total"] = time.perf_counter_ns() - t0
    return Ladder(
        coin=spec.coin,
        sz_decimals=spec.sz_decimals,
        min_notional_usd=spec.min_notional_usd,
        mid_usd=snapshot.mid_usd,
        reservation_usd=ref,
        allocator=name,
        bid=sides["bid"],
        ask=sides["ask"],
        timings_ns=timings,
        state=LadderState(bid=sides["bid"].allocation.state, ask=sides["ask"].allocation.state),
    )


_FRESH = LadderState()
#: How to read a learned side's PnL split (its curves are the learner's, not the models').
LEARNED_NOTE = (
    "learned curves: 'spread capture' is the learned markout per filled coin (net of fees and adverse selection), "
    "'forward impact' the learned size penalty"
)


@functools.lru_cache(maxsize=64)
def _depth_grid(grid: GridConfig, touch_bps: float) -> NDArray[np.float64]:
    """:func:`depth_grid_bps`, cached: a fixed touch gives the same depths (bps) at every refresh. Read-only."""
    depths = depth_grid_bps(grid, touch_bps)
    depths.flags.writeable = False
    return depths


def _as_allocator(allocator: Any) -> Allocator:
    """An allocator instance, or one built from a registered name; anything else is named in the error."""
    if isinstance(allocator, str):
        return make_allocator(allocator)
    if not callable(getattr(allocator, "allocate", None)):
        raise InvalidParameterError(
            f"'allocator' must be an allocator (e.g. make_allocator('impact')) or a registered name, one of "
            f"{sorted(ALLOCATORS)}; got {allocator!r}"
        )
    return allocator  # type: ignore[no-any-return]


def _as_config(config: Any) -> LadderConfig:
    if config is None:
        return LadderConfig()
    if not isinstance(config, LadderConfig):
        raise InvalidParameterError(
            f"'config' must be a LadderConfig or None; got {type(config).__name__} (build one with "
            "LadderConfig(grid=GridConfig(...), ...), or read a TOML file with hyper_make.load_config(path).ladder)"
        )
    return config


def _as_generator(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise InvalidParameterError(f"'rng' must be a numpy Generator, a non-negative integer seed or None; got {rng!r}")


def _check_one_stealth_stage(allocator: Allocator, name: str, stage: StealthConfig) -> None:
    """Refuse a ladder stealth stage on top of an allocator that applies its own (its cost would be wrong)."""
    if getattr(allocator, "learns", False) and stage.mode == "posterior":
        raise InvalidParameterError(
            f"allocator {name!r} already solves for a posterior draw of its learned curves every refresh "
            "(Thompson sampling); [ladder.stealth] mode 'posterior' would draw the model's curves instead: use "
            "mode 'off' or 'dirichlet'"
        )
    own = getattr(allocator, "stealth", None)
    if stage.mode != "off" and isinstance(own, StealthConfig) and own.mode != "off":
        raise InvalidParameterError(
            f"stealth is set twice: allocator {name!r} applies stealth mode {own.mode!r} itself and "
            f"[ladder.stealth] mode is {stage.mode!r}; use allocator 'impact' with [ladder.stealth], or set "
            '[ladder.stealth] mode = "off"'
        )
