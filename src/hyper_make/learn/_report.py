"""The learner's part of a simulate or backtest report: its posterior per depth bucket next to what was realised.

``write_learner_report(learner, folder)`` writes

* ``learner_diagnostics.json``: :meth:`PayoutLearner.diagnostics` (per side and bucket the posterior mean and 90 %
  interval of the fill rate per resting coin-second and of the markout per filled coin, the size fit with its
  square-root-versus-linear test, the skip counters) plus the realised values below;
* ``learned_value.png``: per side, the learned fill rate (1/s) and markout (bps, net of fees, at the value
  horizon) per depth bucket with their intervals, the prior's curve, and the realised values of the run: filled
  coins per resting coin-second, and the mean (winsorised) markout of the fills in the bucket.

Realised values are the learner's own (decayed) statistics, unpooled: a bucket with few fills shows a noisy dot
where the posterior, pooled across depths and shrunk to the prior, stays smooth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._json import to_jsonable
from ..report import new_figure, save_figure

SIDES = ("bid", "ask")


def realised(learner: Any) -> dict[str, dict[str, list[float]]]:
    """Per side and bucket: ``rate_per_s`` (filled coins per resting coin-second, NaN without exposure),
    ``markout_bps`` (mean winsorised markout of the fills at the value horizon, NaN without fills), ``fills``."""
    st, cfg = learner.state, learner.config
    h = cfg.markout_horizons_s.index(cfg.value_horizon_s)
    prior = learner.prior.markout(cfg.bucket_centres_bps)
    out = {}
    for s, side in enumerate(SIDES):
        e, f = st["exposure_coin_s"][s], st["filled_coins"][s]
        w, y = st["mk_w"][s, h], st["mk_y"][s, h]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(e > 0, f / np.where(e > 0, e, 1.0), np.nan)
            mk = np.where(w > 0, prior + y / np.where(w > 0, w, 1.0), np.nan)
        out[side] = {"rate_per_s": rate.tolist(), "markout_bps": mk.tolist(), "fills": st["fill_count"][s].tolist()}
    return out


def write_learner_report(learner: Any, folder: str | Path, *, title: str = "") -> list[Path]:
    """Write ``learner_diagnostics.json`` and ``learned_value.png`` into ``folder``; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    diag = learner.diagnostics()
    real = realised(learner)
    doc = diag.to_dict() | {"realised": real}
    jpath = out / "learner_diagnostics.json"
    jpath.write_text(json.dumps(to_jsonable(doc), indent=1, allow_nan=False), encoding="utf-8")
    cfg = learner.config
    centres = cfg.bucket_centres_bps
    fig, axes = new_figure((10.0, 6.5), nrows=2, ncols=2, sharex=True)
    fine = np.linspace(centres[0], centres[-1], 200)
    for col, side in enumerate(SIDES):
        b = getattr(diag, side)
        ax = axes[0, col]
        err = [b.rate_mean_per_s - b.rate_lo_per_s, b.rate_hi_per_s - b.rate_mean_per_s]
        ax.errorbar(centres, b.rate_mean_per_s, yerr=err, fmt="o-", ms=3, capsize=2, label="learned (90 %)")
        ax.plot(centres, real[side]["rate_per_s"], "x", color="C3", label="realised")
        ax.plot(fine, learner.prior.rate(fine), ":", color="grey", label="prior")
        ax.set_yscale("log")
        ax.set_title(f"{side}: fill rate per resting coin-second (1/s)")
        ax = axes[1, col]
        err = [b.markout_mean_bps - b.markout_lo_bps, b.markout_hi_bps - b.markout_mean_bps]
        ax.errorbar(centres, b.markout_mean_bps, yerr=err, fmt="o-", ms=3, capsize=2, label="learned (90 %)")
        ax.plot(centres, real[side]["markout_bps"], "x", color="C3", label="realised")
        ax.plot(fine, learner.prior.markout(fine), ":", color="grey", label="prior")
        ax.axhline(0.0, color="black", lw=0.5)
        ax.set_title(f"{side}: markout per filled coin at {cfg.value_horizon_s:g} s (bps, net of fees)")
        ax.set_xscale("log")
        ax.set_xlabel("depth from the mid (bps, bucket centre)")
    axes[0, 0].legend(fontsize=8)
    fit = diag.size_fit
    fig.suptitle(
        (title + ": " if title else "") + f"size penalty θ·s^{fit.beta:g} ({fit.model}; data prefer {fit.preferred}), "
        f"{learner.n_updates} updates, {float(learner.state['fill_count'].sum()):.0f} fills (decayed)",
        fontsize=9,
    )
    ppath = save_figure(fig, out / "learned_value.png")
    return [jpath, ppath]


__all__ = ["realised", "write_learner_report"]
