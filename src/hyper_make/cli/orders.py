"""``hyper-make orders --dry-run``: build the ladder, diff it against resting orders, sign the actions, print them.

Nothing is sent: live sending is the quoting loop's job (``hyper-make run``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .._json import read_json_file
from ..connectors.hyperliquid import (
    SCHEDULE_CANCEL_MIN_MS,
    NonceSource,
    build_requests,
    is_mainnet,
    load_meta,
    network_url,
    normalize_base_url,
    resting_from_json,
)
from ..connectors.keys import ephemeral_wallet, load_wallet
from ..connectors.rate_limit import IP_WEIGHT_PER_MINUTE
from ..errors import InvalidParameterError
from ..ladder import build_ladder
from ..strategy.orders import CloidFactory, OrderPlan, plan_orders
from ._common import (
    CONFIG_HELP,
    RequotePriceBps,
    RequoteSizeFrac,
    allocator_names,
    app,
    fail,
    load_app_config,
    out_console,
    print_json,
    quoter_config,
    seed_option,
    user_errors,
)

LIVE_REFUSAL = (
    "'orders' only prints: live sending is the quoting loop's job ('hyper-make run'); "
    "use --dry-run to build and sign the actions without sending them"
)


@app.command()
def orders(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build and sign the actions, print them, send nothing (required).")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help=CONFIG_HELP)] = None,
    allocator: Annotated[
        str | None, typer.Option("--allocator", "-a", help="Registered allocator name (default: from config).")
    ] = None,
    seed: Annotated[int, seed_option("Seed of the ladder's random components and of the client order ids.")] = 0,
    resting: Annotated[
        Path | None,
        typer.Option("--resting", help="JSON list of resting orders (ours, or Hyperliquid openOrders rows)."),
    ] = None,
    meta: Annotated[
        Path | None,
        typer.Option("--meta", help="Saved Hyperliquid perp 'meta' JSON: the coin's szDecimals and asset index."),
    ] = None,
    testnet: Annotated[bool, typer.Option("--testnet", help="Sign for Hyperliquid's testnet.")] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="API URL to sign for (overrides --testnet), e.g. a local one.")
    ] = None,
    ephemeral_key: Annotated[
        bool, typer.Option("--ephemeral-key", help="Sign with a freshly generated throwaway key (no key needed).")
    ] = False,
    keystore: Annotated[
        Path | None,
        typer.Option("--keystore", help="Encrypted keystore file (password: $HYPER_MAKE_KEYSTORE_PASSWORD or prompt)."),
    ] = None,
    schedule_cancel_s: Annotated[
        float | None,
        typer.Option(
            "--schedule-cancel-s", help="Also sign a dead-man switch cancelling all orders in S seconds (>= 5)."
        ),
    ] = None,
    requote_price_bps: RequotePriceBps = None,
    requote_size_frac: RequoteSizeFrac = None,
    reduce_only: Annotated[
        bool | None,
        typer.Option(
            "--reduce-only/--no-reduce-only",
            help="Mark orders that can only reduce the position reduce-only (default [quoter.orders], off).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")
    ] = False,
) -> None:
    """Diff the current ladder against the resting orders and print the signed Hyperliquid actions (dry run)."""
    if not dry_run:
        fail(LIVE_REFUSAL)
    with user_errors():
        if schedule_cancel_s is not None and not schedule_cancel_s * 1000 >= SCHEDULE_CANCEL_MIN_MS:
            raise InvalidParameterError(
                f"'--schedule-cancel-s' must be >= {SCHEDULE_CANCEL_MIN_MS / 1000:g} s; got {schedule_cancel_s}"
            )
        url = normalize_base_url(base_url) if base_url else network_url(testnet)
        chosen = allocator_names(allocator, single=True)
        # the lot, the asset index and the coin's spelling come from the exchange's meta when it is given
        cfg = load_app_config(config, meta=load_meta(meta) if meta is not None else None)
        om_cfg = quoter_config(
            cfg.quoter,
            requote_price_bps=requote_price_bps,
            requote_size_frac=requote_size_frac,
            reduce_only=reduce_only,
        ).orders
        spec = cfg.spec
        name = chosen[0] if chosen else cfg.allocator_name
        ladder = build_ladder(cfg.snapshot, spec, cfg.make_allocator(name), config=cfg.ladder, rng=seed)
        current = []
        if resting is not None:
            current = resting_from_json(read_json_file(resting, "resting-orders file"), spec.coin)
        plan = plan_orders(
            ladder,
            current,
            inventory_coins=cfg.snapshot.inventory_coins,
            max_position_coins=cfg.snapshot.max_position_coins,
            cloids=CloidFactory(seed),
            config=om_cfg,
        )
        wallet = ephemeral_wallet() if ephemeral_key else load_wallet(keystore=keystore)
        now_ms = int(time.time() * 1000)
        sc_ms = None if schedule_cancel_s is None else now_ms + int(schedule_cancel_s * 1000)
        requests = build_requests(plan, spec, wallet, base_url=url, nonces=NonceSource(), schedule_cancel_ms=sc_ms)
    if ephemeral_key:
        print("notice: signed with a throwaway key generated for this run; not valid for any account", file=sys.stderr)
    network = "mainnet" if is_mainnet(url) else ("testnet" if url == network_url(True) else "other")
    out: dict[str, Any] = {
        "dry_run": True,
        "sent": False,
        "coin": spec.coin,
        "asset": spec.asset_id,
        "network": network,
        "base_url": url,
        "signer": wallet.address,
        "ephemeral_key": ephemeral_key,
        "seed": seed,
        "allocator": ladder.allocator,
        "inventory": cfg.snapshot.inventory_coins,
        "max_position": cfg.snapshot.max_position_coins,
        "desired": {"bids": len(ladder.bids), "asks": len(ladder.asks)},
        "resting": len(current),
        "plan": plan.to_dict(),
        "rate_limits": {
            "ip_weight": sum(r.weight for r in requests),
            "ip_weight_per_minute": IP_WEIGHT_PER_MINUTE,
            "address_requests": sum(r.n_actions for r in requests),
        },
        "requests": [r.to_dict() for r in requests],
    }
    if json_out:
        print_json(out)
        return
    _render(plan, out)


def _render(plan: OrderPlan, out: dict[str, Any]) -> None:
    """Rich table of the actions, then a summary line (nothing was sent)."""
    t = Table(title=f"{out['coin']} dry run ({out['network']}, signer {out['signer']})")
    for col in ("action", "side", "price (USD)", "size (coins)", "reduce-only", "cloid"):
        t.add_column(col, justify="right" if col.startswith(("price", "size")) else "left", overflow="fold")
    for c in plan.cancels:
        t.add_row("cancel", c.side, f"{c.target.price:,.6g}", f"{c.target.size:g}", "", c.target.key, style="red")
    for m in plan.modifies:
        t.add_row("modify", m.side, f"{m.price:,.6g}", f"{m.size:g}", str(m.reduce_only), m.cloid, style="yellow")
    for p in plan.places:
        t.add_row("new", p.side, f"{p.price:,.6g}", f"{p.size:g}", str(p.reduce_only), p.cloid, style="green")
    out_console.print(t)
    for side, why in plan.stopped.items():
        out_console.print(f"[yellow]{side} side not quoted:[/] {escape(why)}")
    rl = out["rate_limits"]
    out_console.print(
        f"kept {len(plan.kept)}, actions {plan.n_actions} in {len(out['requests'])} signed request(s); "
        f"IP weight {rl['ip_weight']} of {rl['ip_weight_per_minute']}/min, address requests {rl['address_requests']}. "
        "Nothing was sent."
    )
