"""Tardis CSV and Hyperliquid archive readers, and the time-ordered merge of several files: on files built from
the shared recordings' real content, on lines of the documented layouts, and on corrupt input."""

from __future__ import annotations

import gzip
import json
import re

import lz4.frame
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data._convert import events_to_tardis, expected_from_tardis, hyperliquid_to_archive, without_clears
from data._files import HYPERLIQUID, real
from hyper_make.data import MergedReader, tardis
from hyper_make.data.events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    kinds,
)
from hyper_make.data.hl_archive import iso_ns
from hyper_make.data.readers import EventReader, detect_format, load_events
from hyper_make.errors import DataError

BOTH = EXCH_EVENT | LOCAL_EVENT
BOOK_HEAD = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADE_HEAD = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"


@pytest.fixture(scope="module")
def tardis_files(futures, tmp_path_factory):
    """The first ~25 s of the Binance USD-M recording (snapshot, diffs, trades) as Tardis book + trades files."""
    events = futures[0][:40_000]
    d = tmp_path_factory.mktemp("tardis")
    book, trades = d / "incremental_book_L2.csv.gz", d / "trades.csv.gz"
    events_to_tardis(events, book, trades)
    return events, book, trades


def test_tardis_files_from_real_content_give_the_binance_readers_events(tardis_files):
    events, book, trades = tardis_files
    assert detect_format(book) == "tardis-book" and detect_format(trades) == "tardis-trades"
    got, rep = load_events([book, trades])
    assert rep.complete and rep.warnings == []
    exp = expected_from_tardis(events)
    g = without_clears(got)
    for f in ("ev", "exch_ts", "local_ts", "px", "qty", "order_id"):
        np.testing.assert_array_equal(g[f], exp[f], err_msg=f)
    # one snapshot: a clear per side, each before its side's levels, px = the deepest level (as hftbacktest)
    k = kinds(got)
    clears = np.flatnonzero(k == DEPTH_CLEAR_EVENT)
    assert clears.size == 2 and rep.message_counts["snapshot"] == 1
    bid_clear, ask_clear = clears
    assert got["ev"][bid_clear] == DEPTH_CLEAR_EVENT | BUY_EVENT | BOTH
    assert got["ev"][ask_clear] == DEPTH_CLEAR_EVENT | SELL_EVENT | BOTH
    bids = np.arange(bid_clear + 1, ask_clear)
    assert (kinds(got[bids]) == DEPTH_SNAPSHOT_EVENT).all() and bids.size == 1000
    assert got["px"][bid_clear] == got["px"][bids[-1]] == got["px"][bids].min()
    assert rep.message_counts["trade"] == int((kinds(events) == TRADE_EVENT).sum())
    assert (np.diff(got["local_ts"]) >= 0).all()


@pytest.mark.parametrize("batch_bytes", [3_000, 65_536])
def test_tardis_small_batches_and_chunks_give_the_same_rows(tardis_files, monkeypatch, batch_bytes):
    """A snapshot block split over batches is held back and applied whole; chunking changes nothing."""
    _, book, trades = tardis_files
    whole, _ = load_events([book, trades])
    monkeypatch.setattr(tardis, "BATCH_BYTES", batch_bytes)
    chunks = list(EventReader(book, chunk_rows=777))
    assert max(c.size for c in chunks) <= 777
    got = np.concatenate(chunks)
    np.testing.assert_array_equal(got, whole[kinds(whole) != TRADE_EVENT])
    merged = list(MergedReader([book, trades], chunk_rows=500))
    assert max(c.size for c in merged) <= 500
    np.testing.assert_array_equal(np.concatenate(merged), whole)


