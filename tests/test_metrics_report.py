"""Shared metrics (oracles: scipy, hand-computed cases) and the report writer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from hyper_make.errors import DataError
from hyper_make.metrics import PnLDecomposition, max_drawdown, paired_ci, sharpe, summarize
from hyper_make.report import write_report


def test_paired_ci_matches_scipy_paired_t():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, 30)
    b = a - rng.normal(0.3, 0.5, 30)
    ci = paired_ci(a, b)
    ref = stats.ttest_rel(a, b)
    assert ci["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert (ci["lo"], ci["hi"]) == pytest.approx((lo, hi), rel=1e-9)


@pytest.mark.parametrize(
    ("equity", "dd"), [([0, 3, 1, 4, -2], 6.0), ([1, 2, 3], 0.0), ([5, 1], 4.0), ([], 0.0), ([2.5], 0.0)]
)
def test_max_drawdown_cases(equity, dd):
    assert max_drawdown(equity) == dd


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_max_drawdown_bounds(xs):
    dd = max_drawdown(xs)
    assert 0.0 <= dd <= max(xs) - min(xs) + 1e-9


def test_sharpe_and_summary():
    assert sharpe([1.0, 3.0]) == pytest.approx(2.0 / np.sqrt(2.0))
    assert np.isnan(sharpe([1.0, 1.0]))
    assert sharpe([1.0, 3.0], periods_per_year=4) == pytest.approx(2.0 * 2.0 / np.sqrt(2.0))
    s = summarize([1.0, 2.0, 3.0])
    assert s["mean_pnl"] == 2.0 and s["ci_lo"] < 2.0 < s["ci_hi"] and s["n"] == 3


def test_bad_metric_input():
    with pytest.raises(DataError, match="same length"):
        paired_ci([1, 2], [1])
    with pytest.raises(DataError, match="finite"):
        max_drawdown([1.0, np.nan])


def test_decomposition_total():
    d = PnLDecomposition(1.0, -2.0, -0.5, -0.25, 3.0)
    assert d.total_usd == pytest.approx(1.25) and d.to_dict()["total_usd"] == pytest.approx(1.25)


def test_write_report(tmp_path):
    rng = np.random.default_rng(1)
    path = write_report(
        tmp_path / "r",
        title="t",
        metrics={"a": {"mean_pnl": 1.0, "sharpe": float("nan")}, "b": {"mean_pnl": -1.0, "extra": 2.0}},
        pnl_samples={"a": rng.normal(size=5), "b": rng.normal(size=5)},
        equity={"a": (np.arange(4.0), np.array([0.0, 1.0, -1.0, 2.0]))},
        ladder_shapes={"a": rng.random((6, 8))},
        decomposition={"a": PnLDecomposition(1, 2, 3, 4, 5).to_dict()},
        notes=["hello"],
    )
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert doc["metrics"]["a"]["sharpe"] is None and doc["metrics"]["b"]["extra"] == 2.0
    assert (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0] == "name,mean_pnl,sharpe,extra"
    text = path.read_text()
    assert "# t" in text and "hello" in text
    for f in ("pnl_distribution.png", "equity_curves.png", "ladder_shapes.png", "pnl_decomposition.png"):
        assert (tmp_path / "r" / f).stat().st_size > 1000


def test_block_bootstrap_ci_covers_the_total_and_widens_with_autocorrelation():
    from hyper_make.metrics import block_bootstrap_ci

    rng = np.random.default_rng(0)
    white = rng.normal(0.0, 1.0, 4000)
    ci = block_bootstrap_ci(white, block_len=50, seed=1)
    assert ci["total"] == pytest.approx(white.sum()) and ci["lo"] < ci["total"] < ci["hi"]
    # i.i.d. increments: the se is about sqrt(n) (the total's own sd)
    assert ci["se"] == pytest.approx(np.sqrt(4000), rel=0.15)
    # a persistent (AR(1), φ = 0.9) series has a long-run sd sqrt((1+φ)/(1-φ)) ≈ 4.4 times larger: blocks see it
    ar = np.empty(4000)
    ar[0] = 0.0
    for i in range(1, ar.size):
        ar[i] = 0.9 * ar[i - 1] + rng.normal(0.0, np.sqrt(1 - 0.81))
    wide = block_bootstrap_ci(ar, block_len=100, seed=1)
    assert wide["se"] > 2.5 * block_bootstrap_ci(ar, block_len=1, seed=1)["se"]
    assert block_bootstrap_ci(white, block_len=50, seed=1) == ci  # seeded
    short = block_bootstrap_ci(white[:60], block_len=50)
    assert np.isnan(short["lo"]) and short["total"] == pytest.approx(white[:60].sum())
    with pytest.raises(DataError, match="'block_len' must be a positive integer"):
        block_bootstrap_ci(white, block_len=0)
    with pytest.raises(DataError, match="must be finite"):
        block_bootstrap_ci([1.0, np.nan], block_len=1)
