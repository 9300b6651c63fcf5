"""Session fixtures: each real recording is parsed once for all data tests."""

from __future__ import annotations

import pytest

from data._files import FUTURES, HYPERLIQUID, SPOT, real
from hyper_make.data import load_events


@pytest.fixture(scope="session")
def futures():
    """(events, report) of the Binance USD-M futures recording."""
    return load_events(real(FUTURES))


@pytest.fixture(scope="session")
def spot():
    return load_events(real(SPOT))


@pytest.fixture(scope="session")
def hyperliquid():
    return load_events(real(HYPERLIQUID))
