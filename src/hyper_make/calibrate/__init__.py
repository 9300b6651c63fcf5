"""Calibration of the ladder's models from recorded market data, each estimate with its uncertainty.

``calibrate(path_or_events)`` reads the recording once, in chunks, and returns a :class:`CalibrationResult`
(:mod:`~hyper_make.calibrate.result`) with one estimate per module:

* σ per horizon (:mod:`~hyper_make.calibrate.sigma`: std of log mid returns, fraction);
* fill intensity per side, ``λ(δ) = A·exp(-k·δ)`` (:mod:`~hyper_make.calibrate.intensity`: A per s, k per bp);
* adverse selection per depth after 1, 5, 30 and 60 s (:mod:`~hyper_make.calibrate.adverse`: bps of the mid);
* volume at depth ``V(δ)`` (:mod:`~hyper_make.calibrate.volume`: coins per ``volume_horizon_s`` against one side);
* the impact coefficient ``c`` of ``move = c·σ_h·(q/V_h)^½`` (:mod:`~hyper_make.calibrate.impact`: no unit);

plots in :mod:`~hyper_make.calibrate.plot`, the streaming sums in :mod:`~hyper_make.calibrate._stream`, and the
simulator presets and stylised facts in :mod:`~hyper_make.calibrate.preset` and :mod:`~hyper_make.calibrate.facts`.

A recording without a book snapshot (see :mod:`hyper_make.data.readers`) starts with a warm-up while the book is
built from the diffs: that span is left out of every fit (:attr:`CalibrationResult.book_warmup_excluded_s`);
warm-ups after update-id gaps (``on_error="skip"``) are counted and named in the result, not cut out.

What the data cannot support (too few arrivals for an intensity fit, no market order with a full markout) is left
out and named in :attr:`CalibrationResult.not_fitted`: a short recording still gives σ and the volume, a *partial*
calibration.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.book import BookGrid, MarketPath, PathBuilder
from ..data.merge import MergedReader
from ..data.readers import BOOK_WARMUP_S, EventReader, ReadReport, detect_format
from ..errors import DataError, InvalidParameterError

# ``name as name``: the whole-path estimators, still importable from here (the streaming tests' reference)
from ._stream import Accumulator
from .adverse import MARKOUT_HORIZONS_S, _adverse_of
from .adverse import _adverse as _adverse
from .facts import FactsAccumulator
from .impact import MIN_IMPACT_ORDERS, _impact_of
from .impact import _impact as _impact
from .intensity import _depths as _depths
from .intensity import _fit_counts, fit_intensity
from .intensity import _market_orders as _market_orders
from .plot import plot_calibration
from .result import CalibrationResult, Estimate, IntensityFit
from .sigma import SIGMA_HORIZONS_S, _sigma_of, sigma_by_horizon
from .volume import _volume_at_depth as _volume_at_depth
from .volume import _volume_of


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
    sigma = _sigma_of(acc)
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
        adverse, adverse_se, adverse_n = _adverse_of(acc, grid)
        vol_d, vol_v = _volume_of(acc, grid, duration, volume_horizon_s)
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
