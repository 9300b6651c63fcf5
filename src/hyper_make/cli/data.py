"""``hyper-make calibrate FILE...`` and ``hyper-make backtest FILE...``: model fitting and replay on recorded data.

Both read any supported recording (Binance futures/spot, Hyperliquid live or archive, Tardis CSV, hftbacktest
``.npz``); several files given together are merged in time order (a Tardis book file and its trades file).
A bad line stops the read (``--on-error stop``, the default): what was read before it is still used and
written (marked partial in the files), then the error is printed on one line and the exit code is 2.
``--on-error skip`` skips bad lines and says on stderr what it skipped (counts by reason, the first lines). The
output folder (``--out``) is checked before any work runs. Ctrl-C keeps what was written, marked partial, and exits 130.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import platform
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..allocate import ALLOCATORS
from ..backtest import ReplayConfig, ReplayResult, run_backtest
from ..calibrate import MARKOUT_HORIZONS_S, CalibrationResult, plot_calibration
from ..calibrate import calibrate as fit_calibration
from ..data.readers import ReadReport
from ..errors import InvalidParameterError
from ..report import write_report
from ._common import (
    EstimatorHalflifeS,
    EstimatorPriorWeightS,
    RequotePriceBps,
    RequoteSizeFrac,
    allocator_names,
    app,
    check_out_dir,
    checked,
    compact_table,
    fail,
    interrupted,
    load_app_config,
    out_console,
    print_json,
    print_table,
    quoter_config,
    render_metrics,
    seed_option,
    user_errors,
    warn,
)

_FILES_HELP = (
    "Recorded feed (Binance futures/spot, Hyperliquid, Hyperliquid archive .lz4, Tardis CSV, .npz); several "
    "files (a Tardis book file and its trades file, an archive file and a trades recording) merge in time order."
)
_ON_ERROR_HELP = "On a bad line: 'stop' (use what was read, then exit 2) or 'skip' (skip it, say so, go on)."

#: A replay quoting for less than this (s) or with fewer fills than :data:`MIN_FILLS_TO_JUDGE` warns that it
#: is too short to judge the allocators by.
MIN_QUOTING_S = 60.0
MIN_FILLS_TO_JUDGE = 10


def _source(files: list[Path]) -> Path | list[Path]:
    """What the readers take: the one file, or the list to merge."""
    return files[0] if len(files) == 1 else files


def _label(files: list[Path]) -> str:
    return " + ".join(str(f) for f in files)


def _names(files: list[Path]) -> str:
    return " + ".join(f.name for f in files)


def _check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "skip"):
        raise InvalidParameterError(f"'--on-error' must be one of ['skip', 'stop']; got {on_error!r}")


#: ReplayConfig field -> the backtest option that sets it (errors name the option the user typed).
_FLAGS = {
    "refresh_s": "--refresh-s", "latency_ms": "--latency-ms", "latency": "--latency", "queue": "--queue",
    "queue_n": "--queue-n", "markout_s": "--markout-s", "warmup_s": "--warmup-s", "seed": "--seed",
}  # fmt: skip


def _flag_names(message: str) -> str:
    for name, flag in _FLAGS.items():
        message = message.replace(f"'{name}'", f"'{flag}'")
    return message


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()}, {os.cpu_count()} CPUs"


@app.command("calibrate")
def calibrate_cmd(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help=_FILES_HELP)],
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
        check_out_dir(out)
        result = fit_calibration(
            _source(files),
            reference_lag_s=reference_lag_s,
            max_depth_bps=max_depth_bps,
            on_error=on_error,
            keep_partial=True,
        )
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
        "source": _label(files),
        "toml": str(toml_path),
        "plots": [str(p) for p in plots],
        "partial": result.is_partial(adverse_horizon_s),
        "not_fitted": missing,
    }
    if json_out:
        print_json(doc)
    else:
        _render_calibration(_names(files), result, missing)
        out_console.print(f"config: {toml_path}")
        out_console.print(f"plots: {', '.join(str(p) for p in plots) or 'none (nothing to plot)'}")
    for w in result.read_report.get("warnings", []):
        warn(w)
    if result.read_report.get("skip_summary"):
        warn(result.read_report["skip_summary"])
    if missing:
        why = "; ".join(f"{k} ({reason})" for k, reason in missing.items())
        warn(f"partial calibration of {_label(files)}: not fitted: {why}; {toml_path} says so in [meta]")
    if result.stopped_at:
        fail(result.stopped_at)


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


@app.command("backtest")
def backtest_cmd(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help=_FILES_HELP)],
    allocator: Annotated[
        str | None,
        typer.Option("--allocator", "-a", help="Comma-separated allocators (default: every registered one)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML: [market] account fields, [ladder], [allocator.<name>], [quoter]."),
    ] = None,
    refresh_s: Annotated[float, typer.Option("--refresh-s", help="Ladder refresh interval (s).")] = 1.0,
    latency_ms: Annotated[float, typer.Option(help="Order entry / cancel latency (ms).")] = 50.0,
    latency: Annotated[str, typer.Option(help="'constant' or 'feed' (adds the feed's own delay).")] = "constant",
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
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout instead of tables.")] = False,
) -> None:
    """Replay a recording with each allocator side by side and write a report folder like 'simulate'."""
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
        try:
            rcfg = ReplayConfig(
                refresh_s=refresh_s, latency_ms=latency_ms, latency=latency, queue=queue, queue_n=queue_n,  # type: ignore[arg-type]
                markout_s=markout_s, warmup_s=warmup_s, seed=seed,
            )  # fmt: skip
        except InvalidParameterError as exc:
            raise InvalidParameterError(_flag_names(str(exc))) from None
        allocs = {n: app_cfg.make_allocator(n) for n in names}
        check_out_dir(out)
    done: dict[str, ReplayResult] = {}
    report: ReadReport | None = None
    try:
        with user_errors():
            results, report = run_backtest(
                _source(files), allocs, app=app_cfg, config=rcfg, on_error=on_error,  # type: ignore[arg-type]
                on_result=done.__setitem__,
            )  # fmt: skip
    except KeyboardInterrupt:
        if not done:
            interrupted("no allocator had finished; nothing was written")
        results = done
    stopped = len(results) < len(names)
    metrics = {n: r.metrics() for n, r in results.items()}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        f"command: hyper-make backtest {' '.join(map(str, files))} --allocator {','.join(names)} "
        f"--refresh-s {refresh_s:g} "
        f"--latency-ms {latency_ms:g} --latency {latency} --queue {queue} --queue-n {queue_n:g} "
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
    if stopped:
        not_run = ", ".join(n for n in names if n not in results)
        notes.insert(0, f"INTERRUPTED (Ctrl-C): partial report, {len(results)} of {len(names)} allocators finished "
                        f"({', '.join(results)}); not run: {not_run}")  # fmt: skip
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
            title=f"Replay backtest: {_names(files)}" + (" (PARTIAL: interrupted)" if stopped else ""),
            metrics=metrics,
            equity={n: r.equity for n, r in results.items()},
            ladder_shapes={n: r.shapes for n, r in results.items() if r.shapes.size},
            decomposition=decomposition,
            notes=notes,
            extra_json={
                "read_report": report.to_dict() if report else None,
                "partial": stopped or bool(report and report.error),
            },
        )
        for n, r in results.items():
            f = r.fills
            np.savetxt(
                out / f"fills_{n}.csv",
                np.column_stack([f.ts_ns, f.side, f.price_usd, f.qty_coins, f.level, f.mid_usd]),
                delimiter=",", header="ts_ns,side,price_usd,qty_coins,level,mid_usd", comments="",
                fmt=["%d", "%d", "%.10g", "%.10g", "%d", "%.10g"],
            )  # fmt: skip
    if json_out:
        print_json({"file": _label(files), "allocators": metrics, "report": str(summary), "interrupted": stopped,
                    "too_short": short, "read_report": report.to_dict() if report else None})  # fmt: skip
    else:
        title = f"replay of {_names(files)}: refresh {refresh_s:g} s, {queue} queue, latency {latency_ms:g} ms"
        render_metrics(title, metrics, BACKTEST_COLUMNS)
        out_console.print(f"report: {summary}")
    if stopped:
        interrupted(f"kept a partial report of {len(results)} of {len(names)} allocators in {out}")
    if report is not None:
        for w in report.warnings:
            warn(w)
    if report is not None and report.skip_summary():
        warn(str(report.skip_summary()))
    if short:
        warn(short)
    if report is not None and report.error:
        fail(report.error)


__all__ = ["backtest_cmd", "calibrate_cmd"]
