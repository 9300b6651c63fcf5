"""Backtest over files as a batch: each file replayed on its own (every allocator, a flat position, its own book)
as one work item of the executor seam (:mod:`hyper_make.batch`: local processes or a Ray cluster).

A work item (:class:`FileRun`) holds the file's path, the allocators' names, the config and the replay settings:
all a worker needs. A worker reads the file from a shared path, or from its node's copy when the executor ships
the data (:class:`~hyper_make.batch.items.DataItem`). Each finished file's results are written to
``<out>/batch/<index>.pkl`` as they arrive (atomically); a rerun into the same folder with the same files and
settings (``batch/manifest.json``) loads those and replays only the rest. Results are combined in file order, so
the report does not depend on the order the files finished in, nor on where they ran.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._json import to_jsonable
from ..config import AppConfig
from ..errors import InvalidParameterError
from .replay import ReplayConfig, ReplayResult, run_backtest

FORMAT = "hyper-make backtest batch 1"
FOLDER = "batch"


@dataclass(frozen=True, slots=True)
class FileRun:
    """One work item: every allocator of ``allocators`` replayed on file ``path`` (number ``index`` of the batch)
    from a flat position, with ``app`` (models, account, allocator options) and ``config`` (latency, queue, seed)."""

    index: int
    path: str
    allocators: tuple[str, ...]
    app: AppConfig
    config: ReplayConfig
    on_error: str = "stop"

    def describe(self) -> str:
        """``file #i <path>, seed S`` (a failure report names the run by it)."""
        return f"file #{self.index} {self.path}, seed {self.config.seed}"

    def data_paths(self) -> tuple[str, ...]:
        """The file the run reads."""
        return (self.path,)

    def with_data_paths(self, mapping: Mapping[str, str]) -> FileRun:
        """The same run reading a local copy."""
        return dataclasses.replace(self, path=mapping.get(self.path, self.path))


@dataclass(frozen=True, slots=True, eq=False)
class FileResult:
    """What a file's replay gives back: per allocator its :class:`ReplayResult`, the read report, and the book's
    warm-up (s; 0 with a snapshot)."""

    results: dict[str, ReplayResult]
    report: Any
    book_warmup_s: float


def run_file(item: FileRun) -> FileResult:
    """Replay one file (the function the executor maps)."""
    allocs = {n: item.app.make_allocator(n) for n in item.allocators}
    info: dict[str, float] = {}
    results, report = run_backtest(item.path, allocs, app=item.app, config=item.config, on_error=item.on_error,  # type: ignore[arg-type]
                                   info=info)  # fmt: skip
    return FileResult(results, report, info.get("book_warmup_s", 0.0))


def plan_files(paths: Sequence[str | Path], allocators: Sequence[str], app: AppConfig, config: ReplayConfig,
               on_error: str = "stop") -> list[FileRun]:  # fmt: skip
    """One :class:`FileRun` per file, in order."""
    if not paths:
        raise InvalidParameterError("a backtest batch needs at least one file")
    return [FileRun(i, str(p), tuple(allocators), app, config, on_error) for i, p in enumerate(paths)]


