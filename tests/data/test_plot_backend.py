"""Reports and calibration plots draw on their own Agg canvas: the user's matplotlib backend is never changed."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from hyper_make.calibrate import calibrate, plot_calibration
from hyper_make.report import write_report


@pytest.fixture
def no_backend_change(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the library called matplotlib.use()")

    monkeypatch.setattr(matplotlib, "use", forbidden)
    backend = matplotlib.rcParams["backend"]
    yield
    assert matplotlib.rcParams["backend"] == backend


def test_write_report_leaves_the_backend_alone(tmp_path, no_backend_change):
    t = np.linspace(0.0, 10.0, 5)
    write_report(
        tmp_path,
        title="t",
        metrics={"a": {"mean_pnl": 1.0}, "b": {"mean_pnl": 2.0}},
        pnl_samples={"a": np.arange(5.0), "b": np.arange(5.0) + 1},
        equity={"a": (t, t), "b": (t, -t)},
        ladder_shapes={"a": np.ones((3, 4)), "b": np.zeros((3, 4))},
        decomposition={"a": {"fees": -1.0}, "b": {"fees": -2.0}},
    )
    for name in ("pnl_distribution", "equity_curves", "ladder_shapes", "pnl_decomposition"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_calibration_plots_leave_the_backend_alone(futures, tmp_path, no_backend_change):
    paths = plot_calibration(calibrate(futures[0]), tmp_path)
    assert [p.name for p in paths] == ["intensity.png", "markouts.png"]
