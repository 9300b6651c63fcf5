"""Persistence of a :class:`PayoutLearner`: one JSON file with a schema version, the coin and the bucket layout.

``save_state(learner, path)`` writes to a temporary file beside ``path`` and renames it over ``path`` (atomic on
POSIX), so a crash or a full disk never leaves a half-written state, and an existing file is replaced only by a
complete one. ``load_state(path, expected=config)`` reads it back; a file that is not JSON, of another schema
version, coin or layout, or with a missing, malformed or non-finite field raises
:class:`~hyper_make.errors.DataError` in one line naming the file and the field, and writes nothing.

Layout (schema 2; a schema-1 file, without the display-drift arrays ``dr_*``, is read as having none)::

    {"schema_version": 2, "kind": "hyper_make.PayoutLearner", "coin": "BTC",
     "layout": {"bucket_edges_bps": [...], "markout_horizons_s": [...], "beta_grid": [...]},
     "config": {...every LearnerConfig field...}, "prior": {"depth_bps": [...], "rate_per_s": [...], ...},
     "clock_s": 1234.5, "n_updates": 617, "counters": {...},
     "state": {"exposure_coin_s": [[...], [...]], ...}}

Infinite settings (``half_life_s``, ``huber_k``) are written as the string ``"inf"``. The prior is part of the
state: the markout statistics are deviations from it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InvalidParameterError
from ._config import LearnerConfig, LearnerPrior
from ._learner import COUNTERS, NONNEGATIVE, STATE_SHAPES, PayoutLearner

SCHEMA_VERSION = 2
#: Versions this one reads: 1 lacked the display-drift statistics (read as no data).
READABLE_VERSIONS = (1, 2)
KIND = "hyper_make.PayoutLearner"


def _jsonable_config(cfg: LearnerConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        name = f.name
        v = getattr(cfg, name)
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, float) and math.isinf(v):
            v = "inf"
        out[name] = v
    return out


def state_dict(learner: PayoutLearner) -> dict[str, Any]:
    """The learner as a JSON-ready dict (schema :data:`SCHEMA_VERSION`)."""
    cfg = learner.config
    layout = cfg.layout()
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "coin": layout.pop("coin"),
        "layout": layout,
        "config": _jsonable_config(cfg),
        "prior": learner.prior.to_dict(),
        "clock_s": learner.clock_s,
        "n_updates": learner.n_updates,
        "counters": {k: int(v) for k, v in learner.counters.items()},
        "state": {k: v.tolist() for k, v in learner.state.items()},
    }


def save_state(learner: PayoutLearner, path: str | Path) -> Path:
    """Write the learner to ``path`` atomically (temporary file in the same directory, then rename); returns it."""
    p = Path(path)
    text = json.dumps(state_dict(learner), allow_nan=False, separators=(",", ":"))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would make the state unreadable to the user's other tools
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


class _Reader:
    """Field access on a parsed state file, every error one line naming the file and the field."""

    def __init__(self, path: Path, doc: Any) -> None:
        self.path = path
        self.doc = doc

    def fail(self, field: str, why: str) -> DataError:
        return DataError(f"learner state {self.path}: field '{field}' {why}")

    def get(self, obj: Any, field: str, key: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            return self._missing(field)
        return obj[key]

    def _missing(self, field: str) -> Any:
        raise self.fail(field, "is missing")

    def number(self, obj: Any, field: str, key: str, *, lo: float = -math.inf) -> float:
        v = self.get(obj, field, key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < lo:
            raise self.fail(field, f"must be a finite number >= {lo:g}; got {v!r}")
        return float(v)

    def array(self, obj: Any, field: str, key: str, shape: tuple[int, ...], nonneg: bool) -> np.ndarray:
        v = self.get(obj, field, key)
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(field, "must be an array of numbers") from None
        if arr.shape != shape:
            raise self.fail(field, f"must have shape {shape} for this layout; got {arr.shape}")
        if not np.isfinite(arr).all():
            raise self.fail(field, "holds a non-finite value")
        if nonneg and (arr < 0).any():
            # sums of non-negative quantities; forgetting keeps them >= 0, so a negative one means corruption
            raise self.fail(field, "holds a negative value (it is a sum of non-negative quantities)")
        return arr


def load_state(path: str | Path, *, expected: LearnerConfig | None = None) -> PayoutLearner:
    """Read a learner written by :func:`save_state`.

    With ``expected`` (the caller's configuration), the file's coin and layout (bucket edges, markout horizons,
    β grid) must match it, and the learner continues with ``expected``'s hyperparameters (half-life, pooling,
    prior strength, ...); without it, with the file's own.

    Raises
    ------
    DataError
        File missing or unreadable, not JSON, another schema version or kind, another coin or layout, or a
        missing, malformed or non-finite field: one line naming the file and the field.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"learner state {p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"learner state {p}: cannot be read ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"learner state {p}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    rd = _Reader(p, doc)
    if not isinstance(doc, dict):
        raise DataError(f"learner state {p}: must be a JSON object; got {type(doc).__name__}")
    version = rd.get(doc, "schema_version", "schema_version")
    if version not in READABLE_VERSIONS:
        raise rd.fail("schema_version", f"is {version!r}; this version of hyper_make reads {list(READABLE_VERSIONS)}")
    kind = rd.get(doc, "kind", "kind")
    if kind != KIND:
        raise rd.fail("kind", f"is {kind!r}; expected {KIND!r}")
    coin = rd.get(doc, "coin", "coin")
    layout = rd.get(doc, "layout", "layout")
    raw_cfg = rd.get(doc, "config", "config")
    if not isinstance(raw_cfg, dict):
        raise rd.fail("config", "must be an object")
    try:
        file_cfg = LearnerConfig(**{k: (math.inf if v == "inf" else v) for k, v in raw_cfg.items()})
    except (InvalidParameterError, TypeError) as exc:
        raise rd.fail("config", f"is invalid: {exc}") from None
    if file_cfg.coin != coin:
        raise rd.fail("config.coin", f"is {file_cfg.coin!r} but the file's coin is {coin!r}")
    for key in ("bucket_edges_bps", "markout_horizons_s", "beta_grid"):
        v = rd.get(layout, f"layout.{key}", key)
        if not isinstance(v, list) or [float(x) for x in v] != list(getattr(file_cfg, key)):
            raise rd.fail(f"layout.{key}", f"is {v!r}, inconsistent with config.{key} {list(getattr(file_cfg, key))}")
    cfg = file_cfg
    if expected is not None:
        if coin != expected.coin:
            raise rd.fail("coin", f"is {coin!r}; expected {expected.coin!r} (a state learned on another market)")
        want = expected.layout()
        for key in ("bucket_edges_bps", "markout_horizons_s", "beta_grid"):
            if list(getattr(file_cfg, key)) != want[key]:
                raise rd.fail(f"layout.{key}", f"is {list(getattr(file_cfg, key))}; expected {want[key]}")
        cfg = expected
    pr = rd.get(doc, "prior", "prior")
    try:
        prior = LearnerPrior(
            depth_bps=np.asarray(rd.get(pr, "prior.depth_bps", "depth_bps"), dtype=np.float64),
            rate_per_s=np.asarray(rd.get(pr, "prior.rate_per_s", "rate_per_s"), dtype=np.float64),
            markout_bps=np.asarray(rd.get(pr, "prior.markout_bps", "markout_bps"), dtype=np.float64),
            markout_sd_bps=rd.number(pr, "prior.markout_sd_bps", "markout_sd_bps"),
        )
    except (InvalidParameterError, TypeError, ValueError) as exc:
        raise rd.fail("prior", f"is invalid: {exc}") from None
    dims = {"side": 2, "horizon": len(cfg.markout_horizons_s), "bucket": cfg.n_buckets, "beta": len(cfg.beta_grid),
            "reg": 2, "one": 1}  # fmt: skip
    raw_state = rd.get(doc, "state", "state")
    state = {
        name: (
            np.zeros(tuple(dims[d] for d in shape))
            if version == 1 and name.startswith("dr_")  # schema 1 had no display drift
            else rd.array(raw_state, f"state.{name}", name, tuple(dims[d] for d in shape), name in NONNEGATIVE)
        )
        for name, shape in STATE_SHAPES.items()
    }
    raw_counters = rd.get(doc, "counters", "counters")
    counters = {c: int(rd.number(raw_counters, f"counters.{c}", c, lo=0.0)) for c in COUNTERS}
    return PayoutLearner(
        config=cfg,
        prior=prior,
        state=state,
        counters=counters,
        clock_s=rd.number(doc, "clock_s", "clock_s", lo=0.0),
        n_updates=int(rd.number(doc, "n_updates", "n_updates", lo=0.0)),
    )


