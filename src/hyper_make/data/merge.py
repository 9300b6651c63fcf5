"""Several recorded files read as one stream in time order (e.g. a Tardis book file and its trades file).

Each file is read by its own :class:`~hyper_make.data.readers.EventReader` (its own format, checks and
report); the chunks are merged by ``local_ts`` (the receive time, as every reader orders its rows), streaming:
memory holds about one chunk per file. At equal ``local_ts`` the rows of trades-only files come first (as
hftbacktest asks: the trade that caused a depth change is seen before it, so a queue is not reduced twice),
then the files in the order given; each file keeps its own row order.

A file that stops on a bad line (``on_error="stop"``) ends the merged stream there: the rows of every file up
to the time of its last good row are yielded, then its :class:`~hyper_make.errors.DataError` is raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DataError, InvalidParameterError
from .events import event_dtype
from .readers import SKIPPED_EXAMPLES, EventReader, OnError, ReadReport, detect_format

#: Formats whose files hold trades only (merged first at equal timestamps).
TRADES_ONLY = frozenset({"tardis-trades"})
_NO_TRADES = "no trades"


class MergedReader:
    """Iterate over several recorded files as one time-ordered stream of ``event_dtype`` chunks.

    Parameters
    ----------
    paths : the files (at least one; their formats are detected one by one).
    on_error, chunk_rows : as :class:`~hyper_make.data.readers.EventReader`, for every file.

    ``given`` holds each file's reader (and its ``report``) in the order given, ``readers`` in merge priority;
    :attr:`report` sums them.
    """

    def __init__(self, paths: Sequence[str | Path], *, on_error: OnError = "stop", chunk_rows: int = 262_144) -> None:
        if len(paths) == 0:
            raise InvalidParameterError("no data file given: at least one path is needed")
        readers = [EventReader(p, on_error=on_error, chunk_rows=chunk_rows) for p in paths]
        self.given = readers  # the order given (the report's)
        # trades-only files first (ties), the rest as given; stable
        self.readers = sorted(readers, key=lambda r: 0 if r.fmt in TRADES_ONLY else 1)
        self.chunk_rows = chunk_rows
        self._report: ReadReport | None = None
        self.error: DataError | None = None

    @property
    def report(self) -> ReadReport:
        """The files' reports summed into one (``path`` and ``fmt`` joined with ``" + "``)."""
        return combine_reports([r.report for r in self.given])

    def __iter__(self) -> Iterator[np.ndarray]:
        n = len(self.readers)
        its = [iter(r) for r in self.readers]
        bufs: list[np.ndarray] = [np.zeros(0, dtype=event_dtype) for _ in range(n)]
        last_seen = [-(1 << 62)] * n  # local_ts of the last row read from each file
        live = [True] * n
        failure: DataError | None = None
        cap: int | None = None  # after a file stopped: rows later than its last good row are not kept

        def refill(i: int) -> None:
            nonlocal failure, cap
            try:
                chunk = next(its[i])
            except StopIteration:
                live[i] = False
                return
            except DataError as exc:
                live[i] = False
                failure = failure or exc
                cap = last_seen[i] if cap is None else min(cap, last_seen[i])
                return
            if chunk.size:
                last_seen[i] = int(chunk["local_ts"][-1])
                bufs[i] = np.concatenate([bufs[i], chunk]) if bufs[i].size else chunk

        for i in range(n):
            refill(i)
        while True:
            # files still to read: live, and (after a failure) not yet past the cap
            waiting = [i for i in range(n) if live[i] and (cap is None or last_seen[i] <= cap)]
            if not waiting:
                if cap is not None:
                    bufs = [b[b["local_ts"] <= cap] for b in bufs]
                yield from self._emit(bufs)
                if failure is not None:
                    raise failure
                return
            empty = [i for i in waiting if bufs[i].size == 0]
            if empty:
                for i in empty:
                    refill(i)
                continue
            # rows before the earliest last row of a waiting buffer are final: no waiting file goes below it
            j = min(waiting, key=lambda i: int(bufs[i]["local_ts"][-1]))
            horizon = int(bufs[j]["local_ts"][-1])
            out = []
            for k in range(n):
                cut = int(np.searchsorted(bufs[k]["local_ts"], horizon, side="left"))
                out.append(bufs[k][:cut])
                bufs[k] = bufs[k][cut:]
            yield from self._emit(out)
            refill(j)  # the file that set the horizon has rows left at it only: read on

    def _emit(self, parts: list[np.ndarray]) -> Iterator[np.ndarray]:
        parts = [p for p in parts if p.size]
        if not parts:
            return
        if len(parts) == 1:
            rows = parts[0]
        elif len(parts) == 2:  # both sorted: insert the first (priority) part before equal times of the second
            first, second = parts
            rows = np.insert(second, np.searchsorted(second["local_ts"], first["local_ts"], side="left"), first)
        else:
            rows = np.concatenate(parts)
            rows = rows[np.argsort(rows["local_ts"], kind="stable")]
        for i in range(0, rows.size, self.chunk_rows):
            yield rows[i : i + self.chunk_rows]


