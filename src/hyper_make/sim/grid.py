"""Regime grid: every allocator on paired seeds in each regime of a grid file, streamed to a report folder that a
rerun resumes.

A grid file names regimes as dotted overrides of ``[sim.market]``, ``[sim.strategy]`` and ``[ladder]`` over the
base configuration (preset, ``--config`` and the command-line options)::

    [grid.axes]                              # the product of these axes (names made from the values)
    "sim.market.maker_fee_bps" = [0.0, 1.5]
    "sim.market.informed_frac" = [0.1, 0.3]

    [[grid.regime]]                          # and/or explicit regimes
    name = "rebate"
    "sim.market.maker_fee_bps" = -0.2

The batch is a list of small self-describing work items (:class:`GridRun`: the regime's resolved config, the
allocator and its options, the path's seed) run by :func:`run_item` through an executor (:mod:`hyper_make.batch`:
local processes or a Ray cluster, the same items and results on either). Each
finished run is one JSON line of ``runs.jsonl`` in the report folder, written as it arrives; ``grid.json`` holds
what identifies the batch, and a rerun into the same folder checks it, skips the runs already there and computes
the rest. Metrics are computed from the records in path order, so a resumed report equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._json import to_jsonable
from ..batch import Executor, LocalExecutor
from ..config import AppConfig, apply_overrides, read_toml
from ..errors import ConfigError, DataError, InvalidParameterError
from ..ladder import LadderConfig
from ..metrics import paired_ci
from ..report import new_figure, save_figure, write_report
from .config import MarketConfig, SimConfig, StrategyConfig
from .montecarlo import Tournament, path_seed
from .strategy import PathResult, run_path

#: The sections a regime may override, as dotted key prefixes.
SECTIONS = ("sim.market", "sim.strategy", "ladder")
#: ``[sim.strategy]`` fields that are set elsewhere (the key to use instead).
_STRATEGY_ELSEWHERE = {"ladder": "'ladder.<field>'", "quoter": "the base --config's [quoter]"}
#: Version of the report folder's files; a folder written by another version is not resumed.
FORMAT = "hyper-make grid 1"
MANIFEST = "grid.json"
RUNS = "runs.jsonl"


def valid_keys() -> dict[str, list[str]]:
    """Per section prefix, the fields a regime may override (``ladder`` fields take sub-keys: ``ladder.grid.x``)."""
    return {
        "sim.market": [f.name for f in dataclasses.fields(MarketConfig) if f.init],
        "sim.strategy": [f.name for f in dataclasses.fields(StrategyConfig) if f.init and f.name not in
                         _STRATEGY_ELSEWHERE],
        "ladder": [f.name for f in dataclasses.fields(LadderConfig) if f.init],
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Regime:
    """One regime: its name and its overrides (dotted key -> value as in the grid file; units those of the field)."""

    name: str
    overrides: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Grid:
    """The regimes of a grid file, in file order (the axes' product first, then the explicit regimes)."""

    source: str
    regimes: tuple[Regime, ...]
    #: the ``[grid.axes]``: (dotted key, values) in file order; their product is ``regimes[:Π len(values)]``
    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()


# ---- the grid file -------------------------------------------------------------------------------------------
def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file: every key a known field, every axis a non-empty list of one type, names unique.

    Raises
    ------
    ConfigError
        One line naming the file, the table, the bad key and the valid ones.
    """
    try:
        raw = read_toml(path)
    except ConfigError as exc:  # read_toml names a "config file"
        raise ConfigError(str(exc).replace("config file", "grid file", 1)) from None
    return parse_grid(raw, str(path))


def parse_grid(raw: Mapping[str, Any], source: str = "grid file") -> Grid:
    """:func:`load_grid` on an already parsed TOML document; ``source`` names it in the messages."""
    other = [k for k in raw if k != "grid"]
    if other:
        raise ConfigError(
            f"grid file {source}: unknown section [{other[0]}]; a grid file holds [grid.axes] and [[grid.regime]] "
            "(the base configuration goes in --config)"
        )
    grid = raw.get("grid", {})
    if not isinstance(grid, dict):
        raise ConfigError(f"grid file {source}: 'grid' must be a table; got {type(grid).__name__}")
    bad = [k for k in grid if k not in ("axes", "regime")]
    if bad:
        raise ConfigError(f"grid file {source}: unknown key 'grid.{bad[0]}'; valid keys are ['axes', 'regime']")
    axes = _axes(grid.get("axes", {}), source)
    product = [
        Regime(name=regime_label(ov), overrides=ov)
        for ov in (dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values()))
        if axes
    ]
    regimes = product + _explicit_regimes(grid.get("regime", []), source)
    if not regimes:
        raise ConfigError(
            f"grid file {source}: no regimes (empty product); give [grid.axes] with lists of values and/or "
            "[[grid.regime]] tables"
        )
    seen: set[str] = set()
    for r in regimes:
        if r.name in seen:
            raise ConfigError(f"grid file {source}: two regimes are named {r.name!r}; regime names must be unique")
        seen.add(r.name)
    return Grid(source=source, regimes=tuple(regimes), axes=tuple((k, tuple(v)) for k, v in axes.items()))


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables to dotted keys: quoted (``"sim.market.x" = 1``) and bare (``sim.market.x = 1``) keys alike."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_key(key: str, where: str) -> None:
    """Refuse a dotted key outside :data:`SECTIONS` or naming no field, in one line listing the valid ones."""
    keys = valid_keys()
    section = next((s for s in SECTIONS if key.startswith(s + ".")), None)
    if section is None:
        raise ConfigError(
            f"{where}: unknown key {key!r}; a regime overrides 'sim.market.<field>', 'sim.strategy.<field>' or "
            "'ladder.<field>' (see docs/config.md)"
        )
    rest = key[len(section) + 1 :]
    name = rest.split(".")[0]
    if section == "sim.strategy" and name in _STRATEGY_ELSEWHERE:
        raise ConfigError(f"{where}: key {key!r}: set it with {_STRATEGY_ELSEWHERE[name]}, not here")
    if name not in keys[section] or (section != "ladder" and "." in rest):
        raise ConfigError(f"{where}: unknown key {key!r}; valid {section!r} keys are {keys[section]}")


def _type_of(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "table"}.get(type(v), type(v).__name__)


def _axes(axes: Any, source: str) -> dict[str, list[Any]]:
    where = f"grid file {source}, [grid.axes]"
    if not isinstance(axes, dict):
        raise ConfigError(f"{where}: must be a table of 'key' = [values]; got {type(axes).__name__}")
    flat: dict[str, Any] = {}
    for k, v in axes.items():
        # a bare dotted key (sim.market.x = [...]) is a nested table whose leaves are the axes
        flat.update(_flatten(v, k + ".") if isinstance(v, dict) else {k: v})
    values: dict[str, list[Any]] = {}
    for key, vals in flat.items():
        check_key(key, where)
        if not isinstance(vals, list):
            raise ConfigError(f"{where}: axis {key!r} must be a list of values; got {vals!r}")
        if not vals:
            raise ConfigError(f"{where}: axis {key!r} is empty, so the product is empty; give at least one value")
        types = sorted({_type_of(v) for v in vals})
        if len(types) > 1:
            raise ConfigError(f"{where}: axis {key!r} mixes types ({' and '.join(types)}); give values of one type")
        values[key] = vals
    return values


def _explicit_regimes(tables: Any, source: str) -> list[Regime]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"grid file {source}: 'grid.regime' must be an array of tables ([[grid.regime]])")
    out = []
    for i, table in enumerate(tables):
        name = table.get("name")
        where = f"grid file {source}, [[grid.regime]] #{i + 1}" + (f" {name!r}" if isinstance(name, str) else "")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{where}: 'name' must be a non-empty string; got {name!r}")
        ov = _flatten({k: v for k, v in table.items() if k != "name"})
        for key in ov:
            check_key(key, where)
        out.append(Regime(name=name or regime_label(ov) or f"regime-{i + 1}", overrides=ov))
    return out


def regime_label(overrides: Mapping[str, Any]) -> str:
    """The name made from a regime's values, ``field=value,...`` (the field's full key where two share a name)."""
    short = {k: k.rsplit(".", 1)[-1] for k in overrides}
    names = list(short.values())
    return ",".join(f"{short[k] if names.count(short[k]) == 1 else k}={_fmt_value(v)}" for k, v in overrides.items())


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, separators=(",", ":"))


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def apply_regime(base: SimConfig, regime: Regime, where: str = "") -> SimConfig:
    """``base`` with the regime's overrides, validated by the configs' own checks.

    Raises
    ------
    ConfigError
        A bad key or value, prefixed with ``where`` (the grid file and the regime).
    """
    where = where or f"regime {regime.name!r}"
    market: dict[str, Any] = {}
    strategy: dict[str, Any] = {}
    ladder: dict[str, Any] = {}
    for key, value in regime.overrides.items():
        check_key(key, where)
        section = next(s for s in SECTIONS if key.startswith(s + "."))
        rest = key[len(section) + 1 :]
        if section == "sim.market":
            market[rest] = value
        elif section == "sim.strategy":
            strategy[rest] = _tuples(value)
        else:
            node = ladder
            *parents, leaf = rest.split(".")
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{where}: key {key!r} sets a field of 'ladder.{p}', which is also given whole")
            if isinstance(node.get(leaf), dict) and isinstance(value, dict):
                node[leaf] = {**node[leaf], **value}
            else:
                node[leaf] = value
    try:
        lad = (
            apply_overrides(AppConfig(ladder=base.strategy.ladder), {"ladder": ladder}).ladder
            if ladder
            else base.strategy.ladder
        )
        m = dataclasses.replace(base.market, **market)
        s = dataclasses.replace(base.strategy, ladder=lad, **strategy)
    except InvalidParameterError as exc:
        msg = str(exc).splitlines()[0]
        msg = re.sub(r"^(unknown )?config key ", lambda m: "unknown key " if m.group(1) else "", msg)
        raise ConfigError(f"{where}: {msg}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return SimConfig(market=m, strategy=s)


# ---- work items ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GridRun:
    """One work item: one allocator on one seeded path of one regime; all a worker needs, and picklable.

    Attributes
    ----------
    regime : the regime's name; ``config`` its resolved configuration (base + overrides).
    allocator : registered allocator name; ``allocator_options`` its options (``[allocator.<name>]``).
    path : path index in the batch; ``seed`` the market seed of that path (the same for every allocator and
        regime: paired paths), ``path_seed(base_seed, path)``.
    """

    regime: str
    allocator: str
    path: int
    seed: int
    config: SimConfig
    allocator_options: dict[str, Any]

    def describe(self) -> str:
        """``regime R, allocator A, path i, seed S`` (a failure report names the run by it)."""
        return f"regime {self.regime}, allocator {self.allocator}, path {self.path}, seed {self.seed}"

    @property
    def key(self) -> str:
        """Identity of the run in the report folder: ``regime|allocator|path``."""
        return run_key(self.regime, self.allocator, self.path)


def run_key(regime: str, allocator: str, path: int) -> str:
    """``regime|allocator|path``: the identity of one run in ``runs.jsonl``."""
    return f"{regime}|{allocator}|{path}"


def plan_runs(
    grid: Grid,
    base: SimConfig,
    *,
    allocators: Sequence[str],
    paths: int,
    seed: int,
    allocator_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[GridRun]:
    """Every (path, regime, allocator) run, path-major: a stop part-way leaves whole paired paths behind."""
    if isinstance(paths, bool) or not isinstance(paths, int) or paths < 1:
        raise InvalidParameterError(f"'paths' must be an integer >= 1; got {paths!r}")
    if not allocators:
        raise InvalidParameterError("'allocators' must name at least one allocator")
    opts = allocator_options or {}
    cfgs = {r.name: apply_regime(base, r, f"grid file {grid.source}, regime {r.name!r}") for r in grid.regimes}
    return [
        GridRun(regime=r.name, allocator=a, path=i, seed=path_seed(seed, i), config=cfgs[r.name],
                allocator_options=dict(opts.get(a, {})))
        for i in range(paths)
        for r in grid.regimes
        for a in allocators
    ]  # fmt: skip


#: PathResult fields kept in a run's record (the arrays are not: records stay small, the folder flat in run length).
_RESULT_FIELDS = tuple(
    f.name for f in dataclasses.fields(PathResult) if f.name not in ("equity", "shapes", "vol_hist", "tape", "learner")
)


def run_item(item: GridRun) -> dict[str, Any]:
    """Run one work item; its JSON-ready record ``{"key", "regime", "allocator", "path", "seed", "result"}``."""
    r = run_path(item.config, item.allocator, item.seed, allocator_options=item.allocator_options)
    result = to_jsonable({k: getattr(r, k) for k in _RESULT_FIELDS})
    return {"key": item.key, "regime": item.regime, "allocator": item.allocator, "path": item.path,
            "seed": item.seed, "result": result}  # fmt: skip


def _nan(v: Any) -> Any:
    # to_jsonable wrote non-finite floats as null
    if isinstance(v, dict):
        return {k: _nan(x) for k, x in v.items()}
    return math.nan if v is None else v


def record_result(record: Mapping[str, Any]) -> PathResult:
    """The :class:`PathResult` of a record (without the arrays).

    Raises
    ------
    DataError
        The record lacks a field or has one more (written by another version of hyper_make), naming the run.
    """
    result = record.get("result")
    fields = set(result) if isinstance(result, dict) else set()
    if fields != set(_RESULT_FIELDS):
        odd = sorted(set(_RESULT_FIELDS) ^ fields)
        raise DataError(
            f"{RUNS}: the record of run {record.get('key')!r} does not hold the fields this version writes (differs in "
            f"{odd[:3]}); use another --out"
        )
    return PathResult(**{k: _nan(v) for k, v in result.items()})


# ---- the report folder ---------------------------------------------------------------------------------------
def manifest(
    grid: Grid,
    plan: Sequence[GridRun],
    *,
    allocators: Sequence[str],
    paths: int,
    seed: int,
    allocator_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What identifies a batch (``grid.json``): regimes with their overrides and resolved configs, allocators and
    their options, paths, seed. Two batches with the same manifest run the same work items."""
    cfgs = {it.regime: it.config for it in plan}
    doc = {
        "format": FORMAT,
        "allocators": list(allocators),
        "allocator_options": {a: dict((allocator_options or {}).get(a, {})) for a in allocators},
        "paths": paths,
        "seed": seed,
        "regimes": [
            {"name": r.name, "overrides": r.overrides, "config": dataclasses.asdict(cfgs[r.name])} for r in grid.regimes
        ],
    }
    return json.loads(json.dumps(to_jsonable(doc)))