def test_tardis_documented_layout_hand_worked(tmp_path):
    """A diff before the first snapshot is skipped; a snapshot resets the book; amount 0 deletes; trade sides."""
    t = 1585699209920000
    book = tmp_path / "book.csv"
    book.write_text("\n".join([
        BOOK_HEAD,
        f"deribit,BTC-PERPETUAL,{t - 5},{t - 1},false,bid,6440.0,100",  # before the first snapshot: skipped
        f"deribit,BTC-PERPETUAL,{t},{t + 14201},true,ask,6443.5,38640",
        f"deribit,BTC-PERPETUAL,{t},{t + 14201},true,ask,6444.0,1000",
        f"deribit,BTC-PERPETUAL,{t},{t + 14201},true,bid,6443.0,2000",
        f"deribit,BTC-PERPETUAL,{t + 100},{t + 14301},false,ask,6443.5,0",
        f"deribit,BTC-PERPETUAL,{t + 200},{t + 14401},false,bid,6443.0,2500.5",
    ]) + "\n")  # fmt: skip
    trades = tmp_path / "trades.csv.gz"
    trades.write_bytes(gzip.compress("\n".join([
        TRADE_HEAD,
        f"deribit,BTC-PERPETUAL,{t + 100},{t + 14301},51953986,sell,6443.0,2000",  # same local time as a diff
        f"deribit,BTC-PERPETUAL,{t + 150},{t + 14350},abc-1,buy,6444.0,10",
        f"deribit,BTC-PERPETUAL,{t + 160},{t + 14360},7,unknown,6444.0,10",
    ]).encode() + b"\n"))  # fmt: skip
    got, rep = load_events([book, trades])
    us = 1000
    want = [
        (DEPTH_CLEAR_EVENT | BUY_EVENT, t, t + 14201, 6443.0, 0.0, 0),
        (DEPTH_SNAPSHOT_EVENT | BUY_EVENT, t, t + 14201, 6443.0, 2000.0, 0),
        (DEPTH_CLEAR_EVENT | SELL_EVENT, t, t + 14201, 6444.0, 0.0, 0),
        (DEPTH_SNAPSHOT_EVENT | SELL_EVENT, t, t + 14201, 6443.5, 38640.0, 0),
        (DEPTH_SNAPSHOT_EVENT | SELL_EVENT, t, t + 14201, 6444.0, 1000.0, 0),
        (TRADE_EVENT | SELL_EVENT, t + 100, t + 14301, 6443.0, 2000.0, 51953986),  # trades first at a tie
        (DEPTH_EVENT | SELL_EVENT, t + 100, t + 14301, 6443.5, 0.0, 0),
        (TRADE_EVENT | BUY_EVENT, t + 150, t + 14350, 6444.0, 10.0, 0),  # a non-integer id: 0
        (DEPTH_EVENT | BUY_EVENT, t + 200, t + 14401, 6443.0, 2500.5, 0),
    ]
    assert [(int(r["ev"]), int(r["exch_ts"]), int(r["local_ts"]), r["px"], r["qty"], int(r["order_id"]))
            for r in got] == [(ev | BOTH, a * us, b * us, p, q, i) for ev, a, b, p, q, i in want]  # fmt: skip
    assert rep.message_counts["depth_before_snapshot"] == 1
    assert rep.message_counts["trade_unknown_side"] == 1 and rep.message_counts["trade"] == 2
    _, rep_alone = load_events(book)
    assert rep_alone.warnings and rep_alone.warnings[0].startswith("no trades in ")
    assert rep.warnings == []  # the trades file came with it


def test_snapshot_blocks_split_on_receive_time(tmp_path):
    """Two snapshot messages back to back (no diff between) are two resets, not one merged book."""
    book = tmp_path / "b.csv"
    book.write_text(f"{BOOK_HEAD}\nx,S,1,10,true,bid,99,1\nx,S,1,10,true,ask,101,1\nx,S,2,20,true,bid,98,2\n")
    got, rep = load_events(book)
    assert rep.message_counts["snapshot"] == 2
    assert kinds(got).tolist() == [DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT, DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT,
                                   DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT]  # fmt: skip


