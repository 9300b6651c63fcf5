"""Walk-forward on a real recording: calibrate and train on its first half, judge on the second, intervals by the
block bootstrap over time."""

from __future__ import annotations

import numpy as np
import pytest

from hyper_make import make_allocator
from hyper_make.backtest.walkforward import increments, split_events, walk_forward
from hyper_make.errors import InvalidParameterError


@pytest.fixture(scope="module")
def halves(futures):
    return split_events(futures[0], 0.5)


def test_walk_forward_fits_on_the_past_and_gives_intervals_from_one_replay(halves):
    train, test = halves
    assert train["exch_ts"][-1] <= test["exch_ts"][0]
    allocs = {n: make_allocator(n) for n in ("learned", "impact", "flat")}
    res = walk_forward(train, test, allocs, block_s=20.0, n_boot=500)
    assert "[ladder.fill]" in res.calibration_toml and res.block_refreshes == 20
    assert res.learner is not None and res.learner.n_updates > 0  # trained on the first half
    for name, r in res.results.items():
        ci = res.intervals[name]
        inc = increments(r)
        assert ci["total"] == pytest.approx(float(r.equity[1][-1]))  # the increments add up to the final equity
        assert inc.size == ci["n"] and ci["lo"] <= ci["hi"] and ci["se"] >= 0
    for a in allocs:
        for b in allocs:
            if a != b:
                assert res.paired[a][b]["total"] == pytest.approx(-res.paired[b][a]["total"])
    again = walk_forward(train, test, allocs, block_s=20.0, n_boot=500)
    assert again.intervals == res.intervals  # seeded


def test_walk_forward_bad_input(halves):
    train, test = halves
    with pytest.raises(InvalidParameterError, match="'block_s' must be at least the refresh interval"):
        walk_forward(train, test, {"flat": make_allocator("flat")}, block_s=0.1)
    with pytest.raises(InvalidParameterError, match="'train_frac' must be in"):
        split_events(train, 1.5)


def test_backtest_train_frac_through_the_cli(tmp_path):
    import json

    from typer.testing import CliRunner

    from data._files import FUTURES, real
    from hyper_make.cli import app

    runner = CliRunner()
    f = str(real(FUTURES))
    r = runner.invoke(app, ["backtest", f, "--train-frac", "0.5", "--block-s", "20", "-a", "impact,flat", "--json",
                            "--out", str(tmp_path / "wf")])  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["walk_forward"]["block_s"] == 20.0 and set(doc["allocators"]) == {"impact", "flat"}
    assert "pnl_ci_lo" in doc["allocators"]["flat"] and (tmp_path / "wf" / "calibration_train.toml").exists()
    from data._files import SPOT

    r = runner.invoke(app, ["backtest", f, str(real(SPOT)), "--train-frac", "0.5", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "'--train-frac' splits one recording" in r.output
    r = runner.invoke(app, ["backtest", f, "--train", f, "--train-frac", "0.5", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "not both" in r.output
    r = runner.invoke(app, ["backtest", f, "--train-frac", "1.5", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "'--train-frac' must be in (0, 1)" in r.output  # the option, not the argument
    r = runner.invoke(app, ["backtest", "--test", f, "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "give '--train FILE' too" in r.output
    r = runner.invoke(app, ["backtest", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "give the data to replay" in r.output
    # --train FILES --test FILES, as the issue spells it: train on the spot recording, test on the futures one
    r = runner.invoke(app, ["backtest", "--train", str(real(SPOT)), "--test", f, "-a", "flat", "--json",
                            "--block-s", "20", "--out", str(tmp_path / "wf2")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["allocators"]["flat"]["fills"] > 0


def test_backtest_walk_forward_trains_learned_from_the_calibrated_prior(tmp_path):
    """Without a saved posterior the training starts from the prior of the models calibrated on the training half,
    not from the config's uncalibrated models (`walk_forward(learner=None)`'s contract)."""
    from typer.testing import CliRunner

    from data._files import FUTURES, real
    from hyper_make import LadderConfig, make_allocator
    from hyper_make.cli import app
    from hyper_make.learn import load_state

    state = tmp_path / "s.json"
    r = CliRunner().invoke(app, ["backtest", str(real(FUTURES)), "--train-frac", "0.5", "--block-s", "20", "-a",
                                 "learned", "--learner-state", str(state), "--out", str(tmp_path / "wf")])  # fmt: skip
    assert r.exit_code == 0, r.output
    default = make_allocator("learned").prior(LadderConfig(), maker_fee_bps=1.5, sigma_frac_per_sqrt_s=1e-4)
    assert not np.allclose(load_state(state).prior.rate_per_s[:40], default.rate_per_s[:40])
