"""Replay backtester: quote a ladder on recorded market data, fill it by queue position, account the PnL.

Every ``refresh_s`` of exchange time the strategy sees only what happened so far (no look-ahead): the rebuilt
book's BBO, σ from the mids it sampled at its own refreshes, the traded volume so far, and the inventory from
its own fills. It builds the ladder with :func:`hyper_make.ladder.build_ladder` and sends it: an order at the
same price as a resting one with no more size keeps its queue position (shrunk); every other order is new
(post-only: rejected if it would cross when it arrives) and joins the back of the queue, and unmatched resting
orders are cancelled. Orders arrive and cancels take effect after the latency (constant, or the feed's own
delay on top of it). Fills follow the queue model of :mod:`hyper_make.backtest._core`.

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

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .._validate import check_choice, check_int, check_real
from ..allocate import Allocator
from ..config import AppConfig
from ..data.book import BookGrid, MarketPath, OrderBook, market_path
from ..data.events import EXCH_EVENT, TRADE_EVENT, kinds
from ..data.readers import ReadReport, load_events
from ..errors import DataError
from ..ladder import Ladder, build_ladder
from ..metrics import max_drawdown
from ._core import (
    QUEUE_LOG,
    QUEUE_POWER,
    QUEUE_RISK_AVERSE,
    STATUS_END,
    STATUS_FILLS_FULL,
    run_grid,
    run_until,
    send_orders,
)

MARKOUT_HORIZONS_S = (1.0, 5.0, 30.0, 60.0)
QUEUE_MODELS = {"risk_averse": QUEUE_RISK_AVERSE, "power": QUEUE_POWER, "log": QUEUE_LOG}
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayConfig:
    """How the replay runs (the ladder itself comes from the :class:`~hyper_make.config.AppConfig`).

    Parameters
    ----------
    refresh_s : ladder refresh interval (s), ``> 0``.
    latency_ms : order entry and cancel latency (ms), ``>= 0``.
    latency : ``"constant"`` (``latency_ms``) or ``"feed"``: ``latency_ms`` plus the feed's current delay
        (``local_ts - exch_ts`` of the latest event minus its running minimum, which absorbs the clock offset).
    queue : ``"risk_averse"``, ``"power"`` (``f(x) = x^queue_n``) or ``"log"`` (``f(x) = log(1 + x)``).
    queue_n : exponent of the power queue model, ``> 0``.
    warmup_s : no quotes during the first seconds (s), while σ is estimated; ``>= 0``.
    sigma_window : refresh samples in the rolling σ estimate, ``>= 5``.
    markout_s : horizon (s) of the adverse-selection part of the PnL split, ``> 0``.
    use_bbo : apply best-bid/offer messages (Binance ``bookTicker``) to the book besides the depth diffs.
    band_frac : the book's price band around the first prices, as a fraction (0, 1).
    seed : seed of the allocators' random draws.
    """

    refresh_s: float = 1.0
    latency_ms: float = 50.0
    latency: Literal["constant", "feed"] = "constant"
    queue: Literal["risk_averse", "power", "log"] = "risk_averse"
    queue_n: float = 2.0
    warmup_s: float = 10.0
    sigma_window: int = 300
    markout_s: float = 5.0
    use_bbo: bool = True
    band_frac: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        check_real("refresh_s", self.refresh_s, lo=0.0, lo_open=True, hi=3600.0, unit="s")
        check_real("latency_ms", self.latency_ms, lo=0.0, hi=60_000.0, unit="ms")
        check_choice("latency", self.latency, ("constant", "feed"))
        check_choice("queue", self.queue, tuple(QUEUE_MODELS))
        check_real("queue_n", self.queue_n, lo=0.0, lo_open=True, hi=100.0)
        check_real("warmup_s", self.warmup_s, lo=0.0, unit="s")
        check_int("sigma_window", self.sigma_window, lo=5)
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

    def metrics(self) -> dict[str, float]:
        """Flat metric name -> value (USD, coins, bps, counts) for the report."""
        out = dict(self.pnl)
        out |= {f"markout_{h:g}s_bps": v for h, v in self.markouts_bps.items()}
        out |= self.diagnostics
        return out


def _estimate_sigma(mids: list[float], window: int) -> float:
    """σ of log mid changes between refreshes over the last ``window`` samples (fraction per refresh)."""
    x = np.log(np.asarray(mids[-window - 1 :]))
    r = np.diff(x)
    return float(np.std(r, ddof=1)) if r.size >= 2 else float("nan")


def replay(
    events: np.ndarray,
    allocator: Allocator,
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    path: MarketPath | None = None,
    grid: BookGrid | None = None,
) -> ReplayResult:
    """Replay ``events`` (``event_dtype``) with one allocator; see the module docstring.

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
    book = OrderBook(grid, use_bbo=cfg.use_bbo)
    tick = grid.tick_usd
    rng = np.random.default_rng(cfg.seed)
    ev, exch, pxs, qtys = events["ev"], events["exch_ts"], events["px"], events["qty"]
    is_trade = (kinds(events) == TRADE_EVENT) & ((ev & np.uint64(EXCH_EVENT)) != 0)
    cum_vol = np.cumsum(np.where(is_trade, qtys, 0.0))
    offs = (events["local_ts"] - exch).astype(np.int64)
    offs_min = np.minimum.accumulate(offs) if offs.size else offs
    n_lv = app.ladder.grid.n_levels
    slots = 4 * n_lv + 16
    o_state = np.zeros(slots, np.int64)
    o_side = np.zeros(slots, np.int64)
    o_tick = np.zeros(slots, np.int64)
    o_qty = np.zeros(slots)
    o_front = np.zeros(slots)
    o_cum = np.zeros(slots)
    o_live = np.full(slots, _NEVER, np.int64)
    o_dead = np.full(slots, _NEVER, np.int64)
    o_level = np.zeros(slots, np.int64)
    bid_slot = np.full(grid.n, -1, np.int64)
    ask_slot = np.full(grid.n, -1, np.int64)
    cap = 65_536
    f_ts, f_side, f_tick = np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    f_qty, f_level, f_mid = np.zeros(cap), np.zeros(cap, np.int64), np.zeros(cap)
    queue_kind = QUEUE_MODELS[cfg.queue]
    step = round(cfg.refresh_s * 1e9)
    t0 = int(exch[0]) if exch.size else 0
    t_next = t0 + step
    k, clock, nfill, rejects = 0, int(exch[0]) if exch.size else 0, 0, 0
    inv, cash, seen = 0.0, 0.0, 0
    fee = app.snapshot.maker_fee_bps * 1e-4
    mids: list[float] = []
    eq_t: list[float] = []
    eq_v: list[float] = []
    shapes: list[np.ndarray] = []
    model = {"impact": 0.0, "expected": 0.0, "eff_levels": 0.0}
    n_refresh = n_quoted = skipped_slots = 0
    max_abs_inv = 0.0
    ladder_s = 0.0
    lstate = None
    status = 0
    while True:
        status, k, clock, nfill, rej = run_until(
            book.bid_qty, book.ask_qty, book.state, ev, exch, pxs, qtys, k, t_next, clock,
            o_state, o_side, o_tick, o_qty, o_front, o_cum, o_live, o_dead, o_level, bid_slot, ask_slot,
            f_ts, f_side, f_tick, f_qty, f_level, f_mid, nfill, tick, app.spec.lot_size, queue_kind, cfg.queue_n,
            cfg.use_bbo,
        )  # fmt: skip
        rejects += rej
        if nfill > seen:
            s, q, p = f_side[seen:nfill], f_qty[seen:nfill], f_tick[seen:nfill] * tick
            inv += float(np.sum(s * q))
            cash -= float(np.sum(s * q * p)) + float(np.sum(p * q)) * fee
            max_abs_inv = max(max_abs_inv, abs(inv))
            seen = nfill
        if status == STATUS_FILLS_FULL:
            cap *= 2
            f_ts, f_side, f_tick = (np.resize(a, cap) for a in (f_ts, f_side, f_tick))
            f_qty, f_level, f_mid = (np.resize(a, cap) for a in (f_qty, f_level, f_mid))
            continue
        if status == STATUS_END:
            break
        t_now = t_next
        t_next += step
        bid, ask = book.best_bid_usd, book.best_ask_usd
        if not (bid > 0 and ask > bid):
            continue
        mid = 0.5 * (bid + ask)
        mids.append(mid)
        n_refresh += 1
        eq_t.append((t_now - t0) / 1e9)
        eq_v.append(cash + inv * mid)
        if t_now - t0 < cfg.warmup_s * 1e9 or len(mids) < 5:
            continue
        sigma = _estimate_sigma(mids, cfg.sigma_window)
        sigma = sigma if math.isfinite(sigma) and sigma > 0 else 1e-7
        elapsed = max((t_now - t0) / 1e9, 1e-9)
        daily = float(cum_vol[k - 1]) / elapsed * 86_400.0 if k > 0 else 0.0
        snap = dataclasses.replace(
            app.snapshot, mid_usd=mid, best_bid_usd=bid, best_ask_usd=ask, sigma_frac=min(sigma, 1.0),
            sigma_horizon_s=cfg.refresh_s, inventory_coins=inv,
            daily_volume_coins=daily if daily > 0 else app.snapshot.daily_volume_coins, ts_ns=max(t_now, 0),
        )  # fmt: skip
        lt = time.perf_counter()
        lad = build_ladder(snap, app.spec, allocator, config=app.ladder, rng=rng, state=lstate)
        lstate = lad.state  # the allocator's cross-refresh state goes on explicitly
        ladder_s += time.perf_counter() - lt
        lat = int(cfg.latency_ms * 1e6)
        if cfg.latency == "feed" and k > 0:
            lat += max(int(offs[k - 1] - offs_min[k - 1]), 0)
        n_side, n_tick, n_qty, n_level = _orders_of(lad, tick)
        skipped_slots += send_orders(
            t_now + lat, n_side, n_tick, n_qty, n_level, o_state, o_side, o_tick, o_qty, o_live, o_dead, o_level
        )
        n_quoted += 1
        scale = cfg.refresh_s / app.ladder.horizon_s
        for sr in (lad.bid, lad.ask):
            if sr.curves.n:
                sp = sr.curves.split(sr.projection.sizes)
                model["impact"] += (sp["forward_impact_usd"] + sp["roundtrip_impact_usd"]) * scale
                model["expected"] += sr.expected_pnl_usd * scale
            model["eff_levels"] += sr.effective_levels / 2.0
        shapes.append(_shape(lad, n_lv))
    if not mids:
        raise DataError("the replay never saw a two-sided book: nothing to quote against")
    fills = Fills(
        f_ts[:nfill].copy(), f_side[:nfill].copy(), f_tick[:nfill] * tick, f_qty[:nfill].copy(),
        f_level[:nfill].copy(), f_mid[:nfill].copy(),
    )  # fmt: skip
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
        "model_impact_usd": model["impact"],
        "pnl_minus_model_impact_usd": total + model["impact"],
        "model_expected_pnl_usd": model["expected"],
    }
    diag = {
        "fills": float(len(fills)),
        "filled_coins": float(np.sum(q)),
        "final_inventory_coins": inv,
        "max_abs_inventory_coins": max_abs_inv,
        "max_drawdown_usd": max_drawdown(np.asarray(eq_v)),
        "mean_effective_levels": model["eff_levels"] / max(n_quoted, 1),
        "refreshes": float(n_refresh),
        "quoted_refreshes": float(n_quoted),
        "post_only_rejects": float(rejects),
        "orders_without_slot": float(skipped_slots),
        "events": float(events.size),
        "wall_s": wall,
        "ladder_s": ladder_s,
        "events_per_s": events.size / wall if wall > 0 else float("nan"),
    }
    shape_arr = np.array(shapes) if shapes else np.zeros((0, 2 * n_lv))
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
    )


