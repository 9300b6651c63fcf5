"""Shared fixtures: the embedded default market and the location of the recorded data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyper_make.defaults import default_snapshot, default_spec

#: ``../shared/data`` beside the checkout (never copied into the repo).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_file(name: str) -> Path:
    """Path of a recorded data file; skipped locally when absent, a failure in CI (``CI`` set)."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"recorded data file missing in CI: ../shared/data/{name}")
        pytest.skip(f"../shared/data/{name} not present")
    return path


@pytest.fixture
def snapshot():
    return default_snapshot()


@pytest.fixture
def spec():
    return default_spec()


# HYPOTHESIS_PROFILE=thorough runs many more random cases (locally, before a release)
from hypothesis import settings  # noqa: E402

settings.register_profile("thorough", max_examples=2000, deadline=None)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
