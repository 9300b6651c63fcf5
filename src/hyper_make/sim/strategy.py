"""The quoting loop on a simulated market: every refresh, build the ladder with ``build_ladder`` (the CLI's code
path) from the simulator's state, diff it against our resting orders, place and cancel with latency."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..allocate import Allocator, make_allocator
from ..defaults import default_spec
from ..instrument import InstrumentSpec
from ..ladder import Ladder, build_ladder
from ..metrics import max_drawdown
from ..snapshot import MarketSnapshot
from . import market as mk
from .config import SimConfig
from .market import Market

#: equity points kept per path whatever its length (memory flat in run length)
EQUITY_POINTS = 200


@dataclass(frozen=True, slots=True)
class PathResult:
    """Outcome of one strategy on one market path.

    Attributes
    ----------
    allocator, seed : what ran, on which path.
    pnl_usd : final cash after the terminal exit through the book (USD).
    final_inventory_coins : position at the horizon, before the terminal exit (coins).
    peak_inventory_coins : largest ``|position|`` seen (coins).
    fills : maker fills; ``maker_volume_coins`` their total size; ``taker_volume_coins`` our exits.
    max_drawdown_usd : from the fair-value-marked equity at every market event (USD).
    effective_levels : mean over refreshes and sides of ``exp(H)`` of the resting sizes (sides with orders).
    decomposition : PnL split (USD) that sums to ``pnl_usd``.
    events : market events simulated.
    stats : other counters (pickoffs, informed fills, rejected orders, lean and slippage USD, ...).
    equity : ``(time_s, equity_usd)`` sampled at most ``EQUITY_POINTS`` times, or ``None``.
    shapes : ``(n_samples, 2·n_levels)`` resting size per level (bids deep..touch, asks touch..deep), or ``None``.
    vol_hist : market-order volume by the deepest bps reached (coins per 1-bps bin) over the run.
    tape : the trade and BBO tape (rows of ``market.TAPE_*`` columns) when recorded, else ``None``.
    """

    allocator: str
    seed: int
    pnl_usd: float
    final_inventory_coins: float
    peak_inventory_coins: float
    fills: int
    maker_volume_coins: float
    taker_volume_coins: float
    max_drawdown_usd: float
    effective_levels: float
    decomposition: dict[str, float]
    events: int
    stats: dict[str, float] = field(default_factory=dict)
    equity: tuple[np.ndarray, np.ndarray] | None = None
    shapes: np.ndarray | None = None
    vol_hist: np.ndarray | None = None
    tape: np.ndarray | None = None


def snapshot_from(market: Market, cfg: SimConfig) -> MarketSnapshot:
    """The snapshot a quoting engine would see: visible BBO and mid, the market's total σ (diffusion, jumps and
    informed moves), our inventory and limits."""
    mc, sc = cfg.market, cfg.strategy
    bid, ask = market.bbo_ticks()
    return MarketSnapshot(
        mid_usd=(bid + ask) / 2.0 * mc.tick_usd,
        best_bid_usd=bid * mc.tick_usd,
        best_ask_usd=ask * mc.tick_usd,
        sigma_frac=mc.total_sigma_bps_per_sqrt_s * 1e-4,
        sigma_horizon_s=1.0,
        inventory_coins=market.inventory_coins,
        max_position_coins=sc.max_position_coins,
        margin_usd=sc.margin_usd,
        leverage=sc.leverage,
        maker_fee_bps=mc.maker_fee_bps,
        taker_fee_bps=mc.taker_fee_bps,
        daily_volume_coins=mc.daily_volume_coins,
        volume_profile_depth_bps=sc.volume_profile_depth_bps,
        volume_profile_coins=sc.volume_profile_coins_per_s,
        ts_ns=int(market.t_s * 1e9),
    )


def apply_ladder(market: Market, ladder: Ladder, tick_usd: float, tolerance_frac: float) -> tuple[int, int]:
    """Diff the ladder against our resting orders: keep same price and size within tolerance (queue place kept),
    cancel the rest, place what is missing. Returns ``(placed, cancelled)``."""
    targets: dict[tuple[int, int], float] = {}
    for o in ladder.bids:
        targets[(1, round(o.price / tick_usd))] = o.size
    for o in ladder.asks:
        targets[(-1, round(o.price / tick_usd))] = o.size
    cancelled = 0
    for slot, side, tick, size in market.resting():
        want = targets.get((side, tick))
        if want is not None and abs(size - want) <= tolerance_frac * want:
            del targets[(side, tick)]
        else:
            market.cancel(slot)
            cancelled += 1
    placed = 0
    for (side, tick), size in targets.items():
        if market.place(side, tick, size) >= 0:
            placed += 1
    return placed, cancelled


def run_path(
    cfg: SimConfig,
    allocator: str | Allocator,
    seed: int,
    *,
    allocator_options: dict[str, Any] | None = None,
    spec: InstrumentSpec | None = None,
    record: bool = False,
    tape_rows: int = 0,
) -> PathResult:
    """Run one strategy on the market path of ``seed`` (the market and the allocator have separate streams).

    Every ``refresh_s`` the ladder is rebuilt and applied; above ``exit_threshold_frac`` of the position limit
    the excess is sent as a taker order; at the horizon the inventory is exited through the book. ``record`` keeps
    the equity curve and ladder shapes; ``tape_rows > 0`` records the market's trade and BBO tape (for calibration).
    """
    sc = cfg.strategy
    alloc = make_allocator(allocator, **(allocator_options or {})) if isinstance(allocator, str) else allocator
    name = allocator if isinstance(allocator, str) else getattr(allocator, "name", type(allocator).__name__)
    spec = spec or default_spec()
    market = Market(cfg.market, np.random.default_rng([seed, 0]), tape_rows=tape_rows)
    arng = np.random.default_rng([seed, 1])
    lstate = None
    n_ref = max(1, math.ceil(sc.horizon_s / sc.refresh_s))
    stride = max(1, n_ref // EQUITY_POINTS)
    eq_t: list[float] = []
    eq_v: list[float] = []
    shapes: list[np.ndarray] = []
    eff_sum, eff_n, events, model_impact = 0.0, 0, 0, 0.0
    n_levels = sc.ladder.grid.n_levels
    window = sc.ladder.horizon_s
    next_window = 0.0
    for i in range(n_ref):
        t = min(i * sc.refresh_s, sc.horizon_s)
        events += market.run_until(t)
        if t >= next_window:
            market.set_reference()
            next_window += window
        q = market.inventory_coins
        if abs(q) > sc.exit_threshold_frac * sc.max_position_coins and market.s[mk.S_PEND_TAKER] == 0.0:
            market.send_taker(-(q - math.copysign(sc.exit_target_frac * sc.max_position_coins, q)))
        ladder = build_ladder(snapshot_from(market, cfg), spec, alloc, config=sc.ladder, rng=arng, state=lstate)
        lstate = ladder.state  # the allocator's cross-refresh state (e.g. the entropy target) goes on explicitly
        apply_ladder(market, ladder, cfg.market.tick_usd, sc.resize_tolerance_frac)
        for side in (ladder.bid, ladder.ask):
            if side.size_used_coins > 0:
                eff_sum += side.effective_levels
                eff_n += 1
                split = side.curves.split(side.projection.sizes)
                # the model's impact over one refresh: its horizon cost prorated to the refresh interval
                horizon_cost = split["forward_impact_usd"] + split["roundtrip_impact_usd"]
                model_impact += horizon_cost * min(sc.refresh_s / sc.ladder.horizon_s, 1.0)
        if i % stride == 0:
            eq_t.append(market.t_s)
            eq_v.append(market.equity_usd)
            if record:
                row = np.zeros(2 * n_levels)
                for o in ladder.bids:
                    row[n_levels - 1 - o.level] += o.size
                for o in ladder.asks:
                    row[n_levels + o.level] += o.size
                shapes.append(row)
    events += market.run_until(sc.horizon_s)
    final_q = market.inventory_coins
    market.liquidate()
    eq_t.append(market.t_s)
    eq_v.append(market.equity_usd)
    s = market.s
    dec = market.decomposition()
    stats = {
        "pickoffs": float(s[mk.S_PICKOFFS]),
        "informed_fills": float(s[mk.S_INF_FILLS]),
        "rejected_orders": float(s[mk.S_REJECTED]),
        "lean_usd": float(s[mk.S_LEAN_USD]),
        "slippage_usd": float(s[mk.S_SLIP_USD]),
        "taker_orders": float(s[mk.S_TAKERS]),
        "maker_notional_usd": float(s[mk.S_MAKER_NOTIONAL]),
        "market_orders": float(s[mk.S_MOS]),
        "model_impact_usd": model_impact,
    }
    return PathResult(
        allocator=name,
        seed=seed,
        pnl_usd=market.equity_usd,
        final_inventory_coins=final_q,
        peak_inventory_coins=float(s[mk.S_PEAK_Q]),
        fills=int(s[mk.S_FILLS]),
        maker_volume_coins=float(s[mk.S_MAKER_VOL]),
        taker_volume_coins=float(s[mk.S_TAKER_VOL]),
        max_drawdown_usd=max(float(s[mk.S_MAX_DD]), max_drawdown(np.asarray(eq_v))),
        effective_levels=eff_sum / eff_n if eff_n else 0.0,
        decomposition=dec,
        events=events,
        stats=stats,
        equity=(np.asarray(eq_t), np.asarray(eq_v)) if record else None,
        shapes=np.asarray(shapes) if record and shapes else None,
        vol_hist=market.vol_hist.copy(),
        tape=market.tape[: int(s[mk.S_TAPE_N])].copy() if tape_rows else None,
    )
