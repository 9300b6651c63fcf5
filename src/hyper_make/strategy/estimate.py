"""Online market state for the quoting loop: mid, BBO, σ and traded volume from the book and trade streams.

Both estimates are exponentially weighted in time (half-life ``halflife_s``) and shrunk to a prior (the
configured snapshot) that counts as ``prior_weight_s`` seconds of data, so the first refreshes quote on the
prior and the estimate takes over as data arrives:

    σ²  = (σ0²·W0 + Σ w·r²) / (W0 + Σ w·Δt)        per second; r the log return of the mid between updates
    vol = (v0·W0 + Σ w·sz) / (W0 + Σ w·Δt)         coins per second; daily volume = 86,400·vol

with weights ``w = 2^(-age / halflife_s)``. Volume at depth follows from the daily volume and σ through the
impact model's occupation profile (:mod:`hyper_make.economics.impact`). Times are the loop's clock (seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .._validate import PYDANTIC_CONFIG, check_real
from ..economics.impact import SECONDS_PER_DAY
from ..snapshot import MarketSnapshot, Regime

_LN2 = math.log(2.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class EstimatorConfig:
    """How fast the loop's σ and volume estimates forget, and how much the prior weighs.

    Parameters
    ----------
    halflife_s : float, default 300
        Half-life of the exponential weights (seconds), ``> 0``.
    prior_weight_s : float, default 60
        The prior snapshot's σ and volume count as this many seconds of data, ``>= 0``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    halflife_s: float = 300.0
    prior_weight_s: float = 60.0

    def __post_init__(self) -> None:
        check_real("estimator.halflife_s", self.halflife_s, lo=0.0, lo_open=True, hi=1e7, unit="s")
        check_real("estimator.prior_weight_s", self.prior_weight_s, lo=0.0, hi=1e7, unit="s")


class MarketEstimator:
    """Mid, BBO, σ and volume of one coin, updated from ``l2Book`` and ``trades`` messages.

    Parameters
    ----------
    prior : the configured snapshot: σ (over its ``sigma_horizon_s``) and ``daily_volume_coins`` are the prior.
    config : half-life and prior weight.
    """

    def __init__(self, prior: MarketSnapshot, config: EstimatorConfig | None = None) -> None:
        self.config = config if config is not None else EstimatorConfig()
        self.prior = prior
        self._var0 = prior.sigma_frac**2 / prior.sigma_horizon_s  # per second
        self._vol0 = prior.daily_volume_coins / SECONDS_PER_DAY  # coins per second
        self._sum_r2 = 0.0
        self._sum_vol = 0.0
        self._sum_t = 0.0
        self._t: float | None = None
        self.mid_usd: float | None = None
        self.best_bid_usd: float | None = None
        self.best_ask_usd: float | None = None
        self.last_book_s: float | None = None
        self.n_books = 0
        self.n_trades = 0

    def _advance(self, t_s: float) -> None:
        """Age the sums to ``t_s`` and add the elapsed (weighted) time."""
        if self._t is None:
            self._t = t_s
            return
        dt = t_s - self._t
        if dt <= 0:
            return
        hl = self.config.halflife_s
        decay = 2.0 ** (-dt / hl)
        self._sum_r2 *= decay
        self._sum_vol *= decay
        self._sum_t = self._sum_t * decay + hl / _LN2 * (1.0 - decay)
        self._t = t_s

    def on_book(self, t_s: float, best_bid_usd: float, best_ask_usd: float) -> None:
        """A book update at ``t_s`` (s) with its best bid and ask (USD); a crossed or one-sided book is ignored."""
        if not (0 < best_bid_usd < best_ask_usd and math.isfinite(best_ask_usd)):
            return
        mid = 0.5 * (best_bid_usd + best_ask_usd)
        self._advance(t_s)
        if self.mid_usd is not None:
            self._sum_r2 += math.log(mid / self.mid_usd) ** 2
        self.mid_usd, self.best_bid_usd, self.best_ask_usd = mid, best_bid_usd, best_ask_usd
        self.last_book_s = t_s
        self.n_books += 1

    def on_trade(self, t_s: float, size_coins: float) -> None:
        """Others' (or our) trade of ``size_coins`` at ``t_s`` (s)."""
        if not (size_coins > 0 and math.isfinite(size_coins)):
            return
        self._advance(t_s)
        self._sum_vol += size_coins
        self.n_trades += 1

    def sigma_frac_per_sqrt_s(self, t_s: float) -> float:
        """σ of the mid over one second (fraction of price), shrunk to the prior."""
        self._advance(t_s)
        w0 = self.config.prior_weight_s
        den = w0 + self._sum_t
        var = (self._var0 * w0 + self._sum_r2) / den if den > 0 else self._var0
        return math.sqrt(max(var, 1e-16))

    def daily_volume_coins(self, t_s: float) -> float:
        """Traded volume per day (coins), shrunk to the prior."""
        self._advance(t_s)
        w0 = self.config.prior_weight_s
        den = w0 + self._sum_t
        rate = (self._vol0 * w0 + self._sum_vol) / den if den > 0 else self._vol0
        return rate * SECONDS_PER_DAY

    def snapshot(
        self,
        t_s: float,
        *,
        inventory_coins: float,
        max_position_coins: float,
        ts_ns: int,
        margin_usd: float | None = None,
    ) -> MarketSnapshot:
        """The prior snapshot with the live mid, BBO, σ (over 1 s), volume, inventory, limit and (when given) the
        margin (USD).

        ``regime.vol_ratio`` becomes σ over the prior σ (the legacy allocator's temperature reads it).

        Raises
        ------
        RuntimeError
            If no book has been seen yet.
        """
        if self.mid_usd is None or self.best_bid_usd is None or self.best_ask_usd is None:
            raise RuntimeError("no book yet: the loop must wait for the first l2Book message")
        sigma = self.sigma_frac_per_sqrt_s(t_s)
        r = self.prior.regime
        regime = Regime(
            toxicity=r.toxicity, vol_ratio=sigma / math.sqrt(self._var0), cascade_severity=r.cascade_severity
        )
        volume = self.daily_volume_coins(t_s)
        # the book is two-sided (``on_book``), σ clipped, the prior checked: ``derive`` checks what the venue reports
        return self.prior.derive(
            mid_usd=self.mid_usd,
            best_bid_usd=self.best_bid_usd,
            best_ask_usd=self.best_ask_usd,
            sigma_frac=min(sigma, 1.0),
            sigma_horizon_s=1.0,
            daily_volume_coins=volume if volume > 0 else self.prior.daily_volume_coins,
            inventory_coins=inventory_coins,
            max_position_coins=max_position_coins,
            regime=regime,
            ts_ns=ts_ns,
            margin_usd=self.prior.margin_usd if margin_usd is None else max(margin_usd, 1e-9),
        )
