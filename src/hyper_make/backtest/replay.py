"""Replay backtester: the shared strategy on a recorded feed, filled by queue position, with the PnL accounted.

Every ``refresh_s`` of exchange time the strategy (:class:`~hyper_make.strategy.quoter.Quoter`, the one
``hyper-make run`` and the simulator drive) sees only what happened so far (no look-ahead): the rebuilt book's BBO,
its own σ and volume estimates from what it saw at its refreshes, and its position from the fills it was told of
(``response_latency_ms`` after each; with ``latency="feed"`` the book as the recorder received it). Its plan
goes to :class:`~hyper_make.backtest.venue.ReplayVenue`: a kept order keeps its queue place; a new order (and the
new half of a modify) arrives after ``latency_ms``, is post-only checked on arrival and joins the back of the
queue; a cancel takes effect after ``latency_ms``. Fills follow the rules of :mod:`hyper_make.backtest._core`
(queue model, trades through our price, the book crossing our price, equal timestamps), in whole lots. During the
first ``warmup_s`` the strategy only estimates.

Our orders do not move the replayed market, so self-impact cannot show in the replayed PnL: the impact model's
expected cost of the ladders actually shown (forward + round-trip, scaled from the ladder horizon to each
refresh interval) is reported beside it as ``model_impact_usd``.

PnL split (USD): ``spread_capture = Σ side·(mid_fill - px)·q``; ``adverse_selection = Σ side·(mid_{fill+H} -
mid_fill)·q`` with ``H = markout_s``; ``fees = -Σ px·q·fee``; ``inventory`` = the rest of ``cash + q_T·mid_T``
(price risk carried beyond ``H``). Markouts ``side·(mid_{t+h} - px)/px`` (bps, size-weighted) at 1, 5, 30, 60 s,
over the fills whose horizon ends inside the data (NaN when none does); the adverse-selection split values a fill
within ``H`` of the end at the last mid.

The data is streamed (:mod:`hyper_make.backtest._feed`): read in chunks, replayed by every allocator together
refresh by refresh, each chunk freed once all have passed it; the markouts are resolved as the market path arrives,
the drawdown is taken over every refresh, the equity curve and the ladder shapes kept for the plots are thinned
(every refresh goes to ``equity_<allocator>.csv``). Memory does not grow with the data, only with the fills; the
results are those of the whole data replayed at once, fill for fill, wherever the chunks are cut.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from .._validate import check_choice, check_int, check_real
from ..allocate import Allocator
from ..calibrate import _undecided as warmup_undecided
from ..config import AppConfig
from ..data.book import BookGrid, MarketPath, OrderBook
from ..data.events import EXCH_EVENT, LOCAL_EVENT
from ..data.merge import combine_reports, source_chunks
from ..data.readers import EventReader, ReadReport
from ..errors import DataError, InvalidParameterError
from ..strategy.orders import CloidFactory
from ..strategy.quoter import Quoter
from ..strategy.record import LadderRecord, shape_row
from ._core import (
    _G_K,
    _G_KL,
    _G_NFILL,
    _G_REJ,
    CROSS_ALL,
    CROSS_OFF,
    CROSS_QTY,
    GRID_NEED_EXCH,
    GRID_NEED_LOCAL,
    NEVER,
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
    STATUS_END,
    fill_dtype,
    grid_state,
    order_dtype,
    run_grid,
)
from ._feed import EventFeed, array_chunks, clock_shift_ns, enter
from .venue import ReplayVenue

MARKOUT_HORIZONS_S = (1.0, 5.0, 30.0, 60.0)
QUEUE_MODELS = {"risk_averse": QUEUE_RISK_AVERSE, "power": QUEUE_POWER, "log": QUEUE_LOG}
CROSS_MODES = {"all": CROSS_ALL, "crossed_qty": CROSS_QTY, "off": CROSS_OFF}


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayConfig:
    """How the replay runs (the ladder itself comes from the :class:`~hyper_make.config.AppConfig`).

    Parameters
    ----------
    refresh_s : ladder refresh interval (s), ``> 0``.
    latency_ms : order entry and cancel latency (ms): a request reaches the exchange this long after it is sent,
        ``[0, 60000]``.
    response_latency_ms : the exchange's answers (fills, acknowledgements, post-only rejects, cancels done) reach
        the strategy this long after they happen (ms), ``[0, 60000]``; ``None`` (the default): ``latency_ms``.
    latency : ``"constant"``: the strategy sees the market at exchange time; ``"feed"``: as the recorder received
        it (each row at its ``local_ts``, shifted so that no row is seen before its exchange time), its own feed
        latency, as hftbacktest's local view. Order latency is ``latency_ms`` in both.
    cross : fill on crossing: when the best opposite price moves onto or through our resting price without a
        trade. ``"all"`` (default, as hftbacktest): the whole remainder fills at our price; ``"crossed_qty"``:
        only the quantity that crossed (the increase of the opposite level at or through our price), in whole lots
        rounded down, best price first; ``"off"``: trades only.
    equal_ts : our arrival or cancel and market rows stamped with the same ns: ``"market_first"`` (default, as
        hftbacktest: the rows may all have happened before our request arrived within that clock tick, so it
        neither trades on them nor gets ahead of what they added) or ``"order_first"``.
    queue : ``"risk_averse"``, ``"power"`` (``f(x) = x^queue_n``) or ``"log"`` (``f(x) = log(1 + x)``).
    queue_n : exponent of the power queue model, ``> 0``.
    warmup_s : no quotes during the first seconds (s), while σ is estimated; ``>= 0``.
    markout_s : horizon (s) of the adverse-selection part of the PnL split, ``> 0``.
    use_bbo : apply best-bid/offer messages (Binance ``bookTicker``) to the book besides the depth diffs.
    band_frac : the book's price band around the first prices, as a fraction (0, 1).
    seed : seed of the allocators' random draws.
    """

    refresh_s: float = 1.0
    latency_ms: float = 50.0
    response_latency_ms: float | None = None
    latency: Literal["constant", "feed"] = "constant"
    cross: Literal["all", "crossed_qty", "off"] = "all"
    equal_ts: Literal["market_first", "order_first"] = "market_first"
    queue: Literal["risk_averse", "power", "log"] = "risk_averse"
    queue_n: float = 2.0
    warmup_s: float = 10.0
    markout_s: float = 5.0
    use_bbo: bool = True
    band_frac: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_real("refresh_s", self.refresh_s, lo=0.0, lo_open=True, hi=3600.0, unit="s")
        check_real("latency_ms", self.latency_ms, lo=0.0, hi=60_000.0, unit="ms")
        if self.response_latency_ms is not None:
            check_real("response_latency_ms", self.response_latency_ms, lo=0.0, hi=60_000.0, unit="ms")
        check_choice("latency", self.latency, ("constant", "feed"))
        check_choice("cross", self.cross, tuple(CROSS_MODES))
        check_choice("equal_ts", self.equal_ts, ("market_first", "order_first"))
        check_choice("queue", self.queue, tuple(QUEUE_MODELS))
        check_real("queue_n", self.queue_n, lo=0.0, lo_open=True, hi=100.0)
        check_real("warmup_s", self.warmup_s, lo=0.0, unit="s")
        check_real("markout_s", self.markout_s, lo=0.0, lo_open=True, unit="s")
        check_real("band_frac", self.band_frac, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
        check_int("seed", self.seed, lo=0)


@dataclass(frozen=True, slots=True)
class Fills:
    """Our fills: exchange time (ns), side (+1 bought at our bid, -1 sold at our ask), price (USD), size
    (coins), ladder level, and the mid (USD) when the fill happened."""

    ts_ns: np.ndarray
    side: np.ndarray
    price_usd: np.ndarray
    qty_coins: np.ndarray
    level: np.ndarray
    mid_usd: np.ndarray

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def write_csv(self, path: str | Path) -> None:
        """Write ``ts_ns,side,price_usd,qty_coins,level,mid_usd``: times as integer ns (a float column would round
        them to 256 ns), sides and levels as integers, prices (USD) and sizes (coins) as shortest exact floats."""
        pl.DataFrame(
            {"ts_ns": self.ts_ns.astype(np.int64), "side": self.side.astype(np.int64), "price_usd": self.price_usd,
             "qty_coins": self.qty_coins, "level": self.level.astype(np.int64), "mid_usd": self.mid_usd}
        ).write_csv(path)  # fmt: skip

    @classmethod
    def of(cls, records: np.ndarray, tick_usd: float) -> Fills:
        """The kernel's fill records (:data:`~hyper_make.backtest._core.fill_dtype`) on a ``tick_usd`` grid."""
        f = records
        return cls(f["ts"].copy(), f["side"].copy(), f["tick"] * tick_usd, f["qty"].copy(), f["level"].copy(),
                   f["mid"].copy())  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class ReplayResult:
    """One allocator's replay: fills, PnL split, markouts, model impact beside the replayed PnL, diagnostics."""

    allocator: str
    fills: Fills
    pnl: dict[str, float]
    markouts_bps: dict[float, float]
    equity: tuple[np.ndarray, np.ndarray]
    shapes: np.ndarray
    diagnostics: dict[str, float] = field(default_factory=dict)
    learner: Any = None

    def metrics(self) -> dict[str, float]:
        """Flat metric name -> value (USD, coins, bps, counts) for the report."""
        out = dict(self.pnl)
        out |= {f"markout_{h:g}s_bps": v for h, v in self.markouts_bps.items()}
        out |= self.diagnostics
        return out


