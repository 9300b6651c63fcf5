"""The refresh core: one strategy for every venue (the simulator, the replay, and the live loop).

Every refresh, :meth:`Quoter.refresh` takes a :class:`~hyper_make.strategy.venue.VenueView` and returns the plan to
apply:

1. **Estimate** (:mod:`.estimate`): σ from the mids at the refreshes, traded volume from the venue's report, both
   exponentially weighted and shrunk to the configured prior; our fills' markouts per ladder level
   (:class:`FillStats`). For an allocator that learns (``learned``), the interval's resting coin-seconds and the
   fills whose markouts have settled go to its payout learner (:mod:`.learning`), the same on every venue.
2. **Guards**: nothing is quoted (every resting order is cancelled) while the venue is halted, has no book, or
   its book is older than ``stale_after_s``; a drawdown past ``max_drawdown_usd`` or a position past the limit is
   a risk stop (everything cancelled, :attr:`Refresh.stop` says why).
3. **Ladder**: :func:`~hyper_make.ladder.build_ladder` on the estimated snapshot (with the learner and the measured
   refresh interval), with the allocator's state carried from the previous refresh and the orders that may still
   fill (pending cancels and replacements) reserved out of each side's room. By default it runs as the compiled fast
   path (:class:`~hyper_make.fast.FastLadder`, the same orders as arrays, no ``Ladder`` object per refresh);
   ``QuoterConfig.fast_path = false`` runs the Python reference.
4. **Diff**: :func:`~hyper_make.strategy.orders.plan_orders` (requote thresholds, position guard). If the plan's
   worst case (position plus every resting order, the ones being cancelled or replaced counted as still live, as
   if all of them filled) could pass the limit, the additions that do not fit (new orders and replacements, the
   deepest first) are *deferred*: a replaced order is cancelled now and its replacement placed by
   :meth:`Quoter.release` once the cancels have taken effect (the driver calls it ``again_after_s`` later, two
   round trips), so that the limit holds even if the old and the new orders both fill.
5. **Last look**: new prices within ``alo_guard_sigmas·σ·√τ`` of the opposite best (τ the book's age plus the
   request latency, at least the interval between book updates), or at or through one of our orders whose request
   went unanswered, are dropped: a post-only order there would likely be rejected on arrival.

The venue applies the plan; acknowledgements, rejections and fills come back in later views. Nothing here knows
which venue it runs on, so what the simulator or the replay measures is what ``hyper-make run`` does.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, ClassVar

import numpy as np

from .._validate import PYDANTIC_CONFIG, check_real
from ..allocate import Allocator
from ..errors import InvalidParameterError
from ..instrument import InstrumentSpec, Side
from ..ladder import Ladder, LadderConfig, LadderState, build_ladder
from ..snapshot import MarketSnapshot
from .estimate import EstimatorConfig, MarketEstimator
from .learning import LearningTap
from .orders import (
    Action,
    Cancel,
    CloidFactory,
    Modify,
    OrderManagerConfig,
    OrderPlan,
    Place,
    RestingOrder,
    assemble_plan,
    crossing_cloids,
    demote,
    plan_orders,
)
from .venue import Venue, VenueFill, VenueView

_EPS = 1e-9
#: Markout horizons (s) the fill statistics keep by default.
MARKOUT_HORIZONS_S = (1.0, 5.0, 30.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class QuoterConfig:
    """The strategy's limits and guards, the same on every venue.

    The position limit is the prior snapshot's ``max_position_coins``: never passed, even if every resting order
    fills.

    Parameters
    ----------
    orders : OrderManagerConfig
        Requote thresholds (``requote_price_bps``, ``requote_size_frac``), batch length and reduce-only marking
        (off by default: a reduce-only order is rejected when fills move the position before it arrives).
    estimator : EstimatorConfig
        Half-life and prior weight of the σ and volume estimates.
    alo_guard_sigmas : float, default 3.0
        Drop a new price closer to the opposite best than ``z·σ·√τ`` (``z`` this value, σ the mid's volatility per
        √s, τ the book's age plus the request latency, at least the interval between book updates), ``[0, 100]``.
    stale_after_s : float, default 5.0
        Quote nothing (cancel everything) when the book is older than this (s), ``> 0``.
    max_drawdown_usd : float or None, default 1000
        Risk stop when the PnL falls this far (USD) below its running peak, ``> 0``; ``None``: no drawdown stop.
    markout_horizons_s : tuple of float, default (1, 5, 30)
        Horizons (s) of the fill statistics' markouts, each ``> 0``.
    fast_path : bool, default True
        Build each refresh's ladder with the compiled fast path (:class:`~hyper_make.fast.FastLadder`: the same
        orders as :func:`~hyper_make.build_ladder`, arrays out); ``false`` runs the Python reference pipeline.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    orders: OrderManagerConfig = field(default_factory=OrderManagerConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    alo_guard_sigmas: float = 3.0
    stale_after_s: float = 5.0
    max_drawdown_usd: float | None = 1_000.0
    markout_horizons_s: tuple[float, ...] = MARKOUT_HORIZONS_S
    fast_path: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.orders, OrderManagerConfig):
            raise InvalidParameterError(f"'quoter.orders' must be an OrderManagerConfig; got {type(self.orders)}")
        if not isinstance(self.estimator, EstimatorConfig):
            raise InvalidParameterError(f"'quoter.estimator' must be an EstimatorConfig; got {type(self.estimator)}")
        check_real("quoter.alo_guard_sigmas", self.alo_guard_sigmas, lo=0.0, hi=100.0)
        check_real("quoter.stale_after_s", self.stale_after_s, lo=0.0, lo_open=True, unit="s")
        if self.max_drawdown_usd is not None:
            check_real("quoter.max_drawdown_usd", self.max_drawdown_usd, lo=0.0, lo_open=True, unit="USD")
        if not self.markout_horizons_s:
            raise InvalidParameterError("'quoter.markout_horizons_s' must hold at least one horizon (s)")
        for h in self.markout_horizons_s:
            check_real("quoter.markout_horizons_s", h, lo=0.0, lo_open=True, hi=86_400.0, unit="s")
        if not isinstance(self.fast_path, bool):
            raise InvalidParameterError(f"'quoter.fast_path' must be true or false; got {self.fast_path!r}")