def batch_manifest(plan: Sequence[FileRun]) -> dict[str, Any]:
    """What identifies a batch: the files (path, size, mtime in ns), allocators, config and settings."""
    first = plan[0]
    files = []
    for it in plan:
        st = Path(it.path).stat()
        files.append({"path": it.path, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    doc = {"format": FORMAT, "files": files, "allocators": list(first.allocators), "on_error": first.on_error,
           "config": dataclasses.asdict(first.config), "app": repr(first.app)}  # fmt: skip
    return json.loads(json.dumps(to_jsonable(doc), default=repr))


class FileLog:
    """``<out>/batch/``: the manifest and one pickle per finished file. Another batch's folder is refused."""

    def __init__(self, out: Path, doc: Mapping[str, Any]) -> None:
        self.folder = Path(out) / FOLDER
        man = self.folder / "manifest.json"
        self.done: dict[int, FileResult] = {}
        if man.exists():
            old = json.loads(man.read_text(encoding="utf-8"))
            if old != dict(doc):
                key = next((k for k in doc if old.get(k) != doc[k]), "format")
                raise InvalidParameterError(
                    f"report folder {out} holds another backtest batch ({FOLDER}/manifest.json differs in {key!r}); "
                    "rerun with the same files and options to resume, or use another --out"
                )
            for f in sorted(self.folder.glob("*.pkl")):
                try:
                    with f.open("rb") as fh:
                        self.done[int(f.stem)] = pickle.load(fh)
                except Exception:  # a file cut by a stop: its run is done again
                    f.unlink()
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            man.write_text(json.dumps(dict(doc), indent=1) + "\n", encoding="utf-8")
        self.resumed = len(self.done)

    def append(self, index: int, result: FileResult) -> None:
        """Write one finished file's results (atomically: a stop leaves the old state or the new one)."""
        tmp = self.folder / f".{index}.pkl.{os.getpid()}"
        with tmp.open("wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.folder / f"{index}.pkl")
        self.done[index] = result


def run_files(
    plan: Sequence[FileRun],
    log: FileLog,
    executor: Any,
    on_done: Callable[[FileRun], None] | None = None,
    task: Callable[[FileRun], FileResult] | None = None,
) -> bool:
    """Run the files of ``plan`` not yet in ``log``, writing each as it finishes; True if Ctrl-C stopped it."""
    todo = [it for it in plan if it.index not in log.done]
    gen = executor.imap_unordered(task or run_file, todo)
    try:
        try:
            for item, res in gen:
                log.append(item.index, res)
                if on_done:
                    on_done(item)
        finally:
            gen.close()
    except KeyboardInterrupt:
        return True
    return False


def results_digest(results: Mapping[str, ReplayResult]) -> str:
    """A SHA-256 of the allocators' metrics, fills and equity (for checking two runs gave the same results)."""
    h = hashlib.sha256()
    for name in sorted(results):
        r = results[name]
        h.update(name.encode())
        h.update(json.dumps(to_jsonable(r.metrics()), sort_keys=True).encode())
        for f in dataclasses.fields(r.fills):
            h.update(np.ascontiguousarray(getattr(r.fills, f.name)).tobytes())
        for x in r.equity:
            h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class FoldRun:
    """One walk-forward fold as a work item: calibrate and train on ``train``, judge every allocator of
    ``allocators`` on ``test`` (:func:`~hyper_make.backtest.walkforward.walk_forward`), the block bootstrap's block
    ``block_s`` (s). ``index`` numbers the fold (it doubles as the file index of :class:`FileLog`)."""

    index: int
    train: str
    test: str
    allocators: tuple[str, ...]
    app: AppConfig
    config: ReplayConfig
    block_s: float = 60.0
    on_error: str = "stop"

    def describe(self) -> str:
        """``fold #i train <path> test <path>, seed S``."""
        return f"fold #{self.index} train {self.train} test {self.test}, seed {self.config.seed}"

    def data_paths(self) -> tuple[str, ...]:
        """The two files the fold reads."""
        return (self.train, self.test)

    def with_data_paths(self, mapping: Mapping[str, str]) -> FoldRun:
        """The same fold reading local copies."""
        return dataclasses.replace(self, train=mapping.get(self.train, self.train),
                                   test=mapping.get(self.test, self.test))  # fmt: skip


@dataclass(frozen=True, slots=True)
class FoldResult:
    """A fold's outcome, small enough to ship back: per allocator its test metrics (as ``backtest`` reports them)
    and its block-bootstrap interval of the test PnL (USD: ``total``, ``lo``, ``hi``, ``se``)."""

    metrics: dict[str, dict[str, float]]
    intervals: dict[str, dict[str, float]]
    notes: tuple[str, ...]


def run_fold(item: FoldRun) -> FoldResult:
    """Walk-forward on one fold (the function the executor maps)."""
    from .walkforward import walk_forward

    allocs = {n: item.app.make_allocator(n) for n in item.allocators}
    res = walk_forward(item.train, item.test, allocs, app=item.app, config=item.config, block_s=item.block_s,
                       on_error=item.on_error)  # fmt: skip
    return FoldResult({n: r.metrics() for n, r in res.results.items()}, dict(res.intervals), tuple(res.notes))


def plan_folds(paths: Sequence[str | Path], allocators: Sequence[str], app: AppConfig, config: ReplayConfig,
               block_s: float = 60.0, on_error: str = "stop") -> list[FoldRun]:  # fmt: skip
    """Rolling folds over files in time order: fold ``k`` trains on file ``k`` and is judged on file ``k + 1``."""
    if len(paths) < 2:
        raise InvalidParameterError(f"a rolling walk-forward needs at least two files (train, test); got {len(paths)}")
    return [FoldRun(k, str(paths[k]), str(paths[k + 1]), tuple(allocators), app, config, block_s, on_error)
            for k in range(len(paths) - 1)]  # fmt: skip


def fold_manifest(plan: Sequence[FoldRun]) -> dict[str, Any]:
    """What identifies a rolling walk-forward: :func:`batch_manifest` of its files, plus the block."""
    files = [FileRun(0, it.train, it.allocators, it.app, it.config, it.on_error) for it in plan]
    files.append(FileRun(0, plan[-1].test, plan[0].allocators, plan[0].app, plan[0].config, plan[0].on_error))
    return {**batch_manifest(files), "format": FORMAT + " rolling", "block_s": plan[0].block_s}


__all__ = [
    "FileLog",
    "FileResult",
    "FileRun",
    "FoldResult",
    "FoldRun",
    "batch_manifest",
    "fold_manifest",
    "plan_files",
    "plan_folds",
    "results_digest",
    "run_file",
    "run_files",
    "run_fold",
]  # fmt: skip
