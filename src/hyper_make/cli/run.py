"""``hyper-make run``: the market-making loop on a Hyperliquid-compatible exchange (local, testnet or mainnet)."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import requests
import typer
from hyperliquid.utils.error import Error as SdkError
from rich.live import Live
from rich.table import Table

from .._validate import check_real
from ..config import load_config
from ..connectors.hyperliquid import (
    HyperliquidClient,
    fetch_meta,
    is_mainnet,
    load_meta,
    network_url,
    normalize_base_url,
)
from ..connectors.keys import ephemeral_wallet, load_wallet
from ..connectors.rate_limit import RateLimiter
from ..errors import HyperMakeError, InvalidParameterError
from ..live import LoopConfig, LoopStatus, QuotingLoop
from ..live.view import render
from ._common import (
    EXIT_INTERRUPTED,
    EstimatorHalflifeS,
    EstimatorPriorWeightS,
    LearnerStateFile,
    RequotePriceBps,
    RequoteSizeFrac,
    allocator_names,
    app,
    check_learner_state,
    err_console,
    load_kernels,
    load_learner,
    out_console,
    print_json,
    quoter_config,
    save_learner,
    seed_option,
    user_errors,
)

#: Exit codes of ``run`` (2 is bad input, as for every command).
#: A risk stop (or the exchange failing during the run), after every order was cancelled and confirmed gone.
EXIT_RISK_STOP = 1
#: The end could not be confirmed: orders may still rest on the exchange, or its final state was not read.
EXIT_UNCONFIRMED = 3
#: The learner state of a run is saved this often (s of wall time) while it runs, and at its end.
LEARNER_SAVE_EVERY_S = 60.0
RISK_STOPS = ("max_drawdown", "position_limit", "dead_man_refused", "request_budget")


class _LibraryLogHandler(logging.Handler):
    """A library's log record (websocket-client, the SDK) as one ``warning: <logger>: <message>`` line.

    The line goes to ``sink``: stderr by default; the live view's log lines while it is on screen (a write to the
    terminal from another thread would tear the view), printed on stderr once it is gone.
    """

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.sink: Callable[[str], None] = _print_err

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            self.sink(f"warning: {record.name}: {text.splitlines()[0] if text else record.levelname}")
        except Exception:  # a log line must never take the loop down
            self.handleError(record)


def _print_err(line: str) -> None:
    err_console.print(line, soft_wrap=True, highlight=False, markup=False)


def route_library_logs(sink: Callable[[str], None] = _print_err) -> None:
    """Send WARNING-and-above records of every logger to ``sink`` as one line each (one handler, idempotent).

    With a handler on the root logger, the SDK's module-level ``logging.debug`` calls no longer install
    ``logging.basicConfig``'s raw ``ERROR:websocket:...`` lines, which broke the Rich live view.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _LibraryLogHandler)), None)
    if handler is None:
        handler = _LibraryLogHandler(level=logging.WARNING)
        root.addHandler(handler)
    handler.sink = sink


def _print_lines_once(lines: list[str]) -> None:
    """Each distinct line once, in first-seen order, with its count (``(×6)``) when it repeated."""
    for line, n in Counter(lines).items():
        _print_err(line if n == 1 else f"{line} (×{n})")


