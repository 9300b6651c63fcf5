"""Our Tardis reader against hftbacktest's own Tardis converter, on the same two CSV files.

The Binance USD-M recording's depth and trade rows are written as Tardis ``incremental_book_L2`` and ``trades``
CSV; ``hftbacktest.data.utils.tardis.convert`` and ``hyper_make.data.load_events`` read them. Compared:

* the exchange-side rows (hftbacktest's rows flagged ``EXCH_EVENT``; ours all are), as multisets of
  (kind and side flags, exch_ts, px, qty): the same depth, snapshot, clear (with its price) and trade rows;
* the local-side rows in order (kind and side, px, qty, local_ts): hftbacktest shifts ``local_ts`` by a constant
  when the recording's local clock is behind the exchange's (``correct_local_timestamp``), so ``local_ts`` is
  compared after removing that one constant;
* ``hyper_make.data.hbt_order.hftbacktest_order`` (``convert --hftbacktest-order``) against hftbacktest's
  ``correct_event_order`` on our rows: equal row for row, flags included.

Needs the ``bench`` extra (hftbacktest).

    python benchmarks/check_tardis_hbt.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    from hftbacktest.data.utils import tardis as hbt_tardis

    from hyper_make.data.events import EXCH_EVENT, LOCAL_EVENT
    from hyper_make.data.hbt_order import hftbacktest_order
    from hyper_make.data.readers import load_events

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
    from _convert import events_to_tardis

    src = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm-btcusdt-20240808.gz"
    if not src.exists():
        sys.exit(f"missing {src}: the check reads the shared recordings")
    flags = np.uint64(EXCH_EVENT | LOCAL_EVENT)
    with tempfile.TemporaryDirectory() as tmp:
        book, trades = Path(tmp) / "incremental_book_L2.csv.gz", Path(tmp) / "trades.csv.gz"
        events_to_tardis(load_events(src)[0], book, trades)
        theirs = hbt_tardis.convert([str(trades), str(book)])  # trades first, as its docstring asks
        ours, _ = load_events([book, trades])

    def exch_key(a: np.ndarray) -> np.ndarray:
        k = np.empty(a.size, dtype=[("ev", "u8"), ("exch_ts", "i8"), ("px", "f8"), ("qty", "f8")])
        k["ev"], k["exch_ts"], k["px"], k["qty"] = a["ev"] & ~flags, a["exch_ts"], a["px"], a["qty"]
        return np.sort(k)

    t_exch = theirs[(theirs["ev"] & np.uint64(EXCH_EVENT)) != 0]
    t_local = theirs[(theirs["ev"] & np.uint64(LOCAL_EVENT)) != 0]
    shift = np.unique(t_local["local_ts"] - ours["local_ts"]) if t_local.size == ours.size else np.array([])
    out = {
        "rows_ours": int(ours.size),
        "rows_hftbacktest": int(theirs.size),
        "exchange_rows_equal": bool(t_exch.size == ours.size and np.array_equal(exch_key(t_exch), exch_key(ours))),
        "local_rows_equal_in_order": bool(
            t_local.size == ours.size
            and np.array_equal(t_local["ev"] & ~flags, ours["ev"] & ~flags)
            and np.array_equal(t_local["px"], ours["px"])
            and np.array_equal(t_local["qty"], ours["qty"])
            and shift.size == 1
        ),
        "hftbacktest_local_shift_ns": int(shift[0]) if shift.size == 1 else None,
    }
    # hftbacktest_order (convert --hftbacktest-order) is its correct_event_order: the same output on our rows
    from hftbacktest.data.validation import correct_event_order
    from hftbacktest.types import event_dtype as hbt_dtype

    plain = ours.astype(hbt_dtype)
    plain["ev"] &= ~flags
    ref = correct_event_order(plain, np.argsort(plain["exch_ts"], kind="mergesort"),
                              np.argsort(plain["local_ts"], kind="mergesort"))  # fmt: skip
    mine = hftbacktest_order(ours)
    out["hftbacktest_order_rows"] = int(mine.size)
    out["hftbacktest_order_equal"] = bool(mine.size == ref.size and np.array_equal(mine, ref.astype(mine.dtype)))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    if not (out["exchange_rows_equal"] and out["local_rows_equal_in_order"] and out["hftbacktest_order_equal"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
