"""The refresh core compiled: :class:`~hyper_make.strategy.quoter.Quoter`'s refresh on arrays, for compiled loops.

A venue's compiled loop (the simulator's :mod:`hyper_make.sim._loop`) fills a *view* (the arrays below) and calls
:func:`refresh`; it applies the plan it gets back and, when additions were deferred, calls :func:`release` two round
trips later, exactly as :meth:`Quoter.drive` does. Each step is the Python refresh core's, in its order of
operations (the estimator's time-weighted sums aged at the same instants, Python's left-to-right sums), so that a
compiled loop gives the fills and PnL of the Python loop on the same seed, which stays the reference
(``tests/sim/test_compiled_loop.py``):

1. observe: the refresh interval (exponentially weighted), the estimator's book and traded-volume updates;
2. guards: halted, no two-sided book, stale book, the drawdown and position-limit stops (a pause cancels
   everything);
3. the ladder: the estimator's snapshot as the fast path's snapshot vector, one :func:`~._kernel.build_sides` call;
4. the diff, the position fit and the last look (:mod:`._orders`), and the run record's sums (:class:`LadderRecord`).

The payout learner (``learned``) and the per-level fill statistics are not compiled: a loop with an allocator that
learns runs the Python refresh core.

Arrays (side index 0 = bid, 1 = ask; order ids are int64 counters of the run's :class:`CloidFactory`):

* ``qc`` (float64, ``QC_*``): the quoter's configuration and the prior snapshot's fields;
* ``qs`` (float64, ``QS_*``) and ``qi`` (int64, ``QI_*``): the core's state, carried from refresh to refresh;
* ``vf`` (float64, ``VF_*``) and ``vi`` (int64, ``VI_*``): the view's scalars; ``rest`` (float64 rows ``R_*``, the
  resting orders in the venue's order), ``pend`` (rows ``P_*``: pending orders), ``unseen`` (rows ``P_*``);
* the plan: ``kept``, ``cancel`` (indices into ``rest``), ``mods`` (rows: target index, id, side, price USD, size
  coins, reduce-only, level), ``places`` and ``deferred`` (rows: id, side, price, size, reduce-only, level).
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from ..strategy.record import _side_terms
from . import _kernel as k
from ._orders import plan_refresh, release_plan

# quoter configuration and prior (qc)
(
    QC_ALO,
    QC_STALE_S,
    QC_MAX_DD,  # NaN: no drawdown stop
    QC_MAX_POS,
    QC_THR_BPS,
    QC_THR_FRAC,
    QC_REDUCE_ONLY,
    QC_HALFLIFE_S,
    QC_PRIOR_W_S,
    QC_VAR0,  # prior σ² per second (fraction²/s)
    QC_VOL0,  # prior traded volume (coins/s)
    QC_PRIOR_DAILY,  # prior daily volume (coins)
    QC_PRIOR_MARGIN,  # USD
    QC_LEVERAGE,
    QC_FEE_BPS,
    QC_TOXICITY,
    QC_CASCADE,
    QC_HORIZON_S,  # the ladder's horizon (s)
    QC_PERIOD_S,  # the impact model's volume period (s)
    QC_PROFILE,  # 1: the prior has a volume profile
    QC_IMPACT_ON,  # 1: the ladder's impact model is on
    QC_TARGET0,  # the entropy allocator's initial target (nats)
    QC_RECORD_SCALE,  # min(refresh_s / horizon_s, 1)
) = range(23)
QC_SIZE = 23

# core state (qs)
(
    QS_SUM_R2,
    QS_SUM_VOL,
    QS_SUM_T,
    QS_T,  # the estimator's clock (s), NaN before the first update
    QS_MID,  # NaN before the first book
    QS_BID,
    QS_ASK,
    QS_INTERVAL,  # the measured refresh interval (s), NaN before two
    QS_PEAK_PNL,
    QS_MAX_DD,
    QS_TG_BID,  # entropy targets (nats), valid when QI_HAS_* is set
    QS_TG_ASK,
    QS_REC_IMPACT,  # the run record's sums (USD)
    QS_REC_EXPECTED,
    QS_REC_EFF_SUM,
    QS_REC_EFF_N,
    QS_REF_MID,  # the last build's mid (USD)
) = range(17)
QS_SIZE = 17
(QI_LAST_OBS_NS, QI_HAS_OBS, QI_NEXT_ID, QI_HAS_BID, QI_HAS_ASK, QI_REFRESHES, QI_N_DEF, QI_BOOKS, QI_TRADES) = range(9)
QI_SIZE = 9

# the view's scalars
VF_BID, VF_ASK, VF_TRADED, VF_POS, VF_MARGIN, VF_PNL, VF_LATENCY, VF_BOOK_INTERVAL = range(8)
VF_SIZE = 8
VI_TS_NS, VI_BOOK_NS, VI_HAS_BOOK, VI_HALTED, VI_N_REST, VI_N_PEND, VI_N_UNSEEN = range(7)
VI_SIZE = 7
# rows of rest (id, side, price USD, size coins, reduce-only) and of pend / unseen (side, price USD, size coins)
R_ID, R_SIDE, R_PX, R_SZ, R_RO = range(5)
P_SIDE, P_PX, P_SZ = range(3)

#: what a refresh decided (the first return value of :func:`refresh`)
ST_QUOTING, ST_HALTED, ST_NO_BOOK, ST_STALE, ST_STOP_DRAWDOWN, ST_STOP_POSITION, ST_REFERENCE = range(7)

_EPS = 1e-9
_LN2 = math.log(2.0)
_SECONDS_PER_DAY = 86_400.0
_SIDE_SHARE = 0.5


@nb.njit(cache=True)
def _advance(qc, qs, t_s):  # type: ignore[no-untyped-def]
    """:meth:`MarketEstimator._advance`: age the sums to ``t_s`` (s)."""
    if math.isnan(qs[QS_T]):
        qs[QS_T] = t_s
        return
    dt = t_s - qs[QS_T]
    if dt <= 0:
        return
    hl = qc[QC_HALFLIFE_S]
    decay = 2.0 ** (-dt / hl)
    qs[QS_SUM_R2] *= decay
    qs[QS_SUM_VOL] *= decay
    qs[QS_SUM_T] = qs[QS_SUM_T] * decay + hl / _LN2 * (1.0 - decay)
    qs[QS_T] = t_s


@nb.njit(cache=True)
def _shrunk(qc, qs, t_s, prior, slot):  # type: ignore[no-untyped-def]
    """The estimator's rate of the sum ``qs[slot]`` aged to ``t_s`` (s), shrunk to ``prior``:
    ``(prior·W0 + Σ) / (W0 + Σ w·Δt)`` (``prior`` when no weight)."""
    _advance(qc, qs, t_s)
    w0 = qc[QC_PRIOR_W_S]
    den = w0 + qs[QS_SUM_T]
    return (prior * w0 + qs[slot]) / den if den > 0 else prior


@nb.njit(cache=True)
def sigma_per_sqrt_s(qc, qs, t_s):  # type: ignore[no-untyped-def]
    """:meth:`MarketEstimator.sigma_frac_per_sqrt_s`: σ of the mid over 1 s (fraction), shrunk to the prior."""
    return math.sqrt(max(_shrunk(qc, qs, t_s, qc[QC_VAR0], QS_SUM_R2), 1e-16))


@nb.njit(cache=True)
def _daily_volume(qc, qs, t_s):  # type: ignore[no-untyped-def]
    """:meth:`MarketEstimator.daily_volume_coins`: traded volume per day (coins), shrunk to the prior."""
    return _shrunk(qc, qs, t_s, qc[QC_VOL0], QS_SUM_VOL) * _SECONDS_PER_DAY


@nb.njit(cache=True)
def shape_row(out, n_bid, n_ask, n_levels, row):  # type: ignore[no-untyped-def]
    """:func:`~hyper_make.strategy.record.shape_row` of the build in ``out`` into ``row`` (coins: bids deepest to
    touch, then asks touch to deepest)."""
    row[:] = 0.0
    for j in range(n_bid):
        lv = int(out[0, 3, j])
        if lv < n_levels:
            row[n_levels - 1 - lv] += out[0, 1, j]
    for j in range(n_ask):
        lv = int(out[1, 3, j])
        if lv < n_levels:
            row[n_levels + lv] += out[1, 1, j]


@nb.njit(cache=True)
def _observe(qc, qs, qi, vf, vi):  # type: ignore[no-untyped-def]
    """:meth:`Quoter.observe` without the fill statistics: the interval, the book and the traded volume."""
    ts = vi[VI_TS_NS]
    if qi[QI_HAS_OBS] != 0 and ts <= qi[QI_LAST_OBS_NS]:
        return
    if qi[QI_HAS_OBS] != 0:
        gap = (ts - qi[QI_LAST_OBS_NS]) / 1e9
        qs[QS_INTERVAL] = gap if math.isnan(qs[QS_INTERVAL]) else 0.8 * qs[QS_INTERVAL] + 0.2 * gap
    qi[QI_LAST_OBS_NS] = ts
    qi[QI_HAS_OBS] = 1
    t_s = ts / 1e9
    bid, ask = vf[VF_BID], vf[VF_ASK]
    if vi[VI_HAS_BOOK] != 0 and 0.0 < bid < ask and math.isfinite(ask):
        tb = vi[VI_BOOK_NS] / 1e9
        mid = 0.5 * (bid + ask)
        _advance(qc, qs, tb)
        if not math.isnan(qs[QS_MID]):
            qs[QS_SUM_R2] += math.log(mid / qs[QS_MID]) ** 2
        qs[QS_MID], qs[QS_BID], qs[QS_ASK] = mid, bid, ask
        qi[QI_BOOKS] += 1
    traded = vf[VF_TRADED]
    if traded > 0 and math.isfinite(traded):
        _advance(qc, qs, t_s)
        qs[QS_SUM_VOL] += traded
        qi[QI_TRADES] += 1


@nb.njit(cache=True)
def observe(qc, qs, qi, vf, vi):  # type: ignore[no-untyped-def]
    """:meth:`Quoter.observe` alone (a warm-up or a stopped run's refresh: estimates, no quotes): the refresh
    interval, the book and the traded volume of the view, as :func:`refresh` observes them."""
    _observe(qc, qs, qi, vf, vi)


@nb.njit(cache=True)
def _two_sided(vf, vi):  # type: ignore[no-untyped-def]
    return vi[VI_HAS_BOOK] != 0 and 0.0 < vf[VF_BID] < vf[VF_ASK] and math.isfinite(vf[VF_ASK])


@nb.njit(cache=True)
def _margin_frac(qc, qs, vf, vi):  # type: ignore[no-untyped-def]
    """:meth:`Quoter.crossing`'s margin (fraction of price): ``z·σ·√τ``; the estimator ages to the view's time."""
    age = max(vi[VI_TS_NS] - vi[VI_BOOK_NS], 0) / 1e9
    tau = max(vf[VF_BOOK_INTERVAL], age + vf[VF_LATENCY])
    sigma = sigma_per_sqrt_s(qc, qs, vi[VI_TS_NS] / 1e9)
    return qc[QC_ALO] * sigma * math.sqrt(tau)


@nb.njit(cache=True)
def _risk_stop(qc, qs, vf):  # type: ignore[no-untyped-def]
    pnl = vf[VF_PNL]
    if math.isfinite(pnl):
        qs[QS_PEAK_PNL] = max(qs[QS_PEAK_PNL], pnl)
        qs[QS_MAX_DD] = max(qs[QS_MAX_DD], qs[QS_PEAK_PNL] - pnl)
        limit = qc[QC_MAX_DD]
        if not math.isnan(limit) and qs[QS_PEAK_PNL] - pnl > limit:
            return ST_STOP_DRAWDOWN
    if abs(vf[VF_POS]) > qc[QC_MAX_POS] + _EPS:
        return ST_STOP_POSITION
    return ST_QUOTING


@nb.njit(cache=True)
def _snapshot_vector(qc, qs, qi, vf, vi, pend, ci, sv):  # type: ignore[no-untyped-def]
    """:meth:`MarketEstimator.snapshot` and the reserve as :meth:`FastLadder.build`'s snapshot vector ``sv``."""
    t_s = vi[VI_TS_NS] / 1e9
    sigma = sigma_per_sqrt_s(qc, qs, t_s)
    vol_ratio = sigma / math.sqrt(qc[QC_VAR0])
    volume = _daily_volume(qc, qs, t_s)
    daily = volume if volume > 0 else qc[QC_PRIOR_DAILY]
    sf = min(sigma, 1.0)
    mid = qs[QS_MID]
    margin = vf[VF_MARGIN]
    margin = qc[QC_PRIOR_MARGIN] if math.isnan(margin) else max(margin, 1e-9)
    h = qc[QC_HORIZON_S]
    period = qc[QC_PERIOD_S]
    res_bid = 0.0
    res_ask = 0.0
    for j in range(vi[VI_N_PEND]):
        if pend[j, P_SIDE] == 0:
            res_bid += pend[j, P_SZ]
        else:
            res_ask += pend[j, P_SZ]
    if qc[QC_IMPACT_ON] == 0:
        ci[k.CI_IMPACT] = k.IMPACT_OFF
    elif qc[QC_PROFILE] != 0 or daily > 0:
        ci[k.CI_IMPACT] = k.IMPACT_ON
    else:
        ci[k.CI_IMPACT] = k.IMPACT_NONE
    sp = sf * mid / 1.0**0.5
    sv[k.SV_MID] = mid
    sv[k.SV_BID] = qs[QS_BID]
    sv[k.SV_ASK] = qs[QS_ASK]
    sv[k.SV_Q] = vf[VF_POS]
    sv[k.SV_MAXPOS] = qc[QC_MAX_POS]
    sv[k.SV_MARGIN] = margin
    sv[k.SV_LEV] = qc[QC_LEVERAGE]
    sv[k.SV_FEE] = qc[QC_FEE_BPS]
    sv[k.SV_SIGMA2] = sp**2
    sv[k.SV_SIGMA_FILL] = sf / math.sqrt(1.0)
    sv[k.SV_SIGMA_H] = sf * math.sqrt(h / 1.0)
    sv[k.SV_SIGMA_PERIOD] = sf * math.sqrt(period / 1.0)
    sv[k.SV_VOL_SCALE] = daily * (h / period) * _SIDE_SHARE
    sv[k.SV_PROFILE_SCALE] = h / 1.0
    sv[k.SV_RES_BID] = res_bid
    sv[k.SV_RES_ASK] = res_ask
    sv[k.SV_TOXICITY] = qc[QC_TOXICITY]
    sv[k.SV_VOL_RATIO] = vol_ratio
    sv[k.SV_CASCADE] = qc[QC_CASCADE]
    sv[k.SV_TARGET_BID] = qs[QS_TG_BID] if qi[QI_HAS_BID] != 0 else qc[QC_TARGET0]
    sv[k.SV_TARGET_ASK] = qs[QS_TG_ASK] if qi[QI_HAS_ASK] != 0 else qc[QC_TARGET0]
    return mid


@nb.njit(cache=True)
def _record(qc, qs, out, n_bid, n_ask, bid_coins, ask_coins, beta):  # type: ignore[no-untyped-def]
    """:meth:`LadderRecord.add` of a build: the model's impact and expected PnL, the effective levels."""
    for side in range(2):
        coins = bid_coins if side == 0 else ask_coins
        if coins > 0:
            n = n_bid if side == 0 else n_ask
            t = out[side]
            impact, expected, eff = _side_terms(
                t[1, :n], t[4, :n], t[5, :n], t[7, :n], t[6, :n], t[8, :n], t[9, :n], beta
            )
            qs[QS_REC_IMPACT] += impact * qc[QC_RECORD_SCALE]
            qs[QS_REC_EXPECTED] += expected * qc[QC_RECORD_SCALE]
            qs[QS_REC_EFF_SUM] += eff
            qs[QS_REC_EFF_N] += 1.0


@nb.njit(cache=True)
def refresh(qc, qs, qi, vf, vi, rest, pend, unseen, lad, plan):  # type: ignore[no-untyped-def]
    """One refresh (:meth:`Quoter.refresh`) on a view; the plan goes to ``plan``'s arrays.

    ``lad`` is the fast path's kernel arguments (:meth:`FastLadder.kernel_args`, with its output array ``out``), and
    ``plan`` the plan's arrays ``(kept, cancel, mods, places, deferred, counts)``. Returns ``(status, n_bid, n_ask)``:
    :data:`ST_QUOTING` (``out`` holds the ladder's orders, ``n_bid``/``n_ask`` per side), a pause or a stop (the plan
    cancels everything), or :data:`ST_REFERENCE` when the build needs the Python reference (its error), nothing done.
    """
    ci, cf, sv, depths, ticks, tables, prof_d, prof_logv, ws, wi, out, eparams, table, eloops, loops, power = lad
    kept, cancel, mods, places, deferred, counts = plan
    _observe(qc, qs, qi, vf, vi)
    status = ST_QUOTING
    if vi[VI_HALTED] != 0:
        status = ST_HALTED
    elif not _two_sided(vf, vi):
        status = ST_NO_BOOK
    elif (vi[VI_TS_NS] - vi[VI_BOOK_NS]) / 1e9 > qc[QC_STALE_S]:
        status = ST_STALE
    else:
        status = _risk_stop(qc, qs, vf)
    n_bid = n_ask = 0
    if status == ST_QUOTING:
        _snapshot_vector(qc, qs, qi, vf, vi, pend, ci, sv)
        code, _ref, n_bid, n_ask, bid_coins, ask_coins, st_bid, st_ask, tg_bid, tg_ask = k.build_sides(
            ci, cf, sv, depths, ticks, tables, prof_d, prof_logv, ws, wi, out, eparams, table, eloops, loops, power
        )
        if code != 0:
            return ST_REFERENCE, 0, 0
        qs[QS_REF_MID] = sv[k.SV_MID]
        if st_bid == 1:
            qi[QI_HAS_BID] = 0
        elif st_bid == 2:
            qi[QI_HAS_BID] = 1
            qs[QS_TG_BID] = tg_bid
        if st_ask == 1:
            qi[QI_HAS_ASK] = 0
        elif st_ask == 2:
            qi[QI_HAS_ASK] = 1
            qs[QS_TG_ASK] = tg_ask
        beta = cf[k.CF_BETA] if ci[k.CI_IMPACT] != k.IMPACT_NONE else 0.5
        _record(qc, qs, out, n_bid, n_ask, bid_coins, ask_coins, beta)
        qi[QI_REFRESHES] += 1
        margin = _margin_frac(qc, qs, vf, vi)
    else:
        margin = 0.0
    n_d = counts[6:8]
    n_d[0], n_d[1] = n_bid, n_ask
    nr, npd, nu = vi[VI_N_REST], vi[VI_N_PEND], vi[VI_N_UNSEEN]
    # the view's columns as they are (ids, sides, levels and flags are whole numbers in float64), not checked: the
    # loop built them
    res = plan_refresh(
        out[:, 0, :], out[:, 1, :], out[:, 3, :], n_d,
        rest[:nr, R_ID], rest[:nr, R_SIDE], rest[:nr, R_PX], rest[:nr, R_SZ], rest[:nr, R_RO],
        pend[:npd, P_SIDE], pend[:npd, P_SZ], unseen[:nu, P_SIDE], unseen[:nu, P_PX],
        vf[VF_POS], qc[QC_MAX_POS], qc[QC_THR_BPS], qc[QC_THR_FRAC], qc[QC_REDUCE_ONLY] != 0,
        status == ST_QUOTING, vf[VF_BID], vf[VF_ASK], margin, qi[QI_NEXT_ID],
        kept, cancel, mods, places, deferred, False,
    )  # fmt: skip
    n_kept, n_cancel, n_mod, n_place, n_def, n_cross, next_id, _sb, _sa = res
    qi[QI_NEXT_ID] = next_id
    qi[QI_N_DEF] = n_def if status == ST_QUOTING else 0
    counts[0], counts[1], counts[2], counts[3], counts[4], counts[5] = n_kept, n_cancel, n_mod, n_place, n_def, n_cross
    return status, n_bid, n_ask


@nb.njit(cache=True)
def release(qc, qs, qi, vf, vi, rest, pend, unseen, plan):  # type: ignore[no-untyped-def]
    """:meth:`Quoter.release` on a later view: the deferred additions that fit now, after the last look; returns how
    many went to ``plan``'s ``places``."""
    places, deferred = plan[3], plan[4]
    n_def = qi[QI_N_DEF]
    qi[QI_N_DEF] = 0
    if n_def == 0:
        return 0
    has_book = _two_sided(vf, vi)
    margin = _margin_frac(qc, qs, vf, vi) if has_book else 0.0
    nr, npd, nu = vi[VI_N_REST], vi[VI_N_PEND], vi[VI_N_UNSEEN]
    n_place, _n_cross = release_plan(
        deferred, n_def, rest[:nr, R_SIDE], rest[:nr, R_SZ], pend[:npd, P_SIDE],
        pend[:npd, P_SZ], unseen[:nu, P_SIDE], unseen[:nu, P_PX], vf[VF_POS], qc[QC_MAX_POS],
        has_book, vf[VF_BID], vf[VF_ASK], margin, places,
    )  # fmt: skip
    return n_place


# ---- the arrays of the core for a quoter (Python, once per run) --------------------------------------------------


def plan_arrays(n_levels: int, max_orders: int) -> tuple[np.ndarray, ...]:
    """Preallocated plan arrays for :func:`~hyper_make.fast._refresh.refresh`: kept, cancel (indices), mods (rows of
    7), places and deferred (rows of 6), counts (kept, cancel, mod, place, deferred, crossing; then the desired
    orders per side)."""
    nd = 2 * max(n_levels, 1)
    return (
        np.zeros(max_orders, dtype=np.int64),
        np.zeros(max_orders + nd, dtype=np.int64),
        np.zeros((nd, 7)),
        np.zeros((nd, 6)),
        np.zeros((nd, 6)),
        np.zeros(8, dtype=np.int64),  # and the desired orders per side, the plan's input
    )


def view_arrays(max_orders: int) -> tuple[np.ndarray, ...]:
    """Preallocated view arrays (``vf``, ``vi``, ``rest`` with a slot column, ``pend``, ``unseen``)."""
    return (
        np.zeros(VF_SIZE),
        np.zeros(VI_SIZE, dtype=np.int64),
        np.zeros((max_orders, 6)),
        np.zeros((max_orders, 3)),
        np.zeros((0, 3)),
    )


def loop_reason(quoter: Any) -> str:
    """Why ``quoter`` (a :class:`~hyper_make.strategy.quoter.Quoter`) runs in the Python loop, or ``""`` if its
    refresh core can run compiled."""
    if quoter.learner is not None:
        return "an allocator that learns updates its payout learner in Python"
    if quoter._fast is None:
        return "the fast path is off (quoter.fast_path = false) or cannot load"
    return quoter._fast.loop_reason()  # type: ignore[no-any-return]


def core_config(quoter: Any, record_scale: float) -> np.ndarray:
    """The refresh core's ``qc`` for ``quoter``: its limits and guards, the estimator's prior, the ladder's."""
    cfg = quoter.config
    prior = quoter.prior
    est = quoter.estimator
    lad = quoter.ladder_config
    qc = np.zeros(QC_SIZE)
    qc[QC_ALO] = cfg.alo_guard_sigmas
    qc[QC_STALE_S] = cfg.stale_after_s
    qc[QC_MAX_DD] = math.nan if cfg.max_drawdown_usd is None else cfg.max_drawdown_usd
    qc[QC_MAX_POS] = quoter.max_position_coins
    qc[QC_THR_BPS] = cfg.orders.requote_price_bps
    qc[QC_THR_FRAC] = cfg.orders.requote_size_frac
    qc[QC_REDUCE_ONLY] = float(cfg.orders.reduce_only)
    qc[QC_HALFLIFE_S] = est.config.halflife_s
    qc[QC_PRIOR_W_S] = est.config.prior_weight_s
    qc[QC_VAR0] = est._var0
    qc[QC_VOL0] = est._vol0
    qc[QC_PRIOR_DAILY] = prior.daily_volume_coins
    qc[QC_PRIOR_MARGIN] = prior.margin_usd
    qc[QC_LEVERAGE] = prior.leverage
    qc[QC_FEE_BPS] = prior.maker_fee_bps
    qc[QC_TOXICITY] = prior.regime.toxicity
    qc[QC_CASCADE] = prior.regime.cascade_severity
    qc[QC_HORIZON_S] = lad.horizon_s
    qc[QC_PERIOD_S] = lad.impact.volume_period_s
    qc[QC_PROFILE] = float(bool(prior.volume_profile_depth_bps))
    qc[QC_IMPACT_ON] = float(not lad.impact.is_off)
    qc[QC_TARGET0] = quoter._fast.initial_target_nats
    qc[QC_RECORD_SCALE] = record_scale
    return qc


def core_state() -> tuple[np.ndarray, np.ndarray]:
    """A fresh refresh core's ``(qs, qi)``: no book, no interval, no entropy state, order ids from 0."""
    qs = np.zeros(QS_SIZE)
    for j in (QS_T, QS_MID, QS_BID, QS_ASK, QS_INTERVAL, QS_REF_MID):
        qs[j] = math.nan
    return qs, np.zeros(QI_SIZE, dtype=np.int64)
