"""The market behind the local exchange: other participants' book and their trades, seeded.

:class:`RandomWalkMarket` is a small stand-in: a mid that follows a Gaussian random walk (σ as a fraction of
price per √s), others' book as ``n_levels`` price levels per side one tick apart around it, and taker trades
arriving as a Poisson process with exponential sizes, each printing an exponential depth (bps) through the
touch. Anything with the same three methods (:class:`MarketModel`) can drive the exchange instead (a replay, or
the event-driven simulator of :mod:`hyper_make.sim`).

Its defaults are the market the default configuration describes (:func:`hyper_make.defaults.default_snapshot`
and the ladder's default fill model :class:`~hyper_make.economics.fill.ExponentialIntensity`, ``A = 0.5``/s,
``k = 0.3``/bp): σ = 0.89 bps/√s; on each side prints reach depth δ (bps) beyond the touch at the rate
``A·exp(-k·δ)`` (trades at ``2A`` per second, depth exponential with mean ``1/k`` = 3.33 bps); and the
default snapshot's 10,000 BTC a day of volume at its mid. So the default ``hyper-make run`` against the
default ``hyper-make exchange`` meets the fills its model expects (about 5 a minute at its best level, 5.6 bps
deep), where prints a tick or two through the touch never reached a level a few bps deep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from .._validate import check_int, check_real
from ..defaults import default_snapshot
from ..economics.fill import ExponentialIntensity
from ..errors import InvalidParameterError
from ..instrument import InstrumentSpec

_SNAPSHOT = default_snapshot()
_FILL = ExponentialIntensity()
#: Mid volatility of the default paper market: the default snapshot's (fraction of price per √s; 0.89 bps).
PAPER_SIGMA_FRAC_PER_SQRT_S = _SNAPSHOT.sigma_frac / math.sqrt(_SNAPSHOT.sigma_horizon_s)
#: Others' taker trades per second per coin (both sides): twice the default fill model's touch intensity ``A``.
PAPER_TRADES_PER_S = 2.0 * _FILL.intensity_per_s
#: Mean depth (bps) a print reaches beyond the touch: ``1/k`` of the default fill model.
PAPER_THROUGH_BPS_MEAN = 1.0 / _FILL.kappa_per_bps
#: Mean taker trade notional (USD): the default snapshot's daily volume at its mid, over the trades of a day.
PAPER_MEAN_TRADE_USD = _SNAPSHOT.daily_volume_coins * _SNAPSHOT.mid_usd / 86_400.0 / PAPER_TRADES_PER_S


@dataclass(frozen=True, slots=True)
class MarketTrade:
    """A trade by others: the aggressor's side (``"B"`` buy / ``"A"`` sell), price (USD), size (coins)."""

    coin: str
    side: Literal["B", "A"]
    px: float
    sz: float


class MarketModel(Protocol):
    """What the local exchange needs from a market, per coin."""

    def mid(self, coin: str) -> float:
        """Mid price (USD)."""
        ...

    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Others' resting liquidity: (bids best first, asks best first) as (price USD, size coins)."""
        ...

    def step(self, dt_s: float) -> list[MarketTrade]:
        """Advance ``dt_s`` seconds; return the trades printed meanwhile."""
        ...


