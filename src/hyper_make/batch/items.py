"""What every executor shares: the protocol, the record of a run that failed, and data files a work item reads.

An executor maps a top-level function over small picklable work items and yields ``(item, result)`` pairs **as
they finish**, in any order; the caller writes each result down as it arrives (so a stop loses nothing finished)
and orders them itself where order matters. A run that raises is retried up to ``retries`` times; one that still
fails is kept in ``executor.failures`` (:class:`TaskFailure`: the item, so its config and seed, and the error)
while the rest complete, and every retried attempt is in ``executor.retried``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(item)`` for every item and yields ``(item, result)`` as each finishes (any order)."""

    #: runs that failed on every attempt (filled while iterating)
    failures: list[TaskFailure]
    #: attempts that failed and were run again (filled while iterating)
    retried: list[TaskFailure]

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]: ...


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """One failed attempt of a work item: the item, what went wrong (one line), the attempt number (1 = first)."""

    item: Any
    error: str
    attempt: int

    def describe(self) -> str:
        """``<the item's description>: <error> (attempt n)``; the description is ``item.describe()`` if it has one."""
        return f"{describe_item(self.item)}: {self.error} (attempt {self.attempt})"


def describe_item(item: Any) -> str:
    """A short line naming a work item (``item.describe()`` when it has one, else its ``repr`` cut at 200 chars)."""
    d = getattr(item, "describe", None)
    text = d() if callable(d) else repr(item)
    return text if len(text) <= 200 else text[:197] + "..."


def error_line(exc: BaseException) -> str:
    """``ExcType: first sentence of the message`` (at most 200 characters), for a failure report."""
    msg = str(exc).strip().splitlines()
    if not msg:
        return type(exc).__name__
    first = msg[0].split(". ")[0]
    return f"{type(exc).__name__}: {first if len(first) <= 200 else first[:197] + '...'}"


class DataItem(Protocol):
    """A work item that reads data files: the executor may ship them (``RayExecutor(ship_data=True)``) and give the
    worker the item with its paths replaced by local copies."""

    def data_paths(self) -> tuple[str, ...]: ...

    def with_data_paths(self, mapping: Mapping[str, str]) -> Any: ...


def data_paths(item: Any) -> tuple[str, ...]:
    """The data files ``item`` reads (empty for an item without :meth:`DataItem.data_paths`)."""
    f = getattr(item, "data_paths", None)
    return tuple(f()) if callable(f) else ()


__all__ = ["DataItem", "Executor", "TaskFailure", "data_paths", "describe_item", "error_line"]
