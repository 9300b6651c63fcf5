"""``hyper-make simulate``: report folder, JSON, A-S reproduction, one-line errors, interrupted runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import forbid_calls
from hyper_make.cli import app
from hyper_make.sim import montecarlo
from hyper_make.sim.avellaneda import ASConfig, simulate_as
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.montecarlo import run_tournament

runner = CliRunner()


def test_tournament_writes_report_and_json(tmp_path):
    res = runner.invoke(
        app,
        ["simulate", "--paths", "2", "--horizon-s", "20", "--allocator", "entropy,flat", "--workers", "1",
         "--out", str(tmp_path), "--json"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert set(d["strategies"]) == {"entropy", "flat"}
    for row in d["strategies"].values():
        for key in ("mean_pnl", "std_pnl", "mean_final_inventory", "std_final_inventory", "sharpe", "impact",
                    "adverse_selection", "mean_effective_levels"):  # fmt: skip
            assert key in row
    assert "diff_vs_entropy" in d["strategies"]["flat"]
    for f in ("metrics.json", "metrics.csv", "summary.md", "pnl_distribution.png", "equity_curves.png",
              "ladder_shapes.png", "pnl_decomposition.png"):  # fmt: skip
        assert (tmp_path / f).exists(), f


def test_avellaneda_stoikov_inventory_strategy_is_less_risky():
    res = simulate_as(ASConfig(gamma=0.1), paths=300, seed=1)
    t = res.table()
    assert t["inventory"]["std_pnl"] < 0.7 * t["symmetric"]["std_pnl"]
    assert t["inventory"]["std_final_inventory"] < 0.5 * t["symmetric"]["std_final_inventory"]
    # the paper's γ = 0.1 table: 62.94 ± 5.89 (inventory), 67.21 ± 13.43 (symmetric)
    assert 55 < t["inventory"]["mean_pnl"] < 72 and 60 < t["symmetric"]["mean_pnl"] < 75


def test_avellaneda_stoikov_cli_json(tmp_path):
    res = runner.invoke(
        app, ["simulate", "--preset", "avellaneda-stoikov-2008", "--paths", "50", "--out", str(tmp_path), "--json"]
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert set(d["strategies"]) == {"inventory", "symmetric"} and d["paper"]["inventory"][0] == 62.94


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--preset", "nope"],
            "'--preset' must be one of ['default', 'thin', 'binance-usdm-btcusdt', 'hyperliquid-btc', "
            "'avellaneda-stoikov-2008']; got 'nope'",
        ),
        (["--paths", "0"], "'--paths' must be in [1, inf); got 0"),
        (["--paths", "-3"], "'--paths' must be in [1, inf); got -3"),
        (["--horizon-s", "0"], "'--horizon-s' must be in (0, inf) s; got 0.0"),
        (["--seed", "-1"], "'--seed' must be in [0, inf); got -1"),
        (["--workers", "0"], "'--workers' must be in [1, inf); got 0"),
        (["--gamma", "0.5"], "'--gamma' is for --preset avellaneda-stoikov-2008"),
        (["--allocator", "entropy,nope"], "'--allocator' must name allocators among ["),
        (["--preset", "avellaneda-stoikov-2008", "--gamma", "-1"], "'--gamma' must be in (0, inf); got -1.0"),
        (["--preset", "avellaneda-stoikov-2008", "--allocator", "impact"], "must name strategies among"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    res = runner.invoke(app, ["simulate", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


@pytest.fixture
def no_simulation(monkeypatch):
    forbid_calls(monkeypatch, "hyper_make.cli.simulate.run_tournament", "hyper_make.cli.simulate.simulate_as")


@pytest.mark.parametrize("preset", ["default", "avellaneda-stoikov-2008"])
def test_an_unusable_out_folder_is_refused_before_the_simulation(tmp_path, no_simulation, preset):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, message in [
        (afile, f"error: '--out' {afile} is an existing file; give a folder"),
        (afile / "sub", f"error: '--out' {afile / 'sub'}: {afile} is a file, not a folder"),
    ]:
        res = runner.invoke(app, ["simulate", "--preset", preset, "--out", str(out)])
        assert res.exit_code == 2 and res.stderr.startswith(message) and res.stderr.count("\n") == 1, res.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[market]\nmaker_fee_bps = -1.0\n", "config key 'market.maker_fee_bps' is not used by simulate"),
        ("[market]\nmaker_fee_bps = -1.0\n", "set 'sim.market.maker_fee_bps'"),
        ("[market]\nbest_bid_usd = 1.0\n", "'market.best_bid_usd' is not used by simulate"),
        ("[instrument]\ncoin = 'ETH'\n", "config section [instrument] is not used by simulate"),
        ("[sim.as]\ngamma = 0.5\n", "unknown config key 'sim.as'; valid keys are ['market', 'strategy'] ([sim.as] is"),
        ("[sim]\nmarket = 3\n", "config key 'sim.market' must be a table"),
        ("[sim.strategy]\nladder = 1\n", "the ladder's model is set in [ladder]"),
        ("[sim.market]\nmaker_fee_bps = nan\n", "config key 'sim.market.maker_fee_bps' must be in [-10, 100] bps"),
    ],
)
def test_a_config_field_is_used_or_refused(tmp_path, no_simulation, text, message):
    cfg = tmp_path / "sim.toml"
    cfg.write_text(text)
    res = runner.invoke(app, ["simulate", "--config", str(cfg), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and message in res.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sim.as]\ngamma = nan\n", "config key 'sim.as.gamma' must be in (0, inf); got nan"),
        ("[sim.as]\ngama = 0.5\n", "unknown config key 'sim.as.gama'; valid keys are ['s0', 'horizon'"),
        ("[sim.as]\nk = 'x'\n", "config key 'sim.as.k' must be a real number"),
        ("[ladder]\nhorizon_s = 5.0\n", "config section [ladder] is not used by the avellaneda-stoikov-2008 preset"),
        ("[sim.market]\nmo_rate_per_s = 1.0\n", "config section [sim.market] is not used by the avellaneda"),
    ],
)
def test_the_avellaneda_stoikov_preset_reads_its_config(tmp_path, no_simulation, text, message):
    cfg = tmp_path / "as.toml"
    cfg.write_text(text)
    res = runner.invoke(app, ["simulate", "--preset", "avellaneda-stoikov-2008", "--config", str(cfg)])
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and message in res.stderr


def test_the_avellaneda_stoikov_config_is_used(tmp_path):
    cfg = tmp_path / "as.toml"
    cfg.write_text("[sim.as]\ngamma = 0.5\nsigma = 1.0\n")
    res = runner.invoke(
        app, ["simulate", "--preset", "avellaneda-stoikov-2008", "--paths", "20", "--out", str(tmp_path), "--json",
              "--config", str(cfg)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    expected = simulate_as(ASConfig(gamma=0.5, sigma=1.0), paths=20, seed=0).table()
    assert d["gamma"] == 0.5
    for s in ("inventory", "symmetric"):
        assert d["strategies"][s] == pytest.approx(expected[s])
    assert d["paper"] is None  # the paper's table is for sigma = 2


def test_probability_outside_unit_interval_in_config(tmp_path):
    cfg = tmp_path / "sim.toml"
    cfg.write_text("[sim.market]\ninformed_frac = 1.5\n")
    res = runner.invoke(app, ["simulate", "--config", str(cfg), "--paths", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert res.stderr.strip().count("\n") == 0 and "informed_frac" in res.stderr and "[0, 1]" in res.stderr
    cfg.write_text("[sim.market]\nnot_a_field = 1\n")
    res = runner.invoke(app, ["simulate", "--config", str(cfg), "--paths", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "sim.market.not_a_field" in res.stderr


def test_interrupt_keeps_finished_paths(monkeypatch):
    calls = {"n": 0}
    real = montecarlo._task

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(montecarlo, "_task", flaky)
    cfg = with_overrides(SimConfig(), horizon_s=10.0)
    tour = run_tournament(cfg, allocators=["entropy", "flat"], paths=3, workers=1)
    assert tour.interrupted and tour.finished == 2
    assert tour.common_paths() == [0]
    m = tour.metrics()
    assert np.isfinite(m["entropy"]["mean_pnl"])


def test_ctrl_c_in_the_cli_keeps_a_partial_report_and_exits_130(monkeypatch, tmp_path):
    calls = {"n": 0}
    real = montecarlo._task

    def ctrl_c_at_the_third_run(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(montecarlo, "_task", ctrl_c_at_the_third_run)
    args = ["simulate", "--paths", "2", "--horizon-s", "5", "-a", "flat", "--workers", "1", "--out", str(tmp_path)]
    res = runner.invoke(app, [*args, "--paths", "3"])
    assert res.exit_code == 130, res.output
    last = res.stderr.strip().splitlines()[-1]
    assert last == f"interrupted: kept 2 finished (allocator, path) runs in a partial report in {tmp_path}"
    assert "INTERRUPTED (Ctrl-C): partial results from 2 of 3 runs" in (tmp_path / "summary.md").read_text()
