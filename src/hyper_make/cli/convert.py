"""``hyper-make convert FILE... --out X.npz``: parse recordings once into hftbacktest's normalised ``.npz``.

Several files are read as the other commands read them: files of different formats (a Tardis book file and its
trades file, a Hyperliquid archive file and a trades recording) are merged in time order, files of one format are
consecutive parts of one recording (the Binance book and update-id chain carry on). The events are streamed into
the ``.npz`` a chunk at a time (:class:`~hyper_make.data.readers.NpzWriter`), so a day converts in flat memory;
``--hftbacktest-order`` reorders them globally and holds them whole. A bad line stops the conversion
(``--on-error stop``, the default) and nothing is written, since a partial ``.npz`` would later read as a whole
recording; ``--on-error skip`` skips bad lines, writes the rest and says on stderr what it skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..data.events import KIND_NAMES, kinds
from ..data.hbt_order import hftbacktest_order as to_hftbacktest_order
from ..data.merge import combine_reports, source_chunks
from ..data.readers import EventReader, NpzWriter, load_events, save_npz
from ..errors import DataError, InvalidParameterError
from ._common import app, fail, out_console, print_json, user_errors, warn

_ON_ERROR_HELP = "On a bad line: 'stop' (exit 2, write nothing) or 'skip' (skip it, say so, write the rest)."


def _check_out_file(out: Path) -> Path:
    """The ``.npz`` path to write (``.npz`` added if missing); refuses a folder or a missing parent folder."""
    p = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
    if out.is_dir() or p.is_dir():
        raise InvalidParameterError(f"'--out' {out} is a folder; give a file name ending in .npz")
    if not p.parent.is_dir():
        raise InvalidParameterError(f"'--out' {out}: folder {p.parent} does not exist")
    return p


@app.command("convert")
def convert_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help="Recorded feeds (any supported format: Binance, Hyperliquid, Hyperliquid archive, Tardis CSV, "
            ".npz), merged in time order.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz file to write (hftbacktest's layout).")],
    on_error: Annotated[str, typer.Option("--on-error", help=_ON_ERROR_HELP)] = "stop",
    hftbacktest_order: Annotated[
        bool,
        typer.Option(
            "--hftbacktest-order",
            help="Order rows as hftbacktest's correct_event_order (rows whose exchange and local orders disagree "
            "become an exchange copy and a local copy), so that hftbacktest validates the file.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of text.")] = False,
) -> None:
    """Parse recorded files once and write their events as an hftbacktest .npz (array 'data', event_dtype).

    The .npz reads back with every command (calibrate, backtest) faster than the source, chunk by chunk, and gives
    the same results. The events are streamed into it (memory does not grow with the data). With
    --hftbacktest-order the rows are ordered as hftbacktest wants (its validate_event_order
    passes); our commands then use the exchange copies, in exchange-time order.
    """
    with user_errors():
        if on_error not in ("stop", "skip"):
            raise InvalidParameterError(f"'--on-error' must be one of ['skip', 'stop']; got {on_error!r}")
        target = _check_out_file(out)
        if hftbacktest_order:  # a global reordering: the events are held whole
            events, report = load_events(files, on_error=on_error, keep_partial=True)  # type: ignore[arg-type]
            if report.error:
                fail(f"{report.error}; nothing written (use --on-error skip to convert the rest)")
            rows = events.size
            events = to_hftbacktest_order(events)
            written = save_npz(target, events)
            counts = np.bincount(kinds(events), minlength=256)
            n_events = int(events.size)
        else:  # streamed: one chunk in memory, the rows spooled beside the target
            writer = NpzWriter(target)
            readers: list[EventReader] = []
            counts = np.zeros(256, np.int64)
            try:
                for chunk in source_chunks(files, on_error=on_error, readers=readers):  # type: ignore[arg-type]
                    writer.add(chunk)
                    counts += np.bincount(kinds(chunk), minlength=256)
            except DataError:
                writer.abort()
                report = combine_reports([r.report for r in readers])
                fail(f"{report.error}; nothing written (use --on-error skip to convert the rest)")
            except BaseException:
                writer.abort()
                raise
            report = combine_reports([r.report for r in readers])
            written = writer.close()
            rows = n_events = writer.rows
    by_kind = {KIND_NAMES.get(c, str(c)): int(counts[c]) for c in np.flatnonzero(counts).tolist()}
    doc = {"out": str(written), "events": n_events, "split_rows": int(n_events - rows),
           "by_kind": by_kind, "read_report": report.to_dict()}  # fmt: skip
    if json_out:
        print_json(doc)
    else:
        kinds_text = ", ".join(f"{n} {c:,}" for n, c in by_kind.items())
        split = f"; {n_events - rows:,} rows split into exchange and local copies" if hftbacktest_order else ""
        out_console.print(f"wrote {written}: {n_events:,} events ({kinds_text}) from {report.path}{split}")
    for w in report.warnings:
        warn(w)
    if report.skip_summary():
        warn(str(report.skip_summary()))


__all__ = ["convert_cmd"]
