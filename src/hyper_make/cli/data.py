"""``hyper-make calibrate FILE...`` and ``hyper-make backtest FILE...``: model fitting and replay on recorded data.

Both read any supported recording (Binance futures/spot, Hyperliquid live or archive, Tardis CSV, hftbacktest
``.npz``). A bad line stops the read (``--on-error stop``, the default): what was read before it is still used
and written (marked partial in the files), then the error is printed on one line and the exit code is 2.
``--on-error skip`` skips bad lines and says on stderr what it skipped (counts by reason, the first lines). The
output folder (``--out``) is checked before any work runs. Ctrl-C keeps what was written, marked partial, and
exits 130.

Several files (or a quoted glob): files of one format are consecutive parts of one recording; both commands read
them as one continuous run, streamed in chunks (memory does not grow with the data: the book, the clock, and for
``backtest`` the position, orders and cash carry from one file to the next); ``backtest --day-by-day`` replays each
file on its own from a flat position instead and reports them together. Both draw a progress bar with the time left
on stderr. Files of different formats are parallel streams of one recording (a Tardis book file and its trades file,
a Hyperliquid archive and a trades recording) and are merged in time order.

A Binance recording without a book snapshot is read with a warm-up while the book is built from the diffs
(:mod:`hyper_make.data.readers`): both commands warn once on stderr, ``calibrate`` leaves the warm-up out of its
fits, ``backtest`` does not quote before it ends (its ``--warmup-s`` is extended to cover it) and flags the fills
inside later warm-ups (resyncs after update-id gaps under ``--on-error skip``); both reports say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import json
import math
import os
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .._json import to_jsonable
from ..allocate import ALLOCATORS
from ..backtest import ReplayConfig, ReplayInterrupted, ReplayResult, run_backtest
from ..backtest.replay import Fills
from ..calibrate import MARKOUT_HORIZONS_S, CalibrationResult, plot_calibration
from ..calibrate import calibrate as fit_calibration
from ..calibrate.facts import FactRow, plot_facts
from ..calibrate.facts import compare as compare_facts
from ..calibrate.preset import FITTED as PRESET_FITTED
from ..calibrate.preset import SIM_RECORD_S, fit_preset, simulated_facts
from ..config import AppConfig
from ..data.merge import combine_reports
from ..data.readers import ReadReport, detect_format, load_events
from ..errors import InvalidParameterError
from ..learn._report import write_learner_report
from ..metrics import max_drawdown
from ..report import write_report
from ._batch import RayAddress, Retries, batch_notes, executor_for, progress, warn_failures, write_failures
from ._common import (
    EstimatorHalflifeS,
    EstimatorPriorWeightS,
    LearnerStateFile,
    RequotePriceBps,
    RequoteSizeFrac,
    allocator_names,
    app,
    check_learner_state,
    check_out_dir,
    checked,
    compact_table,
    err_console,
    fail,
    interrupted,
    load_app_config,
    load_kernels,
    load_learner,
    out_console,
    print_json,
    print_table,
    quoter_config,
    render_metrics,
    save_learner,
    seed_option,
    user_errors,
    warn,
)

_FILES_HELP = (
    "Recorded feed (Binance futures/spot, Hyperliquid, Hyperliquid archive .lz4, Tardis CSV, .npz). Several files "
    "or a quoted glob: files of one format are consecutive parts of one recording ({several}); files of different "
    "formats (a Tardis book file and its trades file, an archive and a trades recording) merge in time order."
)
_ON_ERROR_HELP = "On a bad line: 'stop' (use what was read, then exit 2) or 'skip' (skip it, say so, go on)."

#: A replay quoting for less than this (s) or with fewer fills than :data:`MIN_FILLS_TO_JUDGE` warns that it
#: is too short to judge the allocators by.
MIN_QUOTING_S = 60.0
MIN_FILLS_TO_JUDGE = 10


def _label(files: list[Path]) -> str:
    return " + ".join(str(f) for f in files)


def _names(files: list[Path]) -> str:
    return " + ".join(f.name for f in files)


def _parallel_streams(paths: list[Path]) -> bool:
    """Whether the files are parallel streams of one recording (formats differ: merged in time order) rather than
    consecutive parts of one (one format)."""
    with user_errors():
        return len({detect_format(p) for p in paths}) > 1


def _check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "skip"):
        raise InvalidParameterError(f"'--on-error' must be one of ['skip', 'stop']; got {on_error!r}")


#: ReplayConfig field -> the backtest option that sets it (errors name the option the user typed).
_FLAGS = {
    "refresh_s": "--refresh-s", "latency_ms": "--latency-ms", "latency": "--latency", "queue": "--queue",
    "queue_n": "--queue-n", "markout_s": "--markout-s", "warmup_s": "--warmup-s", "seed": "--seed",
    "response_latency_ms": "--response-latency-ms", "cross": "--cross", "equal_ts": "--equal-ts",
    "train_frac": "--train-frac", "block_s": "--block-s",
}  # fmt: skip


def _flag_names(message: str) -> str:
    for name, flag in _FLAGS.items():
        message = message.replace(f"'{name}'", f"'{flag}'")
    return message


@contextlib.contextmanager
def _option_names() -> Iterator[None]:
    """An InvalidParameterError raised inside names the command's options, not the library's arguments."""
    try:
        yield
    except InvalidParameterError as exc:
        raise InvalidParameterError(_flag_names(str(exc))) from None


def expand_files(files: list[Path]) -> list[Path]:
    """The files named, a name with ``*``, ``?`` or ``[`` that is no file expanded as a glob (sorted by name).

    Raises
    ------
    InvalidParameterError
        If a glob matches no file, or the same file is named twice.
    """
    out: list[Path] = []
    for f in files:
        text = str(f)
        if not f.exists() and any(c in text for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text))
            if not matches:
                raise InvalidParameterError(f"'FILE' glob {text!r} matches no file")
            out += matches
        else:
            out.append(f)
    seen: set[Path] = set()
    for f in out:
        if f in seen:
            raise InvalidParameterError(f"'FILE' names {f} twice: each file of a recording is read once, in order")
        seen.add(f)
    return out


@contextlib.contextmanager
def _progress(what: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr over the bytes of the input files, with the time left; yields the
    ``progress(done_bytes, total_bytes)`` callback (drawn only on a terminal)."""
    with Progress(
        TextColumn(f"[bold]{what}[/bold]"), BarColumn(), DownloadColumn(), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=err_console, transient=quiet, disable=not err_console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(what, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        yield advance


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs"


@app.command("calibrate")
def calibrate_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help=_FILES_HELP.format(several="read as one continuous run")),
    ],
    out: Annotated[Path, typer.Option(help="Folder for calibration.toml, intensity.png, markouts.png.")] = Path(
        "calibration"
    ),
    reference_lag_s: Annotated[
        float,
        typer.Option(
            "--reference-lag-s",
            help="A quote rests at a depth from the mid this many seconds earlier (s, >= 0).",
            callback=checked(lo=0.0, unit="s"),
        ),
    ] = 1.0,
    max_depth_bps: Annotated[
        float,
        typer.Option(
            "--max-depth-bps",
            help="Deepest depth of the fitted curves (bps, > 0.25).",
            callback=checked(lo=0.25, lo_open=True, unit="bps"),
        ),
    ] = 10.0,
    adverse_horizon_s: Annotated[
        float,
        typer.Option(
            "--adverse-horizon-s",
            help="Markout horizon written as the adverse table (s; one of "
            + ", ".join(f"{h:g}" for h in MARKOUT_HORIZONS_S)
            + ").",
        ),
    ] = 30.0,
    on_error: Annotated[str, typer.Option("--on-error", help=_ON_ERROR_HELP)] = "stop",
    sim_preset: Annotated[
        Path | None,
        typer.Option(
            "--sim-preset",
            help="Also fit the simulator's market ([sim.market]: depth profile, spread, order flow, σ and jumps, "
            "informed share, refill) in the same pass and write it to this TOML (hyper-make simulate --config).",
        ),
    ] = None,
    facts: Annotated[
        bool,
        typer.Option(
            "--facts",
            help="With --sim-preset: simulate the fitted market and print its stylised facts against the "
            "recording's, with tolerances (and facts.png in --out).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
) -> None:
    """Fit σ, fill intensity, adverse selection, volume at depth and impact; write a config TOML and plots.

    What the data cannot support is left out, named in a warning and in the TOML's [meta] section (a partial
    calibration): a short recording still gives σ and the volume.
    """
    with user_errors():
        _check_on_error(on_error)
        if adverse_horizon_s not in MARKOUT_HORIZONS_S:
            raise InvalidParameterError(
                f"'--adverse-horizon-s' must be one of {list(MARKOUT_HORIZONS_S)} s; got {adverse_horizon_s!r}"
            )
        if facts and sim_preset is None:
            raise InvalidParameterError("'--facts' compares a fitted simulator preset: give '--sim-preset OUT.toml'")
        paths = expand_files(files)
        file = paths[0]
        check_out_dir(out)
        if sim_preset is not None:
            if sim_preset.is_dir():
                raise InvalidParameterError(f"'--sim-preset' {sim_preset} is a folder; give a file name (OUT.toml)")
            check_out_dir(sim_preset.parent, "--sim-preset")
        preset_fit = None
        with _progress("calibrate", json_out) as advance:
            kwargs = dict(reference_lag_s=reference_lag_s, max_depth_bps=max_depth_bps, on_error=on_error,
                          keep_partial=True, progress=advance)  # fmt: skip
            if sim_preset is None:
                result = fit_calibration(paths if len(paths) > 1 else file, **kwargs)  # type: ignore[arg-type]
            else:
                preset_fit = fit_preset(paths if len(paths) > 1 else file, **kwargs)
                assert preset_fit.calibration is not None
                result = preset_fit.calibration
        # σ over 1 s, or over the calibrated horizon nearest to it (a short recording may lack some)
        sigma_h = min(result.sigma_frac, key=lambda h: abs(math.log(h)))
        toml_path = result.write_toml(
            out / "calibration.toml", sigma_horizon_s=sigma_h, adverse_horizon_s=adverse_horizon_s
        )
    try:
        with user_errors():
            plots = plot_calibration(result, out)
    except KeyboardInterrupt:
        interrupted(f"kept {toml_path}; the plots were not written")
    missing = result.missing(adverse_horizon_s)
    doc = result.to_dict() | {
        "source": str(file) if len(paths) == 1 else [str(x) for x in paths],
        "toml": str(toml_path),
        "plots": [str(p) for p in plots],
        "partial": result.is_partial(adverse_horizon_s),
        "not_fitted": missing,
    }
    fact_rows = None
    if preset_fit is not None and sim_preset is not None:
        with user_errors():
            preset_path = preset_fit.write_toml(sim_preset)
            doc["sim_preset"] = {
                "toml": str(preset_path),
                "market": {k: getattr(preset_fit.market, k) for k in PRESET_FITTED},
                "stderr": preset_fit.stderr,
                "not_fitted": preset_fit.not_fitted,
                "facts": preset_fit.facts.to_dict(),
            }
            if facts:
                sim = simulated_facts(preset_fit.market, horizon_s=SIM_RECORD_S)
                fact_rows = compare_facts(preset_fit.facts, sim)
                png = plot_facts(preset_fit.facts, sim, out / "facts.png", title=f"{_names(paths)}: real vs simulated")
                doc["sim_preset"]["facts_sim"] = sim.to_dict()
                doc["sim_preset"]["comparison"] = [dataclasses.asdict(r) for r in fact_rows]
                doc["plots"].append(str(png))
    if json_out:
        print_json(doc)
    else:
        _render_calibration(_names(paths), result, missing)
        if result.book_note():
            out_console.print(f"book: {result.book_note()}", markup=False, highlight=False)
        out_console.print(f"config: {toml_path}")
        if "sim_preset" in doc:
            out_console.print(f"simulator preset: {doc['sim_preset']['toml']}")
        if fact_rows is not None:
            render_facts(fact_rows)
        out_console.print(f"plots: {', '.join(doc['plots']) or 'none (nothing to plot)'}")
    for w in result.read_report.get("warnings", []):
        warn(w)
    if result.read_report.get("skip_summary"):
        warn(result.read_report["skip_summary"])
    if missing:
        why = "; ".join(f"{k} ({reason})" for k, reason in missing.items())
        warn(f"partial calibration of {_label(paths)}: not fitted: {why}; {toml_path} says so in [meta]")
    if preset_fit is not None and preset_fit.not_fitted:
        why = "; ".join(f"sim.market.{k} ({reason})" for k, reason in preset_fit.not_fitted.items())
        warn(f"simulator preset: not fitted, default kept: {why}")
    if fact_rows is not None and any(r.measured and not r.ok for r in fact_rows):
        warn("stylised facts outside tolerance: " + ", ".join(r.name for r in fact_rows if r.measured and not r.ok))
    if result.stopped_at:
        fail(result.stopped_at)


def render_facts(rows: list[FactRow]) -> None:
    """The side-by-side table of recorded and simulated stylised facts."""
    t = compact_table()
    for c in ("fact", "unit", "real", "sim", "tolerance", "match"):
        t.add_column(c, justify="right" if c in ("real", "sim") else "left")
    for r in rows:
        match = ("yes" if r.ok else "NO") if r.measured else "n/a"
        t.add_row(r.name, r.unit, f"{r.real:.4g}", f"{r.sim:.4g}", r.tolerance, match)
    print_table(t, title="Stylised facts: recording vs fitted simulator")


def _render_calibration(name: str, result: CalibrationResult, missing: dict[str, str]) -> None:
    events = result.read_report.get("events", 0)
    t = compact_table()
    for c in ("parameter", "value", "stderr", "note"):
        t.add_column(c, justify="right" if c in ("value", "stderr") else "left")
    for h, e in result.sigma_frac.items():
        t.add_row(f"σ over {h:g} s (bps)", f"{e.value * 1e4:.4g}", f"{e.stderr * 1e4:.2g}", f"n={e.n}")
    for side, f in result.fill.items():
        lo, hi = f.depth_range_bps
        note = f"R²={f.r2:.3f}, fit on {lo:g}-{hi:g} bps"
        t.add_row(f"{side} A (1/s)", f"{f.intensity_per_s.value:.4g}", f"{f.intensity_per_s.stderr:.2g}", note)
        t.add_row(f"{side} k (1/bps)", f"{f.kappa_per_bps.value:.4g}", f"{f.kappa_per_bps.stderr:.2g}", "")
    c = result.impact_coef
    if c is not None:
        t.add_row("impact c", f"{c.value:.4g}", f"{c.stderr:.2g}", f"{c.n} orders, {result.impact_horizon_s:g} s")
    if result.volume_coins.size:
        t.add_row("daily volume (coins)", f"{result.daily_volume_coins:,.0f}", "", "extrapolated from the file")
    print_table(t, title=f"calibration of {name} ({result.duration_s:.0f} s, {events:,} events)")
    for key, why in missing.items():
        out_console.print(f"not fitted: {key} ({why})", markup=False, highlight=False)


#: The backtest's summary, in two tables that fit 80 columns.
BACKTEST_COLUMNS = (
    (
        "USD over the replay; model impact: the impact model's cost of the ladders shown (not in the PnL)",
        [("pnl_usd", "PnL"), ("spread_capture_usd", "spread"), ("adverse_selection_usd", "adverse"),
         ("fees_usd", "fees"), ("inventory_usd", "inventory"), ("model_impact_usd", "impact")],
    ),
    (
        "fills; markouts of our fills (bps, positive is good); effective levels exp(H)",
        [("fills", "fills"), ("markout_5s_bps", "mk 5s"), ("markout_60s_bps", "mk 60s"),
         ("mean_effective_levels", "eff")],
    ),
)  # fmt: skip


def _too_short(results: dict[str, ReplayResult], refresh_s: float) -> str | None:
    """Why this replay is too short to judge the allocators by, or ``None``."""
    if not results:
        return None
    quoting_s = max(r.diagnostics.get("quoted_refreshes", 0.0) for r in results.values()) * refresh_s
    fills = max(r.diagnostics.get("fills", 0.0) for r in results.values())
    if quoting_s < MIN_QUOTING_S or fills < MIN_FILLS_TO_JUDGE:
        return (
            f"the replay quoted for {quoting_s:.0f} s (after the warm-up) with at most {fills:.0f} fills per "
            f"allocator: too short to judge the allocators by (at least {MIN_QUOTING_S:.0f} s and "
            f"{MIN_FILLS_TO_JUDGE} fills wanted)"
        )
    return None


def _fills_in_resyncs(report: ReadReport, results: dict[str, ReplayResult]) -> dict[str, int]:
    """Per allocator, its fills inside the warm-ups after update-id gaps (the book was being rebuilt)."""
    spans = [s for w, s in zip(report.warmups, report.warmup_spans_ns(), strict=True) if w.reason == "gap"]
    out = {}
    for name, r in results.items():
        ts = r.fills.ts_ns
        out[name] = int(sum(int(np.sum((ts >= a) & (ts < b))) for a, b in spans))
    return out


def _book_note(report: ReadReport, results: dict[str, ReplayResult], book_warmup_s: float, warmup_s: float) -> str:
    """The report's line on a book built from diffs: the warm-up that delayed quoting, resyncs and their fills."""
    parts = [str(report.warmup_summary())]
    several = " + " in report.path
    if book_warmup_s > 0:
        when = f"{book_warmup_s:.1f} s in all" if several else f"{book_warmup_s:.1f} s into the replay"
        whose = "each file's book" if several else "the book's"
        parts.append(
            f"no quotes (so no fills) before {whose} warm-up ended, {when} (the "
            f"strategy's own warm-up, --warmup-s {warmup_s:g}, is extended to cover it)"
        )
    if report.resyncs:
        fills = _fills_in_resyncs(report, results)
        parts.append(
            f"{report.resyncs} resync{'s' if report.resyncs != 1 else ''} after update-id gaps; fills inside their "
            "warm-ups (kept, flagged): " + (", ".join(f"{n} {c}" for n, c in fills.items()) or "none")
        )
    return "BOOK WARM-UP: " + "; ".join(parts)


#: Metrics summed over the files of a day-by-day backtest (the others are combined as their docs say).
_ADDITIVE = (
    "pnl_usd", "spread_capture_usd", "adverse_selection_usd", "fees_usd", "inventory_usd", "model_impact_usd",
    "pnl_minus_model_impact_usd", "model_expected_pnl_usd", "fills", "filled_coins", "refreshes",
    "quoted_refreshes", "post_only_rejects", "orders_without_slot", "risk_stops", "events", "wall_s", "strategy_s",
)  # fmt: skip


def _backtest_days(
    paths: list[Path],
    names: list[str],
    app_cfg: AppConfig,
    rcfg: ReplayConfig,
    on_error: str,
    quiet: bool,
    out: Path,
    carry: dict[str, Any] | None = None,
) -> tuple[dict[str, ReplayResult], ReadReport, float, list[dict[str, object]], bool]:
    """Replay each file on its own (fresh allocators, flat position, its own book), one after the other, each
    streamed in chunks; the fills and equity CSVs are appended to file by file.

    ``carry["learner"]``: the payout posterior the first file's learning allocator starts from; each next file
    starts from the one the previous ended with (learning carries over the days), left in ``carry`` at the end.

    Returns the results combined over the files, the files' read reports merged, the seconds of book warm-up
    added up, one row per file and allocator (for ``days.csv``), and whether Ctrl-C cut the run short. A bad line
    under ``--on-error stop`` ends the run after the file it is in (what was read of it is replayed).
    """
    per_day: list[dict[str, ReplayResult]] = []
    reports: list[ReadReport] = []
    rows: list[dict[str, object]] = []
    warm_total = 0.0
    total = sum(x.stat().st_size for x in paths if x.is_file())
    done_bytes = 0
    cut = False
    with _progress("backtest", quiet) as advance:
        for i, path in enumerate(paths):
            allocs = {n: app_cfg.make_allocator(n) for n in names}
            info: dict[str, float] = {}
            learner = carry.get("learner") if carry is not None else None
            try:
                day, report = run_backtest(
                    path, allocs, app=app_cfg, config=rcfg, on_error=on_error, out_dir=out, append=i > 0,  # type: ignore[arg-type]
                    progress=lambda d, _t, before=done_bytes: advance(before + d, total), info=info, learner=learner,
                )  # fmt: skip
            except ReplayInterrupted as stop:
                if stop.results:
                    per_day.append(stop.results)
                if stop.report is not None:
                    reports.append(stop.report)
                cut = True
                break
            assert report is not None  # read from a file
            reports.append(report)
            for w in report.warnings:
                warn(w)
            per_day.append(day)
            if carry is not None:
                carry["learner"] = next((r.learner for r in day.values() if r.learner is not None), learner)
            warm_s = info.get("book_warmup_s", 0.0)
            warm_total += warm_s
            for n, r in day.items():
                rows.append({"file": str(path), "allocator": n, "book_warmup_s": warm_s}
                            | {k: r.metrics().get(k, float("nan")) for k in
                               ("pnl_usd", "fills", "filled_coins", "fees_usd", "final_inventory_coins",
                                "max_drawdown_usd")})  # fmt: skip
            done_bytes += path.stat().st_size
            advance(done_bytes, total)
            if report.error:
                break
    if cut and not per_day:
        interrupted("no file had been replayed; nothing was written")
    return _combine_days(per_day), combine_reports(reports), warm_total, rows, cut


def _backtest_batch(
    paths: list[Path],
    names: list[str],
    app_cfg: AppConfig,
    rcfg: ReplayConfig,
    on_error: str,
    quiet: bool,
    out: Path,
    executor: Any,
) -> tuple[dict[str, ReplayResult], ReadReport, float, list[dict[str, object]], bool]:
    """``--day-by-day`` with ``--ray``/``--workers``: each file one work item of the executor, its results written to
    ``out/batch/`` as it finishes (a rerun resumes), then combined in file order as :func:`_backtest_days` does;
    the fills and equity CSVs are written from the combined results."""
    from ..backtest.batch import FileLog, batch_manifest, plan_files, run_files

    plan = plan_files(paths, names, app_cfg, rcfg, on_error)
    log = FileLog(out, batch_manifest(plan))
    with progress("backtest", len(plan), log.resumed, quiet=quiet) as advance:
        cut = run_files(plan, log, executor, on_done=lambda _it: advance())
    if not log.done:
        if cut:
            interrupted("no file had been replayed; nothing was written")
        raise InvalidParameterError(f"no file could be replayed: {executor.failures[0].describe()}")
    per_day, reports, rows, warm_total = [], [], [], 0.0
    for it in plan:
        res = log.done.get(it.index)
        if res is None:
            continue
        per_day.append(res.results)
        if res.report is not None and res.report.path != it.path:  # read from a node's copy (--ship-data)
            res.report.path = it.path
        reports.append(res.report)
        warm_total += res.book_warmup_s
        for n, r in res.results.items():
            rows.append({"file": it.path, "allocator": n, "book_warmup_s": res.book_warmup_s}
                        | {k: r.metrics().get(k, float("nan")) for k in
                           ("pnl_usd", "fills", "filled_coins", "fees_usd", "final_inventory_coins",
                            "max_drawdown_usd")})  # fmt: skip
    results = _combine_days(per_day)
    for n, r in results.items():
        r.fills.write_csv(out / f"fills_{n}.csv")
        t, e = r.equity
        np.savetxt(out / f"equity_{n}.csv", np.column_stack([t, e]), delimiter=",", header="t_s,equity_usd",
                   comments="", fmt="%.10g")  # fmt: skip
    return results, combine_reports(reports), warm_total, rows, cut


def _combine_days(days: list[dict[str, ReplayResult]]) -> dict[str, ReplayResult]:
    """One result per allocator over several files: sums (:data:`_ADDITIVE`), equity chained end to end,
    markouts weighted by filled size, effective levels by quoted refreshes, the largest position and drawdown."""
    out: dict[str, ReplayResult] = {}
    for name in days[0]:
        rs = [d[name] for d in days if name in d]
        ms = [r.metrics() for r in rs]
        diag = {k: float(sum(m.get(k, 0.0) for m in ms)) for k in _ADDITIVE if k in ms[0] and k in rs[0].diagnostics}
        pnl = {k: float(sum(r.pnl.get(k, 0.0) for r in rs)) for k in rs[0].pnl}
        w = np.array([m.get("filled_coins", 0.0) for m in ms])
        markouts = {}
        for h in rs[0].markouts_bps:
            v = np.array([r.markouts_bps.get(h, np.nan) for r in rs])
            ok = np.isfinite(v) & (w > 0)
            markouts[h] = float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else float("nan")
        q = np.array([m.get("quoted_refreshes", 0.0) for m in ms])
        lv = np.array([m.get("mean_effective_levels", np.nan) for m in ms])
        ok = np.isfinite(lv) & (q > 0)
        t_parts, e_parts, t_off, e_off = [], [], 0.0, 0.0
        for r in rs:
            t, e = (np.asarray(x, dtype=float) for x in r.equity)
            t_parts.append(t + t_off)
            e_parts.append(e + e_off)
            if t.size:
                t_off, e_off = t_off + float(t[-1]), e_off + float(e[-1])
        eq_t, eq_v = np.concatenate(t_parts), np.concatenate(e_parts)
        diag |= {
            "final_inventory_coins": float(ms[-1].get("final_inventory_coins", 0.0)),
            "max_abs_inventory_coins": float(max(m.get("max_abs_inventory_coins", 0.0) for m in ms)),
            "max_drawdown_usd": max_drawdown(eq_v) if eq_v.size else 0.0,
            "mean_effective_levels": float(np.sum(lv[ok] * q[ok]) / np.sum(q[ok])) if ok.any() else float("nan"),
            "events_per_s": diag.get("events", 0.0) / diag["wall_s"] if diag.get("wall_s") else float("nan"),
        }
        fills = Fills(*(np.concatenate([getattr(r.fills, f.name) for r in rs]) for f in dataclasses.fields(Fills)))
        shapes = [r.shapes for r in rs if r.shapes.size]
        shape = np.concatenate(shapes) if shapes else rs[0].shapes
        if shape.shape[0] > 500:
            shape = shape[np.linspace(0, shape.shape[0] - 1, 500).astype(int)]
        out[name] = ReplayResult(rs[0].allocator, fills, pnl, markouts, (eq_t, eq_v), shape,
                                 {**rs[0].diagnostics, **diag})  # fmt: skip
    return out


def _write_days(path: Path, rows: list[dict[str, object]]) -> None:
    """``days.csv``: one row per file and allocator."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@app.command("backtest")
def backtest_cmd(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="FILE",
            help=_FILES_HELP.format(
                several="replayed as one continuous run carrying the position, or with --day-by-day each from a "
                "flat position"
            ),
        ),
    ] = None,
    allocator: Annotated[
        str | None,
        typer.Option("--allocator", "-a", help="Comma-separated allocators (default: every registered one)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML: [market] account fields, [ladder], [allocator.<name>], [quoter]."),
    ] = None,
    refresh_s: Annotated[float, typer.Option("--refresh-s", help="Ladder refresh interval (s).")] = 1.0,
    latency_ms: Annotated[
        float,
        typer.Option(help="Order entry / cancel latency (ms): a request reaches the exchange this late, [0, 60000]."),
    ] = 50.0,
    response_latency_ms: Annotated[
        float | None,
        typer.Option(
            help="The exchange's answers (fills, acks, rejects, cancels done) reach the strategy this late (ms), "
            "[0, 60000]; default: --latency-ms."
        ),
    ] = None,
    latency: Annotated[
        str,
        typer.Option(
            help="Market data: 'constant' (the strategy sees it at exchange time) or 'feed' (at the recording's "
            "local_ts, the feed's own latency)."
        ),
    ] = "constant",
    cross: Annotated[
        str,
        typer.Option(
            help="Fill when the best opposite price reaches our resting price without a trade: 'all' (the whole "
            "order, as hftbacktest), 'crossed_qty' (up to the quantity that crossed, whole lots) or 'off'."
        ),
    ] = "all",
    equal_ts: Annotated[
        str,
        typer.Option(
            help="Our order/cancel and market rows at the same ns: 'market_first' (as hftbacktest) or 'order_first'."
        ),
    ] = "market_first",
    queue: Annotated[str, typer.Option(help="Queue model: risk_averse, power or log.")] = "risk_averse",
    queue_n: Annotated[float, typer.Option(help="Exponent n of the power queue model.")] = 2.0,
    markout_s: Annotated[
        float, typer.Option("--markout-s", help="Markout horizon of the adverse-selection split (s).")
    ] = 5.0,
    warmup_s: Annotated[
        float, typer.Option("--warmup-s", help="The strategy only estimates during the first seconds (s).")
    ] = 10.0,
    seed: Annotated[int, seed_option("Seed of the allocators' random draws.")] = 0,
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json/.csv, PNG plots, summary.md).")] = Path(
        "backtest-report"
    ),
    on_error: Annotated[str, typer.Option("--on-error", help=_ON_ERROR_HELP)] = "stop",
    requote_price_bps: RequotePriceBps = None,
    requote_size_frac: RequoteSizeFrac = None,
    estimator_halflife_s: EstimatorHalflifeS = None,
    estimator_prior_weight_s: EstimatorPriorWeightS = None,
    continuous: Annotated[
        bool,
        typer.Option(
            "--continuous/--day-by-day",
            help="Several files of one format: one continuous run (the book, position, orders and cash carry from "
            "file to file; the default) or each file on its own from a flat position, summed (days.csv per file).",
        ),
    ] = True,
    learner_state: LearnerStateFile = None,
    train: Annotated[
        list[Path] | None,
        typer.Option(
            "--train",
            help="Walk-forward: calibrate the models and train the learner on these files only (repeat the option "
            "for several), then replay every allocator on FILE... (the test data).",
        ),
    ] = None,
    test: Annotated[
        list[Path] | None,
        typer.Option("--test", help="Walk-forward: the test data, as FILE... (repeat the option for several)."),
    ] = None,
    train_frac: Annotated[
        float | None,
        typer.Option(
            "--train-frac",
            help="Walk-forward on one recording: its first fraction of time (0, 1) is the training data, the rest the "
            "test data.",
        ),
    ] = None,
    block_s: Annotated[
        float,
        typer.Option("--block-s", help="Walk-forward: block length of the bootstrap over time (s), >= --refresh-s."),
    ] = 60.0,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="--day-by-day as a batch on this many local processes, >= 1 (each file a run; resumed from --out).",
            callback=checked(lo=1, integer=True),
        ),
    ] = None,
    ray: RayAddress = None,
    retries: Retries = 2,
    rolling: Annotated[
        bool,
        typer.Option(
            "--rolling",
            help="Walk-forward over files in time order: fold k calibrates and trains on FILE k and judges every "
            "allocator on FILE k+1; the folds run as a batch (--workers/--ray), resumed from --out.",
        ),
    ] = False,
    ship_data: Annotated[
        bool,
        typer.Option(
            "--ship-data",
            help="With --ray: send each file once through Ray's object store (default: the workers read the paths, "
            "which must be shared).",
        ),
    ] = False,
) -> None:
    """Replay a recording with each allocator side by side and write a report folder like 'simulate'.

    With --train FILE (or --train-frac F) it is a walk-forward: the models are calibrated and the learner trained on
    the training data only, every allocator is judged on the test data, and each total PnL and each paired
    difference gets a block-bootstrap interval over time (walk_forward.json).

    The data is streamed in chunks (memory does not grow with it); fills_<allocator>.csv and equity_<allocator>.csv
    are written as the replay goes, so a run that fails or is interrupted keeps them.

    With --learner-state the 'learned' allocator starts from the saved posterior and the file is rewritten with
    the one it ends with (over several files, learning carries from one to the next).
    """
    with user_errors():
        _check_on_error(on_error)
        names = allocator_names(allocator) or list(ALLOCATORS)
        app_cfg = load_app_config(config)
        quoter = quoter_config(
            app_cfg.quoter,
            requote_price_bps=requote_price_bps,
            requote_size_frac=requote_size_frac,
            estimator_halflife_s=estimator_halflife_s,
            estimator_prior_weight_s=estimator_prior_weight_s,
        )
        app_cfg = dataclasses.replace(app_cfg, quoter=quoter)
        with _option_names():
            rcfg = ReplayConfig(
                refresh_s=refresh_s, latency_ms=latency_ms, latency=latency, queue=queue, queue_n=queue_n,  # type: ignore[arg-type]
                markout_s=markout_s, warmup_s=warmup_s, seed=seed, response_latency_ms=response_latency_ms,
                cross=cross, equal_ts=equal_ts,  # type: ignore[arg-type]
            )  # fmt: skip
        allocs = {n: app_cfg.make_allocator(n) for n in names}
        if test and not train:
            raise InvalidParameterError("'--test' is the test data of a walk-forward: give '--train FILE' too")
        if not files and not test:
            raise InvalidParameterError("give the data to replay: FILE... (or '--train FILE --test FILE')")
        paths = expand_files([*(files or []), *(test or [])])
        file = paths[0]
        check_out_dir(out)
        check_learner_state(learner_state, names)
        learning = next((a for a in allocs.values() if getattr(a, "learns", False)), None)
        # the saved posterior, or None: each replay's refresh core then starts from the prior of its models
        carry: dict[str, Any] = {"learner": load_learner(learner_state, learning, app_cfg.spec.coin)}
        if rolling:
            if train or test or train_frac is not None:
                raise InvalidParameterError(
                    "'--rolling' makes the folds from FILE...: no '--train'/'--test'/'--train-frac'"
                )
            executor = executor_for(ray, workers, retries, ship_data=ship_data)
            _rolling_cmd(paths, names, app_cfg, rcfg, block_s, on_error, out, executor, json_out)
            return
        if train or train_frac is not None:
            if ray is not None or workers is not None:
                raise InvalidParameterError("'--ray'/'--workers' run a batch: one walk-forward is one run; give "
                                            "'--rolling' with FILE... for a batch of folds")  # fmt: skip
            if train and train_frac is not None:
                raise InvalidParameterError("give '--train FILE' or '--train-frac F', not both")
            if train_frac is not None and len(paths) != 1:
                raise InvalidParameterError(f"'--train-frac' splits one recording; got {len(paths)} files")
            _walk_forward_cmd(paths, expand_files(train) if train else None, train_frac, allocs, app_cfg, rcfg,
                              carry["learner"], block_s, on_error, out, learner_state, json_out)  # fmt: skip
            return
    report: ReadReport | None = None
    book_warmup_s = 0.0
    days: list[dict[str, object]] = []
    days_stopped = False
    cut_short = False
    executor = None
    batch = ray is not None or workers is not None
    with user_errors():
        if ship_data and ray is None:
            raise InvalidParameterError("'--ship-data' sends the files through Ray's object store: give '--ray' too")
        if batch and (continuous or len(paths) < 2 or _parallel_streams(paths)):
            raise InvalidParameterError(
                "'--ray'/'--workers' run a batch of independent files: give several files of one format and "
                "'--day-by-day' (a continuous run is one replay)"
            )
        if batch and learning is not None:
            raise InvalidParameterError(
                f"'--ray'/'--workers': the learning allocator {learning.name!r} carries its posterior from file to "
                "file (a chain, not a batch of independent files); leave it out of --allocator or run without them"
            )
        if batch:
            executor = executor_for(ray, workers, retries, ship_data=ship_data)
    load_kernels(replay_loop=True)
    if executor is not None:
        with user_errors():
            results, report, book_warmup_s, days, days_stopped = _backtest_batch(
                paths, names, app_cfg, rcfg, on_error, json_out, out, executor
            )
    elif len(paths) > 1 and not continuous and not _parallel_streams(paths):
        with user_errors():
            out.mkdir(parents=True, exist_ok=True)
            results, report, book_warmup_s, days, days_stopped = _backtest_days(
                paths, names, app_cfg, rcfg, on_error, json_out, out, carry
            )
    else:
        info: dict[str, float] = {}
        try:
            with user_errors():
                out.mkdir(parents=True, exist_ok=True)
                with _progress("backtest", json_out) as advance:
                    results, report = run_backtest(
                        paths if len(paths) > 1 else file, allocs, app=app_cfg, config=rcfg, on_error=on_error,  # type: ignore[arg-type]
                        out_dir=out, progress=advance, info=info, learner=carry["learner"],
                    )  # fmt: skip
                carry["learner"] = next((r.learner for r in results.values() if r.learner is not None), None)
        except ReplayInterrupted as stop:
            if not stop.results:
                interrupted("the replay had not quoted yet; nothing but the fills so far was written")
            results, report, cut_short = stop.results, stop.report, True
        book_warmup_s = info.get("book_warmup_s", 0.0)
        if report is not None:
            for w in report.warnings:
                warn(w)
    stopped = cut_short or days_stopped
    metrics = {n: r.metrics() for n, r in results.items()}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shown = str(file) if len(paths) == 1 else " ".join(str(x) for x in paths)
    notes = [
        f"command: hyper-make backtest {shown} --allocator {','.join(names)} --refresh-s {refresh_s:g} "
        f"--latency-ms {latency_ms:g} --latency {latency} --queue {queue} --queue-n {queue_n:g} "
        + (f"--response-latency-ms {response_latency_ms:g} " if response_latency_ms is not None else "")
        + f"--cross {cross} --equal-ts {equal_ts} "
        f"--warmup-s {warmup_s:g} --markout-s {markout_s:g} --seed {seed}" + (f" --config {config}" if config else ""),
        f"machine: {_machine()}; date: {when}",
        "replayed market: our orders do not move it; model_impact_usd is the impact model's expected cost of the "
        "ladders shown (forward + round-trip), scaled from the ladder horizon to each refresh interval",
        f"PnL split: spread capture vs the mid at the fill, adverse selection = mid move over {markout_s:g} s, fees "
        "(maker), inventory = the rest of cash + q_T·mid_T",
    ]
    short = _too_short(results, refresh_s)
    if short:
        notes.insert(0, f"TOO SHORT TO JUDGE: {short}")
    n_days = len({row["file"] for row in days})
    if days:
        notes.insert(0, f"DAY BY DAY: {n_days} of {len(paths)} files replayed one after the other, each from a flat "
                        "position with its own book (a file without a snapshot warms up), each streamed in chunks; "
                        "PnL, fills and fees are summed, markouts and effective levels weighted by filled size and "
                        "quoted refreshes; per file in days.csv")  # fmt: skip
    elif len(paths) > 1 and not _parallel_streams(paths):
        notes.insert(0, f"CONTINUOUS: {len(paths)} files replayed as one run (the book, position, orders and cash "
                        "carry from one file to the next; --day-by-day for one replay per file)")  # fmt: skip
    if days_stopped:
        notes.insert(0, f"INTERRUPTED (Ctrl-C): partial report, {n_days} of {len(paths)} files replayed in full")
    elif stopped:
        reached = max((float(r.equity[0][-1]) for r in results.values() if r.equity[0].size), default=0.0)
        notes.insert(0, f"INTERRUPTED (Ctrl-C): partial report: the allocators replay together, refresh by "
                        f"refresh; every one's results cover the first {reached:.0f} s of the data")  # fmt: skip
    if executor is not None:
        notes[1:1] = batch_notes(executor)
    if report is not None and report.warmups:
        notes.insert(0, _book_note(report, results, book_warmup_s, warmup_s))
    if report is not None:
        notes.append(f"data: {report.events:,} events, messages {dict(report.message_counts)}")
        notes += [f"data warning: {w}" for w in report.warnings]
        if report.skipped:
            notes.append(f"skipped: {dict(report.skipped)}; first: {'; '.join(report.skipped_examples)}")
        if report.error:
            notes.insert(0, f"STOPPED EARLY at a bad line, results cover the data before it: {report.error}")
    # the replayed PnL's parts, and beside them (not part of it) the impact model's cost of the ladders shown
    decomposition = {
        n: {k.removesuffix("_usd"): r.pnl[k] for k in
            ("spread_capture_usd", "adverse_selection_usd", "fees_usd", "inventory_usd")}
        | {"model_impact_not_in_pnl": r.pnl["model_impact_usd"]}
        for n, r in results.items()
    }  # fmt: skip
    with user_errors():
        summary = write_report(
            out,
            title=f"Replay backtest: {_names(paths)}" + (" (PARTIAL: interrupted)" if stopped else ""),
            metrics=metrics,
            equity={n: r.equity for n, r in results.items()},
            ladder_shapes={n: r.shapes for n, r in results.items() if r.shapes.size},
            decomposition=decomposition,
            notes=notes,
            extra_json={
                "read_report": report.to_dict() if report else None,
                "book_warmup_s": book_warmup_s,
                "fills_in_resync_warmups": _fills_in_resyncs(report, results) if report else {},
                "partial": stopped or bool(report and report.error),
            },
        )
        if days:
            _write_days(out / "days.csv", days)
        # fills_<allocator>.csv and equity_<allocator>.csv were written as the replay went
        if learning is not None and learning.name in results:
            save_learner(learner_state, carry["learner"])
            if carry["learner"] is not None:
                write_learner_report(carry["learner"], out, title=f"learned on {_names(paths)}")
    if json_out:
        source = str(file) if len(paths) == 1 else [str(x) for x in paths]
        print_json({"file": source, "allocators": metrics, "report": str(summary), "interrupted": stopped,
                    "too_short": short, "read_report": report.to_dict() if report else None,
                    "book_warmup_s": book_warmup_s})  # fmt: skip
    else:
        title = f"replay of {_names(paths)}: refresh {refresh_s:g} s, {queue} queue, latency {latency_ms:g} ms"
        render_metrics(title, metrics, BACKTEST_COLUMNS)
        out_console.print(f"report: {summary}")
    if executor is not None:
        write_failures(out, executor)
    if days_stopped:
        interrupted(f"kept a partial report of {n_days} of {len(paths)} files in {out}")
    if executor is not None and executor.failures:
        warn_failures(executor)
        fail(f"{len(executor.failures)} files failed on every attempt (see {out / 'failures.json'}); the report "
             "holds the others", code=1)  # fmt: skip
    elif stopped:
        interrupted(f"kept a partial report of {len(results)} allocators, cut short by Ctrl-C, in {out}")
    if report is not None and report.skip_summary():
        warn(str(report.skip_summary()))
    if short:
        warn(short)
    if report is not None and report.error:
        fail(report.error)


def _rolling_cmd(
    paths: list[Path],
    names: list[str],
    app_cfg: AppConfig,
    rcfg: ReplayConfig,
    block_s: float,
    on_error: str,
    out: Path,
    executor: Any,
    json_out: bool,
) -> None:
    """``backtest FILE... --rolling``: one walk-forward per consecutive pair of files, as a batch; ``folds.csv``,
    ``walk_forward.json`` and ``summary.md``. Each allocator's total is the sum of its folds' test PnL (USD), its
    standard error ``sqrt(Σ se²)`` (the folds' test data do not overlap)."""
    import csv

    from ..backtest.batch import FileLog, fold_manifest, plan_folds, run_files, run_fold

    with user_errors():
        plan = plan_folds(paths, names, app_cfg, rcfg, block_s, on_error)
        log = FileLog(out, fold_manifest(plan))
    with progress("walk-forward", len(plan), log.resumed, quiet=json_out) as advance:
        stopped = run_files(plan, log, executor, on_done=lambda _it: advance(), task=run_fold)  # type: ignore[arg-type]
    rows, totals = [], {n: {"pnl_usd": 0.0, "var": 0.0, "folds": 0} for n in names}
    for it in plan:
        res = log.done.get(it.index)
        if res is None:
            continue
        for n in names:
            m, ci = res.metrics[n], res.intervals[n]  # type: ignore[attr-defined]
            rows.append({"fold": it.index, "train": it.train, "test": it.test, "allocator": n,
                         "pnl_usd": m["pnl_usd"], "pnl_ci_lo": ci["lo"], "pnl_ci_hi": ci["hi"], "pnl_se": ci["se"],
                         "fills": m.get("fills", 0.0)})  # fmt: skip
            totals[n]["pnl_usd"] += m["pnl_usd"]
            totals[n]["var"] += ci["se"] ** 2 if math.isfinite(ci["se"]) else math.nan
            totals[n]["folds"] += 1
    summary = {n: {"pnl_usd": t["pnl_usd"], "pnl_se": math.sqrt(t["var"]), "folds": t["folds"]}
               for n, t in totals.items()}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    if rows:
        with (out / "folds.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    notes = [f"rolling walk-forward: {len(log.done)} of {len(plan)} folds (fold k trains on file k, is judged on "
             f"file k+1; {log.resumed} from an earlier run in this folder); total = Σ test PnL, se = √Σ se² "
             f"(block bootstrap, blocks of {block_s:g} s)", *batch_notes(executor)]  # fmt: skip
    if stopped:
        notes.insert(0, f"INTERRUPTED (Ctrl-C): {len(log.done)} of {len(plan)} folds; rerun to resume")
    lines = [f"# Rolling walk-forward over {len(paths)} files", "", *(f"- {x}" for x in notes), "",
             "| allocator | Σ test PnL (USD) | se (USD) | folds |", "|---|---:|---:|---:|",
             *(f"| {n} | {v['pnl_usd']:.2f} | {v['pnl_se']:.2f} | {v['folds']} |"
               for n, v in summary.items())]  # fmt: skip
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = {"folds": rows, "allocators": summary, "notes": notes, "total_folds": len(plan),
           "finished_folds": len(log.done), "resumed_folds": log.resumed, "interrupted": stopped}  # fmt: skip
    (out / "walk_forward.json").write_text(json.dumps(to_jsonable(doc), indent=1) + "\n", encoding="utf-8")
    write_failures(out, executor)
    if json_out:
        print_json({**doc, "report": str(out / "summary.md")})
    else:
        t = compact_table()
        for col in ("allocator", "Σ test PnL", "se", "folds"):
            t.add_column(col, justify="left" if col == "allocator" else "right")
        for n, v in summary.items():
            t.add_row(n, f"{v['pnl_usd']:.2f}", f"{v['pnl_se']:.2f}", str(v["folds"]))
        print_table(t, title=f"rolling walk-forward, {len(plan)} folds", legend="; ".join(notes))
        out_console.print(f"report: {out / 'summary.md'}")
    if stopped:
        interrupted(f"kept {len(log.done)} of {len(plan)} folds in {out}; rerun the same command to resume")
    if executor.failures:
        warn_failures(executor)
        fail(f"{len(executor.failures)} folds failed on every attempt (see {out / 'failures.json'})", code=1)


def _walk_forward_cmd(
    test: list[Path],
    train: list[Path] | None,
    train_frac: float | None,
    allocs: dict[str, Any],
    app_cfg: AppConfig,
    rcfg: ReplayConfig,
    learner: Any,
    block_s: float,
    on_error: str,
    out: Path,
    learner_state: Path | None,
    json_out: bool,
) -> None:
    """``backtest --train/--train-frac``: :func:`hyper_make.backtest.walkforward.walk_forward` and its report."""
    from ..backtest.walkforward import split_events, walk_forward

    if train_frac is not None:
        events, _ = load_events(test[0], on_error=on_error, keep_partial=True)  # type: ignore[arg-type]
        with _option_names():
            train_src, test_src = split_events(events, train_frac)
        shown = f"{test[0]} split at {train_frac:g} of its time"
    else:
        assert train is not None
        train_src, test_src = (train if len(train) > 1 else train[0]), (test if len(test) > 1 else test[0])
        shown = f"train {_names(train)}, test {_names(test)}"
    load_kernels(replay_loop=True)
    with err_console.status("walk-forward: calibrating, training, replaying"), _option_names():
        res = walk_forward(train_src, test_src, allocs, app=app_cfg, config=rcfg, learner=learner,  # type: ignore[arg-type]
                           block_s=block_s, on_error=on_error)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration_train.toml").write_text(res.calibration_toml, encoding="utf-8")
    metrics = {}
    for n, r in res.results.items():
        ci = res.intervals[n]
        metrics[n] = r.metrics() | {"pnl_ci_lo": ci["lo"], "pnl_ci_hi": ci["hi"], "pnl_se": ci["se"]}
    best = max(metrics, key=lambda n: metrics[n]["pnl_usd"])
    notes = [f"walk-forward: {shown}; block bootstrap over time, blocks of {res.block_s:g} s "
             f"({res.block_refreshes} refreshes), 95 % percentile intervals", *res.notes]  # fmt: skip
    write_report(out, title=f"Walk-forward: {shown}", metrics=metrics,
                 equity={n: r.equity for n, r in res.results.items()}, notes=notes,
                 extra_json={"walk_forward": res.to_dict()})  # fmt: skip
    (out / "walk_forward.json").write_text(json.dumps(to_jsonable(res.to_dict()), indent=1), encoding="utf-8")
    for n, r in res.results.items():
        r.fills.write_csv(out / f"fills_{n}.csv")
    if res.learner is not None:
        save_learner(learner_state, res.learner)
        write_learner_report(res.learner, out, title="learned after the training data")
    if json_out:
        print_json({"walk_forward": res.to_dict(), "allocators": metrics, "report": str(out / "summary.md")})
        return
    t = compact_table()
    for col in ("allocator", "PnL", "95 % CI", f"− {best}", "95 % CI ", "fills"):
        t.add_column(col, justify="left" if col == "allocator" else "right", no_wrap=True)
    for n, m in metrics.items():
        d = res.paired[n].get(best)
        t.add_row(n, f"{m['pnl_usd']:.2f}", f"[{m['pnl_ci_lo']:.1f}, {m['pnl_ci_hi']:.1f}]",
                  "" if d is None else f"{d['total']:+.2f}", "" if d is None else f"[{d['lo']:+.1f}, {d['hi']:+.1f}]",
                  f"{m['fills']:.0f}")  # fmt: skip
    print_table(t, title=f"walk-forward, {shown}", legend="; ".join(notes))
    out_console.print(f"report: {out / 'summary.md'}")


__all__ = ["backtest_cmd", "calibrate_cmd"]
