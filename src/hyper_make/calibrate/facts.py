"""Stylised facts of a market, measured the same way on a recording and on the simulator, and compared.

:class:`FactsAccumulator` is fed the events of a recording chunk by chunk (by
:func:`hyper_make.calibrate.calibrate`'s reader, in the same pass) and keeps only sums, histograms and the last
60 s of what a markout still needs, so memory does not grow with the data. :meth:`FactsAccumulator.facts` gives
:class:`Facts`:

* spread (ticks), its distribution on a 0.1 s grid of the exchange clock;
* others' depth: the mean size (coins) on each tick from a side's best outwards (the *profile*, mean of the two
  sides, sampled every 1 s), and one side's size within 1 / 2 / 5 / 10 bps of the mid, both only as deep as the
  feed's levels reach in :data:`COVER_SHARE` of the samples (a 20-level feed shows nothing beyond; NaN there);
* market orders (trades grouped by exchange time and aggressor side): arrival rate (1/s), size quantiles (coins,
  from a log histogram with 50 bins a decade), the Pareto tail index of the sizes above the threshold that minimises
  the Kolmogorov–Smirnov distance (Clauset, Shalizi & Newman 2009; Hill's estimator ``α = n / Σ ln(x/x_t)``,
  standard error ``α/√n``), and the autocorrelation of their signs at lags 1..10 (in order of arrival);
* σ of log mid returns at 1, 10 and 60 s (bps, non-overlapping, from the 0.1 s grid), with the bipower variation
  ``(π/2)·E|r_t||r_{t-1}|`` and the fourth moment at 1 s (what separates diffusion from jumps);
* the markout curve: the mid's signed move after a market order (bps of the mid just before it, + in the
  order's direction) at 0.5, 1, 2, 5, 10, 30 and 60 s, mean and standard error, from orders with a full markout;
* depth recovery: the share of the size resting at the hit side's best price before a market order that is
  missing 0.5, 1, 2, 5 and 10 s later (``(q0 - q)/q0`` clipped to [-1, 1]; 1 once the price moved through it;
  left out where the feed's levels no longer reach that price; NaN with fewer than 10 such measurements).

:func:`compare` lays the facts of a recording and of a simulated preset side by side with stated tolerances
(:data:`TOLERANCES`); :func:`plot_facts` draws them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.book import BookGrid, OrderBook
from ..errors import DataError
from ..report import new_figure, save_figure
from . import _book_scan as bs
from ._stream import _concat_trades, _empty_trades, _orders

GRID_STEP_S = 0.1
PROFILE_EVERY = 10  # grid points: one profile a second
DEPTH_BPS = (1.0, 2.0, 5.0, 10.0)
SIGMA_HORIZONS_S = (1.0, 10.0, 60.0)
MARKOUT_HORIZONS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
RECOVERY_TAUS_S = (0.5, 1.0, 2.0, 5.0, 10.0)
SIGN_LAGS = 10
SIZE_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
#: size histogram: log10 edges from 1e-9 to 1e6 coins, 50 bins a decade
_SIZE_EDGES = 10.0 ** np.arange(-9.0, 6.0 + 1e-9, 0.02)
#: σ over a horizon needs this many returns (else NaN)
MIN_SIGMA_N = 5
#: a depth fact counts only where at least this share of the samples' levels reach it
COVER_SHARE = 0.9
#: a tail fit needs this many orders above its threshold
MIN_TAIL_ORDERS = 50


@dataclass(frozen=True, slots=True)
class Facts:
    """The stylised facts of one market (units in the names; see the module docstring).

    ``depth_profile_coins[k]``: mean size on the tick ``k`` ticks beyond a side's best (both sides averaged).
    ``markout_*`` and ``recovery_*`` are indexed like :data:`MARKOUT_HORIZONS_S` and :data:`RECOVERY_TAUS_S`;
    ``sign_acf[l-1]`` is the lag-``l`` autocorrelation; NaN where the data holds nothing to measure.
    """

    duration_s: float
    tick_usd: float
    mid_usd: float
    spread_hist: np.ndarray  # grid samples by spread in ticks (index = ticks, the last bin holds wider ones)
    depth_profile_coins: np.ndarray
    depth_within_bps: dict[float, float]  # mean one-side size within δ bps of the mid (coins)
    n_orders: int
    mo_rate_per_s: float
    size_quantiles_coins: dict[float, float]
    size_median_coins: float
    size_max_coins: float
    size_mean_coins: float
    tail_index: float  # NaN when fewer than MIN_TAIL_ORDERS orders
    tail_index_stderr: float
    tail_threshold_coins: float
    tail_n: int
    sign_acf: np.ndarray
    sigma_bps: dict[float, float]  # σ of log mid returns over h (bps over h)
    sigma_n: dict[float, int]
    bipower_1s_bps2: float  # (π/2)·E|r_t||r_{t-1}| at 1 s (bps²)
    kurt4_1s_bps4: float  # E[r⁴] - 3·E[r²]² at 1 s (bps⁴)
    markout_bps: np.ndarray
    markout_stderr_bps: np.ndarray
    markout_count: np.ndarray
    markout_m2_bps2: np.ndarray  # E[y²] of the signed markouts
    markout_m3_bps3: np.ndarray
    markout_m4_bps4: np.ndarray
    recovery_missing: np.ndarray
    recovery_count: int
    size_hist: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # orders per size bin

    def size_quantile_coins(self, q: float) -> float:
        """The ``q`` quantile of market-order sizes (coins; log-interpolated in 2 % bins), NaN without orders."""
        if self.size_hist.size == 0 or self.size_hist.sum() == 0:
            return math.nan
        return _hist_quantile(self.size_hist, np.cumsum(self.size_hist), q)

    @property
    def size_min_coins(self) -> float:
        """The lower edge of the smallest size bin with an order (coins)."""
        nz = np.flatnonzero(self.size_hist)
        return float(_SIZE_EDGES[max(int(nz[0]) - 1, 0)]) if nz.size else math.nan

    @property
    def spread_mean_ticks(self) -> float:
        """Mean spread (ticks) over the grid samples."""
        n = self.spread_hist.sum()
        return float(np.dot(np.arange(self.spread_hist.size), self.spread_hist) / n) if n else float("nan")

    @property
    def spread_mean_bps(self) -> float:
        """Mean spread (bps of the mean mid): comparable across tick sizes."""
        return self.spread_mean_ticks * self.tick_usd / self.mid_usd * 1e4

    def spread_quantile_ticks(self, q: float) -> float:
        """The ``q`` quantile of the spread (ticks)."""
        c = np.cumsum(self.spread_hist)
        return float(np.searchsorted(c, q * c[-1])) if c.size and c[-1] else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "duration_s": self.duration_s,
            "tick_usd": self.tick_usd,
            "mid_usd": self.mid_usd,
            "spread_mean_ticks": self.spread_mean_ticks,
            "spread_mean_bps": self.spread_mean_bps,
            "spread_ticks_p50_p90_p99": [self.spread_quantile_ticks(q) for q in (0.5, 0.9, 0.99)],
            "depth_within_bps": {f"{d:g}": v for d, v in self.depth_within_bps.items()},
            "depth_profile_coins_first_10_ticks": self.depth_profile_coins[:10].tolist(),
            "n_orders": self.n_orders,
            "mo_rate_per_s": self.mo_rate_per_s,
            "size_quantiles_coins": {f"{q:g}": v for q, v in self.size_quantiles_coins.items()},
            "size_mean_coins": self.size_mean_coins,
            "size_max_coins": self.size_max_coins,
            "tail_index": {
                "value": self.tail_index,
                "stderr": self.tail_index_stderr,
                "threshold_coins": self.tail_threshold_coins,
                "n": self.tail_n,
            },
            "sign_acf": self.sign_acf.tolist(),
            "sigma_bps": {f"{h:g}s": v for h, v in self.sigma_bps.items()},
            "markout_bps": {
                f"{h:g}s": {"mean": float(m), "stderr": float(s), "count": int(c)}
                for h, m, s, c in zip(
                    MARKOUT_HORIZONS_S, self.markout_bps, self.markout_stderr_bps, self.markout_count, strict=True
                )
            },
            "recovery_missing": {
                f"{t:g}s": float(v) for t, v in zip(RECOVERY_TAUS_S, self.recovery_missing, strict=True)
            },
            "recovery_count": self.recovery_count,
        }


class FactsAccumulator:
    """Sums behind :class:`Facts`, fed raw event chunks in time order (its own book, see
    :mod:`hyper_make.calibrate._book_scan`); ``profile_bps`` sets how deep the depth profile reaches (bps)."""

    def __init__(self, *, profile_bps: float = 25.0) -> None:
        self.profile_bps = profile_bps
        self.book: OrderBook | None = None
        self.K = 0
        self.step_ns = round(GRID_STEP_S * 1e9)
        self.taus_ns = np.array([round(t * 1e9) for t in RECOVERY_TAUS_S], np.int64)
        self.carry = np.zeros(bs.N_CARRY, np.int64)
        self.carry[bs.C_CLOCK] = -(1 << 62)
        self.carry[bs.C_NEXT_G] = -1
        cap = bs.PROBE_CAP
        self.pr = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap),
                   np.zeros((cap, len(RECOVERY_TAUS_S))), np.zeros(cap, np.int64))  # fmt: skip
        self.decided = False
        self.cut_ns: int | None = None
        self.held: list[tuple[np.ndarray, ...]] = []
        # spread, profile, depth within δ
        self.spread_hist = np.zeros(201, np.int64)
        self.prof_sum = np.zeros(0)
        self.prof_n = 0
        self.depth_sum = np.zeros(len(DEPTH_BPS))
        self.depth_cover = np.zeros(len(DEPTH_BPS), np.int64)  # sides whose levels reach δ
        self.cover = np.zeros(0, np.int64)  # sides whose levels reach each tick
        self.mid_sum = 0.0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        # grid mids of the last 60 s (+ margin), by global grid index
        self.g0: int | None = None
        self.buf_j0 = 0
        self.buf = np.zeros(0)
        self.n_grid = 0
        # σ per horizon: previous log mid, sums; bipower and fourth moment at 1 s
        self.sig_prev = {h: math.nan for h in SIGMA_HORIZONS_S}
        self.sig_s = {h: np.zeros(3) for h in SIGMA_HORIZONS_S}  # n, Σr, Σr²
        self.bip_prev_abs = math.nan
        self.bip_s = np.zeros(2)  # n, Σ|r_t||r_t-1|
        self.r4 = 0.0
        # market orders
        self.held_trades = _empty_trades()
        self.n_orders = 0
        self.size_hist = np.zeros(_SIZE_EDGES.size + 1, np.int64)
        self.size_logsum = np.zeros(_SIZE_EDGES.size + 1)
        self.size_sum = 0.0
        self.size_max = 0.0
        self.sign_tail = np.zeros(0)
        self.sign_s = np.zeros(2)  # Σs, Σs²
        self.sign_n = 0
        self.sign_lag = np.zeros(SIGN_LAGS)
        self.sign_lag_n = np.zeros(SIGN_LAGS, np.int64)
        self.pend_ts = np.zeros(0, np.int64)
        self.pend_sign = np.zeros(0)
        self.pend_mid = np.zeros(0)
        nh = len(MARKOUT_HORIZONS_S)
        self.mko = np.zeros((nh, 5))  # n, Σy, Σy², Σy³, Σy⁴
        # depth recovery
        self.rec_sum = np.zeros(len(RECOVERY_TAUS_S))
        self.rec_seen = np.zeros(len(RECOVERY_TAUS_S), np.int64)
        self.rec_n = 0

    # ---- feeding --------------------------------------------------------------------------------------
    def start(self, grid: BookGrid) -> None:
        """Begin on the book grid the reader chose (called once, before the first rows)."""
        self.book = OrderBook(grid)
        ref = (grid.base_tick + grid.n / 2) * grid.tick_usd
        self.K = int(min(math.ceil(self.profile_bps * 1e-4 * ref / grid.tick_usd) + 1, 5_000))
        self.prof_sum = np.zeros(self.K)
        self.cover = np.zeros(self.K, np.int64)

    def rows(self, chunk: np.ndarray) -> None:
        """Scan the next chunk of events."""
        if self.book is None or chunk.size == 0:
            return
        b, ts = self.book, chunk["exch_ts"]
        lo = max(int(self.carry[bs.C_CLOCK]), int(ts.min()))
        span = max(int(ts.max()) - lo, 0)
        n_grid = span // self.step_ns + 2
        out = bs.scan(
            b.bid_qty, b.ask_qty, b.state, chunk["ev"], ts, chunk["px"], chunk["qty"], b.grid.tick_usd, True,
            self.carry, self.step_ns, PROFILE_EVERY, self.K, self.taus_ns, *self.pr, n_grid,
            n_grid // PROFILE_EVERY + 2,
        )  # fmt: skip
        if self.decided:
            self._use(self._after(out))
        else:
            self.held.append(out)

    def decide(self, cut_ns: int | None) -> None:
        """The warm-up's end is known (``None``: none): use what was held from it on."""
        self.decided = True
        self.cut_ns = cut_ns
        held, self.held = self.held, []
        for out in held:
            self._use(self._after(out))

    def _after(self, out: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        if self.cut_ns is None:
            return out
        c = self.cut_ns
        g, p, t, r = out[0] >= c, out[15] >= c, out[7] >= c, out[12] >= c
        keep = (g, g, g, p, p, p, p, t, t, t, t, t, r, r, r, p)
        return tuple(x[k] for x, k in zip(out, keep, strict=True))

    def _use(self, out: tuple[np.ndarray, ...]) -> None:
        g_ts, g_mid, g_spr, p_b0, p_a0, p_bq, p_aq, t_ts, t_px, t_qty, t_buy, t_mid, r_t, r_q0, r_q, _ = out
        assert self.book is not None
        tick = self.book.grid.tick_usd
        for ts in (g_ts, t_ts):
            if ts.size:
                self.first_ts = int(ts[0]) if self.first_ts is None else min(self.first_ts, int(ts[0]))
                self.last_ts = int(ts[-1]) if self.last_ts is None else max(self.last_ts, int(ts[-1]))
        # spread and mids
        np.add.at(self.spread_hist, np.clip(g_spr, 0, self.spread_hist.size - 1), 1)
        self.mid_sum += float(g_mid.sum())
        # profile and depth within δ of the mid (one side, mean of the two)
        if p_bq.shape[0]:
            self.prof_sum += p_bq.sum(axis=0) + p_aq.sum(axis=0)
            self.prof_n += p_bq.shape[0]
            # how deep each side's levels reach (a feed of 20 levels does not show the book beyond them)
            cov = [self.K - 1 - np.argmax(q[:, ::-1] > 0, axis=1) for q in (p_bq, p_aq)]
            for c in cov:
                self.cover += np.cumsum(np.bincount(c, minlength=self.K)[::-1])[::-1]
            mid = 0.5 * (p_b0 + p_a0)  # ticks of the grid
            half = 0.5 * (p_a0 - p_b0)
            mid_usd = (mid + self.book.grid.base_tick) * tick
            cb, ca = np.cumsum(p_bq, axis=1), np.cumsum(p_aq, axis=1)
            rows = np.arange(p_bq.shape[0])
            for i, d in enumerate(DEPTH_BPS):
                kmax = np.floor(d * 1e-4 * mid_usd / tick - half + 1e-9).astype(np.int64)
                ok = kmax >= 0
                k = np.clip(kmax, 0, self.K - 1)
                self.depth_sum[i] += float(np.sum(np.where(ok, 0.5 * (cb[rows, k] + ca[rows, k]), 0.0)))
                self.depth_cover[i] += int(np.sum((cov[0] >= k) | ~ok) + np.sum((cov[1] >= k) | ~ok))
        # the grid: mids for the markouts, σ
        if g_ts.size:
            if self.g0 is None:
                self.g0 = int(g_ts[0])
            self.buf = np.concatenate([self.buf, g_mid])
            self._sigma(g_mid)
            self.n_grid += g_mid.size
        # market orders
        trades = _concat_trades(self.held_trades, {"ts": t_ts, "px": t_px, "qty": t_qty, "buy": t_buy, "mid": t_mid})
        orders, self.held_trades = _orders(trades, keep_last=True)
        self._orders(orders)
        self._resolve(final=False)
        # recovery probes
        if r_t.size:
            ok = r_q0 > 0
            miss = np.clip((r_q0[ok, None] - r_q[ok]) / r_q0[ok, None], -1.0, 1.0)
            seen = np.isfinite(miss)
            self.rec_sum += np.where(seen, miss, 0.0).sum(axis=0)
            self.rec_seen += seen.sum(axis=0)
            self.rec_n += int(ok.sum())

    def _sigma(self, mids: np.ndarray) -> None:
        j = self.n_grid + np.arange(mids.size)
        logm = np.log(mids)
        for h in SIGMA_HORIZONS_S:
            every = round(h / GRID_STEP_S)
            pts = logm[j % every == 0]
            if pts.size == 0:
                continue
            seq = np.concatenate([[self.sig_prev[h]], pts])
            r = np.diff(seq) * 1e4
            r = r[np.isfinite(r)]
            self.sig_prev[h] = float(pts[-1])
            s = self.sig_s[h]
            s += (r.size, r.sum(), np.dot(r, r))
            if h == 1.0 and r.size:
                a = np.abs(r)
                prods = a[1:] * a[:-1]
                if math.isfinite(self.bip_prev_abs):
                    prods = np.concatenate([[self.bip_prev_abs * a[0]], prods])
                self.bip_s += (prods.size, prods.sum())
                self.bip_prev_abs = float(a[-1])
                self.r4 += float(np.sum(r**4))

    def _orders(self, o: dict[str, np.ndarray]) -> None:
        n = int(o["ts"].size)
        if n == 0:
            return
        self.n_orders += n
        q = o["qty"]
        idx = np.searchsorted(_SIZE_EDGES, q, side="right")
        np.add.at(self.size_hist, idx, 1)
        np.add.at(self.size_logsum, idx, np.log(np.maximum(q, 1e-300)))
        self.size_sum += float(q.sum())
        self.size_max = max(self.size_max, float(q.max()))
        s = np.where(o["buy"], 1.0, -1.0)
        self.sign_s += (s.sum(), np.dot(s, s))
        self.sign_n += n
        full = np.concatenate([self.sign_tail, s])
        off = self.sign_tail.size
        for lag in range(1, SIGN_LAGS + 1):
            i = np.arange(max(off, lag), full.size)
            self.sign_lag[lag - 1] += float(np.dot(full[i], full[i - lag]))
            self.sign_lag_n[lag - 1] += i.size
        self.sign_tail = full[-SIGN_LAGS:]
        self.pend_ts = np.concatenate([self.pend_ts, o["ts"]])
        self.pend_sign = np.concatenate([self.pend_sign, s])
        self.pend_mid = np.concatenate([self.pend_mid, o["mid_before"]])

    def _resolve(self, *, final: bool) -> None:
        """Markouts of the pending orders whose longest horizon the grid has reached (all of them at the end,
        each horizon only where the grid reaches it)."""
        if self.g0 is None or self.pend_ts.size == 0:
            return
        j_end = self.n_grid - 1  # last grid index held
        hmax = MARKOUT_HORIZONS_S[-1]
        need = np.ceil((self.pend_ts + round(hmax * 1e9) - self.g0) / self.step_ns).astype(np.int64)
        done = need <= j_end
        k = int(np.searchsorted(~done, True)) if not final else self.pend_ts.size  # orders in time order
        if k:
            for i, h in enumerate(MARKOUT_HORIZONS_S):
                jh = np.ceil((self.pend_ts[:k] + round(h * 1e9) - self.g0) / self.step_ns).astype(np.int64)
                jh = np.maximum(jh, self.buf_j0)
                ok = jh <= j_end
                if not ok.any():
                    continue
                later = self.buf[jh[ok] - self.buf_j0]
                before = self.pend_mid[:k][ok]
                y = self.pend_sign[:k][ok] * (later - before) / before * 1e4
                self.mko[i] += (y.size, y.sum(), np.sum(y**2), np.sum(y**3), np.sum(y**4))
            self.pend_ts, self.pend_sign, self.pend_mid = self.pend_ts[k:], self.pend_sign[k:], self.pend_mid[k:]
        # keep the grid the pending orders (and those to come) still need: from the oldest pending order on
        oldest = int(self.pend_ts[0]) if self.pend_ts.size else (self.last_ts or self.g0)
        keep_from = max(int((oldest - self.g0) // self.step_ns) - 1, self.buf_j0)
        keep_from = min(keep_from, self.buf_j0 + self.buf.size)
        self.buf = self.buf[keep_from - self.buf_j0 :]
        self.buf_j0 = keep_from

    def finish(self) -> None:
        """End of the data: the last market order, the markouts the grid can still give."""
        orders, self.held_trades = _orders(self.held_trades, keep_last=False)
        self._orders(orders)
        self._resolve(final=True)

    # ---- results --------------------------------------------------------------------------------------
    def facts(self) -> Facts:
        """The facts of what was fed (raises :class:`DataError` when no two-sided book was seen)."""
        if self.book is None or self.n_grid == 0 or self.first_ts is None or self.last_ts is None:
            raise DataError("the data never shows a two-sided book: no stylised fact can be measured")
        dur = (self.last_ts - self.first_ts) / 1e9
        n = self.n_orders
        qs: dict[float, float] = {}
        c = np.cumsum(self.size_hist)
        for q in SIZE_QUANTILES:
            qs[q] = _hist_quantile(self.size_hist, c, q) if n else math.nan
        tail = _tail_fit(self.size_hist, self.size_logsum) if n else (math.nan, math.nan, math.nan, 0)
        mean_s = self.sign_s[0] / max(self.sign_n, 1)
        var_s = self.sign_s[1] / max(self.sign_n, 1) - mean_s**2
        with np.errstate(invalid="ignore", divide="ignore"):
            acf = (self.sign_lag / np.maximum(self.sign_lag_n, 1) - mean_s**2) / var_s if var_s > 0 else (
                np.full(SIGN_LAGS, math.nan))  # fmt: skip
        sig, sig_n = {}, {}
        for h, (k, s1, s2) in self.sig_s.items():
            sig[h] = math.sqrt(max(s2 / k - (s1 / k) ** 2, 0.0) * k / (k - 1)) if k >= MIN_SIGMA_N else math.nan
            sig_n[h] = int(k)
        k1, _, s2 = self.sig_s[1.0]
        m2 = s2 / k1 if k1 else math.nan
        bip = math.pi / 2 * self.bip_s[1] / self.bip_s[0] if self.bip_s[0] else math.nan
        kurt = self.r4 / k1 - 3 * m2**2 if k1 else math.nan
        cnt = self.mko[:, 0]
        # the profile out to the tick most sides' levels reach, each tick's mean over the sides that reach it
        reach = int(np.sum(self.cover >= COVER_SHARE * 2 * max(self.prof_n, 1)))
        prof = self.prof_sum[:reach] / np.maximum(self.cover[:reach], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.mko[:, 1] / cnt
            m2y = self.mko[:, 2] / cnt
            se = np.sqrt(np.maximum(m2y - mean**2, 0.0) / np.maximum(cnt - 1, 1))
            m3y, m4y = self.mko[:, 3] / cnt, self.mko[:, 4] / cnt
        return Facts(
            duration_s=dur,
            tick_usd=self.book.grid.tick_usd,
            mid_usd=self.mid_sum / self.n_grid,
            spread_hist=self.spread_hist.copy(),
            depth_profile_coins=prof,
            depth_within_bps={
                d: float(v / self.prof_n) if c >= COVER_SHARE * 2 * self.prof_n else math.nan
                for d, v, c in zip(DEPTH_BPS, self.depth_sum, self.depth_cover, strict=True)
            },
            n_orders=n,
            mo_rate_per_s=n / dur if dur > 0 else math.nan,
            size_quantiles_coins=qs,
            size_median_coins=qs[0.5],
            size_max_coins=self.size_max,
            size_mean_coins=self.size_sum / n if n else math.nan,
            tail_index=tail[0],
            tail_index_stderr=tail[1],
            tail_threshold_coins=tail[2],
            tail_n=int(tail[3]),
            sign_acf=np.asarray(acf, dtype=float),
            sigma_bps=sig,
            sigma_n=sig_n,
            bipower_1s_bps2=bip,
            kurt4_1s_bps4=kurt,
            markout_bps=mean,
            markout_stderr_bps=se,
            markout_count=cnt.astype(np.int64),
            markout_m2_bps2=m2y,
            markout_m3_bps3=m3y,
            markout_m4_bps4=m4y,
            recovery_missing=np.where(self.rec_seen >= 10, self.rec_sum / np.maximum(self.rec_seen, 1), math.nan),
            recovery_count=self.rec_n,
            size_hist=self.size_hist.copy(),
        )


def _hist_quantile(hist: np.ndarray, cum: np.ndarray, q: float) -> float:
    """The ``q`` quantile of the size histogram, log-interpolated inside its bin (coins)."""
    target = q * cum[-1]
    i = int(np.searchsorted(cum, target, side="left"))
    i = min(max(i, 1), _SIZE_EDGES.size - 1)
    lo, hi = _SIZE_EDGES[i - 1], _SIZE_EDGES[i]
    before = cum[i - 1] if i >= 1 else 0
    frac = (target - before) / hist[i] if hist[i] else 0.5
    return float(lo * (hi / lo) ** min(max(frac, 0.0), 1.0))


def _tail_fit(hist: np.ndarray, logsum: np.ndarray) -> tuple[float, float, float, int]:
    """Hill's tail index above the bin edge that minimises the KS distance between the empirical tail (at the
    bin edges) and the fitted Pareto: ``(α, stderr α/√n, threshold coins, n)``; NaN when too few orders."""
    n_above = np.cumsum(hist[::-1])[::-1]  # orders in bins >= i
    ls_above = np.cumsum(logsum[::-1])[::-1]
    best = (math.inf, math.nan, math.nan, math.nan, 0)
    # bin i holds sizes in [edges[i-1], edges[i]): a threshold at edges[i-1] takes bins >= i
    for i in range(1, hist.size):
        n = int(n_above[i])
        if n < MIN_TAIL_ORDERS:
            break
        if hist[i] == 0 and i + 1 < hist.size and n_above[i + 1] == n:
            continue  # the same tail as the next threshold
        xt = _SIZE_EDGES[i - 1]
        s = float(ls_above[i]) - n * math.log(xt)
        if s <= 0:
            continue
        alpha = n / s
        # KS over the edges above xt: empirical P(X >= x | X >= xt) against (x/xt)^-α
        emp = n_above[i:-1] / n
        model = (_SIZE_EDGES[i - 1 : -1] / xt) ** (-alpha)
        d = float(np.max(np.abs(emp - model[: emp.size])))
        if d < best[0]:
            best = (d, alpha, alpha / math.sqrt(n), xt, n)
    return best[1], best[2], best[3], int(best[4])


# ---- comparison -------------------------------------------------------------------------------------------
#: how close a simulated fact must be to the recorded one: kind, tolerance (relative, absolute, or log factor; σ,
#: markouts and sign autocorrelations: or two standard errors of the recorded value where that is wider)
TOLERANCES: dict[str, tuple[str, float]] = {
    "spread": ("rel", 0.25),
    "depth": ("rel", 0.25),
    "rate": ("rel", 0.10),
    "size": ("factor", 1.5),
    "tail": ("se", 2.0),
    "acf": ("abs_se", 0.10),
    "sigma": ("rel_se", 0.25),
    "markout": ("abs_se", 0.05),
    "recovery": ("abs", 0.10),
}


@dataclass(frozen=True, slots=True)
class FactRow:
    """One line of the side-by-side table: the fact, its unit, real and simulated values, tolerance, verdict."""

    name: str
    unit: str
    real: float
    sim: float
    tolerance: str
    ok: bool
    measured: bool = True  # False: the recording holds nothing to measure it (too short, too few levels)


def compare(real: Facts, sim: Facts) -> list[FactRow]:
    """The facts of a recording and of the simulator side by side, each judged against :data:`TOLERANCES`."""
    rows: list[FactRow] = []

    def add(name: str, unit: str, kind: str, a: float, b: float, se: float = 0.0) -> None:
        how, tol = TOLERANCES[kind]
        if not math.isfinite(a):
            rows.append(FactRow(name, unit, float(a), float(b), "not in the data", False, measured=False))
            return
        if not math.isfinite(b):
            ok, text = False, "n/a"
        elif how == "rel":
            ok, text = abs(b - a) <= tol * abs(a), f"±{tol:.0%}"
        elif how == "rel_se":  # relative, or two standard errors of the recorded value where they are wider
            width = max(tol * abs(a), 2.0 * se) if math.isfinite(se) else tol * abs(a)
            ok, text = abs(b - a) <= width, f"±{width / abs(a):.0%}" if a else f"±{width:.2g}"
        elif how == "factor":
            ok, text = a > 0 and b > 0 and max(a / b, b / a) <= tol, f"×/÷{tol:g}"
        elif how == "abs":
            ok, text = abs(b - a) <= tol, f"±{tol:g}"
        elif how == "se":
            ok, text = abs(b - a) <= tol * max(se, 1e-12), f"±{tol:g} s.e."
        else:  # abs_se: an absolute floor or two standard errors of the recorded mean, whichever is wider
            width = max(tol, 2.0 * se) if math.isfinite(se) else tol
            ok, text = abs(b - a) <= width, f"±{width:.2g}"
        rows.append(FactRow(name, unit, float(a), float(b), text, bool(ok)))

    add("spread, median", "ticks", "spread", real.spread_quantile_ticks(0.5), sim.spread_quantile_ticks(0.5))
    add("spread, mean", "ticks", "spread", real.spread_mean_ticks, sim.spread_mean_ticks)
    add("spread, mean", "bps", "spread", real.spread_mean_bps, sim.spread_mean_bps)
    for d in DEPTH_BPS:
        add(f"depth within {d:g} bps (one side)", "coins", "depth", real.depth_within_bps[d], sim.depth_within_bps[d])
    add("market orders", "1/s", "rate", real.mo_rate_per_s, sim.mo_rate_per_s)
    for q in SIZE_QUANTILES:
        add(f"order size q{q * 100:g}", "coins", "size", real.size_quantiles_coins[q], sim.size_quantiles_coins[q])
    add("size tail index α", "", "tail", real.tail_index, sim.tail_index, real.tail_index_stderr)
    for lag in (1, 2, 5, 10):
        se = 1.0 / math.sqrt(real.n_orders) if real.n_orders else math.nan  # the ACF's standard error, white noise
        add(f"order-sign autocorrelation, lag {lag}", "", "acf", real.sign_acf[lag - 1], sim.sign_acf[lag - 1], se)
    for h in SIGMA_HORIZONS_S:
        n = real.sigma_n.get(h, 0)
        se = real.sigma_bps[h] / math.sqrt(2.0 * (n - 1)) if n > 1 else math.nan  # σ's standard error
        add(f"σ over {h:g} s", "bps", "sigma", real.sigma_bps[h], sim.sigma_bps[h], se)
    for i, h in enumerate(MARKOUT_HORIZONS_S):
        add(f"markout after {h:g} s", "bps", "markout", real.markout_bps[i], sim.markout_bps[i],
            real.markout_stderr_bps[i])  # fmt: skip
    for i, t in enumerate(RECOVERY_TAUS_S):
        add(f"best-level size missing after {t:g} s", "share", "recovery", real.recovery_missing[i],
            sim.recovery_missing[i])  # fmt: skip
    return rows


def plot_facts(real: Facts, sim: Facts, path: str | Path, *, title: str = "") -> Path:
    """A 2×3 panel of real (dots) against simulated (line): depth profile, depth within δ, size CCDF quantiles,
    sign autocorrelation, σ by horizon, markout curve; returns ``path``."""
    fig, axes = new_figure((13.0, 7.0), nrows=2, ncols=3)
    a = axes[0, 0]
    k = np.arange(min(real.depth_profile_coins.size, sim.depth_profile_coins.size))
    a.semilogy(k, np.maximum(real.depth_profile_coins[: k.size], 1e-9), ".", ms=3, label="real")
    a.semilogy(k, np.maximum(sim.depth_profile_coins[: k.size], 1e-9), "-", label="sim")
    a.set_xlabel("ticks beyond the best")
    a.set_ylabel("mean size per tick (coins)")
    a.legend(fontsize=8)
    a = axes[0, 1]
    d = np.array(DEPTH_BPS)
    a.plot(d, [real.depth_within_bps[x] for x in d], "o", label="real")
    a.plot(d, [sim.depth_within_bps[x] for x in d], "-", label="sim")
    a.set_xlabel("within δ of the mid (bps)")
    a.set_ylabel("one side's size (coins)")
    a = axes[0, 2]
    q = np.array(SIZE_QUANTILES)
    a.semilogy(q, [real.size_quantiles_coins[x] for x in q], "o", label="real")
    a.semilogy(q, [sim.size_quantiles_coins[x] for x in q], "-", label="sim")
    a.set_xlabel("quantile")
    a.set_ylabel("market-order size (coins)")
    a = axes[1, 0]
    lags = np.arange(1, SIGN_LAGS + 1)
    a.plot(lags, real.sign_acf, "o", label="real")
    a.plot(lags, sim.sign_acf, "-", label="sim")
    a.axhline(0, color="grey", lw=0.8)
    a.set_xlabel("lag (orders)")
    a.set_ylabel("sign autocorrelation")
    a = axes[1, 1]
    h = np.array(SIGMA_HORIZONS_S)
    a.loglog(h, [real.sigma_bps[x] for x in h], "o", label="real")
    a.loglog(h, [sim.sigma_bps[x] for x in h], "-", label="sim")
    a.set_xlabel("horizon (s)")
    a.set_ylabel("σ of log mid (bps)")
    a = axes[1, 2]
    mh = np.array(MARKOUT_HORIZONS_S)
    a.errorbar(mh, real.markout_bps, yerr=real.markout_stderr_bps, fmt="o", ms=3, capsize=2, label="real")
    a.plot(mh, sim.markout_bps, "-", label="sim")
    a.set_xscale("log")
    a.axhline(0, color="grey", lw=0.8)
    a.set_xlabel("after a market order (s)")
    a.set_ylabel("signed mid move (bps)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, Path(path))


__all__ = [
    "DEPTH_BPS",
    "MARKOUT_HORIZONS_S",
    "RECOVERY_TAUS_S",
    "SIGMA_HORIZONS_S",
    "TOLERANCES",
    "FactRow",
    "Facts",
    "FactsAccumulator",
    "compare",
    "plot_facts",
]
