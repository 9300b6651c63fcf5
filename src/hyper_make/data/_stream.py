"""Decompressed text of a recorded file in batches of whole lines (gzip, lz4 frame or plain), for the readers.

A batch is ``(first_line, text)``: ``text`` holds complete lines (``\\n``-terminated, the last one possibly not
at the end of a plain file) and ``first_line`` is the 1-based number of its first line. A compressed stream
that ends early or is corrupt raises :class:`Truncated` after the last complete line was yielded; the
partial line before the break is dropped (it is incomplete).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

GZIP_MAGIC = b"\x1f\x8b"
LZ4_MAGIC = b"\x04\x22\x4d\x18"
#: Compressed bytes read (and decompressed) at a time: small, so that a corrupt spot loses little before it.
READ_BYTES = 1 << 16


class Truncated(Exception):
    """The compressed stream ended before its end marker, or is corrupt; ``line``: the 1-based line it broke in."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def compression(path: Path) -> str:
    """``"gzip"``, ``"lz4"`` or ``"plain"``, from the file's first bytes."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head == LZ4_MAGIC:
        return "lz4"
    return "plain"


def _raw_blocks(path: Path, kind: str) -> Iterator[bytes]:
    """Decompressed bytes of ``path``; raises ``_Broken(message)`` on a truncated or corrupt stream.

    Concatenated gzip members (or lz4 frames) are read one after the other, as ``gzip -d`` does.
    """
    with path.open("rb") as fh:
        if kind == "plain":
            while block := fh.read(READ_BYTES):
                yield block
            return
        if kind == "gzip":
            new = lambda: zlib.decompressobj(wbits=31)  # noqa: E731
            errors: tuple[type[Exception], ...] = (zlib.error,)
            what = "gzip stream"
        else:
            import lz4.frame  # the lz4 package (lz4 frame format)

            new = lz4.frame.LZ4FrameDecompressor
            errors = (RuntimeError, ValueError)
            what = "lz4 frame"
        dec = new()
        started = False
        pending = b""
        while True:
            block = pending or fh.read(READ_BYTES)
            pending = b""
            if not block:
                if started:
                    raise _Broken(f"truncated {what} (the file ends before its end mark)")
                return
            try:
                out = dec.decompress(block)
            except errors as exc:
                raise _Broken(f"corrupt {what} ({exc})") from None
            started = True
            if out:
                yield out
            if dec.eof:
                pending = dec.unused_data
                dec, started = new(), False


class _Broken(Exception):
    pass


def line_batches(path: Path, batch_bytes: int = 8 << 20) -> Iterator[tuple[int, bytes]]:
    """``(first_line, text)`` batches of whole lines of about ``batch_bytes`` decompressed bytes each.

    Raises :class:`Truncated` (after yielding every complete line) if the compressed stream is broken.
    """
    kind = compression(path)
    line = 1
    tail = b""
    parts: list[bytes] = []
    size = 0
    try:
        for block in _raw_blocks(path, kind):
            parts.append(block)
            size += len(block)
            if size < batch_bytes:
                continue
            data = tail + b"".join(parts)
            parts, size = [], 0
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                continue
            text, tail = data[:cut], data[cut:]
            yield line, text
            line += text.count(b"\n")
    except _Broken as exc:
        data = tail + b"".join(parts)
        cut = data.rfind(b"\n") + 1
        if cut:
            yield line, data[:cut]
            line += data[:cut].count(b"\n")
        raise Truncated(line, str(exc)) from None
    data = tail + b"".join(parts)
    if data:
        yield line, data


def first_line(path: Path, limit: int = 1 << 16) -> bytes:
    """The first line of the decompressed file (at most ``limit`` bytes), ``b""`` if unreadable."""
    out = b""
    try:
        for block in _raw_blocks(path, compression(path)):
            out += block
            if b"\n" in out or len(out) >= limit:
                break
    except _Broken:
        pass
    return out.split(b"\n", 1)[0][:limit]
