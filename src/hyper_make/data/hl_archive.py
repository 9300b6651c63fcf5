"""Hyperliquid's historical archive -> ``event_dtype`` chunks: ``market_data/<YYYYMMDD>/<H>/l2Book/<COIN>.lz4``.

Each file is an lz4 frame (also read gzip'd or decompressed) of NDJSON lines, one ``l2Book`` websocket message
each, wrapped with the archiver's receive time::

    {"time": "2025-03-11T09:00:03.296545473", "ver_num": 1,
     "raw": {"channel": "l2Book", "data": {"coin": "BTC", "time": 1741683603000, "levels": [[bids], [asks]]}}}

``time`` (ISO 8601, UTC, up to ns) becomes ``local_ts``; ``raw`` is parsed by the live-recording reader's
Hyperliquid parser, so ``exch_ts = data.time·10⁶`` (ms -> ns) and each message is a full book: a
``DEPTH_CLEAR_EVENT`` per side then the levels (``px`` USD, ``sz`` coins) as ``DEPTH_SNAPSHOT_EVENT`` rows.

The archive holds **book snapshots only, no trades**: a replay on it alone makes no trade-driven fills (a resting
order is filled only when a trade reaches it), and the calibration cannot fit fill intensity or volume. The
reader says so in ``ReadReport.warnings``; give a trades file with it (the live ``trades`` websocket recording
or a Tardis ``trades`` CSV): the readers merge the files in time order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from ._stream import Truncated, first_line, line_batches

if TYPE_CHECKING:
    from .readers import EventReader

#: The warning prefix of a file read without trades (the merged reader drops it when a trades file comes along).
NO_TRADES = "no trades"


def sniff(path: Path) -> str | None:
    """``"hyperliquid-archive"`` if the first line is an archive record (``time`` string, ``raw`` message)."""
    try:
        msg = orjson.loads(first_line(path))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(msg, dict) and isinstance(msg.get("time"), str) and isinstance(msg.get("raw"), dict):
        return "hyperliquid-archive"
    return None


@lru_cache(maxsize=4096)
def _epoch_s(head: str) -> int:
    t = dt.datetime.fromisoformat(head)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp())


def iso_ns(text: str) -> int:
    """UNIX ns of an ISO 8601 time with up to 9 fractional digits (``2025-03-11T09:00:03.296545473``; UTC if
    no offset is given, ``Z`` allowed)."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1]
    head, dot, frac = s.partition(".")
    if dot and (not frac.isdigit() or len(frac) > 9):
        raise ValueError(f"bad fractional seconds {frac!r}")
    return _epoch_s(head) * 1_000_000_000 + (int(frac.ljust(9, "0")) if dot else 0)


class ArchiveParser:
    """Streams one archive file through ``reader``'s error handling, each ``raw`` message by the shared parser."""

    def __init__(self, reader: EventReader) -> None:
        from .readers import _HyperliquidParser

        self.r = reader
        self.hl = _HyperliquidParser(reader.report)

    def _line(self, text: str, line: int, prev_local: int) -> tuple[int, bytes]:
        from .readers import _Problem

        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _Problem("malformed", f"malformed line: not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("raw"), dict) or not isinstance(msg.get("time"), str):
            raise _Problem("malformed", 'malformed line: expected {"time": "<ISO time>", "raw": {<message>}}')
        try:
            local = iso_ns(msg["time"])
        except ValueError:
            raise _Problem("malformed", f"malformed time {msg['time']!r}: expected ISO 8601 like "
                           "'2025-03-11T09:00:03.296545473' (UTC)") from None  # fmt: skip
        if local < prev_local:
            raise _Problem("backwards", f"timestamp goes backwards: {msg['time']} ({local} ns) after {prev_local} ns")
        return local, self.hl.parse(local, msg["raw"], line)

    def __iter__(self) -> Iterator[np.ndarray]:
        from .readers import ROW_BYTES, _Problem

        r = self.r
        buf = bytearray()
        prev_local = -(1 << 62)
        try:
            for first, text in line_batches(r.path):
                for i, raw in enumerate(text.splitlines()):
                    line = first + i
                    r.report.lines = line
                    if not raw.strip():
                        continue
                    try:
                        local, rows = self._line(raw.decode("utf-8", "replace"), line, prev_local)
                    except _Problem as problem:
                        if r.on_error == "stop" and buf:
                            yield r._chunk(buf)
                            buf = bytearray()
                        r._fail(line, problem)
                        continue
                    prev_local = local
                    buf += rows
                    if len(buf) >= r.chunk_rows * ROW_BYTES:
                        yield r._chunk(buf)
                        buf = bytearray()
        except Truncated as exc:
            if buf:
                yield r._chunk(buf)
                buf = bytearray()
            r._fail(exc.line, _Problem("truncated", str(exc)))
        if buf:
            yield r._chunk(buf)
        if not r.report.message_counts.get("trades"):
            r.report.warnings.append(
                f"{NO_TRADES} in {r.path} (a Hyperliquid archive l2Book file: book snapshots only): the replay "
                "makes no trade-driven fills and the calibration cannot fit fill intensity; give a trades file "
                "with it (a live 'trades' recording or a Tardis trades CSV)"
            )


__all__ = ["ArchiveParser", "iso_ns", "sniff"]
