"""scikit-learn-style ensembles that compose ``members`` and ``combiners``."""

from ensembles import metrics
from ensembles.classifier import EnsembleClassifier
from ensembles.distillation_report import DistillationReport
from ensembles.efficient import (
    BatchEnsembleClassifier,
    BatchEnsembleRegressor,
    MCDropoutClassifier,
    MCDropoutRegressor,
    MIMOClassifier,
    MIMORegressor,
    PackedEnsembleClassifier,
    PackedEnsembleRegressor,
)
from ensembles.export import to_onnx, to_torch
from ensembles.regressor import EnsembleRegressor
from ensembles.search import EnsembleSearchClassifier, EnsembleSearchRegressor
from ensembles.snapshot import SnapshotEnsembleClassifier, SnapshotEnsembleRegressor
from ensembles.soup import InterpolationCurve, loss_barrier, soup
from ensembles.splits import held_out_split

__all__ = [
    "BatchEnsembleClassifier",
    "BatchEnsembleRegressor",
    "DistillationReport",
    "EnsembleClassifier",
    "EnsembleRegressor",
    "EnsembleSearchClassifier",
    "EnsembleSearchRegressor",
    "MCDropoutClassifier",
    "MCDropoutRegressor",
    "MIMOClassifier",
    "MIMORegressor",
    "PackedEnsembleClassifier",
    "PackedEnsembleRegressor",
    "SnapshotEnsembleClassifier",
    "SnapshotEnsembleRegressor",
    "InterpolationCurve",
    "held_out_split",
    "loss_barrier",
    "metrics",
    "soup",
    "to_onnx",
    "to_torch",
]