@app.command()
def run(
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API URL, e.g. http://127.0.0.1:3001 for the local exchange.")
    ] = None,
    testnet: Annotated[bool, typer.Option("--testnet", help="Hyperliquid's testnet.")] = False,
    mainnet: Annotated[bool, typer.Option("--mainnet", help="Hyperliquid's mainnet (real funds).")] = False,
    coin: Annotated[str | None, typer.Option("--coin", help="Perp to quote (default: config).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML: the prior snapshot, ladder and allocator options.")
    ] = None,
    allocator: Annotated[
        str | None, typer.Option("--allocator", "-a", help="Registered allocator name (default: from config).")
    ] = None,
    max_position: Annotated[
        float | None,
        typer.Option(
            "--max-position-coins", help="Absolute position limit (coins; default: the config's max_position_coins)."
        ),
    ] = None,
    max_drawdown_usd: Annotated[
        float | None,
        typer.Option(help="Stop when PnL falls this far below its peak (USD; default [quoter], 1000)."),
    ] = None,
    refresh_s: Annotated[float, typer.Option(help="Seconds between ladder rebuilds.")] = 1.0,
    duration_s: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")] = None,
    stale_after_s: Annotated[
        float | None, typer.Option(help="Stop quoting when the book is older than this (s; default [quoter], 5).")
    ] = None,
    dead_man_s: Annotated[float, typer.Option(help="scheduleCancel this far ahead (s, >= 5).")] = 30.0,
    require_dead_man: Annotated[
        bool,
        typer.Option(
            "--require-dead-man/--no-require-dead-man",
            help="Stop if the exchange refuses scheduleCancel (Hyperliquid: under $1M traded); default: quote on.",
        ),
    ] = False,
    reconcile_s: Annotated[float, typer.Option(help="Full /info reconcile at least this often (s).")] = 60.0,
    request_budget_warn_s: Annotated[
        float, typer.Option(help="Warn when the address request budget runs out within this many seconds.")
    ] = 600.0,
    min_requests_left: Annotated[
        int, typer.Option(help="Stop (exit 1) when fewer address requests than this are left.")
    ] = 300,
    http_timeout_s: Annotated[float, typer.Option(help="Timeout of every HTTP request (s).")] = 5.0,
    requote_price_bps: RequotePriceBps = None,
    requote_size_frac: RequoteSizeFrac = None,
    estimator_halflife_s: EstimatorHalflifeS = None,
    estimator_prior_weight_s: EstimatorPriorWeightS = None,
    reduce_only: Annotated[
        bool | None,
        typer.Option(
            "--reduce-only/--no-reduce-only",
            help="Mark orders that can only reduce the position reduce-only (rejected if the position moved first; "
            "default [quoter.orders], off).",
        ),
    ] = None,
    seed: Annotated[int, seed_option("Seed of the ladder's random components and client order ids.")] = 0,
    meta: Annotated[Path | None, typer.Option("--meta", help="Saved perp 'meta' JSON instead of /info.")] = None,
    keystore: Annotated[
        Path | None,
        typer.Option("--keystore", help="Encrypted keystore file (password: $HYPER_MAKE_KEYSTORE_PASSWORD or prompt)."),
    ] = None,
    ephemeral_key: Annotated[
        bool, typer.Option("--ephemeral-key", help="A fresh throwaway key (local exchange only: it has no funds).")
    ] = False,
    learner_state: LearnerStateFile = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")] = False,
) -> None:
    """Quote a ladder on one coin: rebuild every refresh, send the diff, guard the position; cancel all on exit."""
    with user_errors():
        if sum([base_url is not None, testnet, mainnet]) != 1:
            raise InvalidParameterError("give exactly one of '--base-url URL', '--testnet' and '--mainnet'")
        url = normalize_base_url(base_url) if base_url is not None else network_url(testnet)
        if ephemeral_key and (is_mainnet(url) or url == network_url(True)):
            raise InvalidParameterError("'--ephemeral-key' is for the local exchange: a fresh key has no funds")
        if is_mainnet(url) and not mainnet:
            raise InvalidParameterError("that URL is Hyperliquid's mainnet: pass '--mainnet' to trade real funds")
        cfg = load_config(config)
        name = coin.upper() if coin else cfg.spec.coin
        prior = cfg.snapshot
        if max_position is not None:
            check_real("--max-position-coins", max_position, lo=0.0, lo_open=True, unit="coins")
            prior = dataclasses.replace(prior, max_position_coins=max_position)
        quoter = quoter_config(
            cfg.quoter,
            requote_price_bps=requote_price_bps,
            requote_size_frac=requote_size_frac,
            estimator_halflife_s=estimator_halflife_s,
            estimator_prior_weight_s=estimator_prior_weight_s,
            max_drawdown_usd=max_drawdown_usd,
            stale_after_s=stale_after_s,
            reduce_only=reduce_only,
        )
        loop_cfg = LoopConfig(
            refresh_s=refresh_s,
            duration_s=duration_s,
            dead_man_s=dead_man_s,
            require_dead_man=require_dead_man,
            reconcile_s=reconcile_s,
            http_timeout_s=http_timeout_s,
            seed=seed,
            request_budget_warn_s=request_budget_warn_s,
            min_requests_left=min_requests_left,
        )
        names = allocator_names(allocator, single=True)
        alloc = cfg.make_allocator(names[0] if names else None)
        check_learner_state(learner_state, [alloc.name])
        learner = load_learner(learner_state, alloc, name)
        wallet = ephemeral_wallet() if ephemeral_key else load_wallet(keystore=keystore)
        try:
            meta_json = load_meta(meta) if meta is not None else fetch_meta(url, timeout_s=http_timeout_s)
        except (requests.RequestException, SdkError) as exc:
            raise InvalidParameterError(f"cannot read the exchange's meta at {url}: {type(exc).__name__}") from None
        client = HyperliquidClient(
            wallet, base_url=url, meta=meta_json, coin=name, timeout_s=http_timeout_s, limiter=RateLimiter()
        )
    live: Live | None = None
    if not json_out and out_console.is_terminal:
        live = Live(console=out_console, refresh_per_second=4, transient=False)
    # warnings during the run: on stderr at once without a live view; in the view while it shows (a write to the
    # terminal from another thread would tear it), then on stderr once it is gone
    held: list[str] = []
    say = held.append if live is not None else _print_err
    route_library_logs(lambda line: say(line))
    warned: set[str] = set()
    saved_at = [time.monotonic()]

    def on_status(s: LoopStatus) -> None:
        if learner_state is not None and time.monotonic() - saved_at[0] >= LEARNER_SAVE_EVERY_S:
            saved_at[0] = time.monotonic()  # a crash loses at most this much learning
            save_learner(learner_state, loop.quoter.learner, quiet=True)
        kind = s.warning.split(":")[0]  # once per kind, not once per refresh
        if s.warning and kind not in warned:
            warned.add(kind)
            say(f"warning: {s.warning}")
        if live is not None:
            live.update(render(s, name, prior.max_position_coins, log=held[-3:]))

    load_kernels()  # the loop loads them again before its first quote: ~2 ms once loaded
    loop = QuotingLoop(
        client,
        allocator=alloc,
        prior=prior,
        config=loop_cfg,
        quoter=quoter,
        ladder=cfg.ladder,
        on_status=on_status,
        learner=learner,
    )
    err_console.print(
        f"quoting {name} on {url} as {client.address} with '{loop.allocator.name}'; Ctrl-C stops", soft_wrap=True
    )
    try:
        if live is not None:
            try:
                with live:
                    summary = loop.run()
            finally:
                say = _print_err  # the view is gone: the rest goes to stderr
                _print_lines_once(held)
        else:
            summary = loop.run()
    except (requests.RequestException, SdkError, HyperMakeError) as exc:
        print(f"error: the exchange at {url} failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
        if loop.counters.orders_sent:  # before any order of ours, none of ours can rest
            _exit_on_unconfirmed_end(loop.summary())
        raise typer.Exit(EXIT_RISK_STOP) from None
    except KeyboardInterrupt:  # a second Ctrl-C, while the loop was cancelling: nothing is confirmed
        print("interrupted: while cancelling the orders at exit", file=sys.stderr)
        _exit_on_unconfirmed_end(loop.summary() | {"open_orders": None, "end_confirmed": False})
        raise typer.Exit(EXIT_UNCONFIRMED) from None
    finally:
        with user_errors():
            save_learner(learner_state, loop.quoter.learner)
    if json_out:
        print_json(summary)
    else:
        _render_summary(summary)
    if summary["stop_reason"] == "interrupted":
        print(f"interrupted: stopped after {summary['duration_s']:.1f} s (Ctrl-C)", file=sys.stderr)
    _exit_on_unconfirmed_end(summary)
    if summary["stop_reason"] in RISK_STOPS:
        raise typer.Exit(EXIT_RISK_STOP)
    if summary["stop_reason"] == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


def end_warning(s: dict[str, Any]) -> str | None:
    """The line to print when the run's end is not confirmed (orders may rest, or the final state is unread)."""
    if s.get("end_confirmed"):
        return None
    left = s.get("open_orders")
    if left == 0:
        return (
            "every order was cancelled and confirmed gone, but the exchange's final position and balance could not "
            "be read: check clearinghouseState before trusting the summary"
        )
    what = (
        "open orders unknown: openOrders could not be read after the last cancels"
        if left is None
        else f"{left} orders still rest on the exchange after the cancels"
    )
    state, until = s.get("dead_man_state"), s.get("dead_man_until_ms")
    if state == "set" and until is not None:
        when = datetime.fromtimestamp(until / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        dm = f"the dead-man switch is set: the exchange cancels every open order at {when}"
    elif state == "expired":
        dm = "the dead-man switch has fired: the exchange cancelled the orders open then"
    elif state == "refused":
        dm = "the exchange refused the dead-man switch: nothing cancels them; cancel them on the exchange"
    else:
        dm = "no dead-man switch was set: nothing cancels them; cancel them on the exchange"
    return f"orders may still rest on the exchange ({what}); {dm}"


def _exit_on_unconfirmed_end(summary: dict[str, Any]) -> None:
    warning = end_warning(summary)
    if warning is not None:
        print(f"error: {warning}", file=sys.stderr)
        raise typer.Exit(EXIT_UNCONFIRMED)


def _fmt(x: float | None, spec: str) -> str:
    """A number of the summary, or ``unknown`` when it could not be read."""
    return "unknown" if x is None else format(x, spec)


def _render_summary(s: dict[str, Any]) -> None:
    t = Table(title=f"{s['coin']} run: {s['stop_reason']} after {s['duration_s']:.1f} s ({s['allocator']})")
    t.add_column("")
    t.add_column("ours", justify="right")
    t.add_column("exchange", justify="right")
    ex = s.get("exchange", {})
    t.add_row("position (coins)", f"{s['position_coins']:+g}", _fmt(ex.get("position_coins"), "+g"))
    t.add_row("PnL (USD)", _fmt(s["pnl"], "+,.2f"), _fmt(ex.get("pnl_usd"), "+,.2f"))
    if s.get("funding_usd") is None:
        t.add_row("  of which funding (USD)", "unknown", "")
    elif s["funding_usd"]:
        t.add_row("  of which funding (USD)", f"{s['funding_usd']:+,.2f}", "")
    t.add_row("open orders at exit", "", _fmt(ex.get("open_orders"), "d"))
    out_console.print(t)
    out_console.print(
        f"fills {s['fills']} (volume {s['volume_usd']:,.0f} USD, fees {s['fees_usd']:,.2f} USD), "
        f"orders sent {s['orders_sent']}, cancels {s['cancels_sent']}, rejected {s['rejected']}, "
        f"max |position| {s['max_abs_position']:g} of {s['max_position_coins']:g} coins, "
        f"reconnects {s['reconnects']}, reconciled: {s['reconciled']}"
    )
    if s.get("dead_man_refused"):
        err_console.print(
            f"warning: the exchange refused the dead-man switch ({s['dead_man_refused']}): a crash would have "
            "left orders resting; --require-dead-man stops instead"
        )
