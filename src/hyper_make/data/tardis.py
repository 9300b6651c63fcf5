"""Tardis.dev CSV datasets -> ``event_dtype`` chunks: ``incremental_book_L2`` and ``trades``, gzip or plain.

Columns (Tardis "downloadable CSV files"; timestamps in µs since the epoch, UTC):

* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``;
  ``side`` is ``bid`` or ``ask``, ``amount`` the new total size at ``price`` (coins; ``0`` removes the level).
  A run of ``is_snapshot=true`` rows (one message: same ``local_timestamp``) is a full book: the book is reset
  and rebuilt from it. Rows before the file's first snapshot are skipped, as Tardis documents (buffered updates
  from before the exchange sent its snapshot); they are counted in ``message_counts["depth_before_snapshot"]``.
* ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; ``side`` is the aggressor
  (``buy``: a buyer lifted the ask, ``sell``: a seller hit the bid, ``unknown``: not given; such trades are
  dropped and counted in ``message_counts["trade_unknown_side"]``, since a fill needs the side).

Events (as hftbacktest's ``hftbacktest.data.utils.tardis.convert``): ``exch_ts = timestamp·1000``,
``local_ts = local_timestamp·1000`` (ns); a diff is ``DEPTH_EVENT``; a snapshot is, per side that has levels,
one ``DEPTH_CLEAR_EVENT`` (time of the side's first snapshot row, ``px`` = its last, deepest, level's price)
then that side's ``DEPTH_SNAPSHOT_EVENT`` rows, bids first; a trade is ``TRADE_EVENT`` with the aggressor's
side flag and ``order_id`` = the trade id when it is an integer (else 0). Every row is flagged
``EXCH_EVENT | LOCAL_EVENT`` like our other readers.

Parsing is vectorised: polars reads each batch of lines (about 8 MB of text) into typed columns and NumPy
builds the events; only a batch that polars cannot parse is re-read line by line to name the bad line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ._stream import Truncated, first_line, line_batches
from .events import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
)

if TYPE_CHECKING:
    from .readers import EventReader

BOOK_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
#: Format name -> its header.
FORMATS = {"tardis-book": BOOK_COLUMNS, "tardis-trades": TRADE_COLUMNS}
#: The warning of a book file read without trades (the merged reader drops it when a trades file comes along).
NO_TRADES = "no trades"

#: Decompressed bytes of CSV text parsed at a time (about 100,000 rows).
BATCH_BYTES = 8 << 20

_BOTH = EXCH_EVENT | LOCAL_EVENT
_US = 1000  # ns per µs
_TYPES = {
    "exchange": pl.String, "symbol": pl.String, "timestamp": pl.Int64, "local_timestamp": pl.Int64,
    "is_snapshot": pl.String, "id": pl.String, "side": pl.String, "price": pl.Float64, "amount": pl.Float64,
}  # fmt: skip
_SIDES = {"tardis-book": ("bid", "ask"), "tardis-trades": ("buy", "sell", "unknown")}


def sniff(path: Path) -> str | None:
    """``"tardis-book"`` or ``"tardis-trades"`` if the file's first line is that dataset's header, else ``None``."""
    head = first_line(path).decode("utf-8", "replace").strip().lstrip("\ufeff")
    cols = tuple(c.strip() for c in head.split(","))
    for fmt, want in FORMATS.items():
        if cols == want:
            return fmt
    return None


class _Cols:
    """Typed columns of parsed rows with their 1-based line numbers (NumPy arrays of one length)."""

    __slots__ = ("amount", "exch", "line", "local", "price", "side", "snap", "tid")

    def __init__(self, **kw: np.ndarray) -> None:
        for k in self.__slots__:
            setattr(self, k, kw[k])

    def take(self, idx: np.ndarray | slice) -> _Cols:
        return _Cols(**{k: getattr(self, k)[idx] for k in self.__slots__})

    @staticmethod
    def concat(parts: list[_Cols]) -> _Cols:
        return _Cols(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in _Cols.__slots__})

    def __len__(self) -> int:
        return int(self.line.size)


def _check_line(text: str, columns: tuple[str, ...]) -> str | None:
    """Why one CSV line is bad (slow path, used only to name a line polars rejected), or ``None``."""
    fields = text.split(",")
    if len(fields) != len(columns):
        return f"malformed CSV row: {len(fields)} fields, expected {len(columns)} ({','.join(columns)})"
    row = dict(zip(columns, fields, strict=True))
    for name in ("timestamp", "local_timestamp"):
        try:
            int(row[name])
        except ValueError:
            return f"malformed CSV row: {name} {row[name]!r} is not an integer (µs since the epoch)"
    for name in ("price", "amount"):
        try:
            float(row[name])
        except ValueError:
            return f"malformed CSV row: {name} {row[name]!r} is not a number"
    return None


class TardisParser:
    """Streams one Tardis CSV file (``reader.fmt`` names which) through ``reader``'s error handling."""

    def __init__(self, reader: EventReader) -> None:
        self.r = reader
        self.fmt = reader.fmt
        self.columns = FORMATS[self.fmt]
        self.sides = _SIDES[self.fmt]
        self.book = self.fmt == "tardis-book"
        self.schema = {c: _TYPES[c] for c in self.columns}
        self.prev_local = -(1 << 62)  # µs of the last kept row
        self.held: _Cols | None = None  # an open snapshot block carried to the next batch
        self.seen_snapshot = False

    # ---- parsing one batch ------------------------------------------------------------------------------
    def _parse(self, first: int, text: bytes) -> tuple[_Cols, list[tuple[int, str, str]], int]:
        """Rows of ``text``, its bad lines ``(line, kind, message)`` (header and blank lines dropped), and the
        number of its last line."""
        problems: list[tuple[int, str, str]] = []
        lines_idx: np.ndarray | None = None
        last = first - 1
        if first == 1:  # the header (checked by the detection; a wrong one fails here)
            nl = text.find(b"\n")
            head = text[: nl if nl >= 0 else len(text)].decode("utf-8", "replace").strip().lstrip("\ufeff")
            if tuple(c.strip() for c in head.split(",")) != self.columns:
                problems.append((1, "malformed", f"header {head[:120]!r} is not {','.join(self.columns)}"))
            text = text[nl + 1 :] if nl >= 0 else b""
            first = 2
            last = 1
        try:
            df = pl.read_csv(io.BytesIO(text), has_header=False, new_columns=list(self.columns),
                             schema=self.schema, quote_char=None)  # fmt: skip
        except Exception:  # polars names a byte offset, not a line: find the bad lines one by one
            keep: list[bytes] = []
            idx: list[int] = []
            split = text.split(b"\n")
            last = first - 1 + len(split) - (1 if text.endswith(b"\n") else 0)
            for i, raw in enumerate(split):
                s = raw.decode("utf-8", "replace").rstrip("\r")
                if not s.strip():
                    continue
                why = _check_line(s, self.columns)
                if why is None:
                    keep.append(raw)
                    idx.append(first + i)
                else:
                    problems.append((first + i, "malformed", why))
            try:
                df = (pl.read_csv(io.BytesIO(b"\n".join(keep) + b"\n"), has_header=False,
                                  new_columns=list(self.columns), schema=self.schema, quote_char=None)
                      if keep else pl.DataFrame(schema=self.schema))  # fmt: skip
            except Exception as exc:  # a line Python accepts but polars does not: name the batch
                problems.append((first, "malformed", f"malformed CSV in the lines from here on ({exc})"))
                df = pl.DataFrame(schema=self.schema)
                idx = []
            lines_idx = np.asarray(idx, dtype=np.int64)
        if lines_idx is None:
            lines_idx = np.arange(first, first + df.height, dtype=np.int64)
            last = first + df.height - 1
        n = df.height
        nulls = np.zeros(n, dtype=bool)
        null_col = np.full(n, -1, dtype=np.int64)
        for j, c in enumerate(self.columns):
            s = df.get_column(c)
            if s.null_count():
                m = s.is_null().to_numpy()
                null_col[m & ~nulls] = j
                nulls |= m
        if nulls.any():
            all_null = np.asarray(df.select(pl.all_horizontal(pl.all().is_null())).to_series().to_numpy())
            blank = all_null
            for k in np.flatnonzero(nulls & ~all_null):
                problems.append((int(lines_idx[k]), "malformed",
                                 f"malformed CSV row: missing or empty field {self.columns[null_col[k]]!r} "
                                 f"(a row has {len(self.columns)} fields: {','.join(self.columns)})"))  # fmt: skip
        else:
            blank = np.zeros(n, dtype=bool)
        side = df.get_column("side")
        side_code = np.full(n, -1, dtype=np.int8)
        for code, name in enumerate(self.sides):
            side_code[(side == name).fill_null(False).to_numpy()] = code
        price = df.get_column("price").to_numpy()
        amount = df.get_column("amount").to_numpy()
        exch = df.get_column("timestamp").to_numpy()
        local = df.get_column("local_timestamp").to_numpy()
        if self.book:
            sn = df.get_column("is_snapshot")
            snap = (sn == "true").fill_null(False).to_numpy()
            snap_ok = snap | (sn == "false").fill_null(False).to_numpy()
            tid = np.zeros(n, dtype=np.uint64)
        else:
            snap = np.zeros(n, dtype=bool)
            snap_ok = np.ones(n, dtype=bool)
            tid = df.get_column("id").cast(pl.UInt64, strict=False).fill_null(0).to_numpy()
        bad = nulls.copy()
        checks = [
            (side_code < 0, lambda k: f"side {side[int(k)]!r} is not one of {list(self.sides)}"),
            (~snap_ok, lambda k: f"is_snapshot {df.get_column('is_snapshot')[int(k)]!r} is not true or false"),
            (~(np.isfinite(price) & (price > 0)), lambda k: f"price {float(price[k])!r} is not > 0 (USD)"),
            (~(np.isfinite(amount) & (amount >= 0)), lambda k: f"amount {float(amount[k])!r} is not >= 0 (coins)"),
            ((exch < 0) | (local < 0), lambda k: f"timestamp {exch[k]} / {local[k]} is negative (µs since the epoch)"),
        ]
        for mask, why in checks:
            m = mask & ~bad
            for k in np.flatnonzero(m):
                problems.append((int(lines_idx[k]), "malformed", f"malformed CSV row: {why(k)}"))
            bad |= m
        keep_rows = ~(bad | blank)
        cols = _Cols(
            exch=exch[keep_rows], local=local[keep_rows], price=price[keep_rows], amount=amount[keep_rows],
            side=side_code[keep_rows], snap=snap[keep_rows], tid=tid[keep_rows], line=lines_idx[keep_rows],
        )  # fmt: skip
        problems.sort()
        return cols, problems, last

    def _backwards(self, cols: _Cols) -> tuple[np.ndarray, np.ndarray]:
        """Indices of rows whose ``local_timestamp`` is before an earlier row's, and that earlier maximum (µs)."""
        if len(cols) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        run = np.maximum.accumulate(np.concatenate([[self.prev_local], cols.local]))[:-1]
        idx = np.flatnonzero(cols.local < run)
        return idx, run[idx]

    # ---- the stream -------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        r = self.r
        stop = r.on_error == "stop"
        try:
            for first, text in line_batches(r.path, BATCH_BYTES):
                cols, problems, r.report.lines = self._parse(first, text)
                back, before = self._backwards(cols)
                for k, prev in zip(back.tolist(), before.tolist(), strict=True):
                    problems.append((int(cols.line[k]), "backwards",
                                     f"timestamp goes backwards: local_timestamp {int(cols.local[k])} µs after "
                                     f"{prev} µs"))  # fmt: skip
                problems.sort()
                if problems and stop:
                    line, kind, msg = problems[0]
                    cut = int(np.searchsorted(cols.line, line))
                    yield from self._emit(cols.take(slice(0, cut)), final=False)
                    r._fail(line, _problem(kind, msg + self._open_block_note()))
                    return
                if problems:
                    for line, kind, msg in problems:
                        r._fail(line, _problem(kind, msg))
                    if back.size:
                        cols = cols.take(np.setdiff1d(np.arange(len(cols)), back))
                if len(cols):
                    self.prev_local = max(self.prev_local, int(cols.local.max()))
                yield from self._emit(cols, final=False)
        except Truncated as exc:
            note = self._open_block_note()
            self.held = None
            r._fail(exc.line, _problem("truncated", str(exc) + note))
            self._finish()
            return
        yield from self._emit(None, final=True)
        self._finish()

    def _finish(self) -> None:
        rep = self.r.report
        if self.book and not rep.message_counts.get("trade"):
            rep.warnings.append(
                f"{NO_TRADES} in {self.r.path} (an incremental_book_L2 file): the replay makes no trade-driven "
                "fills and the calibration cannot fit fill intensity; give its trades file with it"
            )

    def _open_block_note(self) -> str:
        if self.held is not None and len(self.held):
            return (f"; the snapshot block begun at line {int(self.held.line[0])} is incomplete and was not "
                    "applied")  # fmt: skip
        return ""

    def _emit(self, cols: _Cols | None, *, final: bool) -> Iterator[np.ndarray]:
        """Events of ``cols`` (after any held snapshot rows); holds back a snapshot block open at the end."""
        if self.held is not None and len(self.held):
            cols = self.held if cols is None else _Cols.concat([self.held, cols])
        self.held = None
        if cols is None or len(cols) == 0:
            return
        if self.book:
            if not final and cols.snap[-1]:
                # the last block may go on in the next batch: hold it back
                s = len(cols) - 1
                while s > 0 and cols.snap[s - 1] and cols.local[s - 1] == cols.local[-1]:
                    s -= 1
                self.held = cols.take(slice(s, None))
                cols = cols.take(slice(0, s))
                if len(cols) == 0:
                    return
            events = self._book_events(cols)
        else:
            events = self._trade_events(cols)
        rep = self.r.report
        step = self.r.chunk_rows
        for i in range(0, events.size, step):
            part = events[i : i + step]
            rep.events += part.size
            yield part

    def _trade_events(self, c: _Cols) -> np.ndarray:
        rep = self.r.report
        known = c.side < 2
        if not known.all():
            rep.message_counts["trade_unknown_side"] += int((~known).sum())
            c = c.take(known)
        rep.message_counts["trade"] += len(c)
        out = np.zeros(len(c), dtype=event_dtype)
        out["ev"] = np.where(c.side == 0, TRADE_EVENT | BUY_EVENT | _BOTH, TRADE_EVENT | SELL_EVENT | _BOTH)
        out["exch_ts"] = c.exch * _US
        out["local_ts"] = c.local * _US
        out["px"] = c.price
        out["qty"] = c.amount
        out["order_id"] = c.tid
        return out

    def _book_events(self, c: _Cols) -> np.ndarray:
        rep = self.r.report
        if not self.seen_snapshot:
            first_snap = np.flatnonzero(c.snap)
            k = int(first_snap[0]) if first_snap.size else len(c)
            if k:
                rep.message_counts["depth_before_snapshot"] += k
                c = c.take(slice(k, None))
            if len(c) == 0:
                return np.zeros(0, dtype=event_dtype)
            self.seen_snapshot = True
        n = len(c)
        bid = c.side == 0
        side_flag = np.where(bid, BUY_EVENT, SELL_EVENT).astype(np.uint64)
        kind = np.where(c.snap, DEPTH_SNAPSHOT_EVENT, DEPTH_EVENT).astype(np.uint64)
        rows = np.zeros(n, dtype=event_dtype)
        rows["ev"] = kind | side_flag | np.uint64(_BOTH)
        rows["exch_ts"] = c.exch * _US
        rows["local_ts"] = c.local * _US
        rows["px"] = c.price
        rows["qty"] = c.amount
        n_snap = int(c.snap.sum())
        rep.message_counts["depth"] += n - n_snap
        if n_snap == 0:
            return rows
        # snapshot blocks: runs of snapshot rows of one local_timestamp
        prev_snap = np.concatenate([[False], c.snap[:-1]])
        prev_local = np.concatenate([[c.local[0] - 1], c.local[:-1]])
        start = c.snap & (~prev_snap | (c.local != prev_local))
        block = np.cumsum(start) - 1  # block number of each snapshot row (garbage on diff rows)
        starts = np.flatnonzero(start)
        rep.message_counts["snapshot"] += int(starts.size)
        rep.message_counts["snapshot_levels"] += n_snap
        # sort key: (position, part); a snapshot row takes its block's start as position; parts: 0 clear bid,
        # 1 bid levels, 2 clear ask, 3 ask levels; diffs part 0. Stable, so file order within a part is kept.
        pos = np.arange(n, dtype=np.int64)
        pos[c.snap] = starts[block[c.snap]]
        part = np.zeros(n, dtype=np.int8)
        part[c.snap] = np.where(bid[c.snap], 1, 3)
        # one clear row per (block, side) that has levels
        snap_idx = np.flatnonzero(c.snap)
        clears = []
        for side_is_bid, flag, p in ((True, BUY_EVENT, 0), (False, SELL_EVENT, 2)):
            sel = snap_idx[bid[snap_idx] == side_is_bid]
            if sel.size == 0:
                continue
            b = block[sel]
            firsts = sel[np.r_[True, b[1:] != b[:-1]]]
            lasts = sel[np.r_[b[1:] != b[:-1], True]]
            cl = np.zeros(firsts.size, dtype=event_dtype)
            cl["ev"] = DEPTH_CLEAR_EVENT | flag | _BOTH
            cl["exch_ts"] = rows["exch_ts"][firsts]
            cl["local_ts"] = rows["local_ts"][firsts]
            cl["px"] = rows["px"][lasts]
            clears.append((cl, pos[firsts], np.full(firsts.size, p, dtype=np.int8)))
        allrows = np.concatenate([rows] + [x[0] for x in clears])
        allpos = np.concatenate([pos] + [x[1] for x in clears])
        allpart = np.concatenate([part] + [x[2] for x in clears])
        order = np.lexsort((allpart, allpos))
        return allrows[order]


def _problem(kind: str, message: str) -> Exception:
    from .readers import _Problem

    return _Problem(kind, message)


__all__ = ["BOOK_COLUMNS", "FORMATS", "TRADE_COLUMNS", "TardisParser", "sniff"]
