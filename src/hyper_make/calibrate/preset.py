"""A simulator preset fitted from a recording: the ``[sim.market]`` of :class:`~hyper_make.sim.config.MarketConfig`.

:func:`fit_preset` reads the recording once (:func:`hyper_make.calibrate.calibrate` with a
:class:`~hyper_make.calibrate.facts.FactsAccumulator` fed the same chunks) and sets, from its
:class:`~hyper_make.calibrate.facts.Facts`:

* ``tick_usd`` (the data's tick), ``mid0_usd`` (the mean mid), ``window_ticks`` (±4 % of the mid at least);
* ``half_spread_ticks`` ``h``: the simulator's spread averages ``1 + 2h`` ticks (others quote ``floor(F-h)`` and
  ``ceil(F+h)`` for a fair value uniform within a tick), so ``h = (s̄ - 1)/2`` with ``s̄`` the mean spread (ticks)
  below its 99th percentile, floored at 0.01;
* ``depth_profile_ticks`` / ``depth_profile_coins``: the mean size per tick beyond each side's best, averaged on
  segments 0, 1, 2, 3, 4-5, 6-7, 8-11, ... ticks (doubling every two segments) out to ``profile_bps``;
* ``mo_rate_per_s``: market orders per second; ``mo_size_tail``: the size tail index α (Hill above the KS-best
  threshold, with its standard error); ``mo_size_table_probs`` / ``mo_size_table_coins``: the recorded size
  quantiles at 0, 1, 5, 10, 20, ..., 90, 95, 99 % below the tail's threshold, and the threshold, where the Pareto
  tail takes over (so the simulated sizes follow the recorded body and its fitted tail); ``mo_size_max_coins``: the
  largest order seen;
* ``informed_frac`` π and ``informed_move_bps`` m from the 1 s markouts ``y`` of market orders (bps, + in the
  order's direction): in the simulator ``E[y] = π·m`` and ``E[y²] = v + π·m²`` with ``v`` the variance of 1 s mid
  returns at any time, so ``m = (E[y²] - v)/E[y]`` and ``π = E[y]/m`` (standard errors by the delta method);
  ``informed_size_mult = 1`` (the size law above already holds every order);
* σ and jumps: the 10 s returns give the total variance per second ``σ_tot²`` (less tick noise than 1 s); the 1 s
  returns split it: the jump share ``(RV - BV)/RV`` (realised against bipower variation), the jump rate
  ``λ = 3·JV²/κ₄`` and size ``s² = κ₄/(3·JV)`` from the jump variation ``JV`` and the fourth cumulant ``κ₄`` of
  1 s returns (compound Poisson with normal jumps); the diffusion ``σ² = σ_tot²·(1 - share) - λ_mo·π·m²`` (the
  informed moves are part of the recorded variance); when ``λ_mo·π·m²`` would exceed 90 % of the recorded non-jump
  variance (real orders cluster and their markouts overlap, the simulator's are independent), ``m`` is lowered and
  ``π`` raised (at most 1) keeping the mean markout ``π·m``, and the file says so;
* ``refill_rate_per_s``: by simulation (indirect inference). The recovery of the hit best level after market
  orders is confounded by the price moving through it, the same way in the simulator, so the simulator is run with
  the other fitted parameters at refill rates on a grid (two paths each, twice the recording's length within
  [60, 600] s) and the rate whose recovery curve at 0.5, 1 and 2 s is nearest the recording's (mean squared
  distance; the vertex of a parabola in log rate through the best grid point and its neighbours) is taken; where
  the curves are all about as near (distances within 20 % or 5e-4), the rate is not identified. Then one
  simulation at that rate scales each profile segment by recorded / simulated visible depth (the recorded profile
  is what trades left visible; where they empty levels often, the usual depth is deeper).

Not fitted (others' reactions to our orders cannot be seen in others' data; fees are the venue's schedule): the
quote update rate, pick-off distance, reactions to size, latencies, fees and markout horizon keep the defaults and
are named in the file. A parameter the data cannot support (too few orders for the tail, markouts with no
significant signed move, too few jumps) keeps its default and is named in ``not_fitted`` with why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..sim.config import MarketConfig
from . import CalibrationResult, calibrate
from .facts import MARKOUT_HORIZONS_S, MIN_TAIL_ORDERS, Facts, FactsAccumulator

#: refill rates (1/s) the simulator is run at to fit the recovery curve
REFILL_GRID_PER_S = (0.05, 0.2, 1.0, 5.0)
#: the recovery curve is compared at its first taus only (0.5, 1, 2 s): later, the price has mostly moved on
REFILL_FIT_TAUS = 3
#: recovery curves whose mean squared distances to the recording's differ by less (share²) say nothing of the rate
REFILL_FLAT = 5e-4
#: simulated paths averaged per refill rate (the recovery curve is noisy)
REFILL_SEEDS = 2
#: the simulated recording of the refill fit and of the facts (s)
SIM_RECORD_S = 600.0
#: σ needs this many returns at its horizon (s): 10 s returns if there are enough, else 1 s returns
MIN_SIGMA_RETURNS = {1.0: 60, 10.0: 30}
#: informed moves may supply at most this share of the recorded non-jump variance (the rest is diffusion)
INFORMED_VAR_SHARE = 0.9
#: what the fit sets (the other MarketConfig fields keep their defaults)
FITTED = (
    "mid0_usd", "tick_usd", "window_ticks", "half_spread_ticks", "depth_per_tick_coins", "depth_profile_ticks",
    "depth_profile_coins", "mo_rate_per_s", "mo_size_min_coins", "mo_size_tail", "mo_size_max_coins",
    "mo_size_table_probs", "mo_size_table_coins", "mo_sign_trend_share", "mo_sign_trend_persistence",
    "informed_frac", "informed_size_mult", "informed_move_bps", "sigma_bps_per_sqrt_s", "jump_rate_per_s",
    "jump_std_bps", "refill_rate_per_s",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PresetFit:
    """A fitted market and how it was fitted.

    Attributes
    ----------
    market : the fitted :class:`MarketConfig`.
    facts : the recording's stylised facts.
    stderr : parameter -> standard error (same unit), where one is known.
    notes : parameter -> how it was fitted (one line).
    not_fitted : parameter -> why the data could not fit it (it keeps the default).
    source : the files read.  calibration : the ladder calibration of the same pass.
    """

    market: MarketConfig
    facts: Facts
    stderr: dict[str, float]
    notes: dict[str, str]
    not_fitted: dict[str, str]
    source: str
    calibration: CalibrationResult | None = None

    def to_toml(self, name: str = "") -> str:
        """The preset as a config file for ``hyper-make simulate --config`` (``[meta]`` and ``[sim.market]``)."""
        names = " + ".join(Path(s).name for s in self.source.split(" + "))
        lines = [f"# hyper-make calibrate --sim-preset{(' (' + name + ')') if name else ''}: the simulated market "
                 f"fitted from {names} ({self.facts.duration_s:.0f} s)"]  # fmt: skip
        if self.not_fitted:
            lines.append("# not fitted (default kept): " + "; ".join(f"{k}: {v}" for k, v in self.not_fitted.items()))
        lines.append("# not fittable from others' data (defaults kept): quote_update_rate_per_s, pickoff_ticks, "
                     "react_threshold_frac, step_ahead_frac, lean_bps_per_s, latencies, fees, markout_s")  # fmt: skip
        lines += [
            "",
            "[meta]",
            f"source = {_str(names)}",
            'generated_by = "hyper-make calibrate --sim-preset"',
            f"partial = {'true' if self.not_fitted else 'false'}",
            "not_fitted = [" + ", ".join(_str(f"sim.market.{k}: {v}") for k, v in self.not_fitted.items()) + "]",
            "",
            "[sim.market]",
        ]
        for k in FITTED:
            v = getattr(self.market, k)
            note = self.notes.get(k, "")
            se = self.stderr.get(k)
            comment = "  # " + (f"± {se:.3g}; " if se is not None and math.isfinite(se) else "") + note if (
                note or se is not None) else ""  # fmt: skip
            if k in self.not_fitted:
                comment = f"  # default: {self.not_fitted[k]}"
            lines.append(f"{k} = {_val(v)}{comment}")
        return "\n".join([*lines, ""])

    def write_toml(self, path: str | Path, name: str = "") -> Path:
        """Write :meth:`to_toml` to ``path``; returns it."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_toml(name), encoding="utf-8")
        return p


