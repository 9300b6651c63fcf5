"""Every allocator on the same snapshot, side by side: what each leaves on the book and what it is worth.

``compare_allocators(snapshot, spec, config)`` builds the full ladder (the one :func:`~hyper_make.build_ladder`
pipeline: grid, economics, allocation, stealth, exchange projection) once per registered allocator with the
same seed, and reports per allocator and side: the expected PnL of the final orders under the impact model
(USD), the budget used, the effective number of levels ``exp(H)``, the largest order's share of the side, and
the median allocation time over ``repeats`` builds (µs).

The ladder's per-level cap (``level_cap_frac``, 25 % of the side budget by default: the original system's
rule) spreads every allocator over at least four levels by fiat. To see what each allocator *chooses*, compare
with the cap lifted (``level_cap_frac = 1``, CLI ``--level-cap-frac 1``): the greedy baseline then collapses onto
one level, while the impact allocator still spreads because impact makes concentration expensive.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .allocate import ALLOCATORS, make_allocator, warm_up
from .errors import InvalidParameterError
from .instrument import InstrumentSpec, Side
from .ladder import Ladder, LadderConfig, build_ladder
from .snapshot import MarketSnapshot


@dataclass(frozen=True, slots=True)
class SideComparison:
    """One allocator on one side of the ladder.

    Attributes
    ----------
    allocator, side : registered name and ``"bid"``/``"ask"``.
    expected_pnl_usd : ``Σ E[PnL]_i`` of the final orders under the side's curves, impact included (USD).
    budget_coins, size_used_coins : the side budget and the total size of the final orders (coins).
    budget_used_frac : ``size_used / budget`` (fraction, 0 when the budget is 0).
    effective_levels : ``exp(H)`` of the final sizes (0 when empty).
    largest_share : largest order over the side's total (fraction, 0 when empty).
    n_orders : orders resting on the side.
    solve_us : median wall time of the allocator on this side over the repeats (µs).
    shadow_price : λ (USD per coin) for optimising allocators, ``None`` otherwise.
    binding : the allocator's binding constraint.
    """

    allocator: str
    side: Side
    expected_pnl_usd: float
    budget_coins: float
    size_used_coins: float
    budget_used_frac: float
    effective_levels: float
    largest_share: float
    n_orders: int
    solve_us: float
    shadow_price: float | None
    binding: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


def _side_rows(name: str, ladder: Ladder, solve_ns: dict[Side, list[int]]) -> list[SideComparison]:
    rows = []
    for side in ("bid", "ask"):
        s = ladder.side(side)
        used = s.size_used_coins
        sizes = s.projection.sizes
        lam = s.allocation.shadow_price
        rows.append(
            SideComparison(
                allocator=name,
                side=side,
                expected_pnl_usd=s.expected_pnl_usd,
                budget_coins=s.budget.budget_coins,
                size_used_coins=used,
                budget_used_frac=used / s.budget.budget_coins if s.budget.budget_coins > 0 else 0.0,
                effective_levels=s.effective_levels,
                largest_share=float(sizes.max() / used) if used > 0 else 0.0,
                n_orders=len(s.orders),
                solve_us=statistics.median(solve_ns[side]) / 1e3,
                shadow_price=None if not np.isfinite(lam) else float(lam),
                binding=s.allocation.binding,
            )
        )
    return rows


def compare_allocators(
    snapshot: MarketSnapshot,
    spec: InstrumentSpec,
    config: LadderConfig | None = None,
    *,
    names: Sequence[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    repeats: int = 5,
    learner: Any = None,
) -> list[SideComparison]:
    """Build the ladder with each allocator (fresh instance, same seed) and compare the two sides.

    Parameters
    ----------
    snapshot, spec, config : the market, the instrument and the ladder configuration shared by every allocator.
    names : allocators to run (default: every registered one, in registry order).
    options : per allocator name, its options (e.g. from ``[allocator.<name>]``).
    seed : seed of every random component (the same for every allocator).
    repeats : builds per allocator for the timing (median), in ``[1, 1000]``; the numbers come from the first.
        The compiled kernels are loaded first (:func:`hyper_make.warm_up`), so no time includes their load.
    learner : the payout posterior the ``learned`` allocator draws from (e.g. loaded with ``--learner-state``);
        ``None`` = the prior of ``config``'s models.

    Raises
    ------
    InvalidParameterError
        Unknown allocator name (the message lists the registered ones) or bad ``repeats``.
    """
    chosen = list(names) if names else list(ALLOCATORS)
    unknown = [n for n in chosen if n not in ALLOCATORS]
    if unknown:
        raise InvalidParameterError(f"unknown allocator {unknown[0]!r}; choose one of {sorted(ALLOCATORS)}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 1000:
        raise InvalidParameterError(f"'repeats' must be an integer in [1, 1000]; got {repeats!r}")
    opts = options or {}
    warm_up(refresh_core=False)  # numba's compile or cache load must not land in the first allocator's times
    rows: list[SideComparison] = []
    for name in chosen:
        first: Ladder | None = None
        times: dict[Side, list[int]] = {"bid": [], "ask": []}
        for _ in range(repeats):
            alloc = make_allocator(name, **opts.get(name, {}))
            ladder = build_ladder(snapshot, spec, alloc, config=config, rng=seed, learner=learner)
            first = first or ladder
            for side in ("bid", "ask"):
                times[side].append(ladder.timings_ns.get(f"allocate_{side}", 0))
        assert first is not None
        rows.extend(_side_rows(name, first, times))
    return rows


__all__ = ["SideComparison", "compare_allocators"]
