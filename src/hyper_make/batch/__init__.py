"""Where a batch of independent runs executes: the one seam between *what* to run (small picklable work items:
config + seed + data reference) and *where* (local processes, or a Ray cluster).

Every batch goes through it: ``simulate`` paths and regime grids, ``backtest`` over files, ``tune`` trials.

* :mod:`.items`: the :class:`Executor` protocol, :class:`TaskFailure`, data files of an item;
* :mod:`.local`: :class:`LocalExecutor` (local processes, the default; nothing to install or start);
* :mod:`.cluster`: :class:`RayExecutor` (``--ray auto`` or ``HOST:PORT``; the ``cluster`` extra).
"""

from __future__ import annotations

from .cluster import RayExecutor
from .items import Executor, TaskFailure
from .local import LocalExecutor


def make_executor(ray: str | None = None, workers: int | None = None, *, retries: int = 2,
                  keep_going: bool = True, ship_data: bool = False) -> LocalExecutor | RayExecutor:  # fmt: skip
    """``RayExecutor(ray)`` when an address is given (``workers`` then refused), else ``LocalExecutor(workers)``.

    Both retry a failed run ``retries`` times and, with ``keep_going``, let the rest finish.
    """
    from ..errors import InvalidParameterError

    if ray is not None:
        if workers is not None:
            raise InvalidParameterError(
                "give '--ray ADDRESS' or '--workers N', not both (the cluster sets the workers)"
            )
        return RayExecutor(ray, retries=retries, keep_going=keep_going, ship_data=ship_data)
    return LocalExecutor(workers, retries=retries, keep_going=keep_going)


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "TaskFailure", "make_executor"]
