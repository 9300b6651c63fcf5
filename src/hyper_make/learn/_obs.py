"""What a venue reports to the learner over one refresh interval: resting exposure per level and the fills.

Arrays of one interval, struct-of-arrays (one compiled-friendly dtype each, no per-order objects). Sides are
``+1`` for bids and ``-1`` for asks (the sign a fill adds to the position); ``"bid"``/``"ask"`` are accepted.
Depths are bps from the reference price the level was placed at (> 0 away from it, both sides), sizes in coins,
times in seconds, prices in USD, markouts in USD per coin *net of fees* (positive = the fill made money: for a bid
filled at ``P``, ``mid(t + H) - P - fee``; for an ask, ``P - mid(t + H) - fee``).

Structural errors (mismatched lengths, a side that is neither bid nor ask, a markout table with the wrong number
of horizons) raise :class:`~hyper_make.errors.InvalidParameterError` at construction. Bad *values* (NaN, inf, a
negative size or time) are not errors: a venue can report them, and the learner counts and skips them
(:meth:`PayoutLearner.update` reports how many), never learning from them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validate import check_real
from ..errors import InvalidParameterError


def _sides(name: str, values: Any, n: int | None = None) -> NDArray[np.int8]:
    """``"bid"``/``"ask"``/``+1``/``-1`` as int8 ``+1``/``-1``; anything else is a structural error."""
    raw = np.asarray(values)
    if raw.dtype == np.int8 and raw.ndim == 1 and (n is None or raw.shape[0] == n):  # the refresh core's: as is
        if _all_unit(raw):
            return raw
    if raw.ndim != 1:
        raise InvalidParameterError(f"'{name}' must be 1-dimensional (one side per entry); got shape {raw.shape}")
    if raw.dtype.kind in "USO":
        codes = {"bid": 1, "ask": -1}
        out = np.array([codes.get(v, v if v in (1, -1) else 0) for v in raw.tolist()], dtype=np.int8)
    elif raw.dtype.kind in "iuf":
        out = np.where(raw == 1, 1, np.where(raw == -1, -1, 0)).astype(np.int8)
    else:
        raise InvalidParameterError(f"'{name}' must hold 'bid'/'ask' or +1/-1; got {values!r}")
    bad = (out != 1) & (out != -1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(f"'{name}[{i}]' must be 'bid' or 'ask' (or +1 / -1); got {raw[i]!r}")
    if n is not None and out.shape[0] != n:
        raise InvalidParameterError(f"'{name}' must have {n} entries; got {out.shape[0]}")
    return out


@nb.njit(cache=True)
def _all_unit(raw):  # type: ignore[no-untyped-def]
    """Every entry is +1 or -1 (one compiled pass instead of three NumPy calls)."""
    for v in raw:
        if v != 1 and v != -1:
            return False
    return True


def _size(v: Any) -> int:
    """``np.size(v)``, without its Python layer for an array."""
    return int(v.size) if isinstance(v, np.ndarray) else int(np.size(v))


def _floats(name: str, values: ArrayLike, n: int) -> NDArray[np.float64]:
    """A float64 array of length ``n`` (values unchecked: non-finite ones are the learner's to count and skip)."""
    if type(values) is np.ndarray and values.dtype == np.float64 and values.shape == (n,):
        return values
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"'{name}' must be an array of real numbers; got {values!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidParameterError(f"'{name}' must have {n} entries (one per row); got shape {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class LevelObservations:
    """One refresh interval as the venue saw it: resting coin-seconds per level, and the fills with markouts.

    Attributes
    ----------
    duration_s : length of the interval (s), ``>= 0``; the learner forgets by ``2^(-duration_s / half_life_s)``.
    rest_side : ``+1`` bid / ``-1`` ask per resting entry (an order, or an order's stretch at one depth).
    rest_depth_bps : depth of the resting entry from the reference price (bps).
    rest_size_coins : its size (coins).
    rest_time_s : how long it rested in the interval (s); coin-seconds = ``size × time``.
    fill_side, fill_depth_bps, fill_size_coins, fill_price_usd : per fill: side, the order's depth when placed
        (bps), filled size (coins), fill price (USD).
    fill_markout_usd : per fill and horizon, shape ``(n_fills, n_horizons)``: markout per coin net of fees
        (USD/coin) at each of ``horizons_s``.
    fill_order_size_coins : the filled order's resting size when it filled (coins); NaN = the fill size.
    fill_side_total_coins : the side's total resting size when it filled (coins); NaN = the order size.
    horizons_s : the markout horizons (s), strictly increasing, matching the learner's.
    drift_dt_s, drift_bps, drift_display_coins, drift_position_coins : per refresh interval (optional, all the same
        length): its length (s), the mid's change over it (bps of the mid at its start), our net displayed size
        during it (bids minus asks, coins, as placed at its start) and our position at its start (coins): what the
        learner fits the market's reaction to the size we show from (``mid drift = λ·display + ψ·position``).
    """

    duration_s: float
    rest_side: NDArray[np.int8]
    rest_depth_bps: NDArray[np.float64]
    rest_size_coins: NDArray[np.float64]
    rest_time_s: NDArray[np.float64]
    fill_side: NDArray[np.int8]
    fill_depth_bps: NDArray[np.float64]
    fill_size_coins: NDArray[np.float64]
    fill_price_usd: NDArray[np.float64]
    fill_markout_usd: NDArray[np.float64]
    horizons_s: tuple[float, ...]
    fill_order_size_coins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    fill_side_total_coins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    drift_dt_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    drift_bps: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    drift_display_coins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    drift_position_coins: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        check_real("duration_s", self.duration_s, lo=0.0, unit="s")
        hz = tuple(float(h) for h in self.horizons_s)
        if not hz or any(not math.isfinite(h) or h <= 0 for h in hz) or any(b <= a for a, b in itertools.pairwise(hz)):
            raise InvalidParameterError(
                f"'horizons_s' must be positive, finite and strictly increasing (s); got {self.horizons_s!r}"
            )
        object.__setattr__(self, "horizons_s", hz)
        side = _sides("rest_side", self.rest_side)
        n = side.shape[0]
        object.__setattr__(self, "rest_side", side)
        for f in ("rest_depth_bps", "rest_size_coins", "rest_time_s"):
            object.__setattr__(self, f, _floats(f, getattr(self, f), n))
        fs = _sides("fill_side", self.fill_side)
        m = fs.shape[0]
        object.__setattr__(self, "fill_side", fs)
        for f in ("fill_depth_bps", "fill_size_coins", "fill_price_usd"):
            object.__setattr__(self, f, _floats(f, getattr(self, f), m))
        for f in ("fill_order_size_coins", "fill_side_total_coins"):
            v = getattr(self, f)
            object.__setattr__(self, f, np.full(m, np.nan) if _size(v) == 0 else _floats(f, v, m))
        nd = _size(self.drift_dt_s)
        for f in ("drift_dt_s", "drift_bps", "drift_display_coins", "drift_position_coins"):
            object.__setattr__(self, f, _floats(f, getattr(self, f), nd) if nd else np.zeros(0))
        try:
            mk = np.asarray(self.fill_markout_usd, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidParameterError("'fill_markout_usd' must be an array of real numbers") from None
        if mk.size == 0:
            mk = np.zeros((m, len(hz)))
        if mk.ndim == 1 and len(hz) == 1:
            mk = mk[:, None]
        if mk.shape != (m, len(hz)):
            raise InvalidParameterError(
                f"'fill_markout_usd' must have shape (n_fills, n_horizons) = ({m}, {len(hz)}); got {mk.shape}"
            )
        object.__setattr__(self, "fill_markout_usd", mk)

    @property
    def n_resting(self) -> int:
        """Number of resting entries."""
        return int(self.rest_side.shape[0])

    @property
    def n_fills(self) -> int:
        """Number of fills."""
        return int(self.fill_side.shape[0])

    @classmethod
    def build(
        cls,
        duration_s: float,
        resting: Sequence[tuple[str | int, float, float, float]] = (),
        fills: Sequence[tuple[Any, ...]] = (),
        *,
        horizons_s: Sequence[float] = (5.0,),
    ) -> LevelObservations:
        """From rows: ``resting = [(side, depth_bps, size_coins, time_s), ...]`` and
        ``fills = [(side, depth_bps, size_coins, price_usd, markouts_usd[, order_size_coins, side_total_coins])]``
        with ``markouts_usd`` one value per horizon (a number when there is one horizon).

        >>> obs = LevelObservations.build(2.0, [("bid", 1.5, 0.01, 2.0)], [("bid", 1.5, 0.01, 99_985.0, 3.2)])
        >>> obs.n_resting, obs.n_fills, obs.fill_markout_usd.shape
        (1, 1, (1, 1))
        """
        hz = tuple(horizons_s)
        r = list(resting)
        f = list(fills)
        for i, row in enumerate(f):
            if len(row) not in (5, 7):
                raise InvalidParameterError(
                    f"'fills[{i}]' must be (side, depth_bps, size_coins, price_usd, markouts_usd"
                    f"[, order_size_coins, side_total_coins]); got {len(row)} fields"
                )
        mk = [np.atleast_1d(np.asarray(row[4], dtype=np.float64)) for row in f]
        return cls(
            duration_s=duration_s,
            rest_side=np.array([row[0] for row in r], dtype=object) if r else np.zeros(0, np.int8),
            rest_depth_bps=np.array([row[1] for row in r], dtype=np.float64),
            rest_size_coins=np.array([row[2] for row in r], dtype=np.float64),
            rest_time_s=np.array([row[3] for row in r], dtype=np.float64),
            fill_side=np.array([row[0] for row in f], dtype=object) if f else np.zeros(0, np.int8),
            fill_depth_bps=np.array([row[1] for row in f], dtype=np.float64),
            fill_size_coins=np.array([row[2] for row in f], dtype=np.float64),
            fill_price_usd=np.array([row[3] for row in f], dtype=np.float64),
            fill_markout_usd=np.array(mk, dtype=np.float64).reshape(len(f), -1) if f else np.zeros((0, len(hz))),
            horizons_s=hz,
            fill_order_size_coins=np.array([row[5] if len(row) == 7 else np.nan for row in f], dtype=np.float64),
            fill_side_total_coins=np.array([row[6] if len(row) == 7 else np.nan for row in f], dtype=np.float64),
        )


__all__ = ["LevelObservations"]
