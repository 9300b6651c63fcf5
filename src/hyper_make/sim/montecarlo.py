"""Monte Carlo tournament: every allocator on the same market seeds (paired), in parallel across cores.

Each work item is one ``(allocator, path)`` (:class:`PathRun`), run through the executor seam
(:mod:`hyper_make.batch`: local processes or a Ray cluster); results stream back as small
:class:`PathResult` objects (no event logs), so memory grows with the number of paths, not with their length.
Ctrl-C keeps finished paths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..allocate import ALLOCATORS
from ..batch import Executor, LocalExecutor
from ..errors import InvalidParameterError
from ..metrics import PnLDecomposition, mean_decomposition, paired_ci, summarize
from .config import SimConfig
from .strategy import PathResult, run_path


@dataclass(slots=True)
class Tournament:
    """Results of a tournament (possibly partial after Ctrl-C).

    Attributes
    ----------
    allocators : names in run order; ``paths`` requested paths per allocator; ``seed`` the base seed.
    results : per allocator, finished :class:`PathResult` by path index.
    interrupted : True when stopped early (Ctrl-C).
    """

    allocators: list[str]
    paths: int
    seed: int
    results: dict[str, dict[int, PathResult]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def finished(self) -> int:
        """Finished (allocator, path) runs."""
        return sum(len(v) for v in self.results.values())

    def common_paths(self) -> list[int]:
        """Path indices finished by every allocator (the paired sample)."""
        sets = [set(self.results.get(a, {})) for a in self.allocators]
        return sorted(set.intersection(*sets)) if sets else []

    def metrics(self, reference: str | None = None) -> dict[str, dict[str, float]]:
        """Per allocator: PnL summary (USD), inventory (coins), fills, drawdown, effective levels, the PnL split
        and the paired 95 % CI of its mean PnL minus the reference allocator's on the common paths."""
        ref = reference or ("entropy" if "entropy" in self.allocators else self.allocators[0])
        common = self.common_paths()
        out: dict[str, dict[str, float]] = {}
        for a in self.allocators:
            rs = list(self.results.get(a, {}).values())
            if not rs:
                continue
            pnl = np.array([r.pnl_usd for r in rs])
            fq = np.array([r.final_inventory_coins for r in rs])
            row = summarize(pnl)
            dec = mean_decomposition([PnLDecomposition(**r.decomposition) for r in rs])
            row.update(
                {
                    "mean_final_inventory": float(fq.mean()),
                    "std_final_inventory": float(fq.std(ddof=1)) if fq.size > 1 else 0.0,
                    "mean_peak_inventory": float(np.mean([r.peak_inventory_coins for r in rs])),
                    "mean_fills": float(np.mean([r.fills for r in rs])),
                    "mean_maker_volume": float(np.mean([r.maker_volume_coins for r in rs])),
                    "mean_max_drawdown": float(np.mean([r.max_drawdown_usd for r in rs])),
                    "mean_effective_levels": float(np.mean([r.effective_levels for r in rs])),
                    "spread_capture": dec.spread_capture_usd,
                    "adverse_selection": dec.adverse_selection_usd,
                    "impact": dec.impact_usd,
                    "fees": dec.fees_usd,
                    "inventory_pnl": dec.inventory_usd,
                    "mean_pickoffs": float(np.mean([r.stats.get("pickoffs", 0.0) for r in rs])),
                }
            )
            if any("sampling_cost_usd" in r.stats for r in rs):  # what Thompson sampling cost, per path (USD)
                row["mean_sampling_cost"] = float(np.mean([r.stats.get("sampling_cost_usd", 0.0) for r in rs]))
            if a != ref and common and ref in self.results:
                ci = paired_ci(
                    [self.results[a][i].pnl_usd for i in common], [self.results[ref][i].pnl_usd for i in common]
                )
                row.update({f"diff_vs_{ref}": ci["mean_diff"], "diff_ci_lo": ci["lo"], "diff_ci_hi": ci["hi"]})
            out[a] = row
        return out

    def decomposition(self) -> dict[str, dict[str, float]]:
        """Mean PnL split per allocator (USD)."""
        return {
            a: mean_decomposition([PnLDecomposition(**r.decomposition) for r in rs.values()]).to_dict()
            for a, rs in self.results.items()
            if rs
        }


