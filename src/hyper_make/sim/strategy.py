"""The shared strategy on a simulated market: every refresh the simulator's view goes to the same refresh core as
``hyper-make run`` and the replay (:class:`~hyper_make.strategy.quoter.Quoter`), and its plan to the simulator
(:class:`~hyper_make.sim.venue.SimVenue`); at the horizon the inventory is exited through the book, so that every
path ends flat and its PnL is cash."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..allocate import Allocator, make_allocator
from ..defaults import default_spec
from ..instrument import InstrumentSpec
from ..metrics import max_drawdown
from ..snapshot import MarketSnapshot
from ..strategy.orders import CloidFactory
from ..strategy.quoter import Quoter
from ..strategy.record import LadderRecord
from . import market as mk
from ._loop import loop_reason, run_compiled
from .config import SimConfig
from .market import Market
from .venue import SimVenue

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
    learner : for an allocator that learns, its payout learner at the horizon (a
        :class:`~hyper_make.learn.PayoutLearner`: what this path learned on top of its start), else ``None``.
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
    learner: Any = None


def snapshot_from(market: Market, cfg: SimConfig) -> MarketSnapshot:
    """The strategy's prior: the visible BBO and mid, the market's total σ (diffusion, jumps and informed moves)
    and daily volume, our inventory and limits. The strategy then estimates σ and volume from what it sees."""
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


def initial_learner(cfg: SimConfig, allocator: Allocator, spec: InstrumentSpec | None = None) -> Any:
    """The payout learner a path of ``allocator`` starts from when none is given: the prior of the ladder's models
    at the market's fee and σ, exactly what the refresh core builds (``None`` for an allocator that does not
    learn)."""
    if not getattr(allocator, "learns", False):
        return None
    mc = cfg.market
    return allocator.new_learner(  # type: ignore[attr-defined]
        (spec or default_spec()).coin,
        cfg.strategy.ladder,
        maker_fee_bps=mc.maker_fee_bps,
        sigma_frac_per_sqrt_s=mc.total_sigma_bps_per_sqrt_s * 1e-4,
        max_position_coins=cfg.strategy.max_position_coins,
    )


def run_path(
    cfg: SimConfig,
    allocator: str | Allocator,
    seed: int,
    *,
    allocator_options: dict[str, Any] | None = None,
    spec: InstrumentSpec | None = None,
    record: bool = False,
    tape_rows: int = 0,
    learner: Any = None,
    compiled: bool = True,
) -> PathResult:
    """Run one strategy on the market path of ``seed`` (the market, the strategy's draws and its order ids have
    separate streams).

    Every ``refresh_s`` the refresh core (``cfg.strategy.quoter``) plans against the simulator's view and the plan
    is applied; a risk stop cancels everything and ends the quoting (the path runs on to the horizon); at the horizon
    the inventory is exited through the book. ``record`` keeps the equity curve and ladder shapes; ``tape_rows > 0``
    records the market's trade and BBO tape (for calibration). ``learner`` (an allocator that learns): the
    posterior the path starts from (copied: the caller's object is not changed, so paths stay independent); the
    path's final learner is :attr:`PathResult.learner`.

    With ``compiled`` (the default) and a refresh core that compiles (the fast path on, an allocator that does not
    learn, a fixed touch: :func:`~hyper_make.fast._refresh.loop_reason`), the path runs compiled, thousands of refreshes
    a call (:mod:`hyper_make.sim._loop`, the same fills and PnL as the Python loop); otherwise the loop is Python.
    """
    sc = cfg.strategy
    alloc = make_allocator(allocator, **(allocator_options or {})) if isinstance(allocator, str) else allocator
    name = allocator if isinstance(allocator, str) else getattr(allocator, "name", type(allocator).__name__)
    spec = spec or default_spec()
    n_ref = max(1, math.ceil(sc.horizon_s / sc.refresh_s))
    stride = max(1, n_ref // EQUITY_POINTS)

    def setup() -> tuple[Market, SimVenue, Quoter, LadderRecord]:
        market = Market(cfg.market, np.random.default_rng([seed, 0]), tape_rows=tape_rows)
        quoter = Quoter(
            spec=spec,
            allocator=alloc,
            prior=snapshot_from(market, cfg),
            ladder=sc.ladder,
            config=sc.quoter,
            cloids=CloidFactory(seed),
            rng=np.random.default_rng([seed, 1]),
            learner=copy.deepcopy(learner),
        )
        rec = LadderRecord(
            sc.ladder.grid.n_levels,
            refresh_s=sc.refresh_s,
            horizon_s=sc.ladder.horizon_s,
            shapes_every=stride if record else 0,
        )
        return market, SimVenue(market, margin_usd=sc.margin_usd), quoter, rec

    market, venue, quoter, rec = setup()
    ran = None
    if compiled and not loop_reason(quoter):
        ran = run_compiled(
            market, venue, quoter, rec, refresh_s=sc.refresh_s, horizon_s=sc.horizon_s, n_ref=n_ref, stride=stride
        )
        if ran is None:  # the Python loop raises the reference's error (or runs the path the kernel could not)
            market, venue, quoter, rec = setup()
    if ran is not None:
        events, eq_t, eq_v, stopped = ran
        stop = "stopped" if stopped else ""
    else:
        events, eq_t, eq_v, stop = _python_loop(market, venue, quoter, rec, sc, n_ref, stride)
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
        "model_impact_usd": rec.model_impact_usd,
        "risk_stops": float(bool(stop)),
        **rec.learned_usd,
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
        effective_levels=rec.mean_effective_levels,
        decomposition=dec,
        events=events,
        stats=stats,
        equity=(np.asarray(eq_t), np.asarray(eq_v)) if record else None,
        shapes=rec.shapes if record and rec.refreshes else None,
        vol_hist=market.vol_hist.copy(),
        tape=market.tape[: int(s[mk.S_TAPE_N])].copy() if tape_rows else None,
        learner=quoter.learner,
    )


def _python_loop(
    market: Market, venue: SimVenue, quoter: Quoter, rec: LadderRecord, sc: Any, n_ref: int, stride: int
) -> tuple[int, list[float], list[float], str]:
    """The strategy loop in Python (the reference of :mod:`._loop`): the market to each refresh, one
    :meth:`Quoter.drive` per refresh until a risk stop, the equity sampled every ``stride`` refreshes, the market run to
    the horizon. Returns ``(events, equity times, equity values, stop)``."""
    eq_t: list[float] = []
    eq_v: list[float] = []
    events = 0
    window = sc.ladder.horizon_s
    next_window = 0.0
    stop = ""
    for i in range(n_ref):
        t = min(i * sc.refresh_s, sc.horizon_s)
        events += market.run_until(t)
        if t >= next_window:
            market.set_reference()
            next_window += window
        if not stop:
            t_next = min((i + 1) * sc.refresh_s, sc.horizon_s)

            def wait(dt_s: float, t: float = t, t_next: float = t_next) -> bool:
                nonlocal events
                if t + dt_s >= t_next:
                    return False
                events += market.run_until(t + dt_s)
                return True

            r = quoter.drive(venue, wait)
            stop = r.stop
            if r.ladder is not None:
                rec.add(r.ladder)
        if i % stride == 0:
            eq_t.append(market.t_s)
            eq_v.append(market.equity_usd)
    events += market.run_until(sc.horizon_s)
    return events, eq_t, eq_v, stop
