"""scikit-learn-style ensembles that compose ``members`` and ``combiners``."""

from ensembles.classifier import EnsembleClassifier
from ensembles.regressor import EnsembleRegressor

__all__ = ["EnsembleClassifier", "EnsembleRegressor"]