def _first_difference(old: Any, new: Any, path: str = "") -> tuple[str, Any, Any] | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in [*old, *(k for k in new if k not in old)]:
            d = _first_difference(old.get(k), new.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            # regimes are named: say which one differs
            named = isinstance(a, dict) and isinstance(b, dict) and isinstance(a.get("name"), str)
            d = _first_difference(a, b, f"{path}[{a['name']!r}]" if named else f"{path}[{i}]")
            if d:
                return d
        return None
    return None if old == new else (path, old, new)


def _short(v: Any, n: int = 60) -> str:
    s = json.dumps(v)
    return s if len(s) <= n else s[: n - 3] + "..."


class RunLog:
    """The report folder's streamed runs: ``grid.json`` (the manifest) and ``runs.jsonl`` (one record a line).

    Opening a folder that holds another batch's manifest raises :class:`InvalidParameterError` naming the first
    difference; a last line cut short by a stop is dropped (it is run again).
    """

    def __init__(self, out: Path, doc: Mapping[str, Any], plan_keys: Iterable[str]) -> None:
        self.out = Path(out)
        self.runs_path = self.out / RUNS
        man = self.out / MANIFEST
        keys = set(plan_keys)
        self.done: dict[str, dict[str, Any]] = {}
        self.resumed = 0
        if man.exists():
            try:
                old = json.loads(man.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"report folder {self.out}: {MANIFEST} is not valid JSON ({exc})") from None
            diff = _first_difference(old, dict(doc))
            if diff:
                where, a, b = diff
                raise InvalidParameterError(
                    f"report folder {self.out} holds another grid run ({MANIFEST} '{where}': {_short(a)} there, "
                    f"{_short(b)} here); rerun with the same grid, config and options to resume, or use another --out"
                )
            self._read(keys)
        elif self.runs_path.exists():
            raise InvalidParameterError(
                f"report folder {self.out} has {RUNS} but no {MANIFEST}: not a grid report folder; use another --out"
            )
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            man.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        self.resumed = len(self.done)

    def _read(self, keys: set[str]) -> None:
        if not self.runs_path.exists():
            return
        raw = self.runs_path.read_bytes()
        lines = raw.split(b"\n")
        keep = len(raw)  # bytes to keep: all, unless the last line was cut short
        pos = 0  # offset of line n
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    key = rec["key"]
                except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                    # a line cut by a stop has no newline: only the last one can be (its run is done again)
                    if n == len(lines):
                        keep = pos
                        break
                    raise DataError(f"{self.runs_path} line {n}: not a run record; remove the line to resume") from None
                if key not in keys:
                    raise DataError(f"{self.runs_path} line {n}: run {key!r} is not in this grid")
                try:
                    record_result(rec)
                except DataError as exc:
                    raise DataError(f"{self.runs_path} line {n}: {str(exc).removeprefix(RUNS + ': ')}") from None
                self.done.setdefault(key, rec)
            pos += len(line) + 1
        if keep < len(raw) or (keep and not raw[:keep].endswith(b"\n")):
            with self.runs_path.open("r+b") as fh:
                fh.truncate(keep)
                if keep and not raw[:keep].endswith(b"\n"):  # a whole record cut just before its newline
                    fh.seek(keep)
                    fh.write(b"\n")

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one finished run as a line and flush it (it survives a stop of this process)."""
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.runs_path.open("a", encoding="utf-8") as fh:
            fh.write(line)
        self.done[record["key"]] = dict(record)


def run_grid(
    plan: Sequence[GridRun],
    log: RunLog,
    *,
    executor: Executor | None = None,
    on_done: Callable[[Mapping[str, Any]], None] | None = None,
    task: Callable[[GridRun], dict[str, Any]] | None = None,
) -> bool:
    """Run the items of ``plan`` not yet in ``log``, appending each record as it finishes; True if Ctrl-C stopped
    it (everything finished is in the log). ``task``: the function the executor maps (default
    :func:`run_item_task`; module-level, it must pickle); runs that failed on every attempt are in
    ``executor.failures`` and not in the log (a rerun does them again)."""
    todo = [it for it in plan if it.key not in log.done]
    gen = (executor or LocalExecutor()).imap_unordered(task or run_item_task, todo)
    try:
        with contextlib.closing(gen):
            for _item, rec in gen:
                log.append(rec)
                if on_done:
                    on_done(rec)
    except KeyboardInterrupt:
        return True
    return False


def run_item_task(item: GridRun) -> dict[str, Any]:
    """The function the executor maps (looks :func:`run_item` up when called, so tests can replace it)."""
    return run_item(item)


# ---- metrics ----------------------------------------------------------------------------------------------------
def regime_tournament(records: Iterable[Mapping[str, Any]], allocators: Sequence[str], paths: int, seed: int) -> \
        Tournament:  # fmt: skip
    """The :class:`Tournament` of one regime's records, results in path order (metrics do not depend on the order
    the runs finished in)."""
    tour = Tournament(allocators=list(allocators), paths=paths, seed=seed, results={a: {} for a in allocators})
    for rec in sorted(records, key=lambda r: (r["allocator"], r["path"])):
        tour.results[rec["allocator"]][rec["path"]] = record_result(rec)
    return tour


def best_other_diffs(tour: Tournament, metrics: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Per allocator, the paired 95 % CI of its mean PnL minus that of the best other allocator (highest mean PnL,
    ties to the first listed) on their common paths (USD per path): ``best_other``, ``diff_vs_best_other``,
    ``diff_vs_best_other_ci_lo``, ``diff_vs_best_other_ci_hi``, ``paired_paths``."""
    out: dict[str, dict[str, Any]] = {}
    names = [a for a in tour.allocators if a in metrics]
    for a in names:
        others = [b for b in names if b != a]
        if not others:
            continue
        best = max(others, key=lambda b: (metrics[b]["mean_pnl"], -others.index(b)))
        common = sorted(set(tour.results[a]) & set(tour.results[best]))
        ci = paired_ci([tour.results[a][i].pnl_usd for i in common], [tour.results[best][i].pnl_usd for i in common])
        out[a] = {"best_other": best, "diff_vs_best_other": ci["mean_diff"], "diff_vs_best_other_ci_lo": ci["lo"],
                  "diff_vs_best_other_ci_hi": ci["hi"], "paired_paths": len(common)}  # fmt: skip
    return out


