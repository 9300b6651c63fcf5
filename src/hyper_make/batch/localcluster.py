"""A real Ray cluster on this machine (for the tests, the benchmark, or to try ``--ray`` on a laptop): a head and
worker nodes, each ``ray start --block`` in its own process group (so stopping it kills exactly the processes it
started, never another user's Ray), on free ports, with a small object store and no dashboard. The head is
reached at ``127.0.0.1:PORT``; Ray registers the nodes under the machine's own address (it turns ``127.0.0.1``
into it, ``ray._private.services.resolve_ip_for_localhost``), so every byte stays on this machine but the ports
listen on its interface too.

    with LocalCluster().start() as c:      # a head and one worker node, 1 CPU each
        run_grid(plan, log, executor=RayExecutor(c.address))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def ray_binary() -> str:
    """The ``ray`` CLI of this interpreter's environment."""
    local = Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


#: Every port a node opens, as ``ray start`` options (worker processes get a range of their own).
_NODE_PORTS = ("--node-manager-port", "--object-manager-port", "--metrics-export-port",
               "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port")  # fmt: skip


class LocalCluster:
    """``start()`` a head (1 CPU) and a worker node (1 CPU, ``HM_NODE=worker`` in its environment); ``address`` is
    the head's ``127.0.0.1:PORT``; ``kill_worker()`` SIGKILLs the worker node; ``stop()`` ends everything."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hmray"))  # short: Ray's socket paths must stay < 108 chars
        self.procs: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.port = 0

    def _start(self, args: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # the nodes' own temp dir (shipped data copies land there): removed with the cluster
        (self.tmp / "tmp").mkdir(exist_ok=True)
        env = {"TMPDIR": str(self.tmp / "tmp"), **(env or {})}
        with (self.tmp / log).open("ab") as fh:
            p = subprocess.Popen(
                [ray_binary(), "start", *args, "--num-cpus", "1", "--object-store-memory", "80000000", "--block",
                 "--disable-usage-stats"],
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **env},
            )  # fmt: skip
        self.procs.append(p)
        return p

    def _ports(self, n_workers: int = 8) -> list[str]:
        ports = free_ports(len(_NODE_PORTS) + 1)
        lo = ports.pop()
        args = [x for opt, p in zip(_NODE_PORTS, ports, strict=True) for x in (opt, str(p))]
        # a range of worker ports above a free one (any taken port in it is skipped by Ray)
        return [*args, "--min-worker-port", str(max(lo, 20000)), "--max-worker-port", str(max(lo, 20000) + n_workers)]

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, worker: bool = True) -> LocalCluster:
        """Start the head (and, with ``worker``, one worker node); returns when they are up."""
        self.port, client, dash = free_ports(3)
        self._start(["--head", "--port", str(self.port), "--node-ip-address", "127.0.0.1", "--temp-dir", str(self.tmp),
                     "--include-dashboard", "false", "--ray-client-server-port", str(client), "--dashboard-port",
                     str(dash), *self._ports()], "head.log")  # fmt: skip
        if worker:
            self.start_worker()
        self.wait_nodes(2 if worker else 1)
        return self

    @property
    def address(self) -> str:
        """The head's ``127.0.0.1:PORT`` (what ``--ray`` takes)."""
        return f"127.0.0.1:{self.port}"

    def start_worker(self) -> None:
        """Start one worker node (1 CPU, ``HM_NODE=worker`` in its processes' environment)."""
        self.worker = self._start(["--address", self.address, "--node-ip-address", "127.0.0.1", *self._ports()],
                                  "worker.log", env={"HM_NODE": "worker"})  # fmt: skip

    def wait_nodes(self, n: int, timeout_s: float = 60.0) -> None:
        """Wait until ``n`` nodes are alive (this process joins the cluster as its driver to ask)."""
        import ray

        t0 = time.monotonic()
        while not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="ERROR")
            except ConnectionError:
                if time.monotonic() - t0 > timeout_s:
                    raise
                time.sleep(0.2)
        while sum(1 for x in ray.nodes() if x.get("Alive")) < n:
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError(f"the Ray cluster did not get {n} nodes in {timeout_s:g} s: "
                                   f"{(self.tmp / 'head.log').read_text()[-2000:]}")  # fmt: skip
            time.sleep(0.1)

    def kill_worker(self) -> None:
        """SIGKILL the worker node: its raylet and its worker processes die at once."""
        assert self.worker is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)

    def stop(self) -> None:
        """End every process this cluster started (their process groups), then remove its temp dir."""
        with contextlib.suppress(Exception):
            import ray

            ray.shutdown()
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        t0 = time.monotonic()
        for p in self.procs:
            try:
                p.wait(max(0.1, 3 - (time.monotonic() - t0)))  # a graceful stop takes ~10 s: not worth it
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)  # what did not end on SIGTERM, and children left in the group
        for p in self.procs:  # reap them: a process still ending can write its logs again
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(2)
        shutil.rmtree(self.tmp, ignore_errors=True)
        # this process's Ray client may still touch the session folder as it exits: remove it again then
        atexit.register(shutil.rmtree, self.tmp, True)