def _shape(lad: Ladder, n: int) -> np.ndarray:
    """Sizes per level (coins): bids deepest..touch, then asks touch..deepest (``write_report``'s layout)."""
    row = np.zeros(2 * n)
    for o in lad.bids:
        if o.level < n:
            row[n - 1 - o.level] += o.size
    for o in lad.asks:
        if o.level < n:
            row[n + o.level] += o.size
    return row


def _orders_of(lad: Ladder, tick: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A ladder's orders as arrays: side (+1 bid, -1 ask), price tick, size (coins), level."""
    orders = [(1, o) for o in lad.bids] + [(-1, o) for o in lad.asks]
    side = np.array([sd for sd, _ in orders], dtype=np.int64)
    ticks = np.array([round(o.price / tick) for _, o in orders], dtype=np.int64)
    size = np.array([o.size for _, o in orders], dtype=np.float64)
    level = np.array([o.level for _, o in orders], dtype=np.int64)
    return side, ticks, size, level


def replay_fixed_grid(
    events: np.ndarray,
    depths_bps: np.ndarray,
    level_qty_coins: float,
    *,
    config: ReplayConfig | None = None,
    grid: BookGrid | None = None,
    lot_coins: float = 1e-5,
) -> tuple[Fills, int]:
    """Replay with a fixed ladder entirely in numba: every refresh, bids and asks at ``depths_bps`` from the mid
    with ``level_qty_coins`` each (no allocator, no Python per refresh). Measures the replay engine itself.
    Fills are whole lots of ``lot_coins`` (default 1e-5, Hyperliquid's BTC lot), ``> 0``.

    Returns the fills (``mid_usd`` at each fill included) and the number of post-only rejects.
    """
    cfg = config or ReplayConfig()
    check_real("lot_coins", lot_coins, lo=0.0, lo_open=True, unit="coins")
    grid = grid or BookGrid.around(events, band_frac=cfg.band_frac)
    book = OrderBook(grid, use_bbo=cfg.use_bbo)
    d = np.asarray(depths_bps, dtype=np.float64)
    slots = 4 * d.size + 16
    never = np.iinfo(np.int64).max
    orders = (
        np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.zeros(slots),
        np.zeros(slots), np.zeros(slots), np.full(slots, never, np.int64), np.full(slots, never, np.int64),
        np.zeros(slots, np.int64), np.full(grid.n, -1, np.int64), np.full(grid.n, -1, np.int64),
    )  # fmt: skip
    cap = events.size // 4 + 4 * slots  # fills come from trades, fewer than the rows
    fills = (np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap),
             np.zeros(cap, np.int64), np.zeros(cap))  # fmt: skip
    _status, nfill, rejects = run_grid(
        book.bid_qty, book.ask_qty, book.state, events["ev"], events["exch_ts"], events["px"], events["qty"],
        *orders, *fills, grid.tick_usd, lot_coins, QUEUE_MODELS[cfg.queue], cfg.queue_n, cfg.use_bbo,
        round(cfg.refresh_s * 1e9), round(cfg.latency_ms * 1e6), round(cfg.warmup_s * 1e9), d, level_qty_coins,
    )  # fmt: skip
    f_ts, f_side, f_tick, f_qty, f_level, f_mid = fills
    out = Fills(f_ts[:nfill].copy(), f_side[:nfill].copy(), f_tick[:nfill] * grid.tick_usd, f_qty[:nfill].copy(),
                f_level[:nfill].copy(), f_mid[:nfill].copy())  # fmt: skip
    return out, int(rejects)


def run_backtest(
    source: str | Path | np.ndarray,
    allocators: dict[str, Allocator],
    *,
    app: AppConfig | None = None,
    config: ReplayConfig | None = None,
    on_error: Literal["stop", "skip"] = "stop",
    on_result: Callable[[str, ReplayResult], None] | None = None,
) -> tuple[dict[str, ReplayResult], ReadReport | None]:
    """Replay the same data once per allocator (same book, same seed). Returns results and the read report.

    With ``on_error="stop"`` a bad line ends the data there: the replay runs on what was read and
    ``report.error`` holds the message (the CLI prints it and exits with code 2 after writing the report).
    ``on_result(name, result)`` is called as each allocator finishes (the CLI keeps them if Ctrl-C comes).
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
        results[name] = replay(events, alloc, app=app, config=cfg, path=path, grid=grid)
        if on_result is not None:
            on_result(name, results[name])
    return results, report


__all__ = [
    "MARKOUT_HORIZONS_S",
    "QUEUE_MODELS",
    "Fills",
    "ReplayConfig",
    "ReplayResult",
    "replay",
    "replay_fixed_grid",
    "run_backtest",
]
