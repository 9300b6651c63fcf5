"""Reading speed (rows/s) of the Tardis CSV readers and, for reference, the Binance JSON and Hyperliquid archive
readers, on one core (polars limited to one thread), on the shared recordings' real content.

The Tardis files are the Binance USD-M recording's depth and trade rows written as ``incremental_book_L2`` and
``trades`` CSV (gzip), repeated ``--repeat`` times with shifted timestamps (a longer file of the same content).
Rows: CSV data rows read (Tardis), lines (Binance, archive); events: ``event_dtype`` rows produced.

    python benchmarks/bench_readers.py [--repeat 4] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=4, help="copies of the recording's rows in the Tardis files")
    ap.add_argument("--threads", type=int, default=1, help="polars threads (1: one core)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # before polars is imported

    import numpy as np

    from _machine import machine

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from _convert import events_to_tardis, hyperliquid_to_archive

    from hyper_make.data.readers import EventReader, load_events

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    src = shared / "binance-usdm-btcusdt-20240808.gz"
    hl = shared / "hyperliquid-btc-20250126.gz"
    if not src.exists():
        sys.exit(f"missing {src}: the benchmark reads the shared recordings")

    def timed(paths: list[Path]) -> tuple[float, int, int]:
        t0 = time.perf_counter()
        events, rep = load_events(paths if len(paths) > 1 else paths[0])
        return time.perf_counter() - t0, rep.lines, events.size

    out: dict[str, object] = {"machine": machine(), "polars_threads": args.threads, "repeat": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ev, _ = load_events(src)
        span = int(ev["local_ts"].max() - ev["local_ts"].min()) + 1_000_000_000
        copies = []
        for r in range(args.repeat):
            c = ev.copy()
            c["exch_ts"] += r * span
            c["local_ts"] += r * span
            copies.append(c)
        book = d / "book.csv.gz"
        trade = d / "trades.csv.gz"
        events_to_tardis(np.concatenate(copies), book, trade)
        plain = d / "book.csv"
        plain.write_bytes(gzip.decompress(book.read_bytes()))
        timed([book])  # warm-up (imports, numba caches)
        cases = {
            "tardis_book_gzip": [book],
            "tardis_book_plain": [plain],
            "tardis_trades_gzip": [trade],
            "tardis_book_plus_trades_gzip": [book, trade],
            "binance_futures_json_gzip": [src],
        }
        if hl.exists():
            arch = d / "BTC.lz4"
            hyperliquid_to_archive(hl, arch)
            cases["hyperliquid_archive_lz4"] = [arch]
        results = {}
        for name, paths in cases.items():
            best = min((timed(paths) for _ in range(3)), key=lambda x: x[0])
            s, rows, events = best
            rows -= sum(1 for p in paths if EventReader(p).fmt.startswith("tardis"))  # header lines
            results[name] = {"seconds": round(s, 4), "rows": rows, "events": events,
                             "rows_per_s": round(rows / s), "events_per_s": round(events / s)}  # fmt: skip
        out["results"] = results
    if args.json:
        print(json.dumps(out, default=float))
        return
    m = out["machine"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs; polars threads {args.threads}; date {m['date_utc']} UTC")  # type: ignore[index]
    for name, r in results.items():
        print(f"{name:32s} {r['rows']:>10,} rows {r['seconds']:8.3f} s  {r['rows_per_s'] / 1e6:6.2f} M rows/s  "
              f"{r['events_per_s'] / 1e6:6.2f} M events/s")  # fmt: skip


if __name__ == "__main__":
    main()
