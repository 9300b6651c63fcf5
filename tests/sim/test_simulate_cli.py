"""``hyper-make simulate``: report folder, JSON, A-S reproduction, one-line errors, interrupted runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hyper_make.cli import app
from hyper_make.sim import montecarlo
from hyper_make.sim.avellaneda import ASConfig, simulate_as
from hyper_make.sim.config import SimConfig, with_overrides
from hyper_make.sim.montecarlo import run_tournament

runner = CliRunner()


def test_tournament_writes_report_and_json(tmp_path):
    res = runner.invoke(
        app,
        ["simulate", "--paths", "2", "--horizon", "20", "--allocators", "entropy,flat", "--workers", "1",
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
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--paths", "0"], "'--paths' must be a positive integer"),
        (["--paths", "-3"], "'--paths' must be a positive integer"),
        (["--horizon", "0"], "'--horizon' must be > 0"),
        (["--allocators", "entropy,nope"], "unknown allocator 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    res = runner.invoke(app, ["simulate", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


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