def grid_results(
    grid: Grid, records: Iterable[Mapping[str, Any]], *, allocators: Sequence[str], paths: int, seed: int
) -> tuple[dict[str, Any], dict[str, Tournament]]:
    """``({"regimes": {name: {"overrides", "strategies": {allocator: metrics}}}}, tournaments by regime)``.

    The metrics are :meth:`Tournament.metrics` (those ``simulate`` prints: USD per path, coins, fills; the paired CI
    against ``entropy`` as ``diff_vs_entropy``, ``diff_ci_lo``, ``diff_ci_hi``) plus :func:`best_other_diffs`.
    """
    by_regime: dict[str, list[Mapping[str, Any]]] = {r.name: [] for r in grid.regimes}
    for rec in records:
        by_regime[rec["regime"]].append(rec)
    doc: dict[str, Any] = {}
    tours: dict[str, Tournament] = {}
    for r in grid.regimes:
        tour = regime_tournament(by_regime[r.name], allocators, paths, seed)
        metrics = tour.metrics()
        for a, extra in best_other_diffs(tour, metrics).items():
            metrics[a].update(extra)
        tours[r.name] = tour
        doc[r.name] = {"overrides": r.overrides, "finished_runs": tour.finished, "strategies": metrics}
    return {"regimes": doc}, tours