@dataclass(frozen=True, slots=True, eq=False)
class Refresh:
    """What one refresh decided.

    Attributes
    ----------
    plan : the actions to apply (cancels, modifies, new orders, in batches).
    ladder : the ladder the plan reaches, or ``None`` when nothing was quoted (a pause or a risk stop): on the fast
        path (``QuoterConfig.fast_path``) a :class:`~hyper_make.fast.FastBuild` (the orders as arrays; its
        ``.ladder()`` builds the full :class:`~hyper_make.ladder.Ladder`), else the reference pipeline's ``Ladder``.
    state : ``"quoting"``, or why nothing was quoted (``"waiting for the book"``, ``"stale book"``, the venue's
        halt reason, or the risk stop).
    stop : the risk stop (``"max_drawdown"``, ``"position_limit"``), or ``""``: the driver stops the run.
    crossing_skipped : new prices dropped by the last look.
    guard_demoted : whether additions were deferred because the worst case could pass the limit.
    again_after_s : when additions were deferred, call :meth:`Quoter.release` this soon (s): two round trips, the
        time for the cancels to take effect, so the rest of the ladder rests then instead of a refresh later;
        ``None`` otherwise. Every venue's driver honours it.
    """

    plan: OrderPlan
    ladder: Ladder | Any
    state: str
    stop: str = ""
    crossing_skipped: int = 0
    guard_demoted: bool = False
    again_after_s: float | None = None


@dataclass(slots=True)
class _LevelStats:
    fills: int = 0
    size_coins: float = 0.0
    markout_usd: list[float] = field(default_factory=list)  # Σ size·markout per horizon (USD)
    markout_size: list[float] = field(default_factory=list)  # Σ size per horizon, fills whose horizon has passed


@dataclass(slots=True)
class _OpenFill:
    fill: VenueFill
    stats: _LevelStats
    next_horizon: int = 0  # index of the first horizon not settled yet
    depth_bps: float = math.nan  # the order's depth from the mid when it was placed
    order_size: float = math.nan  # the order's resting size before the fill (coins)
    side_total: float = math.nan  # the side's total resting size before the fill (coins)
    marks: list[float] | None = None  # net markout per horizon (USD/coin), kept when fills are emitted


