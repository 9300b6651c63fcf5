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

Errors (a truncated gzip, a malformed line, an unknown message type, a local timestamp going backwards, a gap
in update ids) name the file and the 1-based line (``row`` for ``.npz``). With ``on_error="stop"`` (default) the
reader yields what it parsed before the bad line and then raises :class:`~hyper_make.errors.DataError`; with
``on_error="skip"`` it counts the problem in :attr:`ReadReport.skipped` and goes on (a gap is counted and the
diff applied: without a new snapshot nothing better is available; a truncated gzip ends the file).
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

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
_MS = 1_000_000
#: Depth diffs buffered while waiting for the Binance snapshot line.
_MAX_PENDING = 100_000
#: Lines read to detect a text format.
_DETECT_LINES = 500
#: Skipped lines whose message the report keeps (the rest are only counted).
SKIPPED_EXAMPLES = 5
#: ``skipped`` kinds that are not bad lines (the Binance procedure drops diffs older than the snapshot).
_NOT_BAD = frozenset({"stale_depth"})


@dataclass(slots=True)
class ReadReport:
    """What a reader saw: counts per message type, skipped problems, update-id gaps, and the stopping error.

    Attributes
    ----------
    path : the file read.  fmt : its detected format.
    lines : lines (rows for ``.npz``) read.  events : event rows produced.
    message_counts : message type -> count (``bookTicker``, ``depth``, ``trade``, ``snapshot``, ``l2Book``, ...).
    skipped : problem kind -> count of lines skipped (``on_error="skip"``), plus ``stale_depth`` (diffs older
        than the snapshot, dropped by the Binance procedure).
    gaps : ``(line, expected, got)`` of every update-id gap seen.
    error : the message of the error that stopped the read (``on_error="stop"``), else ``None``.
    skipped_examples : the messages (``"FILE: line N: ..."``) of the first :data:`SKIPPED_EXAMPLES` skipped lines.
    warnings : what the data lacks that its user should know (e.g. a book file without trades), one line each.
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
    warnings: list[str] = field(default_factory=list)

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
        reasons = ", ".join(f"{kind} {c:,}" for kind, c in self.skipped.most_common() if kind not in _NOT_BAD)
        first = "; ".join(self.skipped_examples[:3])
        return f"skipped {n:,} bad line{'s' if n != 1 else ''} of {self.path} ({reasons}); first: {first}"

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
            "warnings": list(self.warnings),
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
        try:
            with np.load(p) as npz:
                names = list(npz.files)
                arr = npz[names[0]] if names else None
        except Exception as exc:
            raise _unknown(p, f"zip archive that is not a NumPy .npz: {exc}") from None
        if arr is None or arr.dtype.names is None or set(arr.dtype.names) != set(event_dtype.names or ()):
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
                    msg = json.loads(js)
                except json.JSONDecodeError:
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


# ---- line parsers -------------------------------------------------------------------------------------
Row = tuple[int, int, int, float, float, int, int, float]


def _levels(side_flag: int, kind: int, levels: Any, exch: int, local: int, uid: int) -> list[Row]:
    try:
        return [(kind | side_flag | _BOTH, exch, local, float(p), float(q), 0, uid, 0.0) for p, q in levels]
    except (TypeError, ValueError) as exc:
        raise _Problem("malformed", f"malformed price level: {exc}") from None


class _BinanceParser:
    """Binance futures/spot websocket recording -> rows, with the documented book synchronisation."""

    def __init__(self, futures: bool, report: ReadReport) -> None:
        self.futures = futures
        self.report = report
        self.snap_id: int | None = None
        self.last_u: int | None = None
        self.pending: list[tuple[int, dict[str, Any], int]] = []
        self.offset_ns = 0  # local - exchange clock, from the latest message that carries an exchange time

    def parse(self, local: int, msg: dict[str, Any], line: int) -> list[Row]:
        if "lastUpdateId" in msg:
            return self._snapshot(local, msg, line)
        stream, data = msg.get("stream"), msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            raise _Problem("unknown_type", f"unknown message type (keys {sorted(msg)[:6]})")
        kind = stream.split("@", 1)[1] if "@" in stream else stream
        try:
            if kind.startswith("depth"):
                self.report.message_counts["depth"] += 1
                if self.snap_id is None:
                    if len(self.pending) >= _MAX_PENDING:
                        raise _Problem("no_snapshot", f"no book snapshot within the first {_MAX_PENDING} depth diffs")
                    self.pending.append((local, data, line))
                    return []
                return self._diff(local, data, line)
            if kind == "bookTicker":
                self.report.message_counts["bookTicker"] += 1
                exch = int(data["E"]) * _MS if "E" in data else local - self.offset_ns
                if "E" in data:
                    self.offset_ns = local - exch
                uid = int(data.get("u", 0))
                return [
                    (DEPTH_BBO_EVENT | _BID | _BOTH, exch, local, float(data["b"]), float(data["B"]), 0, uid, 0.0),
                    (DEPTH_BBO_EVENT | _ASK | _BOTH, exch, local, float(data["a"]), float(data["A"]), 0, uid, 0.0),
                ]
            if kind in ("trade", "aggTrade"):
                self.report.message_counts["trade"] += 1
                exch = int(data["T"]) * _MS
                self.offset_ns = local - exch
                side = _ASK if data["m"] else _BID  # m: the buyer is the maker, so the aggressor sold
                tid = int(data.get("t", data.get("a", 0)))
                return [(TRADE_EVENT | side | _BOTH, exch, local, float(data["p"]), float(data["q"]), tid, 0, 0.0)]
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed {kind} message: missing or bad field {exc}") from None
        raise _Problem("unknown_type", f"unknown message type {kind!r} in stream {stream!r}")

    def _snapshot(self, local: int, msg: dict[str, Any], line: int) -> list[Row]:
        self.report.message_counts["snapshot"] += 1
        try:
            self.snap_id = int(msg["lastUpdateId"])
            exch = int(msg["E"]) * _MS if "E" in msg else local - self.offset_ns
            rows: list[Row] = [
                (DEPTH_CLEAR_EVENT | _BID | _BOTH, exch, local, 0.0, 0.0, 0, self.snap_id, 0.0),
                (DEPTH_CLEAR_EVENT | _ASK | _BOTH, exch, local, 0.0, 0.0, 0, self.snap_id, 0.0),
            ]
            rows += _levels(_BID, DEPTH_SNAPSHOT_EVENT, msg["bids"], exch, local, self.snap_id)
            rows += _levels(_ASK, DEPTH_SNAPSHOT_EVENT, msg["asks"], exch, local, self.snap_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed snapshot: missing or bad field {exc}") from None
        self.last_u = None
        pending, self.pending = self.pending, []
        for p_local, p_data, p_line in pending:
            # buffered diffs keep the snapshot's receive time: they are applied after it (no clock going back)
            rows += self._diff(max(p_local, local), p_data, p_line)
        return rows

    def _diff(self, local: int, data: dict[str, Any], line: int) -> list[Row]:
        assert self.snap_id is not None
        try:
            first, last = int(data["U"]), int(data["u"])
            exch = int(data["E"]) * _MS
            self.offset_ns = local - exch
            bids, asks = data["b"], data["a"]
            prev = int(data["pu"]) if self.futures else first - 1
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed depth message: missing or bad field {exc}") from None
        if self.last_u is None:
            if last < self.snap_id:
                self.report.skipped["stale_depth"] += 1
                return []
            start = self.snap_id if self.futures else self.snap_id + 1
            if first > start:
                self.report.gaps.append((line, start, first))
                self.last_u = last
                raise _Problem("gap", f"update-id gap: first diff after the snapshot starts at U={first} > {start}")
        elif prev != self.last_u:
            expected = self.last_u
            self.report.gaps.append((line, expected, prev))
            self.last_u = last
            what = "pu" if self.futures else "U-1"
            raise _Problem("gap", f"update-id gap: {what}={prev} but the previous diff ended at u={expected}")
        self.last_u = last
        return _levels(_BID, DEPTH_EVENT, bids, exch, local, last) + _levels(_ASK, DEPTH_EVENT, asks, exch, local, last)

    def finish(self) -> None:
        if self.pending and self.snap_id is None:
            raise _Problem("no_snapshot", f"{len(self.pending)} depth diffs but no book snapshot line")


class _HyperliquidParser:
    """Hyperliquid ``l2Book`` / ``trades`` websocket recording -> rows (each ``l2Book`` a full snapshot)."""

    IGNORED = frozenset({"subscriptionResponse", "pong"})

    def __init__(self, report: ReadReport) -> None:
        self.report = report

    def parse(self, local: int, msg: dict[str, Any], line: int) -> list[Row]:
        channel, data = msg.get("channel"), msg.get("data")
        if channel in self.IGNORED:
            self.report.message_counts[str(channel)] += 1
            return []
        try:
            if channel == "l2Book":
                self.report.message_counts["l2Book"] += 1
                exch = int(data["time"]) * _MS
                bids, asks = data["levels"]
                rows: list[Row] = [
                    (DEPTH_CLEAR_EVENT | _BID | _BOTH, exch, local, 0.0, 0.0, 0, 0, 0.0),
                    (DEPTH_CLEAR_EVENT | _ASK | _BOTH, exch, local, 0.0, 0.0, 0, 0, 0.0),
                ]
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
                return out
        except (KeyError, TypeError, ValueError) as exc:
            raise _Problem("malformed", f"malformed {channel} message: missing or bad field {exc}") from None
        raise _Problem("unknown_type", f"unknown message type: channel {channel!r}")

    def finish(self) -> None:
        return None


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
    """

    def __init__(
        self, path: str | Path, *, fmt: str | None = None, on_error: OnError = "stop", chunk_rows: int = 262_144
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
        buf: list[Row] = []
        prev_local = -(1 << 62)
        line = 0
        fh = _open_text(self.path)
        try:
            with fh:
                while True:
                    try:
                        text = fh.readline()
                    except (EOFError, OSError, zlib.error) as exc:
                        if buf:
                            yield self._chunk(buf)
                            buf = []
                        self._fail(line + 1, _Problem("truncated", f"truncated or corrupt gzip stream ({exc})"))
                        break
                    if not text:
                        break
                    line += 1
                    self.report.lines = line
                    if not text.strip():
                        continue
                    try:
                        ts_text, _, js = text.strip().partition(" ")
                        try:
                            local = int(ts_text)
                            msg = json.loads(js)
                        except (ValueError, json.JSONDecodeError):
                            raise _Problem(
                                "malformed", "malformed line: expected '<local timestamp ns> <JSON object>'"
                            ) from None
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
                            buf = []
                        self._fail(line, problem)
                        continue
                    buf.extend(rows)
                    if len(buf) >= self.chunk_rows:
                        yield self._chunk(buf)
                        buf = []
                try:
                    parser.finish()
                except _Problem as problem:
                    if buf:
                        yield self._chunk(buf)
                        buf = []
                    self._fail(line, problem)
        finally:
            if buf:
                yield self._chunk(buf)

    def _chunk(self, rows: list[Row]) -> np.ndarray:
        arr = np.array(rows, dtype=event_dtype)
        self.report.events += arr.size
        return arr

    def _iter_npz(self) -> Iterator[np.ndarray]:
        with np.load(self.path) as npz:
            arr = npz["data"] if "data" in npz.files else npz[npz.files[0]]
        arr = np.asarray(arr).astype(event_dtype, copy=False)
        self.report.lines = arr.size
        self.report.message_counts["events"] = arr.size
        back, why = _npz_backwards(arr)
        start = 0
        for b in back:
            if self.on_error == "stop":
                if b > start:
                    yield from self._slices(arr[start:b])
                self._fail(int(b), _Problem("backwards", why(int(b))))
            else:
                yield from self._slices(arr[start:b])
                self.report.skipped["backwards"] += 1
                start = int(b) + 1
        yield from self._slices(arr[start:])

    def _slices(self, arr: np.ndarray) -> Iterator[np.ndarray]:
        for i in range(0, arr.size, self.chunk_rows):
            part = arr[i : i + self.chunk_rows]
            self.report.events += part.size
            yield part


def _npz_backwards(arr: np.ndarray) -> tuple[np.ndarray, Any]:
    """Rows of an ``.npz`` whose time goes back, and a message maker. Rows all flagged ``EXCH|LOCAL`` (our
    layout) must be in ``local_ts`` order; in hftbacktest's split layout the ``LOCAL_EVENT`` rows must be in
    ``local_ts`` order and the ``EXCH_EVENT`` rows in ``exch_ts`` order."""
    flags = arr["ev"] & np.uint64(_BOTH)
    if bool((flags == np.uint64(_BOTH)).all()):
        local = arr["local_ts"]
        return np.flatnonzero(np.diff(local) < 0) + 1, (
            lambda b: f"timestamp goes backwards: {local[b]} ns after {local[b - 1]} ns"
        )
    bad: dict[int, str] = {}
    for flag, name in ((LOCAL_EVENT, "local_ts"), (EXCH_EVENT, "exch_ts")):
        idx = np.flatnonzero((arr["ev"] & np.uint64(flag)) != 0)
        ts = arr[name][idx]
        for k in np.flatnonzero(np.diff(ts) < 0) + 1:
            bad.setdefault(int(idx[k]), f"timestamp goes backwards: {name} {ts[k]} ns after {ts[k - 1]} ns")
    return np.array(sorted(bad), dtype=np.int64), bad.__getitem__


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


def save_npz(path: str | Path, events: np.ndarray) -> Path:
    """Write events as an hftbacktest-style ``.npz`` (array ``data``); returns the path."""
    p = Path(path)
    np.savez_compressed(p, data=np.asarray(events, dtype=event_dtype))
    return p if p.suffix == ".npz" else p.with_suffix(p.suffix + ".npz")


__all__ = [
    "SUPPORTED_FORMATS",
    "EventReader",
    "ReadReport",
    "detect_format",
    "iter_events",
    "load_events",
    "save_npz",
]
