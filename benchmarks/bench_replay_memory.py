"""Peak memory and throughput of the replay as the data grows: a real recording repeated end to end.

Run: ``python benchmarks/bench_replay_memory.py [FILE] [--copies 1,4,16] [--old-src DIR] [--json]`` (a few minutes).
FILE defaults to ``../shared/data/binance-usdm-btcusdt-20240808.gz`` (the largest shared recording, 344 s).

* **Long files.** FILE is written ``copies`` times end to end into one Binance recording (a temporary gzip): every
  copy after the first is shifted in time by the span of FILE (local ns, ``E``/``T`` ms) and in update ids (``U``,
  ``u``, ``pu``, the ``bookTicker`` ``u``) so that the depth chain continues, and has no snapshot line; trade ids are
  shifted too. The price jumps back at each seam (the copy starts where FILE started); it is real content, not a
  real day.
* **Peak RSS** of ``hyper-make backtest LONG -a flat --refresh-s 0.1 --json`` per size, in a fresh process
  (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper that runs only it), against the file's size and
  event count. With ``--old-src DIR`` (a checkout of an older hyper_make, e.g. ``git archive <commit> src | tar -x
  -C DIR``) the same command runs with that code beside it: the whole-array replay before the chunked one.
* **Throughput** (events/s, wall time of one run, numba warmed up) at 100 ms refresh on the largest LONG: reading
  alone (:class:`~hyper_make.data.readers.EventReader`), the fixed grid of ``bench_replay.py`` (20 levels a side at
  2-200 bps, 0.002 BTC, feed latency: the data is read twice, once for the receive clock's shift) streamed from
  the file and on the events already in memory (the engine alone); the same from the file converted once to an
  ``.npz`` (streamed too; also with constant latency: one read), and the full pipeline (``run_backtest`` with the
  ``flat`` allocator: the refresh core in Python every refresh), with its share of time in the refresh core. A
  day of BTCUSDT futures is about 150 M events (251 times FILE's 598,755 in 344 s): the day estimates are that
  count over each rate.

Prints a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

from _machine import machine

EVENTS_PER_DAY = 150e6  # BTCUSDT USD-M futures, depth@0ms + bookTicker + trades (the figure; 251 x FILE)
N_LEVELS = 20
LEVEL_QTY = 0.002
LOT = 0.001
TICK = 0.1


def make_long(src: Path, copies: int, out: Path) -> int:
    """Write ``copies`` of the Binance recording ``src`` end to end into ``out`` (gzip); returns the line count."""
    lines = gzip.decompress(src.read_bytes()).splitlines()
    parsed = []
    first_pu = last_u = None
    t_first = t_last = None
    for raw in lines:
        ts, _, js = raw.partition(b" ")
        msg = orjson.loads(js)
        local = int(ts)
        t_first = local if t_first is None else t_first
        t_last = local
        d = msg.get("data", {})
        if "pu" in d:
            first_pu = int(d["pu"]) if first_pu is None else first_pu
            last_u = int(d["u"])
        parsed.append((local, msg))
    assert first_pu is not None and last_u is not None and t_first is not None and t_last is not None
    span_ms = (t_last - t_first) // 1_000_000 + 1
    id_shift = last_u - first_pu
    tid_shift = 10**9
    n = 0
    with gzip.open(out, "wb", compresslevel=1) as fh:
        for j in range(copies):
            buf = []
            for local, msg in parsed:
                if j and "lastUpdateId" in msg:
                    continue  # one snapshot, at the start
                if j:
                    msg = json.loads(json.dumps(msg))  # a copy to shift
                    d = msg.get("data", {})
                    for k in ("E", "T"):
                        if k in d:
                            d[k] = int(d[k]) + j * span_ms
                    for k in ("U", "u", "pu"):
                        if k in d:
                            d[k] = int(d[k]) + j * id_shift
                    if "t" in d:
                        d["t"] = int(d["t"]) + j * tid_shift
                buf.append(b"%d %s" % (local + j * span_ms * 1_000_000, orjson.dumps(msg)))
            fh.write(b"\n".join(buf) + b"\n")
            n += len(buf)
    return n


def peak_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall s, peak RSS MB) of ``cmd`` run alone in a fresh wrapper process."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "w = time.perf_counter() - t; "
        "print(r.returncode, w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, env=env, check=True)
    code, wall, kb = out.stdout.split()
    if int(code) not in (0, 2):  # 2: a data warning exit would still be a full run; anything else is a failure
        raise RuntimeError(f"{' '.join(cmd)} exited {code}")
    return float(wall), int(kb) / 1024


def _backtest_cmd(path: Path, out: Path) -> list[str]:
    run_cli = "import sys; from hyper_make.cli import main; sys.argv[0] = 'hyper-make'; main()"
    return [sys.executable, "-c", run_cli, "backtest", str(path), "-a", "flat", "--refresh-s", "0.1", "--out",
            str(out), "--json"]  # fmt: skip


def throughput(path: Path) -> dict[str, float]:
    """Events/s of reading, the fixed grid (streamed and in memory) and the full pipeline on ``path``."""
    from hyper_make.allocate import make_allocator
    from hyper_make.backtest import ReplayConfig, replay_fixed_grid, run_backtest
    from hyper_make.backtest._feed import EventFeed
    from hyper_make.backtest.replay import source_chunks
    from hyper_make.config import AppConfig
    from hyper_make.data.readers import EventReader, save_npz
    from hyper_make.ladder import LadderConfig
    from hyper_make.levels import GridConfig

    depths = np.geomspace(2.0, 200.0, N_LEVELS)
    cfg = ReplayConfig(refresh_s=0.1, latency_ms=50.0, queue="risk_averse", warmup_s=0.0, latency="feed")
    head = np.concatenate(list(EventReader(path, chunk_rows=50_000))[:3])
    replay_fixed_grid(head, depths, LEVEL_QTY, config=cfg, lot_coins=LOT)  # numba warm-up
    out: dict[str, float] = {}
    t = time.perf_counter()
    rows = sum(c.size for c in EventReader(path))
    out["read_s"] = time.perf_counter() - t
    out["events"] = float(rows)
    out["read_events_per_s"] = rows / out["read_s"]
    from hyper_make.backtest._feed import clock_shift_ns

    t = time.perf_counter()
    shift = clock_shift_ns(source_chunks([path]))
    feed = EventFeed(source_chunks([path]), clock_shift=shift)
    fills, _ = replay_fixed_grid(feed, depths, LEVEL_QTY, config=cfg, lot_coins=LOT)
    out["grid_streamed_s"] = time.perf_counter() - t
    out["grid_streamed_events_per_s"] = rows / out["grid_streamed_s"]
    out["grid_fills"] = float(len(fills))
    events = np.concatenate(list(EventReader(path)))
    t = time.perf_counter()
    replay_fixed_grid(events, depths, LEVEL_QTY, config=cfg, lot_coins=LOT)
    out["grid_in_memory_s"] = time.perf_counter() - t
    out["grid_in_memory_events_per_s"] = rows / out["grid_in_memory_s"]
    npz = save_npz(path.with_suffix(".npz"), events)  # `hyper-make convert`: parsed once
    del events
    t = time.perf_counter()
    sum(c.size for c in EventReader(npz))
    out["npz_read_s"] = time.perf_counter() - t
    out["npz_read_events_per_s"] = rows / out["npz_read_s"]
    t = time.perf_counter()
    feed = EventFeed(source_chunks([npz]), clock_shift=clock_shift_ns(source_chunks([npz])))
    replay_fixed_grid(feed, depths, LEVEL_QTY, config=cfg, lot_coins=LOT)
    out["grid_npz_s"] = time.perf_counter() - t
    out["grid_npz_events_per_s"] = rows / out["grid_npz_s"]
    const = ReplayConfig(refresh_s=0.1, latency_ms=50.0, queue="risk_averse", warmup_s=0.0)
    t = time.perf_counter()
    replay_fixed_grid(EventFeed(source_chunks([npz])), depths, LEVEL_QTY, config=const, lot_coins=LOT)
    out["grid_npz_constant_latency_s"] = time.perf_counter() - t
    out["grid_npz_constant_latency_events_per_s"] = rows / out["grid_npz_constant_latency_s"]
    app = AppConfig(ladder=LadderConfig(grid=GridConfig(n_levels=N_LEVELS), level_cap_frac=1.0))
    full_cfg = ReplayConfig(refresh_s=0.1, latency_ms=50.0, queue="risk_averse", warmup_s=1.0)
    t = time.perf_counter()
    res, _ = run_backtest(path, {"flat": make_allocator("flat")}, app=app, config=full_cfg)
    out["full_s"] = time.perf_counter() - t
    out["full_events_per_s"] = rows / out["full_s"]
    out["full_refresh_core_share"] = res["flat"].diagnostics["strategy_s"] / out["full_s"]
    out["full_refreshes"] = res["flat"].diagnostics["refreshes"]
    out["full_fills"] = res["flat"].diagnostics["fills"]
    for k in ("read", "grid_streamed", "grid_in_memory", "npz_read", "grid_npz", "grid_npz_constant_latency", "full"):
        out[f"{k}_day_estimate_s"] = EVENTS_PER_DAY / out[f"{k}_events_per_s"]
    return out


def main() -> None:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm-btcusdt-20240808.gz"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=default)
    ap.add_argument("--copies", default="1,4,16", help="comma-separated sizes, in copies of FILE")
    ap.add_argument("--old-src", type=Path, default=None, help="an older hyper_make checkout to compare against")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()
    copies = [int(c) for c in args.copies.split(",")]
    doc: dict[str, object] = {"machine": machine(), "file": args.file.name, "sizes": []}
    say = (lambda *a: None) if args.json else print
    say(f"machine: {doc['machine']}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        longest = None
        for c in copies:
            path = d / f"long{c}.gz"
            lines = make_long(args.file, c, path)
            from hyper_make.data.readers import EventReader

            events = sum(x.size for x in EventReader(path))
            row: dict[str, object] = {"copies": c, "lines": lines, "events": events,
                                      "file_mb": path.stat().st_size / 2**20}  # fmt: skip
            wall, rss = peak_rss(_backtest_cmd(path, d / f"bt{c}"))
            row |= {"chunked_wall_s": wall, "chunked_peak_rss_mb": rss}
            if args.old_src is not None:
                env = dict(os.environ, PYTHONPATH=str(args.old_src / "src"))
                wall, rss = peak_rss(_backtest_cmd(path, d / f"old{c}"), env=env)
                row |= {"whole_array_wall_s": wall, "whole_array_peak_rss_mb": rss}
            doc["sizes"].append(row)  # type: ignore[attr-defined]
            say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            longest = path
        assert longest is not None
        from hyper_make.data.readers import load_events, save_npz

        npz = save_npz(d / "longest.npz", load_events(longest)[0])
        row = {"copies": copies[-1], "npz_mb": npz.stat().st_size / 2**20}
        wall, rss = peak_rss(_backtest_cmd(npz, d / "bt_npz"))
        row |= {"chunked_wall_s": wall, "chunked_peak_rss_mb": rss}
        if args.old_src is not None:
            env = dict(os.environ, PYTHONPATH=str(args.old_src / "src"))
            wall, rss = peak_rss(_backtest_cmd(npz, d / "old_npz"), env=env)
            row |= {"whole_array_wall_s": wall, "whole_array_peak_rss_mb": rss}
        doc["npz"] = row
        say(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        npz.unlink()
        tp = throughput(longest)
        doc["throughput_100ms"] = tp | {"file_copies": copies[-1]}
        for k, v in tp.items():
            say(f"{k}: {v:,.4g}")
    if args.json:
        print(json.dumps(doc))


if __name__ == "__main__":
    main()
