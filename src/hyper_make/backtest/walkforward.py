"""Walk-forward on recorded data: fit on the past, judge on what came after, with an interval from one replay.

``walk_forward(train, test, allocators, ...)``:

1. **Calibrate on the training data only** (:func:`hyper_make.calibrate.calibrate`): σ, fill intensity, adverse
   selection by depth, volume at depth and the impact coefficient become the ladder's models and the snapshot's
   prior (the config ``hyper-make calibrate`` writes, applied over the given one). Every allocator then runs on those
   models: a calibrated `impact`, and the prior of `learned`.
2. **Train the learner on the training data** (an allocator that learns is replayed on it, starting from the given
   posterior or the calibrated prior): the test replay starts from what it learned.
3. **Replay every allocator on the test data** (one replay each, the same book and seed).
4. **Intervals from one replay**: the equity of each allocator at every refresh gives its PnL increments; the
   moving-block bootstrap over time (:func:`hyper_make.metrics.block_bootstrap_ci`, blocks of ``block_s`` seconds,
   stated in the result) gives an interval of the total, and the same on the difference of two allocators'
   increments (they are on the same refresh times) a paired interval.

Sources are paths (one or several files, as :func:`~hyper_make.backtest.replay.run_backtest` reads them) or
``event_dtype`` arrays (e.g. one recording split in time with :func:`split_events`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..allocate import Allocator
from ..config import AppConfig, apply_overrides
from ..errors import DataError, InvalidParameterError
from ..metrics import block_bootstrap_ci
from .replay import ReplayConfig, ReplayResult, run_backtest

Source = str | Path | Sequence[str | Path] | np.ndarray


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """What :func:`walk_forward` found.

    Attributes
    ----------
    results : per allocator, its replay of the test data.
    calibration_toml : the config fitted on the training data (TOML text, as ``hyper-make calibrate`` writes it).
    intervals : per allocator, the block-bootstrap interval of its test PnL (USD): ``total``, ``lo``, ``hi``, ``se``.
    paired : per allocator, ``{other: interval of (allocator − other)}`` (USD).
    block_s : block length of the bootstrap (s); ``block_refreshes`` the same in refresh intervals.
    learner : the posterior the learning allocator ended the training with (``None`` without one).
    train_learner_fills : fills of the learning allocator in the training replay.
    """

    results: dict[str, ReplayResult]
    calibration_toml: str
    intervals: dict[str, dict[str, float]]
    paired: dict[str, dict[str, dict[str, float]]]
    block_s: float
    block_refreshes: int
    learner: Any = None
    train_learner_fills: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no fills)."""
        return {
            "block_s": self.block_s,
            "block_refreshes": self.block_refreshes,
            "intervals": self.intervals,
            "paired": self.paired,
            "train_learner_fills": self.train_learner_fills,
            "notes": list(self.notes),
        }


def split_events(events: np.ndarray, train_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """``events`` cut in time: the first ``train_frac`` of its span (by exchange time) and the rest."""
    if not (isinstance(train_frac, float | int) and 0.0 < float(train_frac) < 1.0):
        raise InvalidParameterError(f"'train_frac' must be in (0, 1); got {train_frac!r}")
    ts = events["exch_ts"]
    if ts.size < 2:
        raise DataError("a recording of fewer than two events cannot be split in time")
    cut = ts[0] + (ts[-1] - ts[0]) * float(train_frac)
    i = int(np.searchsorted(ts, cut, side="right"))
    return events[:i], events[i:]


def increments(result: ReplayResult) -> np.ndarray:
    """PnL per refresh interval of a replay (USD): the differences of its equity at the refreshes (from 0)."""
    eq = np.asarray(result.equity[1], dtype=np.float64)
    return np.diff(eq, prepend=0.0) if eq.size else eq


def walk_forward(
    train: Source,
    test: Source,
    allocators: dict[str, Allocator],
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    learner: Any = None,
    block_s: float = 60.0,
    n_boot: int = 2000,
    adverse_horizon_s: float = 30.0,
    on_error: str = "stop",
) -> WalkForwardResult:
    """Calibrate and train on ``train``, replay every allocator on ``test``, intervals by block bootstrap.

    ``learner``: the posterior a learning allocator starts its training from (default: the calibrated prior).
    ``block_s``: the bootstrap's block length (s), at least one refresh interval; 60 s keeps a position's life and
    a volatility burst inside a block at a 1 s refresh.
    """
    from ..calibrate import calibrate

    app = app or AppConfig()
    cfg = config or ReplayConfig()
    if not (math.isfinite(block_s) and block_s >= cfg.refresh_s):
        raise InvalidParameterError(
            f"'block_s' must be at least the refresh interval {cfg.refresh_s:g} s; got {block_s!r}"
        )
    if not allocators:
        raise InvalidParameterError("'allocators' must name at least one allocator")
    fit = calibrate(train, on_error=on_error, keep_partial=True)  # type: ignore[arg-type]
    sigma_h = min(fit.sigma_frac, key=lambda h: abs(math.log(h)))
    toml = fit.to_toml(sigma_horizon_s=sigma_h, adverse_horizon_s=adverse_horizon_s)
    raw = tomllib.loads(toml)
    meta = raw.pop("meta", None)
    app_cal = apply_overrides(app, raw)
    notes = [
        f"calibrated on the training data: {sorted(raw)} sections; not fitted: {(meta or {}).get('not_fitted', [])}"
    ]
    learning = {n: a for n, a in allocators.items() if getattr(a, "learns", False)}
    trained, train_fills = learner, 0.0
    if learning:
        name, alloc = next(iter(learning.items()))
        tr, _ = run_backtest(train, {name: alloc}, app=app_cal, config=cfg, on_error=on_error, learner=learner)  # type: ignore[arg-type]
        trained = tr[name].learner
        train_fills = float(tr[name].diagnostics.get("fills", 0.0))
        notes.append(f"{name} trained on the training data: {train_fills:.0f} fills")
    results, _ = run_backtest(test, allocators, app=app_cal, config=cfg, on_error=on_error, learner=trained)  # type: ignore[arg-type]
    block = max(1, round(block_s / cfg.refresh_s))
    inc = {n: increments(r) for n, r in results.items()}
    n_blocks = min((x.size for x in inc.values()), default=0) / block
    if n_blocks < 10:
        notes.append(f"the test data hold {n_blocks:.1f} blocks of {block * cfg.refresh_s:g} s: the intervals are "
                     "rough (NaN below 2 blocks); use more test data or a shorter --block-s")  # fmt: skip
    intervals = {n: block_bootstrap_ci(x, block_len=block, n_boot=n_boot) for n, x in inc.items()}
    paired: dict[str, dict[str, dict[str, float]]] = {}
    for a in inc:
        paired[a] = {}
        for b in inc:
            if a == b:
                continue
            m = min(inc[a].size, inc[b].size)
            paired[a][b] = block_bootstrap_ci(inc[a][:m] - inc[b][:m], block_len=block, n_boot=n_boot)
    return WalkForwardResult(results, toml, intervals, paired, float(block * cfg.refresh_s), block, trained,
                             train_fills, notes)  # fmt: skip


__all__ = ["WalkForwardResult", "increments", "split_events", "walk_forward"]
