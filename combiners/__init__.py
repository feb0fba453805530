"""Fusion rules for member outputs of shape ``(n_members, n_samples, n_outputs)``.

Pure numpy and scikit-learn: no torch training, no Lightning, no ``members`` import.
"""

from combiners.base import BaseCombiner
from combiners.mean import MeanCombiner
from combiners.voting import VotingCombiner

COMBINERS: dict[str, type[BaseCombiner]] = {
    "mean": MeanCombiner,
    "voting": VotingCombiner,
}

__all__ = ["COMBINERS", "BaseCombiner", "MeanCombiner", "VotingCombiner"]
