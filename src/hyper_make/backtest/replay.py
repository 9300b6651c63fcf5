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
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from .._validate import check_choice, check_int, check_real
from ..allocate import Allocator
from ..config import AppConfig
from ..data.book import BookGrid, MarketPath, OrderBook, market_path
from ..data.readers import ReadReport, load_events
from ..errors import DataError
from ..metrics import max_drawdown
from ..strategy.orders import CloidFactory
from ..strategy.quoter import Quoter
from ..strategy.record import LadderRecord
from ._core import (
    CROSS_ALL,
    CROSS_OFF,
    CROSS_QTY,
    NEVER,
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
    STATUS_END,
    STATUS_FILLS_FULL,
    fill_dtype,
    order_dtype,
    run_grid,
)
from .venue import ReplayVenue, strategy_clock

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


def replay(
    events: np.ndarray,
    allocator: Allocator,
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    path: MarketPath | None = None,
    grid: BookGrid | None = None,
    learner: Any = None,
) -> ReplayResult:
    """Replay ``events`` (``event_dtype``) with one allocator; see the module docstring.

    ``learner``: for an allocator that learns, the payout posterior to start from (copied, not changed); the
    result's ``learner`` is the posterior at the end.

    Raises
    ------
    DataError
        If the data never shows a two-sided book after the warm-up.
    """
    app = app or AppConfig()
    cfg = config or ReplayConfig()
    wall0 = time.perf_counter()
    grid = grid or BookGrid.around(events, band_frac=cfg.band_frac)
    path = path or market_path(events, grid, use_bbo=cfg.use_bbo)
    n_lv = app.ladder.grid.n_levels
    venue = ReplayVenue(
        events, grid, lot_coins=app.spec.lot_size, maker_fee_frac=app.snapshot.maker_fee_bps * 1e-4,
        margin_usd=app.snapshot.margin_usd, latency_ms=cfg.latency_ms, feed_latency=cfg.latency == "feed",
        queue_kind=QUEUE_MODELS[cfg.queue], queue_n=cfg.queue_n, use_bbo=cfg.use_bbo, slots=8 * n_lv + 32,
        response_latency_ms=cfg.response_latency_ms, cross=CROSS_MODES[cfg.cross],
        market_first=cfg.equal_ts == "market_first",
    )  # fmt: skip
    quoter = Quoter(
        spec=app.spec,
        allocator=allocator,
        prior=app.snapshot,
        ladder=app.ladder,
        config=app.quoter,
        cloids=CloidFactory(cfg.seed),
        rng=np.random.default_rng(cfg.seed),
        learner=copy.deepcopy(learner) if getattr(allocator, "learns", False) else None,
    )
    step = round(cfg.refresh_s * 1e9)
    t0 = venue.t0
    rec = LadderRecord(n_lv, refresh_s=cfg.refresh_s, horizon_s=app.ladder.horizon_s, shapes_every=1)
    mids: list[float] = []
    eq_t: list[float] = []
    eq_v: list[float] = []
    n_refresh = 0
    strategy_s = 0.0
    stop = ""
    t_now = t0 + step
    while venue.advance(t_now) != STATUS_END:
        top = venue.book_top
        if top is not None:
            mids.append(top.mid_usd)
            n_refresh += 1
            eq_t.append((t_now - t0) / 1e9)
            eq_v.append(venue.cash_usd + venue.position_coins * top.mid_usd)
            lt = time.perf_counter()
            if t_now - t0 < cfg.warmup_s * 1e9 or stop:
                quoter.observe(venue.view())  # the warm-up: estimates, no quotes
            else:

                def wait(dt_s: float, t_now: int = t_now) -> bool:
                    return dt_s * 1e9 < step and venue.advance(t_now + round(dt_s * 1e9)) != STATUS_END

                r = quoter.drive(venue, wait)
                stop = r.stop
                if r.ladder is not None:
                    rec.add(r.ladder)
            strategy_s += time.perf_counter() - lt
        t_now += step
    if not mids:
        raise DataError("the replay never saw a two-sided book: nothing to quote against")
    fills = Fills.of(venue.fills[: venue.nfill], grid.tick_usd)
    inv, cash = venue.position_coins, venue.cash_usd
    fee = app.snapshot.maker_fee_bps * 1e-4
    mid_end = float(path.mid_usd[-1])
    total = cash + inv * mid_end
    t_end = int(path.ts_ns[-1])
    s, q, p, m0 = fills.side, fills.qty_coins, fills.price_usd, fills.mid_usd
    spread = float(np.sum(s * (m0 - p) * q))
    m_h = path.mid_at(np.minimum(fills.ts_ns + int(cfg.markout_s * 1e9), t_end)) if len(fills) else m0
    adverse = float(np.sum(s * (m_h - m0) * q))
    fees = -float(np.sum(p * q)) * fee
    markouts: dict[float, float] = {}
    for h in MARKOUT_HORIZONS_S:
        # only fills with the whole horizon inside the data: a clipped markout measures a shorter horizon
        full = fills.ts_ns + int(h * 1e9) <= t_end
        if full.any():
            later = path.mid_at(fills.ts_ns[full] + int(h * 1e9))
            sf, pf, qf = s[full], p[full], q[full]
            markouts[h] = float(np.sum(sf * (later - pf) / pf * 1e4 * qf) / np.sum(qf))
        else:
            markouts[h] = float("nan")
    eq_t.append((t_end - t0) / 1e9)
    eq_v.append(total)
    wall = time.perf_counter() - wall0
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
    diag = {
        "fills": float(len(fills)),
        "filled_coins": float(np.sum(q)),
        "final_inventory_coins": inv,
        "max_abs_inventory_coins": venue.max_abs_position_coins,
        "max_drawdown_usd": max_drawdown(np.asarray(eq_v)),
        "mean_effective_levels": rec.mean_effective_levels,
        "refreshes": float(n_refresh),
        "quoted_refreshes": float(rec.refreshes),
        "post_only_rejects": float(venue.rejects),
        "orders_without_slot": float(venue.no_slot),
        "orders_below_one_lot": float(venue.zero_lot),
        "risk_stops": float(bool(stop)),
        "events": float(events.size),
        "wall_s": wall,
        "strategy_s": strategy_s,
        "events_per_s": events.size / wall if wall > 0 else float("nan"),
        **rec.learned_usd,
    }
    shape_arr = rec.shapes
    if shape_arr.shape[0] > 500:
        shape_arr = shape_arr[np.linspace(0, shape_arr.shape[0] - 1, 500).astype(int)]
    return ReplayResult(
        allocator=getattr(allocator, "name", type(allocator).__name__),
        fills=fills,
        pnl=pnl,
        markouts_bps=markouts,
        equity=(np.asarray(eq_t), np.asarray(eq_v)),
        shapes=shape_arr,
        diagnostics=diag,
        learner=quoter.learner,
    )


