"""Simulator presets fitted from a recording: the depth profile, the fit on the simulator's own recordings (known
parameters), the TOML round trip, the shipped presets, the stylised-facts comparison and bad input."""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from hyper_make.calibrate.facts import _SIZE_EDGES, FactsAccumulator, _hist_quantile, _tail_fit, compare
from hyper_make.calibrate.preset import fit_preset, market_from_toml, measure, simulated_facts
from hyper_make.cli import app
from hyper_make.cli.simulate import load_sim_config
from hyper_make.errors import ConfigError, DataError, InvalidParameterError
from hyper_make.sim import market as mk
from hyper_make.sim.config import FITTED_PRESETS, PRESET_NAMES, PRESETS, MarketConfig, SimConfig, get_preset
from hyper_make.sim.recording import record_market
from hyper_make.sim.strategy import run_path

runner = CliRunner()

#: a market with known parameters: deep enough that the best level is seldom emptied, jumps and informed orders
KNOWN = replace(
    MarketConfig(), depth_per_tick_coins=2.0, jump_rate_per_s=0.05, jump_std_bps=8.0, informed_frac=0.3,
    informed_move_bps=1.5, informed_size_mult=1.0, half_spread_ticks=0.3, refill_rate_per_s=1.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def known_fit():
    ev = record_market(KNOWN, seed=3, horizon_s=300.0, levels=60)
    return fit_preset(ev, refill=False)


# ---- the depth profile --------------------------------------------------------------------------------------
def test_a_one_segment_flat_profile_is_the_linear_law_with_zero_slope_bit_for_bit():
    lin = replace(MarketConfig(), depth_slope_per_tick=0.0)
    prof = replace(lin, depth_profile_ticks=(0,), depth_profile_coins=(lin.depth_per_tick_coins,))
    a, b = mk.Market(lin, 7), mk.Market(prof, 7)
    for t in (5.0, 30.0, 60.0):
        a.run_until(t)
        b.run_until(t)
    assert np.array_equal(a.s, b.s) and np.array_equal(a.deficit, b.deficit)


def test_the_default_market_path_is_unchanged_by_the_new_market_features():
    # the values of the market before profiles, size tables and sign memory (`hyper-make simulate --json` gave
    # the same tournament before and after each of them)
    m = mk.Market(MarketConfig(), 1)
    m.run_until(60.0)
    assert float(m.s[mk.S_F]) == 89875.26076863034 and int(m.s[mk.S_EVENTS]) == 986 and int(m.s[mk.S_MOS]) == 377
    assert float(m.deficit.sum()) == 11.924795248778704


def test_order_flow_memory_gives_the_stated_sign_autocorrelation():
    w, phi = 0.5, 0.9
    cfg = replace(MarketConfig(), mo_sign_trend_share=w, mo_sign_trend_persistence=phi)
    m = mk.Market(cfg, 0)
    rng = np.random.default_rng(1)
    signs = np.array([mk._signed_flow(m.p, m.s, a, b) for a, b in rng.random((100_000, 2))], dtype=float)
    assert abs(signs.mean()) < 0.05
    for lag in (1, 3, 10):
        acf = np.corrcoef(signs[:-lag], signs[lag:])[0, 1]
        assert acf == pytest.approx(w * w * phi**lag, abs=0.02)


def test_the_book_shows_the_profile_segment_of_each_tick():
    cfg = replace(
        MarketConfig(), depth_profile_ticks=(0, 1, 3), depth_profile_coins=(1.0, 2.0, 5.0), mo_rate_per_s=1e-9
    )
    m = mk.Market(cfg, 0)
    _, _, bq, aq = m.book_levels(6)
    assert bq.tolist() == [1.0, 2.0, 2.0, 5.0, 5.0, 5.0] and aq.tolist() == bq.tolist()


@pytest.mark.parametrize(
    ("ticks", "coins", "field"),
    [
        ((0, 2), (1.0,), "the same length"),
        ((1, 2), (1.0, 1.0), "must start at 0"),
        ((0, 2, 2), (1.0, 1.0, 1.0), "depth_profile_ticks[2]"),
        ((0, 1), (1.0, -1.0), "depth_profile_coins[1]"),
        ((0, 1.5), (1.0, 1.0), "depth_profile_ticks[1]"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(ticks, coins, field):
    with pytest.raises(InvalidParameterError, match=field.replace("[", r"\[").replace("]", r"\]")):
        MarketConfig(depth_profile_ticks=ticks, depth_profile_coins=coins)


def test_a_size_table_draws_its_quantiles_and_the_pareto_tail_beyond():
    cfg = replace(MarketConfig(), mo_size_table_probs=(0.0, 0.5, 0.9), mo_size_table_coins=(0.001, 0.01, 0.1),
                  mo_size_tail=2.0)  # fmt: skip
    m = mk.Market(cfg, 0)
    assert mk._mo_size(m.p, 0.0) == pytest.approx(0.001) and mk._mo_size(m.p, 0.5) == pytest.approx(0.01)
    assert mk._mo_size(m.p, 0.7) == pytest.approx(math.sqrt(0.01 * 0.1))  # log-linear between points
    assert mk._mo_size(m.p, 0.99) == pytest.approx(0.1 * 10.0**0.5)  # tail: x_n·((1-u)/(1-u_n))^(-1/α)
    xs = np.array([mk._mo_size(m.p, u) for u in np.random.default_rng(0).random(20_000)])
    assert np.minimum(xs, cfg.mo_size_max_coins).mean() == pytest.approx(cfg.mean_mo_size_coins, rel=0.05)


@pytest.mark.parametrize(
    ("probs", "coins", "field"),
    [
        ((0.0, 0.5), (0.01,), "the same length"),
        ((0.1, 0.5), (0.01, 0.02), "must start at 0"),
        ((0.0, 0.5, 0.5), (0.01, 0.02, 0.03), "mo_size_table_probs[2]"),
        ((0.0, 1.0), (0.01, 0.02), "mo_size_table_probs[1]"),
        ((0.0, 0.5), (0.02, 0.01), "mo_size_table_coins[1]"),
    ],
)
def test_a_bad_size_table_is_refused_naming_the_field(probs, coins, field):
    with pytest.raises(InvalidParameterError, match=field.replace("[", r"\[").replace("]", r"\]")):
        MarketConfig(mo_size_table_probs=probs, mo_size_table_coins=coins)


# ---- the fit on the simulator's own recording -----------------------------------------------------------------
def test_the_fit_recovers_the_known_market(known_fit):
    m, se, k = known_fit.market, known_fit.stderr, KNOWN
    assert not {"mo_size_tail", "informed_frac", "informed_move_bps", "sigma_bps_per_sqrt_s"} & set(
        known_fit.not_fitted
    )
    assert m.tick_usd == k.tick_usd and abs(m.mid0_usd - k.mid0_usd) / k.mid0_usd < 0.01
    assert m.half_spread_ticks == pytest.approx(k.half_spread_ticks, abs=0.05)
    assert m.depth_profile_ticks[0] == 0 and m.depth_profile_coins[0] == pytest.approx(2.0, rel=0.1)
    # the usual depth grows 5 % a tick: the profile's segment starting at tick 9 holds ~2·(1 + 0.05·10)
    i = m.depth_profile_ticks.index(9)
    assert m.depth_profile_coins[i] == pytest.approx(2.0 * 1.5, rel=0.1)
    assert m.mo_rate_per_s == pytest.approx(k.mo_rate_per_s, abs=3 * se["mo_rate_per_s"])
    assert m.mo_size_tail == pytest.approx(k.mo_size_tail, abs=3 * se["mo_size_tail"])
    assert m.mo_size_min_coins == pytest.approx(k.mo_size_min_coins, rel=0.1)
    assert m.informed_frac * m.informed_move_bps == pytest.approx(k.informed_frac * k.informed_move_bps, rel=0.3)
    assert abs(m.informed_frac - k.informed_frac) < 2.5 * se["informed_frac"]
    assert m.total_sigma_bps_per_sqrt_s == pytest.approx(k.total_sigma_bps_per_sqrt_s, rel=0.25)
    assert m.jump_std_bps == pytest.approx(k.jump_std_bps, rel=0.3)
    assert k.jump_rate_per_s / 2 < m.jump_rate_per_s < 2 * k.jump_rate_per_s
    assert known_fit.not_fitted["refill_rate_per_s"] == "refill fit skipped"
    assert m.mo_sign_trend_share == 0.0  # independent signs are fitted as such
    # the size table holds the recorded quantiles: the fitted market draws the recording's sizes
    sim = simulated_facts(m, seed=9, horizon_s=300.0)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert sim.size_quantiles_coins[q] == pytest.approx(known_fit.facts.size_quantiles_coins[q], rel=0.2)


def test_a_size_body_that_is_not_pareto_is_fitted_as_a_table():
    cfg = replace(KNOWN, mo_size_table_probs=(0.0, 0.5, 0.9), mo_size_table_coins=(0.001, 0.01, 0.1),
                  mo_size_tail=1.5)  # fmt: skip
    fit = fit_preset(record_market(cfg, seed=4, horizon_s=300.0, levels=30), refill=False)
    m = fit.market
    assert m.mo_size_table_probs[0] == 0.0 and len(m.mo_size_table_probs) >= 5
    assert m.mo_size_tail == pytest.approx(1.5, abs=3 * fit.stderr["mo_size_tail"])
    sim = simulated_facts(m, seed=9, horizon_s=300.0)
    for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        assert sim.size_quantiles_coins[q] == pytest.approx(fit.facts.size_quantiles_coins[q], rel=0.25), q


def test_the_order_flow_memory_is_fitted_from_the_sign_autocorrelation():
    cfg = replace(KNOWN, mo_sign_trend_share=0.45, mo_sign_trend_persistence=0.9, mo_rate_per_s=15.0)
    fit = fit_preset(record_market(cfg, seed=2, horizon_s=300.0, levels=30), refill=False)
    assert fit.market.mo_sign_trend_share == pytest.approx(0.45, abs=0.15)
    assert fit.market.mo_sign_trend_persistence == pytest.approx(0.9, abs=0.06)
    sim = simulated_facts(fit.market, seed=3, horizon_s=300.0)
    assert np.all(np.abs(sim.sign_acf[:5] - fit.facts.sign_acf[:5]) < 0.1)
    a, b = record_market(cfg, seed=2, horizon_s=20.0, levels=10), record_market(cfg, seed=2, horizon_s=20.0, levels=10)
    assert np.array_equal(a, b)  # every random part seeded


def test_the_refill_rate_is_found_by_simulation_where_the_best_level_empties():
    # the thin default market: trades empty the best level often, so its recovery shows the refill rate
    # (informed orders of the same size law as the others: the fit's model; the default's 4x larger informed orders
    # make the size law a mixture the fit does not hold, and bias the refill rate found)
    true = 1.0
    cfg = replace(MarketConfig(), refill_rate_per_s=true, informed_size_mult=1.0)
    ev = record_market(cfg, seed=3, horizon_s=300.0, levels=110)
    fit = fit_preset(ev)
    assert "refill_rate_per_s" not in fit.not_fitted, fit.not_fitted
    assert true / 2 <= fit.market.refill_rate_per_s <= true * 2
    # the usual depth is deeper than what the trades leave visible: the profile was scaled up towards the truth
    assert fit.facts.depth_profile_coins[0] < fit.market.depth_profile_coins[0] <= 1.5 * 0.05


def test_a_deep_market_says_the_refill_rate_is_not_identified(known_fit):
    from hyper_make.calibrate.preset import fit_market

    fit = fit_market(known_fit.facts, refill=True, seed=1)
    assert "not identified" in fit.not_fitted["refill_rate_per_s"]
    assert fit.market.refill_rate_per_s == MarketConfig().refill_rate_per_s  # the default is kept


def test_a_short_recording_names_each_parameter_it_cannot_fit_and_keeps_the_rest():
    ev = record_market(KNOWN, seed=1, horizon_s=5.0, levels=30)  # ~30 orders, under 60 returns of 1 s
    fit = fit_preset(ev, refill=False)
    assert "fewer than 50 market orders" in fit.not_fitted["mo_size_tail"]
    assert "60 or 30 needed" in fit.not_fitted["sigma_bps_per_sqrt_s"]
    for k in ("mo_size_tail", "informed_frac", "informed_move_bps", "sigma_bps_per_sqrt_s", "jump_rate_per_s"):
        assert k in fit.not_fitted
        assert getattr(fit.market, k) == getattr(MarketConfig(), k)
    assert fit.market.mo_rate_per_s != MarketConfig().mo_rate_per_s  # the order rate is still fitted
    assert "fitted from <events>" in fit.to_toml() and "partial = true" in fit.to_toml()


def test_the_preset_round_trips_through_toml(known_fit):
    raw = tomllib.loads(known_fit.to_toml("known"))
    assert market_from_toml(raw) == known_fit.market
    assert raw["meta"]["generated_by"] == "hyper-make calibrate --sim-preset"


def test_an_unknown_key_in_a_preset_file_is_named():
    with pytest.raises(ConfigError, match=r"sim\.market\.depth_slope"):
        market_from_toml({"sim": {"market": {"depth_slope": 1.0}}}, where="x.toml")


# ---- facts ---------------------------------------------------------------------------------------------------
def test_hill_tail_and_quantiles_on_a_pareto_sample():
    rng = np.random.default_rng(0)
    x = 0.01 * (1.0 - rng.random(20_000)) ** (-1.0 / 1.6)
    idx = np.searchsorted(_SIZE_EDGES, x, side="right")
    hist = np.bincount(idx, minlength=_SIZE_EDGES.size + 1)
    logsum = np.bincount(idx, np.log(x), minlength=_SIZE_EDGES.size + 1)
    alpha, se, _, n = _tail_fit(hist, logsum)
    assert alpha == pytest.approx(1.6, abs=3 * se) and n >= 1_000
    c = np.cumsum(hist)
    assert _hist_quantile(hist, c, 0.5) == pytest.approx(np.quantile(x, 0.5), rel=0.05)
    assert _hist_quantile(hist, c, 0.99) == pytest.approx(np.quantile(x, 0.99), rel=0.05)


def test_facts_of_one_market_match_themselves_and_the_sim_has_no_sign_memory(known_fit):
    f = known_fit.facts
    rows = compare(f, f)
    assert all(r.ok for r in rows if r.measured)
    assert np.all(np.abs(f.sign_acf) < 0.1)  # independent order signs
    assert f.depth_within_bps[10.0] != f.depth_within_bps[10.0]  # NaN: the 60-level snapshots reach ~6.7 bps


def test_memory_is_flat_in_the_data():
    acc = FactsAccumulator()
    _, f = measure(record_market(KNOWN, seed=2, horizon_s=200.0, levels=20), chunk_rows=2_000)
    ev = record_market(KNOWN, seed=2, horizon_s=200.0, levels=20)
    from hyper_make.calibrate import calibrate

    calibrate(ev, observer=acc, chunk_rows=2_000)
    assert acc.buf.size <= 61.0 / 0.1 + 10  # the mid grid of the last 60 s only
    assert acc.pend_ts.size == 0
    one = acc.facts()
    assert one.n_orders == f.n_orders and one.markout_bps == pytest.approx(f.markout_bps, nan_ok=True)
    whole = measure(ev)[1]  # one chunk: the same facts as in chunks of 2,000 rows
    assert np.array_equal(whole.spread_hist, one.spread_hist) and np.array_equal(whole.size_hist, one.size_hist)
    assert whole.depth_profile_coins == pytest.approx(one.depth_profile_coins)
    assert whole.recovery_missing == pytest.approx(one.recovery_missing)
    assert whole.sign_acf == pytest.approx(one.sign_acf)
    assert whole.sigma_bps == pytest.approx(one.sigma_bps, nan_ok=True)


def test_several_files_are_one_recording(tmp_path):
    ev = record_market(KNOWN, seed=6, horizon_s=120.0, levels=20)
    cut = int(np.searchsorted(ev["exch_ts"], ev["exch_ts"][ev.size // 2], side="left"))
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, data=ev[:cut])
    np.savez(b, data=ev[cut:])
    one = measure(ev)[1]
    two = measure([a, b])[1]
    assert two.n_orders == one.n_orders and np.array_equal(two.spread_hist, one.spread_hist)
    assert two.markout_bps == pytest.approx(one.markout_bps, nan_ok=True)
    assert two.depth_profile_coins == pytest.approx(one.depth_profile_coins)


# ---- shipped presets -------------------------------------------------------------------------------------------
def test_the_shipped_presets_load_and_run():
    assert {"default", "thin", *FITTED_PRESETS} <= set(PRESET_NAMES)
    assert PRESETS["thin"] == PRESETS["default"] == SimConfig()  # the default is unchanged: the thin market
    for name in FITTED_PRESETS:
        cfg = get_preset(name)
        assert cfg.market.depth_profile_ticks[0] == 0 and cfg.market.tick_usd > 0
        short = SimConfig(market=cfg.market, strategy=replace(cfg.strategy, horizon_s=20.0))
        r = run_path(short, "entropy", 0)
        assert math.isfinite(r.pnl_usd)


def test_a_preset_file_is_a_simulate_config(tmp_path, known_fit):
    path = known_fit.write_toml(tmp_path / "p.toml")
    cfg, _ = load_sim_config(path, SimConfig())
    assert cfg.market == known_fit.market


# ---- the command -----------------------------------------------------------------------------------------------
def test_calibrate_sim_preset_and_facts_from_the_command(tmp_path):
    ev = record_market(replace(KNOWN, mo_rate_per_s=3.0), seed=5, horizon_s=30.0, levels=40)
    rec = tmp_path / "rec.npz"
    np.savez(rec, data=ev)
    out = tmp_path / "preset.toml"
    r = runner.invoke(
        app, ["calibrate", str(rec), "--out", str(tmp_path / "cal"), "--sim-preset", str(out), "--facts", "--json"]
    )
    assert r.exit_code == 0, r.output
    import json

    doc = json.loads(r.stdout)
    assert doc["sim_preset"]["toml"] == str(out) and out.exists()
    names = [row["name"] for row in doc["sim_preset"]["comparison"]]
    assert "spread, mean" in names and "markout after 1 s" in names and "σ over 10 s" in names
    assert (tmp_path / "cal" / "facts.png").exists()
    cfg, _ = load_sim_config(out, SimConfig())
    assert cfg.market.mo_rate_per_s == pytest.approx(3.0, rel=0.2)


def test_bad_input_gives_one_clear_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip at all")
    r = runner.invoke(app, ["calibrate", str(bad), "--sim-preset", str(tmp_path / "p.toml")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "bad.npz" in r.stderr
    txt = tmp_path / "x.txt"
    txt.write_text("hello\n")
    r = runner.invoke(app, ["calibrate", str(txt), "--sim-preset", str(tmp_path / "p.toml")])
    assert r.exit_code == 2 and "x.txt" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["calibrate", str(txt), "--facts"])
    assert r.exit_code == 2 and "'--facts'" in r.stderr and "--sim-preset" in r.stderr
    r = runner.invoke(app, ["calibrate", str(txt), "--sim-preset", str(tmp_path)])  # a folder, refused before work
    assert r.exit_code == 2 and "'--sim-preset'" in r.stderr and "is a folder" in r.stderr
    with pytest.raises(DataError):
        measure(np.zeros(0, dtype=record_market(KNOWN, horizon_s=1.0, levels=10).dtype))
