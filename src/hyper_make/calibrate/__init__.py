"""Calibration of the ladder's models from recorded market data, each estimate with its uncertainty.

``calibrate(path_or_events)`` returns a :class:`CalibrationResult` with

* σ per horizon (std of log mid returns on a grid, stderr ``σ/√(2(n-1))``);
* fill intensity per side, ``λ(δ) = A·exp(-k·δ)``: market orders (trades grouped by exchange time and side)
  that reach depth δ (bps) from the mid ``reference_lag_s`` earlier (where a resting quote would have been
  placed), per second; ``log λ = log A - k·δ`` fitted by least squares on the shallow range (depths with at
  least ``min_count`` arrivals), with R², the range and standard errors;
* adverse selection per depth: the mid's move against a passive fill at that depth after 1, 5, 30 and 60 s
  (bps of the reference mid), mean and standard error per depth bin;
* volume at depth ``V(δ)``: coins traded at or through δ per ``sigma_horizon_s`` against one side;
* the impact coefficient ``c`` of ``move = c·σ_h·(q/V_h)^½`` from market orders' markouts against their size
  (least squares through the origin, with its standard error).

A recording without a book snapshot (see :mod:`hyper_make.data.readers`) starts with a warm-up while the book is
built from the diffs: that span is left out of every fit (:attr:`CalibrationResult.book_warmup_excluded_s`);
warm-ups after update-id gaps (``on_error="skip"``) are counted and named in the result, not cut out.

A markout at horizon h uses only the market orders at least h before the end of the recording (a clipped one
would measure a shorter horizon). What the data cannot support (too few arrivals for an intensity fit, no
market order with a full markout) is left out and named in :attr:`CalibrationResult.not_fitted`: a short
recording still gives σ and the volume, a *partial* calibration.

:meth:`CalibrationResult.to_toml` writes the ``[market]``, ``[ladder.fill]``, ``[ladder.adverse]`` and
``[ladder.impact]`` sections that ``hyper-make ladder`` and ``backtest`` read, and a ``[meta]`` section that says
whether the file is partial (``partial``, ``stopped_at``: the read error that ended the data early,
``not_fitted``), with the same in its header comment.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..data.book import BookGrid, MarketPath, PathBuilder
from ..data.merge import MergedReader
from ..data.readers import BOOK_WARMUP_S, EventReader, ReadReport, detect_format
from ..errors import DataError, InvalidParameterError
from ..report import new_figure, save_figure
from ._stream import Accumulator
from .facts import FactsAccumulator

MARKOUT_HORIZONS_S = (1.0, 5.0, 30.0, 60.0)
#: Market orders an impact regression needs at least.
MIN_IMPACT_ORDERS = 10
SIGMA_HORIZONS_S = (0.1, 1.0, 5.0, 10.0, 30.0, 60.0)


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


# ---- estimators ---------------------------------------------------------------------------------------
def sigma_by_horizon(path: MarketPath, horizons_s: tuple[float, ...] = SIGMA_HORIZONS_S) -> dict[float, Estimate]:
    """σ of the log mid over each horizon (fraction), sampled on a grid of that step; stderr ``σ/√(2(n-1))``.

    A horizon is left out when the recording holds fewer than 2 steps of it, or the mid never moves on its grid.
    """
    t0, t1 = int(path.ts_ns[0]), int(path.ts_ns[-1])
    out: dict[float, Estimate] = {}
    for h in horizons_s:
        step = int(h * 1e9)
        grid = np.arange(t0, t1 + 1, step)
        if grid.size < 3:
            continue
        r = np.diff(np.log(path.mid_at(grid)))
        s = float(np.std(r, ddof=1))
        if s > 0:  # a mid that never moved on this grid says nothing about σ (and 0 is no valid σ)
            out[h] = Estimate(s, s / math.sqrt(2.0 * (r.size - 1)), int(r.size))
    return out


@dataclass(frozen=True, slots=True)
class _Orders:
    """Market orders: trades grouped by (exchange time, aggressor side)."""

    ts_ns: np.ndarray
    buy: np.ndarray
    qty: np.ndarray
    worst_px: np.ndarray  # the deepest price the order reached
    mid_before: np.ndarray


def _market_orders(path: MarketPath) -> _Orders:
    ts, buy = path.trade_ts_ns, path.trade_buy
    if ts.size == 0:
        raise DataError("the data holds no trade: fill intensity, adverse selection and impact need trades")
    new = np.ones(ts.size, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (buy[1:] != buy[:-1])
    start = np.flatnonzero(new)
    qty = np.add.reduceat(path.trade_qty_coins, start)
    hi = np.maximum.reduceat(path.trade_px_usd, start)
    lo = np.minimum.reduceat(path.trade_px_usd, start)
    b = buy[start]
    return _Orders(ts[start], b, qty, np.where(b, hi, lo), path.trade_mid_usd[start])


def _depths(orders: _Orders, ref_mid: np.ndarray) -> np.ndarray:
    """Depth (bps) from the reference mid that each market order reached on the side it hit (may be < 0)."""
    sign = np.where(orders.buy, 1.0, -1.0)
    return sign * (orders.worst_px - ref_mid) / ref_mid * 1e4


def fit_intensity(
    depth_bps: np.ndarray, duration_s: float, grid_bps: np.ndarray, *, min_count: int = 10, max_depth_bps: float = 20.0
) -> IntensityFit:
    """Fit ``log λ(δ) = log A - k·δ`` to arrivals reaching each grid depth (``λ = count(depth >= δ) / T``).

    The fit uses the grid depths in ``[0, max_depth_bps]`` with at least ``min_count`` arrivals (the shallow
    range, where the exponential law holds and counts are not noise).

    Raises
    ------
    DataError
        If fewer than 3 grid depths have ``min_count`` arrivals.
    """
    d = np.sort(np.asarray(depth_bps, dtype=np.float64))
    count = d.size - np.searchsorted(d, grid_bps, side="left")
    return _fit_counts(count, duration_s, grid_bps, min_count=min_count, max_depth_bps=max_depth_bps)


def _fit_counts(
    count: np.ndarray, duration_s: float, grid_bps: np.ndarray, *, min_count: int, max_depth_bps: float
) -> IntensityFit:
    """:func:`fit_intensity` from the arrivals reaching each grid depth (``count``, same length as the grid)."""
    rate = count / duration_s
    use = (count >= min_count) & (grid_bps >= 0) & (grid_bps <= max_depth_bps)
    if int(use.sum()) < 3:
        raise DataError(
            f"too few arrivals to fit the fill intensity: {int(use.sum())} depths with >= {min_count} market orders "
            "(3 needed)"
        )
    x, y = grid_bps[use], np.log(rate[use])
    fit = stats.linregress(x, y)
    a = math.exp(fit.intercept)
    return IntensityFit(
        intensity_per_s=Estimate(a, a * float(fit.intercept_stderr), int(count[use][0])),
        kappa_per_bps=Estimate(-float(fit.slope), float(fit.stderr), int(use.sum())),
        r2=float(fit.rvalue**2),
        depth_range_bps=(float(x[0]), float(x[-1])),
        depth_bps=grid_bps,
        rate_per_s=rate,
        count=count,
    )


def calibrate(
    source: str | Path | Sequence[str | Path] | np.ndarray,
    *,
    reference_lag_s: float = 1.0,
    depth_step_bps: float = 0.25,
    max_depth_bps: float = 10.0,
    min_count: int = 10,
    impact_horizon_s: float = 5.0,
    volume_horizon_s: float = 1.0,
    on_error: str = "stop",
    keep_partial: bool = False,
    chunk_rows: int = 262_144,
    progress: Callable[[int, int], None] | None = None,
    observer: FactsAccumulator | None = None,
) -> CalibrationResult:
    """Fit every model of the ladder from a recording: a file, several files, or an ``event_dtype`` array.

    Several files of one format are consecutive parts of one recording, read as one continuous run in the order
    given (the book, the clock and the Binance update-id chain carry over from one file to the next). Files of
    different formats are parallel streams of one recording (a Tardis book file and its trades file; a Hyperliquid
    archive and a trades recording), merged in time order (:class:`~hyper_make.data.merge.MergedReader`).

    The data is read in chunks of ``chunk_rows`` events and fed to streaming estimators, so memory does not grow
    with the data (it holds one chunk per file and the last 60 s of market orders); the estimates are those of the
    whole-path estimators on the whole path, to rounding.

    Parameters
    ----------
    reference_lag_s : a quote is taken to rest at a depth from the mid this long ago (s), ``>= 0``.
    depth_step_bps, max_depth_bps : the depth grid (bps) of the intensity, adverse and volume curves.
    min_count : arrivals a depth needs to enter the intensity fit.
    impact_horizon_s : markout horizon (s) of the impact regression.
    volume_horizon_s : the volume-at-depth profile is per this many seconds.
    on_error, keep_partial : a bad line stops the read (``on_error="stop"``) and raises, unless ``keep_partial``:
        then what was read before it is fitted (later files are not read) and
        :attr:`CalibrationResult.stopped_at` names the line.
    chunk_rows : events per chunk, ``>= 1``.
    progress : called as ``progress(bytes_done, bytes_total)`` (bytes of the files as stored) after each chunk.
    observer : a :class:`~hyper_make.calibrate.facts.FactsAccumulator` fed the same chunks in the same pass (the
        stylised facts and the simulator-preset fit, :mod:`hyper_make.calibrate.preset`), warm-up left out alike.

    A model the data cannot support is left out and named in :attr:`CalibrationResult.not_fitted`.

    Raises
    ------
    DataError
        Unreadable data, or a recording too short for even σ (the read error, if any, is in the message).
    """
    for name, v in (("reference_lag_s", reference_lag_s), ("impact_horizon_s", impact_horizon_s)):
        if not (math.isfinite(v) and v >= 0):
            raise InvalidParameterError(f"{name!r} must be a finite number >= 0 s; got {v!r}")
    if not (depth_step_bps > 0 and max_depth_bps > depth_step_bps):
        raise InvalidParameterError(
            f"'depth_step_bps' must be > 0 and below 'max_depth_bps'; got {depth_step_bps!r}, {max_depth_bps!r}"
        )
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidParameterError(f"'chunk_rows' must be an integer >= 1; got {chunk_rows!r}")
    grid = np.arange(0.0, max_depth_bps + 1e-9, depth_step_bps)
    acc = Accumulator(
        sigma_horizons_s=SIGMA_HORIZONS_S, markout_horizons_s=MARKOUT_HORIZONS_S, depth_grid_bps=grid,
        reference_lag_s=reference_lag_s, impact_horizon_s=max(impact_horizon_s, 0.0),
    )  # fmt: skip
    feed = _Feed(acc, observer)
    reports: list[ReadReport] = []
    if isinstance(source, np.ndarray):
        name = "<events>"
        for k in range(0, source.size, chunk_rows):
            feed.add(source[k : k + chunk_rows], None)
    else:
        paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(x) for x in source]
        if not paths:
            raise InvalidParameterError("'source' must name at least one file; got none")
        parallel = len({detect_format(x) for x in paths}) > 1
        if parallel or len(paths) == 1:
            name = " + ".join(str(x) for x in paths)
        else:
            name = f"{paths[0]} (+{len(paths) - 1} more files)"
        total = sum(x.stat().st_size for x in paths if x.is_file())
        done_bytes = 0
        reader: EventReader | None = None
        last_local: int | None = None
        if parallel:
            # parallel streams of one recording: merged in time order, one reader per file
            merged = MergedReader(paths, on_error=on_error, chunk_rows=chunk_rows)  # type: ignore[arg-type]
            reports.extend(r.report for r in merged.given)
            try:
                for chunk in merged:
                    feed.add(chunk, None)
                    if progress is not None:
                        progress(sum(r.bytes_read() for r in merged.given), total)
            except DataError:
                if not keep_partial:
                    raise
            paths = []  # read
        for path in paths:
            prev = reader
            reader = EventReader(path, on_error=on_error, chunk_rows=chunk_rows, continues=prev)  # type: ignore[arg-type]
            if prev is not None and reader.fmt != prev.fmt:
                raise DataError(
                    f"{path}: format {reader.fmt}, but {prev.path} is {prev.fmt}: the files of one run must be one "
                    "recording, in time order"
                )
            reports.append(reader.report)
            first = True
            try:
                for chunk in reader:
                    if first and chunk.size and last_local is not None and int(chunk["local_ts"][0]) < last_local:
                        raise DataError(
                            f"{path}: starts at {int(chunk['local_ts'][0])} ns (local), before the end of the previous "
                            f"file {prev.path if prev else ''} ({last_local} ns): give the files in time order"
                        )
                    first = first and not chunk.size
                    if chunk.size:
                        last_local = int(chunk["local_ts"][-1])
                    feed.add(chunk, reader.report if len(reports) == 1 else None)
                    if progress is not None:
                        progress(done_bytes + reader.bytes_read(), total)
            except DataError:
                if not keep_partial:
                    raise
                break
            finally:
                done_bytes += path.stat().st_size if path.is_file() else 0
                if progress is not None:
                    progress(done_bytes, total)
    feed.close(reports[0] if reports else None)
    report_doc = _merged_report(reports)
    error = report_doc.get("error")
    stopped = f" (the read stopped early: {error})" if error else ""
    if feed.rows == 0:
        raise DataError(f"{name}: no event could be read{stopped}")
    if acc.q_first is None:
        if feed.raw_q:
            raise DataError(
                f"{name}: the book has no snapshot and is still warming up from the diffs when the data ends "
                f"(the warm-up lasts at least {BOOK_WARMUP_S:g} s): nothing left to fit{stopped}"
            )
        raise DataError(f"{name}: the data never shows a two-sided book: no mid price can be computed{stopped}")
    duration = acc.duration_s
    sigma: dict[float, Estimate] = {}
    for h, sg in acc.sigma.items():
        s_ = sg.moments.std()
        if sg.points >= 3 and s_ > 0:
            sigma[h] = Estimate(s_, s_ / math.sqrt(2.0 * (sg.moments.n - 1)), sg.moments.n)
    if not sigma:
        raise DataError(f"{name}: the recording spans {duration:.1f} s, too short to estimate even σ{stopped}")
    not_fitted: dict[str, str] = {}
    fill: dict[str, IntensityFit] = {}
    adverse = {h: np.full(grid.size, np.nan) for h in MARKOUT_HORIZONS_S}
    adverse_se = {h: np.full(grid.size, np.nan) for h in MARKOUT_HORIZONS_S}
    adverse_n = {h: np.zeros(grid.size, dtype=np.int64) for h in MARKOUT_HORIZONS_S}
    vol_d, vol_v, daily, impact = np.zeros(0), np.zeros(0), 0.0, None
    if acc.n_orders == 0:
        why = "the data holds no trade"
        not_fitted.update({"ladder.fill": why, "ladder.impact": why, "market.volume_profile_coins": why})
    else:
        why_not = {}
        for side, k in (("bid", 0), ("ask", 1)):  # sellers hit our bids, buyers lift our asks
            try:
                fill[side] = _fit_counts(
                    acc.counts_at_depth(k), duration, grid, min_count=min_count, max_depth_bps=max_depth_bps
                )
            except DataError as exc:
                why_not[side] = str(exc)
        if not fill:
            same = len(set(why_not.values())) == 1
            not_fitted["ladder.fill"] = (
                f"both sides: {why_not['bid']}" if same else "; ".join(f"{k}: {v}" for k, v in why_not.items())
            )
        for h in MARKOUT_HORIZONS_S:
            count, s1, s2 = acc.adv_n[h], acc.adv_s1[h], acc.adv_s2[h]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, s1 / np.maximum(count, 1), np.nan)
                var = np.where(count > 1, (s2 - count * mean**2) / np.maximum(count - 1, 1), np.nan)
                adverse[h], adverse_se[h] = mean, np.sqrt(np.maximum(var, 0.0) / np.maximum(count, 1))
            adverse_n[h] = count
        vol = 0.5 * (acc.qty_at_depth(0) + acc.qty_at_depth(1)) / max(duration, 1e-9) * volume_horizon_s
        keep = vol > 0
        vol_d, vol_v = grid[keep], np.minimum.accumulate(vol[keep])
        daily = acc.total_qty / duration * 86_400.0 if duration > 0 else 0.0
        impact = _impact_of(acc, sigma, impact_horizon_s, duration)
        if impact is None:
            not_fitted["ladder.impact"] = (
                f"fewer than {MIN_IMPACT_ORDERS} market orders with a full {impact_horizon_s:g} s markout that moved "
                "the mid"
            )
    return CalibrationResult(
        source=name,
        duration_s=duration,
        last_bid_usd=acc.last_bid,
        last_ask_usd=acc.last_ask,
        sigma_frac=sigma,
        fill=fill,
        adverse_depth_bps=grid,
        adverse_bps=adverse,
        adverse_stderr_bps=adverse_se,
        adverse_count=adverse_n,
        volume_depth_bps=vol_d,
        volume_coins=vol_v,
        volume_horizon_s=volume_horizon_s,
        daily_volume_coins=daily,
        impact_coef=impact,
        impact_horizon_s=impact_horizon_s,
        reference_lag_s=reference_lag_s,
        read_report=report_doc,
        not_fitted=not_fitted,
        book_warmup_excluded_s=feed.excluded_s,
    )


class _Feed:
    """Events -> path pieces -> the accumulator: the book's grid from the first 100,000 rows, and the warm-up of a
    first file without a snapshot cut off (its pieces held until the reader knows where the warm-up ends)."""

    def __init__(self, acc: Accumulator, observer: FactsAccumulator | None = None) -> None:
        self.acc = acc
        self.observer = observer
        self.builder: PathBuilder | None = None
        self.first_rows: list[np.ndarray] = []  # until the grid is known
        self.held: list[MarketPath] = []  # until the warm-up's end is known
        self.cut_known = False
        self.cut_ns: int | None = None
        self.rows = 0
        self.raw_q = 0  # BBO changes before any cut
        self.raw_first: int | None = None

    def add(self, chunk: np.ndarray, report: ReadReport | None) -> None:
        self.rows += chunk.size
        if self.builder is None:
            self.first_rows.append(chunk)
            if sum(c.size for c in self.first_rows) < 100_000:
                return
            self._start()
        assert self.builder is not None
        for rows in self._take_first_rows() or [chunk]:
            self._piece(self.builder.add(rows), report)
            if self.observer is not None:
                self.observer.rows(rows)

    def _start(self) -> None:
        events = np.concatenate(self.first_rows)
        px = events["px"][:100_000]
        if not np.any(px > 0):
            return
        self.builder = PathBuilder(BookGrid.around(events))
        if self.observer is not None:
            self.observer.start(self.builder.grid)

    def _take_first_rows(self) -> list[np.ndarray]:
        rows, self.first_rows = self.first_rows, []
        return rows

    def _piece(self, piece: MarketPath, report: ReadReport | None) -> None:
        for ts in (piece.ts_ns, piece.trade_ts_ns):
            if ts.size:
                self.raw_first = int(ts[0]) if self.raw_first is None else min(self.raw_first, int(ts[0]))
        self.raw_q += piece.ts_ns.size
        if self.cut_known:
            # the warm-up's end may be known before the rows of a piece reach here (the grid waits for 100k rows)
            self.acc.add(_after(piece, self.cut_ns) if self.cut_ns is not None else piece)
            return
        self.held.append(piece)
        if report is None or not _undecided(report):
            self._decide(report)

    def _decide(self, report: ReadReport | None) -> None:
        self.cut_known = True
        self.cut_ns = report.book_warmup_end_ns if report is not None else None
        if self.observer is not None:
            self.observer.decide(self.cut_ns)
        held, self.held = self.held, []
        if not held:
            return
        whole = MarketPath(
            *(np.concatenate([getattr(h, f.name) for h in held]) for f in dataclasses.fields(MarketPath))
        )
        if self.cut_ns is not None:
            whole = _after(whole, self.cut_ns)
        self.acc.add(whole)

    @property
    def excluded_s(self) -> float:
        """Seconds from the first BBO change or trade to the end of the warm-up cut off (0 without one)."""
        if self.cut_ns is None or self.raw_first is None:
            return 0.0
        return max(0.0, (min(self.cut_ns, 1 << 62) - self.raw_first) / 1e9)

    def close(self, report: ReadReport | None) -> None:
        if self.builder is None and self.first_rows:
            self._start()
            if self.builder is not None:
                for rows in self._take_first_rows():
                    self._piece(self.builder.add(rows), report)
                    if self.observer is not None:
                        self.observer.rows(rows)
        if not self.cut_known:
            self._decide(report)
        self.acc.finish()
        if self.observer is not None:
            self.observer.finish()


def _after(path: MarketPath, t_ns: int) -> MarketPath:
    """The part of ``path`` from exchange time ``t_ns`` (ns) on: BBO changes and trades at or after it."""
    q = path.ts_ns >= t_ns
    t = path.trade_ts_ns >= t_ns
    return MarketPath(
        path.ts_ns[q], path.bid_usd[q], path.ask_usd[q], path.trade_ts_ns[t], path.trade_px_usd[t],
        path.trade_qty_coins[t], path.trade_buy[t], path.trade_mid_usd[t],
    )  # fmt: skip


def _undecided(report: ReadReport) -> bool:
    """True while the reader may still start the book from the diffs with a warm-up it has not ended."""
    if not report.fmt.startswith("binance"):
        return False
    if report.warmups:
        return report.warmups[0].reason == "no_snapshot" and report.warmups[0].end_ns is None
    return report.message_counts.get("snapshot", 0) == 0


def _merged_report(reports: list[ReadReport]) -> dict[str, Any]:
    """The read report of one file, or of several read as one run (counts summed, the first error)."""
    if not reports:
        return {}
    if len(reports) == 1:
        return reports[0].to_dict()
    docs = [r.to_dict() for r in reports]
    skips = [d["skip_summary"] for d in docs if d["skip_summary"]]
    warm = [d["warmup_summary"] for d in docs if d["warmup_summary"]]
    return {
        "path": ", ".join(r.path for r in reports),
        "files": docs,
        "lines": sum(r.lines for r in reports),
        "events": sum(r.events for r in reports),
        "error": next((r.error for r in reports if r.error), None),
        "warnings": [w for r in reports for w in r.warnings],
        "skip_summary": "; ".join(skips) or None,
        "warmups": docs[0]["warmups"],
        "resyncs": sum(r.resyncs for r in reports),
        "warmup_summary": "; ".join(warm) or None,
    }


def _impact_of(acc: Accumulator, sigma: dict[float, Estimate], horizon_s: float, duration_s: float) -> Estimate | None:
    """:func:`_impact` from the accumulated sums: ``y = move/σ_h``, ``x = √(q/V_h)`` with ``V_h`` one side's
    volume per horizon, so ``Σxy = Σ√q·move/(σ_h√V_h)``, ``Σxx = Σq/V_h``, ``Σy² = Σmove²/σ_h²``."""
    if acc.imp_n < MIN_IMPACT_ORDERS or not acc.imp_moved:
        return None
    sig_h = _sigma_at(sigma, horizon_s)
    side_vol_h = acc.total_qty / 2.0 / duration_s * horizon_s
    sxy = acc.imp_sxy / (sig_h * math.sqrt(side_vol_h))
    sxx = acc.imp_sxx / side_vol_h
    syy = acc.imp_syy / sig_h**2
    c = sxy / sxx
    ss = max(syy - 2.0 * c * sxy + c * c * sxx, 0.0)
    return Estimate(c, math.sqrt(ss / max(acc.imp_n - 1, 1) / sxx), acc.imp_n)


def _adverse(
    path: MarketPath, orders: _Orders, depth: np.ndarray, ref_mid: np.ndarray, grid: np.ndarray, t_end: int
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray], dict[float, np.ndarray]]:
    """The move against a passive fill at depth δ after each markout horizon (bps of the reference mid): mean,
    standard error and count per depth bin, from the market orders at least that horizon before the end."""
    sign_maker = np.where(orders.buy, -1.0, 1.0)  # the maker sold to a buyer (-1) or bought from a seller (+1)
    edges = np.append(grid, np.inf)
    bins = np.clip(np.searchsorted(edges, np.maximum(depth, 0.0), side="right") - 1, 0, grid.size - 1)
    adverse, adverse_se, counts = {}, {}, {}
    for h in MARKOUT_HORIZONS_S:
        later_ts = orders.ts_ns + int(h * 1e9)
        full = later_ts <= t_end  # a clipped markout would measure a shorter horizon
        move = -sign_maker[full] * (path.mid_at(later_ts[full]) - ref_mid[full]) / ref_mid[full] * 1e4
        b = bins[full]
        count = np.bincount(b, minlength=grid.size)
        s1 = np.bincount(b, move, minlength=grid.size)
        s2 = np.bincount(b, move * move, minlength=grid.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, s1 / np.maximum(count, 1), np.nan)
            var = np.where(count > 1, (s2 - count * mean**2) / np.maximum(count - 1, 1), np.nan)
            adverse[h] = mean
            adverse_se[h] = np.sqrt(np.maximum(var, 0.0) / np.maximum(count, 1))
        counts[h] = count
    return adverse, adverse_se, counts


def _volume_at_depth(
    orders: _Orders, depth: np.ndarray, grid: np.ndarray, duration_s: float, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coins traded at or through each grid depth per ``horizon_s`` (mean of the two sides), non-increasing;
    only the depths with volume."""
    vols = []
    for hit in (~orders.buy, orders.buy):
        d, q = depth[hit], orders.qty[hit]
        if d.size == 0:
            vols.append(np.zeros(grid.size))
            continue
        order = np.argsort(d)
        cum = np.cumsum(q[order][::-1])[::-1]  # volume at depth >= d_sorted[i]
        i = np.searchsorted(d[order], grid, side="left")
        vols.append(np.where(i < d.size, cum[np.minimum(i, d.size - 1)], 0.0))
    vol = 0.5 * (vols[0] + vols[1]) / max(duration_s, 1e-9) * horizon_s
    keep = vol > 0
    return grid[keep], np.minimum.accumulate(vol[keep])


