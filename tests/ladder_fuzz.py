"""Random valid markets × every registered allocator, with the exchange's rules checked by independent code.

Shared by ``tests/test_fuzz_ladder.py`` (a few seconds in CI) and ``benchmarks/fuzz_ladder.py --seconds N``.

Case ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``, so any failure is reproducible from
its ``(seed, index)`` with :func:`case`. Ranges: mid 1e-4 to 1e6 USD, ``szDecimals`` 0 to 6, position limits
of 1 USD to 1e8 USD, margins of 1 to 1e9 USD, 1 to 40 levels with every spacing and touch, exponential,
first-passage and table fill models, exponential and table adverse selection, impact on or off with β in
[0.3, 2] and a zero daily volume one time in ten, stealth off / Dirichlet / posterior.

The rules are checked here with ``decimal`` arithmetic, not with :class:`~hyper_make.InstrumentSpec` or the
projection: a price has at most 5 significant figures and ``6 - szDecimals`` decimals (or is an integer), a
size is a positive multiple of ``10^-szDecimals``, every order is worth at least the minimum notional, no price
repeats on a side, bids are below asks and behind the opposite best, a side's total is within the budget
recomputed from the snapshot, nothing is NaN, and the JSON output has no NaN. A build may refuse only with the
documented reasons (a side budget above 2^53 lots, a stealth stage set twice, the posterior stage on
`learned`), each checked to be true.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from hyper_make import (
    ALLOCATORS,
    ExponentialAdverse,
    ExponentialIntensity,
    FirstPassage,
    GridConfig,
    InstrumentSpec,
    InvalidParameterError,
    LadderConfig,
    MarketSnapshot,
    Regime,
    SquareRootImpact,
    StealthConfig,
    TableAdverse,
    TableFill,
    build_ladder,
    make_allocator,
)

NAMES = sorted(ALLOCATORS)
#: A build slower than this is a stall (a quoting loop cannot wait); typical builds take about 1 ms.
STALL_S = 5.0
MAX_LOTS = 2**53


@dataclass(frozen=True)
class Case:
    """One random market and the allocator to run on it."""

    seed: int
    index: int
    snapshot: MarketSnapshot
    spec: InstrumentSpec
    config: LadderConfig
    allocator: str


@dataclass
class FuzzStats:
    """What a run found: builds, documented refusals, failures (``(seed, index, allocator, what)``), slowest build."""

    builds: int = 0
    refusals: int = 0
    failures: list[tuple[int, int, str, str]] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest_case: tuple[int, int, str] = (0, 0, "")
    per_allocator: dict[str, int] = field(default_factory=dict)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(10.0 ** rng.uniform(lo, hi))


def case(seed: int, index: int) -> Case:
    """The ``index``-th random case of ``seed`` (valid by construction; the allocator cycles through the registry)."""
    rng = np.random.default_rng([seed, index])
    mid = _log(rng, -4.0, 6.0)
    # a Hyperliquid perp's price has at most 6 - szDecimals decimals, so a coin at price p has szDecimals <= 6 +
    # log10(p): draw such markets nine times in ten, and any szDecimals (no valid price near the mid) the tenth
    top = 6 if rng.random() < 0.1 else int(np.clip(np.floor(6 + np.log10(mid)), 0, 6))
    sz = int(rng.integers(0, top + 1))
    spec = InstrumentSpec(coin="FUZZ", sz_decimals=sz, min_notional_usd=float(rng.choice([10.0, 10.0, 1.0, 100.0])))
    # the book need not be on our grid (another venue's prices, a coin with no valid price near its mid)
    half = mid * _log(rng, -5.0, -2.0)
    bid, ask = mid - half, mid + half
    mid = 0.5 * (bid + ask)
    max_pos = _log(rng, 0.0, 8.0) / mid
    daily = 0.0 if rng.random() < 0.1 else max_pos * _log(rng, -2.0, 7.0)
    profile: dict[str, Any] = {}
    if daily > 0 and rng.random() < 0.15:
        depths = np.sort(rng.uniform(0.0, 500.0, int(rng.integers(1, 6))))
        depths = np.unique(depths)
        vols = np.sort(rng.uniform(0.01, 1.0, depths.size))[::-1] * daily * 1e-3
        profile = {"volume_profile_depth_bps": tuple(depths), "volume_profile_coins": tuple(vols)}
    snap = MarketSnapshot(
        mid_usd=mid,
        best_bid_usd=bid,
        best_ask_usd=ask,
        sigma_frac=_log(rng, -6.0, -1.5),
        sigma_horizon_s=float(rng.choice([1.0, 60.0])),
        inventory_coins=max_pos * _u(rng, -1.5, 1.5),
        max_position_coins=max_pos,
        margin_usd=_log(rng, 0.0, 9.0),
        leverage=_u(rng, 1.0, 50.0),
        maker_fee_bps=_u(rng, -1.0, 5.0),
        daily_volume_coins=daily,
        regime=Regime(toxicity=_u(rng, 0, 5), vol_ratio=_u(rng, 0, 5), cascade_severity=_u(rng, 0, 1)),
        **profile,
    )
    lo = _log(rng, -1.0, 1.7)
    grid = GridConfig(
        n_levels=int(rng.integers(1, 41)),
        min_depth_bps=lo,
        max_depth_bps=min(lo + _log(rng, -0.3, 3.0), 5000.0),
        spacing=str(rng.choice(["geometric", "linear", "ticks"])),  # type: ignore[arg-type]
        ticks_per_level=int(rng.choice([1, 2, 5, 50, 10_000])),
        touch=str(rng.choice(["fixed", "glft"])),  # type: ignore[arg-type]
    )
    kind = rng.integers(0, 3)
    if kind == 0:
        fill: Any = ExponentialIntensity(intensity_per_s=_log(rng, -3.0, 2.0), kappa_per_bps=_log(rng, -2.0, 0.7))
    elif kind == 1:
        fill = FirstPassage()
    else:
        d = np.unique(np.sort(rng.uniform(0.0, 300.0, int(rng.integers(1, 6)))))
        fill = TableFill(depth_bps=tuple(d), prob_at_depth=tuple(np.sort(rng.uniform(0, 1, d.size))[::-1]))
    if rng.random() < 0.7:
        adverse: Any = ExponentialAdverse(as0_bps=_u(rng, 0.0, 20.0), decay_bps=_log(rng, -1.0, 2.0))
    else:
        d = np.unique(np.sort(rng.uniform(0.0, 300.0, int(rng.integers(1, 6)))))
        adverse = TableAdverse(depth_bps=tuple(d), as_bps=tuple(rng.uniform(-2.0, 20.0, d.size)))
    coef = lambda: 0.0 if rng.random() < 0.2 else _log(rng, -3.0, 1.0)  # noqa: E731
    impact = SquareRootImpact(
        forward_coef=coef(), roundtrip_coef=coef(), beta=float(rng.choice([0.5, 0.5, 0.3, 0.7, 1.0, 1.5, 2.0]))
    )
    name = NAMES[index % len(NAMES)]
    if name.startswith("impact-"):  # with a ladder stage too it is refused (checked): one case in ten
        mode = str(rng.choice(["dirichlet", "posterior"])) if rng.random() < 0.1 else "off"
    else:
        mode = str(rng.choice(["off", "off", "off", "dirichlet", "posterior"]))
    stealth = StealthConfig(mode=mode)  # type: ignore[arg-type]
    cfg = LadderConfig(
        grid=grid,
        fill=fill,
        adverse=adverse,
        impact=impact,
        horizon_s=_log(rng, -1.0, 3.0),
        risk_aversion=0.0 if rng.random() < 0.2 else _log(rng, -4.0, 0.0),
        level_cap_frac=_u(rng, 0.02, 1.0),
        stealth=stealth,
    )
    return Case(seed, index, snap, spec, cfg, name)


# ---- independent rule checks --------------------------------------------------------------------------------
def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _valid_price(px: float, sz_decimals: int) -> bool:
    """Hyperliquid perp: an integer, or at most 5 significant figures and 6 - szDecimals decimals."""
    if not (math.isfinite(px) and px > 0):
        return False
    d = _dec(px).normalize()
    if d == d.to_integral_value():
        return True
    _sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    return len(digits) <= 5 and -exp <= 6 - sz_decimals


def _valid_size(sz: float, sz_decimals: int) -> bool:
    if not (math.isfinite(sz) and sz > 0):
        return False
    exp = _dec(sz).normalize().as_tuple().exponent
    return isinstance(exp, int) and -exp <= sz_decimals


def _budget(snap: MarketSnapshot, side: str) -> float:
    """A side's budget from the snapshot alone: position room, and margin capacity plus what the side reduces."""
    q = snap.inventory_coins
    room = snap.max_position_coins - q if side == "bid" else snap.max_position_coins + q
    reducing = max(-q, 0.0) if side == "bid" else max(q, 0.0)
    return max(min(room, snap.margin_usd * snap.leverage / snap.mid_usd + reducing), 0.0)


