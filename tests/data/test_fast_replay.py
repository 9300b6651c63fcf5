"""A replay of the recording is the same on the fast and the reference ladder path: the same fills, PnL, markouts.

See ``tests/strategy/test_fast_refresh.py`` for the simulated path.
"""

from __future__ import annotations

import numpy as np
import pytest

from hyper_make.allocate import make_allocator
from hyper_make.backtest import ReplayConfig, replay
from hyper_make.config import AppConfig
from hyper_make.strategy.quoter import QuoterConfig


@pytest.mark.parametrize("allocator", ["impact", "entropy"])
def test_a_replay_is_the_same_on_the_fast_and_the_reference_path(futures, allocator: str) -> None:
    events = futures[0][:1_000_000]
    cfg = ReplayConfig(refresh_s=1.0)
    fast = replay(events, make_allocator(allocator), config=cfg)
    ref = replay(events, make_allocator(allocator), app=AppConfig(quoter=QuoterConfig(fast_path=False)), config=cfg)
    for name in ("ts_ns", "side", "price_usd", "qty_coins", "level", "mid_usd"):
        assert np.array_equal(getattr(fast.fills, name), getattr(ref.fills, name)), name
    assert fast.fills.ts_ns.shape[0] > 0  # the replay traded
    assert fast.pnl == ref.pnl and fast.markouts_bps == ref.markouts_bps
    assert np.array_equal(fast.shapes, ref.shapes)
