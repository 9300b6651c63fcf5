"""The calibration's estimators fed piece by piece, in memory bounded by the longest horizon, not the data.

:class:`Accumulator` takes consecutive :class:`~hyper_make.data.book.MarketPath` pieces (BBO changes and trades,
on one monotone exchange clock) and keeps only sums and counts, plus the recent past an estimate still needs: the
mid history of the last ``reference_lag_s`` (a market order's reference mid), the market orders of the last 60 s
(their markouts are not known yet), the trades of the latest exchange timestamp (a market order may continue in the
next piece) and the current σ grid points. :meth:`Accumulator.pieces` returns the sums that
:func:`hyper_make.calibrate.calibrate` turns into the same estimates as the whole-path estimators
(:func:`~hyper_make.calibrate.sigma_by_horizon`, :func:`~hyper_make.calibrate.fit_intensity`, ...) give on the
whole path, to rounding (the variances are merged chunk by chunk, Chan et al.'s pairwise formula).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.book import MarketPath


@dataclass(slots=True)
class _Moments:
    """Count, mean and sum of squared deviations of a stream of values (merged chunk by chunk)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: np.ndarray) -> None:
        if x.size == 0:
            return
        nb, mb = int(x.size), float(np.mean(x))
        m2b = float(np.sum((x - mb) ** 2))
        n = self.n + nb
        d = mb - self.mean
        self.mean += d * nb / n
        self.m2 += m2b + d * d * self.n * nb / n
        self.n = n

    def std(self) -> float:
        """Sample standard deviation (ddof = 1)."""
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else float("nan")


@dataclass(slots=True)
class _SigmaGrid:
    """Log mid returns on a grid of ``step_ns`` from the first BBO change: the mid at each grid time ``g`` is the last
    change at or before ``g``."""

    step_ns: int
    next_g: int | None = None
    prev_log: float | None = None
    points: int = 0
    moments: _Moments = field(default_factory=_Moments)

    def emit(self, log_mids: np.ndarray) -> None:
        if log_mids.size == 0:
            return
        self.points += int(log_mids.size)
        seq = log_mids if self.prev_log is None else np.concatenate([[self.prev_log], log_mids])
        self.moments.add(np.diff(seq))
        self.prev_log = float(log_mids[-1])