class _Thinned:
    """Rows kept for plots in memory bounded by ``cap``: every ``stride``-th row, the stride doubling (and every
    other kept row dropped) whenever more than ``2·cap`` are kept; a run shorter than that keeps every row.

    ``width``: the rows are float arrays of that length, held in one preallocated ``(2·cap + 1, width)`` array
    (:attr:`rows` is a view of it), not one array each."""

    def __init__(self, cap: int, width: int | None = None) -> None:
        self.cap = cap
        self.stride = 1
        self.seen = 0
        self._list: list[object] = []
        self._buf = None if width is None else np.empty((2 * cap + 1, width))
        self._n = 0

    @property
    def rows(self) -> Any:
        """The kept rows: a list, or (``width``) an array of one row each."""
        return self._list if self._buf is None else self._buf[: self._n]

    def _count(self) -> int:
        return len(self._list) if self._buf is None else self._n

    def _append(self, rows: Any) -> None:
        if self._buf is None:
            self._list.extend(rows)
        else:
            k = len(rows)
            self._buf[self._n : self._n + k] = rows
            self._n += k
        if self._count() > 2 * self.cap:
            if self._buf is None:
                self._list = self._list[::2]
            else:
                m = (self._n + 1) // 2
                self._buf[:m] = self._buf[: self._n : 2]
                self._n = m
            self.stride *= 2

    def add(self, row: object) -> None:
        if self.seen % self.stride == 0:
            self._append([row])
        self.seen += 1

    def extend(self, n: int, rows: Callable[[int, int, int], Any]) -> None:
        """:meth:`add` of ``n`` rows; ``rows(start, stop, step)`` gives the rows ``range(start, stop, step)`` (a list,
        or with ``width`` an array of them), asked only for the rows kept, a slice at a time."""
        i = 0
        while i < n:
            off = -self.seen % self.stride  # rows before the next one kept
            if i + off >= n:
                self.seen += n - i
                return
            i += off
            self.seen += off
            # kept rows every stride until the list would pass 2·cap (the add that does so halves it)
            k = min(2 * self.cap + 1 - self._count(), (n - 1 - i) // self.stride + 1)
            step = (k - 1) * self.stride + 1
            self.seen += step
            self._append(rows(i, i + k * self.stride, self.stride))
            i += step


class _Markouts:
    """The mid (USD) at ``fill time + h`` for every fill and horizon ``h`` (ns), resolved as the market path's
    pieces arrive: ``mid_at(T)`` is the last BBO change at or before ``T``, known once a piece has a change after
    ``T`` (or the data has ended: then it is the last mid), as :meth:`MarketPath.mid_at` on the whole path."""

    def __init__(self, horizons_ns: Sequence[int]) -> None:
        self.h = tuple(dict.fromkeys(horizons_ns))
        self.done = dict.fromkeys(self.h, 0)
        self.parts: dict[int, list[np.ndarray]] = {h: [] for h in self.h}
        self.last_ts: int | None = None  # the last BBO change so far (ns) and its mid (USD)
        self.last_mid = float("nan")
        self.first_mid = float("nan")

    def add(self, piece: MarketPath, fill_ts: np.ndarray) -> None:
        """A piece of the path; ``fill_ts``: every fill so far (ns, in time order; the ones before the piece's last
        change are all in it)."""
        q = piece.ts_ns
        if q.size == 0:
            return
        mids = piece.mid_usd
        last = int(q[-1])
        fallback = self.last_mid if self.last_ts is not None else float(mids[0])
        for h in self.h:
            k0 = self.done[h]
            targets = fill_ts[k0:] + h
            k1 = k0 + int(np.searchsorted(targets, last, side="left"))  # strictly before the last change: final
            if k1 > k0:
                i = np.searchsorted(q, targets[: k1 - k0], side="right") - 1
                self.parts[h].append(np.where(i >= 0, mids[np.maximum(i, 0)], fallback))
                self.done[h] = k1
        if self.last_ts is None:
            self.first_mid = float(mids[0])
        self.last_ts, self.last_mid = last, float(mids[-1])

    def at(self, h: int, n_fills: int, last_mid: float | None = None) -> np.ndarray:
        """Mids at ``+h`` of the first ``n_fills`` fills; those not resolved yet (their time is at or after the last
        change so far) take the last mid (``last_mid`` if given)."""
        got = np.concatenate(self.parts[h]) if self.parts[h] else np.zeros(0)
        rest = np.full(max(n_fills - got.size, 0), self.last_mid if last_mid is None else last_mid)
        return np.concatenate([got, rest])[:n_fills]


class _CsvOut:
    """A CSV written as the replay goes (flushed at each chunk boundary and every ``FLUSH_ROWS`` rows), so that a
    run that fails or is interrupted keeps what it had written."""

    FLUSH_ROWS = 8192

    def __init__(self, path: Path, columns: Sequence[str], *, append: bool) -> None:
        self.path = path
        self.columns = tuple(columns)
        self.header = not (append and path.exists() and path.stat().st_size > 0)
        if not append:
            path.write_bytes(b"")
        self.pending: list[dict[str, np.ndarray]] = []
        self.n = 0

    def add(self, cols: dict[str, np.ndarray]) -> None:
        n = len(next(iter(cols.values())))
        if n:
            self.pending.append(cols)
            self.n += n
        if self.n >= self.FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending and not self.header:
            return
        cols = {c: np.concatenate([p[c] for p in self.pending]) if self.pending else np.zeros(0) for c in self.columns}
        with self.path.open("ab") as fh:
            pl.DataFrame(cols).write_csv(fh, include_header=self.header)
        self.header = False
        self.pending, self.n = [], 0


def _fill_columns(records: np.ndarray, tick_usd: float) -> dict[str, np.ndarray]:
    f = Fills.of(records, tick_usd)
    return {"ts_ns": f.ts_ns.astype(np.int64), "side": f.side.astype(np.int64), "price_usd": f.price_usd,
            "qty_coins": f.qty_coins, "level": f.level.astype(np.int64), "mid_usd": f.mid_usd}  # fmt: skip


class _Run:
    """One allocator's replay on a shared :class:`~hyper_make.backtest._feed.EventFeed`, one refresh per
    :meth:`step` (several runs step in lockstep over one read of the data); :meth:`result` at any point."""

    def __init__(
        self,
        feed: EventFeed,
        allocator: Allocator,
        app: AppConfig,
        cfg: ReplayConfig,
        *,
        warmup_s: Callable[[], float | None],
        out: tuple[Path, Path] | None = None,
        append: bool = False,
        learner: Any = None,
        compiled: bool = True,
    ) -> None:
        n_lv = app.ladder.grid.n_levels
        self.app, self.cfg, self.feed = app, cfg, feed
        self.allocator = allocator
        self.venue = ReplayVenue(
            feed, feed.grid, lot_coins=app.spec.lot_size, maker_fee_frac=app.snapshot.maker_fee_bps * 1e-4,
            margin_usd=app.snapshot.margin_usd, latency_ms=cfg.latency_ms, feed_latency=cfg.latency == "feed",
            queue_kind=QUEUE_MODELS[cfg.queue], queue_n=cfg.queue_n, use_bbo=cfg.use_bbo, slots=8 * n_lv + 32,
            response_latency_ms=cfg.response_latency_ms, cross=CROSS_MODES[cfg.cross],
            market_first=cfg.equal_ts == "market_first",
        )  # fmt: skip
        self.quoter = Quoter(
            spec=app.spec,
            allocator=allocator,
            prior=app.snapshot,
            ladder=app.ladder,
            config=app.quoter,
            cloids=CloidFactory(cfg.seed),
            rng=np.random.default_rng(cfg.seed),
            learner=copy.deepcopy(learner) if getattr(allocator, "learns", False) else None,
        )
        self.step_ns = round(cfg.refresh_s * 1e9)
        self.t0 = self.venue.t0
        self.rec = LadderRecord(n_lv, refresh_s=cfg.refresh_s, horizon_s=app.ladder.horizon_s)
        self.n_lv = n_lv
        self.shapes = _Thinned(500, 2 * self.n_lv)
        self.curve = _Thinned(50_000)
        self.peak = -math.inf
        self.drawdown = 0.0
        self.n_refresh = 0
        self.strategy_s = 0.0
        self.stop = ""
        self.warmup_s = warmup_s
        self.marks = _Markouts([int(cfg.markout_s * 1e9), *(int(h * 1e9) for h in MARKOUT_HORIZONS_S)])
        self.fills_out = self.equity_out = None
        if out is not None:
            self.fills_out = _CsvOut(out[0], FILL_COLUMNS, append=append)
            self.equity_out = _CsvOut(out[1], ("t_s", "equity_usd"), append=append)
        self._written = 0
        #: why this run steps in Python (``""``: the compiled loop, :mod:`._loop`, takes over before the first order)
        self.loop_reason = _compiled_reason(self.quoter) if compiled else "compiled=False"
        self._loop: Any = None

    def step(self, t_now: int) -> bool:
        """The refresh at ``t_now`` (exchange ns); ``False`` once the data has ended."""
        if self._loop is not None:
            return self._loop.step(t_now)
        if not self.loop_reason:
            decided = getattr(self.warmup_s, "decided", None)
            if decided is not None and decided():  # the warm-up is known: it cannot change under the loop
                from ._loop import CompiledRun

                self._loop = CompiledRun(self, t_now, self.warmup_s())
                return self._loop.step(t_now)
        venue = self.venue
        if venue.advance(t_now) == STATUS_END:
            self._take()
            return False
        top = venue.book_top
        if top is not None:
            self.n_refresh += 1
            self._equity((t_now - self.t0) / 1e9, venue.cash_usd + venue.position_coins * top.mid_usd)
            lt = time.perf_counter()
            warm = self.warmup_s()
            if warm is None or t_now - self.t0 < warm * 1e9 or self.stop:
                self.quoter.observe(venue.view())  # the warm-up: estimates, no quotes
            else:
                step = self.step_ns

                def wait(dt_s: float, t_now: int = t_now) -> bool:
                    return dt_s * 1e9 < step and venue.advance(t_now + round(dt_s * 1e9)) != STATUS_END

                r = self.quoter.drive(venue, wait)
                self.stop = r.stop
                if r.ladder is not None:
                    self.rec.add(r.ladder)
                    self.shapes.add(shape_row(r.ladder, self.n_lv))
            self.strategy_s += time.perf_counter() - lt
        self._take()
        return True

    def resume_ns(self) -> int | None:
        """The lockstep's first refresh time (exchange ns) at which :meth:`step` does something, when its compiled
        loop is ahead of the clock; ``None`` when every refresh is a step."""
        if self._loop is None or self._loop.done:
            return None
        return self._loop.resume_ns()

    def _equity(self, t_s: float, v: float) -> None:
        self.curve.add((t_s, v))
        self.peak = max(self.peak, v)
        self.drawdown = max(self.drawdown, self.peak - v)
        if self.equity_out is not None:
            self.equity_out.add({"t_s": np.array([t_s]), "equity_usd": np.array([v])})

    def _equity_rows(self, t_s: np.ndarray, v: np.ndarray) -> None:
        """:meth:`_equity` of many rows (times s from the start, equity USD): the same running peak and drawdown."""
        n = v.shape[0]
        if n:
            tl, vl = t_s.tolist(), v.tolist()
            self.curve.extend(n, lambda a, b, c: list(zip(tl[a:b:c], vl[a:b:c], strict=True)))
            # the running peak and the largest fall below it, as row by row (max is exact)
            peaks = np.maximum.accumulate(np.concatenate(([self.peak], v)))[1:]
            self.drawdown = max(self.drawdown, float(np.max(peaks - v)))
            self.peak = float(peaks[-1])
        if self.equity_out is not None:
            self.equity_out.add({"t_s": t_s.copy(), "equity_usd": v.copy()})

    def _take(self) -> None:
        """The path pieces the venue has finished (markouts), and the new fills to the CSV."""
        venue = self.venue
        pieces = venue.take_pieces()
        for piece in pieces:
            self.marks.add(piece, venue.fills["ts"][: venue.nfill])
        if self.fills_out is not None and venue.nfill > self._written:
            self.fills_out.add(_fill_columns(venue.fills[self._written : venue.nfill], venue.tick_usd))
            self._written = venue.nfill
        if pieces:  # a chunk boundary: what was computed so far reaches the disk
            self.flush()

    def flush(self) -> None:
        """Write out the CSV rows still held."""
        for out in (self.fills_out, self.equity_out):
            if out is not None:
                out.flush()

    def result(self, wall_s: float) -> ReplayResult:
        """The replay so far: the whole data once :meth:`step` has returned ``False``; before that (an interrupted
        run), up to the venue's clock, valued at the venue's mid then.

        Raises
        ------
        DataError
            If the data never showed a two-sided book.
        """
        venue, cfg, marks = self.venue, self.cfg, self.marks
        partial = not venue.ended
        top = venue.book.mid_usd
        if self.n_refresh == 0 or (marks.last_ts is None and not (partial and math.isfinite(top))):
            raise DataError("the replay never saw a two-sided book: nothing to quote against")
        fills = Fills.of(venue.fills[: venue.nfill], venue.tick_usd)
        inv, cash = venue.position_coins, venue.cash_usd
        fee = self.app.snapshot.maker_fee_bps * 1e-4
        if partial and math.isfinite(top):  # the chunk under way has not reached the markouts yet
            mid_end, t_end = top, venue.clock
        else:
            mid_end, t_end = marks.last_mid, int(marks.last_ts)  # type: ignore[arg-type]
        total = cash + inv * mid_end
        n = len(fills)
        s, q, p, m0 = fills.side, fills.qty_coins, fills.price_usd, fills.mid_usd
        spread = float(np.sum(s * (m0 - p) * q))
        # the adverse part at min(t + H, t_end): a horizon past the last change takes the last mid, as mid_at does
        m_h = marks.at(int(cfg.markout_s * 1e9), n, mid_end) if n else m0
        adverse = float(np.sum(s * (m_h - m0) * q))
        fees = -float(np.sum(p * q)) * fee
        markouts: dict[float, float] = {}
        for h in MARKOUT_HORIZONS_S:
            # only fills with the whole horizon inside the data: a clipped markout measures a shorter horizon
            full = fills.ts_ns + int(h * 1e9) <= t_end
            if full.any():
                later = marks.at(int(h * 1e9), n, mid_end)[full]
                sf, pf, qf = s[full], p[full], q[full]
                markouts[h] = float(np.sum(sf * (later - pf) / pf * 1e4 * qf) / np.sum(qf))
            else:
                markouts[h] = float("nan")
        eq = [*self.curve.rows, ((t_end - self.t0) / 1e9, total)]
        eq_t = np.array([e[0] for e in eq])  # type: ignore[index]
        eq_v = np.array([e[1] for e in eq])  # type: ignore[index]
        drawdown = max(self.drawdown, max(self.peak, total) - total)
        rec = self.rec
        pnl = {
            "pnl_usd": total,
            "spread_capture_usd": spread,
            "adverse_selection_usd": adverse,
            "fees_usd": fees,
            "inventory_usd": total - spread - adverse - fees,
            "model_impact_usd": rec.model_impact_usd,
            "pnl_minus_model_impact_usd": total + rec.model_impact_usd,
            "model_expected_pnl_usd": rec.model_expected_usd,
        }
        events = self.feed.rows
        diag = {
            "fills": float(n),
            "filled_coins": float(np.sum(q)),
            "final_inventory_coins": inv,
            "max_abs_inventory_coins": venue.max_abs_position_coins,
            "max_drawdown_usd": drawdown,
            "mean_effective_levels": rec.mean_effective_levels,
            "refreshes": float(self.n_refresh),
            "quoted_refreshes": float(rec.refreshes),
            "post_only_rejects": float(venue.rejects),
            "orders_without_slot": float(venue.no_slot),
            "orders_below_one_lot": float(venue.zero_lot),
            "risk_stops": float(bool(self.stop)),
            "events": float(events),
            "wall_s": wall_s,
            "strategy_s": self.strategy_s,
            "events_per_s": events / wall_s if wall_s > 0 else float("nan"),
            **rec.learned_usd,
        }
        shape_arr = self.shapes.rows.copy()
        if shape_arr.shape[0] > 500:
            shape_arr = shape_arr[np.linspace(0, shape_arr.shape[0] - 1, 500).astype(int)]
        return ReplayResult(
            allocator=getattr(self.allocator, "name", type(self.allocator).__name__),
            fills=fills,
            pnl=pnl,
            markouts_bps=markouts,
            equity=(eq_t, eq_v),
            shapes=shape_arr,
            diagnostics=diag,
            learner=self.quoter.learner,
        )


def _compiled_reason(quoter: Quoter) -> str:
    """Why a replay of ``quoter`` steps in Python (:func:`._loop.loop_reason`), ``""`` when it can run compiled."""
    if quoter._fast is None:  # checked first: the compiled loop's module loads the fast path's kernels
        return "the fast path is off (quoter.fast_path = false) or cannot load"
    from ._loop import loop_reason

    return loop_reason(quoter)


#: Columns of ``fills_<allocator>.csv`` (:meth:`Fills.write_csv`).
FILL_COLUMNS = ("ts_ns", "side", "price_usd", "qty_coins", "level", "mid_usd")


class ReplayInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_backtest`: ``results`` holds every allocator's replay up to the interruption (the
    runs step together, so all of them are partial), ``report`` the read report so far."""

    def __init__(self, results: dict[str, ReplayResult], report: ReadReport | None) -> None:
        super().__init__("interrupted")
        self.results = results
        self.report = report


def _lockstep(runs: dict[str, _Run], t0: int, step_ns: int, wall0: float) -> dict[str, ReplayResult]:
    """Step every run refresh by refresh until each has reached the end of the data (they share one read: the
    feed frees a chunk once the slowest run has passed it)."""
    live = list(runs.values())
    t_now = t0 + step_ns
    try:
        while live:
            live = [r for r in live if r.step(t_now)]
            t_now += step_ns
            # runs in their compiled loop are ahead of the clock until they need a chunk: on to the first one due
            due = [r.resume_ns() for r in live]
            if due and None not in due:
                t_now = max(t_now, min(due))  # type: ignore[type-var]
    finally:
        for r in runs.values():
            r.flush()
    wall = time.perf_counter() - wall0
    return {name: r.result(wall) for name, r in runs.items()}


def replay(
    events: np.ndarray,
    allocator: Allocator,
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    grid: BookGrid | None = None,
    chunk_rows: int = 262_144,
    learner: Any = None,
    compiled: bool = True,
) -> ReplayResult:
    """Replay ``events`` (``event_dtype``) with one allocator, ``chunk_rows`` rows at a time; see the module
    docstring (:func:`run_backtest` replays files, in memory that does not grow with them). ``learner``: for an
    allocator that learns, the payout posterior to start from (copied); the result's ``learner`` is the one at the end.
    ``compiled``: run the strategy's refreshes in the compiled loop (:mod:`._loop`) where it applies (the same result
    as the Python step, faster); ``False``: the Python step every refresh (the reference).

    Raises
    ------
    DataError
        If the data never shows a two-sided book after the warm-up.
    """
    res, _ = run_backtest(
        events,
        {"_": allocator},
        app=app,
        config=config,
        grid=grid,
        chunk_rows=chunk_rows,
        learner=learner,
        compiled=compiled,
    )
    return res["_"]


def replay_fixed_grid(
    events: np.ndarray | EventFeed,
    depths_bps: np.ndarray,
    level_qty_coins: float,
    *,
    config: ReplayConfig | None = None,
    grid: BookGrid | None = None,
    lot_coins: float = 1e-5,
    chunk_rows: int = 262_144,
) -> tuple[Fills, int]:
    """Replay with a fixed ladder entirely in numba (hftbacktest's grid-trading example): every refresh, bids and
    asks at ``depths_bps`` from the mid of the book the strategy holds, ``level_qty_coins`` each; an order still
    on the grid is kept (whatever it has filled), one off it is cancelled, a price without an order gets one. No
    allocator, no Python per refresh: it measures the replay engine itself and is the peer check's hyper_make side
    (``benchmarks/peer_hftbacktest.py``). Orders and fills are whole lots of ``lot_coins`` (default 1e-5,
    Hyperliquid's BTC lot), ``> 0``; the config's latencies, ``latency`` (feed), ``cross``, ``equal_ts`` and queue
    apply as in :func:`replay`.

    ``events`` is an array (replayed ``chunk_rows`` rows at a time) or an :class:`~hyper_make.backtest._feed.EventFeed`
    (a reader's chunks: memory holds a chunk or two, whatever the length of the data; with ``latency="feed"`` the
    feed must carry the receive clock). The numba kernel (:func:`~hyper_make.backtest._core.run_grid`) stops at the
    end of each side's chunk and resumes on the next with everything else carried.

    Returns the fills (``mid_usd`` at each fill included) and the number of post-only rejects.
    """
    cfg = config or ReplayConfig()
    check_real("lot_coins", lot_coins, lo=0.0, lo_open=True, unit="coins")
    feed_latency = cfg.latency == "feed"
    if isinstance(events, EventFeed):
        feed = events
        if feed_latency and feed.clock_shift is None:
            raise InvalidParameterError("latency='feed' needs an EventFeed built with the receive clock")
    else:
        shift = clock_shift_ns([events]) if feed_latency else None
        feed = EventFeed(array_chunks(events, chunk_rows), grid=grid, band_frac=cfg.band_frac, use_bbo=cfg.use_bbo,
                         clock_shift=shift)  # fmt: skip
    grid = feed.grid
    book = OrderBook(grid, use_bbo=cfg.use_bbo)
    local = OrderBook(grid, use_bbo=cfg.use_bbo)
    d = np.asarray(depths_bps, dtype=np.float64)
    slots = 8 * d.size + 32
    orders = np.zeros(slots, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = orders["done_ts"] = NEVER
    bid_slot = np.full(grid.n, -1, np.int64)
    ask_slot = np.full(grid.n, -1, np.int64)
    resp_ms = cfg.latency_ms if cfg.response_latency_ms is None else cfg.response_latency_ms
    fills = np.zeros(65_536 + 4 * slots, dtype=fill_dtype)
    out: list[np.ndarray] = []
    xcur, lcur = feed.cursor(), feed.cursor()
    xc = lc = feed.get(0)
    assert xc is not None  # a feed has at least one chunk
    gs = grid_state(_first_seen(feed), round(cfg.refresh_s * 1e9))
    while True:
        status = run_grid(
            book.bid_qty, book.ask_qty, book.state, local.bid_qty, local.ask_qty, local.state, xc.ev, xc.exch_ts,
            xc.px, xc.qty, lc.ev, lc.local_ts, lc.px, lc.qty, feed.is_last(xc.index), feed.is_last(lc.index), orders,
            bid_slot, ask_slot, fills, gs, grid.tick_usd, lot_coins, QUEUE_MODELS[cfg.queue], cfg.queue_n,
            cfg.use_bbo, CROSS_MODES[cfg.cross], cfg.equal_ts == "market_first", round(cfg.refresh_s * 1e9),
            round(cfg.latency_ms * 1e6), round(resp_ms * 1e6), round(cfg.warmup_s * 1e9), d, level_qty_coins,
        )  # fmt: skip
        nfill = int(gs[_G_NFILL])
        if nfill:
            out.append(fills[:nfill].copy())
            gs[_G_NFILL] = 0
        if status == GRID_NEED_EXCH:
            xc = feed.get(xc.index + 1)  # type: ignore[assignment]  # not the last: it exists
            enter(feed.band(xc.index, book.state), book, bid_slot, ask_slot)
            gs[_G_K] = 0
        elif status == GRID_NEED_LOCAL:
            lc = feed.get(lc.index + 1)  # type: ignore[assignment]
            enter(feed.band_for_strategy(lc.index, book, xc, int(gs[_G_K])), local)
            gs[_G_KL] = 0
        elif status == STATUS_END:
            break
        feed.release(xcur, xc.index)
        feed.release(lcur, lc.index)
    records = np.concatenate(out) if out else np.zeros(0, dtype=fill_dtype)
    return Fills.of(records, grid.tick_usd), int(gs[_G_REJ])


def _first_seen(feed: EventFeed) -> int:
    """The first time either side sees a row (ns): the first exchange row's ``exch_ts`` or the first strategy
    row's receive time, whichever is earlier (the fixed grid's clock starts there)."""
    t_exch = t_local = NEVER
    i = 0
    while (t_exch == NEVER or t_local == NEVER) and (c := feed.get(i)) is not None:
        if t_exch == NEVER:
            j = np.flatnonzero((c.ev & np.uint64(EXCH_EVENT)) != 0)
            t_exch = int(c.exch_ts[j[0]]) if j.size else NEVER
        if t_local == NEVER:
            j = np.flatnonzero((c.ev & np.uint64(LOCAL_EVENT)) != 0)
            t_local = int(c.local_ts[j[0]]) if j.size else NEVER
        i += 1
    return min(t_exch, t_local)


class _WarmupGate:
    """The strategy's warm-up (s from the start) as the reader knows it now (:func:`_book_warmup_gate`)."""

    def __init__(self, report: ReadReport | None, warmup_s: float, t0: int) -> None:
        self.report, self.warmup_s, self.t0 = report, warmup_s, t0

    def __call__(self) -> float | None:
        report, warmup_s = self.report, self.warmup_s
        if report is None:
            return warmup_s
        if warmup_undecided(report):
            return None
        end = report.book_warmup_end_ns
        if end is None:
            return warmup_s
        if end == (1 << 63) - 1:
            return None
        need_s = (end - self.t0) / 1e9
        return need_s if need_s > warmup_s else warmup_s

    def decided(self) -> bool:
        """Whether the answer is final: no reader, or the book started from a snapshot, or its warm-up has ended
        (the compiled loop takes the warm-up as a number, :mod:`._loop`)."""
        report = self.report
        if report is None:
            return True
        if warmup_undecided(report):
            return False
        w = report.warmups
        return not w or w[0].reason != "no_snapshot" or w[0].end_ns is not None


def _book_warmup_gate(report: ReadReport | None, warmup_s: float, t0: int) -> _WarmupGate:
    """The strategy's warm-up (s from the start) as the reader knows it now: ``warmup_s``, extended to the end of the
    book's warm-up of a recording without a snapshot (:attr:`ReadReport.book_warmup_end_ns`), ``None`` (no quotes)
    while the reader cannot yet tell where that ends (it is then later than anything replayed: the reader is ahead)
    or when it never ends."""
    return _WarmupGate(report, warmup_s, t0)


def run_backtest(
    source: str | Path | Sequence[str | Path] | np.ndarray,
    allocators: dict[str, Allocator],
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    on_error: Literal["stop", "skip"] = "stop",
    on_result: Callable[[str, ReplayResult], None] | None = None,
    grid: BookGrid | None = None,
    chunk_rows: int = 262_144,
    out_dir: Path | None = None,
    append: bool = False,
    progress: Callable[[int, int], None] | None = None,
    info: dict[str, float] | None = None,
    learner: Any = None,
    compiled: bool = True,
) -> tuple[dict[str, ReplayResult], ReadReport | None]:
    """Replay the same data with every allocator (same book, same seed), in one read of the data: the data is read
    ``chunk_rows`` events at a time and the allocators' replays step refresh by refresh together over it, so memory
    holds a chunk or two, whatever the length of the data (several files: :func:`source_chunks`).

    Returns the results and the read report. With ``on_error="stop"`` a bad line ends the data there: the replay
    runs on what was read and ``report.error`` holds the message (the CLI prints it and exits with code 2 after
    writing the report). ``on_result(name, result)`` is called for each allocator at the end. A recording without
    a book snapshot is not quoted before its book's warm-up has ended (``warmup_s`` is extended to cover it);
    ``info["book_warmup_s"]`` gets that warm-up's length from the start (s; 0 with a snapshot).

    With ``out_dir``, ``fills_<allocator>.csv`` (:data:`FILL_COLUMNS`) and ``equity_<allocator>.csv`` (``t_s`` from
    the start, ``equity_usd`` at each refresh) are written as the replay goes (appended to with ``append``), so a
    run that fails keeps what it had computed. ``progress(done_bytes, total_bytes)`` is called as chunks are read.
    ``learner``: the payout posterior an allocator that learns starts from (each its own copy). ``compiled``: each
    allocator's refreshes run in the compiled loop (:mod:`._loop`: the Python step's result, many refreshes per call)
    unless its refresh core cannot compile (an allocator that learns, the fast path off, a GLFT touch: the run's
    ``loop_reason`` says why) or, until it is known, the book's warm-up of a recording without a snapshot.

    Raises
    ------
    ReplayInterrupted
        On Ctrl-C, with every allocator's replay so far.
    DataError
        If no event could be read or the data never shows a two-sided book.
    """
    cfg = config or ReplayConfig()
    app = app or AppConfig()
    wall0 = time.perf_counter()
    feed_latency = cfg.latency == "feed"
    readers: list[EventReader] = []
    if isinstance(source, np.ndarray):
        shift = clock_shift_ns([source]) if feed_latency else None
        chunks: Iterator[np.ndarray] = array_chunks(source, chunk_rows)
        paths: list[Path] = []
    else:
        paths = [Path(source)] if isinstance(source, (str, Path)) else [Path(x) for x in source]
        if not paths:
            raise InvalidParameterError("'source' must name at least one file; got none")
        # the receive clock's shift is the largest lag over the whole data: one pass before the replay
        shift = (
            clock_shift_ns(_quiet(source_chunks(paths, on_error=on_error, chunk_rows=chunk_rows)))
            if feed_latency
            else None
        )
        chunks = source_chunks(paths, on_error=on_error, chunk_rows=chunk_rows, readers=readers)
    total = sum(p.stat().st_size for p in paths if p.is_file())

    def tick(_rows: int) -> None:
        if progress is not None:
            progress(sum(r.bytes_read() for r in readers), total)

    def report_now() -> ReadReport | None:
        return combine_reports([r.report for r in readers]) if readers else None

    try:
        feed = EventFeed(chunks, grid=grid, band_frac=cfg.band_frac, use_bbo=cfg.use_bbo, clock_shift=shift,
                         on_chunk=tick)  # fmt: skip
    except DataError as exc:
        rep = report_now()
        where = rep.path if rep is not None else ("the events given" if isinstance(source, np.ndarray) else source)
        raise DataError(
            f"no event could be read from {where}" + (f" ({rep.error})" if rep and rep.error else "")
        ) from exc
    first = readers[0].report if readers else None
    gate = _book_warmup_gate(first, cfg.warmup_s, feed.t0)
    runs = {
        name: _Run(feed, alloc, app, cfg, warmup_s=gate, append=append, learner=learner, compiled=compiled,
                   out=None if out_dir is None else (out_dir / f"fills_{name}.csv", out_dir / f"equity_{name}.csv"))
        for name, alloc in allocators.items()
    }  # fmt: skip
    try:
        results = _lockstep(runs, feed.t0, round(cfg.refresh_s * 1e9), wall0)
    except KeyboardInterrupt:
        wall = time.perf_counter() - wall0
        partial = {}
        for name, r in runs.items():
            with contextlib.suppress(DataError):
                partial[name] = r.result(wall)
        raise ReplayInterrupted(partial, report_now()) from None
    if info is not None:
        end = first.book_warmup_end_ns if first is not None else None
        # the largest exchange time the books walked: the data's last (every run walks it to the end)
        last = max((c for r in runs.values() if (c := r.venue.path.clock_ns) is not None), default=None)
        if end is not None and last is not None:
            info["book_warmup_s"] = max((min(end, last + 1) - feed.t0) / 1e9, 0.0)
        else:
            info["book_warmup_s"] = 0.0
        info["recentres"] = float(feed.recentres)
    if on_result is not None:
        for name, res in results.items():
            on_result(name, res)
    return results, report_now()


def _quiet(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``chunks`` up to a read error (the replay's own read reports it)."""
    with contextlib.suppress(DataError):
        yield from chunks


__all__ = [
    "CROSS_MODES",
    "FILL_COLUMNS",
    "MARKOUT_HORIZONS_S",
    "QUEUE_MODELS",
    "Fills",
    "ReplayConfig",
    "ReplayInterrupted",
    "ReplayResult",
    "replay",
    "replay_fixed_grid",
    "run_backtest",
    "source_chunks",
]