@dataclass(frozen=True, slots=True)
class SettledFill:
    """One fill whose markouts up to the emitting horizon have settled (what a payout learner learns from).

    Attributes
    ----------
    fill : the fill.
    depth_bps : its order's depth from the mid when placed (bps; NaN when the order is not known).
    order_size_coins, side_total_coins : the order's and its side's resting size before the fill (coins; NaN unknown).
    markouts_usd : net markout per coin at each horizon up to the emitting one (USD/coin, fees included).
    """

    fill: VenueFill
    depth_bps: float
    order_size_coins: float
    side_total_coins: float
    markouts_usd: tuple[float, ...]


class FillStats:
    """Our fills and their markouts per side and ladder level, net of fees (what a payout learner learns from).

    The markout of a fill at horizon ``h`` is ``±(mid_{t+h} − price) − fee/size`` (USD per coin; + for a bid, − for
    an ask), with ``mid_{t+h}`` the mid of the first refresh at or after ``t + h``. Memory is bounded: a fill is
    dropped once its longest horizon has passed (its level keeps the sums), and the level of an order is forgotten
    once the order has stopped resting for ``grace_s`` (a fill reported later than that counts at level ``-1``).
    With ``emit_until_s`` (one of the horizons), each fill is also handed out once (:meth:`take_settled`) when its
    markouts up to that horizon have settled, with its order's depth when placed and the sizes resting before it.
    """

    def __init__(
        self, horizons_s: tuple[float, ...], *, grace_s: float = 60.0, emit_until_s: float | None = None
    ) -> None:
        self.horizons_s = tuple(sorted(float(h) for h in horizons_s))
        self._horizons_ns = [int(h * 1e9) for h in self.horizons_s]
        self._grace_ns = int(grace_s * 1e9)
        self._placed: dict[str, tuple[Side, int, float]] = {}  # cloid -> (side, level, depth bps) of orders placed
        self._gone: dict[str, tuple[Side, int, float]] = {}  # the ones not resting at the last prune
        self._pruned_ns: int | None = None
        self._open: deque[_OpenFill] = deque()
        self._levels: dict[tuple[Side, int], _LevelStats] = {}
        self._emit = -1
        if emit_until_s is not None:
            if float(emit_until_s) not in self.horizons_s:
                raise InvalidParameterError(
                    f"'emit_until_s' must be one of the markout horizons {list(self.horizons_s)} s; "
                    f"got {emit_until_s!r}"
                )
            self._emit = self.horizons_s.index(float(emit_until_s))
        self._settled: list[SettledFill] = []

    def placed(self, actions: Iterable[Place | Modify], mid_usd: float | None = None) -> None:
        """Remember the ladder level of each new or modified order (by cloid), and its depth from ``mid_usd``
        (bps) when given."""
        placed = self._placed
        if mid_usd is None or not mid_usd > 0:
            for a in actions:
                placed[a.cloid] = (a.side, a.level, math.nan)
            return
        k = 1e4 / mid_usd
        for a in actions:
            placed[a.cloid] = (a.side, a.level, (mid_usd - a.price if a.side == "bid" else a.price - mid_usd) * k)

    def _lookup(self, cloid: str | None) -> tuple[Side, int, float] | None:
        if cloid is None:
            return None
        return self._placed.get(cloid) or self._gone.get(cloid)

    def depth_of(self, cloid: str | None) -> float:
        """The depth (bps from the mid) the order ``cloid`` was placed at, or NaN when it is not known."""
        hit = self._lookup(cloid)
        return hit[2] if hit is not None else math.nan

    def prune(self, ts_ns: int, live_cloids: Callable[[], Iterable[str | None]]) -> None:
        """Forget the levels of orders that have not rested since the prune before last (every ``grace_s``;
        ``live_cloids()`` gives the orders resting, pending or unanswered at ``ts_ns``): memory stays bounded by the
        orders of about two grace periods."""
        if self._pruned_ns is None:
            self._pruned_ns = ts_ns
        if ts_ns - self._pruned_ns < self._grace_ns:
            return
        self._pruned_ns = ts_ns
        live = set(live_cloids())
        # an order not seen resting yet (its request in flight) comes back from `_gone` once it rests
        back = {c: v for c, v in self._gone.items() if c in live}
        self._gone = {c: v for c, v in self._placed.items() if c not in live}
        self._placed = {c: v for c, v in self._placed.items() if c in live} | back

    @property
    def orders_tracked(self) -> int:
        """Orders whose ladder level is remembered (bounded by :meth:`prune`)."""
        return len(self._placed) + len(self._gone)

    def _where(self, f: VenueFill) -> tuple[int, float]:
        hit = self._lookup(f.cloid)
        return (hit[1], hit[2]) if hit is not None else (-1, math.nan)

    def observe(
        self,
        fills: tuple[VenueFill, ...],
        ts_ns: int,
        mid_usd: float | None,
        sizes_before: Callable[[VenueFill], tuple[float, float]] | None = None,
    ) -> None:
        """Add ``fills`` and settle the markouts whose horizon has passed at ``ts_ns`` (mid in USD).

        ``sizes_before(fill)`` gives the order's and its side's resting size before the fill (coins), kept with the
        emitted fills."""
        n = len(self.horizons_s)
        keep = self._emit >= 0
        for f in fills:
            level, depth = self._where(f)
            stats = self._levels.get((f.side, level))
            if stats is None:
                stats = self._levels[(f.side, level)] = _LevelStats(markout_usd=[0.0] * n, markout_size=[0.0] * n)
            stats.fills += 1
            stats.size_coins += f.size_coins
            o = _OpenFill(f, stats, depth_bps=depth)
            if keep:
                o.marks = []
                if sizes_before is not None:
                    o.order_size, o.side_total = sizes_before(f)
            self._open.append(o)
        if mid_usd is None or not math.isfinite(mid_usd):
            return
        for o in self._open:
            f, k = o.fill, o.next_horizon
            if k < n and ts_ns >= f.ts_ns + self._horizons_ns[k]:
                net = (mid_usd - f.price_usd if f.side == "bid" else f.price_usd - mid_usd) - f.fee_usd / f.size_coins
                k0 = k
                while k < n and ts_ns >= f.ts_ns + self._horizons_ns[k]:
                    o.stats.markout_usd[k] += f.size_coins * net
                    o.stats.markout_size[k] += f.size_coins
                    if o.marks is not None and k <= self._emit:
                        o.marks.append(net)
                    k += 1
                o.next_horizon = k
                if o.marks is not None and k0 <= self._emit < k:
                    self._settled.append(SettledFill(f, o.depth_bps, o.order_size, o.side_total, tuple(o.marks)))
                    o.marks = None
        while self._open and self._open[0].next_horizon >= n:
            self._open.popleft()

    def take_settled(self) -> list[SettledFill]:
        """The fills settled (up to ``emit_until_s``) since the last call, oldest first."""
        out, self._settled = self._settled, []
        return out

    def table(self, mid_usd: float) -> list[dict[str, Any]]:
        """One row per side and level: fills, size (coins), mean markout per horizon (bps of ``mid_usd``)."""
        rows = []
        for (side, level), s in sorted(self._levels.items()):
            row: dict[str, Any] = {"side": side, "level": level, "fills": s.fills, "size_coins": s.size_coins}
            for k, h in enumerate(self.horizons_s):
                m = s.markout_usd[k] / s.markout_size[k] if s.markout_size[k] > 0 else float("nan")
                row[f"markout_{h:g}s_bps"] = m / mid_usd * 1e4
            rows.append(row)
        return rows