class Accumulator:
    """Sums behind every calibrated model, fed :class:`MarketPath` pieces in time order (see the module docstring).

    Parameters
    ----------
    sigma_horizons_s : σ horizons (s).  markout_horizons_s : adverse-selection horizons (s).
    depth_grid_bps : the depth grid (bps) of the intensity, adverse and volume curves.
    reference_lag_s : a quote rests at a depth from the mid this long ago (s).
    impact_horizon_s : markout horizon (s) of the impact regression.
    """

    def __init__(
        self,
        *,
        sigma_horizons_s: tuple[float, ...],
        markout_horizons_s: tuple[float, ...],
        depth_grid_bps: np.ndarray,
        reference_lag_s: float,
        impact_horizon_s: float,
    ) -> None:
        self.grid = depth_grid_bps
        self.edges = np.append(depth_grid_bps, np.inf)
        self.lag = int(reference_lag_s * 1e9)
        self.sigma = {h: _SigmaGrid(int(h * 1e9)) for h in sigma_horizons_s}
        self.markout_h = tuple(markout_horizons_s)
        self.impact_h = impact_horizon_s
        n = depth_grid_bps.size
        # path extent
        self.first_ts: int | None = None  # first BBO change or trade (the path's duration)
        self.last_ts: int | None = None
        self.q_first: int | None = None  # first / last BBO change
        self.q_last: int | None = None
        self.first_mid = float("nan")
        self.last_mid = float("nan")
        self.last_bid = float("nan")
        self.last_ask = float("nan")
        # the mid history of the last `lag` ns (plus the change before it)
        self.tail_ts = np.zeros(0, np.int64)
        self.tail_mid = np.zeros(0)
        # trades of the latest timestamp and side, not yet a whole market order
        self.held = _empty_trades()
        # market orders: per side (0 hit the bid, 1 lifted the ask) counts and volume by depth index
        self.count_by_idx = np.zeros((2, n + 1), np.int64)
        self.qty_by_idx = np.zeros((2, n + 1))
        self.total_qty = 0.0
        self.n_orders = 0
        # markouts still owed: orders in time order, and per horizon how many of them are resolved
        self.pend = _empty_orders()
        self.done: dict[float, int] = {h: 0 for h in (*self.markout_h, impact_horizon_s)}
        self.adv_n = {h: np.zeros(n, np.int64) for h in self.markout_h}
        self.adv_s1 = {h: np.zeros(n) for h in self.markout_h}
        self.adv_s2 = {h: np.zeros(n) for h in self.markout_h}
        self.imp_n = 0
        self.imp_sxy = 0.0  # Σ √q · move
        self.imp_sxx = 0.0  # Σ q
        self.imp_syy = 0.0  # Σ move²
        self.imp_moved = False

    # ---- feeding --------------------------------------------------------------------------------------
    def add(self, piece: MarketPath) -> None:
        """Feed the next piece of the path (BBO changes and trades later than or equal to the previous ones)."""
        q_ts = piece.ts_ns
        for ts in (q_ts, piece.trade_ts_ns):
            if ts.size:
                self.first_ts = int(ts[0]) if self.first_ts is None else min(self.first_ts, int(ts[0]))
                self.last_ts = int(ts[-1]) if self.last_ts is None else max(self.last_ts, int(ts[-1]))
        mids = piece.mid_usd
        prev_mid = self.last_mid  # the mid before this piece (NaN before the first change)
        if q_ts.size:
            if self.q_first is None:
                self.q_first = int(q_ts[0])
                self.first_mid = float(mids[0])
                for sg in self.sigma.values():
                    sg.next_g = self.q_first
            self._sigma(q_ts, mids, prev_mid, limit=int(q_ts[-1]))
        trades = _concat_trades(self.held, _trades_of(piece))
        orders, self.held = _orders(trades, keep_last=True)
        hist_ts = np.concatenate([self.tail_ts, q_ts])
        hist_mid = np.concatenate([self.tail_mid, mids])
        self._orders_in(orders, hist_ts, hist_mid)
        if q_ts.size:
            self.q_last = int(q_ts[-1])
            self.last_mid = float(mids[-1])
            self.last_bid, self.last_ask = float(piece.bid_usd[-1]), float(piece.ask_usd[-1])
            self._resolve(q_ts, mids, prev_mid, limit=int(q_ts[-1]), inclusive=False)
            # keep what the reference mid of a later order (or of the held-back trades) can still need
            oldest = min(int(q_ts[-1]), int(self.held["ts"][0]) if self.held["ts"].size else int(q_ts[-1]))
            keep_from = int(np.searchsorted(hist_ts, oldest - self.lag, side="right")) - 1
            self.tail_ts, self.tail_mid = hist_ts[max(keep_from, 0) :], hist_mid[max(keep_from, 0) :]

    def finish(self) -> None:
        """End of the data: the last market order, the σ grid points up to the last change, the markouts due."""
        orders, self.held = _orders(self.held, keep_last=False)
        self._orders_in(orders, self.tail_ts, self.tail_mid)
        if self.q_last is None:
            return
        none = np.zeros(0, np.int64)
        self._sigma(none, np.zeros(0), self.last_mid, limit=self.q_last + 1)
        self._resolve(none, np.zeros(0), self.last_mid, limit=self.q_last, inclusive=True)

    # ---- estimators -----------------------------------------------------------------------------------
    def _mid_at(self, t: np.ndarray, ts: np.ndarray, mids: np.ndarray, before: float) -> np.ndarray:
        """Mid at times ``t``: the last change of ``ts`` at or before, else ``before`` (else the first mid)."""
        i = np.searchsorted(ts, t, side="right") - 1
        fallback = before if math.isfinite(before) else self.first_mid
        return np.where(i >= 0, mids[np.clip(i, 0, max(ts.size - 1, 0))] if ts.size else fallback, fallback)

    def _sigma(self, q_ts: np.ndarray, mids: np.ndarray, before: float, *, limit: int) -> None:
        """Emit the grid points before ``limit`` (ns): their mid cannot change any more."""
        for sg in self.sigma.values():
            if sg.next_g is None or sg.next_g >= limit:
                continue
            gs = np.arange(sg.next_g, limit, sg.step_ns, dtype=np.int64)
            sg.emit(np.log(self._mid_at(gs, q_ts, mids, before)))
            sg.next_g = int(gs[-1]) + sg.step_ns

    def _orders_in(self, o: dict[str, np.ndarray], hist_ts: np.ndarray, hist_mid: np.ndarray) -> None:
        if o["ts"].size == 0:
            return
        if self.lag > 0:
            ref = self._mid_at(o["ts"] - self.lag, hist_ts, hist_mid, float("nan"))
        else:
            ref = o["mid_before"]
        sign = np.where(o["buy"], 1.0, -1.0)
        depth = sign * (o["worst_px"] - ref) / ref * 1e4
        idx = np.searchsorted(self.grid, depth, side="right")  # grid depths at or below each order's depth
        side = o["buy"].astype(np.int64)
        np.add.at(self.count_by_idx, (side, idx), 1)
        np.add.at(self.qty_by_idx, (side, idx), o["qty"])
        self.total_qty += float(np.sum(o["qty"]))
        self.n_orders += int(o["ts"].size)
        o = o | {"ref": ref, "depth": depth}
        self.pend = {k: np.concatenate([self.pend[k], o[k]]) for k in self.pend}

    def _resolve(self, q_ts: np.ndarray, mids: np.ndarray, before: float, *, limit: int, inclusive: bool) -> None:
        """Markouts of the pending orders whose horizon ends before ``limit`` (at or before, at the end)."""
        p = self.pend
        n_bins = self.grid.size
        for h, k0 in self.done.items():
            later = p["ts"][k0:] + int(h * 1e9)
            k1 = k0 + int(np.searchsorted(later, limit, side="right" if inclusive else "left"))
            if k1 == k0:
                continue
            sl = slice(k0, k1)
            later = p["ts"][sl] + int(h * 1e9)
            mid_later = self._mid_at(later, q_ts, mids, before)
            buy = p["buy"][sl]
            if h in self.adv_n:
                ref = p["ref"][sl]
                move = np.where(buy, 1.0, -1.0) * (mid_later - ref) / ref * 1e4
                b = np.clip(np.searchsorted(self.edges, np.maximum(p["depth"][sl], 0.0), side="right") - 1, 0,
                            n_bins - 1)  # fmt: skip
                self.adv_n[h] += np.bincount(b, minlength=n_bins)
                self.adv_s1[h] += np.bincount(b, move, minlength=n_bins)
                self.adv_s2[h] += np.bincount(b, move * move, minlength=n_bins)
            if h == self.impact_h:
                before_mid = p["mid_before"][sl]
                m = np.where(buy, 1.0, -1.0) * (mid_later - before_mid) / before_mid
                q = p["qty"][sl]
                self.imp_n += int(m.size)
                self.imp_sxy += float(np.sum(np.sqrt(q) * m))
                self.imp_sxx += float(np.sum(q))
                self.imp_syy += float(np.sum(m * m))
                self.imp_moved = self.imp_moved or bool(np.any(m != 0))
            self.done[h] = k1
        drop = min(self.done.values())
        if drop:
            self.pend = {k: v[drop:] for k, v in p.items()}
            self.done = {h: k - drop for h, k in self.done.items()}

    # ---- results --------------------------------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        """From the first to the last BBO change or trade (s)."""
        return (self.last_ts - self.first_ts) / 1e9 if self.first_ts is not None and self.last_ts else 0.0

    def counts_at_depth(self, side: int) -> np.ndarray:
        """Market orders of ``side`` (0: hit the bid, 1: lifted the ask) reaching at least each grid depth."""
        return np.cumsum(self.count_by_idx[side, ::-1])[::-1][1:]

    def qty_at_depth(self, side: int) -> np.ndarray:
        """Coins those orders traded, per grid depth (at or through it)."""
        return np.cumsum(self.qty_by_idx[side, ::-1])[::-1][1:]