def _book_lines(n_diffs: int = 6) -> list[str]:
    lines = [BOOK_HEAD, "x,S,1,10,true,bid,99,1", "x,S,1,10,true,ask,101,1"]
    lines += [f"x,S,{2 + i},{20 + i},false,bid,{98 - i % 3},{1 + i}" for i in range(n_diffs)]
    return lines


@pytest.mark.parametrize(
    ("line", "text", "kind", "needle"),
    [
        (5, "x,S,4,22,false,bid,98", "malformed", "line 5: malformed CSV row: missing or empty field 'amount'"),
        (5, "x,S,4,22,false,bid,98,1,7", "malformed", "line 5: malformed CSV row: 9 fields, expected 8"),
        (5, "x,S,4,22,false,bid,abc,1", "malformed", "line 5: malformed CSV row: price 'abc' is not a number"),
        (5, "x,S,4,22,false,buy,98,1", "malformed", "line 5: malformed CSV row: side 'buy' is not one of"),
        (5, "x,S,4,22,false,bid,,1", "malformed", "line 5: malformed CSV row: missing or empty field 'price'"),
        (5, "x,S,4,22,maybe,bid,98,1", "malformed", "line 5: malformed CSV row: is_snapshot 'maybe' is not true"),
        (5, "x,S,4,22,false,bid,98,-1", "malformed", "line 5: malformed CSV row: amount -1.0 is not >= 0 (coins)"),
        (5, "x,S,4,5,false,bid,98,1", "backwards", "line 5: timestamp goes backwards: local_timestamp 5 µs"),
    ],
)  # fmt: skip
def test_tardis_bad_row_stops_naming_file_and_line_or_is_skipped(tmp_path, line, text, kind, needle):
    lines = _book_lines()
    lines[line - 1] = text
    p = tmp_path / "book.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"book.csv: {needle}")):
        load_events(p)
    kept, rep = load_events(p, keep_partial=True)
    assert rep.error is not None and needle in rep.error
    assert kept.size == 4 + 1  # the snapshot (2 clears, 2 levels) and the diff on line 4
    skipped, rep = load_events(p, on_error="skip")
    assert rep.skipped == {kind: 1} and skipped.size == 4 + 5 and needle in rep.skipped_examples[0]


def test_bad_row_inside_a_snapshot_block_drops_the_incomplete_block(tmp_path):
    lines = [*_book_lines(), "x,S,30,40,true,bid,97,1", "x,S,30,40,true,bid,96,oops", "x,S,30,40,true,ask,103,1"]
    p = tmp_path / "book.csv"
    p.write_text("\n".join(lines) + "\n")
    kept, rep = load_events(p, keep_partial=True)
    assert "line 11: malformed CSV row: amount 'oops' is not a number" in rep.error
    assert "the snapshot block begun at line 10 is incomplete and was not applied" in rep.error
    assert kept.size == 4 + 6 and not (kept["local_ts"] == 40_000).any()


