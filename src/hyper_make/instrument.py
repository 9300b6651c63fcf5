"""Exchange instrument spec: Hyperliquid's tick, lot and minimum-value rules, and the rounding they imply.

Hyperliquid ("Tick and lot size" page of its docs):

* a price has at most 5 significant figures **and** at most ``6 - szDecimals`` decimals for perps
  (``8 - szDecimals`` for spot); integer prices are always valid, whatever their significant figures;
* a size is a multiple of the lot ``10^-szDecimals`` (coins);
* an order's value ``price x size`` must be at least $10.

All rounding is done on integers (ticks and lots) so that the result prints as the exchange expects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

import numba as nb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validate import PYDANTIC_CONFIG, check_int, check_real
from .errors import InvalidParameterError

Side = Literal["bid", "ask"]

#: Most lots a size may have: lot counts are exact float64 integers up to 2^53 (about 9e15 lots, i.e. 9e9 USD
#: even at Hyperliquid's smallest lot value of 1e-6 USD); larger side budgets are refused with a clear message.
MAX_LOTS = 2**53

#: Decimal places allowed for a perp price before subtracting ``szDecimals`` (Hyperliquid: 6; spot: 8).
PERP_MAX_DECIMALS = 6
SPOT_MAX_DECIMALS = 8

#: ``10^-k`` (USD) for ``k = 0..SPOT_MAX_DECIMALS`` exactly as :meth:`InstrumentSpec.tick_at` computes it for one
#: price: NumPy's scalar power (its array power may differ in the last bit, e.g. at ``k = 5``).
_SCALAR_TICKS = tuple(float(10.0 ** -np.float64(k)) for k in range(SPOT_MAX_DECIMALS + 1))


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentSpec:
    """One tradable market and its exchange rules.

    Parameters
    ----------
    coin : str
        Exchange symbol, e.g. ``"BTC"``.
    sz_decimals : int
        Hyperliquid ``szDecimals``: sizes are multiples of ``10^-sz_decimals`` coins; in ``[0, 8]`` (``[0, 6]`` perps).
    is_spot : bool, default False
        Spot markets allow ``8 - sz_decimals`` price decimals, perps ``6 - sz_decimals``.
    min_notional_usd : float, default 10.0
        Minimum order value ``price x size`` in USD, ``> 0``.
    max_sig_figs : int, default 5
        Significant figures allowed in a non-integer price.
    asset_id : int or None, default None
        The exchange's asset index (perps: position in ``meta.universe``), used in order payloads. It comes from
        the coin's shipped spec (:data:`PERP_SPECS`) or the exchange's ``meta`` (:func:`spec_from_meta`), never
        from a default: a spec without it rounds and sizes orders but cannot be signed
        (:meth:`require_asset_id`).

    Raises
    ------
    InvalidParameterError
        If ``sz_decimals`` exceeds the market's maximum decimals, or a number is out of range.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    coin: str
    sz_decimals: int
    is_spot: bool = False
    min_notional_usd: float = 10.0
    max_sig_figs: int = 5
    asset_id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.coin, str) or not self.coin:
            raise InvalidParameterError(f"'coin' must be a non-empty string; got {self.coin!r}")
        max_dec = SPOT_MAX_DECIMALS if self.is_spot else PERP_MAX_DECIMALS
        check_int("sz_decimals", self.sz_decimals, lo=0, hi=max_dec)
        check_real("min_notional_usd", self.min_notional_usd, lo=0.0, lo_open=True, unit="USD")
        check_int("max_sig_figs", self.max_sig_figs, lo=1, hi=15)
        if self.asset_id is not None:
            check_int("asset_id", self.asset_id, lo=0)

    def require_asset_id(self) -> int:
        """The asset index to sign orders with; refuses a spec that has none (never a default index).

        Raises
        ------
        InvalidParameterError
            If ``asset_id`` is ``None``.
        """
        if self.asset_id is None:
            raise InvalidParameterError(
                f"'asset_id' of {self.coin} is unknown, so no order can be signed for it: take the spec from the "
                "exchange's meta (--meta FILE) or set [instrument] asset_id"
            )
        return self.asset_id

    # ---- sizes -------------------------------------------------------------------------------------
    @property
    def lot_size(self) -> float:
        """Size increment in coins: ``10^-sz_decimals``."""
        return 10.0**-self.sz_decimals

    @property
    def max_price_decimals(self) -> int:
        """Decimals a price may have at most: ``6 - szDecimals`` (perps) or ``8 - szDecimals`` (spot)."""
        return (SPOT_MAX_DECIMALS if self.is_spot else PERP_MAX_DECIMALS) - self.sz_decimals

    def size_to_lots(self, size: ArrayLike) -> NDArray[np.int64]:
        """Sizes in coins -> whole lots, rounded down (a size is never rounded up past what was allocated)."""
        return coins_to_lots(size, self.lot_size)

    def lots_to_size(self, lots: ArrayLike) -> NDArray[np.float64]:
        """Whole lots -> sizes in coins, each the float nearest its decimal value."""
        return lots_to_coins(lots, self.lot_size)

    def round_size_down(self, size: float) -> float:
        """Largest valid size (coins) not above ``size``."""
        return float(self.lots_to_size(self.size_to_lots(size)))

    def is_valid_size(self, size: float) -> bool:
        """True if ``size`` (coins) is a positive multiple of the lot with at most ``sz_decimals`` decimals."""
        d = Decimal(repr(float(size))).normalize()
        exponent = d.as_tuple().exponent
        return d > 0 and isinstance(exponent, int) and -exponent <= self.sz_decimals

    def min_size(self, price: ArrayLike) -> NDArray[np.float64]:
        """Smallest valid size (coins) whose value at ``price`` (USD) reaches ``min_notional_usd``."""
        px = np.asarray(price, dtype=np.float64)
        # ``.round(6)``: np.round's arithmetic without its Python-level dispatch (a µs per call on the hot path)
        lots = np.ceil((self.min_notional_usd / px * 10.0**self.sz_decimals).round(6))
        return lots / 10.0**self.sz_decimals

    # ---- prices ------------------------------------------------------------------------------------
    def price_decimals(self, price: ArrayLike) -> NDArray[np.int64]:
        """Decimals allowed at the magnitude of ``price`` (USD): ``min(max_decimals, sig_figs - int_digits)``, >= 0."""
        px = np.asarray(price, dtype=np.float64)
        int_digits = np.floor(np.log10(px)).astype(np.int64) + 1
        # np.maximum/np.minimum: the integers np.clip gives, without its Python-level argument checks (µs)
        return np.minimum(np.maximum(self.max_sig_figs - int_digits, 0), self.max_price_decimals)

    def round_prices(self, price: ArrayLike, side: Side) -> NDArray[np.float64]:
        """Round prices (USD) to valid ones: bids down, asks up (so rounding never improves our price).

        A bid below the smallest tick of its magnitude returns 0.0 (no valid price at or below it).

        Raises
        ------
        InvalidParameterError
            If a price is not finite and positive.
        """
        scaled, scale = self._scaled(np.asarray(price, dtype=np.float64))
        ticks = np.floor(scaled) if side == "bid" else np.ceil(scaled)
        # a bid below the first tick rounds to 0: there is no valid price at or below it (callers drop it)
        return ticks / scale

    def round_prices_batch(
        self, prices: Sequence[NDArray[np.float64]], sides: Sequence[Side]
    ) -> list[NDArray[np.float64]]:
        """:meth:`round_prices` of several 1-d price arrays (USD), each with its side, in one pass.

        Every price gets the value its own :meth:`round_prices` call gives (the rounding is elementwise); the
        NumPy calls, most of the cost for a few dozen prices, are made once for all of them.

        Raises
        ------
        InvalidParameterError
            As :meth:`round_prices`, naming the first array with a price that is not finite and positive.
        """
        try:
            scaled, scale = self._scaled(np.concatenate(prices))
        except InvalidParameterError:
            for px, side in zip(prices, sides, strict=True):
                self.round_prices(px, side)  # raises, naming its own array
            raise
        out = []
        start = 0
        for px, side in zip(prices, sides, strict=True):
            end = start + px.shape[0]
            part = scaled[start:end]
            out.append((np.floor(part) if side == "bid" else np.ceil(part)) / scale[start:end])
            start = end
        return out

    def _scaled(self, px: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(round(px·10^d, 6), 10^d)`` with ``d = price_decimals(px)``: the prices in ticks before the floor or
        ceiling, and the tick's inverse.

        Raises
        ------
        InvalidParameterError
            If a price is not finite and positive.
        """
        # two reductions instead of four array operations (a NaN fails ``min() > 0``)
        if px.size and not (px.min() > 0 and px.max() < math.inf):
            raise InvalidParameterError(f"'price' must be finite and > 0 USD to round; got {px}")
        # 10^price_decimals(px) with the decimals left as floats (the power casts the integers to them anyway):
        # two array operations fewer than the integer round trip
        decimals = (self.max_sig_figs - 1) - np.floor(np.log10(px))
        scale = 10.0 ** np.minimum(np.maximum(decimals, 0.0), self.max_price_decimals)
        # ``.round(6)``: np.round's arithmetic without its Python-level dispatch
        return (px * scale).round(6), scale

    def round_price(self, price: float, side: Side) -> float:
        """Scalar :meth:`round_prices` in plain Python (the same formula; ~10x faster for one price)."""
        if not (math.isfinite(price) and price > 0):
            raise InvalidParameterError(f"'price' must be finite and > 0 USD to round; got {price!r}")
        int_digits = math.floor(math.log10(price)) + 1
        scale = 10.0 ** min(max(self.max_sig_figs - int_digits, 0), self.max_price_decimals)
        scaled = round(price * scale, 6)
        return (math.floor(scaled) if side == "bid" else math.ceil(scaled)) / scale

    def tick_at(self, price: ArrayLike) -> NDArray[np.float64]:
        """Price increment (USD) at the magnitude of ``price``: ``10^-price_decimals(price)``."""
        return 10.0 ** -self.price_decimals(price).astype(np.float64)

    def price_tick(self, price: float) -> float:
        """Scalar :meth:`tick_at` in plain Python: the price increment (USD) at one price (USD, finite, ``> 0``).

        The same value as ``float(tick_at(price))``, at a tenth of the cost: the integer digits come from
        ``np.log10`` as in :meth:`price_decimals` (``math.log10`` can differ from it in the last bit, which moves
        the floor next to a power of ten, e.g. at 999.9999999999994) and the power of ten from a table of NumPy's
        own scalar powers.

        Raises
        ------
        InvalidParameterError
            If ``price`` is not finite and positive.
        """
        if not (math.isfinite(price) and price > 0):
            raise InvalidParameterError(f"'price' must be finite and > 0 USD for its tick; got {price!r}")
        int_digits = math.floor(np.log10(price)) + 1
        return _SCALAR_TICKS[min(max(self.max_sig_figs - int_digits, 0), self.max_price_decimals)]

    def is_valid_price(self, price: float) -> bool:
        """True if Hyperliquid accepts ``price`` (USD): integer, or <= 5 significant figures and <= max decimals."""
        if not (isinstance(price, (int, float)) and math.isfinite(price) and price > 0):
            return False
        d = Decimal(repr(float(price))).normalize()
        if d == d.to_integral_value():
            return True
        _, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)
        decimals = -exponent
        sig_figs = len(digits)  # normalize() strips trailing zeros; leading zeros are not in digits
        return sig_figs <= self.max_sig_figs and decimals <= self.max_price_decimals

    def format_price(self, price: float) -> str:
        """The price as the exchange's wire string (no trailing zeros, no exponent)."""
        return _wire(price)

    def format_size(self, size: float) -> str:
        """The size as the exchange's wire string, on the lot grid."""
        return _wire(round(float(size), self.sz_decimals))


def coins_to_lots(size: ArrayLike, lot: float) -> NDArray[np.int64]:
    """Sizes (coins) -> whole lots of ``lot`` coins, rounded down after rounding to 1e-6 lot.

    The 1e-6 rounding keeps 0.3/0.1-style float noise from losing a whole lot. For a decimal lot ``10^-d`` the
    scaling multiplies by the exact integer ``10^d``.

    Raises
    ------
    InvalidParameterError
        If a size is NaN or more than ``MAX_LOTS`` (2^53) lots (a silent int64 overflow before).
    """
    inv = _decimal_inverse(lot)
    x = np.asarray(size, dtype=np.float64)
    scaled = np.floor((x * inv if inv else x / lot).round(6))
    if scaled.size and not scaled.max() <= MAX_LOTS:  # a NaN propagates through max() and fails too
        bad = float(np.asarray(x).reshape(-1)[np.flatnonzero(~(np.asarray(scaled).reshape(-1) <= MAX_LOTS))[0]])
        raise InvalidParameterError(
            f"size {bad!r} coins is more than 2^53 = {MAX_LOTS:.4g} lots of {lot:g} coins (or not a number)"
        )
    return scaled.astype(np.int64)


def lots_to_coins(lots: ArrayLike, lot: float) -> NDArray[np.float64]:
    """Whole lots -> coins; exact decimal floats (the nearest to ``k·10^-d``) when the lot is ``10^-d``."""
    inv = _decimal_inverse(lot)
    if isinstance(lots, (int, np.integer)):
        # one count: the same float64 conversion and IEEE operation in plain Python (a µs less than NumPy's)
        return np.float64(float(lots) / inv if inv else float(lots) * lot)
    k = np.asarray(lots, dtype=np.float64)
    return k / inv if inv else k * lot


def _decimal_inverse(lot: float) -> int:
    """``10^d`` when ``lot`` (coins) is ``10^-d``, else 0: dividing by the exact integer ``10^d`` gives the float
    nearest ``k·10^-d``, which multiplying by the inexact float ``10^-d`` does not."""
    inv = round(1.0 / lot)
    return inv if inv >= 1 and abs(inv * lot - 1.0) < 1e-12 else 0


def price_to_ticks(price_usd: float, tick_usd: float, *, name: str = "price") -> int:
    """A price (USD) on a venue's uniform tick grid as its integer tick index: ``price / tick``.

    Raises
    ------
    InvalidParameterError
        If the price is not finite and positive, or is not on the grid (more than 1e-6 of a tick off): a price
        silently rounded to another tick is an order at a price nobody asked for.
    """
    if not (math.isfinite(price_usd) and price_usd > 0):
        raise InvalidParameterError(f"'{name}' must be finite and > 0 USD; got {price_usd!r}")
    if not (math.isfinite(tick_usd) and tick_usd > 0):
        raise InvalidParameterError(f"'tick_usd' must be finite and > 0 USD; got {tick_usd!r}")
    x = price_usd / tick_usd
    k = round(x)
    if abs(x - k) > 1e-6:
        raise InvalidParameterError(
            f"'{name}' {price_usd!r} USD is not on the venue's tick grid of {tick_usd!r} USD (it is {x:.6f} ticks)"
        )
    return int(k)


def prices_to_ticks(prices_usd: np.ndarray, tick_usd: float, *, name: str = "price") -> np.ndarray:
    """:func:`price_to_ticks` of every price of an array (USD) at once: their integer tick indices (int64).

    Raises
    ------
    InvalidParameterError
        The error :func:`price_to_ticks` gives for the first price that is not finite and positive or not on the
        grid.
    """
    t = float(tick_usd)
    if not (math.isfinite(t) and t > 0):
        raise InvalidParameterError(f"'tick_usd' must be finite and > 0 USD; got {tick_usd!r}")
    p = np.ascontiguousarray(prices_usd, dtype=np.float64).ravel()
    ticks, bad = _ticks_of(p, t)
    if bad >= 0:
        price_to_ticks(float(p[bad]), t, name=f"{name}[{bad}]")
        raise InvalidParameterError(f"'{name}[{bad}]' {p[bad]!r} USD is not a price on the {t!r} USD tick grid")
    return ticks


@nb.njit(cache=True)
def _ticks_of(p: np.ndarray, tick: float) -> tuple[np.ndarray, int]:
    """Tick indices of prices ``p`` (USD) and the index of the first one off the grid or not positive (-1: none)."""
    out = np.empty(p.shape[0], dtype=np.int64)
    for i in range(p.shape[0]):
        x = p[i] / tick
        k = np.rint(x)  # half to even, as Python's round()
        if not (np.isfinite(x) and p[i] > 0 and abs(x - k) <= 1e-6):
            return out, i
        out[i] = int(k)
    return out, -1


def _wire(x: float) -> str:
    s = f"{Decimal(repr(float(x))):f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


#: Real Hyperliquid perps (``szDecimals`` and asset index from ``meta`` as of 2026).
PERP_SPECS: dict[str, InstrumentSpec] = {
    "BTC": InstrumentSpec(coin="BTC", sz_decimals=5, asset_id=0),
    "ETH": InstrumentSpec(coin="ETH", sz_decimals=4, asset_id=1),
    "SOL": InstrumentSpec(coin="SOL", sz_decimals=2, asset_id=5),
    "HYPE": InstrumentSpec(coin="HYPE", sz_decimals=2, asset_id=159),
}


def shipped_coin(coin: str) -> str | None:
    """The exchange's spelling of ``coin`` if a spec is shipped for it (case-insensitive: ``"sol"`` -> ``"SOL"``)."""
    key = coin.strip().upper()
    return key if key in PERP_SPECS else None


def perp_spec(coin: str) -> InstrumentSpec:
    """The shipped spec of a Hyperliquid perp, e.g. ``perp_spec("BTC")`` (case-insensitive).

    Raises
    ------
    InvalidParameterError
        Naming ``coin`` and the shipped perps, if ``coin`` is not a string or has no shipped spec.
    """
    name = shipped_coin(coin) if isinstance(coin, str) else None
    if name is None:
        raise InvalidParameterError(f"'coin' must be one of the shipped perps {sorted(PERP_SPECS)}; got {coin!r}")
    return PERP_SPECS[name]


def spec_from_meta(meta: dict[str, Any], coin: str, *, min_notional_usd: float = 10.0) -> InstrumentSpec:
    """The :class:`InstrumentSpec` of perp ``coin`` from the exchange's ``meta``: ``szDecimals`` and the asset index
    (position in ``universe``), with the coin spelled as the exchange spells it (an exact match first, then a
    case-insensitive one: ``"sol"`` -> ``"SOL"``, ``"kpepe"`` -> ``"kPEPE"``).

    Raises
    ------
    InvalidParameterError
        If ``coin`` is not in the meta, is delisted there, or matches several names differing only in case.
    """
    universe = meta.get("universe", []) if isinstance(meta, dict) else []
    if not isinstance(coin, str) or not coin.strip():
        raise InvalidParameterError(f"'coin' must be a non-empty string; got {coin!r}")
    names = [a.get("name") if isinstance(a, dict) else None for a in universe]
    matches = [i for i, n in enumerate(names) if n == coin.strip()]
    if not matches:
        matches = [i for i, n in enumerate(names) if isinstance(n, str) and n.upper() == coin.strip().upper()]
    if len(matches) > 1:
        shown = [names[i] for i in matches]
        raise InvalidParameterError(f"'coin' {coin!r} matches several perps in the exchange's meta: {shown}")
    if not matches:
        shown = ", ".join(map(str, names[:12])) + (", ..." if len(names) > 12 else "")
        raise InvalidParameterError(f"'coin' {coin!r} is not in the exchange's meta ({len(names)} perps: {shown})")
    index = matches[0]
    asset = universe[index]
    if asset.get("isDelisted"):
        raise InvalidParameterError(f"'coin' {names[index]!r} is delisted in the exchange's meta")
    return InstrumentSpec(
        coin=str(names[index]),
        sz_decimals=int(asset["szDecimals"]),
        asset_id=index,
        min_notional_usd=min_notional_usd,
    )
