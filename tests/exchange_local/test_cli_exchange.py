"""``hyper-make exchange``: serves on loopback, prints its URL, one-line errors."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

from hyper_make.cli import app

runner = CliRunner()


def test_serves_and_prints_its_url_then_stops():
    res = runner.invoke(app, ["exchange", "--port", "0", "--duration-s", "0.3", "--coins", "btc,SOL"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["url"].startswith("http://127.0.0.1:") and d["coins"] == ["BTC", "SOL"]
    assert "local exchange stopped" in res.stderr


def test_unknown_coin_and_busy_port_are_one_line_errors():
    res = runner.invoke(app, ["exchange", "--coins", "DOGE", "--duration-s", "0"])
    assert res.exit_code == 2 and res.stderr.startswith("error: '--coins' must list perps among")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        res = runner.invoke(app, ["exchange", "--port", str(busy), "--duration-s", "0"])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: '--port' {busy}: cannot listen on 127.0.0.1")
    assert res.stderr.count("\n") == 1
    res = runner.invoke(app, ["exchange", "--fault-error-frac", "2", "--duration-s", "0"])
    assert res.exit_code == 2 and res.stderr.startswith("error: 'faults.exchange_error_frac' must be in [0, 1]")