def load_or_new(path: str | Path | None, config: LearnerConfig, prior: LearnerPrior) -> PayoutLearner:
    """The learner saved at ``path`` if the file exists (checked against ``config``), else a new one from
    ``prior`` (``--learner-state FILE``: load before the run when it exists, write after)."""
    if path is not None and Path(path).exists():
        return load_state(path, expected=config)
    return PayoutLearner(config=config, prior=prior)


def pool_learners(base: PayoutLearner, learners: list[PayoutLearner]) -> PayoutLearner:
    """One learner holding what every learner learned since ``base`` (e.g. the paths of one simulation, each
    started from ``base``), as if they had run side by side: ``base``'s statistics decayed by the mean elapsed
    time, plus each learner's own new statistics (its state minus ``base``'s decayed over its clock).

    Every learner must have ``base``'s layout and prior and a clock at least ``base``'s.
    """
    if not learners:
        raise InvalidParameterError("'learners' must hold at least one PayoutLearner")
    cfg = base.config
    hl = cfg.half_life_s
    decays = []
    for i, lrn in enumerate(learners):
        if lrn.config.layout() != cfg.layout() or lrn.prior.to_dict() != base.prior.to_dict():
            raise InvalidParameterError(f"'learners[{i}]' has another layout or prior than 'base'")
        elapsed = lrn.clock_s - base.clock_s
        if elapsed < -1e-9:
            raise InvalidParameterError(f"'learners[{i}]' clock {lrn.clock_s} s is before the base's {base.clock_s} s")
        decays.append(1.0 if math.isinf(hl) else 2.0 ** (-max(elapsed, 0.0) / hl))
    mean_decay = float(np.mean(decays))
    state = {}
    for name, arr in base.state.items():
        new = sum(lrn.state[name] - arr * d for lrn, d in zip(learners, decays, strict=True))
        state[name] = np.maximum(arr * mean_decay + new, 0.0) if name in NONNEGATIVE else arr * mean_decay + new
    counters = {c: base.counters[c] + sum(lrn.counters[c] - base.counters[c] for lrn in learners) for c in COUNTERS}
    clock = base.clock_s + float(np.mean([lrn.clock_s - base.clock_s for lrn in learners]))
    n_up = base.n_updates + sum(lrn.n_updates - base.n_updates for lrn in learners)
    return PayoutLearner(config=cfg, prior=base.prior, state=state, counters=counters, clock_s=clock, n_updates=n_up)


__all__ = ["KIND", "SCHEMA_VERSION", "load_or_new", "load_state", "pool_learners", "save_state", "state_dict"]
