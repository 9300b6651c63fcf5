"""Per-level economics: fill probability, adverse selection, self-impact, and the payout curve they make."""

from .adverse import AdverseModel, ExponentialAdverse, TableAdverse
from .curve import ImpactModel, LevelCurves, build_curves, build_curves_batch
from .fill import ExponentialIntensity, FillModel, FirstPassage, TableFill

__all__ = [
    "AdverseModel",
    "ExponentialAdverse",
    "ExponentialIntensity",
    "FillModel",
    "FirstPassage",
    "ImpactModel",
    "LevelCurves",
    "TableAdverse",
    "TableFill",
    "build_curves",
    "build_curves_batch",
]
