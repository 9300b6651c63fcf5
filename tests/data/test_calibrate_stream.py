"""Streaming calibration: chunk by chunk (and file by file) it gives what the whole-path estimators give on the
whole path, and it holds no more than a chunk and the last minute of market orders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data._files import FUTURES, real_lines, without_snapshot, write_gz
from hyper_make.calibrate import (
    MARKOUT_HORIZONS_S,
    _adverse,
    _depths,
    _impact,
    _market_orders,
    _volume_at_depth,
    calibrate,
    fit_intensity,
    sigma_by_horizon,
)
from hyper_make.data import load_events
from hyper_make.data.book import market_path


def _reference(events, lag_s=1.0):
    """The calibration of the whole path at once, from the whole-path estimators."""
    path = market_path(events)
    sigma = sigma_by_horizon(path)
    orders = _market_orders(path)
    ref = path.mid_at(orders.ts_ns - int(lag_s * 1e9)) if lag_s > 0 else orders.mid_before
    depth = _depths(orders, ref)
    grid = np.arange(0.0, 10.0 + 1e-9, 0.25)
    t_end = int(path.ts_ns[-1])
    fill = {
        s: fit_intensity(depth[hit], path.duration_s, grid) for s, hit in (("bid", ~orders.buy), ("ask", orders.buy))
    }
    adverse, adverse_se, adverse_n = _adverse(path, orders, depth, ref, grid, t_end)
    vol_d, vol_v = _volume_at_depth(orders, depth, grid, path.duration_s, 1.0)
    impact = _impact(path, orders, sigma, 5.0, path.duration_s, t_end)
    return path, sigma, fill, (adverse, adverse_se, adverse_n), (vol_d, vol_v), impact


@pytest.fixture(scope="module")
def reference(futures):
    return _reference(futures[0])


@pytest.mark.parametrize("chunk_rows", [7_919, 262_144, 10_000_000])
def test_streaming_equals_the_whole_path_estimators(futures, reference, chunk_rows):
    path, sigma, fill, (adv, adv_se, adv_n), (vol_d, vol_v), impact = reference
    r = calibrate(futures[0], chunk_rows=chunk_rows)
    assert r.duration_s == pytest.approx(path.duration_s, rel=1e-12)
    assert (r.last_bid_usd, r.last_ask_usd) == (path.bid_usd[-1], path.ask_usd[-1])
    assert set(r.sigma_frac) == set(sigma)
    for h, e in sigma.items():
        assert r.sigma_frac[h].n == e.n and r.sigma_frac[h].value == pytest.approx(e.value, rel=1e-9), h
    for side, f in fill.items():
        g = r.fill[side]
        assert np.array_equal(g.count, f.count), side
        assert g.intensity_per_s.value == pytest.approx(f.intensity_per_s.value, rel=1e-12)
        assert g.kappa_per_bps.value == pytest.approx(f.kappa_per_bps.value, rel=1e-12)
    for h in MARKOUT_HORIZONS_S:
        assert np.array_equal(r.adverse_count[h], adv_n[h]), h
        np.testing.assert_allclose(r.adverse_bps[h], adv[h], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(r.adverse_stderr_bps[h], adv_se[h], rtol=1e-6, atol=1e-9)
    assert np.array_equal(r.volume_depth_bps, vol_d)
    np.testing.assert_allclose(r.volume_coins, vol_v, rtol=1e-12)
    assert r.impact_coef.n == impact.n
    assert r.impact_coef.value == pytest.approx(impact.value, rel=1e-9)
    assert r.impact_coef.stderr == pytest.approx(impact.stderr, rel=1e-6)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """~150 s of the USD-M recording in three files (only the first has the snapshot line), and all its lines."""
    d = tmp_path_factory.mktemp("parts")
    lines = real_lines(FUTURES, 36_000)
    cuts = [(0, 12_000), (12_000, 24_000), (24_000, len(lines))]
    return [write_gz(d / f"part{i}.gz", lines[a:b]) for i, (a, b) in enumerate(cuts)], lines


def test_several_files_are_one_continuous_run(tmp_path, parts):
    parts, lines = parts
    seen = []
    r = calibrate(parts, progress=lambda done, total: seen.append((done, total)), chunk_rows=50_000)
    events, report = load_events(write_gz(tmp_path / "whole.gz", lines))
    whole = calibrate(events)
    assert r.duration_s == pytest.approx(whole.duration_s, rel=1e-12)
    for h, e in whole.sigma_frac.items():
        assert r.sigma_frac[h].value == pytest.approx(e.value, rel=1e-9)
    assert r.impact_coef.value == pytest.approx(whole.impact_coef.value, rel=1e-9)
    assert np.array_equal(r.fill["ask"].count, whole.fill["ask"].count)
    assert r.read_report["events"] == report.events and len(r.read_report["files"]) == 3
    assert r.read_report["warmups"] == [] and r.read_report["warnings"] == []  # the book carried on
    total = sum(p.stat().st_size for p in parts)
    assert seen[-1] == (total, total) and all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # progress never goes back


def test_calibrate_command_takes_several_files_or_a_glob(tmp_path, parts):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    parts, _ = parts
    glob = str(parts[0].parent / "part*.gz")
    r = runner.invoke(app, ["calibrate", glob, "--out", str(tmp_path / "a"), "--json", "--adverse-horizon-s", "5"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # the progress bar never reaches stdout
    assert doc["source"] == [str(p) for p in parts] and len(doc["read_report"]["files"]) == 3
    r2 = runner.invoke(app, ["calibrate", *map(str, parts), "--out", str(tmp_path / "b"), "--json",
                             "--adverse-horizon-s", "5"])  # fmt: skip
    assert r2.exit_code == 0 and json.loads(r2.stdout)["sigma_frac"] == doc["sigma_frac"]
    # out of order: the update-id chain breaks at the first line of the file given too early
    r = runner.invoke(app, ["calibrate", str(parts[1]), str(parts[0]), "--out", str(tmp_path / "c")])
    assert r.exit_code == 2 and f"{parts[0]}: line 1" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["calibrate", str(tmp_path / "none*.gz"), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "matches no file" in r.stderr


def _same(a, b):
    assert a.duration_s == pytest.approx(b.duration_s, rel=1e-12)
    assert a.book_warmup_excluded_s == b.book_warmup_excluded_s
    assert {h: e.n for h, e in a.sigma_frac.items()} == {h: e.n for h, e in b.sigma_frac.items()}
    for h, e in b.sigma_frac.items():
        assert a.sigma_frac[h].value == pytest.approx(e.value, rel=1e-9)
    assert set(a.fill) == set(b.fill)
    for side in b.fill:
        assert np.array_equal(a.fill[side].count, b.fill[side].count)
    for h in MARKOUT_HORIZONS_S:
        assert np.array_equal(a.adverse_count[h], b.adverse_count[h])
    assert (a.impact_coef is None) == (b.impact_coef is None)
    if b.impact_coef is not None:
        assert a.impact_coef.value == pytest.approx(b.impact_coef.value, rel=1e-9)


@pytest.fixture(scope="module")
def snapshot_less(tmp_path_factory):
    d = tmp_path_factory.mktemp("nosnap-stream")
    return write_gz(d / "nosnap.gz", without_snapshot(real_lines(FUTURES, 12_000)))


@pytest.mark.parametrize("chunk_rows", [2_503, 40_000])
def test_warm_up_cut_does_not_depend_on_the_chunks(snapshot_less, chunk_rows):
    whole = calibrate(snapshot_less, chunk_rows=10_000_000)
    assert whole.book_warmup_excluded_s >= 10.0
    _same(calibrate(snapshot_less, chunk_rows=chunk_rows), whole)


@settings(max_examples=8, deadline=None)
@given(chunk_rows=st.integers(min_value=200, max_value=30_000), lag=st.sampled_from([0.0, 0.3, 1.0]))
def test_any_chunking_gives_the_same_calibration(futures_head, chunk_rows, lag):
    """Chunk boundaries fall anywhere: inside a market order's trades, between equal timestamps."""
    whole = futures_head[lag]
    _same(calibrate(futures_head["events"], chunk_rows=chunk_rows, reference_lag_s=lag), whole)