def violations(ladder: Any, c: Case) -> list[str]:
    """Every rule the built ladder breaks (empty when it is valid)."""
    snap, spec = c.snapshot, c.spec
    out: list[str] = []
    lot = Decimal(1).scaleb(-spec.sz_decimals)
    for side, orders in (("bid", ladder.bids), ("ask", ladder.asks)):
        prices = [o.price for o in orders]
        if len(set(prices)) != len(prices):
            out.append(f"{side}: duplicate prices {prices}")
        total = Decimal(0)
        for o in orders:
            if not _valid_price(o.price, spec.sz_decimals):
                out.append(f"{side}: invalid price {o.price!r}")
            if not _valid_size(o.size, spec.sz_decimals):
                out.append(f"{side}: invalid size {o.size!r}")
            if not math.isfinite(o.depth_bps):
                out.append(f"{side}: depth {o.depth_bps!r}")
            if _dec(o.price) * _dec(o.size) < _dec(spec.min_notional_usd):
                out.append(f"{side}: notional {o.price!r} x {o.size!r} below {spec.min_notional_usd}")
            total += _dec(o.size)
        budget = _budget(snap, side)
        if total > _dec(budget) + lot * Decimal("1e-6"):
            out.append(f"{side}: total {total} over the budget {budget!r}")
        s = ladder.side(side)
        if not orders and not s.empty_reason:
            out.append(f"{side}: empty without a reason")
        if not math.isfinite(s.expected_pnl_usd):
            out.append(f"{side}: expected PnL {s.expected_pnl_usd!r}")
        a = s.allocation
        if not np.all(np.isfinite(a.sizes)):
            out.append(f"{side}: non-finite allocation sizes")
        if orders and c.allocator.startswith("impact"):
            if not math.isfinite(a.shadow_price):
                out.append(f"{side}: shadow price {a.shadow_price!r} on an optimised side")
            if a.diagnostics.get("lot_certified") is False:
                out.append(f"{side}: lot optimum not certified")
            if a.diagnostics.get("solver_status", "optimal") != "optimal":
                out.append(f"{side}: continuous solve {a.diagnostics['solver_status']!r}")
    if any(o.price >= snap.best_ask_usd for o in ladder.bids):
        out.append("a bid at or above the best ask")
    if any(o.price <= snap.best_bid_usd for o in ladder.asks):
        out.append("an ask at or below the best bid")
    if ladder.bids and ladder.asks and max(o.price for o in ladder.bids) >= min(o.price for o in ladder.asks):
        out.append("crossed ladder")
    try:
        json.dumps(ladder.to_dict(), allow_nan=False)
    except ValueError as exc:
        out.append(f"JSON has NaN/inf: {exc}")
    return out


