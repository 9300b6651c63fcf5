"""hftbacktest's event order: rows whose exchange and local orders disagree split into two flagged copies.

Our readers yield rows in receive (``local_ts``) order, each flagged ``EXCH_EVENT | LOCAL_EVENT``; their
``exch_ts`` may go back (e.g. a trade stream's ``T`` against a depth stream's ``E``). hftbacktest wants the rows
flagged ``EXCH_EVENT`` in ``exch_ts`` order and those flagged ``LOCAL_EVENT`` in ``local_ts`` order, and gets
both by its ``correct_event_order`` (``py-hftbacktest/hftbacktest/data/validation.py``): walking the rows sorted
(stable) by ``exch_ts`` and by ``local_ts`` together, a row at the head of both is written once with both flags;
otherwise the head with the earlier exchange time is written as exchange-only, or the local head as local-only.
:func:`hftbacktest_order` is that walk, compiled; ``hyper-make convert --hftbacktest-order`` writes its output.
Our commands read such a file too (:func:`~hyper_make.data.events.exchange_view` takes the exchange copies).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .events import EXCH_EVENT, LOCAL_EVENT, event_dtype

_EXCH = np.uint64(EXCH_EVENT)
_LOCAL = np.uint64(LOCAL_EVENT)


@nb.njit(cache=True)
def _walk(exch: np.ndarray, local: np.ndarray, by_exch: np.ndarray, by_local: np.ndarray) -> tuple:  # type: ignore[type-arg]
    n = exch.size
    src = np.empty(2 * n, np.int64)
    flag = np.empty(2 * n, np.int8)  # 3 both, 1 exchange only, 2 local only
    i = j = k = 0
    while True:
        if i < n and j < n:
            a = by_exch[i]
            b = by_local[j]
            if exch[a] == exch[b] and local[a] == local[b]:
                src[k] = a
                flag[k] = 3
                i += 1
                j += 1
            elif (exch[a] == exch[b] and local[a] < local[b]) or exch[a] < exch[b]:
                src[k] = a
                flag[k] = 1
                i += 1
            else:
                src[k] = b
                flag[k] = 2
                j += 1
        elif i < n:
            src[k] = by_exch[i]
            flag[k] = 1
            i += 1
        elif j < n:
            src[k] = by_local[j]
            flag[k] = 2
            j += 1
        else:
            break
        k += 1
    return src[:k], flag[:k]


def hftbacktest_order(events: np.ndarray) -> np.ndarray:
    """``events`` (any flags) reordered as hftbacktest's ``correct_event_order``: rows in both orders once with
    ``EXCH_EVENT | LOCAL_EVENT``, the others twice (an ``EXCH_EVENT`` copy in ``exch_ts`` order, a ``LOCAL_EVENT``
    copy in ``local_ts`` order). Rows already in both orders come out unchanged and in place."""
    ev = np.asarray(events, dtype=event_dtype)
    by_exch = np.argsort(ev["exch_ts"], kind="stable")
    by_local = np.argsort(ev["local_ts"], kind="stable")
    src, flag = _walk(ev["exch_ts"], ev["local_ts"], by_exch, by_local)
    out = ev[src]
    base = out["ev"] & ~(_EXCH | _LOCAL)
    out["ev"] = base | np.where(flag & 1, _EXCH, np.uint64(0)) | np.where(flag & 2, _LOCAL, np.uint64(0))
    return out


__all__ = ["hftbacktest_order"]