def source_chunks(
    paths: Sequence[str | Path],
    *,
    on_error: Literal["stop", "skip"] = "stop",
    chunk_rows: int = 262_144,
    readers: list[EventReader] | None = None,
) -> Iterator[np.ndarray]:
    """The chunks of recorded files as one run: files of one format are consecutive parts of one recording, read
    in the order given with the book, the clock and the Binance update-id chain carried from one file to the next
    (:class:`~hyper_make.data.readers.EventReader` ``continues``); files of different formats are parallel streams,
    merged in time order (:class:`~hyper_make.data.merge.MergedReader`). The readers (and their reports) are
    appended to ``readers`` as they start.

    Raises
    ------
    InvalidParameterError
        If consecutive files are not in time order (a file starts before the previous one ended).
    DataError
        From a reader stopping on a bad line (after the chunks before it).
    """
    ps = [Path(x) for x in paths]
    if not ps:
        raise InvalidParameterError("no data file given: at least one path is needed")
    got = readers if readers is not None else []
    if len({detect_format(x) for x in ps}) > 1:
        merged = MergedReader(ps, on_error=on_error, chunk_rows=chunk_rows)
        got.extend(merged.given)
        yield from merged
        return
    prev: EventReader | None = None
    last_local: int | None = None
    for path in ps:
        reader = EventReader(path, on_error=on_error, chunk_rows=chunk_rows, continues=prev)
        got.append(reader)
        first = True
        for chunk in reader:
            if first and chunk.size and last_local is not None and int(chunk["local_ts"][0]) < last_local:
                raise InvalidParameterError(
                    f"{path}: starts at {int(chunk['local_ts'][0])} ns (local), before the end of the previous file "
                    f"{prev.path if prev else ''} ({last_local} ns): give the files of a recording in time order"
                )
            first = first and not chunk.size
            if chunk.size:
                last_local = int(chunk["local_ts"][-1])
            yield chunk
        prev = reader


def combine_reports(reports: list[ReadReport]) -> ReadReport:
    """One report of several files: counts summed, gaps, warm-ups and examples kept, the first stopping error.

    A warning that a file has no trades is dropped when another of the files has trades, and said once (with
    the count of such files) when none has.
    """
    if len(reports) == 1:
        return reports[0]
    out = ReadReport(path=" + ".join(r.path for r in reports), fmt=" + ".join(r.fmt for r in reports))
    counts: Counter[str] = Counter()
    for r in reports:
        out.lines += r.lines
        out.events += r.events
        counts.update(r.message_counts)
        out.skipped.update(r.skipped)
        out.gaps.extend(r.gaps)
        out.skipped_examples.extend(r.skipped_examples)
        out.warnings.extend(w for w in r.warnings if w not in out.warnings)
        out.warmups.extend(r.warmups)
        out.resyncs += r.resyncs
        out.contract_size_usd = out.contract_size_usd or r.contract_size_usd
        if out.error is None and r.error is not None:
            out.error = r.error
    out.message_counts = counts
    out.skipped_examples = out.skipped_examples[:SKIPPED_EXAMPLES]
    no_trades = [w for w in out.warnings if w.startswith(_NO_TRADES)]
    others = [w for w in out.warnings if not w.startswith(_NO_TRADES)]
    if counts.get("trade") or counts.get("trades") or not no_trades:
        out.warnings = others
    else:  # one warning, not one per file (24 hourly archive files)
        more = f" (and {len(no_trades) - 1} more files without trades)" if len(no_trades) > 1 else ""
        out.warnings = [no_trades[0] + more, *others]
    return out


__all__ = ["TRADES_ONLY", "MergedReader", "combine_reports", "source_chunks"]
