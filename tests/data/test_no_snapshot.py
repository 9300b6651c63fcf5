"""Binance recordings without a REST snapshot: the book from the diffs after a warm-up, resync after gaps, COIN-M.

The files are built in tmp_path from real lines of the shared recordings (the snapshot line removed, a diff
dropped, stream names and quantities rewritten), and every book is compared with the one the snapshot-synchronised
reader gives for the same lines.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from data._files import FUTURES, SPOT, good_lines, real_lines, without_snapshot, write_gz
from hyper_make.data import load_events
from hyper_make.data.book import BookGrid, OrderBook
from hyper_make.data.events import DEPTH_EVENT, kinds
from hyper_make.data.readers import BOOK_WARMUP_S, SNAPSHOT_WAIT_S
from hyper_make.errors import DataError

#: ~45 s of the USD-M recording (its snapshot is line 55), ~60 s of the spot one (snapshot at line 8).
N_FUTURES, N_SPOT = 12_000, 2_400


def _books_at(events, grid, times, *, use_bbo=False, n=10):
    """Top ``n`` levels (prices, quantities) of both sides after every row with exchange time <= each of times."""
    book = OrderBook(grid, use_bbo=use_bbo)
    out, done = [], 0
    ts = events["exch_ts"]
    for t in times:
        k = int(np.searchsorted(np.maximum.accumulate(ts), t, side="right"))
        book.apply(events[done:k])
        done = k
        (bp, bq), (ap, aq) = book.levels("bid", n), book.levels("ask", n)
        out.append((bp.tolist(), bq.tolist(), ap.tolist(), aq.tolist()))
    return out


@pytest.fixture(scope="module")
def futures_pair(tmp_path_factory):
    """(with snapshot, without) events and reports of the first lines of the USD-M recording."""
    d = tmp_path_factory.mktemp("nosnap")
    lines = real_lines(FUTURES, N_FUTURES)
    synced = load_events(write_gz(d / "synced.gz", lines))
    diffs = load_events(write_gz(d / "usdm-nosnap.gz", without_snapshot(lines)))
    return synced, diffs, d / "usdm-nosnap.gz"


def test_book_from_diffs_equals_the_synchronised_book_after_the_warm_up(futures_pair):
    (sync_ev, sync_rep), (ev, rep), path = futures_pair
    assert sync_rep.warmups == [] and sync_rep.warnings == []
    # one warning, naming the file; one warm-up of at least BOOK_WARMUP_S from the first diff
    assert len(rep.warnings) == 1 and str(path) in rep.warnings[0] and "no REST snapshot" in rep.warnings[0]
    (w,) = rep.warmups
    assert w.reason == "no_snapshot" and w.line == 1 and w.end_ns is not None
    assert BOOK_WARMUP_S <= w.duration_s < BOOK_WARMUP_S + 1.0
    assert rep.book_warmup_end_ns == w.end_ns and rep.complete and rep.gaps == []
    # the depth rows are the same diffs (the snapshot-less file also keeps those older than the snapshot)
    assert int(np.sum(kinds(ev) == DEPTH_EVENT)) > int(np.sum(kinds(sync_ev) == DEPTH_EVENT))
    grid = BookGrid.around(sync_ev)
    times = np.linspace(w.end_ns, int(sync_ev["exch_ts"].max()), 25).astype(np.int64)
    for use_bbo in (False, True):
        assert _books_at(ev, grid, times, use_bbo=use_bbo) == _books_at(sync_ev, grid, times, use_bbo=use_bbo)
    # before the warm-up ended the book from diffs lacks levels: the warm-up is not decoration
    early = np.array([w.start_ns + 1_000_000_000], dtype=np.int64)
    assert _books_at(ev, grid, early) != _books_at(sync_ev, grid, early)


def test_spot_book_from_diffs_has_the_right_touch(tmp_path):
    lines = real_lines(SPOT, N_SPOT)
    sync_ev, _ = load_events(write_gz(tmp_path / "s.gz", lines))
    ev, rep = load_events(write_gz(tmp_path / "spot-nosnap.gz", without_snapshot(lines)))
    assert rep.fmt == "binance-spot" and len(rep.warnings) == 1 and rep.warmups[0].end_ns is not None
    grid = BookGrid.around(sync_ev)
    times = np.linspace(rep.warmups[0].end_ns, int(sync_ev["exch_ts"].max()), 25).astype(np.int64)
    ours, theirs = _books_at(ev, grid, times, n=1), _books_at(sync_ev, grid, times, n=1)
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) >= 23  # 99.9 % of diffs on the whole file


def test_late_snapshot_synchronises_and_ends_the_warm_up(tmp_path):
    lines = real_lines(FUTURES, N_FUTURES)
    synced, _ = load_events(write_gz(tmp_path / "synced.gz", lines))
    snap_i = next(i for i, ln in enumerate(lines) if '"lastUpdateId"' in ln)
    snap = lines.pop(snap_i)
    t_first = int(lines[0].split(" ", 1)[0])
    # 7 s in: past the snapshot wait, inside the warm-up
    at = next(i for i, ln in enumerate(lines) if int(ln.split(" ", 1)[0]) > t_first + 7_000_000_000)
    lines.insert(at, lines[at - 1].split(" ", 1)[0] + " " + snap.split(" ", 1)[1])  # received then
    ev, rep = load_events(write_gz(tmp_path / "late.gz", lines))
    (w,) = rep.warmups
    assert rep.message_counts["snapshot"] == 1 and len(rep.warnings) == 1 and rep.complete
    assert w.duration_s < BOOK_WARMUP_S  # the snapshot ended it
    grid = BookGrid.around(synced)
    # from the snapshot's receipt on, the book is the synchronised one
    t_snap = int(json.loads(snap.split(" ", 1)[1])["E"]) * 1_000_000 + 8_000_000_000
    later = np.linspace(t_snap, int(ev["exch_ts"].max()), 10).astype(np.int64)
    assert _books_at(ev, grid, later) == _books_at(synced, grid, later)
    assert rep.skipped["stale_depth"] == 0  # diffs already applied are not counted as dropped


def _drop_diff(lines: list[str], k: int) -> tuple[list[str], int]:
    """Lines less the ``k``-th depth diff; returns them and the 1-based line of the diff that follows it."""
    depth = [i for i, ln in enumerate(lines) if "@depth" in ln]
    out = lines[: depth[k]] + lines[depth[k] + 1 :]
    return out, depth[k + 1]  # its index in ``out`` + 1


@pytest.mark.parametrize("with_snapshot", [False, True], ids=["no-snapshot", "snapshot"])
def test_gap_resyncs_under_skip_and_stops_under_stop(tmp_path, futures_pair, with_snapshot):
    (sync_ev, _), _, _ = futures_pair
    lines = real_lines(FUTURES, N_FUTURES)
    if not with_snapshot:
        lines = without_snapshot(lines)
    lines, gap_line = _drop_diff(lines, 300)  # ~15 s in
    path = write_gz(tmp_path / "gap.gz", lines)
    with pytest.raises(DataError, match=rf"gap.gz: line {gap_line}: update-id gap: pu="):
        load_events(path)
    ev, rep = load_events(path, on_error="skip")
    assert rep.complete and rep.resyncs == 1 and rep.skipped["gap"] == 1 and len(rep.gaps) == 1
    assert rep.gaps[0][0] == gap_line
    warm = rep.warmups[-1]
    assert warm.reason == "gap" and warm.line == gap_line and warm.end_ns is not None
    assert [w.reason for w in rep.warmups] == (["gap"] if with_snapshot else ["no_snapshot", "gap"])
    assert "resync after a gap at line" in rep.warmup_summary()
    # after the resync's warm-up the rebuilt book is the synchronised book of the full data again
    grid = BookGrid.around(sync_ev)
    times = np.linspace(warm.end_ns, int(sync_ev["exch_ts"].max()), 10).astype(np.int64)
    assert _books_at(ev, grid, times) == _books_at(sync_ev, grid, times)


def test_short_file_without_snapshot_is_all_warm_up(tmp_path):
    ev, rep = load_events(write_gz(tmp_path / "short.gz", good_lines()[1:]))
    assert int(np.sum(kinds(ev) == DEPTH_EVENT)) == 3 and len(rep.warnings) == 1
    (w,) = rep.warmups
    assert w.end_ns is None and w.duration_s is None and "until the end of the data" in rep.warmup_summary()
    assert rep.to_dict()["warmups"][0]["end_ns"] is None
    json.dumps(rep.to_dict())


# ---- COIN-M -------------------------------------------------------------------------------------------------
def _coinm(line: str, coin: str, contract_usd: float) -> str:
    """A real USD-M line as a COIN-M one: dapi stream name, ``ps`` pair, quantities in whole contracts."""
    ts, js = line.split(" ", 1)
    msg = json.loads(js)
    sym = f"{coin.lower()}usd_perp"

    def contracts(p: str, q: str) -> str:
        return str(round(float(q) * float(p) / contract_usd)) if float(q) > 0 else "0"

    if "lastUpdateId" in msg:
        msg |= {"symbol": sym.upper(), "pair": f"{coin}USD"}
        for side in ("bids", "asks"):
            msg[side] = [[p, contracts(p, q)] for p, q in msg[side]]
        return f"{ts} {json.dumps(msg)}"
    stream, d = msg["stream"], msg["data"]
    kind = stream.split("@", 1)[1]
    d |= {"s": sym.upper(), "ps": f"{coin}USD"}
    if kind.startswith("depth"):
        d["b"] = [[p, contracts(p, q)] for p, q in d["b"]]
        d["a"] = [[p, contracts(p, q)] for p, q in d["a"]]
    elif kind == "bookTicker":
        d["B"], d["A"] = contracts(d["b"], d["B"]), contracts(d["a"], d["A"])
    else:
        d["q"] = contracts(d["p"], d["q"])
    return f"{ts} {json.dumps({'stream': f'{sym}@{kind}', 'data': d})}"


@pytest.mark.parametrize(("coin", "contract_usd"), [("BTC", 100.0), ("ETH", 10.0)])
def test_coinm_quantities_in_contracts_become_coins(tmp_path, coin, contract_usd):
    lines = real_lines(FUTURES, 3_000)
    coinm = [_coinm(ln, coin, contract_usd) for ln in without_snapshot(lines)]
    ev, rep = load_events(write_gz(tmp_path / "coinm.gz", coinm))
    assert rep.fmt == "binance-futures" and rep.contract_size_usd == contract_usd
    assert len(rep.warnings) == 1  # COIN-M files often lack the snapshot too
    # every quantity is contracts * contract_size_usd / price (coins), worked out from the file's own strings
    expected = []
    for ln in coinm:
        d = json.loads(ln.split(" ", 1)[1])["data"]
        kind = d["e"]
        if kind == "depthUpdate":
            expected += [float(q) * contract_usd / float(p) for p, q in d["b"] + d["a"]]
        elif kind == "bookTicker":
            expected += [float(d["B"]) * contract_usd / float(d["b"]), float(d["A"]) * contract_usd / float(d["a"])]
        else:
            expected.append(float(d["q"]) * contract_usd / float(d["p"]))
    # (the same rows; the diffs buffered while waiting for a snapshot come later in the events)
    assert np.allclose(np.sort(ev["qty"]), np.sort(expected), rtol=1e-12, atol=0)
    # and the USD-M book in coins is what it describes, to within half a contract per level
    usdm, _ = load_events(write_gz(tmp_path / "usdm.gz", without_snapshot(lines)))
    grid = BookGrid.around(usdm)
    t = np.array([int(usdm["exch_ts"].max())])
    ((bp, bq, ap, aq),) = _books_at(ev, grid, t)
    ((bp0, bq0, ap0, aq0),) = _books_at(usdm, grid, t)
    assert bp == bp0 and ap == ap0
    for px, q, q0 in ((bp0, bq, bq0), (ap0, aq, aq0)):
        half = 0.5 * contract_usd / np.array(px)
        assert np.all(np.abs(np.array(q) - np.array(q0)) <= half + 1e-12)


def test_coinm_snapshot_is_converted_and_usdm_delivery_is_not_inverse(tmp_path):
    lines = real_lines(FUTURES, 200)
    ev, rep = load_events(write_gz(tmp_path / "coinm-snap.gz", [_coinm(ln, "BTC", 100.0) for ln in lines]))
    assert rep.contract_size_usd == 100.0 and rep.warmups == []
    snap = json.loads(next(ln for ln in lines if "lastUpdateId" in ln).split(" ", 1)[1])
    p, q = snap["bids"][0]
    row = ev[(ev["px"] == float(p)) & (kinds(ev) == 4)][0]
    assert row["qty"] == pytest.approx(round(float(q) * float(p) / 100.0) * 100.0 / float(p), rel=1e-12)
    # a USD-M quarterly contract (btcusdt_240927) is quoted in coins
    usdm_q = [ln.replace("btcusdt@", "btcusdt_240927@") for ln in lines]
    _, rep = load_events(write_gz(tmp_path / "usdm-q.gz", usdm_q))
    assert rep.contract_size_usd is None


def test_wait_and_warm_up_constants_are_what_the_docs_say():
    assert SNAPSHOT_WAIT_S == 5.0 and BOOK_WARMUP_S == 10.0


# ---- the commands ------------------------------------------------------------------------------------------
def test_calibrate_and_backtest_run_on_a_snapshot_less_file_with_the_warm_up_marked(tmp_path, futures_pair):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    runner = CliRunner()
    (sync_ev, _), (_, rep), path = futures_pair
    warm_s = rep.warmups[0].duration_s
    span_s = (int(sync_ev["exch_ts"].max()) - int(sync_ev["exch_ts"].min())) / 1e9
    r = runner.invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "cal"), "--json",
                            "--adverse-horizon-s", "5"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stderr.count("no REST snapshot line") == 1 and str(path) in r.stderr
    doc = json.loads(r.stdout)
    # the warm-up is cut from the fits: σ's data starts after it
    assert doc["book_warmup_excluded_s"] == pytest.approx(warm_s, abs=0.1)
    assert doc["read_report"]["warmups"][0]["reason"] == "no_snapshot"
    assert doc["duration_s"] == pytest.approx(span_s - warm_s, abs=0.5)
    toml = (tmp_path / "cal" / "calibration.toml").read_text()
    assert "# book: no snapshot in the file" in toml and "left out of the fits" in toml

    out = tmp_path / "bt"
    r = runner.invoke(app, ["backtest", str(path), "--allocator", "flat", "--out", str(out), "--json",
                            "--warmup-s", "2"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stderr.count("no REST snapshot line") == 1
    doc = json.loads(r.stdout)
    assert doc["book_warmup_s"] >= BOOK_WARMUP_S
    summary = (out / "summary.md").read_text()
    assert "BOOK WARM-UP: book built from depth diffs" in summary and "--warmup-s 2, is extended" in summary
    fills = np.loadtxt(out / "fills_flat.csv", delimiter=",", skiprows=1, ndmin=2)
    t0 = int(load_events(path)[0]["exch_ts"][0])
    if fills.size:  # no fill before the book was trusted
        assert fills[:, 0].min() >= t0 + doc["book_warmup_s"] * 1e9
    extra = json.loads((out / "metrics.json").read_text())["extra"]
    assert extra["book_warmup_s"] == doc["book_warmup_s"] and extra["read_report"]["warmups"]


def test_calibrate_on_a_file_that_is_all_warm_up_fails_on_one_line(tmp_path):
    from typer.testing import CliRunner

    from hyper_make.cli import app

    lines = without_snapshot(real_lines(FUTURES, 1_500))  # ~5 s: the warm-up never ends
    path = write_gz(tmp_path / "tiny.gz", lines)
    r = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "cal")])
    assert r.exit_code == 2 and "still warming up from the diffs" in r.stderr and "Traceback" not in r.output


def test_gap_among_the_diffs_buffered_while_waiting_for_a_snapshot(tmp_path, futures_pair):
    (sync_ev, _), _, _ = futures_pair
    lines, gap_line = _drop_diff(without_snapshot(real_lines(FUTURES, N_FUTURES)), 20)  # ~1 s in
    path = write_gz(tmp_path / "early-gap.gz", lines)
    with pytest.raises(DataError, match=rf"early-gap.gz: line \d+: update-id gap: .*in the diff of line {gap_line}"):
        load_events(path)
    ev, rep = load_events(path, on_error="skip")
    assert rep.resyncs == 1 and [w.reason for w in rep.warmups] == ["no_snapshot", "gap"]
    first, second = rep.warmups
    assert first.end_ns == second.start_ns and second.line == gap_line
    assert rep.book_warmup_end_ns == second.end_ns  # the book is trusted once the resync's warm-up ends
    # the diffs buffered after the gap were not lost: after the warm-up the book is the synchronised one
    grid = BookGrid.around(sync_ev)
    times = np.linspace(second.end_ns, int(sync_ev["exch_ts"].max()), 10).astype(np.int64)
    assert _books_at(ev, grid, times) == _books_at(sync_ev, grid, times)
    n_depth = sum(len(json.loads(ln.split(" ", 1)[1])["data"]["b"]) + len(json.loads(ln.split(" ", 1)[1])["data"]["a"])
                  for ln in lines if "@depth" in ln)  # fmt: skip
    assert int(np.sum(kinds(ev) == DEPTH_EVENT)) == n_depth  # every diff's levels are in the events


def test_snapshot_older_than_the_diffs_kept_is_left_out(tmp_path, futures_pair):
    (sync_ev, _), _, _ = futures_pair
    lines = real_lines(FUTURES, N_FUTURES)
    snap = lines.pop(next(i for i, ln in enumerate(lines) if '"lastUpdateId"' in ln))
    at = 9_000  # ~35 s in: hundreds of diffs after the snapshot's lastUpdateId
    lines.insert(at, lines[at - 1].split(" ", 1)[0] + " " + snap.split(" ", 1)[1])
    ev, rep = load_events(write_gz(tmp_path / "stale-snap.gz", lines))
    assert rep.skipped["stale_snapshot"] == 1 and rep.bad_lines == 0 and rep.complete
    (w,) = rep.warmups
    assert w.duration_s >= BOOK_WARMUP_S  # ended by its own rule, not by the snapshot
    grid = BookGrid.around(sync_ev)
    times = np.linspace(w.end_ns, int(sync_ev["exch_ts"].max()), 10).astype(np.int64)
    assert _books_at(ev, grid, times) == _books_at(sync_ev, grid, times)