def _impact(
    path: MarketPath,
    orders: _Orders,
    sigma: dict[float, Estimate],
    horizon_s: float,
    duration_s: float,
    t_end: int,
) -> Estimate | None:
    """``c`` of ``move = c·σ_h·√(q / V_h)`` (least squares through 0) from the market orders with a full markout
    over ``horizon_s``, or ``None`` when fewer than :data:`MIN_IMPACT_ORDERS` have one or the mid never moved."""
    later_ts = orders.ts_ns + int(horizon_s * 1e9)
    full = later_ts <= t_end
    if int(full.sum()) < MIN_IMPACT_ORDERS:
        return None
    sig_h = _sigma_at(sigma, horizon_s)
    side_vol_h = float(orders.qty.sum()) / 2.0 / duration_s * horizon_s
    sign = np.where(orders.buy[full], 1.0, -1.0)
    before = orders.mid_before[full]
    y = sign * (path.mid_at(later_ts[full]) - before) / before / sig_h
    if not np.any(y != 0):
        return None  # the mid never moved after a market order: no information on c (0 ± 0 is not an estimate)
    x = np.sqrt(orders.qty[full] / side_vol_h)
    sxx = float(np.sum(x * x))
    c = float(np.sum(x * y) / sxx)
    resid = y - c * x
    c_se = float(math.sqrt(np.sum(resid**2) / max(x.size - 1, 1) / sxx))
    return Estimate(c, c_se, int(x.size))


