"""Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", §4: the paper's experiment.

Mid ``S`` moves ±σ√dt each step (binomial, as in the paper); a quote at distance δ from the mid is hit in a step
with probability ``A·exp(-k·δ)·dt``. One unit a side. The inventory strategy quotes around the reservation price
``r = S - q·γ·σ²·(T - t)`` with total spread ``γσ²(T - t) + (2/γ)·ln(1 + γ/k)``; the symmetric strategy uses the
same spread around the mid. Terminal PnL = cash + q·S_T (inventory valued at the mid). Units are the paper's
(price units, unit order size, time in units of T).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._validate import PYDANTIC_CONFIG, check_int, check_real
from ..errors import InvalidParameterError

STRATEGIES = ("inventory", "symmetric")

#: The paper's Tables 1-3 (1000 simulations each): γ -> strategy -> (profit, std profit, final q, std final q).
PAPER_TABLES: dict[float, dict[str, tuple[float, float, float, float]]] = {
    0.1: {"inventory": (62.94, 5.89, 0.10, 2.80), "symmetric": (67.21, 13.43, -0.018, 8.66)},
    0.01: {"inventory": (66.78, 8.76, -0.02, 4.70), "symmetric": (67.36, 13.40, -0.31, 8.65)},
    0.5: {"inventory": (33.92, 4.72, -0.02, 1.88), "symmetric": (66.20, 14.53, 0.25, 9.06)},
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ASConfig:
    """The paper's §4 parameters (TOML ``[sim.as]``), in the paper's units; every value ``> 0``.

    Parameters
    ----------
    s0 : starting mid (price units).
    horizon : ``T``, the length of a path (time units).
    sigma : ``σ``, volatility of the mid (price units per √time).
    dt : time step (time units), at most ``horizon``; ``intensity_a·dt <= 1``.
    intensity_a : ``A``, fills per unit time at δ = 0.
    k : intensity decay per price unit of depth.
    gamma : ``γ``, risk aversion (per price unit).
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    s0: float = 100.0
    horizon: float = 1.0
    sigma: float = 2.0
    dt: float = 0.005
    intensity_a: float = 140.0
    k: float = 1.5
    gamma: float = 0.1

    def __post_init__(self) -> None:
        check_real("sim.as.s0", self.s0, lo=0.0, lo_open=True)
        check_real("sim.as.horizon", self.horizon, lo=0.0, lo_open=True)
        check_real("sim.as.sigma", self.sigma, lo=0.0, lo_open=True)
        check_real("sim.as.dt", self.dt, lo=0.0, lo_open=True, hi=self.horizon)
        check_real("sim.as.intensity_a", self.intensity_a, lo=0.0, lo_open=True)
        check_real("sim.as.k", self.k, lo=0.0, lo_open=True)
        check_real("sim.as.gamma", self.gamma, lo=0.0, lo_open=True)
        if self.intensity_a * self.dt > 1.0:
            raise InvalidParameterError(
                "'sim.as.intensity_a'·'sim.as.dt' must be <= 1 (a probability per step); "
                f"got {self.intensity_a * self.dt!r}"
            )


@dataclass(frozen=True, slots=True)
class ASResult:
    """Per strategy, per path: terminal PnL (price units) and final inventory (units)."""

    pnl: dict[str, np.ndarray]
    final_inventory: dict[str, np.ndarray]
    spread: float

    def table(self) -> dict[str, dict[str, float]]:
        """The paper's table: mean/std of PnL and of final inventory per strategy."""
        return {
            s: {
                "mean_pnl": float(self.pnl[s].mean()),
                "std_pnl": float(self.pnl[s].std(ddof=1)),
                "mean_final_inventory": float(self.final_inventory[s].mean()),
                "std_final_inventory": float(self.final_inventory[s].std(ddof=1)),
            }
            for s in self.pnl
        }


def simulate_as(
    cfg: ASConfig, *, paths: int = 1000, seed: int = 0, strategies: tuple[str, ...] = STRATEGIES
) -> ASResult:
    """Run the paper's experiment on ``paths`` paths; both strategies see the same mid path and fill draws."""
    check_int("paths", paths, lo=1)
    for s in strategies:
        if s not in STRATEGIES:
            raise InvalidParameterError(
                f"unknown strategy {s!r} for preset avellaneda-stoikov-2008; choose one of {list(STRATEGIES)}"
            )
    rng = np.random.default_rng(seed)
    n = round(cfg.horizon / cfg.dt)
    g, sig2, k = cfg.gamma, cfg.sigma**2, cfg.k
    s = np.full(paths, cfg.s0)
    q = {st: np.zeros(paths) for st in strategies}
    cash = {st: np.zeros(paths) for st in strategies}
    for i in range(n):
        tau = cfg.horizon - i * cfg.dt
        spread = g * sig2 * tau + (2.0 / g) * np.log1p(g / k)
        u_bid = rng.random(paths)
        u_ask = rng.random(paths)
        for st in strategies:
            r = s - q[st] * g * sig2 * tau if st == "inventory" else s
            bid, ask = r - spread / 2.0, r + spread / 2.0
            hit_b = u_bid < cfg.intensity_a * np.exp(-k * (s - bid)) * cfg.dt
            hit_a = u_ask < cfg.intensity_a * np.exp(-k * (ask - s)) * cfg.dt
            cash[st] += np.where(hit_a, ask, 0.0) - np.where(hit_b, bid, 0.0)
            q[st] += hit_b.astype(float) - hit_a.astype(float)
        s = s + cfg.sigma * np.sqrt(cfg.dt) * np.where(rng.random(paths) < 0.5, 1.0, -1.0)
    pnl = {st: cash[st] + q[st] * s for st in strategies}
    return ASResult(pnl=pnl, final_inventory=q, spread=float((2.0 / g) * np.log1p(g / k)))
