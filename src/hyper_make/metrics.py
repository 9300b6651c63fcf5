"""Performance metrics shared by the simulator and the replay backtester: NumPy in, floats and dicts out.

Every function states its unit and its sampling assumption. PnL is in USD, time in seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from .errors import DataError


def _vec(name: str, x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size and not np.all(np.isfinite(a)):
        raise DataError(f"'{name}' must be finite; got {int(np.sum(~np.isfinite(a)))} non-finite values")
    return a


def mean_std(pnl_usd: ArrayLike) -> tuple[float, float]:
    """Sample mean and standard deviation (ddof=1; 0 for one sample) of per-path PnL (USD)."""
    a = _vec("pnl_usd", pnl_usd)
    if a.size == 0:
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def sharpe(pnl_usd: ArrayLike, *, periods_per_year: float | None = None) -> float:
    """Sharpe ratio ``mean / std`` (ddof=1) of PnL samples, dimensionless; NaN if std is 0 or < 2 samples.

    Sampling assumption: the samples are i.i.d. PnL over equal periods (here: one per simulated path, each of
    the same length). With ``periods_per_year`` the ratio is annualised by ``sqrt(periods_per_year)``, which
    is only meaningful when the periods are independent; without it the ratio is per period (per path).
    """
    m, s = mean_std(pnl_usd)
    if not np.isfinite(s) or s <= 0:
        return float("nan")
    r = m / s
    return r * math.sqrt(periods_per_year) if periods_per_year else r


def max_drawdown(equity_usd: ArrayLike) -> float:
    """Largest peak-to-trough fall of an equity curve (USD, ``>= 0``): ``max_t (max_{u<=t} E_u - E_t)``."""
    e = _vec("equity_usd", equity_usd)
    if e.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(e) - e))


def paired_ci(a_usd: ArrayLike, b_usd: ArrayLike, *, level: float = 0.95) -> dict[str, float]:
    """Confidence interval of ``mean(a - b)`` for paired samples (same seeds), Student t on the differences.

    Returns ``{"mean_diff", "lo", "hi", "stderr", "n", "p_value"}`` (USD, except ``n`` and the two-sided
    ``p_value`` of "no difference"). NaN bounds for fewer than two pairs.
    """
    a, b = _vec("a_usd", a_usd), _vec("b_usd", b_usd)
    if a.shape != b.shape:
        raise DataError(f"paired samples must have the same length; got {a.size} and {b.size}")
    if not 0.0 < level < 1.0:
        raise DataError(f"'level' must be in (0, 1); got {level!r}")
    d = a - b
    n = d.size
    if n == 0:
        return {"mean_diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "stderr": float("nan"), "n": 0,
                "p_value": float("nan")}  # fmt: skip
    m = float(d.mean())
    if n < 2:
        return {"mean_diff": m, "lo": float("nan"), "hi": float("nan"), "stderr": float("nan"), "n": 1,
                "p_value": float("nan")}  # fmt: skip
    from scipy import stats  # here, not at import: SciPy costs ~0.2 s of start-up

    se = float(d.std(ddof=1) / math.sqrt(n))
    t = float(stats.t.ppf(0.5 + level / 2.0, n - 1))
    p = float(2.0 * stats.t.sf(abs(m) / se, n - 1)) if se > 0 else (0.0 if m != 0 else 1.0)
    return {"mean_diff": m, "lo": m - t * se, "hi": m + t * se, "stderr": se, "n": n, "p_value": p}


def block_bootstrap_ci(
    increments_usd: ArrayLike,
    *,
    block_len: int,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Confidence interval of a replay's total PnL from one path: the moving-block bootstrap over time.

    ``increments_usd`` are the PnL changes over consecutive equal intervals of one replay (USD; e.g. the equity's
    differences at every refresh; for a paired comparison, the differences of two allocators' increments on the
    same intervals). Blocks of ``block_len`` consecutive increments (keeping the autocorrelation within a block:
    inventory held for a while, volatility clusters) are drawn with replacement, start uniform, until the series'
    length is covered; the total of each resample is one draw. Returns ``{"total", "lo", "hi", "se", "n",
    "block_len", "n_boot"}`` (USD for the first four; percentile interval at ``level``). NaN bounds when the series
    is shorter than two blocks. Deterministic for a ``seed``.
    """
    x = _vec("increments_usd", increments_usd)
    if isinstance(block_len, bool) or not isinstance(block_len, (int, np.integer)) or block_len < 1:
        raise DataError(f"'block_len' must be a positive integer (intervals); got {block_len!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise DataError(f"'n_boot' must be an integer >= 10; got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise DataError(f"'level' must be in (0, 1); got {level!r}")
    n, b = x.size, int(block_len)
    out = {"total": float(x.sum()), "n": float(n), "block_len": float(b), "n_boot": float(n_boot)}
    if n < 2 * b:
        return out | {"lo": float("nan"), "hi": float("nan"), "se": float("nan")}
    k = -(-n // b)  # blocks per resample, the last one cut to length n
    csum = np.concatenate(([0.0], np.cumsum(x)))
    starts = np.random.default_rng(seed).integers(0, n - b + 1, size=(int(n_boot), k))
    sums = csum[starts + b] - csum[starts]  # each block's total
    last = n - (k - 1) * b
    sums[:, -1] = csum[starts[:, -1] + last] - csum[starts[:, -1]]
    totals = sums.sum(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(totals, [a, 1.0 - a])
    return out | {"lo": float(lo), "hi": float(hi), "se": float(totals.std(ddof=1))}


def mean_ci(x_usd: ArrayLike, *, level: float = 0.95) -> tuple[float, float]:
    """``(lo, hi)`` Student-t confidence interval of the mean (same unit as ``x``)."""
    x = _vec("x_usd", x_usd)
    ci = paired_ci(x, np.zeros_like(x), level=level)
    return ci["lo"], ci["hi"]


@dataclass(frozen=True, slots=True)
class PnLDecomposition:
    """PnL of a run split into its sources (USD; gains positive, costs negative).

    Attributes
    ----------
    spread_capture_usd : ``Σ fills size·(fill price vs fair value at the fill)``, our side's edge.
    adverse_selection_usd : ``Σ fills size·signed (fair value at fill + markout horizon - at fill)``.
    impact_usd : self-impact: slippage of our taker exits against fair value plus inventory PnL on the fair
        value moves caused by our displayed size.
    fees_usd : maker and taker fees paid (negative when paid; maker rebates positive).
    inventory_usd : the rest of the inventory's mark-to-fair-value PnL (price risk carried).
    """

    spread_capture_usd: float = 0.0
    adverse_selection_usd: float = 0.0
    impact_usd: float = 0.0
    fees_usd: float = 0.0
    inventory_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        """Sum of the parts (USD)."""
        return (
            self.spread_capture_usd + self.adverse_selection_usd + self.impact_usd + self.fees_usd + self.inventory_usd
        )

    def to_dict(self) -> dict[str, float]:
        """The parts and their total as a flat dict (USD)."""
        return {**asdict(self), "total_usd": self.total_usd}


def mean_decomposition(parts: list[PnLDecomposition]) -> PnLDecomposition:
    """Per-field mean of several decompositions (USD); zeros for an empty list."""
    if not parts:
        return PnLDecomposition()
    keys = [k for k in PnLDecomposition.__dataclass_fields__]
    return PnLDecomposition(**{k: float(np.mean([getattr(p, k) for p in parts])) for k in keys})


def summarize(pnl_usd: ArrayLike, *, level: float = 0.95) -> dict[str, float]:
    """``mean_pnl``, ``std_pnl``, ``ci_lo``/``ci_hi`` of the mean, ``sharpe`` (per path) and ``n`` of PnL (USD)."""
    a = _vec("pnl_usd", pnl_usd)
    m, s = mean_std(a)
    lo, hi = mean_ci(a, level=level) if a.size else (float("nan"), float("nan"))
    return {"mean_pnl": m, "std_pnl": s, "ci_lo": lo, "ci_hi": hi, "sharpe": sharpe(a), "n": float(a.size)}


__all__ = [
    "PnLDecomposition",
    "block_bootstrap_ci",
    "max_drawdown",
    "mean_ci",
    "mean_decomposition",
    "mean_std",
    "paired_ci",
    "sharpe",
    "summarize",
]
