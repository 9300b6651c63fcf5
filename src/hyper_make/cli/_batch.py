"""What every batch command shares: ``--ray`` / ``--retries``, the executor they choose, the progress bar with an
ETA, and the report of runs that failed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .._json import to_jsonable
from ..batch import LocalExecutor, RayExecutor, make_executor
from ..batch.items import TaskFailure, describe_item
from ..errors import InvalidParameterError
from ._common import checked, err_console, warn

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run the batch on a Ray cluster: 'auto' (the one this machine is in) or HOST:PORT of a running head "
        "(pip install 'hyper_make[cluster]'); same seeds, same results as local processes.",
    ),
]
Retries = Annotated[
    int,
    typer.Option(
        help="Runs again a run whose worker died or that raised, up to this many times [0, 100]; one that fails "
        "every attempt is reported (failures.json) while the rest complete.",
        callback=checked(lo=0, hi=100, integer=True),
    ),
]


def executor_for(ray: str | None, workers: int | None, retries: int, *, ship_data: bool = False) -> \
        LocalExecutor | RayExecutor:  # fmt: skip
    """The executor of a batch command (raises a one-line error for a bad address or a missing Ray)."""
    if ship_data and ray is None:
        raise InvalidParameterError("'--ship-data' sends the files through Ray's object store: give '--ray' too")
    ex = make_executor(ray, workers, retries=retries, keep_going=True, ship_data=ship_data)
    if isinstance(ex, RayExecutor):
        ex.connect()
    return ex


@contextlib.contextmanager
def progress(label: str, total: int, done: int = 0, *, quiet: bool = False) -> Iterator[Callable[[], None]]:
    """A Rich bar on stderr (done/total, elapsed, ETA); yields the function that advances it by one."""
    with Progress(
        TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=err_console, transient=quiet,
        disable=not err_console.is_terminal and quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=total, completed=done)
        yield lambda: bar.advance(task)


def failure_doc(failure: TaskFailure) -> dict[str, Any]:
    """A failed run as JSON: its description, the error, the attempts, and the item's fields (config and seed)."""
    import dataclasses

    item = failure.item
    fields = dataclasses.asdict(item) if dataclasses.is_dataclass(item) and not isinstance(item, type) else repr(item)
    return {"run": describe_item(item), "error": failure.error, "attempts": failure.attempt, "item": fields}


def batch_notes(executor: Any) -> list[str]:
    """Report lines: where the runs ran, what was retried, what failed."""
    notes = [f"executor: {executor.describe()}"]
    if executor.retried:
        shown = "; ".join(f.describe() for f in executor.retried[:5])
        more = " ..." if len(executor.retried) > 5 else ""
        notes.append(f"RETRIED {len(executor.retried)} attempts (each run again): {shown}{more}")
    if executor.failures:
        notes.insert(0, f"FAILED {len(executor.failures)} runs (every attempt; see failures.json): "
                     + "; ".join(f.describe() for f in executor.failures[:3]))  # fmt: skip
    return notes


def write_failures(out: Path, executor: Any) -> Path | None:
    """``failures.json`` in ``out``: the runs that failed and the attempts retried (removed when there are none)."""
    path = Path(out) / "failures.json"
    if not executor.failures and not executor.retried:
        path.unlink(missing_ok=True)
        return None
    doc = {"failed": [failure_doc(f) for f in executor.failures],
           "retried": [failure_doc(f) for f in executor.retried]}  # fmt: skip
    path.write_text(json.dumps(to_jsonable(doc), indent=1, default=repr) + "\n", encoding="utf-8")
    return path


def warn_failures(executor: Any, what: Sequence[str] = ()) -> None:
    """One warning line per failed run on stderr."""
    for f in executor.failures:
        warn(f"run failed on every attempt: {f.describe()}")
    for line in what:
        warn(line)
