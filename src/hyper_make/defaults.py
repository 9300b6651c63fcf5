"""The embedded default market: a realistic BTC perp state on Hyperliquid (no network, no files)."""

from __future__ import annotations

from .instrument import InstrumentSpec, perp_spec
from .snapshot import MarketSnapshot, Regime


def default_spec() -> InstrumentSpec:
    """Hyperliquid BTC perp: ``szDecimals`` 5, $10 minimum order."""
    return perp_spec("BTC")


def default_snapshot() -> MarketSnapshot:
    """A BTC perp at $90,000 with a 1-tick spread, 50 % annualised volatility (0.89 bps per √s), flat.

    Account: 0.5 BTC position limit, $10,000 of margin at 20x, maker fee 1.5 bps; 24 h volume
    10,000 BTC (about $0.9B, a quiet day on Hyperliquid; it sets the scale of the self-impact model).
    """
    return MarketSnapshot(
        mid_usd=90_000.5,
        best_bid_usd=90_000.0,
        best_ask_usd=90_001.0,
        sigma_frac=0.5 / (365.0 * 86_400.0) ** 0.5,
        sigma_horizon_s=1.0,
        inventory_coins=0.0,
        max_position_coins=0.5,
        margin_usd=10_000.0,
        leverage=20.0,
        maker_fee_bps=1.5,
        taker_fee_bps=4.5,
        daily_volume_coins=10_000.0,
        regime=Regime(),
    )
