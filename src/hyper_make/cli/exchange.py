"""``hyper-make exchange``: serve the local Hyperliquid on loopback for paper trading and tests."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from ..data import load_events
from ..errors import InvalidParameterError
from ..exchange_local import (
    Faults,
    LocalExchange,
    LocalServer,
    MarketModel,
    RandomWalkMarket,
    ReplayMarket,
    SimMarket,
)
from ..exchange_local.market import (
    PAPER_MEAN_TRADE_USD,
    PAPER_SIGMA_FRAC_PER_SQRT_S,
    PAPER_THROUGH_BPS_MEAN,
    PAPER_TRADES_PER_S,
)
from ..instrument import PERP_SPECS, InstrumentSpec
from ..sim import MarketConfig
from ._common import app, checked, interrupted, print_json, seed_option, user_errors

#: Where each listed perp's simulated mid starts (USD): round numbers near 2026 prices, not live data.
START_MIDS_USD = {"BTC": 90_000.5, "ETH": 3_000.05, "SOL": 150.005, "HYPE": 30.0005}


@app.command()
def exchange(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 = any free port).")] = 3001,
    coins: Annotated[str, typer.Option(help="Comma-separated perps to list, in asset-index order.")] = "BTC,ETH",
    seed: Annotated[int, seed_option("Seed of the simulated market.")] = 0,
    balance_usd: Annotated[float, typer.Option(help="USD balance of an account on first use.")] = 100_000.0,
    sigma_frac: Annotated[
        float,
        typer.Option(
            help="Mid volatility, fraction of price per √s (default: the default config's).",
            show_default=f"{PAPER_SIGMA_FRAC_PER_SQRT_S:.3g}",
        ),
    ] = PAPER_SIGMA_FRAC_PER_SQRT_S,
    trades_per_s: Annotated[
        float, typer.Option(help="Others' taker trades per second per coin, both sides.")
    ] = PAPER_TRADES_PER_S,
    through_bps_mean: Annotated[
        float,
        typer.Option(
            help="Mean depth (bps) a taker trade prints beyond the touch (exponential).",
            show_default=f"{PAPER_THROUGH_BPS_MEAN:.3g}",
        ),
    ] = PAPER_THROUGH_BPS_MEAN,
    mean_trade_usd: Annotated[
        float,
        typer.Option(
            help="Mean notional of a taker trade (USD, exponential).", show_default=f"{PAPER_MEAN_TRADE_USD:,.0f}"
        ),
    ] = PAPER_MEAN_TRADE_USD,
    speed: Annotated[float, typer.Option(help="Market seconds per wall-clock second.")] = 1.0,
    tick_s: Annotated[float, typer.Option(help="Wall-clock seconds between market steps.")] = 0.2,
    sim: Annotated[
        bool,
        typer.Option("--sim", help="Drive the market with the event simulator (one coin; it matches one account)."),
    ] = False,
    replay: Annotated[
        Path | None,
        typer.Option(help="Replay a recorded feed (any format hyper_make.data reads) instead of the random walk."),
    ] = None,
    duration_s: Annotated[
        float | None,
        typer.Option(
            help="Stop after this many wall-clock seconds, >= 0 (default: until Ctrl-C).",
            callback=checked(lo=0.0, unit="s"),
        ),
    ] = None,
    fault_error_frac: Annotated[float, typer.Option(help="Fault: fraction of actions answered with an error.")] = 0.0,
    fault_delay_s: Annotated[float, typer.Option(help="Fault: delay (s) of slow HTTP answers.")] = 0.0,
    fault_delay_frac: Annotated[float, typer.Option(help="Fault: fraction of HTTP answers delayed.")] = 0.0,
    fault_ws_drop_s: Annotated[float | None, typer.Option(help="Fault: drop each WebSocket after S s.")] = None,
    fault_duplicate_fills: Annotated[float, typer.Option(help="Fault: fraction of fill messages sent twice.")] = 0.0,
    fault_reorder_fills: Annotated[bool, typer.Option(help="Fault: swap consecutive fill messages.")] = False,
    fault_clock_skew_ms: Annotated[int, typer.Option(help="Fault: the exchange clock's offset (ms).")] = 0,
    funding_rate_frac: Annotated[
        float, typer.Option(help="Funding rate per interval (fraction of position value; longs pay if > 0).")
    ] = 0.0,
    funding_interval_s: Annotated[float, typer.Option(help="Market seconds between funding payments.")] = 3_600.0,
    schedule_cancel_min_volume_usd: Annotated[
        float,
        typer.Option(help="Refuse scheduleCancel to accounts that traded less (USD); Hyperliquid: 1000000."),
    ] = 0.0,
) -> None:
    """Serve a local Hyperliquid (POST /info, POST /exchange) on 127.0.0.1 with a simulated market.

    The default random walk is the market the default configuration describes (σ, volume, and prints reaching
    depth δ at the default fill model's rate), so the default run against it fills as its model expects.
    """
    with user_errors():
        names = [c.strip().upper() for c in coins.split(",") if c.strip()]
        unknown = [c for c in names if c not in PERP_SPECS]
        if not names or unknown:
            raise InvalidParameterError(f"'--coins' must list perps among {sorted(PERP_SPECS)}; got {coins!r}")
        specs = [InstrumentSpec(coin=c, sz_decimals=PERP_SPECS[c].sz_decimals, asset_id=i) for i, c in enumerate(names)]
        market: MarketModel
        if (sim or replay is not None) and len(specs) != 1:
            raise InvalidParameterError(f"'--sim' and '--replay' need exactly one coin in '--coins'; got {coins!r}")
        if sim and replay is not None:
            raise InvalidParameterError("choose one of '--sim' and '--replay'")
        if sim:
            mid0 = START_MIDS_USD[specs[0].coin]
            cfg = MarketConfig(mid0_usd=mid0, tick_usd=float(specs[0].tick_at(mid0)))
            market = SimMarket(specs[0], cfg, seed=seed)
        elif replay is not None:
            events, _ = load_events(replay)
            market = ReplayMarket(specs[0], events)
        else:
            market = RandomWalkMarket(
                {s: START_MIDS_USD[s.coin] for s in specs},
                sigma_frac_per_sqrt_s=sigma_frac,
                trades_per_s=trades_per_s,
                through_bps_mean=through_bps_mean,
                mean_trade_usd=mean_trade_usd,
                seed=seed,
            )
        faults = Faults(
            exchange_error_frac=fault_error_frac,
            http_delay_s=fault_delay_s,
            http_delay_frac=fault_delay_frac,
            ws_drop_after_s=fault_ws_drop_s,
            duplicate_fill_frac=fault_duplicate_fills,
            reorder_fills=fault_reorder_fills,
            clock_skew_ms=fault_clock_skew_ms,
            seed=seed,
        )
        ex = LocalExchange(
            specs,
            market,
            starting_balance_usd=balance_usd,
            faults=faults,
            schedule_cancel_min_volume_usd=schedule_cancel_min_volume_usd,
            funding_rate_frac=funding_rate_frac,
            funding_interval_s=funding_interval_s,
        )
        try:
            server = LocalServer(ex, port=port, tick_s=tick_s, speed=speed)
        except OSError as exc:
            raise InvalidParameterError(f"'--port' {port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
    print_json({"url": server.url, "coins": names, "seed": seed})
    sys.stdout.flush()  # a supervising process reads the URL while we serve
    print(f"local exchange on {server.url} (Ctrl-C to stop)", file=sys.stderr)
    by_ctrl_c = False
    try:
        threading.Event().wait(duration_s)
    except KeyboardInterrupt:
        by_ctrl_c = True
    finally:
        server.close()
    if by_ctrl_c:
        interrupted("local exchange stopped by Ctrl-C")
    print("local exchange stopped", file=sys.stderr)
