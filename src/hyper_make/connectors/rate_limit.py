"""Hyperliquid's rate limits on ``/exchange`` requests, and :class:`RateLimiter`, which keeps a client within them.

A plan's batches (:class:`hyper_make.strategy.orders.Batch`, one request each) are priced here;
:class:`RateLimiter` keeps them within Hyperliquid's documented limits ("Rate limits and user limits",
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits):

* per IP, REST requests share a weight of **1200 per minute**; an ``/exchange`` action weighs
  ``1 + floor(batch_length / 40)`` (an unbatched action 1, a batch of 79 orders 2); ``l2Book``, ``allMids``,
  ``clearinghouseState``, ``orderStatus`` weigh 2, most other ``/info`` requests 20;
* per address, actions only: an initial buffer of **10,000 requests plus 1 request per 1 USDC traded**
  (cumulative); a batch of ``n`` orders or cancels counts as ``n`` requests; when exhausted, one request every
  10 seconds; cancels have the higher cumulative limit ``min(limit + 100000, 2 * limit)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .._validate import check_int, check_real
from ..strategy.orders import Batch, BatchKind, OrderPlan

#: Hyperliquid's per-IP REST weight limit (weight units per 60 s).
IP_WEIGHT_PER_MINUTE = 1200
#: Batch length per extra unit of ``/exchange`` weight: ``weight = 1 + floor(batch_length / 40)``.
WEIGHT_BATCH_STEP = 40
#: Requests every address starts with (actions only).
ADDRESS_INITIAL_REQUESTS = 10_000
#: Requests an address earns per USDC traded.
ADDRESS_REQUESTS_PER_USD = 1.0
#: When the address budget is exhausted, one request is allowed every this many seconds.
ADDRESS_THROTTLED_INTERVAL_S = 10.0


def exchange_weight(batch_len: int) -> int:
    """IP weight of one ``/exchange`` request carrying ``batch_len`` actions: ``1 + floor(batch_len / 40)``."""
    return 1 + batch_len // WEIGHT_BATCH_STEP


def batch_weight(batch: Batch) -> int:
    """IP weight of the request that carries ``batch``."""
    return exchange_weight(batch.n_actions)


def plan_weight(plan: OrderPlan) -> int:
    """Total IP weight of a plan's requests."""
    return sum(batch_weight(b) for b in plan.batches)


def address_requests(plan: OrderPlan) -> int:
    """Requests a plan uses of the per-address budget: one per action."""
    return sum(b.n_actions for b in plan.batches)


