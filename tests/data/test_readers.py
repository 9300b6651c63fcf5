"""Readers: message counts on the real recordings, streaming in chunks, .npz round trip, and bad input."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from data._files import depth_line, good_lines, many_lines, write_gz
from hyper_make.data import EventReader, detect_format, load_events, save_npz
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
    kinds,
)
from hyper_make.data.readers import NpzWriter
from hyper_make.errors import DataError


def test_futures_message_counts_match_the_data_readme(futures):
    events, report = futures
    # ../shared/data/README.md: 66,089 bookTicker, 6,551 depth diffs, 21,313 trades, one snapshot line
    assert report.fmt == "binance-futures"
    assert dict(report.message_counts) == {"bookTicker": 66_089, "depth": 6_551, "trade": 21_313, "snapshot": 1}
    assert report.complete and report.gaps == []
    k = kinds(events)
    assert int(np.sum(k == TRADE_EVENT)) == 21_313
    assert int(np.sum(k == DEPTH_BBO_EVENT)) == 2 * 66_089
    assert int(np.sum(k == DEPTH_SNAPSHOT_EVENT)) == 2_000  # 1000 levels a side
    assert events.dtype == event_dtype
    assert np.all(np.diff(events["local_ts"]) >= 0)


def test_futures_trade_side_follows_the_buyer_is_maker_flag(futures):
    events, _ = futures
    trades = events[kinds(events) == TRADE_EVENT]
    buys = (trades["ev"] & np.uint64(BUY_EVENT)) != 0
    sells = (trades["ev"] & np.uint64(SELL_EVENT)) != 0
    assert np.all(buys ^ sells)
    assert 0.2 < buys.mean() < 0.8


def test_spot_and_hyperliquid_counts(spot, hyperliquid):
    _, spot = spot
    assert spot.fmt == "binance-spot"
    assert spot.message_counts["snapshot"] == 1 and spot.message_counts["depth"] == 3_451
    assert spot.gaps == []
    events, hl = hyperliquid
    assert hl.fmt == "hyperliquid"
    assert dict(hl.message_counts) == {"l2Book": 46, "trades": 9}
    assert int(np.sum(kinds(events) == DEPTH_SNAPSHOT_EVENT)) == 46 * 40


def test_streaming_in_small_chunks_gives_the_same_rows(tmp_path):
    path = write_gz(tmp_path / "x.gz", good_lines())
    whole, _ = load_events(path)
    chunks = list(EventReader(path, chunk_rows=3))
    assert max(c.size for c in chunks) <= 3 + 6  # a chunk closes after the line that fills it
    assert np.array_equal(np.concatenate(chunks), whole)


def test_npz_round_trip(tmp_path):
    events, _ = load_events(write_gz(tmp_path / "x.gz", good_lines()))
    npz = save_npz(tmp_path / "events.npz", events)
    assert detect_format(npz) == "hftbacktest-npz"
    again, report = load_events(npz)
    assert np.array_equal(again, events)
    assert report.fmt == "hftbacktest-npz"


def test_the_npz_writer_streams_chunks_into_the_array_save_npz_writes(tmp_path, futures):
    events = futures[0][:50_000]
    w = NpzWriter(tmp_path / "w")
    for i in range(0, events.size, 7_001):
        w.add(events[i : i + 7_001])
    path = w.close()
    assert path.name == "w.npz" and detect_format(path) == "hftbacktest-npz"
    again, report = load_events(path)
    assert np.array_equal(again, events) and report.events == events.size
    w = NpzWriter(tmp_path / "gone.npz")
    w.add(events[:10])
    w.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # nothing spooled is left behind


def test_npz_streams_in_chunks_and_finds_time_going_back_across_them(tmp_path, futures):
    events = futures[0][:20_000]
    npz = save_npz(tmp_path / "events.npz", events)
    chunks = list(EventReader(npz, chunk_rows=3_000))  # read from the zip member as it inflates
    assert [c.size for c in chunks] == [3_000] * 6 + [2_000]
    assert np.array_equal(np.concatenate(chunks), events)
    bad = events.copy()
    bad["local_ts"][6_000] = bad["local_ts"][5_999] - 1  # the first row of the third chunk goes back
    npz = save_npz(tmp_path / "bad.npz", bad)
    got = []
    with pytest.raises(DataError, match=r"bad.npz: line 6000: timestamp goes backwards: \d+ ns after \d+ ns"):
        for c in EventReader(npz, chunk_rows=3_000):
            got.append(c)
    assert sum(c.size for c in got) == 6_000  # what came before is kept
    kept, report = load_events(npz, on_error="skip")
    assert kept.size == 19_999 and report.skipped["backwards"] == 1


def test_pre_snapshot_diffs_are_synchronised_by_update_id(tmp_path):
    t = 1_700_000_000_000_000_000
    lines = good_lines()
    # a stale diff (u < lastUpdateId) and the straddling one arrive before the snapshot
    lines = [
        depth_line(t - 2_000_000, 80, 90, 70, bids=[("50.0", "1")]),
        depth_line(t - 1_000_000, 95, 105, 90, bids=[("100.0", "0.5")]),
        lines[0],
        *lines[2:],
    ]
    events, report = load_events(write_gz(tmp_path / "pre.gz", lines))
    assert report.skipped["stale_depth"] == 1
    assert not np.any(events["px"] == 50.0)
    assert report.complete


# ---- bad input ---------------------------------------------------------------------------------------------
def _bad(tmp_path, name, mutate):
    lines = good_lines()
    mutate(lines)
    return write_gz(tmp_path / name, lines)


@pytest.mark.parametrize(
    ("mutate", "line", "text", "kind"),
    [
        (lambda ls: ls.__setitem__(3, "not a line at all"), 4, "malformed line", "malformed"),
        (lambda ls: ls.__setitem__(2, ls[2].replace("@trade", "@kline_1m")), 3, "unknown message type", "unknown_type"),
        (lambda ls: ls.__setitem__(4, "1600000000000000000 " + ls[4].split(" ", 1)[1]), 5, "backwards", "backwards"),
        (lambda ls: ls.__setitem__(3, ls[3].replace('"pu": 105', '"pu": 104')), 4, "update-id gap", "gap"),
    ],
    ids=["malformed", "unknown-type", "backwards", "id-gap"],
)
def test_bad_line_stops_naming_file_and_line_or_is_skipped(tmp_path, mutate, line, text, kind):
    path = _bad(tmp_path, f"{kind}.gz", mutate)
    with pytest.raises(DataError, match=rf"{path.name}: line {line}: .*{text}"):
        load_events(path)
    # stop keeps what was read before the bad line
    partial, report = load_events(path, keep_partial=True)
    assert report.error and f"line {line}" in report.error
    assert partial.size > 0 and np.all(partial["local_ts"] <= partial["local_ts"].max())
    # skip counts it and reads on
    events, report = load_events(path, on_error="skip")
    assert report.skipped[kind] == 1 and report.error is None
    assert events.size >= partial.size


def test_truncated_gzip(tmp_path):
    path = write_gz(tmp_path / "ok.gz", many_lines(400))
    raw = path.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(DataError, match=r"cut.gz: line \d+: truncated or corrupt gzip"):
        load_events(cut)
    events, report = load_events(cut, on_error="skip")
    assert report.skipped["truncated"] == 1 and events.size > 0


def test_unknown_format_lists_the_supported_ones(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("time,price\n1,2\n")
    with pytest.raises(
        DataError, match=r"unknown data format .*binance-futures, binance-spot, hyperliquid, hftbacktest"
    ):
        detect_format(p)
    g = tmp_path / "other.gz"
    with gzip.open(g, "wt") as fh:
        fh.write('1 {"foo": 1}\n')
    with pytest.raises(DataError, match="unknown data format"):
        load_events(g)


def test_depth_rows_carry_the_final_update_id(tmp_path):
    events, _ = load_events(write_gz(tmp_path / "x.gz", good_lines()))
    depth = events[kinds(events) == DEPTH_EVENT]
    assert set(depth["ival"].tolist()) == {105, 110, 120}


def test_plain_text_recording_reads_like_gzip(tmp_path):
    lines = good_lines()
    gz, _ = load_events(write_gz(tmp_path / "x.gz", lines))
    plain = tmp_path / "x.txt"
    plain.write_text("\n".join(lines) + "\n")
    assert detect_format(plain) == "binance-futures"
    assert np.array_equal(load_events(plain)[0], gz)
