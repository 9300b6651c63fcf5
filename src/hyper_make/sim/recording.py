"""A recording of the simulated market alone (no strategy of ours), in the recorded-data event format.

:func:`record_market` runs :class:`~hyper_make.sim.market.Market` with no order of ours for ``horizon_s`` seconds
and returns hftbacktest ``event_dtype`` rows: the market's tape (others' best bid and ask as BBO rows when either
changes, each market order's fills tick by tick as trades flagged by the aggressor's side) and, every
``snapshot_s`` seconds, a full snapshot of others' visible book on ``levels`` ticks a side (a clear row per side,
then one snapshot row per tick), with the top of the book sent again after every event (``top_levels``). The
recorded-data tools (:func:`hyper_make.calibrate.calibrate`, :func:`hyper_make.calibrate.preset.fit_preset`) read
it unchanged, so a preset's stylised facts are measured on the simulator by the very code that measures them on a
venue, and a fit can be checked on a market whose parameters are known.
"""

from __future__ import annotations

import numpy as np

from ..data.events import (
    BUY_EVENT,
    DEPTH_BBO_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    event_dtype,
)
from ..errors import InvalidParameterError
from . import market as mk
from .calibrate_loop import TAPE_EPOCH_NS, tape_to_events
from .config import MarketConfig

#: tape rows reserved per simulated second (BBO changes come at every event; sweeps write a row per tick)
_TAPE_ROWS_PER_S = 400


def record_market(
    cfg: MarketConfig,
    *,
    seed: int = 0,
    horizon_s: float = 600.0,
    snapshot_s: float = 1.0,
    levels: int = 200,
    top_levels: int = 10,
) -> np.ndarray:
    """``horizon_s`` seconds of the simulated market on seed ``seed`` as ``event_dtype`` rows in time order.

    Parameters
    ----------
    cfg : the market.  seed : its random stream (every part of the path is drawn from it).
    horizon_s : length (s), ``> 0``.  snapshot_s : book snapshot interval (s), ``> 0``.
    levels : ticks a side in each snapshot, ``>= 1`` (cover the depth the facts measure: 10 bps is
        ``10e-4·mid0_usd/tick_usd`` ticks).
    top_levels : between snapshots, after every market event the ``top_levels`` ticks nearest each side's best
        are sent again as depth rows (after a BBO row that clears stale better levels), as a diff feed shows the
        top of the book changing (``1 <= top_levels <= levels``).

    Timestamps run from :data:`~hyper_make.sim.calibrate_loop.TAPE_EPOCH_NS` (exchange and local alike).
    """
    if not (horizon_s > 0 and snapshot_s > 0 and snapshot_s <= horizon_s):
        raise InvalidParameterError(
            f"'horizon_s' and 'snapshot_s' must be > 0 s with snapshot_s <= horizon_s; got {horizon_s!r}, "
            f"{snapshot_s!r}"
        )
    if not (isinstance(levels, int) and 1 <= levels <= 100_000):
        raise InvalidParameterError(f"'levels' must be an integer in [1, 100000] ticks; got {levels!r}")
    if not (isinstance(top_levels, int) and 1 <= top_levels <= levels):
        raise InvalidParameterError(f"'top_levels' must be an integer in [1, levels={levels}]; got {top_levels!r}")
    m = mk.Market(cfg, seed, tape_rows=int(horizon_s * _TAPE_ROWS_PER_S) + 1_000)
    bid_flag = np.uint64(BUY_EVENT | EXCH_EVENT | LOCAL_EVENT)
    ask_flag = np.uint64(SELL_EVENT | EXCH_EVENT | LOCAL_EVENT)
    parts = []
    m.run_until(0.0)  # draws the first event (kept pending: its time is in the state)
    next_snap = snapshot_s
    while True:
        # step to the next market event or snapshot: the book's top is sent after every event, as it changed
        t = min(float(m.s[mk.S_NXT_T]), next_snap)
        if t > horizon_s:
            break
        m.run_until(t)
        full = t >= next_snap
        if full:
            next_snap += snapshot_s
        n = levels if full else top_levels
        bid0, ask0, bq, aq = m.book_levels(n)
        ks = np.arange(n)
        row = np.zeros(2 * n + 2, dtype=event_dtype)
        if full:  # a snapshot: clear each side, then its levels
            row["ev"][0] = np.uint64(DEPTH_CLEAR_EVENT) | bid_flag
            row["ev"][1] = np.uint64(DEPTH_CLEAR_EVENT) | ask_flag
            kind = np.uint64(DEPTH_SNAPSHOT_EVENT)
        else:  # the top: a BBO row per side at the first tick with size (it drops stale better levels), then diffs
            vb, va = np.flatnonzero(bq > 0), np.flatnonzero(aq > 0)
            row["ev"][0] = np.uint64(DEPTH_BBO_EVENT) | bid_flag
            row["ev"][1] = np.uint64(DEPTH_BBO_EVENT) | ask_flag
            kb, ka = (int(vb[0]) if vb.size else 0), (int(va[0]) if va.size else 0)
            row["px"][0], row["qty"][0] = (bid0 - kb) * cfg.tick_usd, bq[kb]
            row["px"][1], row["qty"][1] = (ask0 + ka) * cfg.tick_usd, aq[ka]
            kind = np.uint64(DEPTH_EVENT)
        row["ev"][2 : 2 + n] = kind | bid_flag
        row["ev"][2 + n :] = kind | ask_flag
        row["px"][2 : 2 + n] = (bid0 - ks) * cfg.tick_usd
        row["px"][2 + n :] = (ask0 + ks) * cfg.tick_usd
        row["qty"][2 : 2 + n] = bq
        row["qty"][2 + n :] = aq
        ts = TAPE_EPOCH_NS + round(t * 1e9)
        row["exch_ts"] = ts
        row["local_ts"] = ts
        if full:  # a snapshot lists only levels that rest
            row = row[(row["qty"] > 0) | (np.arange(row.size) < 2)]
        parts.append(row)
    m.run_until(horizon_s)
    n_tape = int(m.s[mk.S_TAPE_N])
    if n_tape >= m.tape.shape[0]:
        raise RuntimeError(f"the simulated tape filled its {m.tape.shape[0]} rows: the recording would be cut short")
    tape = tape_to_events(m.tape[:n_tape], cfg.tick_usd)
    snap = np.concatenate(parts) if parts else np.zeros(0, dtype=event_dtype)
    # the tape first, then the snapshot taken after it at the same time (stable sort on the timestamp)
    rows = np.concatenate([tape, snap])
    return rows[np.argsort(rows["exch_ts"], kind="stable")]


__all__ = ["record_market"]