def _val(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_val(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def _str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def measure(
    source: str | Path | Sequence[str | Path] | np.ndarray, *, profile_bps: float = 25.0, **calibrate_kwargs: Any
) -> tuple[CalibrationResult, Facts]:
    """Read ``source`` once: the ladder calibration and the stylised facts (see
    :func:`hyper_make.calibrate.calibrate` for ``source`` and the keyword arguments)."""
    acc = FactsAccumulator(profile_bps=profile_bps)
    cal = calibrate(source, observer=acc, **calibrate_kwargs)
    return cal, acc.facts()


def simulated_facts(cfg: MarketConfig, *, seed: int = 0, horizon_s: float = SIM_RECORD_S) -> Facts:
    """The stylised facts of the simulated market ``cfg`` (a recording of ``horizon_s`` s on seed ``seed``, read by
    the same code as a venue's; its snapshots reach 12 bps from the mid)."""
    from ..sim.recording import record_market

    levels = int(min(max(math.ceil(12e-4 * cfg.mid0_usd / cfg.tick_usd) + 2, 12), 5_000))
    ev = record_market(cfg, seed=seed, horizon_s=horizon_s, levels=levels)
    return measure(ev, profile_bps=10.0)[1]


def sim_horizon_s(duration_s: float) -> float:
    """Length of the simulated recordings compared with a recording of ``duration_s`` (s): twice it, within
    [60, :data:`SIM_RECORD_S`] s (a short recording's own noise dominates the comparison)."""
    return min(max(2.0 * duration_s, 60.0), SIM_RECORD_S)


def _profile_segments(profile: np.ndarray) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Segments 0, 1, 2, 3, 4, 6, 8, 12, 16, ... ticks (each the mean of its ticks), while ticks remain."""
    starts = [0, 1, 2, 3]
    s = 4
    while s < profile.size:
        starts.append(s)
        nxt = s + max(s // 2, 1)
        s = nxt
    starts = [x for x in starts if x < profile.size]
    ends = [*starts[1:], profile.size]
    coins = [float(np.mean(profile[a:b])) for a, b in zip(starts, ends, strict=True)]
    floor = max(max(coins) * 1e-6, 1e-12)  # a segment with no size in the data still needs some (> 0)
    return tuple(starts), tuple(max(c, floor) for c in coins)


def fit_market(facts: Facts, *, base: MarketConfig | None = None, refill: bool = True, seed: int = 0) -> PresetFit:
    """The :class:`MarketConfig` fitted to ``facts`` over ``base`` (default: :class:`MarketConfig()`), see the
    module docstring; ``refill=False`` skips the simulated refill fit (keeps ``base``'s rate)."""
    base = base or MarketConfig()
    se: dict[str, float] = {}
    notes: dict[str, str] = {}
    nf: dict[str, str] = {}
    v: dict[str, Any] = {}
    f = facts
    v["tick_usd"] = f.tick_usd
    v["mid0_usd"] = round(f.mid_usd / f.tick_usd) * f.tick_usd + 0.5 * f.tick_usd
    v["window_ticks"] = int(max(base.window_ticks, math.ceil(0.08 * f.mid_usd / f.tick_usd)))
    notes["mid0_usd"] = "mean mid of the recording, half a tick off the grid"
    # spread
    p99 = f.spread_quantile_ticks(0.99)
    h = f.spread_hist[: int(p99) + 1]
    mean_sp = float(np.dot(np.arange(h.size), h) / h.sum()) if h.sum() else 1.0
    v["half_spread_ticks"] = max((mean_sp - 1.0) / 2.0, 0.01)
    notes["half_spread_ticks"] = f"(mean spread {mean_sp:.3g} ticks below its p99 - 1) / 2"
    # depth profile
    ticks, coins = _profile_segments(f.depth_profile_coins)
    v["depth_profile_ticks"], v["depth_profile_coins"] = ticks, coins
    v["depth_per_tick_coins"] = coins[0]
    notes["depth_profile_coins"] = f"mean size per tick beyond the best, {f.depth_profile_coins.size} ticks"
    # market orders
    if f.n_orders == 0:
        for k in ("mo_rate_per_s", "mo_size_min_coins", "mo_size_tail", "mo_size_max_coins", "informed_frac",
                  "informed_move_bps"):  # fmt: skip
            nf[k] = "the data holds no trade"
    else:
        v["mo_rate_per_s"] = f.mo_rate_per_s
        se["mo_rate_per_s"] = math.sqrt(f.n_orders) / f.duration_s
        notes["mo_rate_per_s"] = f"{f.n_orders} market orders in {f.duration_s:.0f} s"
        if f.tail_n >= MIN_TAIL_ORDERS and math.isfinite(f.tail_index):
            alpha = min(max(f.tail_index, 1.05), 5.0)
            v["mo_size_tail"] = alpha
            se["mo_size_tail"] = f.tail_index_stderr
            clipped = f", {f.tail_index:.3g} clipped to [1.05, 5]" if alpha != f.tail_index else ""
            notes["mo_size_tail"] = f"Hill above {f.tail_threshold_coins:.3g} coins ({f.tail_n} orders){clipped}"
        else:
            nf["mo_size_tail"] = f"fewer than {MIN_TAIL_ORDERS} market orders in the size tail"
        probs, coins = _size_table(f)
        v["mo_size_table_probs"], v["mo_size_table_coins"] = probs, coins
        if probs:
            v["mo_size_min_coins"] = coins[0]
            notes["mo_size_table_coins"] = (f"recorded size quantiles at {len(probs)} probabilities up to "
                                            f"{probs[-1]:.3g}, the Pareto tail beyond")  # fmt: skip
            notes["mo_size_min_coins"] = "the smallest size bin with an order (the table's first point)"
        else:
            v["mo_size_min_coins"] = f.tail_threshold_coins
            notes["mo_size_min_coins"] = "the tail's threshold: the Pareto tail holds over 99 % of the orders"
        v["mo_size_max_coins"] = max(f.size_max_coins, v["mo_size_min_coins"])
        notes["mo_size_max_coins"] = "largest market order seen"
        v["informed_size_mult"] = 1.0
        notes["informed_size_mult"] = "1: the size law holds every order"
        _sign_memory(f, v, notes, nf)
        _informed(f, v, se, notes, nf)
    _sigma_jumps(f, v, se, notes, nf, base)
    market = replace(base, **v)
    if refill:
        # the recorded profile is what trades left visible: where they empty levels often, the usual depth is
        # deeper. With the refill rate fitted, one simulation at it scales the profile to the recorded visible one
        r, curve = _fit_refill(market, f, seed=seed)
        if r is None:
            nf["refill_rate_per_s"] = curve
        else:
            market = _correct_profile(replace(market, refill_rate_per_s=r), f, seed=seed)
            notes["refill_rate_per_s"] = curve
            notes["depth_profile_coins"] = (
                f"mean size per tick beyond the best, {f.depth_profile_coins.size} ticks, scaled so the simulator's "
                "visible depth (after its trades) matches it"
            )
            v["depth_profile_coins"] = market.depth_profile_coins
            v["depth_per_tick_coins"] = market.depth_per_tick_coins
    else:
        nf["refill_rate_per_s"] = "refill fit skipped"
    return PresetFit(market=market, facts=f, stderr=se, notes=notes, not_fitted=nf, source="")


#: probabilities of the size table (below the tail's threshold)
SIZE_TABLE_PROBS = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _size_table(f: Facts) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The size law as a quantile table: :data:`SIZE_TABLE_PROBS` below the tail's threshold and the threshold
    itself (the Pareto tail of the fit takes over there), sizes non-decreasing (coins); empty when the tail holds
    (nearly) every order (the Pareto law of the tail alone is the law)."""
    p_tail = 1.0 - f.tail_n / f.n_orders if f.tail_n >= MIN_TAIL_ORDERS and f.n_orders else 0.99
    if p_tail < SIZE_TABLE_PROBS[1]:
        return (), ()
    probs = [u for u in SIZE_TABLE_PROBS if u < p_tail - 1e-9]
    if p_tail > probs[-1] + 1e-9:
        probs.append(p_tail)
    coins = [f.size_min_coins] + [f.size_quantile_coins(u) for u in probs[1:]]
    if f.tail_n >= MIN_TAIL_ORDERS and len(probs) > 1:
        coins[-1] = max(f.tail_threshold_coins, coins[-2])
    out = [coins[0]]
    for x in coins[1:]:
        out.append(max(x, out[-1]))
    return tuple(float(u) for u in probs), tuple(float(x) for x in out)


def _sign_memory(f: Facts, v: dict[str, Any], notes: dict[str, str], nf: dict[str, str]) -> None:
    """``w`` and ``φ`` of the order-flow memory from the sign autocorrelation ``ρ_l = w²·φ^l``: least squares of
    ``log ρ_l`` on ``l`` over the lags where ``ρ_l`` is significantly positive (> 2/√n); none: no memory (w = 0)."""
    n = f.n_orders
    lags = np.arange(1, f.sign_acf.size + 1)
    ok = np.isfinite(f.sign_acf) & (f.sign_acf > 2.0 / math.sqrt(max(n, 1)))
    if n < 100 or int(ok.sum()) < 2:
        v["mo_sign_trend_share"], v["mo_sign_trend_persistence"] = 0.0, 0.0
        notes["mo_sign_trend_share"] = notes["mo_sign_trend_persistence"] = (
            f"independent signs: fewer than 2 of the first {lags.size} lags significantly positive in {n} orders"
            if n >= 100
            else f"independent signs: {n} orders (100 needed for the memory)"
        )
        return
    slope, icpt = np.polyfit(lags[ok], np.log(f.sign_acf[ok]), 1)
    phi = float(min(max(math.exp(slope), 0.0), 0.99))
    w = float(min(math.sqrt(min(math.exp(icpt), 1.0)), 0.95))
    v["mo_sign_trend_share"], v["mo_sign_trend_persistence"] = w, phi
    notes["mo_sign_trend_share"] = notes["mo_sign_trend_persistence"] = (
        f"sign autocorrelation w²·φ^l fitted on {int(ok.sum())} lags: lag 1 {f.sign_acf[0]:.3g}, lag "
        f"{lags[-1]} {f.sign_acf[-1]:.3g}"
    )


def _memory_gain(v: dict[str, Any], base: MarketConfig, horizon_s: float) -> float:
    """``1 + w²·Σ_{l=1..N} φ^l``, ``N = λ_mo·horizon_s``: the mean markout over ``horizon_s`` of a market order
    over its own informed move, with the informed orders that follow it in the same direction."""
    w = v.get("mo_sign_trend_share", base.mo_sign_trend_share)
    phi = v.get("mo_sign_trend_persistence", base.mo_sign_trend_persistence)
    if w == 0.0 or phi == 0.0:
        return 1.0
    n = v.get("mo_rate_per_s", base.mo_rate_per_s) * horizon_s
    return 1.0 + w * w * phi * (1.0 - phi**n) / (1.0 - phi)


def _informed(f: Facts, v: dict[str, Any], se: dict[str, float], notes: dict[str, str], nf: dict[str, str]) -> None:
    i = MARKOUT_HORIZONS_S.index(1.0)
    n = int(f.markout_count[i])
    mu1, mu2 = float(f.markout_bps[i]), float(f.markout_m2_bps2[i])
    var_h = f.sigma_bps.get(1.0, math.nan) ** 2
    if n < 30 or not math.isfinite(mu1) or not math.isfinite(var_h):
        for k in ("informed_frac", "informed_move_bps"):
            nf[k] = f"only {n} market orders with a full 1 s markout (30 needed)"
        return
    se1 = float(f.markout_stderr_bps[i])
    excess = mu2 - var_h
    if mu1 <= 2.0 * se1 or excess <= 0:
        why = (f"the 1 s markout {mu1:.3g} ± {se1:.2g} bps is not significantly > 0" if mu1 <= 2.0 * se1 else
               f"E[y²] {mu2:.3g} bps² is not above the 1 s return variance {var_h:.3g} bps²")  # fmt: skip
        for k in ("informed_frac", "informed_move_bps"):
            nf[k] = why
        return
    m = excess / mu1
    pi = min(mu1 / m, 1.0)
    # delta method on (μ1, μ2): m = (μ2 - v)/μ1, π = μ1²/(μ2 - v)
    var1 = se1**2
    var2 = max(float(f.markout_m4_bps4[i]) - mu2**2, 0.0) / n
    cov = (float(f.markout_m3_bps3[i]) - mu1 * mu2) / n
    gm = np.array([-excess / mu1**2, 1.0 / mu1])
    gp = np.array([2 * mu1 / excess, -(mu1**2) / excess**2])
    cmat = np.array([[var1, cov], [cov, var2]])
    # with order-flow memory the informed orders that follow in the same direction add to the markout
    gain = _memory_gain(v, MarketConfig(), 1.0)
    v["informed_move_bps"], v["informed_frac"] = m, pi / gain
    se["informed_move_bps"] = float(math.sqrt(max(gm @ cmat @ gm, 0.0)))
    se["informed_frac"] = float(math.sqrt(max(gp @ cmat @ gp, 0.0))) / gain
    notes["informed_frac"] = notes["informed_move_bps"] = (
        f"1 s markouts of {n} orders: E[y] {mu1:.3g} bps, E[y²] {mu2:.3g} bps², return variance {var_h:.3g} bps²"
        + (f"; π over {gain:.3g} (the same-direction informed orders within 1 s)" if gain != 1.0 else "")
    )


def _sigma_jumps(
    f: Facts, v: dict[str, Any], se: dict[str, float], notes: dict[str, str], nf: dict[str, str],
    base: MarketConfig,
) -> None:  # fmt: skip
    h = 10.0 if f.sigma_n.get(10.0, 0) >= MIN_SIGMA_RETURNS[10.0] else 1.0
    s_h = f.sigma_bps.get(h, math.nan)
    if not (math.isfinite(s_h) and s_h > 0) or f.sigma_n.get(h, 0) < MIN_SIGMA_RETURNS[h]:
        why = (f"{f.sigma_n.get(1.0, 0)} returns of 1 s and {f.sigma_n.get(10.0, 0)} of 10 s in {f.duration_s:.0f} s "
               f"({MIN_SIGMA_RETURNS[1.0]} or {MIN_SIGMA_RETURNS[10.0]} needed)")  # fmt: skip
        for k in ("sigma_bps_per_sqrt_s", "jump_rate_per_s", "jump_std_bps"):
            nf[k] = why
        return
    tot2 = s_h**2 / h
    rv = f.sigma_bps[1.0] ** 2
    jv = rv - f.bipower_1s_bps2
    k4 = f.kurt4_1s_bps4
    share = 0.0
    lam_j = 3.0 * jv**2 / k4 if jv > 0 and k4 > 0 else 0.0
    if lam_j * f.duration_s >= 3.0:
        s2 = k4 / (3.0 * jv)
        v["jump_rate_per_s"] = lam_j
        v["jump_std_bps"] = math.sqrt(s2)
        share = min(jv / rv, 0.9)
        notes["jump_rate_per_s"] = notes["jump_std_bps"] = (
            f"1 s returns: jump variation {jv:.3g} of {rv:.3g} bps², fourth cumulant {k4:.3g} bps⁴"
        )
    else:
        why = (f"{lam_j * f.duration_s:.2g} jumps expected in {f.duration_s:.0f} s from the 1 s returns' jump "
               "variation and fourth cumulant (3 needed)")  # fmt: skip
        nf["jump_rate_per_s"] = nf["jump_std_bps"] = why
    lam_mo = v.get("mo_rate_per_s", base.mo_rate_per_s)
    jump_var = (
        0.0 if "jump_rate_per_s" in v else base.jump_rate_per_s * base.jump_std_bps**2
    )  # the default's jumps stay in the simulator: leave their variance out of the diffusion
    budget = INFORMED_VAR_SHARE * max(tot2 * (1.0 - share) - jump_var, 0.0)
    w = v.get("mo_sign_trend_share", base.mo_sign_trend_share)
    phi = v.get("mo_sign_trend_persistence", base.mo_sign_trend_persistence)
    k2 = 2.0 * w * w * phi / (1.0 - phi)  # the informed moves' variance is λ·π·m²·(1 + π·k2)
    if "informed_frac" in v:
        pi, m = v["informed_frac"], v["informed_move_bps"]
        if lam_mo * pi * m * m * (1.0 + pi * k2) > budget:
            # independent informed moves at every order's rate would exceed the recorded variance (real orders
            # cluster, their markouts overlap): keep the per-order mean π·m, spend at most the budget on it:
            # λ·(π·m)²·(1/π + k2) = budget
            mu1 = pi * m
            inv = budget / (lam_mo * mu1 * mu1) - k2 if mu1 > 0 else 0.0
            if inv > 1.0:
                pi = 1.0 / inv
                m = mu1 / pi
            else:
                pi, m = 1.0, math.sqrt(budget / (lam_mo * (1.0 + k2)))
            est = (f"π = {v['informed_frac']:.3g} ± {se.pop('informed_frac', math.nan):.2g}, m = "
                   f"{v['informed_move_bps']:.3g} ± {se.pop('informed_move_bps', math.nan):.2g} bps")  # fmt: skip
            notes["informed_frac"] = notes["informed_move_bps"] = notes["informed_frac"] + (
                f"; {est} rescaled to keep π·m while λ_mo·π·m²·(1 + π·2w²φ/(1-φ)) <= {INFORMED_VAR_SHARE:.0%} of the "
                "non-jump variance"
            )
            v["informed_frac"], v["informed_move_bps"] = pi, m
    pi_f = v.get("informed_frac", base.informed_frac)
    inf_var = lam_mo * pi_f * v.get("informed_move_bps", base.informed_move_bps) ** 2 * (1.0 + pi_f * k2)
    sig2 = max(tot2 * (1.0 - share) - inf_var - jump_var, 0.1 * tot2)
    v["sigma_bps_per_sqrt_s"] = math.sqrt(sig2)
    se["sigma_bps_per_sqrt_s"] = math.sqrt(sig2) / math.sqrt(2.0 * max(f.sigma_n[h] - 1, 1))
    notes["sigma_bps_per_sqrt_s"] = (
        f"σ_tot {math.sqrt(tot2):.3g} bps/√s from {h:g} s returns, less jumps ({share:.0%}) and informed moves "
        f"({inf_var:.3g} bps²/s)"
    )


def _correct_profile(market: MarketConfig, f: Facts, *, seed: int) -> MarketConfig:
    """``market`` with each profile segment scaled by recorded / simulated visible depth there (factor clipped to
    [0.5, 4]; segments the simulated snapshots do not reach keep the factor of the last one that is reached)."""
    sim = simulated_facts(market, seed=seed, horizon_s=sim_horizon_s(f.duration_s))
    starts = market.depth_profile_ticks
    ends = (*starts[1:], f.depth_profile_coins.size)
    coins = list(market.depth_profile_coins)
    factor = 1.0
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        if b <= sim.depth_profile_coins.size and b > a:
            s_mean = float(np.mean(sim.depth_profile_coins[a:b]))
            r_mean = float(np.mean(f.depth_profile_coins[a:b]))
            if s_mean > 0 and r_mean > 0:
                factor = min(max(r_mean / s_mean, 0.5), 4.0)
        coins[i] *= factor
    return replace(market, depth_profile_coins=tuple(coins), depth_per_tick_coins=coins[0])


def _fit_refill(market: MarketConfig, f: Facts, *, seed: int) -> tuple[float | None, str]:
    """The refill rate whose simulated recovery curve is nearest the recording's (see the module docstring)."""
    target = f.recovery_missing
    if f.recovery_count < 30 or not np.all(np.isfinite(target[:REFILL_FIT_TAUS])):
        return None, f"only {f.recovery_count} market orders with a full recovery measurement (30 needed)"
    horizon = sim_horizon_s(f.duration_s)
    dist = []
    for r in REFILL_GRID_PER_S:
        cfg = replace(market, refill_rate_per_s=r)
        curve = np.mean([simulated_facts(cfg, seed=seed + k, horizon_s=horizon).recovery_missing
                         for k in range(REFILL_SEEDS)], axis=0)  # fmt: skip
        dist.append(float(np.mean((curve - target)[:REFILL_FIT_TAUS] ** 2)))
    d = np.array(dist)
    if d.max() - d.min() < max(0.2 * d.min(), REFILL_FLAT):
        return None, (f"not identified: the simulated recovery curves at {list(REFILL_GRID_PER_S)} /s are all as near "
                      f"the recording's (mean squared distances {[round(x, 4) for x in dist]}); the best level is "
                      "seldom emptied and the price moving through it dominates")  # fmt: skip
    i = int(np.argmin(d))
    logr = np.log(REFILL_GRID_PER_S)
    if 0 < i < d.size - 1:  # the vertex of the parabola through the best point and its neighbours (log r)
        x, y = logr[i - 1 : i + 2], d[i - 1 : i + 2]
        a, b, _ = np.polyfit(x, y, 2)
        best = float(np.clip(-b / (2 * a), x[0], x[2])) if a > 0 else float(logr[i])
    else:
        best = float(logr[i])
    r = float(math.exp(best))
    return r, (f"simulated recovery curves at {list(REFILL_GRID_PER_S)} /s against the recording's "
               f"({f.recovery_count} orders): mean squared distances {[round(x, 4) for x in dist]}")  # fmt: skip


def fit_preset(
    source: str | Path | Sequence[str | Path] | np.ndarray,
    *,
    base: MarketConfig | None = None,
    refill: bool = True,
    seed: int = 0,
    **calibrate_kwargs: Any,
) -> PresetFit:
    """Read ``source`` once and fit the simulator's market to it (module docstring); raises :class:`DataError` on
    unreadable data or a recording with no two-sided book."""
    cal, facts = measure(source, **calibrate_kwargs)
    if facts.duration_s <= 0:
        raise DataError(f"{cal.source}: the recording spans no time: nothing to fit")
    fit = fit_market(facts, base=base, refill=refill, seed=seed)
    return replace(fit, source=cal.source, calibration=cal)


def market_from_toml(raw: dict[str, Any], *, base: MarketConfig | None = None, where: str = "") -> MarketConfig:
    """The ``[sim.market]`` table of a parsed preset file over ``base``; raises naming an unknown key."""
    from ..errors import ConfigError

    table = raw.get("sim", {}).get("market", {})
    valid = {x.name for x in fields(MarketConfig)}
    for k in table:
        if k not in valid:
            raise ConfigError(f"{where}: unknown key 'sim.market.{k}'; valid keys are {sorted(valid)}")
    return replace(base or MarketConfig(), **table)


__all__ = [
    "FITTED",
    "PresetFit",
    "fit_market",
    "fit_preset",
    "market_from_toml",
    "measure",
    "sim_horizon_s",
    "simulated_facts",
]