@pytest.fixture(scope="module")
def futures_head(futures):
    events = futures[0][:150_000]  # ~90 s
    out = {lag: calibrate(events, chunk_rows=10_000_000, reference_lag_s=lag) for lag in (0.0, 0.3, 1.0)}
    return out | {"events": events}


def test_backtest_day_by_day_sums_the_single_file_replays(tmp_path, parts):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    parts, _ = parts
    two = parts[:2]
    singles = []
    for i, p in enumerate(two):
        r = runner.invoke(app, ["backtest", str(p), "-a", "flat", "--out", str(tmp_path / f"s{i}"), "--json"])
        assert r.exit_code == 0, r.output
        singles.append(json.loads(r.stdout)["allocators"]["flat"])
    out = tmp_path / "days"
    r = runner.invoke(app, ["backtest", *map(str, two), "-a", "flat", "--out", str(out), "--json", "--day-by-day"])
    assert r.exit_code == 0, r.output
    # the second file has no snapshot line: it is warned about, warms up on its own
    assert r.stderr.count("no REST snapshot line") == 1 and str(two[1]) in r.stderr
    doc = json.loads(r.stdout)
    m = doc["allocators"]["flat"]
    for key in ("pnl_usd", "fills", "filled_coins", "fees_usd", "spread_capture_usd"):
        assert m[key] == pytest.approx(sum(s[key] for s in singles), rel=1e-12, abs=1e-12), key
    assert m["final_inventory_coins"] == singles[-1]["final_inventory_coins"]
    assert doc["file"] == [str(p) for p in two] and doc["book_warmup_s"] >= 10.0
    rows = (out / "days.csv").read_text().splitlines()
    assert rows[0].startswith("file,allocator,book_warmup_s,pnl_usd") and len(rows) == 3
    summary = (out / "summary.md").read_text()
    assert "DAY BY DAY: 2 of 2 files" in summary and "BOOK WARM-UP" in summary
    fills = np.loadtxt(out / "fills_flat.csv", delimiter=",", skiprows=1, ndmin=2)
    assert fills.shape[0] == m["fills"] and np.all(np.diff(fills[:, 0]) >= 0)