class RandomWalkMarket:
    """A seeded random-walk market over one or more instruments.

    Parameters
    ----------
    specs : instruments and their start mids (USD), ``{spec: mid}``.
    sigma_frac_per_sqrt_s : volatility of the mid (fraction of price per √s), ``>= 0``.
    trades_per_s : Poisson rate of others' taker trades per coin, both sides (1/s), ``>= 0``.
    mean_trade_usd : mean notional of a taker trade (USD), ``> 0``.
    n_levels : levels of others' book per side; ``level_usd`` the notional resting at each (USD).
    through_bps_mean : mean depth (bps of the touch price) a trade prints beyond the touch, ``>= 0``: exponential,
        so prints reach depth δ at the rate ``trades_per_s / 2 · exp(-δ / through_bps_mean)`` on each side (the
        price rounded away from the touch to a valid one).
    seed : seed of the random stream.

    The defaults are the market of the default configuration (module docstring).
    """

    def __init__(
        self,
        specs: dict[InstrumentSpec, float],
        *,
        sigma_frac_per_sqrt_s: float = PAPER_SIGMA_FRAC_PER_SQRT_S,
        trades_per_s: float = PAPER_TRADES_PER_S,
        mean_trade_usd: float = PAPER_MEAN_TRADE_USD,
        n_levels: int = 10,
        level_usd: float = 50_000.0,
        through_bps_mean: float = PAPER_THROUGH_BPS_MEAN,
        seed: int = 0,
    ) -> None:
        self.sigma = check_real("sigma_frac_per_sqrt_s", sigma_frac_per_sqrt_s, lo=0.0, hi=0.1)
        self.rate = check_real("trades_per_s", trades_per_s, lo=0.0, hi=1e4, unit="1/s")
        self.mean_trade_usd = check_real("mean_trade_usd", mean_trade_usd, lo=0.0, lo_open=True, unit="USD")
        self.n_levels = check_int("n_levels", n_levels, lo=1, hi=1000)
        self.level_usd = check_real("level_usd", level_usd, lo=0.0, lo_open=True, unit="USD")
        self.through_bps = check_real("through_bps_mean", through_bps_mean, lo=0.0, hi=10_000.0, unit="bps")
        self._specs = {s.coin: s for s in specs}
        self._mid = {s.coin: check_real(f"mid[{s.coin}]", m, lo=0.0, lo_open=True) for s, m in specs.items()}
        self._rng = np.random.default_rng(seed)

    def _tick(self, coin: str) -> float:
        return float(self._specs[coin].tick_at(self._mid[coin]))

    def _touch(self, coin: str) -> tuple[float, float]:
        spec, mid = self._specs[coin], self._mid[coin]
        tick = self._tick(coin)
        bid = spec.round_price(mid - 0.5 * tick, "bid")
        ask = spec.round_price(mid + 0.5 * tick, "ask")
        if ask <= bid:
            ask = spec.round_price(bid + tick, "ask")
        return bid, ask

    def mid(self, coin: str) -> float:
        """Mid price (USD)."""
        return self._mid[coin]

    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Others' levels, one tick apart from the touch, ``level_usd`` each."""
        spec = self._specs[coin]
        bid, ask = self._touch(coin)
        tick = self._tick(coin)
        lots = lambda px: float(spec.round_size_down(self.level_usd / px))  # noqa: E731
        bids = [(round(bid - i * tick, 10), lots(bid)) for i in range(self.n_levels) if bid - i * tick > 0]
        asks = [(round(ask + i * tick, 10), lots(ask)) for i in range(self.n_levels)]
        return bids, asks

    def step(self, dt_s: float) -> list[MarketTrade]:
        """Move every mid by ``N(0, σ²·dt)`` (log), then draw the trades of the interval (``dt_s`` seconds)."""
        dt = check_real("dt_s", dt_s, lo=0.0, unit="s")
        trades: list[MarketTrade] = []
        for coin, spec in self._specs.items():
            self._mid[coin] *= math.exp(self.sigma * math.sqrt(dt) * float(self._rng.standard_normal()))
            n = int(self._rng.poisson(self.rate * dt))
            bid, ask = self._touch(coin)
            tick = self._tick(coin)
            for _ in range(n):
                buy = bool(self._rng.random() < 0.5)
                d = float(self._rng.exponential(self.through_bps)) * 1e-4 if self.through_bps > 0 else 0.0
                if buy:
                    px = spec.round_price(ask * (1.0 + d), "ask")
                else:
                    px = spec.round_price(bid * (1.0 - d), "bid") if d < 1.0 else 0.0
                    px = px if px > 0 else tick
                sz = spec.round_size_down(float(self._rng.exponential(self.mean_trade_usd)) / px)
                if sz > 0:
                    trades.append(MarketTrade(coin, "B" if buy else "A", round(px, 10), sz))
        return trades