class Quoter:
    """The strategy: estimation, guards, ladder, diff and last look, one call per refresh (see the module doc).

    Parameters
    ----------
    spec : the instrument's exchange rules.
    allocator : any registered allocator.
    prior : the configured snapshot: the position limit, fees, leverage, regime and the σ/volume prior (its prices,
        position and margin are replaced by the venue's).
    ladder : the ladder configuration.
    config : limits and guards (:class:`QuoterConfig`).
    cloids : source of client order ids (deterministic from a seed; a live run gives each session its own).
    rng : the only source of randomness of the ladder (a NumPy ``Generator`` or a seed).
    learner : for an allocator that learns (``learned``): the :class:`~hyper_make.learn.PayoutLearner` to start
        from (e.g. loaded with ``--learner-state``), updated in place from every view; ``None`` = a new one with the
        prior of the ladder's models. Ignored by other allocators.

    Attributes
    ----------
    learner : the payout learner being updated, or ``None`` (an allocator that does not learn).
    interval_s : the measured interval between refreshes (s, exponentially weighted), ``None`` before two.
    """

    def __init__(
        self,
        *,
        spec: InstrumentSpec,
        allocator: Allocator,
        prior: MarketSnapshot,
        ladder: LadderConfig,
        config: QuoterConfig,
        cloids: CloidFactory,
        rng: np.random.Generator | int = 0,
        learner: Any = None,
    ) -> None:
        self.spec = spec
        self.allocator = allocator
        self.prior = prior
        self.ladder_config = ladder
        self.config = config
        self.cloids = cloids
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self.max_position_coins = prior.max_position_coins
        self.estimator = MarketEstimator(prior, config.estimator)
        self.learner: Any = None
        self.tap: LearningTap | None = None
        self.interval_s: float | None = None
        if getattr(allocator, "learns", False):
            self.learner = learner if learner is not None else self._new_learner()
            if self.learner.config.coin != spec.coin:
                raise InvalidParameterError(
                    f"the learner's state is for coin {self.learner.config.coin!r}; this market is {spec.coin!r}"
                )
            emit = max(self.learner.config.markout_horizons_s)
            if emit not in config.markout_horizons_s:
                raise InvalidParameterError(
                    f"the learner's markout_horizons_s {list(self.learner.config.markout_horizons_s)} s must be "
                    f"among 'quoter.markout_horizons_s' {list(config.markout_horizons_s)} s"
                )
            self.fill_stats = FillStats(config.markout_horizons_s, emit_until_s=emit)
            self.tap = LearningTap(self.learner, self.fill_stats)
        else:
            self.fill_stats = FillStats(config.markout_horizons_s)
        self.state: LadderState | None = None
        #: the last refresh's ladder (a FastBuild on the fast path, else a Ladder), ``None`` before the first
        self.last_build: Any = None
        self._fast: Any = None
        if config.fast_path:
            try:  # numba kernels: loaded by the first quoter, not at import hyper_make
                from ..fast import FastLadder
            except ImportError as exc:
                # a NumPy whose inner loops the fast path cannot call (it checks them at import): the reference gives
                # the same orders, only slower
                warnings.warn(f"{exc}; building ladders with the Python reference", RuntimeWarning, stacklevel=2)
            else:
                self._fast = FastLadder(spec, allocator, ladder)
        self.peak_pnl_usd = 0.0
        self.max_drawdown_usd = 0.0
        self._last_obs_ns: int | None = None
        self._deferred: tuple[Place, ...] = ()

    @property
    def last_ladder(self) -> Ladder | None:
        """The last refresh's full :class:`~hyper_make.ladder.Ladder` (built on request on the fast path)."""
        b = self.last_build
        return b.ladder() if getattr(b, "is_fast_build", False) else b

    def _new_learner(self) -> Any:
        p = self.prior
        return self.allocator.new_learner(  # type: ignore[attr-defined]
            self.spec.coin,
            self.ladder_config,
            maker_fee_bps=p.maker_fee_bps,
            sigma_frac_per_sqrt_s=p.sigma_frac / math.sqrt(p.sigma_horizon_s),
            max_position_coins=p.max_position_coins,
        )

    # ---- one refresh -------------------------------------------------------------------------------
    def refresh(self, view: VenueView) -> Refresh:
        """Observe ``view``, check the guards, and return the plan that reaches this refresh's ladder."""
        self.observe(view)
        if view.halted:
            return self._pause(view, view.halted)
        if view.book is None or not view.book.is_two_sided:
            return self._pause(view, "waiting for the book")
        if (view.ts_ns - view.book.received_ns) / 1e9 > self.config.stale_after_s:
            return self._pause(view, "stale book")
        stop = self._risk_stop(view)
        if stop:
            return self._pause(view, stop, stop=stop)
        return self._quote(view)

    def drive(self, venue: Venue, wait: Callable[[float], bool]) -> Refresh:
        """One refresh on a venue whose clock the caller moves (the simulator, the replay): refresh on its view, apply
        the plan, and when additions were deferred, ``wait(again_after_s)`` (advance the venue's clock that far;
        ``False`` when it cannot, e.g. past the next refresh or the end of the data) and apply :meth:`release`.
        The live loop schedules the release on its own clock instead."""
        r = self.refresh(venue.view())
        venue.apply(r.plan)
        if r.again_after_s is not None and wait(r.again_after_s):
            venue.apply(self.release(venue.view()))
        return r

    def observe(self, view: VenueView) -> None:
        """Update the estimates from ``view`` once (a second call with the same view changes nothing)."""
        if self._last_obs_ns is not None and view.ts_ns <= self._last_obs_ns:
            return
        if self._last_obs_ns is not None:
            gap = (view.ts_ns - self._last_obs_ns) / 1e9
            self.interval_s = gap if self.interval_s is None else 0.8 * self.interval_s + 0.2 * gap
        self._last_obs_ns = view.ts_ns
        t_s = view.ts_ns / 1e9
        book = view.book
        if book is not None and book.is_two_sided:
            self.estimator.on_book(book.received_ns / 1e9, book.best_bid_usd, book.best_ask_usd)
        if view.traded_coins > 0:
            self.estimator.on_trade(t_s, view.traded_coins)
        tap = self.tap
        self.fill_stats.observe(
            view.fills, view.ts_ns, self.estimator.mid_usd, tap.sizes_before if tap is not None else None
        )
        if tap is not None:
            tap.observe(view)
        self.fill_stats.prune(view.ts_ns, lambda: [o.cloid for o in (*view.resting, *view.pending, *view.unseen)])

    def snapshot(self, view: VenueView) -> MarketSnapshot:
        """The market snapshot the ladder is built on: the estimates, the venue's position and margin."""
        return self.estimator.snapshot(
            view.ts_ns / 1e9,
            inventory_coins=view.position_coins,
            max_position_coins=self.max_position_coins,
            ts_ns=max(view.ts_ns, 0),
            margin_usd=view.margin_usd,
        )

    def _quote(self, view: VenueView) -> Refresh:
        snap = self.snapshot(view)
        reserve = {s: view.pending_size(s) for s in ("bid", "ask")}
        ladder: Any
        if self._fast is not None:
            ladder = self._fast.build(
                snap, rng=self.rng, reserved_coins=reserve, state=self.state, learner=self.learner,
                interval_s=self.interval_s,
            )  # fmt: skip
            shown = ladder.total_coins("bid") - ladder.total_coins("ask")
        else:
            ladder = build_ladder(
                snap, self.spec, self.allocator, config=self.ladder_config, rng=self.rng, reserved_coins=reserve,
                state=self.state, learner=self.learner, interval_s=self.interval_s,
            )  # fmt: skip
            shown = ladder.bid.size_used_coins - ladder.ask.size_used_coins
        self.state = ladder.state
        self.last_build = ladder
        plan = plan_orders(
            ladder,
            view.resting,
            inventory_coins=view.position_coins,
            max_position_coins=self.max_position_coins,
            cloids=self.cloids,
            config=self.config.orders,
        )
        plan, self._deferred = self._fit(plan, view)
        plan, skipped = self.last_look(plan, view)
        self.fill_stats.placed((*plan.places, *plan.modifies), ladder.mid_usd)
        if self.tap is not None:
            self.tap.displayed(shown)
        again = 2.0 * max(view.latency_s, 1e-3) if self._deferred else None
        return Refresh(
            plan, ladder, "quoting", crossing_skipped=skipped, guard_demoted=bool(self._deferred), again_after_s=again
        )

    @staticmethod
    def _worst_base(view: VenueView, *resting: Iterable[RestingOrder | Place | Modify]) -> list[float]:
        """``[bid, ask]``: per side, the worst-case position without new additions, the position plus every pending
        order and every order of ``resting``, as if all filled (coins, on the side's own sign)."""
        worst = [view.position_coins, -view.position_coins]
        for group in (view.pending, *resting):
            for o in group:
                worst[o.side == "ask"] += o.size
        return worst

    def _fit(self, plan: OrderPlan, view: VenueView) -> tuple[OrderPlan, tuple[Place, ...]]:
        """``plan`` with the additions that could take the worst case past the limit deferred (deepest first): a
        deferred new order waits, a deferred replacement becomes a cancel now and a new order later."""
        limit = self.max_position_coins * (1 + _EPS) + _EPS
        # the replaced and cancelled orders may fill before they are gone: they count as still resting
        targets = [a.target for a in plan.cancels] + [a.target for a in plan.modifies]
        worst = self._worst_base(view, plan.kept, targets)
        total = list(worst)
        for group in (plan.places, plan.modifies):
            for a in group:
                total[a.side == "ask"] += a.size
        if total[0] <= limit and total[1] <= limit:
            return plan, ()
        places: list[Place] = []
        modifies: list[Modify] = []
        cancels = list(plan.cancels)
        deferred: list[Place] = []
        for a in sorted((*plan.places, *plan.modifies), key=attrgetter("level")):
            i = a.side == "ask"
            if worst[i] + a.size <= limit:
                worst[i] += a.size
                (places if type(a) is Place else modifies).append(a)  # type: ignore[arg-type]
            elif type(a) is Modify:
                cancels.append(Cancel(a.target))
                deferred.append(Place(a.cloid, a.side, a.price, a.size, a.reduce_only, a.level))
            else:
                deferred.append(a)  # type: ignore[arg-type]
        fitted = assemble_plan(plan.kept, cancels, modifies, places, plan.stopped, self.config.orders.max_batch_len)
        return fitted, tuple(deferred)

    def release(self, view: VenueView) -> OrderPlan:
        """The deferred additions of the last refresh that fit the worst case now (the replaced orders gone), the
        ones the book has moved through dropped; the rest wait for the next refresh, which replans anyway."""
        deferred, self._deferred = self._deferred, ()
        if not deferred:
            return assemble_plan((), (), (), (), {}, self.config.orders.max_batch_len)
        limit = self.max_position_coins * (1 + _EPS) + _EPS
        worst = self._worst_base(view, view.resting)
        places: list[Place] = []
        for p in deferred:
            i = p.side == "ask"
            if worst[i] + p.size <= limit:
                worst[i] += p.size
                places.append(p)
        plan = assemble_plan((), (), (), places, {}, self.config.orders.max_batch_len)
        plan, _ = self.last_look(plan, view)
        self.fill_stats.placed(plan.places, self.last_build.mid_usd if self.last_build is not None else None)
        return plan

    # ---- guards ------------------------------------------------------------------------------------
    def crossing(self, actions: tuple[Action, ...], view: VenueView) -> list[str]:
        """Cloids of the new prices in ``actions`` that could cross on arrival: within the guard margin of the
        opposite best of ``view``'s book, or at or through one of our orders whose request went unanswered."""
        book = view.book
        if book is None or not book.is_two_sided:
            return []
        now_s = view.ts_ns / 1e9
        age = max(view.ts_ns - book.received_ns, 0) / 1e9
        # the exchange acts on the order about a round trip from now, on a book `age` newer than the one we hold
        tau = max(view.book_interval_s, age + view.latency_s)
        sigma = self.estimator.sigma_frac_per_sqrt_s(now_s)
        margin = self.config.alo_guard_sigmas * sigma * math.sqrt(tau)
        return crossing_cloids(
            actions,
            best_bid_usd=book.best_bid_usd,
            best_ask_usd=book.best_ask_usd,
            margin_frac=margin,
            own_unseen=view.unseen,
        )

    def last_look(self, plan: OrderPlan, view: VenueView) -> tuple[OrderPlan, int]:
        """``plan`` without the new prices :meth:`crossing` flags on ``view``, and how many were dropped."""
        crossing = self.crossing((*plan.places, *plan.modifies), view)
        if not crossing:
            return plan, 0
        return demote(plan, cloids=crossing, config=self.config.orders), len(crossing)

    def _risk_stop(self, view: VenueView) -> str:
        if view.pnl_usd is not None and math.isfinite(view.pnl_usd):
            self.peak_pnl_usd = max(self.peak_pnl_usd, view.pnl_usd)
            self.max_drawdown_usd = max(self.max_drawdown_usd, self.peak_pnl_usd - view.pnl_usd)
            limit = self.config.max_drawdown_usd
            if limit is not None and self.peak_pnl_usd - view.pnl_usd > limit:
                return "max_drawdown"
        if abs(view.position_coins) > self.max_position_coins + _EPS:
            return "position_limit"
        return ""

    def _pause(self, view: VenueView, why: str, *, stop: str = "") -> Refresh:
        """Quote nothing: cancel whatever rests."""
        plan = plan_orders(
            [],
            view.resting,
            inventory_coins=view.position_coins,
            max_position_coins=self.max_position_coins,
            cloids=self.cloids,
            config=self.config.orders,
        )
        stopped = {"bid": why, "ask": why}
        if self.tap is not None:
            self.tap.displayed(0.0)
        return Refresh(
            OrderPlan(plan.kept, plan.cancels, plan.modifies, plan.places, stopped, plan.batches), None, why, stop
        )


__all__ = ["MARKOUT_HORIZONS_S", "FillStats", "Quoter", "QuoterConfig", "Refresh", "SettledFill"]