def _task(
    cfg: SimConfig, name: str, seed: int, options: dict[str, Any], record: bool, learner: Any = None
) -> PathResult:
    return run_path(cfg, name, seed, allocator_options=options, record=record, learner=learner)


@dataclass(frozen=True, slots=True)
class PathRun:
    """One work item of a tournament: allocator ``allocator`` (with ``options``) on path ``path`` of market seed
    ``seed``; ``record`` keeps its equity curve and ladder shapes."""

    cfg: SimConfig
    allocator: str
    path: int
    seed: int
    options: dict[str, Any]
    record: bool
    learner: Any = None  # the payout posterior an allocator that learns starts from (its own copy in the path)

    def describe(self) -> str:
        """``allocator A, path i, seed S`` (the config is the tournament's)."""
        return f"allocator {self.allocator}, path {self.path}, seed {self.seed}"


def _run(item: PathRun) -> PathResult:
    # looks _task up when called, so that tests can replace it
    return _task(item.cfg, item.allocator, item.seed, item.options, item.record, item.learner)


def path_seed(seed: int, path: int) -> int:
    """Seed of path ``path`` in a run with base ``seed`` (the same for every allocator: paired paths)."""
    return int(np.random.SeedSequence([seed, path]).generate_state(1)[0])


def run_tournament(
    cfg: SimConfig,
    *,
    allocators: Sequence[str] | None = None,
    paths: int = 16,
    seed: int = 0,
    workers: int | None = None,
    allocator_options: dict[str, dict[str, Any]] | None = None,
    on_done: Callable[[PathResult], None] | None = None,
    learner: Any = None,
    executor: Executor | None = None,
) -> Tournament:
    """Run every allocator on ``paths`` paired market paths, in parallel; path 0 records equity and shapes.

    ``workers`` defaults to the number of CPUs (1 = in-process, no pool). Ctrl-C stops early and returns the
    finished paths with ``interrupted=True``. ``learner``: the posterior every path of an allocator that learns
    starts from (each path its own copy; :func:`pooled_learner` gathers what they learned). ``executor``: where
    the runs execute (default ``LocalExecutor(workers)``); runs that failed on every attempt are in its
    ``failures`` and missing from the results.
    """
    names = list(allocators) if allocators else list(ALLOCATORS)
    for n in names:
        if n not in ALLOCATORS:
            raise InvalidParameterError(f"unknown allocator {n!r}; choose one of {sorted(ALLOCATORS)}")
    if isinstance(paths, bool) or not isinstance(paths, int) or paths <= 0:
        raise InvalidParameterError(f"'paths' must be a positive integer; got {paths!r}")
    opts = allocator_options or {}
    tour = Tournament(allocators=names, paths=paths, seed=seed, results={n: {} for n in names})
    items = [
        PathRun(cfg, n, i, path_seed(seed, i), opts.get(n, {}), i == 0,
                learner if getattr(ALLOCATORS[n], "learns", False) else None)
        for i in range(paths)
        for n in names
    ]  # fmt: skip
    runs = (executor or LocalExecutor(workers or None)).imap_unordered(_run, items)
    try:
        with contextlib.closing(runs):
            for item, r in runs:
                tour.results[item.allocator][item.path] = r
                if on_done:
                    on_done(r)
    except KeyboardInterrupt:
        tour.interrupted = True
    # path order, whatever order the runs finished in: the metrics' sums are then the same on every run
    tour.results = {n: dict(sorted(rs.items())) for n, rs in tour.results.items()}
    return tour


def pooled_learner(tour: Tournament, allocator: str, base: Any) -> Any:
    """One :class:`~hyper_make.learn.PayoutLearner` holding what every finished path of ``allocator`` learned on
    top of ``base`` (the posterior they all started from), or ``None`` when no path of it has a learner."""
    from ..learn import pool_learners

    learners = [r.learner for _, r in sorted(tour.results.get(allocator, {}).items()) if r.learner is not None]
    if not learners:
        return None
    return pool_learners(base, learners)
