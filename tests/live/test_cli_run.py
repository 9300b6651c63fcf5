"""``hyper-make run``: against the local exchange its JSON summary reconciles; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hyper_make.cli import app
from hyper_make.connectors.keys import ENV_KEYSTORE, ENV_PRIVATE_KEY
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from live_harness import BTC

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    monkeypatch.delenv(ENV_PRIVATE_KEY, raising=False)
    monkeypatch.delenv(ENV_KEYSTORE, raising=False)


def test_run_prints_a_summary_that_reconciles():
    market = RandomWalkMarket({BTC: 90_000.5}, seed=3, trades_per_s=20.0, through_ticks_mean=30.0)
    ex = LocalExchange([BTC], market)
    with LocalServer(ex, tick_s=0.05, speed=5.0) as srv:
        res = runner.invoke(
            app,
            ["run", "--base-url", srv.url, "--ephemeral-key", "--duration-s", "3", "--refresh-s", "0.2",
             "--max-position", "0.02", "--allocator", "impact", "--json"],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("orders_sent", "rejected", "fills", "max_abs_position", "pnl"):
        assert key in out
    assert out["orders_sent"] > 0 and out["rejected"] == 0
    assert out["stop_reason"] == "duration" and out["reconciled"] is True
    assert out["exchange"]["open_orders"] == 0 and not ex.orders
    assert out["max_abs_position"] <= 0.02


@pytest.mark.parametrize(("flag", "code"), [("--require-dead-man", 1), ("--no-require-dead-man", 0)])
def test_run_refused_dead_man_switch_warns_or_stops(flag, code):
    ex = LocalExchange([BTC], RandomWalkMarket({BTC: 90_000.5}, seed=3), schedule_cancel_min_volume_usd=1e6)
    with LocalServer(ex, tick_s=0.05) as srv:
        res = runner.invoke(
            app,
            ["run", "--base-url", srv.url, "--ephemeral-key", "--duration-s", "2", "--refresh-s", "0.2",
             "--max-position", "0.02", flag],
        )  # fmt: skip
    assert res.exit_code == code, res.output
    assert "refused the dead-man switch" in res.stderr
    assert not ex.orders


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of '--base-url URL', '--testnet' and '--mainnet'"),
        (["--testnet", "--mainnet"], "give exactly one of"),
        (["--testnet", "--ephemeral-key"], "'--ephemeral-key' is for the local exchange"),
        (["--base-url", "https://api.hyperliquid.xyz", "--ephemeral-key"], "'--ephemeral-key' is for the local"),
        (["--base-url", "ftp://x"], "'base_url' must be an http(s) URL"),
        (["--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--max-position", "-1"], "loop.max_position_coins"),
        (["--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--dead-man-s", "1"], "loop.dead_man_s"),
        (["--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--allocator", "nope"], "nope"),
        (["--base-url", "http://127.0.0.1:9"], "HYPER_MAKE_PRIVATE_KEY"),
        (["--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--http-timeout-s", "1"], "cannot read the exchange"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    res = runner.invoke(app, ["run", *args])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
    assert message in res.stderr
