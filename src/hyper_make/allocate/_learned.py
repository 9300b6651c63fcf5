r"""The learned allocator: both sides at once, on payout curves learned from our own fills, with inventory risk.

Every refresh (issue 13, the RFC's steps 1-4 with the Actuary learned rather than assumed):

1. **Curves.** The payout learner (:class:`hyper_make.learn.PayoutLearner`, updated by the refresh core from what
   the venue reports) gives, per level ``i`` at depth ``δ_i`` (bps from the mid) of each side, the fill rate per
   resting coin-second ``ρ_i`` (1/s), the markout per filled coin ``m_i`` (bps, net of fees, at the learner's
   value horizon) and the size penalty ``θ·s^β`` / side-total slope ``κ_side``. With ``sample = true`` they are
   one draw from the posterior (Thompson sampling: exploration, and the RFC's stealth layer, since each published
   ladder is optimal for a plausible model); with ``false`` the posterior mean.
2. **Objective.** Over the decision interval ``τ`` (the time to the next refresh: the caller's ``interval_s``, or
   this allocator's) a coin at level ``i`` fills with probability ``p_i = 1 - exp(-ρ_i·τ)`` and earns ``m_i``::

       max  Σ_i [p_i·m_i·s_i - p_i·θ·s_i^(1+β)] - Σ_side k_side·T_side²  -  γ/2·σ²H·E[(q + ΔQ)²]

   (USD; ``T`` a side's total, ``q`` the position, ``ΔQ`` the signed filled size, ``γ`` the risk aversion in
   1/USD, ``σ²H`` the price variance over the holding horizon ``H`` in USD²/coin²): the Avellaneda-Stoikov /
   Guéant-Lehalle-Fernandez-Tapia inventory penalty on the expected position after the fills, so a reducing fill
   is worth more and a one-sided display is penalised by the risk it carries. The market's learned reaction to
   the size we show (the mid drifting ``λ`` bps/s per coin of net display, away from the side shown) costs the
   position ``q·λ·τ·mid/1e4`` USD per coin shown on the side that the drift moves against it; that cost comes off
   those edges (never a gain: the other side is not rewarded for pushing the price).
3. **Exact solve** (:func:`hyper_make.allocate._twosided.solve_two_sided`): KKT with one coupling multiplier
   between the sides, lot-exact with the minimum order, each side within its budget and caps.

The curves it publishes (:attr:`LearnedAllocation.bid_curves`) are the learned ones: ``fill_prob = p``,
``capture_usd = m·mid/1e4`` (the markout already nets fees and adverse selection, so ``adverse_usd = 0``),
``b_forward`` the size penalty. Without a learner (a one-shot ``hyper-make ladder``) the prior is tabulated from
the ladder's fill and adverse-selection models (:meth:`LearnerPrior.from_models`): the ladder a learner that has
seen nothing would quote.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from .._validate import PYDANTIC_CONFIG, check_choice, check_real
from ..economics.curve import LevelCurves
from ..errors import InvalidParameterError
from ..instrument import _decimal_inverse
from . import _twosided as _ts
from ._base import AllocationResult, Binding, SideProblem, empty_result
from ._twosided import SideCurves, solve_two_sided

Sampling = Literal["thompson", "mean"]

#: Learners that have seen nothing (the prior of a ladder config), shared by every allocator of the process: never
#: updated (a venue's learner comes through the context), so sharing them changes nothing but the cost.
_PRIORS: dict[Any, tuple[Any, Any]] = {}
#: The last hit of :data:`_PRIORS`: (allocator, ladder config, market inputs, learner), compared by identity.
_LAST_PRIOR: list[Any] = []


@dataclass(frozen=True, slots=True, eq=False)
class LadderContext:
    """What an allocator of both sides at once sees beyond the two :class:`SideProblem` (built by ``build_ladder``).

    Attributes
    ----------
    coin : the market.
    mid_usd : the mid the level depths are measured from (USD).
    inventory_coins : position before this refresh's fills (coins, long > 0).
    max_position_coins : the position limit (coins): the learner's size scales follow it.
    sigma_usd_per_sqrt_s : the mid's volatility (USD per √s).
    maker_fee_bps : maker fee (bps; negative = rebate).
    risk_aversion : the ladder's γ (1/USD).
    horizon_s : the ladder's quote horizon (s): the default holding horizon of the inventory term.
    interval_s : time to the next refresh (s), when the caller knows it (the refresh core measures it); ``None``
        otherwise.
    ladder : the :class:`~hyper_make.ladder.LadderConfig` (its fill and adverse models make the learner's prior).
    learner : the payout learner whose posterior the curves come from (a
        :class:`~hyper_make.learn.PayoutLearner`), or ``None`` for the prior alone.
    """

    coin: str
    mid_usd: float
    inventory_coins: float
    max_position_coins: float
    sigma_usd_per_sqrt_s: float
    maker_fee_bps: float
    risk_aversion: float
    horizon_s: float
    interval_s: float | None
    ladder: Any
    learner: Any = None

    @classmethod
    def of(cls, snapshot: Any, coin: str, ladder: Any, interval_s: float | None, learner: Any) -> LadderContext:
        """The context of one build: ``snapshot``'s mid, position, limit, σ (USD per √s) and fee, ``ladder``'s γ and
        horizon (what ``build_ladder`` and the fast path hand a two-sided allocator)."""
        return cls(
            coin=coin,
            mid_usd=snapshot.mid_usd,
            inventory_coins=snapshot.inventory_coins,
            max_position_coins=snapshot.max_position_coins,
            sigma_usd_per_sqrt_s=snapshot.sigma_price_per_sqrt_s(),
            maker_fee_bps=snapshot.maker_fee_bps,
            risk_aversion=ladder.risk_aversion,
            horizon_s=ladder.horizon_s,
            interval_s=interval_s,
            ladder=ladder,
            learner=learner,
        )


@dataclass(frozen=True, slots=True, eq=False)
class LearnedAllocation:
    """Both sides' allocations and the curves they were solved on (the learned ones, per side)."""

    bid: AllocationResult
    ask: AllocationResult
    bid_curves: LevelCurves
    ask_curves: LevelCurves


@dataclass(frozen=True, kw_only=True)
class LearnedAllocator:
    """Exact two-sided allocation of the payout curves the refresh core learns from our fills (see the module doc).

    Parameters
    ----------
    sampling : {"thompson", "mean"}, default "thompson"
        Solve for one posterior draw of the curves every refresh (exploration and stealth), or for the posterior
        mean.
    interval_s : float, default 1.0
        Decision interval ``τ`` (s) when the caller gives none: the fills one refresh's ladder is valued on,
        ``(0, 3600]``.
    hold_s : float or None, default None
        Holding horizon ``H`` of the inventory term (s): the variance ``σ²H`` a position carries; ``None`` = the
        ladder's ``horizon_s``.
    risk_aversion : float or None, default None
        ``γ`` of the inventory term (1/USD), ``>= 0``; ``None`` = the ladder's ``risk_aversion``.
    half_life_s : float, default 3600
        The learner's forgetting half-life (s), ``> 0`` (``inf`` = never forget).
    prior_fills : float, default 5
        The prior's strength in pseudo-fills, ``> 0``.
    value_horizon_s : float, default 5
        The markout horizon a fill is valued at (s), one of ``markout_horizons_s``.
    markout_horizons_s : tuple of float, default (1, 5)
        Markout horizons the learner keeps (s), each one of the refresh core's ``markout_horizons_s``.
    size_penalty : {"auto", "sqrt", "linear", "power"}, default "auto"
        How the curves carry the learned size penalty (square root, linear, best β, or the lower AIC of sqrt and
        linear).
    sampling_cost : bool, default True
        Also solve the posterior mean each refresh and report what the draw costs under it
        (``sampling_cost_usd``), about 20 µs more per build.

    Diagnostics (both sides carry the shared ones): ``coupling_usd_per_coin`` (μ: the marginal inventory cost of a
    coin of expected position), ``inventory_risk_usd``, ``size_penalty_usd``, ``objective_usd``,
    ``expected_position_coins``, ``sampling_cost_usd`` (expected PnL under the posterior mean of its own optimum
    minus that of the published draw's, ``>= 0`` up to the lot search), ``size_model``, ``beta``, ``theta_bps``,
    ``kappa_bps``, ``interval_s``, ``learner_fills`` (fills the posterior has seen, decayed), ``discrete_gap_usd``,
    ``solve_ns``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    name: ClassVar[str] = "learned"
    needs_impact: ClassVar[bool] = False
    #: allocates both sides in one solve (``build_ladder`` calls :meth:`allocate_both`)
    two_sided: ClassVar[bool] = True
    #: reads a payout learner that the refresh core updates
    learns: ClassVar[bool] = True

    sampling: Sampling = "thompson"
    interval_s: float = 1.0
    hold_s: float | None = None
    risk_aversion: float | None = None
    half_life_s: float = 3600.0
    prior_fills: float = 5.0
    value_horizon_s: float = 5.0
    markout_horizons_s: tuple[float, ...] = (1.0, 5.0)
    size_penalty: Literal["auto", "sqrt", "linear", "power"] = "auto"
    sampling_cost: bool = True

    def __post_init__(self) -> None:
        check_choice("learned.sampling", self.sampling, ("thompson", "mean"))
        check_real("learned.interval_s", self.interval_s, lo=0.0, lo_open=True, hi=3600.0, unit="s")
        if self.hold_s is not None:
            check_real("learned.hold_s", self.hold_s, lo=0.0, lo_open=True, hi=86_400.0, unit="s")
        if self.risk_aversion is not None:
            check_real("learned.risk_aversion", self.risk_aversion, lo=0.0, unit="1/USD")
        if not isinstance(self.sampling_cost, bool):
            raise InvalidParameterError(f"'learned.sampling_cost' must be true or false; got {self.sampling_cost!r}")
        self.learner_config("BTC")  # the learner's own checks name the field

    # ---- the learner -------------------------------------------------------------------------------------
    def learner_config(self, coin: str, max_position_coins: float | None = None) -> Any:
        """The :class:`~hyper_make.learn.LearnerConfig` of ``coin`` with this allocator's hyperparameters; with
        ``max_position_coins`` (the position limit, coins) its size scales follow the market's: a typical order
        ``size_ref_coins`` = 2 % and a typical side ``side_ref_coins`` = 10 % of the limit (the defaults, 0.01 and
        0.05 BTC, at BTC's 0.5)."""
        from ..learn import LearnerConfig

        refs: dict[str, float] = {}
        if max_position_coins is not None and math.isfinite(max_position_coins) and max_position_coins > 0:
            refs = {"size_ref_coins": 0.02 * max_position_coins, "side_ref_coins": 0.1 * max_position_coins}
        try:
            return LearnerConfig(
                coin=coin,
                **refs,
                markout_horizons_s=tuple(self.markout_horizons_s),
                value_horizon_s=self.value_horizon_s,
                half_life_s=self.half_life_s,
                prior_fills=self.prior_fills,
                size_penalty=self.size_penalty,
            )
        except InvalidParameterError as exc:
            raise InvalidParameterError(str(exc).replace("'learner.", "'learned.")) from None

    def prior(self, ladder: Any, *, maker_fee_bps: float, sigma_frac_per_sqrt_s: float) -> Any:
        """The learner's prior from the ladder's fill and adverse-selection models (a
        :class:`~hyper_make.learn.LearnerPrior`): rate ``A·exp(-k·δ)`` (1/s), markout ``δ - fee - AS(δ)`` (bps)."""
        from ..learn import LearnerPrior

        return LearnerPrior.from_models(
            ladder.fill,
            ladder.adverse,
            maker_fee_bps=maker_fee_bps,
            horizon_s=ladder.horizon_s,
            sigma_frac_per_sqrt_s=sigma_frac_per_sqrt_s,
        )

    def new_learner(
        self,
        coin: str,
        ladder: Any,
        *,
        maker_fee_bps: float,
        sigma_frac_per_sqrt_s: float,
        max_position_coins: float | None = None,
    ) -> Any:
        """A :class:`~hyper_make.learn.PayoutLearner` that has seen nothing, with the prior of :meth:`prior` and the
        size scales of :meth:`learner_config`."""
        from ..learn import PayoutLearner

        prior = self.prior(ladder, maker_fee_bps=maker_fee_bps, sigma_frac_per_sqrt_s=sigma_frac_per_sqrt_s)
        return PayoutLearner(config=self.learner_config(coin, max_position_coins), prior=prior)

    def prior_learner(
        self,
        coin: str,
        ladder: Any,
        *,
        mid_usd: float,
        sigma_usd_per_sqrt_s: float,
        maker_fee_bps: float,
        max_position_coins: float | None = None,
    ) -> Any:
        """The learner that has seen nothing for this market (the prior of ``ladder``'s models, with the fee, σ in
        USD per √s at ``mid_usd`` USD, and the position limit in coins): what ``build_ladder`` uses without a
        learner, shared by every call with the same inputs (never updated). For :meth:`allocate_arrays`."""
        ctx = LadderContext(
            coin=coin,
            mid_usd=float(mid_usd),
            inventory_coins=0.0,
            max_position_coins=math.nan if max_position_coins is None else float(max_position_coins),
            sigma_usd_per_sqrt_s=float(sigma_usd_per_sqrt_s),
            maker_fee_bps=float(maker_fee_bps),
            risk_aversion=0.0,
            horizon_s=0.0,
            interval_s=None,
            ladder=ladder,
        )  # the prior reads only the market's inputs
        return self._learner_for(ctx)

    def _learner_for(self, ctx: LadderContext) -> Any:
        if ctx.learner is not None:
            return ctx.learner
        sig = ctx.sigma_usd_per_sqrt_s / ctx.mid_usd
        inputs = (ctx.coin, ctx.max_position_coins, ctx.maker_fee_bps, round(sig, 12))
        last = _LAST_PRIOR
        if last and last[0] is self and last[1] is ctx.ladder and last[2] == inputs:  # the refresh before's
            return last[3]
        try:  # a LadderConfig is a frozen value: equal configs share one prior
            hash(ctx.ladder)
            lkey: Any = ctx.ladder
        except TypeError:  # an unhashable part (a table model's arrays): by identity
            lkey = id(ctx.ladder)
        mp = ctx.max_position_coins
        mp = mp if mp is not None and math.isfinite(mp) and mp > 0 else None  # what learner_config reads of it
        # this allocator's hyperparameters (its own value) and the position limit fix the learner's config
        key = (self, ctx.coin, mp, lkey, ctx.maker_fee_bps, round(sig, 12))
        hit = _PRIORS.get(key)
        if hit is None or (hit[0] is not ctx.ladder and lkey == id(ctx.ladder)):
            if len(_PRIORS) > 32:
                _PRIORS.clear()
            lrn = self.new_learner(ctx.coin, ctx.ladder, maker_fee_bps=ctx.maker_fee_bps, sigma_frac_per_sqrt_s=sig,
                                   max_position_coins=ctx.max_position_coins)  # fmt: skip
            hit = _PRIORS[key] = (ctx.ladder, lrn)
        _LAST_PRIOR[:] = [self, ctx.ladder, inputs, hit[1]]  # by identity: hashing the configs costs µs
        return hit[1]

    # ---- allocation --------------------------------------------------------------------------------------
    def allocate(self, problem: SideProblem, rng: np.random.Generator) -> AllocationResult:
        """One side alone, with no venue context: the exact optimum of the problem's own curves (the prior with no
        data and a flat position; ``rng`` unused). :func:`~hyper_make.build_ladder` calls :meth:`allocate_both`."""
        t0 = time.perf_counter_ns()
        c = problem.curves
        if c.n == 0:
            return empty_result(0, "no price levels on this side")
        one = SideCurves(c.a, c.b, None, np.clip(c.fill_prob, 0.0, 1.0), 0.0, name=problem.side)
        none = SideCurves(np.zeros(0), np.zeros(0), name="other")
        sol = solve_two_sided(one, none, float(problem.budget_coins), 0.0, problem.caps_coins, np.zeros(0), 0.0, 0.0,
                              float(c.beta), float(problem.lot_coins), problem.min_size_coins, np.zeros(0))  # fmt: skip
        sizes = sol.bid
        if not sizes.any():
            return empty_result(c.n, "no level has a positive expected PnL under its curves")
        pnl = float(c.value(sizes).sum())
        diag: dict[str, float | int | bool | str] = {"solve_ns": time.perf_counter_ns() - t0}
        return AllocationResult(sizes, pnl, sol.bid_shadow_price, sol.bid_binding, sol.message, diag)

    def allocate_both(
        self, bid: SideProblem, ask: SideProblem, ctx: LadderContext, rng: np.random.Generator
    ) -> LearnedAllocation:
        """Both sides in one exact solve on the learner's curves (one posterior draw, or its mean): a wrapper over
        :meth:`allocate_arrays` that returns :class:`AllocationResult` and :class:`LevelCurves` per side."""
        learner = self._learner_for(ctx)
        r = self.allocate_arrays(
            bid.curves.depth_bps,
            ask.curves.depth_bps,
            budget_bid_coins=float(bid.budget_coins),
            budget_ask_coins=float(ask.budget_coins),
            caps_bid_coins=bid.caps_coins,
            caps_ask_coins=ask.caps_coins,
            lot_coins=float(bid.lot_coins),
            min_bid_coins=bid.min_size_coins,
            min_ask_coins=ask.min_size_coins,
            mid_usd=ctx.mid_usd,
            inventory_coins=ctx.inventory_coins,
            sigma_usd_per_sqrt_s=ctx.sigma_usd_per_sqrt_s,
            risk_aversion=ctx.risk_aversion,
            horizon_s=ctx.horizon_s,
            interval_s=ctx.interval_s,
            learner=learner,
            rng=rng,
        )
        diag = r.diagnostics()
        msg = r.message
        out = []
        for side, prob, sizes in (("bid", bid, r.bid_sizes), ("ask", ask, r.ask_sizes)):
            lc = r.level_curves(side, prob.curves)
            out.append((_result(side, prob, lc, sizes, r.shadow_price(side), r.binding(side), msg, diag,
                                r.expected_pnl_usd(side)), lc))  # fmt: skip
        return LearnedAllocation(out[0][0], out[1][0], out[0][1], out[1][1])

    def allocate_arrays(
        self,
        depth_bid_bps: NDArray[np.float64],
        depth_ask_bps: NDArray[np.float64],
        *,
        budget_bid_coins: float,
        budget_ask_coins: float,
        caps_bid_coins: NDArray[np.float64],
        caps_ask_coins: NDArray[np.float64],
        lot_coins: float,
        min_bid_coins: NDArray[np.float64],
        min_ask_coins: NDArray[np.float64],
        mid_usd: float,
        inventory_coins: float,
        sigma_usd_per_sqrt_s: float,
        risk_aversion: float,
        horizon_s: float,
        interval_s: float | None,
        learner: Any,
        rng: np.random.Generator | None,
    ) -> LearnedArrays:
        """The two-sided learned allocation on plain arrays, compiled end to end (the array-level entry of the fast
        path; :meth:`allocate_both` wraps it).

        Parameters
        ----------
        depth_bid_bps, depth_ask_bps : each side's level depths from the mid (bps), from the touch out.
        budget_bid_coins, budget_ask_coins : most each side rests (coins), ``>= 0`` (0 = the side stays empty).
        caps_bid_coins, caps_ask_coins : per-level caps (coins, ``inf`` = none), one per level.
        lot_coins : the size increment (coins), ``> 0``.
        min_bid_coins, min_ask_coins : the smallest order per level (coins), one per level.
        mid_usd : the mid (USD), ``> 0``.
        inventory_coins : the position before this refresh's fills (coins).
        sigma_usd_per_sqrt_s : the mid's volatility (USD per √s), ``>= 0``.
        risk_aversion : the ladder's γ (1/USD; this allocator's ``risk_aversion`` wins when set).
        horizon_s : the ladder's quote horizon (s): the holding horizon unless ``hold_s`` is set.
        interval_s : the time to the next refresh (s); ``None`` or ``<= 0`` = this allocator's ``interval_s``.
        learner : the :class:`~hyper_make.learn.PayoutLearner` (:meth:`new_learner` for the prior alone).
        rng : the generator of the Thompson draw (unused, may be ``None``, with ``sampling = "mean"``).

        Arrays are used as given when they are C-contiguous float64 (converted otherwise) and are not validated
        beyond the scalars: the caller (``build_ladder`` or the fast path) builds them. Returns
        :class:`LearnedArrays`.
        """
        t0 = time.perf_counter_ns()
        learned_solve, _rates = _KERNEL if _KERNEL else _load_kernel()
        mid, q, sig = float(mid_usd), float(inventory_coins), float(sigma_usd_per_sqrt_s)
        if not (mid > 0 and math.isfinite(mid) and math.isfinite(q) and sig >= 0 and math.isfinite(sig)):
            check_real("mid_usd", mid, lo=0.0, lo_open=True, unit="USD")
            check_real("inventory_coins", q, unit="coins")
            check_real("sigma_usd_per_sqrt_s", sig, lo=0.0, unit="USD per sqrt(s)")
        tau = float(interval_s) if interval_s is not None and interval_s > 0 else self.interval_s
        gamma = float(risk_aversion) if self.risk_aversion is None else self.risk_aversion
        hold = float(horizon_s) if self.hold_s is None else self.hold_s
        kappa = 0.5 * gamma * sig**2 * hold
        lot = float(lot_coins)
        if not (lot > 0 and math.isfinite(lot) and math.isfinite(kappa) and kappa >= 0 and math.isfinite(tau)):
            check_real("lot_coins", lot, lo=0.0, lo_open=True, unit="coins")
            check_real("risk_aversion", gamma, lo=0.0, unit="1/USD")
            check_real("horizon_s", hold, lo=0.0, unit="s")
            check_real("interval_s", tau, lo=0.0, lo_open=True, unit="s")
        db, da = _f64(depth_bid_bps), _f64(depth_ask_bps)
        thompson = self.sampling == "thompson"
        if thompson and not isinstance(rng, np.random.Generator):
            raise InvalidParameterError(f"'rng' must be a numpy.random.Generator; got {type(rng).__name__}")
        mean = learner.draw(None)
        draw = learner.draw(rng) if thompson else mean
        lr, dev, coef, lam, model, beta = draw
        with_mean = thompson and self.sampling_cost
        cur_b, cur_a = np.empty((7, db.shape[0])), np.empty((7, da.shape[0]))
        sb, sa = np.empty(db.shape[0]), np.empty(da.shape[0])
        res = np.empty(_ts.N_LEARNED)
        pr = learner.prior
        rates, probs = _rates(db, da, pr, learner._centres, lr, mean[0] if with_mean else None, tau)
        learned_solve(
            db, da, pr.depth_bps, pr.markout_bps, learner._centres, rates, probs,
            dev, coef, lam, mean[1], mean[2], mean[3], with_mean, model == 1, beta,
            mid, tau, q, kappa, float(budget_bid_coins), float(budget_ask_coins), _f64(caps_bid_coins),
            _f64(caps_ask_coins), _f64(min_bid_coins), _f64(min_ask_coins), lot, float(_decimal_inverse(lot)),
            cur_b, cur_a, sb, sa, res,
        )  # fmt: skip
        coef = coef if thompson else coef.copy()  # the mean's slopes are the learner's own buffer: keep a copy
        return LearnedArrays(sb, sa, cur_b, cur_a, coef, model, beta, lam, tau, learner._posterior_arrays().fills_total,
                             res, time.perf_counter_ns() - t0)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class LearnedArrays:
    """What :meth:`LearnedAllocator.allocate_arrays` returns: both sides' sizes and learned curves as arrays.

    Attributes
    ----------
    bid_sizes, ask_sizes : sizes per level (coins), on the lot grid, each level 0 or at least its minimum.
    bid_curves, ask_curves : the solve's curves per side, shape ``(7, n)``: rows ``a`` (USD/coin, display cost
        included), ``b`` (USD/coin^(1+β)), ``c`` (USD/coin²), ``p`` (the published ``fill_prob``), ``rate``
        (1/s), ``markout`` (bps), capture (USD/coin, the published ``capture_usd``).
    coef : per side, the drawn (or mean) size and side-total slopes ``(θ, κ)`` before clipping at 0 (bps per
        coin^β, bps per coin), shape ``(2, 2)``.
    model : the size model's code (0 sqrt, 1 linear, 2 power); ``solve_beta`` the exponent of the solve's ``b``
        (0.5 for the linear model, whose penalty is the ``c·s²`` term).
    display_bps_per_coin_s : λ used (bps/s per coin); ``interval_s`` the decision interval τ (s);
        ``learner_fills`` the (decayed) fills the posterior has seen.
    result : the compiled solve's scalars (slots ``R_*`` and ``L_*`` of :mod:`hyper_make.allocate._twosided`),
        read through the properties below.
    solve_ns : wall time of the call (ns).
    """

    bid_sizes: NDArray[np.float64]
    ask_sizes: NDArray[np.float64]
    bid_curves: NDArray[np.float64]
    ask_curves: NDArray[np.float64]
    coef: NDArray[np.float64]
    model: int
    solve_beta: float
    display_bps_per_coin_s: float
    interval_s: float
    learner_fills: float
    result: NDArray[np.float64]
    solve_ns: int

    @property
    def size_model(self) -> str:
        """``"sqrt"``, ``"linear"`` or ``"power"``."""
        return ("sqrt", "linear", "power")[self.model]

    @property
    def beta(self) -> float:
        """The published size penalty's exponent (1 for the linear model)."""
        return 1.0 if self.model == 1 else self.solve_beta

    @property
    def bid_fill_prob(self) -> NDArray[np.float64]:
        """The learned ``p = 1 - exp(-ρ·τ)`` per bid level (the published ``fill_prob``)."""
        return self.bid_curves[3]

    @property
    def ask_fill_prob(self) -> NDArray[np.float64]:
        """The learned ``p`` per ask level."""
        return self.ask_curves[3]

    @property
    def bid_capture_usd(self) -> NDArray[np.float64]:
        """The learned markout per filled coin on the bid, net of fees and adverse selection (USD/coin; the
        published ``capture_usd``, with ``adverse_usd = 0``)."""
        return self.bid_curves[6]

    @property
    def ask_capture_usd(self) -> NDArray[np.float64]:
        """The learned markout per filled coin on the ask (USD/coin)."""
        return self.ask_curves[6]

    @property
    def bid_b_forward(self) -> NDArray[np.float64]:
        """The bid's size penalty as published (USD/coin^(1+beta), ``beta`` :attr:`beta`)."""
        return self.bid_curves[2] if self.model == 1 else self.bid_curves[1]

    @property
    def ask_b_forward(self) -> NDArray[np.float64]:
        """The ask's size penalty as published (USD/coin^(1+beta))."""
        return self.ask_curves[2] if self.model == 1 else self.ask_curves[1]

    @property
    def side_k(self) -> tuple[float, float]:
        """Each side's total penalty ``k`` (USD/coin²)."""
        return float(self.result[_ts.L_K_B]), float(self.result[_ts.L_K_A])

    @property
    def theta_bps(self) -> tuple[float, float]:
        """Per side, the size slope used, ``max(θ, 0)`` (bps per coin^β)."""
        return max(float(self.coef[0, 0]), 0.0), max(float(self.coef[1, 0]), 0.0)

    @property
    def kappa_bps(self) -> tuple[float, float]:
        """Per side, the side-total slope used, ``max(κ, 0)`` (bps per coin)."""
        return max(float(self.coef[0, 1]), 0.0), max(float(self.coef[1, 1]), 0.0)

    @property
    def coupling_usd_per_coin(self) -> float:
        """μ, the marginal inventory cost of a coin of expected position (USD/coin)."""
        return float(self.result[_ts.R_MU])

    @property
    def objective_usd(self) -> float:
        """The two-sided objective at the sizes (USD), ``-κ·q²`` included."""
        return float(self.result[_ts.R_OBJ])

    @property
    def inventory_risk_usd(self) -> float:
        """``-κ·E[(q + ΔQ)²]`` at the sizes (USD)."""
        return float(self.result[_ts.R_RISK])

    @property
    def size_penalty_usd(self) -> float:
        """The size and side-total penalties plus the impact term at the sizes (USD, ``<= 0``)."""
        return float(self.result[_ts.R_SIZE]) + float(self.result[_ts.R_IMPACT])

    @property
    def expected_position_coins(self) -> float:
        """``q + E ΔQ`` at the sizes (coins)."""
        return float(self.result[_ts.R_M])

    @property
    def discrete_gap_usd(self) -> float:
        """Continuous optimum minus the lot grid's (USD, ``>= 0``)."""
        return float(self.result[_ts.R_GAP])

    @property
    def sampling_cost_usd(self) -> float:
        """Under the posterior mean, its own optimum minus the value of the draw's sizes (USD; NaN when not
        computed: ``sampling = "mean"`` or ``sampling_cost = false``)."""
        return float(self.result[_ts.L_SAMPLING_COST])

    def expected_pnl_usd(self, side: str) -> float:
        """``Σ value(sizes)`` of the side under its published curves (USD)."""
        return float(self.result[_ts.L_PNL_B if side == "bid" else _ts.L_PNL_A])

    def shadow_price(self, side: str) -> float:
        """λ of the side's budget (USD/coin)."""
        return float(self.result[_ts.R_LB if side == "bid" else _ts.R_LA])

    def binding(self, side: str) -> Binding:
        """What stops the side (``"budget"``, ``"caps"``, ``"marginal"``, ``"empty"``)."""
        return _ts._BINDING[int(self.result[_ts.R_CODE_B if side == "bid" else _ts.R_CODE_A])]

    @property
    def message(self) -> str:
        """One line for humans, as :func:`~hyper_make.allocate._twosided.solve_two_sided` words it."""
        r = self.result.tolist()
        cb, ca = int(r[_ts.R_CODE_B]), int(r[_ts.R_CODE_A])
        msg = (
            f"bid {_ts._side_msg_total(cb, r[_ts.R_CONT_TB], r[_ts.R_LB])}; "
            f"ask {_ts._side_msg_total(ca, r[_ts.R_CONT_TA], r[_ts.R_LA])}; "
            f"expected position {r[_ts.R_CONT_M]:.6g} coins, coupling {r[_ts.R_MU]:.6g} USD/coin"
        )
        if not r[_ts.R_OK]:
            msg = (f"a search stopped at its iteration limit ({int(r[_ts.R_N_OUT])} outer, {int(r[_ts.R_N_IN])} "
                   "inner steps); " + msg)  # fmt: skip
        if r[_ts.R_CERT] >= 0:
            msg += f"; on the lot grid {r[_ts.R_GAP]:.3g} USD below the continuous optimum"
            if r[_ts.R_CERT] == 0:
                msg += " (local search)"
        return msg

    def diagnostics(self) -> dict[str, float | int | bool | str]:
        """The shared diagnostics both sides' :class:`AllocationResult` carry (see :class:`LearnedAllocator`)."""
        r = self.result.tolist()
        th, ka = self.theta_bps, self.kappa_bps
        diag: dict[str, float | int | bool | str] = {
            "coupling_usd_per_coin": r[_ts.R_MU],
            "inventory_risk_usd": r[_ts.R_RISK],
            "size_penalty_usd": r[_ts.R_SIZE] + r[_ts.R_IMPACT],
            "objective_usd": r[_ts.R_OBJ],
            "expected_position_coins": r[_ts.R_M],
            "size_model": self.size_model,
            "beta": self.solve_beta,
            "theta_bps": max(th),
            "kappa_bps": max(ka),
            "interval_s": self.interval_s,
            "learner_fills": self.learner_fills,
            "display_bps_per_coin_s": self.display_bps_per_coin_s,
            "discrete_gap_usd": r[_ts.R_GAP],
        }
        if not math.isnan(r[_ts.L_SAMPLING_COST]):
            diag["sampling_cost_usd"] = r[_ts.L_SAMPLING_COST]
        diag["solve_ns"] = self.solve_ns
        return diag

    def level_curves(self, side: str, model: LevelCurves) -> LevelCurves:
        """The learned side as :class:`LevelCurves` on ``model``'s depths and prices: ``P = p``, capture = the
        learned markout, the size penalty as ``b_forward`` (for the linear model with β = 1)."""
        bid = side == "bid"
        zeros = np.zeros(model.n)
        return LevelCurves(
            depth_bps=model.depth_bps,
            price_usd=model.price_usd,
            fill_prob=self.bid_fill_prob if bid else self.ask_fill_prob,
            capture_usd=self.bid_capture_usd if bid else self.ask_capture_usd,
            adverse_usd=zeros,
            b_forward=self.bid_b_forward if bid else self.ask_b_forward,
            b_roundtrip=zeros,
            beta=self.beta,
            mid_usd=model.mid_usd,
            inventory_usd=zeros,  # the learned markout holds it: what the reference's zeros_like left
        )


_KERNEL: list[Any] = []


def _load_kernel() -> Any:
    """The compiled build and its rate step (imported on first use: the learner package imports this one's
    solver)."""
    from ..learn._kernels import learned_solve, rates_and_fill_probs

    _KERNEL[:] = [learned_solve, rates_and_fill_probs]
    return _KERNEL


def _f64(x: Any) -> NDArray[np.float64]:
    """``x`` as a C-contiguous float64 array (itself when it is one already)."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.float64)


def _with_display_cost(curves: Any, q: float, tau: float, mid: float) -> Any:
    """``curves`` with the cost of showing size that the market leans against, taken off the edges.

    With the mid drifting ``λ·D`` bps/s for a net display ``D = Σ bids − Σ asks`` (coins), our position ``q`` gains
    ``q·λ·D·τ·mid/1e4`` USD over the interval: ``±q·λ·τ·mid/1e4`` per coin shown on the bid / ask. Only the cost is
    taken (``min(0, ·)``): a display that would move the price our way is never rewarded, since quoting size in order
    to move the price (spoofing) is not a strategy this library builds.
    """
    lam = float(getattr(curves, "display_bps_per_coin_s", 0.0))
    g = q * lam * tau * mid * 1e-4  # USD per coin shown on the bid side
    if g == 0.0:
        return curves
    out = []
    for sc, sign in ((curves.bid, 1.0), (curves.ask, -1.0)):
        cost = min(0.0, sign * g)
        out.append(SideCurves(sc.a + cost, sc.b, sc.c, sc.p, sc.k, name=sc.name) if cost < 0.0 else sc)
    return dataclasses.replace(curves, bid=out[0], ask=out[1])


def _level_curves(
    model: LevelCurves, sc: SideCurves, markout_bps: NDArray[np.float64], mid: float, beta: float, size_model: str
) -> LevelCurves:
    """The learned side as :class:`LevelCurves`: ``P = p``, capture = the learned markout (net of fees and adverse
    selection, USD/coin), the size penalty as ``b_forward`` (for the linear model as ``b`` with β = 1)."""
    assert sc.c is not None and sc.p is not None
    linear = size_model == "linear"
    zeros = np.zeros(model.n)
    return LevelCurves(
        depth_bps=model.depth_bps,
        price_usd=model.price_usd,
        fill_prob=sc.p,
        capture_usd=np.asarray(markout_bps, dtype=np.float64) * mid * 1e-4,
        adverse_usd=zeros,
        b_forward=sc.c if linear else sc.b,
        b_roundtrip=zeros,
        beta=1.0 if linear else beta,
        mid_usd=model.mid_usd,
    )


def _result(
    side: str,
    problem: SideProblem,
    curves: LevelCurves,
    sizes: NDArray[np.float64],
    lam: float,
    binding: Binding,
    message: str,
    diag: dict[str, float | int | bool | str],
    pnl: float | None = None,
) -> AllocationResult:
    if not sizes.any():
        why = (
            "no level has a positive learned value net of the inventory risk"
            if problem.budget_coins > 0
            else "zero budget"
        )
        return empty_result(curves.n, why, diagnostics=dict(diag))
    if pnl is None:
        pnl = float(curves.value(sizes).sum())
    if not math.isfinite(pnl):  # pragma: no cover - the curves are checked finite
        raise InvalidParameterError(f"learned {side} side: non-finite expected PnL")
    return AllocationResult(sizes, pnl, lam, binding, message, dict(diag))


__all__ = ["LadderContext", "LearnedAllocation", "LearnedAllocator", "LearnedArrays"]