class TokenBucket:
    """A token bucket: holds at most ``capacity`` tokens and refills ``refill_per_s`` tokens per second.

    Over any interval of ``T`` seconds it grants at most ``capacity + refill_per_s * T`` tokens, which is how
    :class:`RateLimiter` keeps a per-minute limit. ``clock`` returns seconds (monotonic; injectable for tests).
    """

    def __init__(self, capacity: float, refill_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = check_real("capacity", capacity, lo=0.0, lo_open=True)
        self.refill_per_s = check_real("refill_per_s", refill_per_s, lo=0.0, unit="1/s")
        self._clock = clock
        self._tokens = self.capacity
        self._t = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self._t:
            self._tokens = min(self.capacity, self._tokens + (now - self._t) * self.refill_per_s)
        self._t = max(self._t, now)

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def wait_s(self, n: float) -> float:
        """Seconds until ``n`` tokens are available (0 if now; ``inf`` if ``n`` exceeds the capacity)."""
        if n > self.capacity:
            return math.inf
        missing = n - self.tokens
        if missing <= 0:
            return 0.0
        return math.inf if self.refill_per_s == 0 else missing / self.refill_per_s

    def try_take(self, n: float) -> bool:
        """Take ``n`` tokens if available now; return whether it did."""
        self._refill()
        if self._tokens + 1e-12 >= n:
            self._tokens -= n
            return True
        return False


@dataclass
class AddressBudget:
    """Hyperliquid's per-address action budget (requests, cumulative since the address was created).

    ``limit = initial_requests + floor(traded_usd * requests_per_usd)``; cancels may go up to
    ``min(limit + 100000, 2 * limit)``. Past the limit, one single-action request every ``throttled_interval_s``.
    """

    used: int = 0
    traded_usd: float = 0.0
    initial_requests: int = ADDRESS_INITIAL_REQUESTS
    requests_per_usd: float = ADDRESS_REQUESTS_PER_USD
    throttled_interval_s: float = ADDRESS_THROTTLED_INTERVAL_S
    _last_throttled_s: float = field(default=-math.inf, repr=False)

    @property
    def limit(self) -> int:
        """Cumulative requests allowed for orders and modifies."""
        return self.initial_requests + math.floor(self.traded_usd * self.requests_per_usd)

    @property
    def cancel_limit(self) -> int:
        """Cumulative requests allowed when the request is a cancel: ``min(limit + 100000, 2 * limit)``."""
        return min(self.limit + 100_000, 2 * self.limit)

    def record_fill(self, notional_usd: float) -> None:
        """Credit a fill's notional (USD) to the traded volume that earns requests."""
        self.traded_usd += check_real("notional_usd", notional_usd, lo=0.0, unit="USD")

    def sync(self, used: int, cap: int, cum_volume_usd: float) -> None:
        """Adopt the exchange's count (``userRateLimit``: ``nRequestsUsed``, ``nRequestsCap``, ``cumVlm`` in USD).

        The cap is kept as read (``initial_requests`` absorbs any difference from the formula), and grows from it
        by ``requests_per_usd`` per USDC of later fills (:meth:`record_fill`).
        """
        self.used = check_int("nRequestsUsed", used, lo=0)
        self.traded_usd = check_real("cumVlm", cum_volume_usd, lo=0.0, unit="USD")
        earned = math.floor(self.traded_usd * self.requests_per_usd)
        self.initial_requests = check_int("nRequestsCap", cap, lo=0) - earned

    @property
    def left(self) -> int:
        """Order and modify requests left before the cap (negative past it)."""
        return self.limit - self.used

    def allows(self, n: int, kind: BatchKind, now_s: float) -> bool:
        """Whether a request of ``n`` actions of ``kind`` fits now (``now_s`` in seconds)."""
        lim = self.cancel_limit if kind.startswith("cancel") else self.limit
        if self.used + n <= lim:
            return True
        return n == 1 and now_s - self._last_throttled_s >= self.throttled_interval_s

    def wait_s(self, n: int, kind: BatchKind, now_s: float) -> float:
        """Seconds until a request of ``n`` actions fits (``inf`` if only more traded volume would make it fit)."""
        if self.allows(n, kind, now_s):
            return 0.0
        if n > 1:
            return math.inf
        return self._last_throttled_s + self.throttled_interval_s - now_s

    def take(self, n: int, kind: BatchKind, now_s: float) -> None:
        """Record a sent request of ``n`` actions."""
        lim = self.cancel_limit if kind.startswith("cancel") else self.limit
        if self.used + n > lim:
            self._last_throttled_s = now_s
        self.used += n


class RateLimiter:
    """Keeps ``/exchange`` requests within the IP weight per minute and the per-address budget.

    Parameters
    ----------
    ip_weight_per_minute : float, default 1200
        The exchange's IP limit (weight per 60 s).
    ip_share_frac : float, default 0.5
        Fraction of it this client may use for actions (``/info`` reads and other clients share the IP).
    burst_frac : float, default 0.25
        Fraction of the allowed weight that may go out at once; the bucket's capacity is ``burst`` and it
        refills at ``(allowed - burst) / 60`` per second, so no 60 s window exceeds ``allowed``.
    address : the address budget (a fresh one by default).
    clock : seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        *,
        ip_weight_per_minute: float = IP_WEIGHT_PER_MINUTE,
        ip_share_frac: float = 0.5,
        burst_frac: float = 0.25,
        address: AddressBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_real("ip_weight_per_minute", ip_weight_per_minute, lo=0.0, lo_open=True)
        check_real("ip_share_frac", ip_share_frac, lo=0.0, lo_open=True, hi=1.0)
        check_real("burst_frac", burst_frac, lo=0.0, lo_open=True, hi=1.0, hi_open=True)
        allowed = ip_weight_per_minute * ip_share_frac
        burst = max(allowed * burst_frac, 1.0)
        self.allowed_weight_per_minute = allowed
        self.ip = TokenBucket(burst, (allowed - burst) / 60.0, clock)
        self.address = address if address is not None else AddressBudget()
        self._clock = clock

    def allows(self, batch: Batch) -> bool:
        """Whether ``batch`` may be sent now."""
        return self.ip.tokens + 1e-12 >= batch_weight(batch) and self.address.allows(
            batch.n_actions, batch.kind, self._clock()
        )

    def try_send(self, batch: Batch) -> bool:
        """Charge ``batch`` to both budgets if it fits now; return whether it did (nothing charged if not)."""
        if not self.allows(batch):
            return False
        self.ip.try_take(batch_weight(batch))
        self.address.take(batch.n_actions, batch.kind, self._clock())
        return True

    def wait_s(self, batch: Batch) -> float:
        """Seconds until ``batch`` may be sent under both limits (``inf`` if waiting alone never makes it fit)."""
        return max(self.ip.wait_s(batch_weight(batch)), self.address.wait_s(batch.n_actions, batch.kind, self._clock()))
