"""Streaming readers of recorded market feeds into :data:`~hyper_make.data.events.event_dtype` chunks.

Supported formats (:data:`SUPPORTED_FORMATS`), detected from the file's content, not its name:

* ``binance-futures``: gzip (or plain) text, ``<local ns> <websocket JSON>`` a line, streams
  ``<sym>@depth@*`` (diffs with ``U``/``u``/``pu``), ``<sym>@bookTicker``, ``<sym>@trade``, plus one REST
  snapshot line (``lastUpdateId``, ``bids``, ``asks``);
* ``binance-spot``: the same layout, diffs chained by ``U == previous u + 1`` (no ``pu``), and ``bookTicker``
  without timestamps (its exchange time is the local time minus the latest observed local-exchange offset);
* ``hyperliquid``: ``l2Book`` snapshots and ``trades`` messages;
* ``hftbacktest-npz``: hftbacktest's normalised ``.npz`` (one array of ``event_dtype``);
* ``tardis-book``, ``tardis-trades``: Tardis.dev ``incremental_book_L2`` and ``trades`` CSV
  (:mod:`hyper_make.data.tardis`);
* ``hyperliquid-archive``: Hyperliquid's historical ``l2Book`` archive, lz4 NDJSON (:mod:`hyper_make.data.hl_archive`).

Several files read as one time-ordered stream: :class:`~hyper_make.data.merge.MergedReader`, or
:func:`load_events` given a list of paths.

Binance books are synchronised as Binance documents: diffs received before the snapshot are buffered, diffs
with ``u`` below the snapshot's ``lastUpdateId`` are dropped as stale, the first kept diff must straddle it,
and every later diff must continue the chain (futures ``pu == previous u``; spot ``U == previous u + 1``).

**Without a snapshot** (many recorders take none): when no snapshot line comes within :data:`SNAPSHOT_WAIT_S`
seconds (local clock) of the first diff, the book is built from the diffs alone. A diff carries the absolute
quantity of each level it names, so a level is right once a diff has touched it; levels no diff has touched yet
are missing. The span until the book is trusted is a **warm-up** (:class:`BookWarmup` in
:attr:`ReadReport.warmups`): it ends at the first diff at least :data:`BOOK_WARMUP_S` seconds (exchange clock)
after the first one once diffs have set a level on both sides. On the shared USD-M recording the top 50 levels of
each side then equal the snapshot-synchronised book at every later diff (the last difference is 8.5 s in); on the
spot recording (``depth@100ms``, old orders resting deep) the touch agrees at 99.9 % of later diffs and the top 5
levels at 96.6 %: depth below the touch can lack levels that nobody has touched since the recording began. The
reader says so once in :attr:`ReadReport.warnings` (``"FILE: no REST snapshot ..."``). A snapshot line that comes
later still synchronises the book (the recent diffs it does not cover are applied after it) and ends the warm-up;
one older than every diff still kept (:data:`_RECENT_DIFFS`) would set the book back and is left out.

Binance **COIN-M** (inverse) contracts, detected by content (a ``dapi`` symbol such as ``btcusd_perp`` or
``ethusd_240927`` in the stream names, or a ``ps`` pair field): quantities are in contracts of a fixed USD value,
converted to coins as ``coins = contracts * contract_size_usd / price`` (:data:`COINM_CONTRACT_USD`: 100 USD for
BTC, 10 USD for every other coin, as Binance specifies); :attr:`ReadReport.contract_size_usd` says which.

Errors (a truncated gzip, a malformed line, an unknown message type, a local timestamp going backwards, a gap
in update ids) name the file and the 1-based line (``row`` for ``.npz``). With ``on_error="stop"`` (default) the
reader yields what it parsed before the bad line and then raises :class:`~hyper_make.errors.DataError`; with
``on_error="skip"`` it counts the problem in :attr:`ReadReport.skipped` and goes on (a truncated gzip ends the
file). A gap in update ids under ``"skip"`` **resynchronises**: both sides are cleared and the book is built again
from the diffs, from the diff after the gap on, with a warm-up as above (counted in :attr:`ReadReport.resyncs`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from ..errors import DataError, InvalidParameterError
from .events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
)

SUPPORTED_FORMATS = (
    "binance-futures", "binance-spot", "hyperliquid", "hftbacktest-npz", "tardis-book", "tardis-trades",
    "hyperliquid-archive",
)  # fmt: skip
OnError = Literal["stop", "skip"]

_BOTH = EXCH_EVENT | LOCAL_EVENT
_BID = BUY_EVENT
_ASK = SELL_EVENT
_BBO_BID = DEPTH_BBO_EVENT | _BID | _BOTH
_BBO_ASK = DEPTH_BBO_EVENT | _ASK | _BOTH
_MS = 1_000_000
#: Depth diffs buffered while waiting for the Binance snapshot line.
_MAX_PENDING = 100_000
#: Lines read to detect a text format.
_DETECT_LINES = 500
#: Skipped lines whose message the report keeps (the rest are only counted).
SKIPPED_EXAMPLES = 5
#: ``skipped`` kinds that are not bad lines (the Binance procedure drops diffs older than the snapshot).
_NOT_BAD = frozenset({"stale_depth", "stale_snapshot"})
#: Seconds (local clock) after the first Binance depth diff within which a REST snapshot line is waited for;
#: past it the book is built from the diffs (recorders that take a snapshot do so as they subscribe: the shared
#: recordings have it 0.3 s in).
SNAPSHOT_WAIT_S = 5.0
#: Minimum length (s, exchange clock) of the warm-up of a book built from diffs (see the module docstring).
BOOK_WARMUP_S = 10.0
#: USD value of one Binance COIN-M contract by base coin; any other coin: :data:`COINM_DEFAULT_CONTRACT_USD`.
COINM_CONTRACT_USD = {"BTC": 100.0}
COINM_DEFAULT_CONTRACT_USD = 10.0
#: Diffs kept after being applied to a book built from diffs, replayed after a snapshot line that comes late
#: (a REST snapshot answers within a second or so: 200 diffs are 10 s of ``depth@0ms``, 20 s of ``@100ms``).
_RECENT_DIFFS = 200


@dataclass(frozen=True, slots=True)
class BookWarmup:
    """A span where the book was built from depth diffs without a snapshot (levels right only once touched).

    Attributes
    ----------
    line : the 1-based line of the diff that (re)started the book.
    start_ns : exchange time (UNIX ns) of that diff.
    end_ns : exchange time (UNIX ns) the warm-up ended (see :data:`BOOK_WARMUP_S`), or ``None`` if the data ended
        first (the whole rest of the file is warm-up).
    reason : ``"no_snapshot"`` (the file has no snapshot line in time) or ``"gap"`` (a resync after an update-id
        gap under ``on_error="skip"``).
    """

    line: int
    start_ns: int
    end_ns: int | None
    reason: str

    @property
    def duration_s(self) -> float | None:
        """Length of the warm-up (s), ``None`` if it never ended."""
        return None if self.end_ns is None else (self.end_ns - self.start_ns) / 1e9

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"line": self.line, "start_ns": self.start_ns, "end_ns": self.end_ns, "reason": self.reason,
                "duration_s": self.duration_s}  # fmt: skip


@dataclass(slots=True)
class ReadReport:
    """What a reader saw: counts per message type, skipped problems, update-id gaps, and the stopping error.

    Attributes
    ----------
    path : the file read.  fmt : its detected format.
    lines : lines (rows for ``.npz``) read.  events : event rows produced.
    message_counts : message type -> count (``bookTicker``, ``depth``, ``trade``, ``snapshot``, ``l2Book``, ...).
    skipped : problem kind -> count of lines skipped (``on_error="skip"``), plus ``stale_depth`` (diffs older
        than the snapshot, dropped by the Binance procedure) and ``stale_snapshot`` (a snapshot line older than
        the diffs a book built from diffs still keeps: applying it would set the book back).
    gaps : ``(line, expected, got)`` of every update-id gap seen.
    error : the message of the error that stopped the read (``on_error="stop"``), else ``None``.
    skipped_examples : the messages (``"FILE: line N: ..."``) of the first :data:`SKIPPED_EXAMPLES` skipped lines.
    warmups : the spans where the book was built from diffs (:class:`BookWarmup`), in file order.
    resyncs : update-id gaps after which the book was rebuilt from the diffs (``on_error="skip"``).
    warnings : one-line warnings about the data, each said once: what the data lacks that its user should know
        (e.g. no snapshot, or a book file without trades).
    contract_size_usd : USD value of one contract of a Binance COIN-M recording (its quantities were converted to
        coins), ``None`` for a recording quoted in coins.
    """

    path: str
    fmt: str
    lines: int = 0
    events: int = 0
    message_counts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    error: str | None = None
    skipped_examples: list[str] = field(default_factory=list)
    warmups: list[BookWarmup] = field(default_factory=list)
    resyncs: int = 0
    warnings: list[str] = field(default_factory=list)
    contract_size_usd: float | None = None

    @property
    def complete(self) -> bool:
        """True if the whole file was read without a stopping error."""
        return self.error is None

    @property
    def bad_lines(self) -> int:
        """Lines skipped as bad (``on_error="skip"``), not counting diffs the Binance procedure drops as stale."""
        return sum(n for kind, n in self.skipped.items() if kind not in _NOT_BAD)

    def skip_summary(self) -> str | None:
        """One line on what ``on_error="skip"`` skipped (counts by reason, the first lines), or ``None``."""
        n = self.bad_lines
        if n == 0:
            return None
        reasons = ", ".join(
            f"{kind} {c:,}" + (": the book resynchronised from the diffs" if kind == "gap" and self.resyncs else "")
            for kind, c in self.skipped.most_common()
            if kind not in _NOT_BAD
        )
        first = "; ".join(self.skipped_examples[:3])
        return f"skipped {n:,} bad line{'s' if n != 1 else ''} of {self.path} ({reasons}); first: {first}"

    def warmup_spans_ns(self, data_end_ns: int | None = None) -> list[tuple[int, int]]:
        """``(start, end)`` exchange times (UNIX ns) of every warm-up; one that never ended runs to
        ``data_end_ns`` (default: the largest int64)."""
        end = data_end_ns if data_end_ns is not None else (1 << 63) - 1
        return [(w.start_ns, w.end_ns if w.end_ns is not None else end) for w in self.warmups]

    @property
    def book_warmup_end_ns(self) -> int | None:
        """Exchange time (UNIX ns) the book is trusted from when it started without a snapshot: the end of the
        first warm-up if that one starts the book (``reason == "no_snapshot"``), else ``None``; a resync after a gap
        inside it carries it on to the resync's end. A warm-up that never ended gives the largest int64."""
        if not self.warmups or self.warmups[0].reason != "no_snapshot":
            return None
        end = self.warmups[0].end_ns
        for w in self.warmups[1:]:  # a gap before the warm-up ended starts the next one where it stopped
            if end is None or w.start_ns != end:
                break
            end = w.end_ns
        return end if end is not None else (1 << 63) - 1

    def warmup_summary(self) -> str | None:
        """One line on the book's warm-ups (no snapshot, resyncs after gaps), or ``None`` when there was none."""
        if not self.warmups:
            return None
        parts = []
        for w in self.warmups:
            what = "no snapshot" if w.reason == "no_snapshot" else "resync after a gap"
            span = f"{w.duration_s:.1f} s" if w.duration_s is not None else "until the end of the data"
            parts.append(f"{what} at line {w.line:,}: warm-up {span}")
        more = f" (+{len(parts) - 3} more)" if len(parts) > 3 else ""
        return f"book built from depth diffs in {self.path}: " + "; ".join(parts[:3]) + more

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "path": self.path,
            "format": self.fmt,
            "lines": self.lines,
            "events": self.events,
            "message_counts": dict(self.message_counts),
            "skipped": dict(self.skipped),
            "gaps": [list(g) for g in self.gaps],
            "error": self.error,
            "skipped_examples": list(self.skipped_examples),
            "skip_summary": self.skip_summary(),
            "warmups": [w.to_dict() for w in self.warmups],
            "resyncs": self.resyncs,
            "warnings": list(self.warnings),
            "warmup_summary": self.warmup_summary(),
            "contract_size_usd": self.contract_size_usd,
        }


