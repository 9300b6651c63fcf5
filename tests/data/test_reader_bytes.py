"""The JSON-lines reader on bytes: the shared recordings' rows pinned bit for bit, line ends and white space read
as text mode read them, rows packed in ``event_dtype``'s layout, and the progress in bytes."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from data._files import good_lines, many_lines, write_gz
from hyper_make.data import EventReader, load_events
from hyper_make.data.events import event_dtype
from hyper_make.data.readers import _ROW, _rows
from hyper_make.errors import DataError

#: sha256 of ``events.tobytes()`` of each shared recording, as read before the reader parsed bytes (commit
#: 20f032d): any change of a row, of its order or of a bit of a value changes it.
PINNED = {
    "futures": (598_755, "a47448940974e2227eb46185e6a8f7f3db1d51a64ce89077caf52d51a2ed0481"),
    "spot": (191_912, "d33207f69520d5a03179386a6d9ce54c64292eebe47f1bc9c1c0d5917557f7b4"),
    "hyperliquid": (1_996, "4c8b7170421de2cc3b8fb3e961e9712f80e65c9203b7d03bc067a9a02b152707"),
}


@pytest.mark.parametrize("name", list(PINNED))
def test_shared_recordings_read_to_the_pinned_rows(request, name):
    events, report = request.getfixturevalue(name)
    size, digest = PINNED[name]
    assert events.dtype == event_dtype and events.size == size == report.events
    assert hashlib.sha256(events.tobytes()).hexdigest() == digest


def test_packed_rows_are_event_dtype_rows():
    row = (7 | 1 << 63, -(1 << 63), (1 << 63) - 1, 0.1, -2.5e-300, (1 << 64) - 1, -1, float("inf"))
    assert _ROW.size == event_dtype.itemsize
    assert np.frombuffer(_rows(*row, *row), dtype=event_dtype).tolist() == [row, row]
    assert np.array([row], dtype=event_dtype).tobytes() == _rows(*row)
    with pytest.raises(OverflowError):  # beyond 64 bits: numpy's error, as before rows were packed
        _rows(0, 1 << 63, 0, 0.0, 0.0, 0, 0, 0.0)


def _write(path, data: bytes, gz: bool = True):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize(
    "join",
    [
        lambda ls: "\r\n".join(ls) + "\r\n",
        lambda ls: "\r".join(ls) + "\r",
        lambda ls: "\r".join(ls),
        lambda ls: ls[0] + "\r\n" + ls[1] + "\r" + ls[2] + "\n" + "\n".join(ls[3:]),
        lambda ls: "\n".join(ls),
    ],
    ids=["crlf", "cr", "cr-no-end", "mixed", "no-end"],
)
def test_line_ends_are_read_as_text_mode_did(tmp_path, join):
    lines = good_lines()
    want, want_rep = load_events(write_gz(tmp_path / "lf.gz", lines))
    got, rep = load_events(_write(tmp_path / "x.gz", join(lines).encode()))
    assert got.tobytes() == want.tobytes() and rep.lines == want_rep.lines == 6


def test_white_space_and_blank_lines_are_read_as_text_mode_did(tmp_path):
    g = good_lines()
    padded = [" " + g[0], "\t" + g[1], g[2] + "  \x0b", "\xa0" + g[3] + "\u3000", "\x1c" + g[4] + "\x85", g[5]]
    blanks = ["", "   ", "\r", "\x0c", "\xa0", "\u2028"]
    want, _ = load_events(write_gz(tmp_path / "clean.gz", g))
    got, rep = load_events(write_gz(tmp_path / "padded.gz", [padded[0], *blanks, *padded[1:]]))
    assert got.tobytes() == want.tobytes() and rep.lines == 6 + len(blanks) and rep.complete


def test_invalid_utf8_is_replaced_and_a_bom_is_malformed(tmp_path):
    g = good_lines()
    raw = ("\n".join(g) + "\n").encode().replace(b'"s": "X"', b'"s": "X\xff"', 1)
    want, _ = load_events(write_gz(tmp_path / "clean.gz", g))
    got, _ = load_events(_write(tmp_path / "latin.gz", raw))
    assert got.tobytes() == want.tobytes()  # the symbol field is not used
    bom = _write(tmp_path / "bom.gz", "\ufeff".encode() + raw)
    with pytest.raises(DataError, match=r"bom.gz: line 1: malformed line"):
        load_events(bom)


@pytest.mark.parametrize("sep", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_truncated_gzip_names_the_line_after_the_last_whole_one(tmp_path, sep):
    text = sep.join(many_lines(400)) + sep
    raw = gzip.compress(text.encode())
    cut = _write(tmp_path / "cut.gz", raw[: len(raw) // 2], gz=False)
    with gzip.open(cut, "rb") as fh:  # what a reader of the cut file can decompress
        got = b""
        try:
            while block := fh.read1(4096):
                got += block
        except EOFError:
            pass
    whole = got.decode().replace("\r\n", "\n").replace("\r", "\n").count("\n")
    if sep == "\r" and got.endswith(b"\r"):
        whole -= 1  # a last "\r" might begin a "\r\n": not a line end yet
    with pytest.raises(DataError, match=rf"cut.gz: line {whole + 1}: truncated or corrupt gzip"):
        load_events(cut)
    events, report = load_events(cut, on_error="skip")
    assert report.skipped["truncated"] == 1 and report.lines == whole and events.size > 0


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_bytes_read_follows_the_stored_file(tmp_path, gz):
    path = _write(tmp_path / ("x.gz" if gz else "x.jsonl"), ("\n".join(many_lines(20_000)) + "\n").encode(), gz)
    reader = EventReader(path, fmt="binance-futures", chunk_rows=4_096)
    assert reader.bytes_read() == 0
    seen = [reader.bytes_read() for _ in reader]
    assert seen == sorted(seen) and 0 < seen[0] < path.stat().st_size and len(set(seen)) > 1
    assert reader.bytes_read() == path.stat().st_size
