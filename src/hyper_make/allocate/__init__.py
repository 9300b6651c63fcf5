"""Allocators behind one interface, and the registry that names them (``--allocator NAME``).

``make_allocator(name, **options)`` builds one from its registered class; an unknown name or option is an
error that lists the valid ones. Every allocator takes a :class:`SideProblem` and a NumPy ``Generator``
and returns an :class:`AllocationResult`; an allocator of both sides at once (``two_sided = True``: ``learned``)
also has ``allocate_both(bid, ask, context, rng)``, which :func:`~hyper_make.build_ladder` calls instead.
:func:`warm_up` loads the compiled kernels before anything is timed.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ._base import (
    AllocationResult,
    Allocator,
    Binding,
    SideProblem,
    empty_result,
    entropy_nats,
    water_fill,
)
from ._baselines import FlatAllocator, GreedyAllocator, ProgressionAllocator
from ._convex import ConcaveSolution, ImpactAllocator, allocate_concave
from ._entropy import EntropyAllocator, EntropyState, project_to_min_entropy
from ._learned import LadderContext, LearnedAllocation, LearnedAllocator, LearnedArrays
from ._stealth import ImpactDirichletAllocator, ImpactPosteriorAllocator

#: name -> allocator class; each class is constructible from keyword options alone.
ALLOCATORS: dict[str, type] = {
    ImpactAllocator.name: ImpactAllocator,
    ImpactDirichletAllocator.name: ImpactDirichletAllocator,
    ImpactPosteriorAllocator.name: ImpactPosteriorAllocator,
    EntropyAllocator.name: EntropyAllocator,
    LearnedAllocator.name: LearnedAllocator,
    GreedyAllocator.name: GreedyAllocator,
    FlatAllocator.name: FlatAllocator,
    ProgressionAllocator.name: ProgressionAllocator,
}


def make_allocator(name: str, /, **options: Any) -> Allocator:
    """Build the allocator registered as ``name`` with ``options`` (its dataclass fields).

    Raises
    ------
    InvalidParameterError
        Unknown name (the message lists the registered ones) or unknown option (lists the valid ones).
    """
    try:
        cls = ALLOCATORS[name]
    except KeyError:
        raise InvalidParameterError(f"unknown allocator {name!r}; choose one of {sorted(ALLOCATORS)}") from None
    valid = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InvalidParameterError(
            f"invalid option {unknown[0]!r} for allocator {name!r}; valid options are {sorted(valid)}"
        )
    try:
        return cls(**options)  # type: ignore[no-any-return]
    except TypeError as exc:  # a wrong type that the constructor's own checks did not name
        raise InvalidParameterError(f"allocator {name!r}: {exc}") from None


#: Seconds :func:`warm_up` runs before it gives its notice: loading the kernels from numba's cache takes less.
NOTICE_AFTER_S = 1.0


def warm_up(
    notice: Callable[[str], None] | None = None,
    *,
    refresh_core: bool = True,
    sim_loop: bool = False,
    replay_loop: bool = False,
) -> float:
    """Compile, or load from numba's on-disk cache, every compiled kernel the ladder pipeline calls; seconds taken.

    ``refresh_core = False`` leaves out what only a quoting loop runs (the learner's update and the compiled ladder
    path, :mod:`hyper_make.fast`): a one-shot ladder compiles less on its first run. ``notice`` (e.g. a print to
    stderr) is given one line if this takes longer than :data:`NOTICE_AFTER_S` (a first
    run after installing or upgrading compiles the kernels, a few minutes; they are cached on disk after).

    Kernels: the KKT solve, the certified lot search, the two-sided solve and its lot search (``learned``), the
    payout learner's posterior, draw, curves and update (``learned``), the stealth stage's lot spreading, and the
    fast path's build (:func:`hyper_make.fast.warm_up`) (each compiled on its
    first call in a process: about 0.2-0.5 s from the cache, several seconds cold). It builds two small ladders
    on a synthetic market (the impact allocator with the Dirichlet stealth stage, and the entropy allocator), which
    also takes the pipeline's first-call Python costs (tens of µs) out of the next build's timings. Later calls
    take about 2 ms. Call it before timing a build (``hyper-make ladder`` and ``compare`` report it as ``kernel
    load``) and before a quoting loop's first refresh. ``sim_loop`` and ``replay_loop`` also load the simulator's and
    the replay's compiled strategy loops (:mod:`hyper_make.sim._loop`, :mod:`hyper_make.backtest._loop`, by a
    2-second path and a 20-second synthetic tape; tens of seconds each cold). Nothing it builds is kept: it changes no
    state.
    """
    t0 = time.perf_counter()
    timer = None
    if notice is not None:
        timer = threading.Timer(NOTICE_AFTER_S, notice, args=(_NOTICE,))
        timer.daemon = True
        timer.start()
    try:
        _build_warm_ladders(refresh_core)
        if sim_loop:
            _run_warm_path()
        if replay_loop:
            _run_warm_replay()
    finally:
        if timer is not None:
            timer.cancel()
    return time.perf_counter() - t0


_NOTICE = "compiling the numba kernels (once after install or upgrade; cached on disk for later runs)..."


def _run_warm_path() -> None:
    from ..sim.config import SimConfig, with_overrides
    from ..sim.strategy import run_path

    run_path(with_overrides(SimConfig(), horizon_s=2.0), "impact", 0)


def _run_warm_replay() -> None:
    from ..backtest.replay import replay
    from ..data.events import BUY_EVENT, DEPTH_EVENT, EXCH_EVENT, SELL_EVENT, event_dtype

    # a two-sided book (5 coins a side, 1 USD wide) moving by a tick every half second for 20 s, near the default mid
    mids = 90_000.5 + np.cumsum(np.random.default_rng(0).choice([-1.0, 0.0, 1.0], size=40))
    rows = []
    for i, m in enumerate(mids):
        t = 1_700_000_000_000_000_000 + i * 500_000_000
        for k, flag in ((-0.5, BUY_EVENT), (0.5, SELL_EVENT)):
            if i:
                rows.append((DEPTH_EVENT | flag | EXCH_EVENT, t, t, mids[i - 1] + k, 0.0, 0, 0, 0.0))
            rows.append((DEPTH_EVENT | flag | EXCH_EVENT, t, t, m + k, 5.0, 0, 0, 0.0))
    replay(np.array(rows, dtype=event_dtype), ImpactAllocator())


def warm_market() -> tuple[Any, Any]:
    """The synthetic market the warm-ups build on: ``(MarketSnapshot, InstrumentSpec)`` (a 100 USD coin, 2 bps
    spread, 5 coins of room)."""
    from ..instrument import InstrumentSpec
    from ..snapshot import MarketSnapshot

    snap = MarketSnapshot(
        mid_usd=100.0,
        best_bid_usd=99.99,
        best_ask_usd=100.01,
        sigma_frac=1e-4,
        max_position_coins=5.0,
        margin_usd=1_000.0,
        daily_volume_coins=1e5,
    )
    return snap, InstrumentSpec(coin="WARMUP", sz_decimals=2)


def _build_warm_ladders(refresh_core: bool) -> None:
    from ..ladder import LadderConfig, build_ladder
    from ..levels import GridConfig
    from ..stealth import StealthConfig

    snap, spec = warm_market()
    cfg = LadderConfig(grid=GridConfig(n_levels=6), stealth=StealthConfig(mode="dirichlet"))
    build_ladder(snap, spec, ImpactAllocator(), config=cfg, rng=np.random.default_rng(0))
    build_ladder(snap, spec, EntropyAllocator(), config=LadderConfig(grid=cfg.grid), rng=np.random.default_rng(0))
    learned = LearnedAllocator()
    build_ladder(snap, spec, learned, config=LadderConfig(grid=cfg.grid), rng=np.random.default_rng(0))
    if not refresh_core:  # a one-shot ladder: no learner update, no compiled ladder path to load
        return
    from ..learn import LevelObservations

    lrn = learned.new_learner("WARMUP", LadderConfig(), maker_fee_bps=0.0, sigma_frac_per_sqrt_s=1e-4)
    fill = ("bid", 1.0, 0.01, 100.0, (0.0, 0.0))
    lrn.update(
        LevelObservations.build(1.0, [("bid", 1.0, 0.01, 1.0)], [fill], horizons_s=lrn.config.markout_horizons_s)
    )
    try:
        from ..fast import warm_up as fast_warm_up  # the refresh core's compiled ladder path
    except ImportError:  # the refresh core then builds with the reference (and says so)
        return
    fast_warm_up()


__all__ = [
    "ALLOCATORS",
    "AllocationResult",
    "Allocator",
    "Binding",
    "ConcaveSolution",
    "EntropyAllocator",
    "EntropyState",
    "FlatAllocator",
    "GreedyAllocator",
    "ImpactAllocator",
    "ImpactDirichletAllocator",
    "ImpactPosteriorAllocator",
    "LadderContext",
    "LearnedAllocation",
    "LearnedAllocator",
    "LearnedArrays",
    "ProgressionAllocator",
    "SideProblem",
    "allocate_concave",
    "empty_result",
    "entropy_nats",
    "make_allocator",
    "project_to_min_entropy",
    "warm_up",
    "water_fill",
]
