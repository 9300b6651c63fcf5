"""``hyper-make run``: against the local exchange its JSON summary reconciles; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

import hyper_make.cli.run as run_cli
from hyper_make.cli import app
from hyper_make.connectors.keys import ENV_KEYSTORE, ENV_PRIVATE_KEY
from hyper_make.exchange_local import LocalExchange, LocalServer, RandomWalkMarket
from live_harness import BTC, VirtualClock

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    monkeypatch.delenv(ENV_PRIVATE_KEY, raising=False)
    monkeypatch.delenv(ENV_KEYSTORE, raising=False)


@pytest.fixture
def vclock(monkeypatch) -> VirtualClock:
    """``run`` on virtual time: its client and loop get the clock (the test gives it to the exchange)."""
    clock = VirtualClock(speed=5.0)
    client_cls, loop_cls = run_cli.HyperliquidClient, run_cli.QuotingLoop

    def make_loop(*args, **kwargs):
        clock.loop = loop_cls(*args, clock=clock, sleep=clock.sleep, **kwargs)
        return clock.loop

    monkeypatch.setattr(run_cli, "HyperliquidClient", lambda *a, **k: client_cls(*a, clock_ms=clock.ms, **k))
    monkeypatch.setattr(run_cli, "QuotingLoop", make_loop)
    return clock


def served(clock: VirtualClock, **kwargs) -> tuple[LocalExchange, LocalServer]:
    """A local exchange on ``clock`` (it steps the market) and its server."""
    ex = LocalExchange([BTC], clock_ms=clock.ms, **kwargs)
    clock.exchange = ex
    return ex, LocalServer(ex)


def run_args(url: str, *extra: str) -> list[str]:
    return ["run", "--base-url", url, "--ephemeral-key", "--refresh-s", "0.2", "--max-position-coins", "0.02", *extra]


def test_run_prints_a_summary_that_reconciles(vclock):
    ex, srv = served(vclock, market=RandomWalkMarket({BTC: 90_000.5}, seed=3, trades_per_s=20.0, through_bps_mean=3.33))
    with srv:
        res = runner.invoke(app, run_args(srv.url, "--duration-s", "3", "--allocator", "impact", "--json"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("orders_sent", "rejected", "fills", "max_abs_position", "pnl"):
        assert key in out
    assert out["orders_sent"] > 0 and out["rejected"] == 0
    assert out["stop_reason"] == "duration" and out["reconciled"] is True
    assert out["exchange"]["open_orders"] == 0 and not ex.orders
    assert out["max_abs_position"] <= 0.02


@pytest.mark.parametrize(("flag", "code"), [("--require-dead-man", 1), ("--no-require-dead-man", 0)])
def test_run_refused_dead_man_switch_warns_or_stops(vclock, flag, code):
    ex, srv = served(vclock, market=RandomWalkMarket({BTC: 90_000.5}, seed=3), schedule_cancel_min_volume_usd=1e6)
    with srv:
        res = runner.invoke(app, run_args(srv.url, "--duration-s", "2", flag))
    assert res.exit_code == code, res.output
    assert "refused the dead-man switch" in res.stderr
    assert not ex.orders


def test_run_whose_exchange_dies_says_orders_may_rest_and_exits_3(vclock):
    ex, srv = served(vclock, market=RandomWalkMarket({BTC: 90_000.5}, seed=3))
    vclock.on_tick = lambda t: srv.close() if t >= 1.0 else None  # killed at 1 s, our orders resting
    with srv:
        res = runner.invoke(app, run_args(srv.url, "--duration-s", "4", "--json"))
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["orders_sent"] > 0 and ex.orders  # they do rest on the dead exchange
    assert out["open_orders"] is None and out["exchange"]["open_orders"] is None
    assert out["reconciled"] is False and out["end_confirmed"] is False and out["pnl"] is None
    assert "error: orders may still rest on the exchange (open orders unknown" in res.stderr
    assert "the dead-man switch is set: the exchange cancels every open order at" in res.stderr
    assert "Traceback" not in res.output


def test_run_interrupted_cancels_everything_prints_the_summary_and_exits_130(vclock):
    ex, srv = served(vclock, market=RandomWalkMarket({BTC: 90_000.5}, seed=3))

    def ctrl_c(t: float) -> None:  # Ctrl-C at 1 s, while the loop waits for its next refresh
        if t >= 1.0 and not vclock.loop.stop_reason:
            raise KeyboardInterrupt

    vclock.on_tick = ctrl_c
    with srv:
        res = runner.invoke(app, run_args(srv.url, "--duration-s", "10", "--json"))
    assert res.exit_code == 130, res.output
    out = json.loads(res.stdout)
    assert out["stop_reason"] == "interrupted" and out["end_confirmed"] is True and out["open_orders"] == 0
    assert out["orders_sent"] > 0 and not ex.orders
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("interrupted: ")] == [
        f"interrupted: stopped after {out['duration_s']:.1f} s (Ctrl-C)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of '--base-url URL', '--testnet' and '--mainnet'"),
        (["--testnet", "--mainnet"], "give exactly one of"),
        (["--testnet", "--ephemeral-key"], "'--ephemeral-key' is for the local exchange"),
        (["--base-url", "https://api.hyperliquid.xyz", "--ephemeral-key"], "'--ephemeral-key' is for the local"),
        (["--base-url", "ftp://x"], "'base_url' must be an http(s) URL"),
        (
            ["--base-url", "http://127.0.0.1:9", "--ephemeral-key", "--max-position-coins", "-1"],
            "'--max-position-coins' must be in (0, inf) coins",
        ),
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


def test_summary_table_says_unknown_for_what_was_not_read(monkeypatch):
    console = Console(record=True, width=100)
    monkeypatch.setattr(run_cli, "out_console", console)
    unknown = {"position_coins": None, "pnl_usd": None, "cash_usd": None, "open_orders": None}
    summary = {
        "coin": "BTC", "stop_reason": "duration", "duration_s": 25.0, "allocator": "impact", "position_coins": 0.01,
        "pnl": None, "funding_usd": None, "exchange": unknown, "fills": 3, "volume_usd": 2700.0, "fees_usd": 0.4,
        "orders_sent": 40, "cancels_sent": 2, "rejected": 0, "max_abs_position": 0.01, "max_position_coins": 0.02,
        "reconnects": 1, "reconciled": False,
    }  # fmt: skip
    run_cli._render_summary(summary)
    text = console.export_text()
    for row in ("position (coins)", "PnL (USD)", "open orders at exit"):
        line = next(ln for ln in text.splitlines() if row in ln)
        assert "unknown" in line and "nan" not in line and "None" not in line, line


def test_library_log_lines_are_routed_not_raw(capsys):
    import logging

    root = logging.getLogger()
    ours = [h for h in root.handlers if type(h).__name__ == "_LibraryLogHandler"]  # from an earlier `run`
    for h in ours:
        root.removeHandler(h)
    before = list(root.handlers)
    try:
        run_cli.route_library_logs()
        run_cli.route_library_logs()  # idempotent
        logging.debug("Websocket sending ping")  # the SDK's module-level call: must not install basicConfig
        logging.getLogger("websocket").error("[Errno 111] Connection refused - goodbye")
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1 and not any(type(h) is logging.StreamHandler for h in added)
    finally:
        for h in root.handlers[:]:
            if h not in before:
                root.removeHandler(h)
        for h in ours:
            root.addHandler(h)
    err = capsys.readouterr().err
    assert err == "warning: websocket: [Errno 111] Connection refused - goodbye\n"
