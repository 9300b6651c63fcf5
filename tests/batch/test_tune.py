"""``hyper-make tune``: a study stored in SQLite, interrupted and resumed; its best config accepted by simulate;
the TOML writer; one-line errors (a bad option, Ray missing)."""

from __future__ import annotations

import csv
import json
import math
import sys
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hyper_make import tune as tn
from hyper_make.cli import app

pytest.importorskip("optuna")  # the test extra installs it: these run in CI

runner = CliRunner()
ARGS = ["--paths", "2", "--horizon-s", "20", "--workers", "1", "--batch", "2", "--json"]


def _tune(out, *extra):
    return runner.invoke(app, ["tune", "--out", str(out), *ARGS, *extra])


def _values(out):
    with (out / "trials.csv").open() as fh:
        return {int(r["trial"]): (r["state"], r["value"]) for r in csv.DictReader(fh)}


def test_a_study_interrupted_mid_batch_resumes_from_sqlite_and_runs_only_what_is_missing(tmp_path, monkeypatch):
    out = tmp_path / "t"
    real = tn.run_sim_trial
    calls: list[int] = []

    def ctrl_c_in_the_second_batch(item):
        calls.append(item.trial)
        if item.trial == 2:
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(tn, "run_sim_trial", ctrl_c_in_the_second_batch)
    r = _tune(out, "--trials", "4")
    assert r.exit_code == 130, r.output
    assert "interrupted: kept 2 complete trials" in r.stderr
    first = _values(out)
    assert [first[n][0] for n in sorted(first)] == ["COMPLETE", "COMPLETE", "RUNNING", "RUNNING"]

    calls.clear()
    monkeypatch.setattr(tn, "run_sim_trial", lambda item: calls.append(item.trial) or real(item))
    r = _tune(out, "--trials", "4")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["complete_trials"] == 4 and d["resumed_trials"] == 2 and d["ran_trials"] == 2
    assert sorted(set(calls)) == [4, 5] and len(calls) == 4  # two new trials of two paths; nothing redone
    again = _values(out)
    assert again[0] == first[0] and again[1] == first[1]  # the finished trials kept their values
    assert again[2][0] == again[3][0] == "FAIL"  # the ones the stop cut short
    # the best config is a file simulate accepts, and gives the best trial's value on the same paths
    best = out / "best.toml"
    sim = runner.invoke(app, ["simulate", "--config", str(best), "-a", "impact", "--paths", "2", "--horizon-s", "20",
                              "--workers", "1", "--json", "--out", str(tmp_path / "sim")])  # fmt: skip
    assert sim.exit_code == 0, sim.output
    assert json.loads(sim.stdout)["strategies"]["impact"]["mean_pnl"] == pytest.approx(d["best_value"], abs=1e-12)
    for f in ("tune.png", "summary.md", "best_ladder.toml", "tune.json"):
        assert (out / f).exists(), f
    assert "sim" not in tomllib.loads((out / "best_ladder.toml").read_text())  # backtest/run refuse [sim]
    calls.clear()  # a third run finds the study done
    r = _tune(out, "--trials", "4")
    assert r.exit_code == 0 and not calls and json.loads(r.stdout)["ran_trials"] == 0


def test_the_sharpe_objective_is_mean_over_std_of_the_paths():
    assert tn.score("mean_pnl", [1.0, 3.0]) == 2.0
    assert tn.score("sharpe", [1.0, 3.0]) == pytest.approx(2.0 / math.sqrt(2.0))
    assert tn.score("sharpe", [2.0, 2.0]) == 0.0


def test_the_learner_parameters_go_to_the_tuned_allocator():
    doc = tn.nested({"allocator.learned.prior_fills": 3.0, "ladder.grid.n_levels": 5}, "learned")
    assert doc == {"allocator": {"learned": {"prior_fills": 3.0}}, "ladder": {"grid": {"n_levels": 5}}}
    assert [p.key for p in tn.search_space(None, learns=False, sim=False)] == [
        "ladder.risk_aversion", "ladder.grid.n_levels", "ladder.grid.max_depth_bps", "quoter.orders.requote_price_bps",
        "quoter.orders.requote_size_frac"]  # fmt: skip
    with pytest.raises(Exception, match="allocator that learns"):
        tn.search_space(["allocator.learned.prior_fills"], learns=False, sim=True)


_key = st.text("abcxyz_", min_size=1, max_size=6)
_scalar = st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                    st.text(max_size=8))  # fmt: skip
_table = st.recursive(st.dictionaries(_key, _scalar, max_size=4), lambda t: st.dictionaries(_key, t, max_size=3),
                      max_leaves=12)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(_table)
def test_the_toml_writer_round_trips(doc):
    assert tomllib.loads(tn.dump_toml(doc)) == doc


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--objective", "pnl"], "'--objective' must be one of ['mean_pnl', 'sharpe']"),
        (["--params", "ladder.nope"], "'--params': unknown parameter 'ladder.nope'"),
        (["--train", "x.gz"], "needs both '--train FILE' and '--test FILE'"),
        (["--ray", "host:99999"], "'--ray' must be 'auto' or HOST:PORT"),
        (["--ray", "auto", "--workers", "2"], "give '--ray ADDRESS' or '--workers N', not both"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, extra, message):
    r = runner.invoke(app, ["tune", "--out", str(tmp_path / "t"), "--trials", "1", *extra])
    assert r.exit_code == 2, r.output
    assert r.stderr.strip().splitlines() == [f"error: {r.stderr.strip().removeprefix('error: ')}"]
    assert message in r.stderr


def test_ray_missing_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    r = runner.invoke(app, ["simulate", "--ray", "auto", "--paths", "2", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2
    assert r.stderr.strip() == "error: '--ray' needs Ray, which is not installed: pip install 'hyper_make[cluster]'"


def test_tune_on_walk_forward_replay_writes_a_config_backtest_accepts(tmp_path):
    from batch._synthetic import market_lines
    from data._files import write_gz

    train, test = (write_gz(tmp_path / f"{n}.gz", market_lines(40, i)) for i, n in enumerate(("train", "test")))
    out = tmp_path / "t"
    r = runner.invoke(app, ["tune", "--train", str(train), "--test", str(test), "--trials", "2", "--batch", "2",
                            "--params", "ladder.risk_aversion,ladder.grid.n_levels", "--block-s", "5", "--workers",
                            "1", "--json", "--out", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["complete_trials"] == 2 and set(d["best_params"]) == {"ladder.risk_aversion", "ladder.grid.n_levels"}
    # the best config is one backtest accepts, and its walk-forward gives the best trial's test PnL (USD)
    best = str(out / "best_ladder.toml")
    bt = runner.invoke(app, ["backtest", "--train", str(train), "--test", str(test), "-a", "impact", "--block-s", "5",
                             "--config", best, "--json", "--out", str(tmp_path / "bt")])  # fmt: skip
    assert bt.exit_code == 0, bt.output
    assert json.loads(bt.stdout)["allocators"]["impact"]["pnl_usd"] == pytest.approx(d["best_value"], abs=1e-9)
