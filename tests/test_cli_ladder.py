"""``hyper-make ladder``: JSON schema, config overrides, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from helpers import DOGE_MARKET_TOML
from hyper_make import ConfigError, load_config
from hyper_make.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["ladder", *args])


def test_json_has_the_documented_schema():
    res = run("--json", "--allocator", "entropy")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    for key in ("coin", "mid", "sz_decimals", "min_notional", "allocator", "bids", "asks", "sides"):
        assert key in d
    assert d["coin"] == "BTC" and d["sz_decimals"] == 5 and d["min_notional"] == 10.0
    assert d["allocator"] == "entropy"
    for side in ("bid", "ask"):
        for key in ("budget", "size_used", "entropy", "effective_levels", "expected_pnl", "shadow_price", "binding"):
            assert key in d["sides"][side]
    for o in d["bids"] + d["asks"]:
        assert set(o) >= {"price", "size", "depth_bps"}
    assert [o["price"] for o in d["bids"]] == sorted((o["price"] for o in d["bids"]), reverse=True)
    assert [o["price"] for o in d["asks"]] == sorted(o["price"] for o in d["asks"])


def test_entropy_prints_a_deprecation_notice_on_stderr_only():
    res = run("--json", "--allocator", "entropy")
    assert "deprecated" in res.stderr
    json.loads(res.stdout)  # stdout stays pure JSON


def test_table_output():
    res = run("--allocator", "entropy")
    assert res.exit_code == 0
    assert "per-side diagnostics" in res.stdout and "effective levels" in res.stdout


def test_same_seed_same_ladder_different_seed_differs():
    a, b, c = (json.loads(run("--json", "-a", "entropy", "--seed", s).stdout) for s in ("1", "1", "2"))
    assert a["bids"] == b["bids"]
    assert a["bids"] != c["bids"]


def test_config_overrides_snapshot_instrument_and_allocator(tmp_path):
    cfg = tmp_path / "sol.toml"
    cfg.write_text(
        """
[market]
mid_usd = 150.005
best_bid_usd = 150.0
best_ask_usd = 150.01
inventory_coins = -20.0
max_position_coins = 200.0
margin_usd = 2000.0
daily_volume_coins = 5000000.0

[market.regime]
toxicity = 2.0

[instrument]
coin = "SOL"

[ladder.grid]
n_levels = 8
spacing = "linear"

[ladder.fill]
kind = "first_passage"

[allocator]
name = "entropy"