# ---- report -----------------------------------------------------------------------------------------------------
def regime_folder(names: Sequence[str]) -> dict[str, str]:
    """A folder name per regime under ``regimes/``: the name with characters other than ``A-Za-z0-9._=+-`` as
    ``_``, numbered when two names map to one."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for n in names:
        slug = re.sub(r"[^A-Za-z0-9._=+-]", "_", n).strip(".") or "regime"
        cand, i = slug, 2
        while cand in used:
            cand, i = f"{slug}-{i}", i + 1
        used.add(cand)
        out[n] = cand
    return out


def plot_heatmap(results: Mapping[str, Any], allocators: Sequence[str], path: Path) -> Path | None:
    """``heatmap.png``: one row per regime, one column per allocator, colour the paired difference of its mean PnL
    against the best other allocator in that regime (USD per path), each cell its 95 % CI (``*``: excludes 0).
    None (nothing drawn) with fewer than two allocators."""
    regimes = list(results["regimes"])
    if len(allocators) < 2 or not regimes:
        return None

    d = np.full((len(regimes), len(allocators)), np.nan)
    lo, hi = d.copy(), d.copy()
    for i, r in enumerate(regimes):
        for j, a in enumerate(allocators):
            row = results["regimes"][r]["strategies"].get(a, {})
            for arr, k in ((d, ""), (lo, "_ci_lo"), (hi, "_ci_hi")):
                v = row.get("diff_vs_best_other" + k)
                arr[i, j] = np.nan if v is None else v
    finite = d[np.isfinite(d)]
    vmax = float(np.max(np.abs(finite))) if finite.size and np.max(np.abs(finite)) > 0 else 1.0
    fig, ax = new_figure((2.0 + 1.55 * len(allocators), 1.6 + 0.62 * len(regimes)))
    im = ax.imshow(np.ma.masked_invalid(d), cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
    for i in range(len(regimes)):
        for j in range(len(allocators)):
            if not np.isfinite(d[i, j]):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="grey")
                continue
            sig = "*" if np.isfinite(lo[i, j]) and (lo[i, j] > 0 or hi[i, j] < 0) else ""
            ci = f"[{lo[i, j]:+.3g}, {hi[i, j]:+.3g}]" if np.isfinite(lo[i, j]) else "[n/a]"
            dark = abs(d[i, j]) > 0.6 * vmax
            ax.text(j, i, f"{d[i, j]:+.3g}{sig}\n{ci}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
    ax.set_xticks(range(len(allocators)), allocators, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(regimes)), regimes, fontsize=8)
    fig.colorbar(im, ax=ax, label="USD per path")
    ax.set_title("Mean PnL minus the best other allocator's (paired, 95 % CI; * excludes 0)", fontsize=9)
    return save_figure(fig, path)


def plot_axes_heatmap(grid: Grid, results: Mapping[str, Any], allocators: Sequence[str], path: Path) -> Path | None:
    """``heatmap_axes.png`` for a product of exactly two axes: one panel per allocator, the first axis down and the
    second across, colour and text as in :func:`plot_heatmap` (one colour scale for every panel). None otherwise."""
    if len(grid.axes) != 2 or len(allocators) < 2:
        return None
    (k1, v1), (k2, v2) = grid.axes
    names = [r.name for r in grid.regimes[: len(v1) * len(v2)]]
    regs = results["regimes"]
    cells = {
        (a, n): tuple(regs[n]["strategies"].get(a, {}).get("diff_vs_best_other" + k) for k in ("", "_ci_lo", "_ci_hi"))
        for a in allocators
        for n in names
    }
    finite = [abs(c[0]) for c in cells.values() if c[0] is not None and math.isfinite(c[0])]
    vmax = max(finite) if finite and max(finite) > 0 else 1.0
    ncol = min(len(allocators), 4)
    nrow = -(-len(allocators) // ncol)
    w, h = 0.9 + 1.05 * len(v2), 0.9 + 0.55 * len(v1)
    fig, axs = new_figure((ncol * w + 1.6, nrow * h + 0.9), nrows=nrow, ncols=ncol, squeeze=False)
    im = None
    for idx, ax in enumerate(axs.flat):
        if idx >= len(allocators):
            ax.set_axis_off()
            continue
        a = allocators[idx]
        d = np.full((len(v1), len(v2)), np.nan)
        for i in range(len(v1)):
            for j in range(len(v2)):
                m, lo, hi = cells[(a, names[i * len(v2) + j])]
                if m is None:
                    continue
                d[i, j] = m
                ci = f"[{lo:+.2g}, {hi:+.2g}]" if lo is not None and hi is not None else ""
                sig = "*" if lo is not None and hi is not None and (lo > 0 or hi < 0) else ""
                ax.text(j, i, f"{m:+.2g}{sig}\n{ci}", ha="center", va="center", fontsize=6,
                        color="white" if abs(m) > 0.6 * vmax else "black")  # fmt: skip
        im = ax.imshow(np.ma.masked_invalid(d), cmap="RdBu", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_title(a, fontsize=8)
        ax.set_xticks(range(len(v2)), [_fmt_value(v) for v in v2], fontsize=7)
        ax.set_yticks(range(len(v1)), [_fmt_value(v) for v in v1], fontsize=7)
        ax.set_xlabel(k2, fontsize=7)
        if idx % ncol == 0:  # one axis label per row of panels: the next panel's would overlap it
            ax.set_ylabel(k1, fontsize=7)
    if im is not None:
        fig.colorbar(im, ax=axs.ravel().tolist(), label="USD per path", shrink=0.8)
    fig.suptitle("Mean PnL minus the best other allocator's, over the two axes (paired 95 % CI; * excludes 0)",
                 fontsize=9, y=1.02)  # fmt: skip
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


#: Per regime in summary.md: (metric key, header).
SUMMARY_COLUMNS = (
    ("mean_pnl", "mean PnL"), ("ci_lo", "CI lo"), ("ci_hi", "CI hi"), ("sharpe", "Sharpe"), ("mean_fills", "fills"),
    ("best_other", "best other"), ("diff_vs_best_other", "Δ best other"), ("diff_vs_best_other_ci_lo", "Δ lo"),
    ("diff_vs_best_other_ci_hi", "Δ hi"),
)  # fmt: skip


def _cell(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:,.4g}" if math.isfinite(v) else "n/a"
    return "n/a" if v is None else str(v)


def write_grid_report(
    out: Path,
    grid: Grid,
    results: Mapping[str, Any],
    tours: Mapping[str, Tournament],
    *,
    allocators: Sequence[str],
    notes: Sequence[str],
    per_regime: bool = True,
) -> Path:
    """Write ``metrics.json`` (``results`` and ``notes``), ``metrics.csv`` (one row per regime and allocator),
    ``heatmap.png`` (and ``heatmap_axes.png`` for a product of two axes), ``summary.md`` and, with
    ``per_regime``, a ``simulate``-style report per regime under ``regimes/<name>/`` (metrics, PnL distribution and
    decomposition plots); returns the summary's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folders = regime_folder([r.name for r in grid.regimes])
    doc = {**results, "notes": list(notes)}
    for name, folder in folders.items():
        doc["regimes"][name]["folder"] = f"regimes/{folder}"
    (out / "metrics.json").write_text(json.dumps(to_jsonable(doc), indent=2) + "\n", encoding="utf-8")
    columns: list[str] = []
    for reg in results["regimes"].values():
        for row in reg["strategies"].values():
            columns += [k for k in row if k not in columns]
    with (out / "metrics.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["regime", "allocator", *columns])
        for name, reg in results["regimes"].items():
            for a, row in reg["strategies"].items():
                w.writerow([name, a, *(to_jsonable(row.get(c, "")) for c in columns)])
    heat = plot_heatmap(results, allocators, out / "heatmap.png")
    heat_axes = plot_axes_heatmap(grid, results, allocators, out / "heatmap_axes.png")
    lines = [f"# Regime grid: {len(grid.regimes)} regimes × {len(allocators)} allocators", ""]
    lines += [f"- {n}" for n in notes]
    if heat is not None:
        lines += ["", "![paired difference against the best other allocator](heatmap.png)"]
    if heat_axes is not None:
        lines += ["", "![the same over the two axes, one panel per allocator](heatmap_axes.png)"]
    for r in grid.regimes:
        reg = results["regimes"][r.name]
        ov = ", ".join(f"`{k} = {_short(v, 40)}`" for k, v in r.overrides.items()) or "the base configuration"
        lines += ["", f"## {r.name}", "", f"Overrides: {ov}; {reg['finished_runs']} runs; report "
                  f"[regimes/{folders[r.name]}](regimes/{folders[r.name]}/summary.md)", ""]  # fmt: skip
        lines.append("| allocator | " + " | ".join(h for _, h in SUMMARY_COLUMNS) + " |")
        lines.append("|---|" + "---:|" * len(SUMMARY_COLUMNS))
        for a, row in reg["strategies"].items():
            lines.append(f"| {a} | " + " | ".join(_cell(row.get(k)) for k, _ in SUMMARY_COLUMNS) + " |")
        if per_regime and tours[r.name].finished:
            tour = tours[r.name]
            write_report(
                out / "regimes" / folders[r.name],
                title=f"Allocator tournament: regime {r.name}",
                metrics=reg["strategies"],
                pnl_samples={a: np.array([x.pnl_usd for x in tour.results[a].values()]) for a in allocators
                             if tour.results.get(a)},
                decomposition=tour.decomposition(),
                notes=[f"overrides: {json.dumps(r.overrides)}", *notes],
                extra_json={"pnl_per_path": {a: {i: x.pnl_usd for i, x in sorted(tour.results[a].items())}
                                             for a in allocators}},
            )  # fmt: skip
    summary = out / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary


__all__ = [
    "Grid",
    "GridRun",
    "Regime",
    "RunLog",
    "apply_regime",
    "grid_results",
    "load_grid",
    "manifest",
    "parse_grid",
    "plan_runs",
    "regime_label",
    "run_grid",
    "run_item",
    "valid_keys",
    "write_grid_report",
]
