"""The payout learner (issue 13): what each level of the ladder earns, learned from our own fills.

One :class:`PayoutLearner` per market (both sides): ``update(LevelObservations)`` after every refresh interval,
``sample(rng, ...)`` (Thompson sampling) or ``mean(...)`` for the curves the two-sided solver
(:func:`hyper_make.allocate._twosided.allocate_two_sided`) takes, ``diagnostics()`` for the posterior per depth
bucket and the fitted size penalty, ``save(path)`` / ``PayoutLearner.load(path)`` for its state. The prior comes
from the ladder's models or ``hyper-make calibrate`` (:class:`LearnerPrior`), its strength and the rest of the
hyperparameters from :class:`LearnerConfig`.
"""

from __future__ import annotations

from ._config import LearnerConfig, LearnerPrior, SizeModel
from ._learner import (
    BucketDiagnostics,
    DisplayFit,
    LearnerDiagnostics,
    PayoutCurves,
    PayoutLearner,
    SizeFit,
    UpdateReport,
    pooling_kernel,
)
from ._obs import LevelObservations
from ._state import SCHEMA_VERSION, load_or_new, load_state, pool_learners, save_state

__all__ = [
    "SCHEMA_VERSION",
    "BucketDiagnostics",
    "DisplayFit",
    "LearnerConfig",
    "LearnerDiagnostics",
    "LearnerPrior",
    "LevelObservations",
    "PayoutCurves",
    "PayoutLearner",
    "SizeFit",
    "SizeModel",
    "UpdateReport",
    "load_or_new",
    "load_state",
    "pool_learners",
    "pooling_kernel",
    "save_state",
]
