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
from ._base import AllocationResult, Binding, SideProblem, empty_result
from ._twosided import SideCurves, solve_two_sided, split_objective

Sampling = Literal["thompson", "mean"]

#: Learners that have seen nothing (the prior of a ladder config), shared by every allocator of the process: never
#: updated (a venue's learner comes through the context), so sharing them changes nothing but the cost.
_PRIORS: dict[Any, tuple[Any, Any]] = {}


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

    def _learner_for(self, ctx: LadderContext) -> Any:
        if ctx.learner is not None:
            return ctx.learner
        sig = ctx.sigma_usd_per_sqrt_s / ctx.mid_usd
        try:  # a LadderConfig is a frozen value: equal configs share one prior
            hash(ctx.ladder)
            lkey: Any = ctx.ladder
        except TypeError:  # an unhashable part (a table model's arrays): by identity
            lkey = id(ctx.ladder)
        key = (self.learner_config(ctx.coin, ctx.max_position_coins), lkey, ctx.maker_fee_bps, round(sig, 12))
        hit = _PRIORS.get(key)
        if hit is None or (hit[0] is not ctx.ladder and lkey == id(ctx.ladder)):
            if len(_PRIORS) > 32:
                _PRIORS.clear()
            lrn = self.new_learner(ctx.coin, ctx.ladder, maker_fee_bps=ctx.maker_fee_bps, sigma_frac_per_sqrt_s=sig,
                                   max_position_coins=ctx.max_position_coins)  # fmt: skip
            hit = _PRIORS[key] = (ctx.ladder, lrn)
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
        """Both sides in one exact solve on the learner's curves (one posterior draw, or its mean)."""
        t0 = time.perf_counter_ns()
        learner = self._learner_for(ctx)
        tau = ctx.interval_s if ctx.interval_s is not None and ctx.interval_s > 0 else self.interval_s
        db, da = bid.curves.depth_bps, ask.curves.depth_bps
        mid = ctx.mid_usd
        if self.sampling == "thompson":
            curves = learner.sample(rng, db, da, mid_usd=mid, horizon_s=tau)
        else:
            curves = learner.mean(db, da, mid_usd=mid, horizon_s=tau)
        gamma = ctx.risk_aversion if self.risk_aversion is None else self.risk_aversion
        hold = ctx.horizon_s if self.hold_s is None else self.hold_s
        kappa = 0.5 * gamma * ctx.sigma_usd_per_sqrt_s**2 * hold
        q = ctx.inventory_coins
        curves = _with_display_cost(curves, q, tau, mid)
        lot = float(bid.lot_coins)
        args = (bid.budget_coins, ask.budget_coins, bid.caps_coins, ask.caps_coins, q, kappa, curves.beta, lot,
                bid.min_size_coins, ask.min_size_coins)  # fmt: skip
        sol = solve_two_sided(curves.bid, curves.ask, *args)
        diag: dict[str, float | int | bool | str] = {
            "coupling_usd_per_coin": sol.coupling,
            "inventory_risk_usd": sol.inventory_risk_usd,
            "size_penalty_usd": sol.size_penalty_usd + sol.impact_usd,
            "objective_usd": sol.objective_usd,
            "expected_position_coins": sol.expected_position_coins,
            "size_model": curves.model,
            "beta": curves.beta,
            "theta_bps": max(curves.theta_bps),
            "kappa_bps": max(curves.kappa_bps),
            "interval_s": tau,
            "learner_fills": float(learner.state["fill_count"].sum()),
            "display_bps_per_coin_s": curves.display_bps_per_coin_s,
            "discrete_gap_usd": sol.discrete_gap_usd,
        }
        if self.sampling == "thompson" and self.sampling_cost:
            mean = _with_display_cost(learner.mean(db, da, mid_usd=mid, horizon_s=tau), q, tau, mid)
            best = solve_two_sided(mean.bid, mean.ask, *args[:6], mean.beta, *args[7:])
            at_draw = _objective(mean, sol.bid, sol.ask, q, kappa)
            diag["sampling_cost_usd"] = best.objective_usd - at_draw
        diag["solve_ns"] = time.perf_counter_ns() - t0
        out = []
        for side, prob, sc, sizes, lam, binding, mk in (
            ("bid", bid, curves.bid, sol.bid, sol.bid_shadow_price, sol.bid_binding, curves.markout_bps[0]),
            ("ask", ask, curves.ask, sol.ask, sol.ask_shadow_price, sol.ask_binding, curves.markout_bps[1]),
        ):
            lc = _level_curves(prob.curves, sc, mk, mid, curves.beta, curves.model)
            out.append((_result(side, prob, lc, sizes, lam, binding, sol.message, diag), lc))
        return LearnedAllocation(out[0][0], out[1][0], out[0][1], out[1][1])


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


def _objective(curves: Any, s_bid: NDArray[np.float64], s_ask: NDArray[np.float64], q: float, kappa: float) -> float:
    """The two-sided objective (USD) of given sizes under ``curves`` (a PayoutCurves)."""
    parts = split_objective(curves.bid, curves.ask, s_bid, s_ask, q=q, kappa=kappa, beta=curves.beta)
    return float(parts["objective_usd"])


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
) -> AllocationResult:
    if not sizes.any():
        why = (
            "no level has a positive learned value net of the inventory risk"
            if problem.budget_coins > 0
            else "zero budget"
        )
        return empty_result(curves.n, why, diagnostics=dict(diag))
    pnl = float(curves.value(sizes).sum())
    if not math.isfinite(pnl):  # pragma: no cover - the curves are checked finite
        raise InvalidParameterError(f"learned {side} side: non-finite expected PnL")
    return AllocationResult(sizes, pnl, lam, binding, message, dict(diag))


__all__ = ["LadderContext", "LearnedAllocation", "LearnedAllocator"]