def documented_refusal(exc: InvalidParameterError, c: Case) -> bool:
    """Whether a refusal is one the docs promise, and true of this case."""
    msg = str(exc)
    if "at most 2^53" in msg:
        return max(_budget(c.snapshot, s) for s in ("bid", "ask")) > MAX_LOTS * c.spec.lot_size * (1 - 1e-9)
    if "stealth is set twice" in msg:
        return c.config.stealth.mode != "off" and c.allocator in ("impact-dirichlet", "impact-posterior")
    if "already solves for a posterior draw" in msg:
        return c.config.stealth.mode == "posterior" and c.allocator == "learned"
    return False


def run(seconds: float, seed: int, *, min_builds: int = 0, start: int = 0) -> FuzzStats:
    """Build cases ``start, start+1, ...`` of ``seed`` for ``seconds`` (and at least ``min_builds``); check each."""
    stats = FuzzStats()
    t_end = time.perf_counter() + seconds
    i = start
    while time.perf_counter() < t_end or stats.builds + stats.refusals < min_builds:
        c = case(seed, i)
        i += 1
        t0 = time.perf_counter()
        try:
            ladder = build_ladder(c.snapshot, c.spec, make_allocator(c.allocator), config=c.config, rng=i)
        except InvalidParameterError as exc:
            if documented_refusal(exc, c):
                stats.refusals += 1
            else:
                stats.failures.append((seed, c.index, c.allocator, f"refused: {exc}"))
            continue
        except Exception as exc:
            stats.failures.append((seed, c.index, c.allocator, f"{type(exc).__name__}: {exc}"))
            continue
        dt = time.perf_counter() - t0
        stats.builds += 1
        stats.per_allocator[c.allocator] = stats.per_allocator.get(c.allocator, 0) + 1
        if dt > stats.slowest_s:
            stats.slowest_s, stats.slowest_case = dt, (seed, c.index, c.allocator)
        bad = violations(ladder, c)
        if dt > STALL_S:
            bad.append(f"build took {dt:.1f} s (stall)")
        if bad:
            stats.failures.append((seed, c.index, c.allocator, "; ".join(bad[:3])))
    return stats
