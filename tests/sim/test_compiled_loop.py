"""The compiled strategy loop (sim/_loop.py) against the Python loop: the same path, fill for fill.

The Python loop (the refresh core in Python, the ladder on the fast path) is the reference; every field of the
path's result must be identical, not close: the loops must be one strategy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from hyper_make import make_allocator
from hyper_make.sim._loop import loop_reason
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.strategy import run_path
from hyper_make.strategy.orders import OrderManagerConfig

BASE = with_overrides(SimConfig(), horizon_s=300.0)


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    scalars = (
        "pnl_usd", "final_inventory_coins", "peak_inventory_coins", "fills", "maker_volume_coins", "taker_volume_coins",
        "max_drawdown_usd", "effective_levels", "decomposition", "events", "stats",
    )  # fmt: skip
    for name in scalars:
        assert getattr(a, name) == getattr(b, name), name
    for name in ("equity", "shapes", "vol_hist"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        elif isinstance(x, tuple):
            for u, v in zip(x, y, strict=True):
                np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["impact", "greedy", "flat", "progression", "entropy", "impact-dirichlet"])
def test_compiled_loop_gives_the_python_loop_path(name: str) -> None:
    fills = 0
    for seed in (1, 3):
        fast = run_path(BASE, name, seed, record=True)
        slow = run_path(BASE, name, seed, record=True, compiled=False)
        _same(fast, slow)
        fills += fast.fills
    assert fills > 0


def test_compiled_loop_with_guards_that_bite() -> None:
    """A tight position limit (the fit defers additions and releases them), reduce-only orders, a wide requote
    threshold (orders kept), a drawdown stop that fires: still the same path."""
    cases = [
        with_overrides(BASE, max_position_coins=0.05),
        with_overrides(BASE, quoter=replace(BASE.strategy.quoter, orders=OrderManagerConfig(reduce_only=True))),
        with_overrides(BASE, quoter=replace(BASE.strategy.quoter, orders=OrderManagerConfig(requote_price_bps=20.0))),
        with_overrides(BASE, quoter=replace(BASE.strategy.quoter, max_drawdown_usd=0.5)),
    ]
    for cfg in cases:
        for seed in (1, 2):
            _same(
                run_path(cfg, "impact", seed, record=True), run_path(cfg, "impact", seed, record=True, compiled=False)
            )
    stopped = run_path(cases[-1], "impact", 1)
    assert stopped.stats["risk_stops"] == 1.0


def test_what_runs_in_python_says_why() -> None:
    from hyper_make.defaults import default_spec
    from hyper_make.ladder import LadderConfig
    from hyper_make.levels import GridConfig
    from hyper_make.sim.market import Market
    from hyper_make.sim.strategy import snapshot_from
    from hyper_make.strategy.orders import CloidFactory
    from hyper_make.strategy.quoter import Quoter, QuoterConfig

    prior = snapshot_from(Market(BASE.market, 0), BASE)

    def quoter(alloc: str, ladder: LadderConfig, **cfg: object) -> Quoter:
        return Quoter(
            spec=default_spec(), allocator=make_allocator(alloc), prior=prior, ladder=ladder,
            config=QuoterConfig(**cfg), cloids=CloidFactory(0),  # type: ignore[arg-type]
        )  # fmt: skip

    assert loop_reason(quoter("impact", BASE.strategy.ladder)) == ""
    assert "learns" in loop_reason(quoter("learned", BASE.strategy.ladder))
    assert "fast path is off" in loop_reason(quoter("impact", BASE.strategy.ladder, fast_path=False))
    glft = replace(BASE.strategy.ladder, grid=GridConfig(touch="glft"))
    assert "GLFT" in loop_reason(quoter("impact", glft))


def test_a_path_split_into_short_stretches_is_the_same_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop hands control back to Python every STRETCH refreshes (Ctrl-C): its state carries across exactly."""
    from hyper_make.sim import _loop

    cfg = with_overrides(BASE, max_position_coins=0.05)  # deferrals and releases at many refreshes
    whole = run_path(cfg, "impact", 2, record=True)
    monkeypatch.setattr(_loop, "STRETCH", 7)
    _same(run_path(cfg, "impact", 2, record=True), whole)
    _same(run_path(cfg, "impact", 2, record=True, compiled=False), whole)