def replay_fixed_grid(
    events: np.ndarray,
    depths_bps: np.ndarray,
    level_qty_coins: float,
    *,
    config: ReplayConfig | None = None,
    grid: BookGrid | None = None,
    lot_coins: float = 1e-5,
) -> tuple[Fills, int]:
    """Replay with a fixed ladder entirely in numba (hftbacktest's grid-trading example): every refresh, bids and
    asks at ``depths_bps`` from the mid of the book the strategy holds, ``level_qty_coins`` each; an order still
    on the grid is kept (whatever it has filled), one off it is cancelled, a price without an order gets one. No
    allocator, no Python per refresh: it measures the replay engine itself and is the peer check's hyper_make side
    (``benchmarks/peer_hftbacktest.py``). Orders and fills are whole lots of ``lot_coins`` (default 1e-5,
    Hyperliquid's BTC lot), ``> 0``; the config's latencies, ``latency`` (feed), ``cross``, ``equal_ts`` and queue
    apply as in :func:`replay`.

    Returns the fills (``mid_usd`` at each fill included) and the number of post-only rejects.
    """
    cfg = config or ReplayConfig()
    check_real("lot_coins", lot_coins, lo=0.0, lo_open=True, unit="coins")
    grid = grid or BookGrid.around(events, band_frac=cfg.band_frac)
    book = OrderBook(grid, use_bbo=cfg.use_bbo)
    local = OrderBook(grid, use_bbo=cfg.use_bbo)
    local_ts = strategy_clock(events) if cfg.latency == "feed" else events["exch_ts"].astype(np.int64)
    d = np.asarray(depths_bps, dtype=np.float64)
    slots = 8 * d.size + 32
    orders = np.zeros(slots, dtype=order_dtype)
    orders["live_ts"] = orders["dead_ts"] = orders["done_ts"] = NEVER
    resp_ms = cfg.latency_ms if cfg.response_latency_ms is None else cfg.response_latency_ms
    cap = events.size // 4 + 4 * slots
    while True:
        fills = np.zeros(cap, dtype=fill_dtype)
        o = orders.copy()
        status, nfill, rejects = run_grid(
            book.bid_qty.copy(), book.ask_qty.copy(), book.state.copy(), local.bid_qty.copy(), local.ask_qty.copy(),
            local.state.copy(), events["ev"], events["exch_ts"], local_ts, events["px"], events["qty"], o,
            np.full(grid.n, -1, np.int64), np.full(grid.n, -1, np.int64), fills, grid.tick_usd, lot_coins,
            QUEUE_MODELS[cfg.queue], cfg.queue_n, cfg.use_bbo, CROSS_MODES[cfg.cross], cfg.equal_ts == "market_first",
            round(cfg.refresh_s * 1e9), round(cfg.latency_ms * 1e6), round(resp_ms * 1e6), round(cfg.warmup_s * 1e9),
            d, level_qty_coins,
        )  # fmt: skip
        if status != STATUS_FILLS_FULL:
            return Fills.of(fills[:nfill], grid.tick_usd), int(rejects)
        cap *= 2  # rare: more fills than a quarter of the rows; run again with room