[allocator.entropy]
thompson_samples = 0
"""
    )
    res = run("--json", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["coin"] == "SOL" and d["sz_decimals"] == 2 and d["mid"] == 150.005
    # margin 2000 USD at 20x buys 266.7 SOL plus the 20 the bids would reduce: the position room (220) binds
    assert d["sides"]["bid"]["budget"] == pytest.approx(220.0)
    assert d["sides"]["bid"]["budget_binding"] == "position"
    assert len(d["bids"]) <= 8
    # short inventory: bids may add max + 20, asks max − 20 (before margin)
    assert d["sides"]["ask"]["budget"] <= 180.0 + 1e-9


BAD_CONFIGS = [
    ("[market]\nmid_usd = 'abc'\n", "config key 'market.mid_usd' must be a number; got 'abc'"),
    ("[market]\nmidd_usd = 1.0\n", "unknown config key 'market.midd_usd'"),
    ("[market]\nsigma_frac = nan\n", "config key 'market.sigma_frac': Input should be a finite number; got nan"),
    ("[market]\nmargin_usd = inf\n", "config key 'market.margin_usd': Input should be a finite number; got inf"),
    ("[market]\nsigma_frac = -0.1\n", "config key 'market.sigma_frac' must be in (0, 1] (fraction of price); got -0.1"),
    ("[market]\nmid_usd = -5.0\n", "config key 'market.mid_usd' must be in (0, inf) USD; got -5.0"),
    (
        "[market]\nmax_position_coins = 0.0\n",
        "config key 'market.max_position_coins' must be in (0, inf) coins; got 0.0",
    ),
    ("[market]\nmargin_usd = -1.0\n", "config key 'market.margin_usd' must be in (0, inf) USD; got -1.0"),
    ("[market]\nbest_bid_usd = 90002.0\n", "config key 'market.best_bid_usd' must be < 'best_ask_usd'"),
    ("[market.regime]\ncascade_severity = 2.0\n", "config key 'market.regime.cascade_severity' must be in [0, 1]"),
    ("[ladder.grid]\nn_levels = 0\n", "config key 'ladder.grid.n_levels' must be in [1, 200]; got 0"),
    ("[ladder.fill]\nkind = 'magic'\n", "config key 'ladder.fill.kind' must be one of"),
    ("[allocator.entropy]\nmin_entropy = 'x'\n", "config key 'allocator.entropy.min_entropy' must be a number"),
    ("[allocator.entropy]\nbogus = 1\n", "unknown config key 'allocator.entropy.bogus'; valid keys are"),
    ("[allocator]\nname = 'nope'\n", "config key 'allocator.name' must be one of"),
    ("[markets]\n", "unknown config section 'markets'"),
    ("[market]\nfoo = 1\n", "unknown config key 'market.foo'; valid keys are ['mid_usd', 'best_bid_usd'"),
    (
        "[ladder.fill]\nkind = 'table'\ndepth_bps = [1.0, 2.0]\nprob_at_depth = [0.5, nan]\n",
        "config key 'ladder.fill.prob_at_depth[1]': Input should be a finite number; got nan",
    ),
    (
        "[ladder.adverse]\nkind = 'table'\ndepth_bps = [1.0, 2.0]\nas_bps = [0.5, nan]\n",
        "config key 'ladder.adverse.as_bps[1]'",
    ),
    (
        "[ladder.fill]\nkind = 'first_passage'\nkappa_per_bps = 1.0\n",
        "unknown config key 'ladder.fill.kappa_per_bps' for kind 'first_passage'; valid keys are ['kind']",
    ),
    (
        "[instrument]\ncoin = 'DOGE'\n",
        "config key 'instrument.coin' = 'DOGE' has no shipped spec (shipped: BTC, ETH, HYPE, SOL): give its "
        "sz_decimals and asset_id in [instrument], or the exchange's meta (--meta FILE)",
    ),
    ("[instrument]\ncoin = 'DOGE'\nsz_decimals = 0\n", "'DOGE' has no shipped spec"),  # no asset index
    ("[instrument]\ncoin = 5\n", "config key 'instrument.coin' must be a non-empty string; got 5"),
    (
        "[instrument]\ncoin = 'sol'\n",
        "config key 'instrument.coin' = 'SOL' changes the coin from BTC, but [market] does not set mid_usd, "
        "best_bid_usd, best_ask_usd, max_position_coins, daily_volume_coins",
    ),
    (
        "[instrument]\ncoin = 'ETH'\n[market]\nmid_usd = 3000.5\nbest_bid_usd = 3000.0\nbest_ask_usd = 3001.0\n",
        "does not set max_position_coins, daily_volume_coins",
    ),
    ("[meta]\npartial = 'yes'\n", "config key 'meta.partial'"),
    ("[meta]\nwhen = 1\n", "unknown config key 'meta.when'; valid keys are ['source'"),
    ("[market\n", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_is_one_line_exit_2(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    res = run("--config", str(cfg))
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in res.output


COIN_MARKET = DOGE_MARKET_TOML


def test_a_coin_is_spelled_as_the_exchange_does_and_takes_its_own_spec(tmp_path):
    cfg = tmp_path / "sol.toml"
    cfg.write_text(COIN_MARKET.replace("0.3", "150.0") + "[instrument]\ncoin = 'sol'\n")
    spec = load_config(cfg).spec
    assert (spec.coin, spec.sz_decimals, spec.asset_id) == ("SOL", 2, 5)


def test_a_coin_without_shipped_spec_is_accepted_only_in_full(tmp_path):
    cfg = tmp_path / "doge.toml"
    cfg.write_text(COIN_MARKET + "[instrument]\ncoin = 'DOGE'\nsz_decimals = 0\nasset_id = 173\n")
    res = run("--json", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["coin"], d["sz_decimals"], d["mid"]) == ("DOGE", 0, 0.30001)
    assert d["bids"] and all(o["size"] == int(o["size"]) for o in d["bids"] + d["asks"])  # whole DOGE lots


def test_a_partial_config_loads_with_a_warning(tmp_path):
    cfg = tmp_path / "cal.toml"
    cfg.write_text('[meta]\npartial = true\nstopped_at = "x.gz: line 9: truncated"\nnot_fitted = ["ladder.fill"]\n')
    assert load_config(cfg).meta.partial
    res = run("--json", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    assert "warning: config" in res.stderr and "partial (stopped at x.gz: line 9: truncated; not fitted" in res.stderr


def test_missing_config_file_and_unknown_allocator():
    res = run("--config", "does-not-exist.toml")
    assert res.exit_code == 2 and "config file not found" in res.stderr
    res = run("--allocator", "nope")
    assert res.exit_code == 2 and "error: '--allocator' must name allocators among [" in res.stderr
    assert "got 'nope'" in res.stderr
    assert "[allocator.nope]" not in res.stderr


def test_load_config_raises_config_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[ladder]\nhorizon_s = 0.0\n")
    with pytest.raises(ConfigError, match=r"'ladder.horizon_s' must be in \(0, 86400\] s"):
        load_config(cfg)


def test_console_script_runs_as_a_process():
    out = subprocess.run(
        [sys.executable, "-c", "from hyper_make.cli import main; main()", "ladder", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout)["coin"] == "BTC"


def test_kernel_load_is_reported_apart_from_the_solve_times():
    # the solve (µs) row included numba's compile or cache load (10 s cold, 0.2-0.6 s warm on the first side)
    res = run("--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert isinstance(d["kernel_load_s"], float) and d["kernel_load_s"] >= 0.0
    table = run()
    assert "kernel load" in table.stdout and "not in the times above" in table.stdout


def test_compare_reports_the_kernel_load():
    res = runner.invoke(app, ["compare", "--json", "--repeats", "1", "--allocators", "impact,flat"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["kernel_load_s"] >= 0.0
