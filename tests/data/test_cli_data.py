"""``hyper-make calibrate`` and ``backtest``: outputs, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import gzip
import importlib
import json
import sys

import polars as pl
import pytest
from typer.testing import CliRunner

from data._files import FUTURES, HYPERLIQUID, good_lines, many_lines, real, write_gz
from helpers import forbid_calls
from hyper_make.cli import _common, app
from hyper_make.cli import data as data_cli
from hyper_make.config import load_config

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
    args = ["backtest", str(path), "--allocator", "impact,entropy", "--out", str(out), "--json", "--refresh-s", "0.5"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["allocators"]) == {"impact", "entropy"}
    for f in ("metrics.json", "metrics.csv", "summary.md", "fills_impact.csv", "fills_entropy.csv"):
        assert (out / f).exists(), f
    assert pl.read_csv(out / "fills_impact.csv").columns == [
        "ts_ns", "side", "price_usd", "qty_coins", "level", "mid_usd"
    ]  # fmt: skip


def test_corrupt_file_stops_with_one_line_and_exit_2_but_keeps_the_report(tmp_path):
    lines = many_lines(3000)
    lines[4000] = "garbage"
    path = write_gz(tmp_path / "bad.gz", lines)
    out = tmp_path / "bt"
    r = runner.invoke(app, ["backtest", str(path), "--allocator", "flat", "--out", str(out)])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and "bad.gz: line 4001: malformed line" in err[-1]
    assert "Traceback" not in r.output
    assert (out / "summary.md").exists() and "STOPPED EARLY" in (out / "summary.md").read_text()
    r = runner.invoke(app, ["backtest", str(path), "--allocator", "flat", "--out", str(out), "--on-error", "skip"])
    assert r.exit_code == 0, r.output
    # what was skipped is said on stderr: counts by reason and the first lines
    assert "warning: skipped 1 bad line of" in r.stderr and "(malformed 1); first: " in r.stderr
    assert "bad.gz: line 4001: malformed line" in r.stderr


def test_unknown_format_and_bad_options(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("hello\n")
    r = runner.invoke(app, ["calibrate", str(p)])
    assert r.exit_code == 2 and "unknown data format" in r.stderr and "binance-futures" in r.stderr
    good = write_gz(tmp_path / "g.gz", good_lines())
    r = runner.invoke(app, ["backtest", str(good), "--allocator", "nope"])
    assert r.exit_code == 2 and "'--allocator' must name allocators among [" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--on-error", "ignore"])
    assert r.exit_code == 2 and "'--on-error' must be one of" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--refresh-s", "-1"])
    assert r.exit_code == 2 and "'--refresh-s' must be in (0, 3600] s; got -1.0" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--refresh", "-1"])  # the old spelling, a hidden alias
    assert r.exit_code == 2 and "'--refresh-s' must be in (0, 3600] s; got -1.0" in r.stderr
    assert "notice: '--refresh' is now spelled '--refresh-s'" in r.stderr
    r = runner.invoke(app, ["backtest", str(good), "--queue", "fifo"])
    assert r.exit_code == 2 and "'--queue' must be one of ['log', 'power', 'risk_averse']" in r.stderr
    r = runner.invoke(app, ["backtest", str(tmp_path / "missing.gz")])
    assert r.exit_code == 2 and "file not found" in r.stderr


def one_line_error(r, message: str) -> None:
    assert r.exit_code == 2, r.output
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1], r.stderr
    assert "Traceback" not in r.output


@pytest.fixture
def no_work(monkeypatch):
    forbid_calls(monkeypatch, "hyper_make.cli.data.fit_calibration", "hyper_make.cli.data.run_backtest")


@pytest.mark.parametrize("command", ["calibrate", "backtest"])
def test_an_unusable_out_folder_is_refused_before_any_work(tmp_path, no_work, command):
    good = write_gz(tmp_path / "g.gz", good_lines())
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = runner.invoke(app, [command, str(good), "--out", str(afile)])
    one_line_error(r, f"'--out' {afile} is an existing file; give a folder")
    r = runner.invoke(app, [command, str(good), "--out", str(afile / "sub")])
    one_line_error(r, f"{afile} is a file, not a folder")
    if sys.platform.startswith("linux"):  # sysfs takes no regular file, even from root
        r = runner.invoke(app, [command, str(good), "--out", "/sys/hyper-make-report"])
        one_line_error(r, "'--out' /sys/hyper-make-report: cannot write in /sys")


def test_calibrate_names_a_directory_an_empty_file_and_a_truncated_gzip(tmp_path):
    r = runner.invoke(app, ["calibrate", str(tmp_path)])
    one_line_error(r, f"{tmp_path}: is a directory, expected a recorded data file")
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")
    one_line_error(runner.invoke(app, ["calibrate", str(empty)]), "empty.gz: empty file (0 bytes)")
    write_gz(empty, [])
    one_line_error(runner.invoke(app, ["calibrate", str(empty)]), "empty file (no line of data, once decompressed)")
    # a gzip cut before its first message: the truncation is named, not "unknown format" or "too few arrivals"
    cut = tmp_path / "cut.gz"
    cut.write_bytes(real(HYPERLIQUID).read_bytes()[:100])
    one_line_error(runner.invoke(app, ["calibrate", str(cut)]), "cut.gz: truncated or corrupt gzip stream")


def test_calibrate_on_a_truncated_gzip_writes_a_partial_config_and_names_the_truncation(tmp_path):
    cut = tmp_path / "cut.gz"
    cut.write_bytes(real(FUTURES).read_bytes()[:60_000])  # about 7 s of the recording
    out = tmp_path / "cal"
    r = runner.invoke(app, ["calibrate", str(cut), "--out", str(out)])
    one_line_error(r, "cut.gz: line ")
    assert "truncated or corrupt gzip stream" in r.stderr.splitlines()[-1]
    text = (out / "calibration.toml").read_text()
    assert text.splitlines()[1].startswith("# PARTIAL calibration: the data stopped early at ")
    meta = load_config(out / "calibration.toml").meta
    assert meta.partial and "truncated or corrupt gzip stream" in meta.stopped_at


def test_calibrate_on_a_short_recording_writes_what_it_can_and_warns(tmp_path):
    out = tmp_path / "cal"
    r = runner.invoke(app, ["calibrate", str(real(HYPERLIQUID)), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["partial"] is True and set(doc["not_fitted"]) == {"ladder.fill", "ladder.adverse", "ladder.impact"}
    assert doc["sigma_frac"]["1s"]["value"] > 0 and doc["daily_volume_coins"] > 0
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning: partial calibration")]
    assert len(warning) == 1 and "not fitted: ladder.fill (both sides: too few arrivals" in warning[0]
    cfg = load_config(out / "calibration.toml")
    assert cfg.meta.partial and cfg.snapshot.sigma_frac == doc["sigma_frac"]["1s"]["value"]
    r = runner.invoke(app, ["ladder", "--config", str(out / "calibration.toml"), "--json"])
    assert r.exit_code == 0 and "warning: config" in r.stderr and " is partial (not fitted: ladder.fill" in r.stderr


def test_backtest_on_a_recording_too_short_to_judge_warns(tmp_path):
    out = tmp_path / "bt"
    r = runner.invoke(app, ["backtest", str(real(HYPERLIQUID)), "--allocator", "flat", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "warning: the replay quoted for 16 s (after the warm-up) with at most 0 fills" in r.stderr
    assert "TOO SHORT TO JUDGE" in (out / "summary.md").read_text()


def test_ctrl_c_in_backtest_keeps_every_allocator_so_far_in_a_partial_report(tmp_path, monkeypatch):
    replay_mod = importlib.import_module("hyper_make.backtest.replay")  # the package exports a function of that name

    real_step = replay_mod._Run.step
    calls = []

    def ctrl_c_at_the_5th_refresh(self, t_now):
        calls.append(t_now)
        if len(calls) == 10:  # two allocators step together: refresh 5 of each
            raise KeyboardInterrupt
        return real_step(self, t_now)

    monkeypatch.setattr(replay_mod._Run, "step", ctrl_c_at_the_5th_refresh)
    # the Python step, one refresh a call (the compiled loop runs a whole chunk, here the whole tape, in one call)
    monkeypatch.setattr(replay_mod, "_compiled_reason", lambda _q: "stepped in Python by the test")
    # the kernels' warm-up replays a synthetic tape through the same step: not one of the refreshes counted here
    monkeypatch.setattr(importlib.import_module("hyper_make.allocate"), "_run_warm_replay", lambda: None)
    path = write_gz(tmp_path / "tape.gz", many_lines(1500))
    out = tmp_path / "bt"
    r = runner.invoke(app, ["backtest", str(path), "--allocator", "flat,greedy", "--out", str(out), "--refresh-s",
                            "0.1"])  # fmt: skip
    assert r.exit_code == 130, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last == f"interrupted: kept a partial report of 2 allocators, cut short by Ctrl-C, in {out}"
    summary = (out / "summary.md").read_text()
    assert "(PARTIAL: interrupted)" in summary and "every one's results cover the first" in summary
    for name in ("flat", "greedy"):  # written as the replay went: kept
        assert (out / f"fills_{name}.csv").read_text().startswith("ts_ns,side,price_usd,qty_coins,level,mid_usd")
        assert (out / f"equity_{name}.csv").exists()


def test_ctrl_c_in_calibrate(tmp_path, monkeypatch):
    out = tmp_path / "cal"

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(data_cli, "plot_calibration", ctrl_c)
    r = runner.invoke(app, ["calibrate", str(real(HYPERLIQUID)), "--out", str(out)])
    assert r.exit_code == 130 and (out / "calibration.toml").exists()
    assert (
        r.stderr.strip().splitlines()[-1] == f"interrupted: kept {out / 'calibration.toml'}; the plots were not written"
    )
    monkeypatch.setattr(data_cli, "fit_calibration", ctrl_c)
    r = runner.invoke(app, ["calibrate", str(real(HYPERLIQUID)), "--out", str(tmp_path / "cal2")])
    assert r.exit_code == 130 and not (tmp_path / "cal2").exists()
    assert r.stderr.strip() == "interrupted: 'calibrate' stopped by Ctrl-C; nothing was written"


def test_calibrate_skip_says_what_it_skipped(tmp_path):
    path = tmp_path / "bad.gz"
    text = gzip.decompress(real(FUTURES).read_bytes()).decode().splitlines()[:30_000]
    text[100] = text[200] = "not a line"
    write_gz(path, text)
    r = runner.invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "cal"), "--on-error", "skip"])
    assert r.exit_code == 0, r.output
    (warning,) = [line for line in r.stderr.splitlines() if line.startswith("warning: skipped")]
    assert warning.startswith(f"warning: skipped 2 bad lines of {path} (malformed 2); first: {path}: line 101: ")


def test_backtest_tables_are_readable_at_80_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_common.out_console, "_width", None)  # read COLUMNS now, not at import
    path = write_gz(tmp_path / "tape.gz", many_lines(1500))
    names = "impact,impact-dirichlet,impact-posterior"
    r = runner.invoke(app, ["backtest", str(path), "-a", names, "--out", str(tmp_path / "bt")])
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout and max(len(line.rstrip()) for line in r.stdout.splitlines()) <= 80
    for n in names.split(","):
        assert f" {n} " in r.stdout
