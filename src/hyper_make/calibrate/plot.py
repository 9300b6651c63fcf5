"""Plots of a calibration: the fill intensity λ(δ) (1/s against bps) and the markouts by depth (bps against bps).

Written with matplotlib's object-oriented API on an Agg canvas (:mod:`hyper_make.report`): the caller's backend is
left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report import new_figure, save_figure
from .result import CalibrationResult


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
