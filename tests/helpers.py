"""Small builders shared by tests (not fixtures, so hypothesis tests can call them)."""

from __future__ import annotations

import numpy as np

from hyper_make.allocate import SideProblem
from hyper_make.economics import LevelCurves
from hyper_make.snapshot import Regime


def curves_from_edges(
    ev_bps: list[float] | np.ndarray,
    *,
    mid: float = 90_000.0,
    b: float | np.ndarray = 0.0,
    beta: float = 0.5,
) -> LevelCurves:
    """Curves whose net EV per level (P·(e − AS), bps of mid) is ``ev_bps``, with P = 1 and no adverse selection."""
    ev = np.asarray(ev_bps, dtype=np.float64)
    n = ev.shape[0]
    depth = np.geomspace(2.0, 200.0, n) if n > 1 else np.array([2.0])
    return LevelCurves(
        depth_bps=depth,
        price_usd=mid * (1 - depth * 1e-4),
        fill_prob=np.ones(n),
        capture_usd=ev * mid * 1e-4,
        adverse_usd=np.zeros(n),
        b_forward=np.broadcast_to(np.asarray(b, dtype=np.float64), (n,)).copy(),
        b_roundtrip=np.zeros(n),
        beta=beta,
        mid_usd=mid,
    )


def problem(
    curves: LevelCurves,
    budget: float = 1.0,
    *,
    cap_frac: float = 1.0,
    min_size: float = 0.0,
    regime: Regime | None = None,
    side: str = "bid",
) -> SideProblem:
    n = curves.n
    return SideProblem(
        side=side,  # type: ignore[arg-type]
        curves=curves,
        budget_coins=budget,
        caps_coins=np.full(n, cap_frac * budget),
        lot_coins=1e-5,
        min_size_coins=np.full(n, min_size),
        regime=regime or Regime(),
    )


#: ``[market]`` of a DOGE-like coin (prices in USD per coin, sizes in coins), for configs that change the coin.
DOGE_MARKET_TOML = """
[market]
mid_usd = 0.30001
best_bid_usd = 0.3
best_ask_usd = 0.30002
max_position_coins = 50000.0
daily_volume_coins = 1e9
"""


def forbid_calls(monkeypatch, *targets: str) -> None:
    """Make each dotted ``targets`` raise if called: bad input must be refused before any work runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the input was checked")

    for target in targets:
        monkeypatch.setattr(target, refuse)
