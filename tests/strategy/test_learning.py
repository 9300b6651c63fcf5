"""The refresh core feeds the payout learner: exposure by the trapezoid rule, fills with settled markouts, held back
until their markouts are known; the `learned` allocator on a venue learns, is deterministic, and its state
round-trips."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hyper_make import default_snapshot, default_spec, make_allocator
from hyper_make.cli import app
from hyper_make.errors import InvalidParameterError
from hyper_make.learn import load_state
from hyper_make.sim.config import SimConfig
from hyper_make.sim.strategy import initial_learner, run_path
from hyper_make.strategy.learning import LearningTap
from hyper_make.strategy.orders import Place, RestingOrder
from hyper_make.strategy.quoter import FillStats
from hyper_make.strategy.venue import BookTop, VenueFill, VenueView

T = 1_000_000_000
CLOID = "0x" + "0" * 31 + "7"


class Capture:
    """A learner that records what it is given."""

    def __init__(self, horizons):
        self.config = type("C", (), {"markout_horizons_s": tuple(horizons)})()
        self.obs = []

    def update(self, obs):
        self.obs.append(obs)
        return obs


def view(t_s, resting=(), fills=(), mid=100.0):
    return VenueView(
        ts_ns=round(t_s * T), book=BookTop(mid - 0.05, mid + 0.05, round(t_s * T)), traded_coins=0.0,
        resting=tuple(resting), pending=(), unseen=(), fills=tuple(fills), position_coins=0.0, margin_usd=1e4,
        pnl_usd=0.0, latency_s=0.0, book_interval_s=0.1,
    )  # fmt: skip


def step(fs, tap, v, mid):
    fs.observe(v.fills, v.ts_ns, mid, tap.sizes_before)
    return tap.observe(v)


def test_exposure_fills_and_markouts_reach_the_learner_as_worked_out_by_hand():
    fs = FillStats((1.0, 5.0), emit_until_s=1.0)
    learner = Capture((1.0,))
    tap = LearningTap(learner, fs)
    fs.placed([Place(CLOID, "bid", 99.9, 2.0, False, 0)], mid_usd=100.0)  # 10 bps below the mid
    rest = lambda size: [RestingOrder("bid", 99.9, size, CLOID)]  # noqa: E731
    fill = VenueFill("f1", CLOID, "bid", 99.9, 1.0, 0.01, round(1.5 * T))
    assert step(fs, tap, view(0.0), 100.0) is None
    assert step(fs, tap, view(1.0, rest(2.0)), 100.0) is None  # interval (0, 1] held: markouts 1 s late
    obs = step(fs, tap, view(2.0, rest(1.0), [fill], mid=100.2), 100.2)
    # released: (0, 1], absent then 2 coins: (0 + 2)/2 coin-s; the fill at 1.5 s is not settled yet
    assert obs.duration_s == 1.0 and obs.n_fills == 0
    assert obs.rest_size_coins.tolist() == [1.0] and obs.rest_time_s.tolist() == [1.0]
    assert obs.rest_depth_bps == pytest.approx([10.0]) and obs.rest_side.tolist() == [1]
    obs = step(fs, tap, view(3.0, mid=100.3), 100.3)
    # (1, 2]: (2 + 1)/2; the fill settles at the first refresh 1 s after it (3 s): bought at 99.9, mid 100.3
    assert obs.rest_size_coins.tolist() == [1.5] and obs.n_fills == 1
    assert obs.fill_markout_usd[0, 0] == pytest.approx(100.3 - 99.9 - 0.01)
    assert obs.fill_depth_bps[0] == pytest.approx(10.0)
    assert obs.fill_order_size_coins[0] == 2.0 and obs.fill_side_total_coins[0] == 2.0  # resting before it
    # the display drift of (1, 2]: no plan since the view at 1 s, so the 2 coins resting then; mid 100 -> 100.2
    assert obs.drift_dt_s.tolist() == [1.0] and obs.drift_display_coins.tolist() == [2.0]
    assert obs.drift_bps[0] == pytest.approx(20.0) and obs.drift_position_coins.tolist() == [0.0]
    tap.displayed(-0.5)  # a plan that shows 0.5 coins more on the asks than the bids until the next view
    obs = step(fs, tap, view(4.0, mid=100.3), 100.3)
    assert obs.rest_size_coins.tolist() == [0.5] and obs.n_fills == 0  # (2, 3]: (1 + 0)/2
    assert obs.drift_bps[0] == pytest.approx((100.3 / 100.2 - 1) * 1e4) and obs.drift_display_coins.tolist() == [1.0]
    obs = step(fs, tap, view(5.0, mid=100.3), 100.3)
    assert obs.drift_display_coins.tolist() == [-0.5]  # (3, 4]: what the plan at 3 s displayed
    assert tap.unattributed == 0


def test_a_fill_of_an_order_the_core_did_not_place_is_counted_not_learned():
    fs = FillStats((1.0,), emit_until_s=1.0)
    tap = LearningTap(Capture((1.0,)), fs)
    step(fs, tap, view(0.0), 100.0)
    step(fs, tap, view(1.0, fills=[VenueFill("x", None, "ask", 100.1, 1.0, 0.0, T)]), 100.0)
    obs = step(fs, tap, view(3.0), 100.0)
    assert obs.n_fills == 0 and tap.unattributed == 1


def test_the_learner_horizons_must_be_among_the_core_ones():
    with pytest.raises(InvalidParameterError, match=r"markout_horizons_s \[2.0\] s must be among"):
        LearningTap(Capture((2.0,)), FillStats((1.0, 5.0), emit_until_s=5.0))


def short_cfg(horizon_s=120.0):
    cfg = SimConfig()
    return dataclasses.replace(cfg, strategy=dataclasses.replace(cfg.strategy, horizon_s=horizon_s))


def test_learned_on_the_simulator_learns_is_deterministic_and_leaves_its_start_unchanged():
    cfg = short_cfg()
    start = initial_learner(cfg, make_allocator("learned"))
    before = {k: v.copy() for k, v in start.state.items()}
    a = run_path(cfg, "learned", 3, learner=start)
    b = run_path(cfg, "learned", 3, learner=start)
    assert a.pnl_usd == b.pnl_usd and a.fills == b.fills > 0
    lrn = a.learner
    assert lrn.n_updates > 0 and lrn.state["fill_count"].sum() > 0 and lrn.state["exposure_coin_s"].sum() > 0
    for k, v in b.learner.state.items():
        np.testing.assert_array_equal(v, lrn.state[k])
    for k, v in start.state.items():  # the path worked on its own copy
        np.testing.assert_array_equal(v, before[k])
    assert lrn.counters["fills_skipped"] == 0 and lrn.counters["markouts_skipped"] == 0


def test_the_reducing_side_over_the_limit_is_quoted_and_leans_in():
    """Over the limit, the inventory term makes every reducing fill worth more: the reducing side rests more and
    its first order is closer to the mid than at a flat position (posterior mean, no sampling noise)."""
    spec = default_spec()
    alloc = make_allocator("learned", sampling="mean")
    flat = default_snapshot()
    from hyper_make import build_ladder

    base = build_ladder(flat, spec, alloc, rng=0)
    for q in (0.6, 2.0):
        long = build_ladder(dataclasses.replace(flat, inventory_coins=q), spec, alloc, rng=0)
        assert long.asks and not long.bids  # the adding side is at the limit; the reducing one quotes
        assert long.ask.size_used_coins >= base.ask.size_used_coins
        assert long.asks[0].price - flat.mid_usd < base.asks[0].price - flat.mid_usd
        assert long.ask.allocation.diagnostics["coupling_usd_per_coin"] > 0  # long: asks worth more


runner = CliRunner()


def test_simulate_learner_state_round_trips_and_resumes(tmp_path):
    state = tmp_path / "learner.json"
    args = ["simulate", "--paths", "2", "--horizon-s", "60", "-a", "learned", "--workers", "1", "--json",
            "--learner-state", str(state)]  # fmt: skip
    r1 = runner.invoke(app, [*args, "--out", str(tmp_path / "r1")])
    assert r1.exit_code == 0, r1.output
    first = load_state(state)
    assert first.n_updates > 0
    diag = json.loads((tmp_path / "r1" / "learner_diagnostics.json").read_text())
    assert diag["size_fit"]["preferred"] in ("sqrt", "linear", "undecided")
    assert len(diag["bid"]["markout_mean_bps"]) == first.config.n_buckets == len(diag["realised"]["ask"]["fills"])
    assert (tmp_path / "r1" / "learned_value.png").stat().st_size > 10_000
    r2 = runner.invoke(app, [*args, "--out", str(tmp_path / "r2"), "--seed", "5"])
    assert r2.exit_code == 0, r2.output
    second = load_state(state)
    assert second.n_updates > first.n_updates  # the second run started from what the first learned
    assert second.clock_s > first.clock_s


def test_a_bad_learner_state_is_one_line_and_left_as_it_is(tmp_path):
    state = tmp_path / "learner.json"
    args = ["simulate", "--paths", "1", "--horizon-s", "20", "-a", "learned", "--workers", "1", "--json"]
    assert runner.invoke(app, [*args, "--learner-state", str(state), "--out", str(tmp_path / "r")]).exit_code == 0
    doc = json.loads(state.read_text())
    doc["coin"] = "ETH"
    other = tmp_path / "eth.json"
    other.write_text(json.dumps(doc))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema_version": 1,')
    for path, needle in ((other, "coin"), (corrupt, "not valid JSON")):
        text = path.read_text()
        r = runner.invoke(app, [*args, "--learner-state", str(path), "--out", str(tmp_path / "r2")])
        assert r.exit_code == 2, r.output
        err = r.stderr if hasattr(r, "stderr") else r.output
        line = [x for x in err.splitlines() if x.startswith("error:")]
        assert line and str(path.name) in line[0] and needle in line[0]
        assert path.read_text() == text  # nothing overwritten
    r = runner.invoke(app, ["simulate", "--paths", "1", "-a", "entropy", "--learner-state", str(state)])
    assert r.exit_code == 2 and "needs an allocator that learns" in (r.stderr if hasattr(r, "stderr") else r.output)


def test_a_regime_grid_runs_learned_and_refuses_a_learner_state(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[[grid.regime]]\nname = "fee0"\n"sim.market.maker_fee_bps" = 0.0\n')
    args = ["simulate", "--grid", str(grid), "--paths", "1", "--horizon-s", "10", "-a", "learned,flat", "--workers",
            "1", "--json", "--out", str(tmp_path / "g")]  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)["regimes"]["fee0"]["strategies"]) == {"learned", "flat"}
    r = runner.invoke(app, [*args, "--learner-state", str(tmp_path / "s.json")])
    assert r.exit_code == 2 and "'--learner-state' is for one market" in r.output


def test_ladder_and_compare_read_a_learner_state(tmp_path):
    state = tmp_path / "s.json"
    args = ["simulate", "--paths", "1", "--horizon-s", "30", "-a", "learned", "--workers", "1", "--json"]
    assert runner.invoke(app, [*args, "--learner-state", str(state), "--out", str(tmp_path / "r")]).exit_code == 0
    before = state.read_text()
    r = runner.invoke(app, ["ladder", "-a", "learned", "--learner-state", str(state), "--json"])
    assert r.exit_code == 0, r.output
    fills = json.loads(r.stdout)["sides"]["bid"]["diagnostics"]["learner_fills"]
    assert fills == pytest.approx(float(load_state(state).state["fill_count"].sum()))
    r = runner.invoke(app, ["compare", "-a", "learned", "--learner-state", str(state), "--json", "--repeats", "1"])
    assert r.exit_code == 0, r.output
    assert state.read_text() == before  # read only
    r = runner.invoke(app, ["ladder", "-a", "learned", "--learner-state", str(tmp_path / "none.json")])
    assert r.exit_code == 2 and "file not found" in r.output


def test_the_display_drift_is_fitted_with_the_position_as_a_control():
    from hyper_make.learn import LearnerConfig, LearnerPrior, LevelObservations, PayoutLearner

    rng = np.random.default_rng(4)
    n = 4000
    display = rng.normal(0.0, 0.3, n)
    position = 0.5 * display + rng.normal(0.0, 0.2, n)  # correlated with the display, as a quoter's is
    drift = 0.8 * display - 0.5 * position + rng.normal(0.0, 1.0, n)  # bps over 1 s intervals
    prior = LearnerPrior(depth_bps=np.array([0.0, 10.0]), rate_per_s=np.array([0.1, 0.01]),
                         markout_bps=np.array([-1.0, 5.0]))  # fmt: skip
    lrn = PayoutLearner(config=LearnerConfig(markout_horizons_s=(1.0, 5.0)), prior=prior)
    lrn.update(LevelObservations(
        duration_s=float(n), rest_side=np.zeros(0, np.int8), rest_depth_bps=[], rest_size_coins=[], rest_time_s=[],
        fill_side=np.zeros(0, np.int8), fill_depth_bps=[], fill_size_coins=[], fill_price_usd=[],
        fill_markout_usd=np.zeros((0, 2)), horizons_s=(1.0, 5.0), drift_dt_s=np.ones(n), drift_bps=drift,
        drift_display_coins=display, drift_position_coins=position,
    ))  # fmt: skip
    fit = lrn.display_fit()
    assert abs(fit.lambda_bps_per_coin_s - 0.8) < 3 * fit.lambda_se and fit.lambda_se < 0.1
    assert abs(fit.psi_bps_per_coin_s + 0.5) < 3 * fit.psi_se
    assert fit.noise_bps2_per_s == pytest.approx(1.0, rel=0.1) and fit.intervals == n
    mean = lrn.mean([2.0], [2.0], mid_usd=100.0, horizon_s=1.0)
    assert mean.display_bps_per_coin_s == pytest.approx(fit.lambda_bps_per_coin_s)


@pytest.mark.parametrize(("q", "lam", "costly"), [(0.4, 0.8, "ask"), (-0.4, 0.8, "bid"), (0.4, -0.8, "bid")])
def test_showing_size_the_market_leans_against_costs_only_the_side_it_hurts(q, lam, costly):
    from hyper_make.allocate._learned import _with_display_cost
    from hyper_make.allocate._twosided import SideCurves
    from hyper_make.learn import PayoutCurves

    sc = SideCurves([3.0, 2.0], [1.0, 1.0], p=[0.5, 0.2], name="x")
    z = (np.zeros(2), np.zeros(2))
    curves = PayoutCurves(sc, sc, 0.5, "sqrt", z, z, (0.0, 0.0), (0.0, 0.0), lam)
    out = _with_display_cost(curves, q, 1.0, 100.0)
    cost = abs(q * lam) * 1.0 * 100.0 * 1e-4  # USD per coin shown on the side the drift moves against the position
    hurt, free = (out.ask, out.bid) if costly == "ask" else (out.bid, out.ask)
    np.testing.assert_allclose(hurt.a, sc.a - cost)
    np.testing.assert_array_equal(free.a, sc.a)  # never a gain: no reward for pushing the price our way
    assert _with_display_cost(curves, 0.0, 1.0, 100.0) is curves  # flat: showing size costs the position nothing
