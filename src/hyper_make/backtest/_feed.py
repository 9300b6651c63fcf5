"""Event chunks read once and shared by every replay that walks them, freed once all have passed them.

:class:`EventFeed` pulls ``event_dtype`` chunks from a reader (or slices an array) and keeps only the chunks some
consumer still needs: each replay side (a venue's exchange side, its strategy's feed-latency side, the fixed grid's
two sides) holds a cursor and releases the chunks behind it, so memory holds about one or two chunks whatever the
length of the data. Per chunk it keeps the columns the kernels read and the strategy's receive clock (``--latency
feed``). The feed walks no book of its own (its one pass over a chunk is that clock): each venue's exchange-side
book records the market path (BBO changes and trades, for the markouts) and sums the traded volume as it replays a
chunk (:class:`PathRecorder`), so the data is walked once per book.

**The band follows the price.** The book is a dense tick grid of ``±band_frac`` around the first prices
(:class:`~hyper_make.data.book.BookGrid`); a day or a week can walk out of it. Before each chunk, the mid of the
exchange-side book that has replayed the chunk before it is checked (:meth:`EventFeed.band`): once it has left the
middle half of the band, every book fed the data (each venue's exchange and strategy books) is re-centred on that
mid before the chunk's first row (:func:`recentred_base`, :meth:`~hyper_make.data.book.OrderBook.recentre`),
together with the venues' tick-indexed order lookups. The first exchange side to finish a chunk decides; every
book has applied the same rows, so the others find the same band (checked). A strategy-side book usually lags its
exchange side; when it finishes a chunk first (an exchange-only row later than its clock holds the exchange side
back), a copy of the exchange side's book takes the rows left and decides (:meth:`EventFeed.band_for_strategy`).
A level left outside is dropped (deeper than half the band from the mid: 5 % for the default 10 % band) and
counted as out of band. On data that stays inside the middle half (the recordings this project tests on) nothing
moves and the replay is the unsplit one, fill for fill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..data.book import NO_CLOCK, BookGrid, MarketPath, OrderBook, _walk, path_piece, recentred_base, shift_slots
from ..data.events import EXCH_EVENT, LOCAL_EVENT, event_dtype
from ..errors import DataError
from ._core import P_CLOCK, P_LAST_ASK, P_LAST_BID, P_NQ, P_NT

#: Rows the book's grid is taken from (:meth:`BookGrid.around` reads the first 100,000).
GRID_ROWS = 100_000


@dataclass(frozen=True, slots=True, eq=False)
class Chunk:
    """One chunk of the data as the kernels read it.

    Attributes
    ----------
    index : its place in the data (0, 1, ...).  rows : its row count.
    ev, exch_ts, px, qty : the columns (views of the chunk's rows).
    local_ts : the strategy's receive time of each row (ns, :func:`~hyper_make.backtest.venue.strategy_clock`), or
        ``exch_ts`` when the strategy sees the market at exchange time.
    """

    index: int
    rows: int
    ev: np.ndarray
    exch_ts: np.ndarray
    local_ts: np.ndarray
    px: np.ndarray
    qty: np.ndarray


def array_chunks(events: np.ndarray, chunk_rows: int) -> Iterator[np.ndarray]:
    """``events`` in slices of ``chunk_rows`` rows (views)."""
    for i in range(0, events.size, chunk_rows):
        yield events[i : i + chunk_rows]


@nb.njit(cache=True)
def _ahead(ev, exch_ts, local_ts, ahead):  # type: ignore[no-untyped-def]
    """``max(ahead, exch_ts - local_ts)`` over the rows both sides see, ``local_ts <= 0`` read as ``exch_ts``."""
    both = np.uint64(EXCH_EVENT | LOCAL_EVENT)
    for k in range(ev.size):
        if (ev[k] & both) == both:
            loc = local_ts[k] if local_ts[k] > 0 else exch_ts[k]
            if exch_ts[k] - loc > ahead:
                ahead = exch_ts[k] - loc
    return ahead


@nb.njit(cache=True)
def _receive_clock(exch_ts, local_ts, shift):  # type: ignore[no-untyped-def]
    """``local_ts`` (``exch_ts`` where it is ``<= 0``) plus ``shift`` (ns), in one pass."""
    out = np.empty(exch_ts.size, np.int64)
    for k in range(exch_ts.size):
        out[k] = (local_ts[k] if local_ts[k] > 0 else exch_ts[k]) + shift
    return out


def clock_shift_ns(chunks: Iterable[np.ndarray]) -> int:
    """The shift (ns, ``>= 0``) that :func:`~hyper_make.backtest.venue.strategy_clock` adds to every receive time:
    the largest ``exch_ts - local_ts`` over the rows both sides see (0 if none is ahead). One pass over the data."""
    ahead = 0
    for c in chunks:
        if c.size:
            ahead = int(_ahead(c["ev"], c["exch_ts"], c["local_ts"], np.int64(ahead)))
    return ahead


class EventFeed:
    """The data as a sequence of :class:`Chunk`, read on demand and shared by cursors (see the module doc).

    Parameters
    ----------
    chunks : ``event_dtype`` arrays in data order (a reader's chunks; any sizes, empty ones skipped).
    grid : the book's band; ``None``: :meth:`BookGrid.around` the first :data:`GRID_ROWS` rows (``band_frac``,
        ``tick_usd``).
    use_bbo : whether best-bid/offer rows move the books.
    clock_shift : the strategy's receive clock is ``local_ts`` (``exch_ts`` where it is ``<= 0``) plus this shift
        (ns, :func:`clock_shift_ns`); ``None``: the strategy sees the market at exchange time.
    recentring : whether the band follows the price (module doc).
    on_chunk : called with each chunk's row count as it is read (a progress bar).

    A :class:`~hyper_make.errors.DataError` from ``chunks`` (a reader stopping on a bad line) ends the data there;
    it is kept in :attr:`error`.
    """

    def __init__(
        self,
        chunks: Iterable[np.ndarray],
        *,
        grid: BookGrid | None = None,
        band_frac: float = 0.1,
        tick_usd: float | None = None,
        use_bbo: bool = True,
        clock_shift: int | None = None,
        recentring: bool = True,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        self._it = iter(chunks)
        self.recentring = recentring
        #: per chunk, the band's new first tick applied to every book before its first row, or None (:meth:`band`)
        self._bands: dict[int, int | None] = {0: None}
        self.use_bbo = use_bbo
        self.clock_shift = clock_shift
        self.on_chunk = on_chunk
        self.error: DataError | None = None
        self.rows = 0  # rows read so far
        self._ended = False
        self._raw: list[np.ndarray] = []  # read, not yet made chunks (before the grid is known)
        self._chunks: dict[int, Chunk] = {}
        self._next = 0  # index of the next chunk to make
        self._cursors: dict[int, int] = {}
        self._freed = 0  # chunks below this index are gone
        if grid is None:
            first: list[np.ndarray] = []
            n = 0
            while n < GRID_ROWS and (c := self._read()) is not None:
                first.append(c)
                n += c.size
            self._raw = first
            if n == 0:
                raise DataError("no event in the data: nothing to replay" + self._why())
            head = np.concatenate(first) if len(first) > 1 else first[0]
            grid = BookGrid.around(head[:GRID_ROWS], band_frac=band_frac, tick_usd=tick_usd)
        self.grid = grid
        first_chunk = self.get(0)
        if first_chunk is None:
            raise DataError("no event in the data: nothing to replay" + self._why())
        #: exchange time of the data's first row (ns): the replay's start
        self.t0 = int(first_chunk.exch_ts[0])

    def _why(self) -> str:
        return f" (the read stopped: {self.error})" if self.error is not None else ""

    # ---- reading ----------------------------------------------------------------------------------
    def _read(self) -> np.ndarray | None:
        """The next non-empty array from the source, or ``None`` at its end (or a read error)."""
        if self._ended:
            return None
        while True:
            try:
                c = next(self._it)
            except StopIteration:
                self._ended = True
                return None
            except DataError as exc:
                self.error = exc
                self._ended = True
                return None
            if c.size:
                c = np.asarray(c)
                if c.dtype != event_dtype:
                    c = c.astype(event_dtype)
                self.rows += c.size
                if self.on_chunk is not None:
                    self.on_chunk(int(c.size))
                return c

    def _make(self, raw: np.ndarray) -> Chunk:
        # the columns as views of the rows (the kernels read strided arrays as fast as copies, and a copy costs)
        ev, exch, px, qty = raw["ev"], raw["exch_ts"], raw["px"], raw["qty"]
        if self.clock_shift is None:
            local = exch
        else:
            local = _receive_clock(exch, raw["local_ts"], np.int64(self.clock_shift))
        return Chunk(self._next, int(raw.size), ev, exch, local, px, qty)

    def get(self, index: int) -> Chunk | None:
        """Chunk ``index`` (read as needed), or ``None`` past the end of the data."""
        if index < self._freed:
            raise RuntimeError(f"chunk {index} was already released (the first kept is {self._freed})")
        while index >= self._next:
            raw = self._raw.pop(0) if self._raw else self._read()
            if raw is None:
                return None
            self._chunks[self._next] = self._make(raw)
            self._next += 1
        return self._chunks[index]

    def is_last(self, index: int) -> bool:
        """Whether chunk ``index`` is the data's last (reads the next one to know)."""
        return self.get(index + 1) is None

    # ---- cursors ----------------------------------------------------------------------------------
    def cursor(self) -> int:
        """A new consumer, at chunk 0; returns its id for :meth:`release`."""
        cid = len(self._cursors)
        self._cursors[cid] = 0
        return cid

    def release(self, cid: int, index: int) -> None:
        """Consumer ``cid`` needs no chunk before ``index`` any more; chunks no consumer needs are freed."""
        self._cursors[cid] = max(self._cursors[cid], index)
        low = min(self._cursors.values())
        for i in range(self._freed, low):
            self._chunks.pop(i, None)
        self._freed = max(self._freed, low)

    @property
    def chunks_held(self) -> int:
        """Chunks in memory now."""
        return len(self._chunks) + len(self._raw)

    @property
    def recentres(self) -> int:
        """How often the band moved so far."""
        return sum(r is not None for r in self._bands.values())

    def decided(self, index: int) -> bool:
        """Whether the band before chunk ``index`` is decided (:meth:`band`)."""
        return index in self._bands

    def band_for_strategy(self, index: int, book: OrderBook, chunk: Chunk, row: int) -> int | None:
        """:meth:`band` before chunk ``index`` for a strategy-side book, deciding it if no exchange side has got
        there yet (a row the exchange sees only, later than the strategy's clock, can hold the exchange side back in
        an earlier chunk): a copy of the exchange side's ``book``, at ``row`` of ``chunk``, takes the exchange rows
        that are left before chunk ``index`` (the book alone: our orders do not move it), deciding every band on
        the way as the exchange side will find it."""
        if self.decided(index):
            return self._bands[index]
        ahead = OrderBook(self.grid, use_bbo=self.use_bbo)
        ahead.bid_qty[:], ahead.ask_qty[:], ahead.state[:] = book.bid_qty, book.ask_qty, book.state
        c, k = chunk, row
        while True:
            _walk(ahead.bid_qty, ahead.ask_qty, ahead.state, c.ev[k:], c.px[k:], c.qty[k:], self.grid.tick_usd,
                  self.use_bbo)  # fmt: skip
            nxt = c.index + 1
            base = self.band(nxt, ahead.state)
            if nxt == index:
                return base
            enter(base, ahead)
            c, k = self.get(nxt), 0  # type: ignore[assignment]  # held: the exchange side has not passed it

    def band(self, index: int, state: np.ndarray | None = None) -> int | None:
        """The band's new first tick before chunk ``index`` (``None``: it stays), from the state of an exchange-side
        book that has replayed every row before the chunk (module doc): the first such book decides and the others
        must agree; a book without ``state`` (a strategy side) needs the decision made."""
        if index in self._bands:
            base = self._bands[index]
            if state is not None and (recentred_base(state) if self.recentring else None) != base:
                raise RuntimeError(f"the books disagree on the band before chunk {index} (they replay the same rows)")
            return base
        if state is None:
            raise RuntimeError(f"chunk {index} is entered before an exchange side has replayed the chunk before it")
        base = recentred_base(state) if self.recentring else None
        self._bands[index] = base
        return base


def enter(base: int | None, book: OrderBook, *slot_arrays: np.ndarray) -> None:
    """Bring ``book`` (and the tick-indexed lookups of its band) to the band starting at tick ``base``
    (:meth:`EventFeed.band`; ``None``: it stays)."""
    if base is None:
        return
    d = base - book.base_tick
    if d:
        book.recentre(base)
        for s in slot_arrays:
            shift_slots(s, d)


class PathRecorder:
    """The market-path piece of the chunk an exchange-side book is replaying, written by the replay kernel as it
    walks the rows (``run_until(..., path=recorder.arrays)``): BBO changes and trades, taken at the chunk's end
    (:meth:`take`), with the clock and the last best carried to the next chunk. The kernel stops when it is
    :attr:`full` (``STATUS_FILLS_FULL``); the caller :meth:`grow` s it and goes on."""

    def __init__(self, rows: int = 4096) -> None:
        self._alloc(max(rows, 1))
        #: rows written (BBO changes, trades), the path clock (ns), the last two-sided best (band ticks)
        self.carry = np.zeros(5, dtype=np.int64)
        self.carry[P_CLOCK], self.carry[P_LAST_BID], self.carry[P_LAST_ASK] = NO_CLOCK, -2, -2
        #: the coins traded (the exchange's trade rows) from the data's start to the book's next row
        self.traded = np.zeros(1)

    def _alloc(self, rows: int) -> None:
        self.bbo = np.empty((rows, 2))  # best bid, best ask (USD)
        self.trades = np.empty((rows, 4))  # price USD, coins, the mid before it USD, buyer-initiated (1/0)
        self.times = np.empty((rows, 2), dtype=np.int64)  # the BBO change's and the trade's clock (ns)

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the kernel writes to (a row adds at most one BBO change or one trade)."""
        return self.bbo, self.trades, self.times, self.carry, self.traded

    @property
    def clock_ns(self) -> int | None:
        """The largest exchange time of the rows walked so far (ns), ``None`` before the first."""
        c = int(self.carry[P_CLOCK])
        return None if c == NO_CLOCK else c

    @property
    def full(self) -> bool:
        """Whether the next row might not fit."""
        n = self.bbo.shape[0]
        return bool(self.carry[P_NQ] >= n or self.carry[P_NT] >= n)

    def grow(self) -> None:
        """Twice the room, the rows written kept."""
        old = self.bbo, self.trades, self.times
        self._alloc(2 * self.bbo.shape[0])
        for a, b in zip(old, (self.bbo, self.trades, self.times), strict=True):
            b[: a.shape[0]] = a

    def take(self) -> MarketPath:
        """The piece written since the last call, as a :class:`~hyper_make.data.book.MarketPath`."""
        c = self.carry
        piece = path_piece(self.bbo, self.trades, self.times, int(c[P_NQ]), int(c[P_NT]))
        c[P_NQ] = c[P_NT] = 0
        return piece


__all__ = ["GRID_ROWS", "Chunk", "EventFeed", "PathRecorder", "array_chunks", "clock_shift_ns", "enter"]