def test_truncated_gzip_in_a_snapshot_block(tmp_path):
    lines = _book_lines() + [f"x,S,30,40,true,bid,{90_000 - i * 0.5:.1f},{i + 1}" for i in range(20_000)]
    raw = gzip.compress(("\n".join(lines) + "\n").encode())
    p = tmp_path / "book.csv.gz"
    p.write_bytes(raw[: len(raw) // 2])
    assert detect_format(p) == "tardis-book"
    kept, rep = load_events(p, keep_partial=True)
    assert "book.csv.gz: line " in rep.error and "truncated gzip stream" in rep.error
    assert "the snapshot block begun at line 10 is incomplete" in rep.error
    assert kept.size == 4 + 6  # what came before the broken block
    kept2, rep2 = load_events(p, on_error="skip")
    assert rep2.skipped == {"truncated": 1} and kept2.size == kept.size


def test_unknown_csv_header_lists_the_tardis_formats(tmp_path):
    p = tmp_path / "other.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"unknown data format .* tardis-book, tardis-trades, hyperliquid-archive"):
        detect_format(p)


# ---- Hyperliquid archive --------------------------------------------------------------------------------
def test_iso_ns():
    assert iso_ns("2025-03-11T09:00:03.296545473") == 1_741_683_603_296_545_473
    assert iso_ns("2025-03-11T09:00:03Z") == 1_741_683_603_000_000_000
    assert iso_ns("2025-03-11T09:00:03.5") == 1_741_683_603_500_000_000
    with pytest.raises(ValueError):
        iso_ns("2025-03-11T09:00:03.12x")


def test_archive_documented_line(tmp_path):
    data = {"coin": "BTC", "time": 1741683603296,
            "levels": [[{"px": "83000.0", "sz": "1.5", "n": 3}, {"px": "82999.0", "sz": "2", "n": 1}],
                       [{"px": "83001.0", "sz": "0.5", "n": 1}]]}  # fmt: skip
    line = {"time": "2025-03-11T09:00:03.296545473", "ver_num": 1, "raw": {"channel": "l2Book", "data": data}}
    p = tmp_path / "BTC.lz4"
    p.write_bytes(lz4.frame.compress((json.dumps(line) + "\n").encode()))
    assert detect_format(p) == "hyperliquid-archive"
    got, rep = load_events(p)
    assert got["local_ts"].tolist() == [1_741_683_603_296_545_473] * 5
    assert (got["exch_ts"] == 1_741_683_603_296_000_000).all()
    assert kinds(got).tolist() == [DEPTH_CLEAR_EVENT, DEPTH_CLEAR_EVENT] + [DEPTH_SNAPSHOT_EVENT] * 3
    assert got["px"][2:].tolist() == [83000.0, 82999.0, 83001.0] and got["qty"][2:].tolist() == [1.5, 2.0, 0.5]
    assert rep.message_counts["l2Book"] == 1
    assert len(rep.warnings) == 1 and "no trade-driven fills" in rep.warnings[0]


@pytest.mark.parametrize("compress", ["lz4", "gzip", "plain"])
def test_archive_from_real_content_gives_the_live_readers_events(tmp_path, hyperliquid, compress):
    arch, trades = tmp_path / "BTC.lz4", tmp_path / "trades.gz"
    n = hyperliquid_to_archive(real(HYPERLIQUID), arch, trades, compress=compress)
    live, _ = hyperliquid
    assert detect_format(arch) == "hyperliquid-archive"
    book, rep = load_events(arch)
    assert rep.message_counts["l2Book"] == n == 46 and rep.warnings
    np.testing.assert_array_equal(book, live[kinds(live) != TRADE_EVENT])
    both, rep = load_events([arch, trades])
    np.testing.assert_array_equal(both, live)  # the same rows in the same order as the live recording
    assert rep.warnings == [] and rep.message_counts["trades"] == 9


def _archive(tmp_path, n=8):
    lines = []
    for i in range(n):
        data = {"coin": "BTC", "time": 1741683603000 + i * 500,
                "levels": [[{"px": f"{100 - i}", "sz": "1", "n": 1}],
                           [{"px": f"{101 + i}", "sz": "1", "n": 1}]]}  # fmt: skip
        m, sec = divmod(3 + i, 60)
        lines.append(json.dumps({"time": f"2025-03-11T09:{m:02d}:{sec:02d}.000000001", "ver_num": 1,
                                 "raw": {"channel": "l2Book", "data": data}}))  # fmt: skip
    return lines


@pytest.mark.parametrize(
    ("mutate", "kind", "needle"),
    [
        (lambda ls: ls.__setitem__(4, ls[4][:30]), "malformed", "line 5: malformed line: not JSON"),
        (lambda ls: ls.__setitem__(4, '{"time": "x", "raw": {}}'), "malformed", "line 5: malformed time 'x'"),
        (lambda ls: ls.__setitem__(4, ls[4].replace(":00:07.", ":00:01.")), "backwards", "line 5: timestamp goes"),
        (lambda ls: ls.__setitem__(4, ls[4].replace('"levels"', '"lvls"')), "malformed", "line 5: malformed l2Book"),
    ],
)
def test_archive_bad_line_stops_or_is_skipped(tmp_path, mutate, kind, needle):
    lines = _archive(tmp_path)
    mutate(lines)
    p = tmp_path / "BTC.lz4"
    p.write_bytes(lz4.frame.compress(("\n".join(lines) + "\n").encode()))
    kept, rep = load_events(p, keep_partial=True)
    assert needle in rep.error and rep.error.startswith(f"{p}: ")
    assert kept.size == 4 * 4  # four snapshots before it
    skipped, rep = load_events(p, on_error="skip")
    assert rep.skipped == {kind: 1} and skipped.size == 7 * 4


def test_archive_truncated_lz4_keeps_what_came_before(tmp_path):
    lines = _archive(tmp_path, 3000)
    raw = lz4.frame.compress(("\n".join(lines) + "\n").encode(), block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    p = tmp_path / "BTC.lz4"
    p.write_bytes(raw[: len(raw) * 2 // 3])
    assert detect_format(p) == "hyperliquid-archive"
    kept, rep = load_events(p, keep_partial=True)
    assert "BTC.lz4: line " in rep.error and "truncated lz4 frame" in rep.error
    line = int(rep.error.split("line ")[1].split(":")[0])
    assert kept.size == (line - 1) * 4 and 0 < line < 3000
    p.write_bytes(raw[:-3] + b"\x00\x01\x02")  # corrupt end mark / checksum
    kept, rep = load_events(p, on_error="skip")
    assert rep.skipped == {"truncated": 1} and kept.size > 0


# ---- the merge ------------------------------------------------------------------------------------------
def test_merge_stops_at_the_failed_files_last_good_row(tmp_path):
    """A bad trades row at t=25 µs: the book's rows up to the last good trade (t=22) are kept, later ones not."""
    book = tmp_path / "book.csv"
    book.write_text("\n".join(_book_lines(10)) + "\n")  # diffs at local 20..29 µs
    trades = tmp_path / "trades.csv"
    trades.write_text(f"{TRADE_HEAD}\nx,S,1,21,1,buy,101,1\nx,S,1,22,2,sell,99,1\nx,S,1,25,3,sell,99,zz\n")
    with pytest.raises(DataError, match=r"trades\.csv: line 4: malformed CSV row: amount 'zz'"):
        load_events([book, trades])
    kept, rep = load_events([book, trades], keep_partial=True)
    assert kept["local_ts"].max() == 22_000 and rep.error.startswith(f"{trades}: line 4")
    assert kinds(kept).tolist().count(TRADE_EVENT) == 2 and kinds(kept).tolist().count(DEPTH_EVENT) == 3
    assert rep.path == f"{book} + {trades}"


# ---- the CLI: convert, and calibrate/backtest on several files ------------------------------------------
def _json(r) -> dict:
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_convert_round_trip_gives_the_same_backtest_and_calibration(tardis_files, tmp_path):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    _, book, trades = tardis_files
    npz = tmp_path / "btc.npz"
    doc = _json(runner.invoke(app, ["convert", str(book), str(trades), "--out", str(npz), "--json"]))
    assert doc["out"] == str(npz) and doc["by_kind"]["trade"] > 0 and doc["read_report"]["warnings"] == []
    assert detect_format(npz) == "hftbacktest-npz"
    src_events, _ = load_events([book, trades])
    np.testing.assert_array_equal(load_events(npz)[0], src_events)
    bt = ["backtest", "--allocator", "flat", "--refresh-s", "1", "--json", "--warmup-s", "2"]
    a = _json(runner.invoke(app, [*bt[:1], str(book), str(trades), *bt[1:], "--out", str(tmp_path / "a")]))
    b = _json(runner.invoke(app, [*bt[:1], str(npz), *bt[1:], "--out", str(tmp_path / "b")]))
    diff = {k: (v, b["allocators"]["flat"].get(k)) for k, v in a["allocators"]["flat"].items()
            if b["allocators"]["flat"].get(k) != v and k not in ("wall_s", "strategy_s", "events_per_s")}  # fmt: skip
    assert not diff and a["allocators"]["flat"]["fills"] > 0
    assert a["file"] == [str(book), str(trades)]
    ca = _json(runner.invoke(app, ["calibrate", str(book), str(trades), "--out", str(tmp_path / "ca"), "--json"]))
    cb = _json(runner.invoke(app, ["calibrate", str(npz), "--out", str(tmp_path / "cb"), "--json"]))
    for key in ("sigma_frac", "fill", "duration_s"):
        assert ca[key] == cb[key], key
    assert (
        "fitted from incremental_book_L2.csv.gz + trades.csv.gz" in (tmp_path / "ca" / "calibration.toml").read_text()
    )


def test_convert_errors_and_skip(tmp_path):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    lines = _book_lines()
    lines[4] = "x,S,4,22,false,bid,abc,1"
    p = tmp_path / "book.csv"
    p.write_text("\n".join(lines) + "\n")
    out = tmp_path / "x.npz"
    r = runner.invoke(app, ["convert", str(p), "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output and not out.exists()
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and "book.csv: line 5: malformed CSV row: price 'abc'" in err[-1]
    assert "nothing written" in err[-1]
    r = runner.invoke(app, ["convert", str(p), "--out", str(out), "--on-error", "skip"])
    assert r.exit_code == 0, r.output and out.exists()
    assert "skipped 1 bad line of" in r.stderr and "no trades in" in r.stderr
    assert load_events(out)[0].size == 4 + 5
    r = runner.invoke(app, ["convert", str(p), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "is a folder" in r.stderr
    r = runner.invoke(app, ["convert", str(p), "--out", str(tmp_path / "no" / "x.npz")])
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_backtest_on_an_archive_alone_warns_that_it_has_no_trades(tmp_path):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    arch = tmp_path / "BTC.lz4"
    hyperliquid_to_archive(real(HYPERLIQUID), arch)
    r = CliRunner().invoke(app, ["backtest", str(arch), "--allocator", "flat", "--out", str(tmp_path / "bt")])
    assert r.exit_code == 0, r.output
    assert "warning: no trades in" in r.stderr and "no trade-driven fills" in r.stderr
    assert "data warning: no trades" in (tmp_path / "bt" / "summary.md").read_text()


# ---- an invariant on every input ------------------------------------------------------------------------
def _apply(events: np.ndarray) -> tuple[dict[float, float], dict[float, float]]:
    """The book the events build: a clear empties a side, a level row sets (0: removes) its price."""
    bid: dict[float, float] = {}
    ask: dict[float, float] = {}
    for r in events:
        side = bid if int(r["ev"]) & BUY_EVENT else ask
        kind = int(r["ev"]) & 0xFF
        if kind == DEPTH_CLEAR_EVENT:
            side.clear()
        elif r["qty"] == 0:
            side.pop(float(r["px"]), None)
        else:
            side[float(r["px"])] = float(r["qty"])
    return bid, ask


_row = st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 3))  # (bid side, price step, size)
_msg = st.tuples(st.booleans(), st.lists(_row, min_size=1, max_size=6))  # (is a snapshot, its rows)


@settings(max_examples=40, deadline=None)
@given(msgs=st.lists(_msg, min_size=1, max_size=25), batch=st.sampled_from([64, 200, 1 << 20]))
def test_tardis_book_equals_the_documented_rebuild(msgs, batch):
    """Whatever the rows and batch size: the events rebuild the book Tardis describes (a snapshot message
    resets the book, amount 0 removes a level, rows before the first snapshot are skipped)."""
    import tempfile
    from pathlib import Path

    lines, ref_bid, ref_ask, seen = [BOOK_HEAD], {}, {}, False
    for t, (snap, rows) in enumerate(msgs):
        if snap:  # a snapshot has both sides, as Tardis' do
            rows = [*rows, (True, 9, 1), (False, 9, 1)]
            ref_bid, ref_ask, seen = {}, {}, True
        for is_bid, step, size in rows:
            px = 100.0 - step * 0.5 if is_bid else 101.0 + step * 0.5
            lines.append(f"x,S,{t},{t * 10},{'true' if snap else 'false'},{'bid' if is_bid else 'ask'},{px},{size}")
            if seen:
                book = ref_bid if is_bid else ref_ask
                if size == 0:
                    book.pop(px, None)
                else:
                    book[px] = float(size)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "b.csv"
        p.write_text("\n".join(lines) + "\n")
        old = tardis.BATCH_BYTES
        tardis.BATCH_BYTES = batch
        try:
            got, rep = load_events(p)
        finally:
            tardis.BATCH_BYTES = old
    assert rep.complete
    assert _apply(got) == (ref_bid, ref_ask)
    assert (np.diff(got["local_ts"]) >= 0).all()


def test_archive_with_a_tardis_trades_file(tmp_path, hyperliquid):
    """The archive's snapshots plus Hyperliquid trades from Tardis (µs): both kept, in time order, no warning."""
    live, _ = hyperliquid
    arch = tmp_path / "BTC.lz4"
    hyperliquid_to_archive(real(HYPERLIQUID), arch)
    trades = tmp_path / "hyperliquid_trades_BTC.csv.gz"
    events_to_tardis(live[kinds(live) == TRADE_EVENT], tmp_path / "unused.csv", trades, symbol="BTC")
    got, rep = load_events([arch, trades])
    assert rep.warnings == [] and rep.fmt == "hyperliquid-archive + tardis-trades"
    assert (np.diff(got["local_ts"]) >= 0).all()
    np.testing.assert_array_equal(got[kinds(got) != TRADE_EVENT], live[kinds(live) != TRADE_EVENT])
    t = got[kinds(got) == TRADE_EVENT]
    lt = live[kinds(live) == TRADE_EVENT]
    np.testing.assert_array_equal(t["local_ts"], lt["local_ts"] // 1000 * 1000)
    for f in ("ev", "exch_ts", "px", "qty", "order_id"):
        np.testing.assert_array_equal(t[f], lt[f], err_msg=f)


def test_hourly_archive_files_read_as_one_stream(tmp_path):
    """market_data/<day>/<H>/l2Book/BTC.lz4 for two hours: one stream, the hours in order, counts summed."""
    lines = _archive(tmp_path, 10)
    paths = []
    for h, part in ((9, lines[:6]), (10, lines[6:])):
        d = tmp_path / "market_data" / "20250311" / str(h) / "l2Book"
        d.mkdir(parents=True)
        (d / "BTC.lz4").write_bytes(lz4.frame.compress(("\n".join(part) + "\n").encode()))
        paths.append(d / "BTC.lz4")
    whole = tmp_path / "all.lz4"
    whole.write_bytes(lz4.frame.compress(("\n".join(lines) + "\n").encode()))
    got, rep = load_events(paths[::-1])  # any order given: merged by time
    np.testing.assert_array_equal(got, load_events(whole)[0])
    assert rep.message_counts["l2Book"] == 10 and rep.lines == 10
    assert len(rep.warnings) == 1 and rep.warnings[0].endswith("(and 1 more files without trades)")


@pytest.mark.parametrize("n_files", [2, 3])
def test_merge_of_interleaved_files_with_ties_is_a_stable_time_sort(tmp_path, n_files):
    """Rows of several files with shared receive times: ordered by time, then by file (as given), then by row."""
    rng = np.random.default_rng(n_files)
    paths, want = [], []
    for f in range(n_files):
        local = np.sort(rng.integers(0, 300, 400))
        rows = [f"x,S,{t},{t},{f * 1000 + i},buy,{100 + f},1" for i, t in enumerate(local)]
        p = tmp_path / f"t{f}.csv"
        p.write_text("\n".join([TRADE_HEAD, *rows]) + "\n")
        paths.append(p)
        want += [(int(t), f, f * 1000 + i) for i, t in enumerate(local)]
    want.sort()
    for chunk in (7, 1000):
        got = np.concatenate(list(MergedReader(paths, chunk_rows=chunk)))
        assert got["order_id"].tolist() == [w[2] for w in want]


def test_tardis_files_from_the_spot_recording(spot, tmp_path):
    """The Binance spot recording (depth@100ms, its own snapshot) as Tardis files reads back the same rows."""
    events = spot[0][:30_000]
    book, trades = tmp_path / "book.csv", tmp_path / "trades.csv.gz"
    events_to_tardis(events, book, trades)
    got, rep = load_events([book, trades])
    assert rep.complete and rep.message_counts["snapshot"] == int((kinds(events) == DEPTH_CLEAR_EVENT).sum()) // 2
    exp = expected_from_tardis(events)
    for f in ("ev", "exch_ts", "local_ts", "px", "qty", "order_id"):
        np.testing.assert_array_equal(without_clears(got)[f], exp[f], err_msg=f)


# ---- hftbacktest's event order ----------------------------------------------------------------------------
def _rows(exch, local):
    from hyper_make.data.events import empty_events

    e = empty_events(len(exch))
    e["ev"] = DEPTH_EVENT | BUY_EVENT | BOTH
    e["exch_ts"], e["local_ts"] = exch, local
    e["px"] = np.arange(len(exch)) + 1.0
    return e


def test_hftbacktest_order_hand_worked():
    """Row 2 (px 2) happened first at the exchange but arrived second: an exchange copy before row 1, a local
    copy after it; row 1 is in both orders: once, both flags."""
    from hyper_make.data.hbt_order import hftbacktest_order

    out = hftbacktest_order(_rows([1, 0], [10, 11]))
    assert out["px"].tolist() == [2.0, 1.0, 2.0]
    assert [int(e) & BOTH for e in out["ev"]] == [EXCH_EVENT, BOTH, LOCAL_EVENT]
    same = _rows([1, 2, 2, 5], [3, 4, 4, 9])
    np.testing.assert_array_equal(hftbacktest_order(same), same)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40))
def test_hftbacktest_order_views_are_sorted_and_complete(pairs):
    from hyper_make.data.events import exchange_view
    from hyper_make.data.hbt_order import hftbacktest_order

    local = np.sort([p[1] for p in pairs])
    rows = _rows([p[0] for p in pairs], local)
    out = hftbacktest_order(rows)
    ex = exchange_view(out)
    lo = out[(out["ev"] & np.uint64(LOCAL_EVENT)) != 0]
    assert (np.diff(ex["exch_ts"]) >= 0).all() and (np.diff(lo["local_ts"]) >= 0).all()
    for view in (ex, lo):  # every row once in each view
        assert sorted(view["px"].tolist()) == sorted(rows["px"].tolist())


def test_convert_hftbacktest_order_reads_back(tardis_files, tmp_path):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    _, book, trades = tardis_files
    npz = tmp_path / "hbt.npz"
    r = CliRunner().invoke(app, ["convert", str(book), str(trades), "--out", str(npz), "--hftbacktest-order", "--json"])
    doc = _json(r)
    got, rep = load_events(npz)
    assert rep.complete and got.size == doc["events"] == load_events([book, trades])[0].size + doc["split_rows"]
    assert doc["split_rows"] > 0  # the trade stream's exchange times interleave the depth stream's
    bad = got.copy()
    k = int(np.flatnonzero((bad["ev"] & np.uint64(BOTH)) == np.uint64(BOTH))[100])
    bad["exch_ts"][k] = 0
    np.savez_compressed(tmp_path / "bad.npz", data=bad)
    with pytest.raises(DataError, match=f"line {k}: timestamp goes backwards: exch_ts 0 ns"):
        load_events(tmp_path / "bad.npz")