class ReplayMarket:
    """Others' book and trades replayed from a recording (hftbacktest ``event_dtype`` rows, one instrument).

    Depth rows set a level's total (0 removes it), clear rows empty a side before a snapshot, BBO rows remove the
    levels better than themselves; trade rows become :class:`MarketTrade` s flagged by the aggressor. Time starts
    at the first book row's exchange timestamp (earlier trades are skipped); :meth:`step` replays the rows up to
    ``dt_s`` later. Past the last row the book stays as it was and no trade prints (:attr:`finished`).

    Parameters
    ----------
    spec : the instrument the recording is of (its ``coin`` names it on the local exchange).
    events : rows of :data:`hyper_make.data.event_dtype` (e.g. ``load_events(path)[0]``).
    """

    def __init__(self, spec: InstrumentSpec, events: np.ndarray) -> None:
        from ..data.events import DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT, TRADE_EVENT, exchange_view, is_buy, kinds

        ev = exchange_view(events)
        if ev.shape[0] == 0:
            raise InvalidParameterError("'events' must hold at least one exchange-side row; got none")
        order = np.argsort(ev["exch_ts"], kind="stable")
        self._kind = kinds(ev)[order]
        self._buy = is_buy(ev)[order]
        self._ts = ev["exch_ts"][order]
        self._px = ev["px"][order]
        self._qty = ev["qty"][order]
        self._codes = (TRADE_EVENT, DEPTH_CLEAR_EVENT, DEPTH_BBO_EVENT)
        self.spec = spec
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        # start at the first book row: trades recorded before any book are skipped (nothing to quote against)
        book_rows = np.flatnonzero(self._kind != TRADE_EVENT)
        self._i = int(book_rows[0]) if book_rows.size else 0
        self._t = int(self._ts[self._i])
        self._last_px = float(self._px[self._i])
        self._replay_until(self._t)  # the opening snapshot

    @property
    def finished(self) -> bool:
        """Whether every row has been replayed."""
        return self._i >= self._ts.shape[0]

    @property
    def time_ns(self) -> int:
        """Replay clock (exchange time, UNIX ns)."""
        return self._t

    def _replay_until(self, t_ns: int) -> list[MarketTrade]:
        trade, clear, bbo = self._codes
        trades: list[MarketTrade] = []
        n = self._ts.shape[0]
        while self._i < n and self._ts[self._i] <= t_ns:
            i = self._i
            k, buy, px, qty = int(self._kind[i]), bool(self._buy[i]), float(self._px[i]), float(self._qty[i])
            side = self._bids if buy else self._asks
            if k == trade:
                trades.append(MarketTrade(self.spec.coin, "B" if buy else "A", px, qty))
                self._last_px = px
            elif k == clear:
                side.clear()
            else:  # depth, snapshot or BBO: qty is the level's new total
                if k == bbo:  # levels better than the best one are gone
                    for p in [p for p in side if (p > px if buy else p < px)]:
                        del side[p]
                if qty > 0:
                    side[px] = qty
                else:
                    side.pop(px, None)
            self._i += 1
        return trades

    def mid(self, coin: str) -> float:
        """Mid of the replayed book (USD); one side's best if the other is empty; else the last trade."""
        bid = max(self._bids) if self._bids else None
        ask = min(self._asks) if self._asks else None
        if bid is not None and ask is not None:
            return 0.5 * (bid + ask)
        return bid if bid is not None else ask if ask is not None else self._last_px

    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Top 20 levels per side of the replayed book, best first."""
        bids = sorted(self._bids.items(), reverse=True)[:20]
        asks = sorted(self._asks.items())[:20]
        return bids, asks

    def step(self, dt_s: float) -> list[MarketTrade]:
        """Replay the next ``dt_s`` seconds of the recording; return its trades."""
        self._t += int(check_real("dt_s", dt_s, lo=0.0, unit="s") * 1e9)
        return self._replay_until(self._t)


class SimMarket:
    """The event simulator of :mod:`hyper_make.sim` as the local exchange's market, for one trading account.

    The simulator models one participant ("us") among others: our resting orders join its queues (price-time
    priority behind others' displayed size, order and cancel latency, others stepping ahead of large displayed
    size, the fair value leaning away from it, pick-offs). So the local exchange hands this market the resting
    orders of the first account that trades (:meth:`place_order` / :meth:`cancel_order`) and takes the fills
    the simulator produces (:meth:`take_fills`) instead of matching them itself. Others' book is the
    simulator's visible depth; its market orders are not exposed as a trade tape (``step`` returns none).

    An order the simulator drops when it arrives (post-only, the market moved through it during the order
    latency) is reported by :meth:`take_fills` as gone; a cancelled order can still fill during the cancel
    latency, as in the simulator.

    Parameters
    ----------
    spec : the instrument (prices must be multiples of ``cfg.tick_usd``).
    cfg : :class:`hyper_make.sim.MarketConfig` (default: its defaults, a BTC-like market).
    seed : seed of the simulated path.
    """

    def __init__(self, spec: InstrumentSpec, cfg: Any = None, seed: int = 0) -> None:
        from ..sim import Market, MarketConfig

        self.cfg = cfg if cfg is not None else MarketConfig()
        self.sim = Market(self.cfg, seed)
        self.spec = spec
        self.tick_usd = float(self.cfg.tick_usd)
        self._slot: dict[int, int] = {}  # oid -> simulator slot
        self._px: dict[int, float] = {}  # oid -> price (USD)
        self._seen: dict[int, float] = {}  # oid -> size (coins) at the last look

    def mid(self, coin: str) -> float:
        """Visible mid (USD): the middle of the best bid and ask, ours included."""
        bid, ask = self.sim.bbo_ticks()
        return 0.5 * (bid + ask) * self.tick_usd

    def book(self, coin: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """Others' visible depth, 20 ticks per side from their best (USD, coins)."""
        from ..sim.market import P_HALF_SPREAD, S_F, S_T, visible

        s, p = self.sim.s, self.sim.p
        f, t = float(s[S_F]), float(s[S_T])
        obb, oba = math.floor(f - p[P_HALF_SPREAD]), math.ceil(f + p[P_HALF_SPREAD])
        bids = [(k, visible(p, self.sim.deficit, self.sim.tlast, k, 1, f, t)) for k in range(obb, obb - 20, -1)]
        asks = [(k, visible(p, self.sim.deficit, self.sim.tlast, k, -1, f, t)) for k in range(oba, oba + 20)]
        fmt = lambda lv: [(round(k * self.tick_usd, 10), float(q)) for k, q in lv if q > 0]  # noqa: E731
        return fmt(bids), fmt(asks)

    def step(self, dt_s: float) -> list[MarketTrade]:
        """Advance the simulator ``dt_s`` seconds (its market orders fill ours; see :meth:`take_fills`)."""
        self.sim.run_until(self.sim.t_s + check_real("dt_s", dt_s, lo=0.0, unit="s"))
        return []

    # ---- the delegation protocol used by LocalExchange ----------------------------------------------
    def place_order(self, oid: int, is_buy: bool, px: float, sz: float) -> str:
        """Rest an order in the simulator; returns ``""`` or why it cannot (an exchange error string)."""
        tick = round(px / self.tick_usd)
        if abs(tick * self.tick_usd - px) > 1e-9 * max(px, 1.0):
            return "Price must be divisible by tick size."
        slot = self.sim.place(1 if is_buy else -1, int(tick), float(sz))
        if slot < 0:
            return "Too many open orders."
        self._slot[oid], self._px[oid], self._seen[oid] = slot, px, float(sz)
        return ""

    def cancel_order(self, oid: int) -> None:
        """Cancel an order (it may still fill until the simulator's cancel latency has passed)."""
        if oid in self._slot:
            self.sim.cancel(self._slot[oid])

    def take_fills(self) -> tuple[list[tuple[int, float, float]], list[int]]:
        """Fills since the last call as ``(oid, price USD, size coins)``, and the oids no longer in the simulator."""
        fills: list[tuple[int, float, float]] = []
        gone: list[int] = []
        lot = 10.0**self.spec.sz_decimals
        for oid, slot in list(self._slot.items()):
            left = max(float(self.sim.o_size[slot]), 0.0)
            # report whole lots (the exchange's sizes); a partial fill's remainder waits for the next lot
            if left <= 1e-12:
                lots = round(self._seen[oid] * lot)
            else:
                lots = math.floor((self._seen[oid] - left) * lot + 1e-6)
            if lots > 0:
                filled = lots / lot
                fills.append((oid, self._px[oid], filled))
                self._seen[oid] = round(self._seen[oid] - filled, 12)
            if self.sim.o_side[slot] == 0:  # fully filled, cancelled or dropped on arrival: the slot is free
                gone.append(oid)
                del self._slot[oid], self._px[oid], self._seen[oid]
        return fills, gone
