"""The fast path's Python face: a ladder builder compiled once per (spec, allocator, config), arrays out."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..allocate import (
    EntropyAllocator,
    EntropyState,
    FlatAllocator,
    GreedyAllocator,
    ImpactAllocator,
    ImpactDirichletAllocator,
    ImpactPosteriorAllocator,
    LearnedAllocator,
    ProgressionAllocator,
)
from ..allocate._learned import LadderContext
from ..economics import ExponentialAdverse, ExponentialIntensity, FirstPassage, TableAdverse, TableFill
from ..economics.impact import _INV_SQRT_2PI, SIDE_SHARE
from ..errors import InvalidParameterError
from ..instrument import _SCALAR_TICKS, InstrumentSpec, Side
from ..ladder import (
    Ladder,
    LadderConfig,
    LadderState,
    _as_allocator,
    _as_config,
    _as_generator,
    _check_one_stealth_stage,
    _depth_grid,
    build_ladder,
)
from ..levels import glft_touch_depth_bps
from ..snapshot import MarketSnapshot
from . import _kernel as k
from ._entropy import N_PARAMS, NUMPY_LOOPS, P_INITIAL_TARGET, bitgen_table, entropy_params
from ._numpy import LOOPS, POWER
from ._stealth_kernels import lot_inverse

_EMPTY = np.zeros(0)
_TICKS = np.array(_SCALAR_TICKS)
_FRESH = LadderState()
_ALLOC_KIND = {
    ImpactAllocator: k.ALLOC_IMPACT,
    ImpactDirichletAllocator: k.ALLOC_IMPACT,
    ImpactPosteriorAllocator: k.ALLOC_IMPACT,
    GreedyAllocator: k.ALLOC_GREEDY,
    FlatAllocator: k.ALLOC_FLAT,
    ProgressionAllocator: k.ALLOC_PROGRESSION,
    EntropyAllocator: k.ALLOC_ENTROPY,
    LearnedAllocator: k.ALLOC_LEARNED,
}
_STEALTH = {"off": k.STEALTH_OFF, "dirichlet": k.STEALTH_DIRICHLET, "posterior": k.STEALTH_POSTERIOR}
_NO_TABLE = np.zeros(3, dtype=np.int64)


def entry_point(dispatcher: Any, args: tuple[Any, ...]) -> Any:
    """The compiled function ``dispatcher`` runs for ``args``' types, callable without the dispatcher's per-call type
    resolution (~0.6 µs of a 16-array call; numba's ``overloads``), or ``dispatcher`` itself if it has none.

    Only for calls whose arguments keep those types: every array the builder passes is its own or made the same way
    each build (the same dtype, dimensions, C order and writeability; its depths and generator table are read-only
    at every build, the rest writeable).
    """
    try:
        return dispatcher.overloads[tuple(dispatcher.typeof_pyval(a) for a in args)].entry_point
    except (AttributeError, KeyError, TypeError):
        return dispatcher


def compiled_reason(allocator: Any, config: LadderConfig) -> str:
    """Why ``(allocator, config)`` runs the reference pipeline inside the fast path, or ``""`` if it is compiled."""
    kind = type(allocator)
    if kind not in _ALLOC_KIND:
        return f"allocator {getattr(allocator, 'name', kind.__name__)!r} is not compiled"
    return ""


class FastBuild:
    """One build's orders as arrays, per side best first; the :class:`~hyper_make.ladder.Ladder` only on request.

    Attributes
    ----------
    mid_usd, reservation_usd : the snapshot's mid and the inventory-skewed reservation price (USD).
    state : the allocator's state after the build (:class:`~hyper_make.ladder.LadderState`), for the next build.
    beta : the impact exponent of the curves (dimensionless).
    """

    __slots__ = (
        "_args", "_diag", "_ladder", "_out", "beta", "mid_usd", "n_ask", "n_bid", "reservation_usd", "state", "totals",
    )  # fmt: skip
    #: what :func:`~hyper_make.strategy.orders.plan_orders` and the run records look for (no import of this module)
    is_fast_build = True

    def __init__(
        self,
        out: NDArray[np.float64],
        n_bid: int,
        n_ask: int,
        totals: tuple[float, float],
        mid_usd: float,
        reservation_usd: float,
        state: LadderState,
        beta: float,
        args: tuple[Any, ...] | None,
        ladder: Ladder | None = None,
        diagnostics: dict[str, Any] | None = None,
    ) -> None:
        self._out = out
        self._diag = diagnostics
        #: orders per side
        self.n_bid, self.n_ask = n_bid, n_ask
        #: total size per side (coins, from the lots)
        self.totals = totals
        self.mid_usd = mid_usd
        self.reservation_usd = reservation_usd
        self.state = state
        self.beta = beta
        self._args = args
        self._ladder = ladder

    def count(self, side: Side) -> int:
        """Orders resting on ``side``."""
        return self.n_bid if side == "bid" else self.n_ask

    def total_coins(self, side: Side) -> float:
        """Total size resting on ``side`` (coins), from the lots (the reference's ``SideResult.size_used_coins``)."""
        return self.totals[0] if side == "bid" else self.totals[1]

    @property
    def allocation_diagnostics(self) -> dict[str, Any]:
        """The allocator's diagnostics: ``learned``'s two-sided solve's (as each side's ``AllocationResult`` carries
        them; ``{}`` when neither side was allocated), those of a build that ran in the reference pipeline (the
        bid's, else the ask's), else ``{}`` (the compiled allocators report none per refresh)."""
        if self._diag is not None:
            return self._diag
        if self._ladder is None or self._args is not None:
            return {}
        return self._ladder.bid.allocation.diagnostics or self._ladder.ask.allocation.diagnostics

    def terms(self, side: Side) -> NDArray[np.float64]:
        """All per-order rows of ``side`` at once (shape ``(len(ROWS), n_orders)``, a view; rows :data:`ROWS`)."""
        if side == "bid":
            return self._out[0, :, : self.n_bid]
        return self._out[1, :, : self.n_ask]

    def row(self, side: Side, name: str) -> NDArray[np.float64]:
        """One per-order array of ``side`` (a read-only view), ``name`` one of :data:`ROWS`: ``price`` (USD), ``size``
        (coins), ``depth`` (bps from the mid), ``level`` (grid index), and the curve terms of the orders'
        levels: ``fill_prob``, ``capture``, ``adverse``, ``inventory`` (USD/coin), ``b_forward``, ``b_roundtrip``
        (USD/coin^(1+β))."""
        if side == "bid":
            return self._out[0, k.ROWS.index(name), : self.n_bid]
        return self._out[1, k.ROWS.index(name), : self.n_ask]

    def prices(self, side: Side) -> NDArray[np.float64]:
        """Order prices of ``side`` (USD), best first."""
        if side == "bid":
            return self._out[0, 0, : self.n_bid]
        return self._out[1, 0, : self.n_ask]

    def sizes(self, side: Side) -> NDArray[np.float64]:
        """Order sizes of ``side`` (coins), best first."""
        if side == "bid":
            return self._out[0, 1, : self.n_bid]
        return self._out[1, 1, : self.n_ask]

    def depths(self, side: Side) -> NDArray[np.float64]:
        """Order depths of ``side`` from the mid (bps), best first."""
        if side == "bid":
            return self._out[0, 2, : self.n_bid]
        return self._out[1, 2, : self.n_ask]

    def levels(self, side: Side) -> NDArray[np.int64]:
        """Order levels of ``side`` (index in the side's grid, 0 = touch), best first."""
        if side == "bid":
            return self._out[0, 3, : self.n_bid].astype(np.int64)
        return self._out[1, 3, : self.n_ask].astype(np.int64)

    def ladder(self) -> Ladder:
        """The full :class:`~hyper_make.ladder.Ladder` (diagnostics, dropped levels, timings), built by the reference
        pipeline on the same inputs: the same orders as these arrays (the identity the fast path guarantees)."""
        if self._ladder is None:
            assert self._args is not None
            snapshot, spec, alloc, cfg, reserved, state, learner, interval_s = self._args[:8]
            gen = np.random.default_rng(0)  # a build that draws nothing
            if len(self._args) > 8:  # the generator as it was before the build: the same draws again
                kind, bg_state = self._args[8]
                gen = np.random.Generator(kind())
                gen.bit_generator.state = bg_state
            self._ladder = build_ladder(
                snapshot,
                spec,
                alloc,
                config=cfg,
                rng=gen,
                reserved_coins=reserved,
                state=state,
                learner=learner,
                interval_s=interval_s,
            )
        return self._ladder


class FastLadder:
    """:func:`~hyper_make.build_ladder` for one (spec, allocator, config), compiled once, arrays out.

    ``impact`` (discrete or continuous), ``impact-dirichlet``, ``impact-posterior``, ``entropy``, ``greedy``, ``flat``
    and ``progression``, with any ``[ladder.stealth]`` stage and geometric, linear or tick spacing, run in one compiled
    call (:mod:`._kernel`; the entropy allocator and the stealth draws are :mod:`._entropy` and
    :mod:`._stealth_kernels`, drawing the reference's variates from the same generator); ``learned`` runs the kernel's
    first stage, its compiled two-sided solve (:meth:`LearnedAllocator.allocate_arrays`) and the kernel's last stage.
    An allocator the kernel does not know runs the reference pipeline inside :meth:`build` and returns the same arrays
    (:attr:`reason` says so). The orders, the curve terms and the state are those of :func:`~hyper_make.build_ladder`
    on the same inputs, and the generator is left in the same state. For ``learned``, :meth:`FastBuild.ladder` rebuilds
    with the learner as it is when called (a quoter's last build is that of its learner until the next observation).

    Raises
    ------
    InvalidParameterError
        As :func:`~hyper_make.build_ladder` for a wrong spec, allocator or config.
    """

    __slots__ = (
        "_beta",
        "_cf",
        "_ci",
        "_depths",
        "_draws",
        "_entropy",
        "_entry",
        "_eparams",
        "_h_period",
        "_impact_on",
        "_info",
        "_learned",
        "_nd",
        "_pack_sv",
        "_profile",
        "_sv",
        "_tables",
        "_wi",
        "_ws",
        "allocator",
        "config",
        "reason",
        "spec",
    )

    def __init__(self, spec: InstrumentSpec, allocator: Any, config: LadderConfig | None = None) -> None:
        if not isinstance(spec, InstrumentSpec):
            raise InvalidParameterError(f"'spec' must be an InstrumentSpec; got {type(spec).__name__}")
        alloc = _as_allocator(allocator)
        cfg = _as_config(config)
        _check_one_stealth_stage(alloc, getattr(alloc, "name", type(alloc).__name__), cfg.stealth)
        self.spec, self.allocator, self.config = spec, alloc, cfg
        #: why this builder runs the reference pipeline ("" = compiled)
        self.reason = compiled_reason(alloc, cfg)
        ci = np.zeros(k.CI_SIZE, dtype=np.int64)
        cf = np.zeros(k.CF_SIZE)
        fill, adverse, impact = cfg.fill, cfg.adverse, cfg.impact
        tables = [_EMPTY, _EMPTY, _EMPTY, _EMPTY]
        if isinstance(fill, ExponentialIntensity):
            ci[k.CI_FILL] = k.FILL_EXP
            cf[k.CF_A], cf[k.CF_KAPPA] = fill.intensity_per_s, fill.kappa_per_bps
        elif isinstance(fill, FirstPassage):
            ci[k.CI_FILL] = k.FILL_FP
        elif isinstance(fill, TableFill):
            ci[k.CI_FILL] = k.FILL_TABLE
            tables[0], tables[1] = np.asarray(fill.depth_bps, float), np.asarray(fill.prob_at_depth, float)
        if isinstance(adverse, ExponentialAdverse):
            ci[k.CI_ADVERSE] = k.ADV_EXP
            cf[k.CF_AS0], cf[k.CF_DECAY] = adverse.as0_bps, adverse.decay_bps
        elif isinstance(adverse, TableAdverse):
            ci[k.CI_ADVERSE] = k.ADV_TABLE
            tables[2], tables[3] = np.asarray(adverse.depth_bps, float), np.asarray(adverse.as_bps, float)
        ci[k.CI_ALLOC] = _ALLOC_KIND.get(type(alloc), -1)
        if isinstance(alloc, ImpactAllocator):
            ci[k.CI_DISCRETE], ci[k.CI_SEARCH] = int(alloc.discrete), alloc.max_search_levels
        if isinstance(alloc, ProgressionAllocator):
            cf[k.CF_FIRST], cf[k.CF_STEP] = alloc.first_frac, alloc.step_frac
        # the stealth stage: the allocator's own (impact-dirichlet/-posterior, exact-solved as it says) or the ladder's
        own = getattr(alloc, "stealth", None) if isinstance(alloc, ImpactAllocator) else None
        stage = own if own is not None else cfg.stealth
        ci[k.CI_STEALTH] = _STEALTH[stage.mode]
        ci[k.CI_STEALTH_DISCRETE] = int(alloc.discrete) if own is not None else 1
        ci[k.CI_OWN_STEALTH] = int(own is not None)
        ci[k.CI_TICKS] = int(cfg.grid.spacing == "ticks")
        ci[k.CI_TICKS_PER_LEVEL], ci[k.CI_N_LEVELS] = cfg.grid.ticks_per_level, cfg.grid.n_levels
        cf[k.CF_CONCENTRATION], cf[k.CF_EDGE_SD] = stage.concentration, stage.edge_sd_frac
        cf[k.CF_IMPACT_SD] = stage.impact_sd_log
        ci[k.CI_NEEDS_IMPACT] = int(bool(getattr(alloc, "needs_impact", True)) or cfg.stealth.mode == "posterior")
        ci[k.CI_LOT_INVERSE] = lot_inverse(spec.lot_size)
        self._entropy = isinstance(alloc, EntropyAllocator)
        self._learned = isinstance(alloc, LearnedAllocator)
        self._eparams = entropy_params(alloc) if self._entropy else np.zeros(N_PARAMS)
        #: whether a build draws from the generator (entropy's Thompson step, a stealth stage)
        self._draws = self._entropy or stage.mode != "off" or (self._learned and alloc.sampling == "thompson")
        ci[k.CI_SIG], ci[k.CI_MAXDEC] = spec.max_sig_figs, spec.max_price_decimals
        cf[k.CF_H], cf[k.CF_CAPFRAC], cf[k.CF_GAMMA] = cfg.horizon_s, cfg.level_cap_frac, cfg.risk_aversion
        cf[k.CF_FWD], cf[k.CF_RT], cf[k.CF_BETA] = impact.forward_coef, impact.roundtrip_coef, impact.beta
        cf[k.CF_MINNOT], cf[k.CF_LOT], cf[k.CF_INV] = spec.min_notional_usd, spec.lot_size, 10.0**spec.sz_decimals
        cf[k.CF_INV_SQRT_2PI], cf[k.CF_MAXDEPTH] = float(_INV_SQRT_2PI), cfg.grid.max_depth_bps
        self._ci, self._cf, self._tables = ci, cf, tuple(tables)
        self._depths = _depth_grid(cfg.grid, cfg.grid.min_depth_bps) if cfg.grid.touch == "fixed" else None
        self._profile: tuple[Any, NDArray[np.float64], NDArray[np.float64]] = ((), _EMPTY, _EMPTY)
        nd = max(cfg.grid.n_levels, 1)
        # the kernels' scratch rows, reused by every build (a FastLadder serves one loop, not several threads)
        self._ws = np.zeros((2, k.W_ROWS, nd + 1))  # + 1: the curves' one-element power operand
        self._wi = np.zeros((k.I_ROWS, nd), dtype=np.int64)
        self._nd = nd
        self._impact_on = not impact.is_off
        self._info = np.zeros(k.INFO_SIZE)
        self._sv = np.zeros(k.SV_SIZE)
        self._entry: Any = None
        self._pack_sv = struct.Struct(f"={k.SV_SIZE}d").pack_into
        self._h_period = (cfg.horizon_s, impact.volume_period_s)
        self._beta = impact.beta

    def __getstate__(self) -> dict[str, Any]:
        # the packer and the compiled entry point are this process's: rebuilt on unpickling, found again on a build
        state = {name: getattr(self, name) for name in self.__slots__ if hasattr(self, name)}
        del state["_pack_sv"], state["_entry"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._pack_sv = struct.Struct(f"={k.SV_SIZE}d").pack_into
        self._entry = None

    @property
    def compiled(self) -> bool:
        """Whether :meth:`build` runs compiled (else the reference pipeline, arrays out)."""
        return not self.reason

    def loop_reason(self) -> str:
        """Why this builder cannot run inside a compiled strategy loop (:mod:`hyper_make.fast._refresh`), or ``""``."""
        if self.reason:
            return self.reason
        if self._depths is None:
            return "a GLFT touch (grid.touch = 'glft') recomputes the grid every refresh"
        return ""

    def kernel_args(self, prior: MarketSnapshot, rng: np.random.Generator) -> tuple[Any, ...]:
        """The arguments of :func:`~._kernel.build_sides` for a compiled loop on ``prior``'s market, with its own
        integer config, snapshot vector and output array (``(ci, cf, sv, depths, ticks, tables, prof_d, prof_logv,
        ws, wi, out, eparams, bitgen, loops, mloops, power)``), drawing from ``rng``."""
        if self.loop_reason():
            raise InvalidParameterError(f"this ladder cannot run in a compiled loop: {self.loop_reason()}")
        ci = self._ci.copy()
        prof_d = prof_logv = _EMPTY
        profile = prior.volume_profile_depth_bps
        ci[k.CI_PROFILE] = 1 if profile else 0
        if profile:
            prof_d = np.asarray(profile, dtype=np.float64)
            prof_logv = np.log(prior.volume_profile_coins)
        table = bitgen_table(rng) if self._draws else _NO_TABLE
        out = np.zeros((2, k.N_ROWS, self._nd))
        depths = self._depths
        assert depths is not None
        return (
            ci, self._cf, np.zeros(k.SV_SIZE), depths, _TICKS, self._tables, prof_d, prof_logv, self._ws, self._wi,
            out, self._eparams, table, NUMPY_LOOPS, LOOPS, POWER,
        )  # fmt: skip

    @property
    def initial_target_nats(self) -> float:
        """The entropy allocator's first target (nats; 0 for other allocators)."""
        return float(self._eparams[P_INITIAL_TARGET]) if self._entropy else 0.0

    def build(
        self,
        snapshot: MarketSnapshot,
        *,
        rng: np.random.Generator | int | None = None,
        reserved_coins: Mapping[str, float] | None = None,
        state: LadderState | None = None,
        learner: Any = None,
        interval_s: float | None = None,
    ) -> FastBuild:
        """One refresh's ladder (the arguments of :func:`~hyper_make.build_ladder`), as a :class:`FastBuild`."""
        args = (snapshot, self.spec, self.allocator, self.config, reserved_coins, state, learner, interval_s)
        if self.reason:
            return self._reference(args, rng)
        if not isinstance(snapshot, MarketSnapshot):
            raise InvalidParameterError(f"'snapshot' must be a MarketSnapshot; got {type(snapshot).__name__}")
        if rng is None:
            gen: np.random.Generator | None = None
        elif isinstance(rng, np.random.Generator):
            gen = rng
        else:
            gen = _as_generator(rng)  # raises the reference's error for a bad seed
        if state is None:
            prev_bid = prev_ask = None
        elif isinstance(state, LadderState):
            prev_bid, prev_ask = state.bid, state.ask
        else:
            return self._reference(args, rng)  # the reference's error
        tg_bid = tg_ask = 0.0
        if self._entropy:
            if not (prev_bid is None or isinstance(prev_bid, EntropyState)) or not (
                prev_ask is None or isinstance(prev_ask, EntropyState)
            ):
                return self._reference(args, rng)  # the reference's error for a foreign state
            start = self._eparams[P_INITIAL_TARGET]
            tg_bid = prev_bid.target_nats if prev_bid is not None else start
            tg_ask = prev_ask.target_nats if prev_ask is not None else start
        table = _NO_TABLE
        saved: Any = None
        if self._draws:
            if gen is None:
                gen = np.random.default_rng(0)
            table = bitgen_table(gen)
            saved = (type(gen.bit_generator), gen.bit_generator.state)  # for .ladder(): the same draws again
        res_bid = res_ask = 0.0
        if reserved_coins:
            for key, v in reserved_coins.items():
                if (
                    key not in ("bid", "ask")
                    or isinstance(v, bool)
                    or not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v))
                ):
                    return self._reference(args, rng)  # the reference's error
            res_bid, res_ask = float(reserved_coins.get("bid", 0.0)), float(reserved_coins.get("ask", 0.0))
        if interval_s is not None and not (isinstance(interval_s, (int, float)) and 0 < interval_s <= 86_400.0):
            return self._reference(args, rng)
        ci = self._ci
        h, period = self._h_period
        sh = snapshot.sigma_horizon_s
        sf = snapshot.sigma_frac
        mid = snapshot.mid_usd
        daily = snapshot.daily_volume_coins
        prof_d = prof_logv = _EMPTY
        profile = snapshot.volume_profile_depth_bps
        if not self._impact_on:
            ci[k.CI_IMPACT] = k.IMPACT_OFF
        elif profile or daily > 0:  # SquareRootImpact.missing_input is ""
            ci[k.CI_IMPACT] = k.IMPACT_ON
            ci[k.CI_PROFILE] = 1 if profile else 0
            if profile:
                key = (profile, snapshot.volume_profile_coins)
                if self._profile[0] != key:
                    # the reference's own NumPy log of the profile
                    self._profile = (key, np.asarray(profile, dtype=np.float64), np.log(key[1]))
                prof_d, prof_logv = self._profile[1], self._profile[2]
        else:
            ci[k.CI_IMPACT] = k.IMPACT_NONE
        regime = snapshot.regime
        # the snapshot vector packed into the builder's own (a NumPy array from a tuple costs three times as much);
        # the kernels read it during the call only
        sv = self._sv
        self._pack_sv(
            sv,
            0,
            mid,
            snapshot.best_bid_usd,
            snapshot.best_ask_usd,
            snapshot.inventory_coins,
            snapshot.max_position_coins,
            snapshot.margin_usd,
            snapshot.leverage,
            snapshot.maker_fee_bps,
            snapshot.sigma_price_per_sqrt_s() ** 2,
            sf / math.sqrt(sh),
            sf * math.sqrt(h / sh),
            sf * math.sqrt(period / sh),
            daily * (h / period) * SIDE_SHARE,
            h / sh,
            res_bid,
            res_ask,
            regime.toxicity,
            regime.vol_ratio,
            regime.cascade_severity,
            tg_bid,
            tg_ask,
        )
        depths = self._depths
        if depths is None:
            cfg = self.config
            fill = cfg.fill
            kappa = fill.kappa_per_bps if isinstance(fill, ExponentialIntensity) else 0.3
            touch = glft_touch_depth_bps(cfg.risk_aversion, kappa, mid, snapshot.maker_fee_bps)
            depths = _depth_grid(cfg.grid, touch)
        out = np.empty((2, k.N_ROWS, self._nd))
        if self._learned:
            if saved is not None:
                args = (*args, saved)
            return self._build_learned(args, sv, depths, prof_d, prof_logv, table, out, gen, prev_bid, prev_ask)
        kargs = (
            ci, self._cf, sv, depths, _TICKS, self._tables, prof_d, prof_logv, self._ws, self._wi, out,
            self._eparams, table, NUMPY_LOOPS, LOOPS, POWER,
        )  # fmt: skip
        entry = self._entry
        if entry is None:
            result = k.build_sides(*kargs)
            self._entry = entry_point(k.build_sides, kargs)
        else:
            result = entry(*kargs)
        code, ref, n_bid, n_ask, bid_coins, ask_coins, st_bid, st_ask, tg_bid, tg_ask = result
        if code:
            return self._reference(args, rng)  # raises the reference's error
        beta = self._beta if ci[k.CI_IMPACT] != k.IMPACT_NONE else 0.5
        if st_bid == 1 and st_ask == 1:
            new_state = _FRESH
        else:
            new_state = LadderState(
                bid=prev_bid if st_bid == 0 else (None if st_bid == 1 else EntropyState(tg_bid)),
                ask=prev_ask if st_ask == 0 else (None if st_ask == 1 else EntropyState(tg_ask)),
            )
        if saved is not None:
            args = (*args, saved)
        return FastBuild(out, n_bid, n_ask, (bid_coins, ask_coins), mid, ref, new_state, beta, args)

    def _build_learned(
        self,
        args: tuple[Any, ...],
        sv: NDArray[np.float64],
        depths: NDArray[np.float64],
        prof_d: NDArray[np.float64],
        prof_logv: NDArray[np.float64],
        table: NDArray[np.int64],
        out: NDArray[np.float64],
        gen: np.random.Generator | None,
        prev_bid: Any,
        prev_ask: Any,
    ) -> FastBuild:
        """``learned``: the kernel's first stage, the two-sided solve on the learner's curves
        (:meth:`LearnedAllocator.allocate_arrays`, compiled), the kernel's last stage; the reference's orders."""
        snapshot, spec, alloc, cfg, _reserved, _state, learner, interval_s = args[:8]
        ci, ws, info = self._ci, self._ws, self._info
        code = k.prepare_sides(
            ci, self._cf, sv, depths, _TICKS, self._tables, prof_d, prof_logv, ws, LOOPS, POWER, info
        )
        if code:
            return self._reference(args[:8], gen)  # raises the reference's error
        n = (int(info[k.INFO_N]), int(info[k.INFO_N + 1]))
        live = (info[k.INFO_LIVE] != 0, info[k.INFO_LIVE + 1] != 0)
        ctx = LadderContext.of(snapshot, spec.coin, cfg, interval_s, learner)
        # a side with no budget, no level or no impact input enters the solve with a zero budget (as in the reference)
        r = alloc.allocate_arrays(
            ws[0, k.W_DEPTH, : n[0]],
            ws[1, k.W_DEPTH, : n[1]],
            budget_bid_coins=info[k.INFO_BUDGET] if live[0] else 0.0,
            budget_ask_coins=info[k.INFO_BUDGET + 1] if live[1] else 0.0,
            caps_bid_coins=ws[0, k.W_CAPS, : n[0]],
            caps_ask_coins=ws[1, k.W_CAPS, : n[1]],
            lot_coins=spec.lot_size,
            min_bid_coins=ws[0, k.W_MINS, : n[0]],
            min_ask_coins=ws[1, k.W_MINS, : n[1]],
            mid_usd=ctx.mid_usd,
            inventory_coins=ctx.inventory_coins,
            sigma_usd_per_sqrt_s=ctx.sigma_usd_per_sqrt_s,
            risk_aversion=ctx.risk_aversion,
            horizon_s=ctx.horizon_s,
            interval_s=ctx.interval_s,
            learner=alloc._learner_for(ctx),
            rng=gen,
        )
        for s, (sizes, curves) in enumerate(((r.bid_sizes, r.bid_curves), (r.ask_sizes, r.ask_curves))):
            if not live[s]:
                continue
            m = n[s]
            info[k.INFO_STATE + s] = 1  # the learned results carry no state
            # the reference runs the ladder's stealth stage unless the solve's binding is "empty" (which a side
            # can report with a lot left on it)
            info[k.INFO_NO_STEALTH + s] = float(r.binding("bid" if s == 0 else "ask") == "empty")
            w = ws[s]
            w[k.W_SIZES, :m] = sizes
            # the published curves (LearnedArrays.level_curves): P = p, capture = the learned markout, the size
            # penalty as b_forward; no adverse, inventory or round-trip term
            w[k.W_TERMS, :m] = curves[3]
            w[k.W_TERMS + 1, :m] = curves[6]
            w[k.W_TERMS + 2, :m] = 0.0
            w[k.W_TERMS + 3, :m] = 0.0
            w[k.W_TERMS + 4, :m] = curves[2] if r.model == 1 else curves[1]
            w[k.W_TERMS + 5, :m] = 0.0
        code, n_bid, n_ask, bid_coins, ask_coins = k.finish_sides(
            ci, self._cf, ws, self._wi, out, table, NUMPY_LOOPS, POWER, info
        )
        if code:
            return self._reference(args[:8], gen)
        st_bid, st_ask = int(info[k.INFO_STATE]), int(info[k.INFO_STATE + 1])
        new_state = (
            _FRESH
            if st_bid == 1 and st_ask == 1
            else LadderState(bid=prev_bid if st_bid == 0 else None, ask=prev_ask if st_ask == 0 else None)
        )
        diag = r.diagnostics() if live[0] or live[1] else {}
        ref = info[k.INFO_REF]
        return FastBuild(out, n_bid, n_ask, (bid_coins, ask_coins), snapshot.mid_usd, ref, new_state, r.beta, args,
                         None, diag)  # fmt: skip

    def _reference(self, args: tuple[Any, ...], rng: Any) -> FastBuild:
        """The reference pipeline's ladder as a :class:`FastBuild` (the same arrays as a compiled build)."""
        snapshot, spec, alloc, cfg, reserved, state, learner, interval_s = args
        lad = build_ladder(
            snapshot,
            spec,
            alloc,
            config=cfg,
            rng=rng,
            reserved_coins=reserved,
            state=state,
            learner=learner,
            interval_s=interval_s,
        )
        n = max(lad.bid.curves.n, lad.ask.curves.n, 1)
        out = np.empty((2, k.N_ROWS, n))
        totals = (lad.bid.size_used_coins, lad.ask.size_used_coins)
        for s, side in enumerate((lad.bid, lad.ask)):
            lv = np.array([o.level for o in side.orders], dtype=np.int64)
            if not lv.shape[0]:
                continue
            c = side.curves
            out[s, 0, : lv.shape[0]] = [o.price for o in side.orders]
            out[s, 1, : lv.shape[0]] = [o.size for o in side.orders]
            out[s, 2, : lv.shape[0]] = [o.depth_bps for o in side.orders]
            out[s, 3, : lv.shape[0]] = lv
            for r, arr in enumerate(
                (c.fill_prob, c.capture_usd, c.adverse_usd, c.inventory, c.b_forward, c.b_roundtrip)
            ):
                out[s, 4 + r, : lv.shape[0]] = arr[lv]
        beta = float(lad.bid.curves.beta)
        return FastBuild(
            out, len(lad.bids), len(lad.asks), totals, lad.mid_usd, lad.reservation_usd, lad.state, beta, None, lad
        )