class _Problem(Exception):
    """A bad line: ``kind`` (counted under that name when skipping) and a message without file and line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---- format detection ----------------------------------------------------------------------------------
def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> io.TextIOBase:
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


def _open_binary(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


#: Bytes read (decompressed) at a time: the lines of a block are split at once.
_BLOCK = 1 << 20


def _line_blocks(fh: io.BufferedIOBase) -> Iterator[list[bytes]]:
    """The lines of a binary file, a block at a time, without their ends (``\\n``, ``\\r\\n`` or ``\\r``, as text
    mode's universal newlines). A truncated or corrupt stream raises once every whole line before it is given."""
    rest = b""
    while True:
        block = fh.read1(_BLOCK)  # one read of the stream at most: what it decompressed is not lost to an error
        data = rest + block if rest else block
        if not block:  # the end: a last line without its end, a last "\r" ending a line
            lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n") if data else []
            if lines and not lines[-1]:
                lines.pop()
            if lines:
                yield lines
            return
        held = b""
        if b"\r" in data:
            if data.endswith(b"\r"):  # a "\r\n" may straddle two blocks: the next one decides
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        rest = lines.pop() + held  # a line not ended yet
        if lines:
            yield lines


def _text_line(raw: bytes) -> tuple[int, Any] | None:
    """``(local ns, message)`` of a line the fast path refused, parsed as text (UTF-8 with replacement, stripped
    of any Unicode white space) as the reader always did; ``None`` for a blank line."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    ts_text, _, js = text.partition(" ")
    try:
        return int(ts_text), orjson.loads(js)
    except ValueError:  # orjson.JSONDecodeError is one
        raise _Problem("malformed", "malformed line: expected '<local timestamp ns> <JSON object>'") from None


def _unknown(path: Path, why: str) -> DataError:
    return DataError(f"{path}: unknown data format ({why}); supported formats are {', '.join(SUPPORTED_FORMATS)}")


def detect_format(path: str | Path) -> str:
    """The format of a recorded file, one of :data:`SUPPORTED_FORMATS`.

    Raises
    ------
    DataError
        If the file is of none of the supported formats (the message lists them), or unreadable.
    FileNotFoundError
        If the file does not exist.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a recorded data file")
    if not p.is_file():
        raise FileNotFoundError(2, "No such file", str(p))
    if p.stat().st_size == 0:
        raise DataError(f"{p}: empty file (0 bytes)")
    if zipfile.is_zipfile(p):
        try:  # the array's header only: the file may hold a day of events
            with zipfile.ZipFile(p) as zf, _npz_member(zf) as (_fh, _shape, dtype):
                pass
        except Exception as exc:
            raise _unknown(p, f"zip archive that is not a NumPy .npz: {exc}") from None
        if dtype.names is None or set(dtype.names) != set(event_dtype.names or ()):
            raise _unknown(p, ".npz without an hftbacktest event array (fields ev, exch_ts, local_ts, px, qty, ...)")
        return "hftbacktest-npz"
    from . import hl_archive, tardis  # their own modules; detected by their header / NDJSON layout

    extra = tardis.sniff(p) or hl_archive.sniff(p)
    if extra:
        return extra
    try:
        fh = _open_text(p)
        binance_seen = False
        empty = True
        with fh:
            for i, line in enumerate(fh):
                empty = empty and not line.strip()
                if i >= _DETECT_LINES:
                    break
                _, _, js = line.strip().partition(" ")
                try:
                    msg = orjson.loads(js)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(msg, dict):
                    continue
                if "channel" in msg:
                    return "hyperliquid"
                data = msg.get("data")
                if "stream" in msg and isinstance(data, dict):
                    binance_seen = True
                    if "@depth" in str(msg["stream"]):
                        return "binance-futures" if "pu" in data else "binance-spot"
                if "lastUpdateId" in msg:
                    binance_seen = True
    except (EOFError, OSError, zlib.error) as exc:
        if binance_seen:  # the reader names the truncation at its line
            return "binance-futures"
        if _is_gzip(p):
            raise DataError(f"{p}: truncated or corrupt gzip stream before any recognised message ({exc})") from None
        raise _unknown(p, f"unreadable: {exc}") from None
    if binance_seen:
        return "binance-futures"
    if empty:
        raise DataError(f"{p}: empty file (no line of data{', once decompressed' if _is_gzip(p) else ''})")
    raise _unknown(p, f"no recognised message in its first {_DETECT_LINES} lines")


# ---- line parsers ---------------------------------------------------------------------------------------
Row = tuple[int, int, int, float, float, int, int, float]
#: Rows as the parsers give them: ``event_dtype`` rows packed back to back (``_ROW``), one ``np.frombuffer``
#: from a chunk. Packing each row as it is parsed costs half what a tuple and numpy's conversion of it did.
Rows = bytes
#: One ``event_dtype`` row: ev, exch_ts, local_ts, px, qty, order_id, ival, fval (all 8 bytes, no padding).
_ROW = struct.Struct("=QqqddQqd")
ROW_BYTES = _ROW.size
_PACKERS = {8 * n: struct.Struct("=" + "QqqddQqd" * n).pack for n in (1, 2)}
#: A row in three parts for price levels: (ev, exch_ts, local_ts), (px, qty), (order_id, ival, fval).
_HEAD, _PAIRS, _TAIL = struct.Struct("=Qqq").pack, struct.Struct("=dd"), struct.Struct("=Qqd").pack
_PAIR = _PAIRS.pack


def _pack(rows: list[Row]) -> Rows:
    """Rows packed as :data:`Rows`."""
    try:
        return b"".join([_ROW.pack(*r) for r in rows])
    except struct.error:
        return _numpy_pack(rows)


def _numpy_pack(rows: Sequence[Row]) -> Rows:
    """Rows ``struct`` refused (an integer outside 64 bits), converted by numpy: it raises the ``OverflowError``
    the reader always raised for them (then at the end of their chunk, now at their line)."""
    return np.array(list(rows), dtype=event_dtype).tobytes()


def _rows(*values: Any) -> Rows:
    """One or two rows given as their values in a row."""
    try:
        return _PACKERS[len(values)](*values)
    except struct.error:
        return _numpy_pack([tuple(values[i : i + 8]) for i in range(0, len(values), 8)])


def _levels(side_flag: int, kind: int, levels: Any, exch: int, local: int, uid: int, contract_usd: float = 0.0) -> Rows:
    """Rows of ``[price, qty]`` levels; with ``contract_usd > 0`` the quantity is in contracts of that USD value and
    becomes coins: ``qty * contract_usd / price``."""
    try:
        if contract_usd > 0.0:
            pairs: list[bytes] = []
            for p, q in levels:
                px = float(p)
                pairs.append(_PAIR(px, float(q) * contract_usd / px))
        else:
            pairs = [_PAIR(float(p), float(q)) for p, q in levels]
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise _Problem("malformed", f"malformed price level: {exc}") from None
    if not pairs:
        return b""
    ev = kind | side_flag | _BOTH
    try:
        head, tail = _HEAD(ev, exch, local), _TAIL(0, uid, 0.0)
    except struct.error:  # exch, local or uid beyond 64 bits
        return _numpy_pack([(ev, exch, local, px, qty, 0, uid, 0.0) for px, qty in _PAIRS.iter_unpack(b"".join(pairs))])
    # every row is head + (px, qty) + tail: the pairs joined by tail + head (a third of the time of whole rows)
    return head + (tail + head).join(pairs) + tail


def _coinm_contract_usd(symbol: str) -> float:
    """USD value of one contract of a Binance COIN-M symbol (``btcusd_perp`` -> 100, ``ethusd_240927`` -> 10)."""
    base = symbol.upper().split("_", 1)[0].removesuffix("USD")
    return COINM_CONTRACT_USD.get(base, COINM_DEFAULT_CONTRACT_USD)


class _BinanceParser:
    """Binance futures/spot websocket recording -> rows, with the documented book synchronisation.

    Modes: ``"wait"`` (diffs buffered until a snapshot line, at most :data:`SNAPSHOT_WAIT_S`), ``"snapshot"``
    (the book follows the snapshot and the update-id chain), ``"diffs"`` (the book is built from the diffs, with
    a warm-up; a snapshot line switches to ``"snapshot"``).
    """

    def __init__(self, futures: bool, report: ReadReport) -> None:
        self.futures = futures
        self.report = report
        self.mode = "wait"
        self.snap_id: int | None = None
        self.last_u: int | None = None
        self.pending: list[tuple[int, dict[str, Any], int]] = []
        self.first_diff_local: int | None = None
        self.offset_ns = 0  # local - exchange clock, from the latest message that carries an exchange time
        self.contract_usd: float | None = None  # None: not known yet; 0.0: quantities in coins
        self.recent: deque[tuple[int, int, Rows]] = deque(maxlen=_RECENT_DIFFS)  # (U, u, rows) of diffs
        self.resync: tuple[int, dict[str, Any], int] | None = None  # the diff after a gap, applied next
        self.warm: list[Any] | None = None  # the open warm-up: [line, start_ns, bid seen, ask seen, reason]
        self.line = 0  # the line being parsed
        self.owed: Rows = b""  # rows of buffered diffs before a gap among them, emitted with the resync
        self.after_resync: list[tuple[int, dict[str, Any], int]] = []  # buffered diffs after that gap

    # ---- contracts ----------------------------------------------------------------------------------
    def _contract(self, symbol: str, data: dict[str, Any] | None) -> float:
        """0.0 for a book in coins, else the COIN-M contract's USD value (decided once, from the first symbol)."""
        if self.contract_usd is None:
            if not symbol:  # a snapshot line without its symbol says nothing: decide on the first stream
                return 0.0
            ps = data.get("ps") if data is not None else None
            pair = str(ps or symbol.split("_", 1)[0]).lower()
            # COIN-M: a dapi symbol (pair_perp, pair_YYMMDD) or a "ps" field, its pair quoted in USD (not USDT)
            inverse = ("_" in symbol or ps is not None) and pair.endswith("usd")
            self.contract_usd = _coinm_contract_usd(pair) if inverse else 0.0
            self.report.contract_size_usd = self.contract_usd or None
        return self.contract_usd

    def parse(self, local: int, msg: dict[str, Any], line: int) -> Rows:
        self.line = line
        if self.resync is None:
            return self._parse(local, msg, line)
        # the diff after a gap (skipped as the bad line) restarts the book
        r_local, r_data, r_line = self.resync
        owed, after = self.owed, self.after_resync
        self.resync, self.owed, self.after_resync = None, b"", []
        rows = owed + self._from_diffs(r_local, r_data, r_line, "gap")
        rows += self._replay(after, r_local)
        return rows + self._parse(local, msg, line)

    def _replay(self, pending: list[tuple[int, dict[str, Any], int]], local: int) -> Rows:
        """Apply buffered diffs at receive time ``local`` or later; at a gap, what they gave so far and the diffs
        after the gap are owed to the resync (if the reader skips the gap)."""
        rows = b""
        for i, (p_local, p_data, p_line) in enumerate(pending):
            try:
                # buffered diffs keep the later receive time: they are applied after it (no clock going back)
                rows += self._diff(max(p_local, local), p_data, p_line)
            except _Problem:
                self.owed = rows
                self.after_resync = [(max(a, local), b, c) for a, b, c in pending[i + 1 :]]
                raise
        return rows

    def _parse(self, local: int, msg: dict[str, Any], line: int) -> Rows:
        if "lastUpdateId" in msg:
            return self._snapshot(local, msg, line)
        stream, data = msg.get("stream"), msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            raise _Problem("unknown_type", f"unknown message type (keys {sorted(msg)[:6]})")
        symbol, _, kind = stream.partition("@")
        kind = kind or stream
        cs = self.contract_usd
        if cs is None:
            cs = self._contract(symbol, data)
        try:
            if kind == "bookTicker":  # first: 70 % of the lines of a USD-M recording
                self.report.message_counts["bookTicker"] += 1
                if "E" in data:
                    exch = int(data["E"]) * _MS
                    self.offset_ns = local - exch
                else:
                    exch = local - self.offset_ns
                uid = int(data.get("u", 0))
                bid, ask = float(data["b"]), float(data["a"])
                bq, aq = float(data["B"]), float(data["A"])
                if cs:
                    bq, aq = bq * cs / bid, aq * cs / ask
                return _rows(
                    _BBO_BID, exch, local, bid, bq, 0, uid, 0.0,
                    _BBO_ASK, exch, local, ask, aq, 0, uid, 0.0,
                )  # fmt: skip
            if kind.startswith("depth"):
                self.report.message_counts["depth"] += 1
                if self.mode == "wait":
                    if self.first_diff_local is None:
                        self.first_diff_local = local
                    waited = local - self.first_diff_local
                    if waited <= SNAPSHOT_WAIT_S * 1e9 and len(self.pending) < _MAX_PENDING:
                        self.pending.append((local, data, line))
                        return b""
                    return self._no_snapshot(local, data, line)
                return self._diff(local, data, line)
            if kind in ("trade", "aggTrade"):
                self.report.message_counts["trade"] += 1
                exch = int(data["T"]) * _MS
                self.offset_ns = local - exch
                side = _ASK if data["m"] else _BID  # m: the buyer is the maker, so the aggressor sold
                tid = int(data.get("t", data.get("a", 0)))
                px, qty = float(data["p"]), float(data["q"])
                if cs:
                    qty = qty * cs / px
                return _rows(TRADE_EVENT | side | _BOTH, exch, local, px, qty, tid, 0, 0.0)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise _Problem("malformed", f"malformed {kind} message: missing or bad field {exc}") from None
        raise _Problem("unknown_type", f"unknown message type {kind!r} in stream {stream!r}")

    # ---- snapshot synchronisation -------------------------------------------------------------------
    def _snapshot(self, local: int, msg: dict[str, Any], line: int) -> Rows:
        self.report.message_counts["snapshot"] += 1
        try:
            snap_id = int(msg["lastUpdateId"])
            cs = self._contract(str(msg.get("symbol", msg.get("pair", ""))), msg)
            exch = int(msg["E"]) * _MS if "E" in msg else local - self.offset_ns
            rows = _rows(
                DEPTH_CLEAR_EVENT | _BID | _BOTH, exch, local, 0.0, 0.0, 0, snap_id, 0.0,
                DEPTH_CLEAR_EVENT | _ASK | _BOTH, exch, local, 0.0, 0.0, 0, snap_id, 0.0,
            )  # fmt: skip
            rows += _levels(_BID, DEPTH_SNAPSHOT_EVENT, msg["bids"], exch, local, snap_id, cs)
            rows += _levels(_ASK, DEPTH_SNAPSHOT_EVENT, msg["asks"], exch, local, snap_id, cs)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed snapshot: missing or bad field {exc}") from None
        if self.mode == "diffs":
            return self._late_snapshot(rows, snap_id, exch, local)
        self.snap_id = snap_id
        self.last_u = None
        self.resync = None
        pending = self.pending
        self.pending = []
        self.mode = "snapshot"
        try:
            return rows + self._replay(pending, local)
        except _Problem:
            self.owed = rows + self.owed  # the snapshot itself is owed too
            raise

    def _late_snapshot(self, rows: Rows, snap_id: int, exch: int, local: int) -> Rows:
        """A snapshot line while the book is built from diffs: it ends the warm-up, and the diffs already applied
        that it does not cover come again after it. One older than every diff kept would set the book back: it is
        left out (counted as ``stale_snapshot``)."""
        start = snap_id if self.futures else snap_id + 1
        keep = [e for e in self.recent if e[1] >= snap_id]
        if keep and keep[0][0] > start:
            self.report.skipped["stale_snapshot"] += 1
            return b""
        self._end_warmup(exch)
        self.recent.clear()
        self.snap_id, self.resync, self.mode = snap_id, None, "snapshot"
        self.last_u = keep[-1][1] if keep else None
        for _, _, diff_rows in keep:  # applied again after the snapshot, at its receive time or later
            rows += _pack([(r[0], r[1], max(r[2], local), *r[3:]) for r in _ROW.iter_unpack(diff_rows)])
        return rows

    # ---- a book from the diffs ----------------------------------------------------------------------
    def _no_snapshot(self, local: int, data: dict[str, Any], line: int) -> Rows:
        """No snapshot line in time: warn once, then build the book from the buffered diffs and this one."""
        self.report.warnings.append(
            f"{self.report.path}: no REST snapshot line within {SNAPSHOT_WAIT_S:g} s of the first depth diff: "
            f"the book is built from the diffs (a level is right once a diff touches it) with a warm-up of at "
            f"least {BOOK_WARMUP_S:g} s, marked in the report"
        )
        pending, self.pending = [*self.pending, (local, data, line)], []
        first_local, first_data, first_line = pending[0]
        rows = self._from_diffs(first_local, first_data, first_line, "no_snapshot", clear=False, now=local)
        try:
            return rows + self._replay(pending[1:], local)
        except _Problem:
            self.owed = rows + self.owed
            raise

    def _from_diffs(
        self, local: int, data: dict[str, Any], line: int, reason: str, *, clear: bool = True, now: int | None = None
    ) -> Rows:
        """(Re)start the book from the diff ``data``: a new warm-up; after a gap, both sides cleared first."""
        try:
            exch = int(data["E"]) * _MS
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed depth message: missing or bad field {exc}") from None
        if self.warm is not None:  # a gap during a warm-up: that warm-up ends where the next one starts
            self._end_warmup(exch)
        self.mode = "diffs"
        self.last_u = None
        self.recent.clear()
        self.warm = [line, exch, False, False, reason]
        self.report.warmups.append(BookWarmup(line, exch, None, reason))
        at = max(local, now) if now is not None else local
        rows = b""
        if clear:
            self.report.resyncs += 1
            rows = _rows(
                DEPTH_CLEAR_EVENT | _BID | _BOTH, exch, at, 0.0, 0.0, 0, 0, 0.0,
                DEPTH_CLEAR_EVENT | _ASK | _BOTH, exch, at, 0.0, 0.0, 0, 0, 0.0,
            )  # fmt: skip
        return rows + self._diff(at, data, line)

    def _end_warmup(self, exch: int) -> None:
        if self.warm is None:
            return
        w = self.report.warmups[-1]
        self.report.warmups[-1] = BookWarmup(w.line, w.start_ns, max(exch, w.start_ns), w.reason)
        self.warm = None

    def _gap(self, local: int, data: dict[str, Any], line: int, expected: int, got: int, message: str) -> _Problem:
        """Record a gap; the diff restarts the book with the next message if the reader skips this line."""
        self.report.gaps.append((line, expected, got))
        self.resync = (local, data, line)
        self.last_u = None
        if line != self.line:
            message += f" (in the diff of line {line}, buffered until this line)"
        return _Problem("gap", message)

    def _diff(self, local: int, data: dict[str, Any], line: int) -> Rows:
        try:
            first, last = int(data["U"]), int(data["u"])
            exch = int(data["E"]) * _MS
            self.offset_ns = local - exch
            bids, asks = data["b"], data["a"]
            prev = int(data["pu"]) if self.futures else first - 1
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed depth message: missing or bad field {exc}") from None
        if self.mode == "snapshot":
            assert self.snap_id is not None
            if self.last_u is None:
                if last < self.snap_id:
                    self.report.skipped["stale_depth"] += 1
                    return b""
                start = self.snap_id if self.futures else self.snap_id + 1
                if first > start:
                    raise self._gap(
                        local, data, line, start, first,
                        f"update-id gap: first diff after the snapshot starts at U={first} > {start}",
                    )  # fmt: skip
            elif prev != self.last_u:
                what = "pu" if self.futures else "U-1"
                raise self._gap(
                    local, data, line, self.last_u, prev,
                    f"update-id gap: {what}={prev} but the previous diff ended at u={self.last_u}",
                )  # fmt: skip
        else:
            if self.last_u is not None and prev != self.last_u:
                what = "pu" if self.futures else "U-1"
                raise self._gap(
                    local, data, line, self.last_u, prev,
                    f"update-id gap: {what}={prev} but the previous diff ended at u={self.last_u} "
                    "(book built from diffs)",
                )  # fmt: skip
        self.last_u = last
        cs = self.contract_usd or 0.0
        rows = _levels(_BID, DEPTH_EVENT, bids, exch, local, last, cs)
        rows += _levels(_ASK, DEPTH_EVENT, asks, exch, local, last, cs)
        if self.mode == "diffs":  # rows, not the parsed JSON: the levels' lists would weigh on the garbage collector
            self.recent.append((first, last, rows))
        w = self.warm
        if w is not None:
            w[2] = w[2] or any(float(q) > 0 for _, q in bids)
            w[3] = w[3] or any(float(q) > 0 for _, q in asks)
            if w[2] and w[3] and exch - w[1] >= BOOK_WARMUP_S * 1e9:
                self._end_warmup(exch)
        return rows

    def resume(self, prev: Any) -> None:
        """Carry on the book of ``prev`` (the parser of the previous file of the same recording, finished)."""
        if not isinstance(prev, _BinanceParser) or prev.futures != self.futures or prev.mode == "wait":
            return
        for name in ("mode", "snap_id", "last_u", "offset_ns", "contract_usd", "resync"):
            setattr(self, name, getattr(prev, name))
        self.recent = deque(prev.recent, maxlen=_RECENT_DIFFS)
        self.report.contract_size_usd = prev.report.contract_size_usd
        if prev.warm is not None:  # a warm-up still open goes on in this file, from its first line
            self.warm = list(prev.warm)
            self.report.warmups.append(BookWarmup(1, prev.warm[1], None, prev.warm[4]))

    def finish(self) -> Rows:
        """Rows still owed at the end of the file: buffered diffs of a short file without a snapshot line."""
        if self.pending and self.snap_id is None:
            last_local = self.pending[-1][0]
            p_local, p_data, p_line = self.pending.pop()
            return self._no_snapshot(max(p_local, last_local), p_data, p_line)
        return b""


class _HyperliquidParser:
    """Hyperliquid ``l2Book`` / ``trades`` websocket recording -> rows (each ``l2Book`` a full snapshot)."""

    IGNORED = frozenset({"subscriptionResponse", "pong"})

    def __init__(self, report: ReadReport) -> None:
        self.report = report

    def parse(self, local: int, msg: dict[str, Any], line: int) -> Rows:
        channel, data = msg.get("channel"), msg.get("data")
        if channel in self.IGNORED:
            self.report.message_counts[str(channel)] += 1
            return b""
        try:
            if channel == "l2Book":
                self.report.message_counts["l2Book"] += 1
                exch = int(data["time"]) * _MS
                bids, asks = data["levels"]
                rows = _rows(
                    DEPTH_CLEAR_EVENT | _BID | _BOTH, exch, local, 0.0, 0.0, 0, 0, 0.0,
                    DEPTH_CLEAR_EVENT | _ASK | _BOTH, exch, local, 0.0, 0.0, 0, 0, 0.0,
                )  # fmt: skip
                rows += _levels(_BID, DEPTH_SNAPSHOT_EVENT, [(x["px"], x["sz"]) for x in bids], exch, local, 0)
                rows += _levels(_ASK, DEPTH_SNAPSHOT_EVENT, [(x["px"], x["sz"]) for x in asks], exch, local, 0)
                return rows
            if channel == "trades":
                self.report.message_counts["trades"] += 1
                out: list[Row] = []
                for t in data:
                    side = _BID if t["side"] == "B" else _ASK
                    out.append(
                        (TRADE_EVENT | side | _BOTH, int(t["time"]) * _MS, local, float(t["px"]), float(t["sz"]),
                         int(t.get("tid", 0)), 0, 0.0)
                    )  # fmt: skip
                return _pack(out)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed {channel} message: missing or bad field {exc}") from None
        raise _Problem("unknown_type", f"unknown message type: channel {channel!r}")

    def finish(self) -> Rows:
        return b""


# ---- the reader ---------------------------------------------------------------------------------------
class EventReader:
    """Iterate over a recorded file as chunks of ``event_dtype`` rows (at most ``chunk_rows`` each).

    Memory stays bounded by one chunk (plus the Binance pre-snapshot buffer), so files larger than memory
    stream. ``report`` is filled as the iteration proceeds.

    Parameters
    ----------
    path : the file.  fmt : a :data:`SUPPORTED_FORMATS` name, or ``None`` to detect it.
    on_error : ``"stop"`` (raise :class:`DataError` after yielding the rows before the bad line) or ``"skip"``.
    chunk_rows : rows per yielded chunk, ``>= 1``.
    continues : the reader of the previous file of the same recording, read to its end: a Binance book (the
        snapshot synchronisation, the update-id chain, an open warm-up) carries on into this file instead of
        starting again (so a later file without a snapshot line needs none). ``None``: this file stands alone.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fmt: str | None = None,
        on_error: OnError = "stop",
        chunk_rows: int = 262_144,
        continues: EventReader | None = None,
    ) -> None:
        if on_error not in ("stop", "skip"):
            raise InvalidParameterError(f"'on_error' must be one of ['stop', 'skip']; got {on_error!r}")
        if not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise InvalidParameterError(f"'chunk_rows' must be an integer >= 1; got {chunk_rows!r}")
        self.path = Path(path)
        self.fmt = fmt or detect_format(self.path)
        if self.fmt not in SUPPORTED_FORMATS:
            raise InvalidParameterError(f"'fmt' must be one of {list(SUPPORTED_FORMATS)}; got {self.fmt!r}")
        self.on_error = on_error
        self.chunk_rows = chunk_rows
        self.report = ReadReport(path=str(self.path), fmt=self.fmt)
        self._fh: Any = None
        self.continues = continues
        self._parser: Any = None

    def bytes_read(self) -> int:
        """Bytes of the file as stored (compressed for gzip) read so far, for a progress bar (0 before reading)."""
        fh = self._fh
        if fh is not None and fh.closed:
            return self.path.stat().st_size
        try:
            raw = getattr(fh, "fileobj", None) or fh  # GzipFile's compressed file, or the plain one
            return int(raw.tell())
        except (AttributeError, ValueError, OSError):
            return 0

    def _fail(self, line: int, problem: _Problem) -> None:
        """Raise (stop) or count (skip) a problem at ``line``."""
        msg = f"{self.path}: line {line}: {problem}"
        if self.on_error == "stop":
            self.report.error = msg
            raise DataError(msg)
        self.report.skipped[problem.kind] += 1
        if len(self.report.skipped_examples) < SKIPPED_EXAMPLES:
            self.report.skipped_examples.append(msg)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.fmt == "hftbacktest-npz":
            yield from self._iter_npz()
            return
        if self.fmt in ("tardis-book", "tardis-trades", "hyperliquid-archive"):
            from . import hl_archive, tardis

            archive = self.fmt == "hyperliquid-archive"
            yield from (hl_archive.ArchiveParser(self) if archive else tardis.TardisParser(self))
            return
        parser: _BinanceParser | _HyperliquidParser
        if self.fmt == "hyperliquid":
            parser = _HyperliquidParser(self.report)
        else:
            parser = _BinanceParser(self.fmt == "binance-futures", self.report)
        if isinstance(parser, _BinanceParser) and self.continues is not None:
            parser.resume(getattr(self.continues, "_parser", None))
        self._parser = parser
        buf = bytearray()
        full = self.chunk_rows * ROW_BYTES
        report = self.report
        prev_local = -(1 << 62)
        line = 0
        fh = self._fh = _open_binary(self.path)
        blocks = _line_blocks(fh)
        try:
            with fh:
                while True:
                    try:
                        lines = next(blocks, None)
                    except (EOFError, OSError, zlib.error) as exc:
                        if buf:
                            yield self._chunk(buf)
                            buf = bytearray()
                        self._fail(line + 1, _Problem("truncated", f"truncated or corrupt gzip stream ({exc})"))
                        break
                    if lines is None:
                        break
                    for raw in lines:
                        line += 1
                        report.lines = line
                        ts, _, js = raw.partition(b" ")
                        try:
                            try:  # bytes as read: no decoding, no stripping, orjson takes bytes
                                local = int(ts)
                                msg = orjson.loads(js)  # the standard json takes 16 % more of the read
                            except ValueError:  # orjson.JSONDecodeError is one
                                # blank, padded with white space, not UTF-8, or malformed: the text way decides
                                parsed = _text_line(raw)
                                if parsed is None:
                                    continue
                                local, msg = parsed
                            if not isinstance(msg, dict):
                                raise _Problem("malformed", "malformed line: the JSON is not an object")
                            if local < prev_local:
                                raise _Problem(
                                    "backwards",
                                    f"timestamp goes backwards: {local} ns after {prev_local} ns",
                                )
                            rows = parser.parse(local, msg, line)
                            prev_local = local
                        except _Problem as problem:
                            if self.on_error == "stop" and buf:
                                yield self._chunk(buf)
                                buf = bytearray()
                            self._fail(line, problem)
                            continue
                        except OverflowError:  # a value beyond 64 bits (_numpy_pack): its chunk is lost, as always
                            buf = bytearray()
                            raise
                        buf += rows
                        if len(buf) >= full:
                            yield self._chunk(buf)
                            buf = bytearray()
                try:
                    buf += parser.finish()
                except _Problem as problem:
                    if buf:
                        yield self._chunk(buf)
                        buf = bytearray()
                    self._fail(line, problem)
        except GeneratorExit:  # closed early (the consumer stopped, e.g. Ctrl-C): nothing more to hand out
            buf = bytearray()
            raise
        finally:
            if buf:
                yield self._chunk(buf)

    def _chunk(self, rows: bytearray) -> np.ndarray:
        """The chunk of packed rows (a view of ``rows``, never reused after)."""
        arr = np.frombuffer(rows, dtype=event_dtype)
        self.report.events += arr.size
        return arr

    def _iter_npz(self) -> Iterator[np.ndarray]:
        """The ``.npz``'s event array read ``chunk_rows`` rows at a time from the zip member as it inflates, so
        memory holds one chunk, not the array; rows whose time goes back are found chunk by chunk
        (:class:`_NpzOrder`)."""
        report = self.report
        row = 0
        try:
            with zipfile.ZipFile(self.path) as zf:
                with _npz_member(zf) as (fh, shape, dtype):
                    n = int(shape[0]) if shape else 0
                    report.lines = n
                    report.message_counts["events"] = n
                    order = _NpzOrder()
                    while row < n:
                        k = min(self.chunk_rows, n - row)
                        buf = fh.read(k * dtype.itemsize)
                        if len(buf) < k * dtype.itemsize:
                            raise EOFError(f"the array ends after {row + len(buf) // dtype.itemsize} of {n} rows")
                        arr = np.frombuffer(bytearray(buf), dtype=dtype).astype(event_dtype, copy=False)
                        back, why = order.check(arr)
                        start = 0
                        for b in back:
                            if self.on_error == "stop":
                                if b > start:
                                    yield from self._slices(arr[start:b])
                                self._fail(row + int(b), _Problem("backwards", why(int(b))))
                            else:
                                yield from self._slices(arr[start:b])
                                report.skipped["backwards"] += 1
                                start = int(b) + 1
                        yield from self._slices(arr[start:])
                        row += k
        except DataError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            self._fail(row + 1, _Problem("truncated", f"truncated or corrupt .npz ({exc})"))

    def _slices(self, arr: np.ndarray) -> Iterator[np.ndarray]:
        for i in range(0, arr.size, self.chunk_rows):
            part = arr[i : i + self.chunk_rows]
            self.report.events += part.size
            yield part


@contextlib.contextmanager
def _npz_member(zf: zipfile.ZipFile) -> Iterator[tuple[Any, tuple[int, ...], np.dtype]]:
    """The event array's member of an ``.npz`` (``data``, else the first), opened after its ``.npy`` header:
    ``(stream, shape, dtype)``."""
    names = zf.namelist()
    if not names:
        raise ValueError("empty zip archive")
    with zf.open("data.npy" if "data.npy" in names else names[0]) as fh:
        major, _ = np.lib.format.read_magic(fh)
        header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = header(fh)
        yield fh, shape, dtype


class _NpzOrder:
    """Rows of an ``.npz`` whose time goes back, chunk by chunk (each row against the row before it, the last row of
    the previous chunk included). A chunk whose rows are all flagged ``EXCH|LOCAL`` (our layout) must be in
    ``local_ts`` order; in hftbacktest's split layout the ``LOCAL_EVENT`` rows must be in ``local_ts`` order and the
    ``EXCH_EVENT`` rows in ``exch_ts`` order."""

    def __init__(self) -> None:
        self.prev: dict[int, int | None] = {_BOTH: None, LOCAL_EVENT: None, EXCH_EVENT: None}

    def check(self, arr: np.ndarray) -> tuple[np.ndarray, Any]:
        """Indices (in ``arr``) of the rows that go back, and their messages (by index)."""
        flags = arr["ev"] & np.uint64(_BOTH)
        ours = bool((flags == np.uint64(_BOTH)).all())
        checks = [(_BOTH, "local_ts", "")] if ours else [(LOCAL_EVENT, "local_ts", "local_ts "),
                                                          (EXCH_EVENT, "exch_ts", "exch_ts ")]  # fmt: skip
        msgs: dict[int, str] = {}
        for flag, name, label in checks:
            idx = np.arange(arr.size) if flag == _BOTH else np.flatnonzero((arr["ev"] & np.uint64(flag)) != 0)
            if idx.size == 0:
                continue
            ts = arr[name][idx]
            p = self.prev[flag]
            seq, off = (ts, 1) if p is None else (np.concatenate([[p], ts]), 0)
            for k in np.flatnonzero(np.diff(seq) < 0):
                i = int(idx[k + off])
                msgs.setdefault(i, f"timestamp goes backwards: {label}{arr[name][i]} ns after {seq[k]} ns")
            self.prev[flag] = int(ts[-1])
        # what the other layout would compare a later chunk with
        self.prev[_BOTH] = int(arr["local_ts"][-1])
        if ours:
            self.prev[LOCAL_EVENT] = int(arr["local_ts"][-1])
            self.prev[EXCH_EVENT] = int(arr["exch_ts"][-1])
        return np.array(sorted(msgs), dtype=np.int64), msgs.__getitem__


def iter_events(
    path: str | Path, *, fmt: str | None = None, on_error: OnError = "stop", chunk_rows: int = 262_144
) -> Iterator[np.ndarray]:
    """Chunks of ``event_dtype`` rows of a recorded file (see :class:`EventReader`)."""
    return iter(EventReader(path, fmt=fmt, on_error=on_error, chunk_rows=chunk_rows))


def load_events(
    path: str | Path | Sequence[str | Path],
    *,
    fmt: str | None = None,
    on_error: OnError = "stop",
    keep_partial: bool = False,
) -> tuple[np.ndarray, ReadReport]:
    """Read a whole file (or several, merged in time order: :class:`~hyper_make.data.merge.MergedReader`) into
    one ``event_dtype`` array and its :class:`ReadReport` (summed over the files).

    With ``on_error="stop"`` a bad line raises :class:`DataError`, unless ``keep_partial`` is set: then the rows
    read before it are returned and ``report.error`` holds the message (the caller reports it after using them).
    """
    reader: Any
    if not isinstance(path, (str, Path)) and len(path) == 1:
        path = path[0]
    if isinstance(path, (str, Path)):
        reader = EventReader(path, fmt=fmt, on_error=on_error)
    else:
        from .merge import MergedReader

        if fmt is not None:
            raise InvalidParameterError("'fmt' applies to one file; several files are each detected by content")
        reader = MergedReader(path, on_error=on_error)
    chunks: list[np.ndarray] = []
    try:
        for chunk in reader:
            chunks.append(chunk)
    except DataError:
        if not keep_partial:
            raise
    events = np.concatenate(chunks) if chunks else np.zeros(0, dtype=event_dtype)
    return events, reader.report


class NpzWriter:
    """An hftbacktest ``.npz`` (one ``event_dtype`` array ``data``, deflated, as :func:`save_npz` writes) written
    from chunks without holding them: the rows are spooled to a temporary file beside the target and written into
    the zip member, after its ``.npy`` header, once their count is known (:meth:`close`); :meth:`abort` leaves
    nothing behind. Memory: one copy block; disk: the rows once more until closed."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        self.path = p if p.suffix == ".npz" else p.with_suffix(p.suffix + ".npz")
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".rows")
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self.rows = 0

    def add(self, chunk: np.ndarray) -> None:
        """Append the rows of ``chunk`` (``event_dtype``)."""
        self._fh.write(np.ascontiguousarray(chunk, dtype=event_dtype).tobytes())
        self.rows += int(chunk.size)

    def close(self) -> Path:
        """Write the ``.npz`` and return its path."""
        self._fh.close()
        header = {"descr": np.lib.format.dtype_to_descr(event_dtype), "fortran_order": False, "shape": (self.rows,)}
        try:
            with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                with zf.open("data.npy", "w", force_zip64=True) as out, self._tmp.open("rb") as src:
                    np.lib.format.write_array_header_1_0(out, header)
                    shutil.copyfileobj(src, out, 1 << 22)
        finally:
            self._tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Write nothing: drop the spooled rows."""
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


def save_npz(path: str | Path, events: np.ndarray) -> Path:
    """Write events as an hftbacktest-style ``.npz`` (array ``data``); returns the path."""
    p = Path(path)
    np.savez_compressed(p, data=np.asarray(events, dtype=event_dtype))
    return p if p.suffix == ".npz" else p.with_suffix(p.suffix + ".npz")


__all__ = [
    "BOOK_WARMUP_S",
    "COINM_CONTRACT_USD",
    "SNAPSHOT_WAIT_S",
    "SUPPORTED_FORMATS",
    "BookWarmup",
    "EventReader",
    "NpzWriter",
    "ReadReport",
    "detect_format",
    "iter_events",
    "load_events",
    "save_npz",
]
