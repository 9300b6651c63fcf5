"""Where a batch of independent runs executes: the seam between *what* to run (small picklable work items) and
*where* (local processes today; another executor can take the same items and the same function elsewhere).

An executor maps a top-level function over work items and yields ``(item, result)`` pairs **as they finish**, in
any order; the caller writes each result down as it arrives (so a stop loses nothing finished) and orders them
itself where order matters. Ctrl-C in the driver cancels what has not started and re-raises
:class:`KeyboardInterrupt` after the pairs already yielded; the workers ignore SIGINT, so a finished run is never
half-written by a worker that died on the signal.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol, TypeVar

from ..errors import InvalidParameterError

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn(item)`` for every item and yields ``(item, result)`` as each finishes (any order)."""

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]: ...


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """Local worker processes (``workers`` of them, default every CPU; 1 = in this process, no pool).

    At most ``in_flight_per_worker × workers`` items are submitted at once, so the driver's memory stays flat in the
    number of items and Ctrl-C has little to cancel. ``fn`` and the items must pickle (``fn`` a module-level
    function) when ``workers > 1``.
    """

    def __init__(self, workers: int | None = None, *, in_flight_per_worker: int = 4) -> None:
        n = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidParameterError(f"'workers' must be an integer >= 1; got {workers!r}")
        if in_flight_per_worker < 1:
            raise InvalidParameterError(f"'in_flight_per_worker' must be >= 1; got {in_flight_per_worker!r}")
        self.workers = n
        self.in_flight = n * in_flight_per_worker

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Yield ``(item, fn(item))`` as each finishes; in submission order when ``workers == 1``."""
        if self.workers == 1:
            for item in items:
                yield item, fn(item)
            return
        todo = iter(items)
        with ProcessPoolExecutor(max_workers=self.workers, initializer=_ignore_sigint) as pool:
            pending: dict[Future[R], T] = {}
            try:
                for item in todo:
                    pending[pool.submit(fn, item)] = item
                    if len(pending) >= self.in_flight:
                        break
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        item = pending.pop(fut)
                        for nxt in todo:  # one more in, for the one out
                            pending[pool.submit(fn, nxt)] = nxt
                            break
                        yield item, fut.result()
            except BaseException:
                # Ctrl-C, an error in a run, or the caller closing the generator: start nothing more
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise


__all__ = ["Executor", "LocalExecutor"]