def test_backtest_of_several_files_is_one_continuous_run_by_default(tmp_path, parts):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    parts, lines = parts
    whole = write_gz(tmp_path / "whole.gz", lines)
    docs = []
    for name, files in (("whole", [whole]), ("parts", parts)):
        out = tmp_path / name
        r = runner.invoke(app, ["backtest", *map(str, files), "-a", "flat", "--out", str(out), "--json"])
        assert r.exit_code == 0, r.output
        docs.append((json.loads(r.stdout)["allocators"]["flat"], (out / "fills_flat.csv").read_bytes(), out))
    (one, fills_one, _), (three, fills_three, out) = docs
    assert one["fills"] > 0 and fills_three == fills_one  # the position and orders carried across the files
    for key in ("pnl_usd", "fees_usd", "final_inventory_coins", "max_drawdown_usd", "markout_5s_bps"):
        assert three[key] == one[key], key
    assert "CONTINUOUS: 3 files replayed as one run" in (out / "summary.md").read_text()
    assert not (out / "days.csv").exists()


def test_convert_streams_consecutive_files_into_the_whole_recording(tmp_path, parts):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    parts, lines = parts
    whole, _ = load_events(write_gz(tmp_path / "whole.gz", lines))
    out = tmp_path / "all.npz"
    r = CliRunner().invoke(app, ["convert", *map(str, parts), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["events"] == whole.size
    assert np.array_equal(load_events(out)[0], whole)  # the book carried from file to file, as one recording
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no spool left