def run_backtest(
    source: str | Path | Sequence[str | Path] | np.ndarray,
    allocators: dict[str, Allocator],
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    on_error: Literal["stop", "skip"] = "stop",
    on_result: Callable[[str, ReplayResult], None] | None = None,
    learner: Any = None,
) -> tuple[dict[str, ReplayResult], ReadReport | None]:
    """Replay the same data once per allocator (same book, same seed). Returns results and the read report.

    With ``on_error="stop"`` a bad line ends the data there: the replay runs on what was read and
    ``report.error`` holds the message (the CLI prints it and exits with code 2 after writing the report).
    ``on_result(name, result)`` is called as each allocator finishes (the CLI keeps them if Ctrl-C comes).
    ``learner``: the payout posterior an allocator that learns starts from (each its own copy).
    """
    cfg = config or ReplayConfig()
    report: ReadReport | None = None
    if isinstance(source, np.ndarray):
        events = source
    else:
        events, report = load_events(source, on_error=on_error, keep_partial=True)
    if events.size == 0:
        raise DataError(f"no event could be read from {source if report is None else report.path}")
    grid = BookGrid.around(events, band_frac=cfg.band_frac)
    path = market_path(events, grid, use_bbo=cfg.use_bbo)
    results = {}
    for name, alloc in allocators.items():
        results[name] = replay(events, alloc, app=app, config=cfg, path=path, grid=grid, learner=learner)
        if on_result is not None:
            on_result(name, results[name])
    return results, report


__all__ = [
    "CROSS_MODES",
    "MARKOUT_HORIZONS_S",
    "QUEUE_MODELS",
    "Fills",
    "ReplayConfig",
    "ReplayResult",
    "replay",
    "replay_fixed_grid",
    "run_backtest",
]
