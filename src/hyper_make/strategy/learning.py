"""What the payout learner learns from, gathered by the refresh core from the venue's views (every venue the same).

Per refresh interval ``(t_prev, t]``:

* **Resting exposure** of each of our orders, by the trapezoid rule on the sizes the two views show:
  ``(s_prev + s_now)/2 · (t - t_prev)`` coin-seconds (``s = 0`` where the order is absent: an order that filled or
  was cancelled in the interval counts half of it, as does one that appeared), at the depth the order was placed
  at (bps from the mid then).
* **Fills** with their markouts at the learner's horizons (net of fees, USD/coin), the order's and its side's
  resting size before the fill (from the previous view), from :class:`~hyper_make.strategy.quoter.FillStats`.

* **Display drift**: the mid's change over the interval (bps), the net size we displayed during it (bids minus asks
  of the ladder placed at its start, coins) and our position at its start (coins), from which the learner fits how
  the market reacts to the size we show (:class:`~hyper_make.learn.DisplayFit`).

A fill's markouts are known only ``H`` (the learner's longest horizon) after it, so the exposure of an interval is
held back until the interval is ``H`` old and enters the learner together with the fills of the same time: the
fill-rate posterior never sees exposure without the fills it produced. Fills of orders the core did not place (or
whose depth is unknown) are counted in :attr:`LearningTap.unattributed` and not learned.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from .venue import VenueFill, VenueView

_EMPTY = np.zeros(0)
_NO_SIDE = np.zeros(0, np.int8)
_NO_REST = np.zeros((0, 4))
#: The display-drift columns of :class:`~hyper_make.learn.LevelObservations`, in the order the tap keeps them.
DRIFT_FIELDS = ("drift_dt_s", "drift_bps", "drift_display_coins", "drift_position_coins")


class LearningTap:
    """Feeds a :class:`~hyper_make.learn.PayoutLearner` from the views the refresh core sees (see the module doc).

    ``fill_stats`` must emit settled fills at the learner's longest horizon (``FillStats(emit_until_s=...)``).
    """

    def __init__(self, learner: Any, fill_stats: Any) -> None:
        hz = tuple(learner.config.markout_horizons_s)
        missing = [h for h in hz if h not in fill_stats.horizons_s]
        if missing:
            raise InvalidParameterError(
                f"the learner's markout_horizons_s {list(hz)} s must be among the refresh core's "
                f"'quoter.markout_horizons_s' {list(fill_stats.horizons_s)} s; missing {missing}"
            )
        self.learner = learner
        self.fill_stats = fill_stats
        self.horizons_s = hz
        self._cols = [fill_stats.horizons_s.index(h) for h in hz]  # the learner's horizons among the emitted ones
        self._lag_ns = int(max(hz) * 1e9)
        self._prev_ns: int | None = None
        self._prev: dict[str, tuple[int, float, float]] = {}  # cloid -> (side ±1, depth bps, size coins)
        self._totals = (0.0, 0.0)  # (bid, ask) resting totals at the previous view (coins)
        # (start ns, end ns, resting rows side|depth|size|time, drift row dt|drift bps|display|position or None)
        self._held: deque[tuple[int, int, np.ndarray, tuple[float, float, float, float] | None]] = deque()
        self._prev_mid: float | None = None
        self._prev_q = 0.0
        self._display: float | None = None  # net size shown since the last view (bids - asks, coins)
        self.unattributed = 0
        self.updates = 0

    def sizes_before(self, fill: VenueFill) -> tuple[float, float]:
        """The order's and its side's resting size at the previous view (coins; NaN for an unknown order)."""
        prev = self._prev.get(fill.cloid) if fill.cloid is not None else None
        total = self._totals[fill.side == "ask"]
        return (prev[2] if prev is not None else math.nan), total

    def displayed(self, net_coins: float) -> None:
        """The net size (bids minus asks, coins) the plan of this refresh displays until the next view."""
        self._display = float(net_coins)

    def observe(self, view: VenueView) -> Any:
        """Account the interval up to ``view`` and learn what has settled; the learner's update report, or
        ``None`` when nothing was released."""
        ts = view.ts_ns
        now: dict[str, tuple[int, float, float]] = {}
        totals = [0.0, 0.0]
        depth_of = self.fill_stats.depth_of
        for o in view.resting:
            totals[o.side == "ask"] += o.size
            if o.cloid is None:
                continue
            d = depth_of(o.cloid)
            if math.isfinite(d):
                now[o.cloid] = (1 if o.side == "bid" else -1, d, o.size)
        if self._prev_ns is not None and ts > self._prev_ns:
            dt = (ts - self._prev_ns) / 1e9
            rows = []
            for c in self._prev.keys() | now.keys():
                a, b = self._prev.get(c), now.get(c)
                ref = b if b is not None else a
                assert ref is not None
                s = 0.5 * ((a[2] if a is not None else 0.0) + (b[2] if b is not None else 0.0))
                rows.append((ref[0], ref[1], s, dt))
            mid = view.book.mid_usd if view.book is not None and view.book.is_two_sided else None
            drift = None
            if mid is not None and self._prev_mid is not None:
                shown = self._display
                if shown is None:  # no plan since the last view: what rested then
                    shown = sum(v[2] * v[0] for v in self._prev.values())
                drift = (dt, (mid / self._prev_mid - 1.0) * 1e4, shown, self._prev_q)
            self._held.append((self._prev_ns, ts, np.asarray(rows, dtype=np.float64).reshape(-1, 4), drift))
        self._prev_ns = ts
        if view.book is not None and view.book.is_two_sided:
            self._prev_mid = view.book.mid_usd
        self._prev_q = view.position_coins
        self._display = None
        self._prev = now
        self._totals = (totals[0], totals[1])
        return self._release(ts)

    def _release(self, ts: int) -> Any:
        from ..learn import LevelObservations

        cut = ts - self._lag_ns
        parts = []
        drifts = []
        duration = 0.0
        while self._held and self._held[0][1] <= cut:
            t0, t1, rows, drift = self._held.popleft()
            parts.append(rows)
            if drift is not None:
                drifts.append(drift)
            duration += (t1 - t0) / 1e9
        settled = self.fill_stats.take_settled()
        good = [f for f in settled if math.isfinite(f.depth_bps)]
        self.unattributed += len(settled) - len(good)
        if not parts and not good:
            return None
        # one column per field, each contiguous (what the learner's compiled update is specialised for), each table
        # made by one NumPy call
        rest = np.ascontiguousarray((parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else _NO_REST).T)
        nh = len(self.horizons_s)
        if good:
            cols = self._cols
            fa = np.array(
                [(1.0 if f.fill.side == "bid" else -1.0, f.depth_bps, f.fill.size_coins, f.fill.price_usd,
                  f.order_size_coins, f.side_total_coins, *(f.markouts_usd[i] for i in cols)) for f in good],
                dtype=np.float64,
            )  # fmt: skip
            fc = np.ascontiguousarray(fa[:, :6].T)
            fills = (fc[0].astype(np.int8), fc[1], fc[2], fc[3], fc[4], fc[5], np.ascontiguousarray(fa[:, 6:]))
        else:
            fills = (_NO_SIDE, _EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY, np.zeros((0, nh)))
        dr = np.ascontiguousarray(np.array(drifts, dtype=np.float64).T) if drifts else (_EMPTY,) * 4
        obs = LevelObservations(
            duration_s=duration,
            rest_side=rest[0].astype(np.int8),
            rest_depth_bps=rest[1],
            rest_size_coins=rest[2],
            rest_time_s=rest[3],
            fill_side=fills[0],
            fill_depth_bps=fills[1],
            fill_size_coins=fills[2],
            fill_price_usd=fills[3],
            fill_markout_usd=fills[6],
            horizons_s=self.horizons_s,
            fill_order_size_coins=fills[4],
            fill_side_total_coins=fills[5],
            **dict(zip(DRIFT_FIELDS, dr, strict=True)),
        )
        self.updates += 1
        return self.learner.update(obs)


__all__ = ["LearningTap"]