def _empty_trades() -> dict[str, np.ndarray]:
    return {"ts": np.zeros(0, np.int64), "px": np.zeros(0), "qty": np.zeros(0), "buy": np.zeros(0, bool),
            "mid": np.zeros(0)}  # fmt: skip


def _empty_orders() -> dict[str, np.ndarray]:
    return {"ts": np.zeros(0, np.int64), "buy": np.zeros(0, bool), "qty": np.zeros(0), "worst_px": np.zeros(0),
            "mid_before": np.zeros(0), "ref": np.zeros(0), "depth": np.zeros(0)}  # fmt: skip


def _trades_of(piece: MarketPath) -> dict[str, np.ndarray]:
    return {"ts": piece.trade_ts_ns, "px": piece.trade_px_usd, "qty": piece.trade_qty_coins,
            "buy": piece.trade_buy, "mid": piece.trade_mid_usd}  # fmt: skip


def _concat_trades(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a} if a["ts"].size else b


def _orders(t: dict[str, np.ndarray], *, keep_last: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Market orders (trades grouped by exchange time and aggressor side, consecutive) and, with ``keep_last``,
    the trades of the last group, held back (the next piece may continue it)."""
    ts, buy = t["ts"], t["buy"]
    if ts.size == 0:
        return _empty_orders(), _empty_trades()
    new = np.ones(ts.size, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (buy[1:] != buy[:-1])
    start = np.flatnonzero(new)
    held = _empty_trades()
    if keep_last:
        cut = int(start[-1])
        held = {k: v[cut:] for k, v in t.items()}
        t = {k: v[:cut] for k, v in t.items()}
        start = start[:-1]
        if start.size == 0:
            return _empty_orders(), held
    qty = np.add.reduceat(t["qty"], start)
    hi = np.maximum.reduceat(t["px"], start)
    lo = np.minimum.reduceat(t["px"], start)
    b = t["buy"][start]
    orders = {"ts": t["ts"][start], "buy": b, "qty": qty, "worst_px": np.where(b, hi, lo),
              "mid_before": t["mid"][start]}  # fmt: skip
    return orders, held