def _sigma_at(sigma: dict[float, Estimate], h: float) -> float:
    """σ over ``h`` seconds from the nearest calibrated horizon, scaled by √(h / h_ref)."""
    if not sigma:
        raise DataError("the recording is too short to estimate the volatility")
    ref = min(sigma, key=lambda k: abs(math.log(k / h)) if h > 0 else k)
    return sigma[ref].value * math.sqrt(max(h, 1e-9) / ref)


def plot_calibration(result: CalibrationResult, out_dir: str | Path) -> list[Path]:
    """Write ``intensity.png`` (empirical λ(δ) per fitted side with the fitted curve) and ``markouts.png``
    (bins with >= 5 full markouts); a plot with nothing to show is not written. Returns the paths written.

    Uses matplotlib's object-oriented API on an Agg canvas: the caller's backend is left alone.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if result.fill:
        fig, ax = new_figure()
        for side, f in result.fill.items():
            ok = f.count > 0
            ax.semilogy(f.depth_bps[ok], f.rate_per_s[ok], "o", ms=3, label=f"{side} (empirical)")
            a, k = f.intensity_per_s.value, f.kappa_per_bps.value
            lo, hi = f.depth_range_bps
            xs = np.linspace(lo, hi, 50)
            ax.semilogy(xs, a * np.exp(-k * xs), "-", label=f"{side} fit A={a:.3g}/s k={k:.3g}/bp R²={f.r2:.2f}")
        ax.set_xlabel("depth from the mid (bps)")
        ax.set_ylabel("arrivals reaching the depth (1/s)")
        ax.set_title("Fill intensity λ(δ) = A·exp(-k·δ)")
        ax.legend(fontsize=8)
        written.append(save_figure(fig, out / "intensity.png"))
    if any(np.any(c >= 5) for c in result.adverse_count.values()):
        fig, ax = new_figure()
        for h in result.adverse_bps:
            ok = result.adverse_count[h] >= 5
            if ok.any():
                ax.errorbar(
                    result.adverse_depth_bps[ok], result.adverse_bps[h][ok], yerr=result.adverse_stderr_bps[h][ok],
                    fmt="o-", ms=3, capsize=2, label=f"{h:g} s",
                )  # fmt: skip
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xlabel("depth of the fill from the mid (bps)")
        ax.set_ylabel("adverse move after the fill (bps)")
        ax.set_title("Markouts by depth (bins with >= 5 fills)")
        ax.legend(fontsize=8)
        written.append(save_figure(fig, out / "markouts.png"))
    return written


__all__ = [
    "MARKOUT_HORIZONS_S",
    "CalibrationResult",
    "Estimate",
    "IntensityFit",
    "calibrate",
    "fit_intensity",
    "plot_calibration",
    "sigma_by_horizon",
]
