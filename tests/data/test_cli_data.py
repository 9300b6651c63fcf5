"""``hyper-make calibrate`` and ``backtest``: outputs, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from data._files import FUTURES, good_lines, many_lines, real, write_gz
from hyper_make.cli import app

runner = CliRunner()


def test_calibrate_writes_toml_and_plots(tmp_path):
    out = tmp_path / "cal"
    r = runner.invoke(app, ["calibrate", str(real(FUTURES)), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["fill"]["ask"]["A_per_s"]["value"] > 0 and 0 <= doc["fill"]["ask"]["r2"] <= 1
    assert (out / "calibration.toml").exists() and (out / "intensity.png").exists() and (out / "markouts.png").exists()
    # the TOML drives the ladder command
    r = runner.invoke(app, ["ladder", "--config", str(out / "calibration.toml"), "--allocator", "impact", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["bids"]


def test_backtest_report_folder(tmp_path):
    path = write_gz(tmp_path / "tape.gz", many_lines(3000))
    out = tmp_path / "bt"
    args = ["backtest", str(path), "--allocators", "impact,entropy", "--out", str(out), "--json", "--refresh", "0.5"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["allocators"]) == {"impact", "entropy"}
    for f in ("metrics.json", "metrics.csv", "summary.md", "fills_impact.csv", "fills_entropy.csv"):
        assert (out / f).exists(), f


def test_corrupt_file_stops_with_one_line_and_exit_2_but_keeps_the_report(tmp_path):
    lines = many_lines(3000)
    lines[4000] = "garbage"
    path = write_gz(tmp_path / "bad.gz", lines)
    out = tmp_path / "bt"
    r = runner.invoke(app, ["backtest", str(path), "--allocators", "flat", "--out", str(out)])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.gz: line 4001: malformed line" in err[-1]
    assert "Traceback" not in r.output
    assert (out / "summary.md").exists() and "STOPPED EARLY" in (out / "summary.md").read_text()
    r = runner.invoke(app, ["backtest", str(path), "--allocators", "flat", "--out", str(out), "--on-error", "skip"])
    assert r.exit_code == 0, r.output


def test_unknown_format_and_bad_options(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello\n")
    r = runner.invoke(app, ["calibrate", str(p)])
    assert r.exit_code == 2 and "unknown data format" in r.stderr and "binance-futures" in r.stderr
    good = write_gz(tmp_path / "g.gz", good_lines())
    r = runner.invoke(app, ["backtest", str(good), "--allocators", "nope"])
    assert r.exit_code == 2 and "unknown allocator 'nope'" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--on-error", "ignore"])
    assert r.exit_code == 2 and "'--on-error' must be one of" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--refresh", "-1"])
    assert r.exit_code == 2 and "'--refresh' must be in (0, 3600] s; got -1.0" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--queue", "fifo"])
    assert r.exit_code == 2 and "'--queue' must be one of ['log', 'power', 'risk_averse']" in r.stderr
    r = runner.invoke(app, ["backtest", str(tmp_path / "missing.gz")])
    assert r.exit_code == 2 and "file not found" in r.stderr
