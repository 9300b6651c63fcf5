"""The live view of ``hyper-make run``: one Rich renderable per refresh from a :class:`~.loop.LoopStatus`."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .loop import LoopStatus, duration_text


def render(status: LoopStatus, coin: str, max_position_coins: float, log: Sequence[str] = ()) -> Group:
    """Header (state, mid, σ, position, PnL, counts, request budget), the resting orders (asks above bids), the
    unquoted sides, the warning, the loop's note, and the latest ``log`` lines (warnings during the run)."""
    head = Table.grid(padding=(0, 2))
    for _ in range(4):
        head.add_column()
    mid = f"{status.mid_usd:,.6g}" if status.mid_usd is not None else "-"
    sigma = f"{status.sigma_bps_per_sqrt_s:.2f}" if status.sigma_bps_per_sqrt_s is not None else "-"
    style = "green" if status.state == "quoting" else "yellow"
    head.add_row(
        Text(f"{coin} {status.state}", style=f"bold {style}"),
        f"t {status.t_s:,.0f} s",
        f"mid {mid} USD",
        f"σ {sigma} bps/√s",
    )
    head.add_row(
        f"position {status.position_coins:+g} / {max_position_coins:g} coins",
        "PnL unknown (no mark yet)" if status.pnl_usd is None else f"PnL {status.pnl_usd:+,.2f} USD",
        f"fills {status.fills}",
        f"orders sent {status.orders_sent}, rejected {status.rejected}",
    )
    head.add_row("", "", "", _budget(status))
    book = Table(show_edge=False, box=None, pad_edge=False)
    book.add_column("side")
    book.add_column("price (USD)", justify="right")
    book.add_column("size (coins)", justify="right")
    book.add_column("reduce-only")
    for o in status.resting:
        book.add_row(
            o.side,
            f"{o.price:,.6g}",
            f"{o.size:g}",
            "yes" if o.reduce_only else "",
            style=("red" if o.side == "ask" else "green"),
        )
    parts: list = [head, book]
    for side, why in status.stopped.items():
        parts.append(Text(f"{side} side not quoted: {why}", style="yellow"))
    if status.warning:
        parts.append(Text(status.warning, style="bold red"))
    if status.note:
        parts.append(Text(status.note, style="dim"))
    parts.extend(Text(line, style="yellow") for line in log)
    return Group(*parts)


def _budget(status: LoopStatus) -> str:
    """The address request budget: used of the cap, and the projected time to it at the run's pace."""
    if status.requests_used is None or status.requests_cap is None:
        return "requests used unknown"
    eta = status.requests_exhaustion_s
    pace = "not running out" if eta is None else f"out in {duration_text(eta)}"
    return f"requests {status.requests_used:,} / {status.requests_cap:,} ({pace})"
