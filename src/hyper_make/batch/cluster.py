"""A Ray cluster as the executor: the same work items and function as :class:`~hyper_make.batch.local.LocalExecutor`,
run on the cluster's workers (``--ray auto`` or ``--ray HOST:PORT`` of a running head).

* Results stream back as they finish (``ray.wait`` one at a time), at most ``in_flight_per_cpu × cluster CPUs``
  tasks are out at once, so the driver's memory stays flat in the number of items.
* Same items, same function, same seeds → the same results as the local executor, bit for bit: a work item holds
  everything its run depends on, and nothing in a run depends on where it runs.
* A task whose worker died (``WorkerCrashedError``, ``NodeDiedError``, a lost result) or that raised is submitted
  again by the driver, up to ``retries`` times (Ray's own ``max_retries`` is 0: a retry Ray made silently could
  not be reported); each retried attempt is in :attr:`RayExecutor.retried`, a task that failed every attempt in
  :attr:`RayExecutor.failures`, and the rest complete.
* Data files: by default the workers read an item's paths themselves (a shared path: NFS, the same disk on every
  node). With ``ship_data`` the driver reads each file once, puts its bytes in Ray's object store, and every node
  writes one local copy that its workers read instead (the item's paths replaced, :class:`~.items.DataItem`).

Ray is imported inside the functions only (the ``cluster`` extra): importing this module costs nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InvalidParameterError
from .items import TaskFailure, data_paths, error_line
from .local import check_retries

T = TypeVar("T")
R = TypeVar("R")

#: The one-line error when Ray is missing.
NO_RAY = "'--ray' needs Ray, which is not installed: pip install 'hyper_make[cluster]'"


def import_ray() -> Any:
    """The ``ray`` module, or :class:`InvalidParameterError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(NO_RAY) from None
    return ray


def check_address(address: str, option: str = "--ray") -> str:
    """``address`` checked: ``auto`` or ``HOST:PORT`` (port in [1, 65535])."""
    if address == "auto":
        return address
    m = re.fullmatch(r"(?:ray://)?([A-Za-z0-9.\-_\[\]:]+):(\d{1,5})", address or "")
    if not m or not 1 <= int(m.group(2)) <= 65535:
        raise InvalidParameterError(
            f"'{option}' must be 'auto' or HOST:PORT of a running Ray head (port in [1, 65535]); got {address!r}"
        )
    return address


def _local_copies(shipped: Mapping[str, Any]) -> dict[str, str]:
    """On a worker: each shipped file written once per node (under the temp dir, named by its object id); path ->
    local copy."""
    import ray

    out = {}
    for path, ref in shipped.items():
        folder = Path(tempfile.gettempdir()) / "hyper_make-shipped" / ref.hex()
        local = folder / Path(path).name
        if not local.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{local.name}.{os.getpid()}"
            tmp.write_bytes(ray.get(ref))
            os.replace(tmp, local)  # atomic: another worker of the node reads a whole file or writes its own
        out[path] = str(local)
    return out


def _run_remote(fn: Callable[[Any], Any], item: Any, shipped: Mapping[str, Any] | None) -> Any:
    """The task: ``fn(item)``, with the shipped files' local copies in place of their paths."""
    if shipped:
        item = item.with_data_paths(_local_copies(shipped))
    return fn(item)


class RayExecutor:
    """Runs the items on a Ray cluster; see the module docstring.

    Parameters
    ----------
    address : ``auto`` (the cluster this machine belongs to) or ``HOST:PORT`` of the head's GCS.
    retries : attempts after the first, for a task whose worker died or that raised, in [0, 100].
    keep_going : a task that failed every attempt goes to :attr:`failures` and the others go on (else: raised).
    in_flight_per_cpu : tasks out at once per CPU of the cluster, ``>= 1``.
    ship_data : ship the items' data files through the object store instead of reading them from a shared path.
    num_cpus : CPUs one task takes on a worker (Ray's resource accounting), ``> 0``.
    """

    def __init__(
        self,
        address: str = "auto",
        *,
        retries: int = 2,
        keep_going: bool = True,
        in_flight_per_cpu: int = 2,
        ship_data: bool = False,
        num_cpus: float = 1.0,
    ) -> None:
        self.address = check_address(address)
        self.retries = check_retries(retries)
        if isinstance(in_flight_per_cpu, bool) or not isinstance(in_flight_per_cpu, int) or in_flight_per_cpu < 1:
            raise InvalidParameterError(f"'in_flight_per_cpu' must be an integer >= 1; got {in_flight_per_cpu!r}")
        if not num_cpus > 0:
            raise InvalidParameterError(f"'num_cpus' must be > 0; got {num_cpus!r}")
        self.keep_going = keep_going
        self.in_flight_per_cpu = in_flight_per_cpu
        self.ship_data = ship_data
        self.num_cpus = float(num_cpus)
        self.failures: list[TaskFailure] = []
        self.retried: list[TaskFailure] = []
        self._shipped: dict[str, Any] = {}
        self._connected_here = False

    def connect(self) -> Any:
        """Join the cluster (once per process); the ``ray`` module. One-line errors when Ray is missing or the
        address has no running head."""
        ray = import_ray()
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise InvalidParameterError(f"'--ray {self.address}': no Ray cluster to join ({msg})") from None
            self._connected_here = True
        return ray

    def cpus(self) -> int:
        """CPUs of the cluster now (at least 1)."""
        ray = self.connect()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def describe(self) -> str:
        """One line for a report: where the runs ran."""
        ray = self.connect()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return f"ray {self.address}: {len(nodes)} nodes, {self.cpus()} CPUs"

    def close(self) -> None:
        """Leave the cluster if this executor joined it (the cluster keeps running)."""
        if self._connected_here:
            import ray

            ray.shutdown()
            self._connected_here = False
            self._shipped.clear()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ship(self, ray: Any, item: Any) -> dict[str, Any] | None:
        if not self.ship_data:
            return None
        out = {}
        for p in data_paths(item):
            if p not in self._shipped:  # each file once per batch, whatever the number of items reading it
                self._shipped[p] = ray.put(Path(p).read_bytes())
            out[p] = self._shipped[p]
        return out or None

    def _failed(self, item: T, exc: BaseException, attempt: int) -> bool:
        f = TaskFailure(item, error_line(_cause(exc)), attempt)
        if attempt <= self.retries:
            self.retried.append(f)
            return True
        if not self.keep_going:
            raise _cause(exc)
        self.failures.append(f)
        return False

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Yield ``(item, fn(item))`` as each finishes on the cluster (any order)."""
        ray = self.connect()
        remote = ray.remote(num_cpus=self.num_cpus, max_retries=0, retry_exceptions=False)(_run_remote)
        limit = self.in_flight_per_cpu * self.cpus()
        todo = iter(items)
        pending: dict[Any, tuple[T, int]] = {}

        def submit(item: T, attempt: int) -> None:
            pending[remote.remote(fn, item, self._ship(ray, item))] = (item, attempt)

        try:
            for item in todo:
                submit(item, 1)
                if len(pending) >= limit:
                    break
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    item, attempt = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except (ray.exceptions.RayError, Exception) as exc:
                        if self._failed(item, exc, attempt):
                            submit(item, attempt + 1)
                            continue
                        result = _FAILED
                    for nxt in todo:  # one more in, for the one out
                        submit(nxt, 1)
                        break
                    if result is not _FAILED:
                        yield item, result
        except BaseException:
            # Ctrl-C, a raised failure, or the caller closing the generator: cancel what is out
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:
                    pass
            raise


_FAILED = object()


def _cause(exc: BaseException) -> BaseException:
    """The error raised in the task (Ray wraps it in a ``RayTaskError``), else ``exc``."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


__all__ = ["NO_RAY", "RayExecutor", "check_address", "import_ray"]
