"""The quoting loop: the live venue (Hyperliquid, its testnet, or the local exchange) driving the shared strategy.

One thread owns the state. The SDK's ``WebsocketManager`` delivers ``l2Book``, ``trades`` and ``userFills``
messages on its own thread into a queue; every ``refresh_s`` the loop drains the queue into the ledger
(:mod:`.ledger`) and its view of the book, hands the strategy (:class:`~hyper_make.strategy.quoter.Quoter`, the
same one the simulator and the replay drive) a :class:`~hyper_make.strategy.venue.VenueView`, and sends the plan
it returns through :class:`~hyper_make.connectors.hyperliquid.HyperliquidClient` (SDK, rate limits). What is
particular to a live exchange lives here: the WebSocket and its reconnects, acknowledgements and lost answers,
reconciles from ``/info``, the dead-man switch, the clock offset and the address request budget.

Position safety. The strategy counts every resting order as if it filled and the orders being cancelled or
replaced as still live (see :mod:`hyper_make.strategy.quoter`), so an order that could take the position past its
limit is never sent, even when fills are late. Here, cancelled and modified orders stay *pending* (reported in the
view) until a ``clearinghouseState`` read shows a position equal to the ledger's (every fill up to the read is
in), or a full ``/info`` reconcile.

Guards. No quoting, and every resting order cancelled, while the WebSocket is down (the view says the venue is
halted) or the book is older than the strategy's ``stale_after_s``; the WebSocket is reopened with exponential
backoff and the ledger reconciled from ``/info`` (open orders, then fills, then position) before quoting again.
A dead-man switch (``scheduleCancel``) is kept ``dead_man_s`` ahead; Hyperliquid refuses it to accounts that have
traded less than $1,000,000, and then the loop quotes on without it (asking again every ``dead_man_s``), or stops
if ``require_dead_man``. The strategy's risk stops (drawdown, position limit) stop the loop. On any exit
(``duration_s``, Ctrl-C, a risk stop, an error) every resting order is cancelled and confirmed gone from
``openOrders``.

Request budget. Hyperliquid lets an address send 10,000 actions plus one per USDC it has traded, cumulative
(each order, cancel or modify counts one); past that, one request every 10 s, which no quoting survives. The
loop reads ``userRateLimit`` at the start and at every full reconcile, counts what it sends and earns in
between, and projects the time to the cap at the run's pace (requests spent minus earned per second). Under
``request_budget_warn_s`` it warns (the live view, the summary, one line on stderr); below
``min_requests_left`` it stops (a risk stop, ``request_budget``): slowing the requotes instead would leave stale
quotes resting in a moving market. The cancels at exit still fit: cancels have the higher cap
``min(cap + 100000, 2·cap)``.

Faults. A request that fails as a whole (an error answer) changes nothing and the rest of that refresh's
batches are not sent; every request carries ``expiresAfter`` (the HTTP timeout plus 1 s), so one that times
out can land only until then: its orders count as pending until it has expired, and a full reconcile
follows; duplicate and out-of-order fill messages are idempotent (fills keyed by trade id); nonces and the
dead-man time follow the exchange's clock, measured from its ``l2Book`` timestamps.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import requests
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.websocket_manager import WebsocketManager

from .._validate import PYDANTIC_CONFIG, check_int, check_real
from ..allocate import Allocator, warm_up
from ..connectors.hyperliquid import SCHEDULE_CANCEL_MIN_MS, HyperliquidClient, SendResult
from ..connectors.rate_limit import (
    AddressBudget,
)
from ..errors import DataError, ExchangeError, InvalidParameterError, RateLimited
from ..ladder import Ladder, LadderConfig, build_ladder
from ..snapshot import MarketSnapshot
from ..strategy.orders import (
    Batch,
    Cancel,
    CloidFactory,
    Modify,
    OrderPlan,
    Place,
    RestingOrder,
    plan_orders,
)
from ..strategy.quoter import Quoter, QuoterConfig
from ..strategy.venue import BookTop, VenueFill, VenueView
from .ledger import Ledger, fill_from_json

#: A measured clock offset below this (ms) is latency noise: nonces stay on the local clock.
CLOCK_TOLERANCE_MS = 2_000
#: Modify and cancel errors that mean "that order is already gone" (a fill or a cancel won the race).
_GONE = ("canceled or filled", "never placed, already canceled")
_EPS = 1e-9
#: Slack (ms) on a request's expiry beyond the HTTP timeout, for the request's own travel and clock error.
_EXPIRY_MARGIN_MS = 1_000
#: Hyperliquid's answer to a ``scheduleCancel`` from an account with less than $1,000,000 traded.
_DEAD_MAN_VOLUME_GATE = "Cannot set scheduled cancel time until enough volume traded"
#: Failures of a read or of a request with no usable answer: the network, or the server (5xx).
_NET_ERRORS = (requests.RequestException, ServerError)
#: The exchange's side of the end state when the final reads failed: not read, so unknown (never 0).
_UNKNOWN_END: dict[str, Any] = dict.fromkeys(
    ("position_coins", "mark_usd", "account_value_usd", "raw_usd", "time_ms", "funding_usd")
)


@dataclass(frozen=True, kw_only=True, slots=True)
class LoopConfig:
    """How the quoting loop refreshes and what stops it.

    The position limit, the drawdown stop, the stale-book pause and the post-only guard are the strategy's
    (:class:`~hyper_make.strategy.quoter.QuoterConfig` and the prior snapshot's ``max_position_coins``), the same
    on every venue; these are the live venue's own settings.

    Parameters
    ----------
    refresh_s : float, default 1.0
        Seconds between ladder rebuilds, in ``[0.05, 3600]``.
    duration_s : float or None, default None
        Stop after this many seconds (``None``: until Ctrl-C or a risk stop), ``> 0``.
    dead_man_s : float, default 30.0
        Keep a ``scheduleCancel`` this far ahead (seconds), ``>= 5``; renewed when a third of it has passed.
    reconcile_s : float, default 60.0
        Full ``/info`` reconcile (open orders, fills, position) at least this often (seconds), ``> 0``.
    http_timeout_s : float, default 5.0
        Timeout of every HTTP request (seconds), ``> 0``.
    reconnect_min_s, reconnect_max_s : float, default 0.5 and 30
        WebSocket reconnect backoff: first wait and cap (seconds), doubling in between.
    require_dead_man : bool, default False
        Stop (a risk stop) when the exchange refuses the ``scheduleCancel`` dead-man switch, as Hyperliquid does
        for accounts with less than $1,000,000 traded; by default the loop quotes on without it.
    seed : int, default 0
        Seed of the ladder's random components and of the client order ids' prefix.
    request_budget_warn_s : float, default 600
        Warn when the address request budget, at the run's pace, is projected to run out within this many
        seconds, ``> 0``.
    min_requests_left : int, default 300
        Stop (a risk stop, ``request_budget``) when fewer order/modify requests than this are left of the address
        budget (about a minute of quoting at 4.6 requests/s), ``>= 0``.
    """

    __pydantic_config__: ClassVar[Any] = PYDANTIC_CONFIG

    refresh_s: float = 1.0
    duration_s: float | None = None
    dead_man_s: float = 30.0
    reconcile_s: float = 60.0
    http_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    require_dead_man: bool = False
    seed: int = 0
    request_budget_warn_s: float = 600.0
    min_requests_left: int = 300

    def __post_init__(self) -> None:
        check_real("loop.refresh_s", self.refresh_s, lo=0.05, hi=3600.0, unit="s")
        if self.duration_s is not None:
            check_real("loop.duration_s", self.duration_s, lo=0.0, lo_open=True, unit="s")
        check_real("loop.dead_man_s", self.dead_man_s, lo=SCHEDULE_CANCEL_MIN_MS / 1000, hi=86_400.0, unit="s")
        check_real("loop.reconcile_s", self.reconcile_s, lo=0.0, lo_open=True, unit="s")
        check_real("loop.http_timeout_s", self.http_timeout_s, lo=0.0, lo_open=True, hi=600.0, unit="s")
        check_real("loop.reconnect_min_s", self.reconnect_min_s, lo=0.0, lo_open=True, unit="s")
        check_real("loop.reconnect_max_s", self.reconnect_max_s, lo=self.reconnect_min_s, unit="s")
        if not isinstance(self.require_dead_man, bool):
            raise InvalidParameterError(f"'loop.require_dead_man' must be true or false; got {self.require_dead_man!r}")
        check_int("loop.seed", self.seed, lo=0)
        check_real("loop.request_budget_warn_s", self.request_budget_warn_s, lo=0.0, lo_open=True, unit="s")
        check_int("loop.min_requests_left", self.min_requests_left, lo=0)


@dataclass(frozen=True, slots=True)
class LoopStatus:
    """What the live view shows after each refresh (units in the names)."""

    t_s: float
    state: str
    mid_usd: float | None
    sigma_bps_per_sqrt_s: float | None
    position_coins: float
    pnl_usd: float | None  # None until a book gives a mark
    fills: int
    orders_sent: int
    rejected: int
    resting: tuple[RestingOrder, ...]
    stopped: dict[str, str]
    note: str
    requests_used: int | None = None  # address budget: actions sent (cumulative; None until read)
    requests_cap: int | None = None  # ... and the cap (10,000 + 1 per USDC traded on Hyperliquid)
    requests_exhaustion_s: float | None = None  # projected seconds to the cap at the run's pace (None: not draining)
    warning: str = ""


@dataclass(slots=True)
class LoopCounters:
    """Running counts of what the loop did (the summary's raw material)."""

    refreshes: int = 0
    books_received: int = 0
    orders_sent: int = 0
    modifies_sent: int = 0
    cancels_sent: int = 0
    requests: int = 0
    rejected: int = 0
    races: int = 0
    request_errors: int = 0
    timeouts: int = 0
    rate_limited: int = 0
    reconnects: int = 0
    full_reconciles: int = 0
    position_checks: int = 0
    guard_demotions: int = 0
    crossing_skipped: int = 0
    stale_pauses: int = 0
    dead_man_sets: int = 0
    dead_man_refusals: int = 0
    clock_resyncs: int = 0
    request_budget_reads: int = 0
    rejections: Counter[str] = field(default_factory=Counter)


class QuotingLoop:
    """Runs the market-making loop on one coin of a Hyperliquid-compatible exchange.

    Parameters
    ----------
    client : signs and sends (its ``exchange.info`` serves the ``/info`` reads).
    allocator : any registered allocator.
    prior : the configured snapshot: the position limit (``max_position_coins``), fees, leverage, regime and the
        σ/volume prior (its prices are replaced).
    config : the live venue's refresh, reconnect, reconcile, dead-man and request-budget settings.
    quoter : the strategy's requote thresholds, estimator and guards (default :class:`QuoterConfig`).
    ladder : ladder configuration.
    clock : monotonic seconds (injectable for tests).
    sleep : waits that many seconds of ``clock`` (injectable with it, e.g. a virtual clock that steps a simulated
        market); default: real time (the wait between refreshes ends early when :meth:`stop` is called).
    on_status : called with a :class:`LoopStatus` after every refresh (the live view).
    learner : for an allocator that learns: the payout posterior to start from (``--learner-state``), updated in
        place as the loop runs (``loop.quoter.learner``); ``None`` = a new one from the ladder's models.
    """

    def __init__(
        self,
        client: HyperliquidClient,
        *,
        allocator: Allocator,
        prior: MarketSnapshot,
        config: LoopConfig,
        quoter: QuoterConfig | None = None,
        ladder: LadderConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        on_status: Callable[[LoopStatus], None] | None = None,
        learner: Any = None,
    ) -> None:
        self.client = client
        self.spec = client.spec
        self.coin = client.spec.coin
        self.allocator = allocator
        self.config = config
        self.ladder_config = ladder if ladder is not None else LadderConfig()
        self.max_position_coins = prior.max_position_coins
        self.clock = clock
        self._virtual_sleep = sleep
        self.sleep: Callable[[float], None] = sleep if sleep is not None else time.sleep
        self.on_status = on_status
        self.info = client.exchange.info
        self.address = client.address.lower()
        # a fresh id prefix per run: ids never repeat across sessions of the same seed
        self.cloids = CloidFactory(seed=config.seed * 1_000_003 + time.time_ns() % 1_000_003)
        self.quoter = Quoter(
            spec=self.spec,
            allocator=allocator,
            prior=prior,
            ladder=self.ladder_config,
            config=quoter if quoter is not None else QuoterConfig(),
            cloids=self.cloids,
            rng=np.random.default_rng(config.seed),
            learner=learner,
        )
        self.orders_config = self.quoter.config.orders
        self.counters = LoopCounters()
        self.ledger = Ledger(self.coin)
        # the address budget: the client's limiter charges what it sends; without one the loop counts here
        self.budget = client.limiter.address if client.limiter is not None else AddressBudget()
        self._budget_read = False  # never read: unknown, whatever the local count says
        self._budget0: tuple[float, int, int] | None = None  # (loop s, used, cap) at the first read
        self._credited_usd = 0.0  # our fills' notional already credited to the budget (USD)
        self.budget_warning = ""
        self._events: queue.SimpleQueue[tuple[int, str, float, Any]] = queue.SimpleQueue()
        self._ws: WebsocketManager | None = None
        self._ws_gen = 0
        self._ws_since = -math.inf
        self._backoff_s = config.reconnect_min_s
        self._next_connect_s = -math.inf
        self._need_reconcile = True
        self._last_reconcile_s = -math.inf
        self._pending_acked: dict[str, float] = {}
        # orders of a request that got no answer: they may still land until the request expires (loop clock, s)
        self._unknown_until: dict[str, float] = {}
        self._dead_man_until_ms: int | None = None
        self._dead_man_set_at_s = -math.inf
        #: the exchange's answer when it refused the dead-man switch (None: never refused)
        self.dead_man_refused: str | None = None
        self._dead_man_unset = False
        self._stop = threading.Event()
        self._margin_usd = prior.margin_usd
        self._stopped: dict[str, str] = {}
        self.stop_reason = ""
        self.state = "starting"
        self.start_state: dict[str, Any] = {}
        self.end_state: dict[str, Any] = {}
        self._t0 = 0.0
        self._note = ""
        self._latency_s = 0.05  # EW request round trip (s), prior
        self._book_dt_s = 0.05  # EW interval between book updates (s), prior
        self._last_book_rx: float | None = None
        self._book: BookTop | None = None  # the last book of the live connection
        self._last_book_s: float | None = None  # when it arrived (loop clock, s)
        self._last_mid_usd: float | None = None  # the last mid seen on any connection (a mark for the reports)
        self._traded_coins = 0.0  # others' volume since the strategy's last view (coins)
        self._release_at: float | None = None  # when to place the strategy's deferred additions (loop clock, s)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        """Ask the loop to stop at the next refresh (thread-safe)."""
        if not self.stop_reason:
            self.stop_reason = reason
        self._stop.set()

    def run(self) -> dict[str, Any]:
        """Start, quote until stopped, cancel everything, and return the summary (:meth:`summary`)."""
        try:
            self._start()
            deadline = None if self.config.duration_s is None else self._t0 + self.config.duration_s
            next_t = self.clock()
            while not self._stop.is_set():
                now = self.clock()
                if deadline is not None and now >= deadline:
                    self.stop("duration")
                    break
                if self._release_at is not None and now >= self._release_at:
                    self._release(now)
                else:
                    self.step(now)
                    next_t = max(next_t + self.config.refresh_s, self.clock())
                wake = next_t if self._release_at is None else min(next_t, self._release_at)
                wait = wake - self.clock()
                if deadline is not None:
                    wait = min(wait, deadline - self.clock())
                if wait > 0:
                    if self._virtual_sleep is not None:
                        self._virtual_sleep(wait)
                    else:
                        self._stop.wait(wait)
        except KeyboardInterrupt:
            self.stop("interrupted")
        except BaseException:
            self.stop("error")
            raise
        finally:
            self._shutdown()
        return self.summary()

    def _start(self) -> None:
        """Measure the clock, take over the coin (cancel its open orders), record the baseline, warm up, connect."""
        self._t0 = self.clock()
        self._retry(self._sync_clock)
        left = self._cancel_open_on_exchange()
        if left != 0:
            found = "could not be read" if left is None else f"still shows {left} of them"
            raise ExchangeError(f"cannot take over {self.coin}: cancelled its open orders, but openOrders {found}")
        # with no order of ours left, nothing fills between these reads: the fills so far are the baseline
        fills = self._retry(lambda: self.info.user_fills(self.address))
        state = self._retry(lambda: self.info.user_state(self.address))
        q0, mark0 = _position(state, self.coin)
        self.ledger = Ledger(self.coin, q0, mark0)
        self.ledger.mark_seen(fills)
        self.start_state = _account(state, self.coin)  # DataError if it has no balance: nothing to start from
        self._margin_usd = max(self.start_state["account_value_usd"], 1e-9)
        self._read_budget()
        self._warm_up()
        self._connect()
        self.state = "connecting"

    def _warm_up(self) -> None:
        """Load the allocator's kernels and build one throwaway ladder before the first refresh, so that the first
        quote is not late on its book (numba: about 0.2 s from the cache, seconds cold). Nothing it builds is kept:
        allocators carry no hidden state, and its generator is its own (the strategy's stream stays untouched)."""
        warm_up()
        prior = dataclasses.replace(self.quoter.prior, margin_usd=self._margin_usd)
        build_ladder(prior, self.spec, self.allocator, config=self.ladder_config, rng=np.random.default_rng(0))

    # ---- one refresh -------------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """One refresh: events, the venue's own upkeep (reconnect, reconcile, budget, dead-man switch), then the
        strategy's plan, sent; status."""
        self._drain()
        self._note = ""
        book_age = None if self._last_book_s is None else now - self._last_book_s
        if self.ws_alive and book_age is not None and book_age > 2 * self.quoter.config.stale_after_s:
            self._drop_ws("the book stopped updating")
        live_book = self.ws_alive and book_age is not None and book_age <= self.quoter.config.stale_after_s
        if live_book:
            # after a lost answer, reconcile once its request can no longer land (the earliest such request)
            due = self._need_reconcile and now >= min(self._unknown_until.values(), default=-math.inf)
            if due or now - self._last_reconcile_s >= self.config.reconcile_s:
                self._reconcile(now)
            elif self.ledger.pending:
                self._check_position(now)
            if abs(self.ledger.position_coins) > self.max_position_coins + _EPS:
                # late or reordered fill messages can show a position the account never had: ask the exchange
                self._reconcile(self.clock())
            if not self._budget_ok(now):
                return
        view = self._view(now)
        r = self.quoter.refresh(view)
        self._traded_coins = 0.0
        self.ledger.new_fills.clear()
        if r.stop:
            self.stop(r.stop)
        if r.state != self.state and self.state == "quoting":
            self.counters.stale_pauses += 1
        self.state = r.state
        self._stopped = dict(r.plan.stopped)
        self.counters.crossing_skipped += r.crossing_skipped
        self.counters.guard_demotions += int(r.guard_demoted)
        if r.state == "quoting":
            # the dead-man switch first: the orders this refresh places are covered by it from the moment they rest
            self._keep_dead_man(now)
            if self._stop.is_set():  # refused, and required
                return
        if r.plan.n_actions:
            self._send(r.plan, now)
        # additions held back by the limit guard: place them once the replaced orders are gone
        self._release_at = None if r.again_after_s is None else self.clock() + r.again_after_s
        if not self.ws_alive and not self._stop.is_set():
            self._reconnect(now)
        self.counters.refreshes += 1
        if self.on_status is not None:
            self.on_status(self.status(now))

    def _release(self, now: float) -> None:
        """The strategy's deferred additions that fit now (a position check first retires what it can)."""
        self._release_at = None
        self._drain()
        if self.ledger.pending:
            self._check_position(now)
        plan = self.quoter.release(self._view(now))
        if plan.n_actions and self.state == "quoting":
            self._send(plan, now)

    def _view(self, now: float) -> VenueView:
        """What the strategy may know now: the live connection's book, the ledger's orders, position and fills."""
        mark = self._book.mid_usd if self._book is not None else None
        unseen = tuple(self.ledger.pending[k] for k in self._unknown_until if k in self.ledger.pending)
        return VenueView(
            ts_ns=round(now * 1e9),
            book=self._book if self.ws_alive else None,
            traded_coins=self._traded_coins,
            resting=tuple(self.ledger.resting.values()),
            pending=tuple(self.ledger.pending.values()),
            unseen=unseen,
            fills=self._fills(now),
            position_coins=self.ledger.position_coins,
            margin_usd=self._margin_usd,
            pnl_usd=None if mark is None else self.ledger.pnl_usd(mark),
            latency_s=self._latency_s,
            book_interval_s=self._book_dt_s,
            halted="" if self.ws_alive else "disconnected",
        )

    def _fills(self, now: float) -> tuple[VenueFill, ...]:
        """The ledger's fills since the strategy's last view, timed on the loop's clock (their exchange time moved
        by the measured clock offset)."""
        if not self.ledger.new_fills:
            return ()
        ex_now_ms = self.client.exchange_time_ms()
        now_ns = round(now * 1e9)
        return tuple(
            VenueFill(
                f"{f.tid}:{f.oid}",
                f.cloid,
                f.side,
                f.px,
                f.sz,
                f.fee_usd,
                now_ns - max(ex_now_ms - f.time_ms, 0) * 10**6,
            )
            for f in self.ledger.new_fills
        )

    @property
    def last_book_s(self) -> float | None:
        """When the last book of the live connection arrived (loop clock, s); ``None`` before one."""
        return self._last_book_s

    @property
    def last_ladder(self) -> Ladder | None:
        """The ladder of the last quoted refresh."""
        return self.quoter.last_ladder

    # ---- sending -----------------------------------------------------------------------------------
    def _send(self, plan: OrderPlan, now: float) -> None:
        for batch in plan.batches:
            if batch.kind in ("modify", "order"):
                # signing takes milliseconds a request: look at the book again right before each one
                self._drain()
                drop = set(self.quoter.crossing(batch.actions, self._view(self.clock())))
                if drop:
                    self.counters.crossing_skipped += len(drop)
                    kept = tuple(a for a in batch.actions if a.cloid not in drop)  # type: ignore[union-attr]
                    if not kept:
                        continue
                    batch = Batch(batch.kind, kept)
            try:
                t_send = self.clock()
                # a request whose answer is lost must not land after we have reconciled without it
                expires_ms = self.client.exchange_time_ms() + int(1000 * self.config.http_timeout_s) + _EXPIRY_MARGIN_MS
                result = self.client.send_batch(batch, expires_after_ms=expires_ms)
                self._latency_s += 0.2 * (self.clock() - t_send - self._latency_s)
            except RateLimited:
                self.counters.rate_limited += 1
                return
            except (ExchangeError, ClientError) as exc:
                # the whole request was refused: nothing of it happened
                self.counters.request_errors += 1
                self._note = str(exc)[:120]
                if "nonce" in str(exc).lower():
                    self._resync_clock()
                return
            except _NET_ERRORS:
                self.counters.timeouts += 1
                self._unknown(batch, t_send + self.config.http_timeout_s + 2 * _EXPIRY_MARGIN_MS / 1000)
                self._need_reconcile = True
                return
            self.counters.requests += 1
            self._apply(batch, result)

    def _count_sent(self, batch: Batch) -> None:
        n = len(batch.actions)
        if self.client.limiter is None:  # a limiter charged it when it let it go
            self.budget.used += batch.n_actions
        if batch.kind == "order":
            self.counters.orders_sent += n
        elif batch.kind == "modify":
            self.counters.orders_sent += n
            self.counters.modifies_sent += n
        else:
            self.counters.cancels_sent += n

    def _unknown(self, batch: Batch, until_s: float) -> None:
        """A request with no answer: it may still land until ``until_s`` (loop clock, s); count all it touched."""
        self._count_sent(batch)
        now = self.clock()
        for a in batch.actions:
            touched: list[RestingOrder] = []
            if isinstance(a, Cancel | Modify):
                self._retire(a.target, now)
                touched.append(self.ledger.pending[a.target.key])
            if isinstance(a, Place | Modify):
                new = RestingOrder(a.side, a.price, a.size, a.cloid, None, a.reduce_only)
                self.ledger.add_pending(new)
                touched.append(new)
            for o in touched:  # only a full reconcile after the request has expired settles them
                self._pending_acked[o.key] = math.inf
                self._unknown_until[o.key] = until_s

    def _retire(self, order: RestingOrder, now: float) -> None:
        """``order`` was cancelled or replaced: it counts as pending until its last fills are confirmed."""
        live = self.ledger.resting.get(order.key, order)
        self.ledger.add_pending(live)
        self._pending_acked[live.key] = now

    def _apply(self, batch: Batch, result: SendResult) -> None:
        """Book the exchange's per-action answers."""
        self._count_sent(batch)
        statuses = _statuses(result.response)
        now = self.clock()
        for i, a in enumerate(batch.actions):
            st = statuses[i] if i < len(statuses) else {"error": "no status returned"}
            err = st.get("error") if isinstance(st, dict) else None
            if isinstance(a, Cancel):
                self._retire(a.target, now)
                if err:
                    self.counters.races += 1
                continue
            if err:
                if isinstance(a, Modify) and any(g in str(err) for g in _GONE):
                    self.counters.races += 1
                    self._retire(a.target, now)
                else:
                    self.counters.rejected += 1
                    self.counters.rejections[str(err)[:200]] += 1
                continue
            if isinstance(a, Modify):
                self._retire(a.target, now)
            resting = st.get("resting") if isinstance(st, dict) else None
            if isinstance(resting, dict) and "oid" in resting:
                self.ledger.add_resting(
                    RestingOrder(a.side, a.price, a.size, a.cloid, int(resting["oid"]), a.reduce_only)
                )
            # a "filled" answer (not expected for post-only orders) rests nothing; its fill arrives as a message

    # ---- state from the exchange -------------------------------------------------------------------
    def _reconcile(self, now: float, strict: bool = False) -> None:
        """Open orders, then fills, then the position from ``/info``; the ledger adopts them (``strict``: raise)."""
        t_read = self.clock()
        try:
            open_orders = self.client.open_orders(self.address)
            fills = self.info.user_fills(self.address)
            for row in fills:  # every row parses, or the ledger adopts none of them
                if row.get("coin") == self.coin:
                    fill_from_json(row)
            acct = _account(self.info.user_state(self.address), self.coin)
        except (*_NET_ERRORS, ClientError, DataError) as exc:
            if strict:
                raise
            self._note = f"reconcile failed: {type(exc).__name__}"
            self._need_reconcile = True
            return
        # orders of an unanswered request that could still land stay pending (unless already open)
        unsettled = {k: o for k, o in self.ledger.pending.items() if self._unknown_until.get(k, -math.inf) > t_read}
        self.ledger.reconcile(open_orders, fills)
        self._pending_acked.clear()
        self._unknown_until = {k: self._unknown_until[k] for k in unsettled if k not in self.ledger.resting}
        for k in self._unknown_until:
            self.ledger.add_pending(unsettled[k])
            self._pending_acked[k] = math.inf
        self._adopt_state(acct)
        self.counters.full_reconciles += 1
        self._last_reconcile_s = t_read
        self._read_budget()
        self._need_reconcile = bool(self._unknown_until)  # again once they can no longer land
        self.cloids.skip_past(o.cloid for o in open_orders)

    def _check_position(self, now: float) -> None:
        """Retire pending orders once the exchange's position equals the ledger's (their fills are all in)."""
        t_read = self.clock()
        try:
            acct = _account(self.info.user_state(self.address), self.coin)
        except (*_NET_ERRORS, ClientError, DataError):
            return  # not read: the pending orders keep counting
        self.counters.position_checks += 1
        q_ex = self._adopt_state(acct)
        if abs(q_ex - self.ledger.position_coins) <= _EPS:
            for key, acked in list(self._pending_acked.items()):
                if acked <= t_read:
                    self.ledger.pending.pop(key, None)
                    del self._pending_acked[key]

    def _adopt_state(self, acct: dict[str, Any]) -> float:
        self._margin_usd = max(acct["account_value_usd"], 1e-9)
        return float(acct["position_coins"])

    def _sync_clock(self) -> None:
        """Offset of the exchange's clock (ms) from its ``l2Book`` timestamp; adopted past the tolerance."""
        t0 = self.client.local_time_ms()
        book = self.info.l2_snapshot(self.coin)
        t1 = self.client.local_time_ms()
        offset = int(book["time"]) - (t0 + t1) // 2
        self.client.clock_offset_ms = offset if abs(offset) > CLOCK_TOLERANCE_MS else 0
        self.counters.clock_resyncs += 1
        self._on_book(self.clock(), book)

    # ---- the address request budget ----------------------------------------------------------------
    def _read_budget(self) -> None:
        """Adopt the exchange's ``userRateLimit`` count; a failed read keeps counting from the last one."""
        try:
            r = self.info.user_rate_limit(self.address)
            used, cap, volume = int(r["nRequestsUsed"]), int(r["nRequestsCap"]), float(r["cumVlm"])
        except (*_NET_ERRORS, ClientError, KeyError, TypeError, ValueError):
            return
        self.budget.sync(used, cap, volume)
        self._credited_usd = self.ledger.volume_usd  # our fills so far are in its cumVlm
        self._budget_read = True
        self.counters.request_budget_reads += 1
        if self._budget0 is None:
            self._budget0 = (self.clock(), used, cap)

    def requests_exhaustion_s(self, now: float) -> float | None:
        """Seconds until the address budget's cap at the run's pace: ``left / (spent − earned per second)``.

        ``None`` while unknown (never read, or under 5 s of pace measured) or when the pace does not drain it.
        """
        if not self._budget_read or self._budget0 is None:
            return None
        t0, used0, cap0 = self._budget0
        dt = now - t0
        net = ((self.budget.used - used0) - (self.budget.limit - cap0)) / dt if dt >= 5.0 else 0.0
        return max(self.budget.left, 0) / net if net > 0 else None

    def _budget_ok(self, now: float) -> bool:
        """Stop below ``min_requests_left``; set the warning when the budget runs out within the warning time."""
        if not self._budget_read:
            return True
        new_usd = self.ledger.volume_usd - self._credited_usd
        if new_usd > 0:  # our fills earn requests (1 per USDC on Hyperliquid)
            self.budget.record_fill(new_usd)
            self._credited_usd = self.ledger.volume_usd
        left = self.budget.left
        if left < self.config.min_requests_left:
            self.budget_warning = f"request budget: {max(left, 0):,} requests left of {self.budget.limit:,}: stopped"
            self.stop("request_budget")
            return False
        eta = self.requests_exhaustion_s(now)
        if eta is not None and eta < self.config.request_budget_warn_s:
            self.budget_warning = (
                f"request budget: {left:,} of {self.budget.limit:,} left, spent in {duration_text(eta)} at this pace "
                f"(the loop stops below {self.config.min_requests_left:,}); trading earns 1 per USDC"
            )
        else:
            self.budget_warning = ""
        return True

    def _resync_clock(self) -> None:
        """:meth:`_sync_clock` during the run: a failed read keeps the offset as last measured."""
        try:
            self._sync_clock()
        except (*_NET_ERRORS, ClientError, KeyError, TypeError, ValueError):
            self._note = "clock resync failed: offset kept as last measured"

    # ---- market data -------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._ws_gen += 1
        self._book = None  # quote only on a book from this connection
        self._last_book_s = None
        gen = self._ws_gen
        ws = WebsocketManager(self.client.base_url)
        ws.daemon = True
        ws.ping_sender.daemon = True
        put = self._events.put
        clock = self.clock
        counters = self.counters

        def cb(kind: str) -> Callable[[Any], None]:
            def on_message(msg: Any) -> None:
                put((gen, kind, clock(), msg.get("data")))
                if kind == "book":
                    counters.books_received += 1  # the WebSocket thread is its only writer

            return on_message

        ws.start()
        ws.subscribe({"type": "l2Book", "coin": self.coin}, cb("book"))
        ws.subscribe({"type": "trades", "coin": self.coin}, cb("trades"))
        ws.subscribe({"type": "userFills", "user": self.address}, cb("fills"))
        self._ws = ws
        self._ws_since = self.clock()

    @property
    def ws_alive(self) -> bool:
        """Whether the market-data WebSocket is open (its thread running)."""
        return self._ws is not None and self._ws.is_alive()

    def _drop_ws(self, why: str) -> None:
        if self._ws is not None:
            try:
                self._ws.stop()
            except Exception:  # closing a dead socket may raise anything; it is gone either way
                pass
        self._ws = None
        self._note = why

    def _reconnect(self, now: float) -> None:
        if now < self._next_connect_s:
            return
        self._drop_ws("reconnecting")
        self.counters.reconnects += 1
        self._next_connect_s = now + self._backoff_s
        self._backoff_s = min(2 * self._backoff_s, self.config.reconnect_max_s)
        self._need_reconcile = True
        try:
            self._connect()
        except Exception as exc:  # the SDK and websocket-client raise many types; retried with backoff
            self._note = f"reconnect failed: {type(exc).__name__}"

    def _drain(self) -> None:
        while True:
            try:
                gen, kind, t, data = self._events.get_nowait()
            except queue.Empty:
                return
            if gen != self._ws_gen or data is None:
                continue
            if kind == "book":
                self._on_book(t, data)
                self._backoff_s = self.config.reconnect_min_s
            elif kind == "trades":
                for tr in data:
                    if tr.get("coin") == self.coin:
                        sz = float(tr["sz"])
                        if sz > 0 and math.isfinite(sz):
                            self._traded_coins += sz
            elif kind == "fills":
                for row in data.get("fills", []):
                    if row.get("coin") == self.coin:
                        try:
                            self.ledger.apply_fill(fill_from_json(row))
                        except DataError as exc:  # not applied, not guessed: /info's userFills will have it
                            self._note = str(exc)[:120]
                            self._need_reconcile = True

    def _on_book(self, t: float, book: dict[str, Any]) -> None:
        if self._last_book_rx is not None and t > self._last_book_rx:
            self._book_dt_s += 0.1 * (min(t - self._last_book_rx, 5.0) - self._book_dt_s)
        self._last_book_rx = t
        levels = book.get("levels") or [[], []]
        if levels[0] and levels[1]:
            top = BookTop(float(levels[0][0]["px"]), float(levels[1][0]["px"]), round(t * 1e9))
            if top.is_two_sided:  # a crossed or one-sided book is not a book to quote on
                self._book, self._last_book_s, self._last_mid_usd = top, t, top.mid_usd

    # ---- guards ------------------------------------------------------------------------------------
    def _keep_dead_man(self, now: float) -> None:
        period = self.config.dead_man_s
        if now - self._dead_man_set_at_s < period / 3:
            return
        until = self.client.exchange_time_ms() + int(period * 1000)
        try:
            self.budget.used += 1  # an action: it counts against the address budget (no limiter sees it)
            self.client.schedule_cancel(until)
        except (ExchangeError, ClientError) as exc:
            self._note = str(exc)[:120]
            if _DEAD_MAN_VOLUME_GATE in str(exc):
                # refused until the account has traded enough: ask again a period later, not every refresh
                self.counters.dead_man_refusals += 1
                self.dead_man_refused = str(exc)[:200]
                self._dead_man_set_at_s = now + period - period / 3
                if self.config.require_dead_man:
                    self.stop("dead_man_refused")
                return
            self._resync_clock()  # "too early": our clock may be behind the exchange's
            return
        except _NET_ERRORS:
            return
        self._dead_man_until_ms = until
        self._dead_man_set_at_s = now
        self.counters.dead_man_sets += 1

    def _retry(self, read: Callable[[], Any]) -> Any:
        return _retry(read, self.sleep)

    # ---- exit --------------------------------------------------------------------------------------
    def _cancel_open_on_exchange(self, attempts: int = 6) -> int | None:
        """Cancel every open order of this coin until ``openOrders`` shows none; return how many remain.

        The count is the last ``openOrders`` read's, after the last cancels; ``None`` if that read failed (the
        exchange could not be reached): the orders are then *unknown*, never counted as zero. An order of an
        unanswered request may still land until its request expires: until then an empty book is not final, and
        the reads go on.
        """
        left: list[RestingOrder] | None = None
        until = max(self._unknown_until.values(), default=-math.inf)
        k = 0
        while True:
            k += 1
            try:
                left = self.client.open_orders(self.address)
            except (*_NET_ERRORS, ClientError, DataError):
                left = None  # a cancel may have gone out since the last good read: that count is stale now
            if left is not None and not left and self.clock() > until:
                return 0
            if k > attempts and self.clock() > until:
                return None if left is None else len(left)
            if left:
                plan = plan_orders(
                    [], left, inventory_coins=0.0, max_position_coins=1.0, cloids=self.cloids, config=self.orders_config
                )
                try:
                    for b in plan.batches:
                        self._send_patiently(b)
                except (*_NET_ERRORS, ClientError, ExchangeError):
                    pass
            self.sleep(min(0.1 * k, 0.5))

    def _send_patiently(self, batch: Batch, tries: int = 20) -> None:
        for _ in range(tries):
            try:
                res = self.client.send_batch(batch)
                self._count_sent(batch)
                self.counters.requests += 1
                self.counters.races += len(res.errors)
                return
            except RateLimited as exc:
                self.sleep(min(exc.wait_s, 1.0))

    def _shutdown(self) -> None:
        self.state = "stopping"
        try:
            left = self._cancel_open_on_exchange()
            if self._dead_man_until_ms is not None and left == 0:
                # no order is left: unset it (if it cannot be, it fires on its own and cancels nothing). With
                # orders left, or unknown, it stays: it is what will cancel them if we cannot
                try:
                    self.client.schedule_cancel(None)
                    self._dead_man_until_ms = None
                    self._dead_man_unset = True
                except (*_NET_ERRORS, ClientError, ExchangeError):
                    pass
            self._drain()
            try:
                self._retry(lambda: self._reconcile(self.clock(), strict=True))
                state = self._retry(lambda: self.info.user_state(self.address))
                self.end_state = _account(state, self.coin) | {"open_orders": left}
                self.end_state["funding_usd"] = self._funding_between(self.start_state, self.end_state)
            except (*_NET_ERRORS, ClientError, DataError) as exc:
                self.end_state = _UNKNOWN_END | {
                    "error": f"final reconcile failed: {type(exc).__name__}",
                    "open_orders": left,
                }
        finally:
            if self._ws is not None:
                self._drop_ws("stopped")
            self.state = "stopped"

    def dead_man_state(self) -> tuple[str, int | None]:
        """The dead-man switch now: ``(state, until_ms)``, ``until_ms`` its exchange-clock UNIX ms while set.

        ``state``: ``"set"`` (it cancels every open order at ``until_ms``), ``"expired"`` (it has fired: the
        exchange cancelled every open order then), ``"unset"`` (unset at exit, with no order left), ``"refused"``
        (the exchange refused it, e.g. under Hyperliquid's $1M volume gate) or ``"never_set"``.
        """
        until = self._dead_man_until_ms
        if until is not None:
            return ("set" if until > self.client.exchange_time_ms() else "expired"), until
        if self._dead_man_unset:
            return "unset", None
        return ("refused" if self.dead_man_refused else "never_set"), None

    def _funding_between(self, start: dict[str, Any], end: dict[str, Any]) -> float | None:
        """Funding paid into the account (USD, all coins) between two ``clearinghouseState`` reads; None if unknown.

        The exchange's balance moves by it, our fills do not show it: the reconciliation adds it to our side. A
        time-range read answers a page of rows (Hyperliquid: at most 500): the next read starts at the last row's
        time, until one brings no new row (a row is one coin's payment at one time; rows read twice count once). A
        page that fails leaves the total unknown, never partial.
        """
        t0, t1 = start.get("time_ms"), end.get("time_ms")
        if t0 is None or t1 is None:
            return None
        seen: set[tuple[Any, ...]] = set()
        total, since = 0.0, int(t0) + 1
        try:
            while True:
                rows = self._retry(partial(self.info.user_funding_history, self.address, since, int(t1)))
                new = 0
                for r in rows:
                    d = r["delta"]
                    key = (int(r["time"]), d.get("coin"))
                    if key not in seen:
                        seen.add(key)
                        new += 1
                        if d.get("type") == "funding":
                            total += float(d["usdc"])
                if not new:
                    return total
                since = max(int(r["time"]) for r in rows)
        except (*_NET_ERRORS, ClientError, KeyError, TypeError, ValueError):
            return None

    # ---- reporting ---------------------------------------------------------------------------------
    def status(self, now: float) -> LoopStatus:
        """The loop's state now (for the live view)."""
        est = self.quoter.estimator
        mid = self._last_mid_usd
        sigma = est.sigma_frac_per_sqrt_s(now) * 1e4 if est.mid_usd is not None else None
        return LoopStatus(
            t_s=now - self._t0,
            state=self.state,
            mid_usd=mid,
            sigma_bps_per_sqrt_s=sigma,
            position_coins=self.ledger.position_coins,
            pnl_usd=None if mid is None and self.ledger.position_coins else self.ledger.pnl_usd(mid or 0.0),
            fills=self.ledger.n_fills,
            orders_sent=self.counters.orders_sent,
            rejected=self.counters.rejected,
            resting=tuple(sorted(self.ledger.resting.values(), key=lambda o: -o.price)),
            stopped=dict(self._stopped),
            note=self._note,
            requests_used=self.budget.used if self._budget_read else None,
            requests_cap=self.budget.limit if self._budget_read else None,
            requests_exhaustion_s=self.requests_exhaustion_s(now),
            warning=self.budget_warning,
        )

    def summary(self) -> dict[str, Any]:
        """What happened, ours beside the exchange's records (USD, coins, seconds).

        ``pnl`` is the ledger's (cash − fees + q·mark − q0·mark0, from our fills) plus the funding paid into the
        account over the run (``funding_usd``, from ``userFunding``); ``reconciled`` says that position, cash and
        open orders agree with the exchange's ``clearinghouseState`` to the cent. A value that could not be read is
        ``None`` (unknown), never 0: ``exchange.open_orders`` when no ``openOrders`` read succeeded after the last
        cancels, the exchange's position and PnL when the final reads failed, ``funding_usd`` when ``userFunding``
        could not be read, and ``pnl`` when the mark or the funding is unknown (``pnl_fills_usd`` is then our fills'
        part alone). ``end_confirmed`` is true only when the exchange confirmed that no order rests and its final
        state was read.
        """
        c = self.counters
        start, end = self.start_state, self.end_state
        mark = end.get("mark_usd") or self._last_mid_usd
        funding = end.get("funding_usd")
        led = self.ledger
        # with no position the mark does not matter; with one, an unknown mark leaves the PnL unknown
        pnl_fills = None if mark is None and led.position_coins else led.pnl_usd(mark or 0.0)
        dm_state, dm_until = self.dead_man_state()
        open_left = end.get("open_orders")
        out: dict[str, Any] = {
            "coin": self.coin,
            "allocator": getattr(self.allocator, "name", type(self.allocator).__name__),
            "base_url": self.client.base_url,
            "address": self.address,
            "stop_reason": self.stop_reason or "stopped",
            "duration_s": self.clock() - self._t0,
            "refreshes": c.refreshes,
            "orders_sent": c.orders_sent,
            "modifies_sent": c.modifies_sent,
            "cancels_sent": c.cancels_sent,
            "requests": c.requests,
            "rejected": c.rejected,
            "rejections": dict(c.rejections),
            "races": c.races,
            "request_errors": c.request_errors,
            "timeouts": c.timeouts,
            "rate_limited": c.rate_limited,
            "reconnects": c.reconnects,
            "full_reconciles": c.full_reconciles,
            "position_checks": c.position_checks,
            "stale_pauses": c.stale_pauses,
            "guard_demotions": c.guard_demotions,
            "crossing_skipped": c.crossing_skipped,
            "dead_man_sets": c.dead_man_sets,
            "dead_man_refusals": c.dead_man_refusals,
            "dead_man_refused": self.dead_man_refused,
            "dead_man_state": dm_state,
            "dead_man_until_ms": dm_until,
            "clock_offset_ms": self.client.clock_offset_ms,
            "fills": led.n_fills,
            "fills_seen_again": led.n_duplicate_fills,
            "volume_usd": led.volume_usd,
            "fees_usd": led.fees_usd,
            "position_coins": led.position_coins,
            "max_position_coins": self.max_position_coins,
            "max_abs_position": led.max_abs_position_coins,
            "pnl": None if pnl_fills is None or funding is None else pnl_fills + funding,
            "pnl_fills_usd": pnl_fills,
            "funding_usd": funding,
            "max_drawdown_usd": self.quoter.max_drawdown_usd,
            "mark_usd": mark,
            "open_orders": open_left,
            "end_confirmed": bool(open_left == 0 and end.get("account_value_usd") is not None),
            "requests_used": self.budget.used if self._budget_read else None,
            "requests_cap": self.budget.limit if self._budget_read else None,
            "requests_left": self.budget.left if self._budget_read else None,
            "requests_exhaustion_s": self.requests_exhaustion_s(self.clock()),
            "request_budget_warning": self.budget_warning or None,
        }
        known = start and end.get("account_value_usd") is not None and end.get("raw_usd") is not None
        ex: dict[str, Any] = {
            "position_coins": end.get("position_coins"),
            "pnl_usd": end["account_value_usd"] - start["account_value_usd"] if known else None,
            "cash_usd": end["raw_usd"] - start["raw_usd"] if known else None,
            "open_orders": open_left,
        }
        if "error" in end:
            ex["error"] = end["error"]
        out["exchange"] = ex
        reconciled = False
        if known and funding is not None:
            # funding moves the exchange's balance and no fill of ours: it is counted on our side from userFunding
            ours_cash = led.cash_usd - led.fees_usd + funding
            reconciled = (
                abs(end["position_coins"] - led.position_coins) <= 1e-9
                and abs(ex["cash_usd"] - ours_cash) < 0.01
                and open_left == 0
            )
        out["reconciled"] = bool(reconciled)
        return out


# ---- helpers -------------------------------------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """``~45 s``, ``~12 min`` or ``~3.5 h``: a projected duration for people."""
    if seconds < 120:
        return f"~{seconds:.0f} s"
    if seconds < 7_200:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def _retry(
    read: Callable[[], Any], sleep: Callable[[float], None] = time.sleep, tries: int = 5, wait_s: float = 0.2
) -> Any:
    """``read()``, retried on network and server errors with a growing wait (seconds); the last error raises."""
    for k in range(tries):
        try:
            return read()
        except _NET_ERRORS:
            if k == tries - 1:
                raise
            sleep(wait_s * (k + 1))
    raise AssertionError("unreachable")


def _statuses(resp: Any) -> list[Any]:
    data = resp.get("response", {}) if isinstance(resp, dict) else {}
    return list(data.get("data", {}).get("statuses", [])) if isinstance(data, dict) else []


def _position(state: dict[str, Any], coin: str) -> tuple[float, float]:
    """``(szi, mark)`` of ``coin`` in a ``clearinghouseState`` (coins, USD; mark 0 without a position)."""
    for p in state.get("assetPositions", []):
        pos = p.get("position", {})
        if pos.get("coin") == coin:
            q = float(pos["szi"])
            mark = float(pos["positionValue"]) / abs(q) if q else 0.0
            return q, mark
    return 0.0, 0.0


def _account(state: dict[str, Any], coin: str) -> dict[str, Any]:
    """Position, mark, account value, raw USD and time of a ``clearinghouseState`` (coins, USD, exchange ms)."""
    try:
        q, mark = _position(state, coin)
        summary = state["marginSummary"]
        return {
            "position_coins": q,
            "mark_usd": mark,
            "account_value_usd": float(summary["accountValue"]),
            "raw_usd": float(summary["totalRawUsd"]),
            "time_ms": state.get("time"),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a field that is not there was not read: never a 0 balance or position
        raise DataError(f"clearinghouseState: no usable {exc.args[0] if exc.args else exc!r}"[:200]) from None
