"""The calibration's result: each estimate with its standard error, and the config TOML written from them.

:class:`Estimate` is a value with its standard error (same unit) and its count; :class:`IntensityFit` one side's
``λ(δ) = A·exp(-k·δ)`` (A per s, k per bp); :class:`CalibrationResult` everything fitted from one recording (units
in each field's name).

:meth:`CalibrationResult.to_toml` writes the ``[market]``, ``[ladder.fill]``, ``[ladder.adverse]`` and
``[ladder.impact]`` sections that ``hyper-make ladder`` and ``backtest`` read, and a ``[meta]`` section that says
whether the file is partial (``partial``, ``stopped_at``: the read error that ended the data early,
``not_fitted``), with the same in its header comment.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value with its standard error (same unit) and the number of observations behind it."""

    value: float
    stderr: float
    n: int

    def to_dict(self) -> dict[str, float]:
        """``{"value", "stderr", "n"}``."""
        return {"value": self.value, "stderr": self.stderr, "n": self.n}


@dataclass(frozen=True, slots=True)
class IntensityFit:
    """``λ(δ) = A·exp(-k·δ)`` fitted on one side.

    Attributes
    ----------
    intensity_per_s : A (arrivals per second at δ = 0) with stderr (delta method on ``log A``).
    kappa_per_bps : k (per bp) with stderr.
    r2 : coefficient of determination of the log-linear fit.
    depth_range_bps : ``(lo, hi)`` depths used in the fit.
    depth_bps, rate_per_s, count : the empirical curve (all depths of the grid).
    """

    intensity_per_s: Estimate
    kappa_per_bps: Estimate
    r2: float
    depth_range_bps: tuple[float, float]
    depth_bps: np.ndarray
    rate_per_s: np.ndarray
    count: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "A_per_s": self.intensity_per_s.to_dict(),
            "k_per_bps": self.kappa_per_bps.to_dict(),
            "r2": self.r2,
            "depth_range_bps": list(self.depth_range_bps),
        }


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Everything fitted from one recording (units in each field's name).

    Attributes
    ----------
    fill : per side fitted (``"bid"``, ``"ask"``), the intensity fit; a side without enough arrivals is absent.
    adverse_bps, adverse_stderr_bps, adverse_count : per markout horizon (s), mean and standard error of the
        adverse move by depth bin (bps), and the market orders behind each bin (only those with a full markout).
    impact_coef : the impact coefficient ``c``, or ``None`` when too few market orders have a full markout.
    not_fitted : config section -> why it could not be fitted from this data (empty when complete).
    stopped_at : the error that ended the read early (``"FILE: line N: ..."``), or ``None``.
    book_warmup_excluded_s : seconds at the start left out of the fits because the book was still being built
        from the diffs (a recording without a snapshot); 0 otherwise.
    """

    source: str
    duration_s: float
    last_bid_usd: float
    last_ask_usd: float
    sigma_frac: dict[float, Estimate]
    fill: dict[str, IntensityFit]
    adverse_depth_bps: np.ndarray
    adverse_bps: dict[float, np.ndarray]
    adverse_stderr_bps: dict[float, np.ndarray]
    adverse_count: dict[float, np.ndarray]
    volume_depth_bps: np.ndarray
    volume_coins: np.ndarray
    volume_horizon_s: float
    daily_volume_coins: float
    impact_coef: Estimate | None
    impact_horizon_s: float
    reference_lag_s: float
    read_report: dict[str, Any] = field(default_factory=dict)
    not_fitted: dict[str, str] = field(default_factory=dict)
    book_warmup_excluded_s: float = 0.0

    @property
    def mid_usd(self) -> float:
        """Last mid of the recording (USD)."""
        return 0.5 * (self.last_bid_usd + self.last_ask_usd)

    @property
    def stopped_at(self) -> str | None:
        """The read error that ended the data early, or ``None`` (the whole file was read)."""
        return self.read_report.get("error")

    def missing(self, adverse_horizon_s: float = 30.0) -> dict[str, str]:
        """What a config written with ``adverse_horizon_s`` cannot hold: section -> why."""
        out = dict(self.not_fitted)
        count = self.adverse_count.get(adverse_horizon_s)
        if count is None or not np.any(count > 0):
            out["ladder.adverse"] = (
                f"no market order has a full {adverse_horizon_s:g} s markout in the {self.duration_s:.0f} s read; "
                "a shorter adverse horizon may fit"
            )
        return out

    def is_partial(self, adverse_horizon_s: float = 30.0) -> bool:
        """True if the data ended early or a model could not be fitted (see :meth:`missing`)."""
        return self.stopped_at is not None or bool(self.missing(adverse_horizon_s))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary of every estimate."""
        return {
            "source": self.source,
            "duration_s": self.duration_s,
            "mid_usd": self.mid_usd,
            "sigma_frac": {f"{h:g}s": e.to_dict() for h, e in self.sigma_frac.items()},
            "fill": {side: f.to_dict() for side, f in self.fill.items()},
            "adverse_bps": {
                f"{h:g}s": {
                    "depth_bps": self.adverse_depth_bps.tolist(),
                    "mean": self.adverse_bps[h].tolist(),
                    "stderr": self.adverse_stderr_bps[h].tolist(),
                    "count": self.adverse_count[h].tolist(),
                }
                for h in self.adverse_bps
            },
            "volume_at_depth": {
                "depth_bps": self.volume_depth_bps.tolist(),
                "coins": self.volume_coins.tolist(),
                "per_s": self.volume_horizon_s,
            },
            "daily_volume_coins": self.daily_volume_coins,
            "impact_coef": self.impact_coef.to_dict() if self.impact_coef is not None else None,
            "impact_horizon_s": self.impact_horizon_s,
            "reference_lag_s": self.reference_lag_s,
            "book_warmup_excluded_s": self.book_warmup_excluded_s,
            "read_report": self.read_report,
            "partial": self.is_partial(),
            "stopped_at": self.stopped_at,
            "not_fitted": self.missing(),
        }

    def book_note(self) -> str | None:
        """One line on a book built from diffs (no snapshot, resyncs after gaps), or ``None``."""
        parts = []
        if self.book_warmup_excluded_s > 0:
            parts.append(
                f"no snapshot in the file: built from the depth diffs; the first {self.book_warmup_excluded_s:.1f} s "
                "(warm-up) left out of the fits"
            )
        resyncs = int(self.read_report.get("resyncs", 0) or 0)
        if resyncs:
            parts.append(
                f"{resyncs} resync{'s' if resyncs != 1 else ''} after update-id gaps (warm-ups kept in the fits)"
            )
        return "; ".join(parts) or None

    def to_toml(self, *, sigma_horizon_s: float = 1.0, adverse_horizon_s: float = 30.0) -> str:
        """The fitted parameters as a config file for ``hyper-make ladder|backtest --config``.

        The fill model takes the mean of the fitted sides' A and k (the ladder has one model); the adverse table
        is the markout at ``adverse_horizon_s`` (match the ladder's ``horizon_s``); the impact coefficient goes to
        both the round-trip and the forward coefficient (trades only show the former; the latter is assumed equal).
        A section that could not be fitted is left out (the ladder keeps its default) and named in ``[meta]``.
        """
        if sigma_horizon_s not in self.sigma_frac:
            raise InvalidParameterError(
                f"'sigma_horizon_s' must be one of the calibrated horizons {sorted(self.sigma_frac)} s; "
                f"got {sigma_horizon_s!r}"
            )
        if adverse_horizon_s not in self.adverse_bps:
            raise InvalidParameterError(
                f"'adverse_horizon_s' must be one of {sorted(self.adverse_bps)} s; got {adverse_horizon_s!r}"
            )
        missing = self.missing(adverse_horizon_s)
        partial = self.is_partial(adverse_horizon_s)
        sig = self.sigma_frac[sigma_horizon_s].value
        vol_scale = sigma_horizon_s / self.volume_horizon_s
        names = " + ".join(Path(s).name for s in self.source.split(" + "))
        lines = [f"# hyper-make calibrate: fitted from {names} ({self.duration_s:.0f} s)"]
        if partial:
            lines.append("# PARTIAL calibration: " + "; ".join(
                ([f"the data stopped early at {self.stopped_at}"] if self.stopped_at else [])
                + [f"{k} not fitted ({why})" for k, why in missing.items()]
            ))  # fmt: skip
        book = self.book_note()
        if book:
            lines.append(f"# book: {book}")
        lines += [
            "# standard errors and R² are in the JSON output (hyper-make calibrate --json)",
            "",
            "[meta]",
            f"source = {_str(self.source)}",
            'generated_by = "hyper-make calibrate"',
            f"partial = {'true' if partial else 'false'}",
            f"stopped_at = {_str(self.stopped_at or '')}",
            "not_fitted = [" + ", ".join(_str(f"{k}: {why}") for k, why in missing.items()) + "]",
            "",
            "[market]",
            f"mid_usd = {_num(self.mid_usd)}",
            f"best_bid_usd = {_num(self.last_bid_usd)}",
            f"best_ask_usd = {_num(self.last_ask_usd)}",
            f"sigma_frac = {_num(sig)}",
            f"sigma_horizon_s = {_num(sigma_horizon_s)}",
        ]
        if self.volume_coins.size:
            lines += [
                f"daily_volume_coins = {_num(self.daily_volume_coins)}",
                f"volume_profile_depth_bps = {_arr(self.volume_depth_bps)}",
                f"volume_profile_coins = {_arr(self.volume_coins * vol_scale)}",
            ]
        if self.fill:
            a = float(np.mean([f.intensity_per_s.value for f in self.fill.values()]))
            k = float(np.mean([f.kappa_per_bps.value for f in self.fill.values()]))
            lines += [
                "",
                "[ladder.fill]",
                'kind = "exponential"',
                "# per side: "
                + ", ".join(
                    f"{s} A={f.intensity_per_s.value:.4g}/s k={f.kappa_per_bps.value:.4g}/bp R²={f.r2:.3f}"
                    for s, f in self.fill.items()
                ),
                f"intensity_per_s = {_num(a)}",
                f"kappa_per_bps = {_num(k)}",
            ]
        if "ladder.adverse" not in missing:
            ok = self.adverse_count[adverse_horizon_s] > 0
            lines += [
                "",
                "[ladder.adverse]",
                'kind = "table"',
                f"# markout after {adverse_horizon_s:g} s, bps of the mid, by depth of the fill",
                f"depth_bps = {_arr(self.adverse_depth_bps[ok])}",
                f"as_bps = {_arr(self.adverse_bps[adverse_horizon_s][ok])}",
            ]
        if self.impact_coef is not None:
            c = self.impact_coef
            lines += [
                "",
                "[ladder.impact]",
                f"# c = {c.value:.4g} ± {c.stderr:.2g} from {c.n} market orders' {self.impact_horizon_s:g} s "
                "markouts (floored at 0)",
                f"forward_coef = {_num(max(c.value, 0.0))}",
                f"roundtrip_coef = {_num(max(c.value, 0.0))}",
                "beta = 0.5",
            ]
        return "\n".join([*lines, ""])

    def write_toml(self, path: str | Path, **kwargs: float) -> Path:
        """Write :meth:`to_toml` to ``path``; returns it."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_toml(**kwargs), encoding="utf-8")
        return p


def _num(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else "0.0"


def _arr(xs: np.ndarray) -> str:
    return "[" + ", ".join(_num(float(x)) for x in xs) + "]"


def _str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)
