"""Recorded market data: one hftbacktest-compatible event dtype, streaming readers, order-book rebuild."""

from __future__ import annotations

from .events import event_dtype
from .merge import MergedReader
from .readers import SUPPORTED_FORMATS, EventReader, ReadReport, detect_format, iter_events, load_events, save_npz

__all__ = [
    "SUPPORTED_FORMATS",
    "EventReader",
    "MergedReader",
    "ReadReport",
    "detect_format",
    "event_dtype",
    "iter_events",
    "load_events",
    "save_npz",
]
