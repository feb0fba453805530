"""Fusion rules for member outputs of shape ``(n_members, n_samples, n_outputs)``.

Pure numpy and scikit-learn: no torch training, no Lightning, no ``members`` import.
"""

from combiners import metrics
from combiners.auto import AutoCombiner
from combiners.base import BaseCombiner
from combiners.crossfit import cross_fitted_fusion
from combiners.mean import MeanCombiner
from combiners.selection import EnsembleSelection
from combiners.snapshot import SnapshotCombiner
from combiners.stacking import StackingCombiner
from combiners.temperature import TemperatureScaling
from combiners.variance import VarianceScaling
from combiners.voting import VotingCombiner
from combiners.weighted import WeightedCombiner

#: The combiner classes by name (``"mean"``, ``"weighted"``, ...), as scripts take them.
COMBINERS: dict[str, type[BaseCombiner]] = {
    "auto": AutoCombiner,
    "mean": MeanCombiner,
    "voting": VotingCombiner,
    "weighted": WeightedCombiner,
    "selection": EnsembleSelection,
    "stacking": StackingCombiner,
    "snapshot": SnapshotCombiner,
}

__all__ = [
    "COMBINERS",
    "AutoCombiner",
    "BaseCombiner",
    "EnsembleSelection",
    "MeanCombiner",
    "SnapshotCombiner",
    "StackingCombiner",
    "TemperatureScaling",
    "VarianceScaling",
    "VotingCombiner",
    "WeightedCombiner",
    "cross_fitted_fusion",
    "metrics",
]
