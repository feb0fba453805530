"""One way to validate parameters: scikit-learn's ``_parameter_constraints`` on every estimator
and combiner, checked by scikit-learn's own ``check_param_validation`` (every parameter has a
constraint; a value of a wrong type, or a wrong value of the right type, raises
``InvalidParameterError`` with the message "The 'p' parameter of C must be ... Got ...")."""

import pytest
from sklearn.utils.estimator_checks import check_param_validation

from combiners import (
    EnsembleSelection,
    MeanCombiner,
    SnapshotCombiner,
    StackingCombiner,
    TemperatureScaling,
    VotingCombiner,
    WeightedCombiner,
)
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    SnapshotEnsembleClassifier,
    SnapshotEnsembleRegressor,
)
from members import NeuralClassifier, NeuralRegressor

ESTIMATORS = [
    NeuralClassifier(max_epochs=1),
    NeuralRegressor(max_epochs=1),
    EnsembleClassifier([("a", NeuralClassifier(max_epochs=1))]),
    EnsembleRegressor([("a", NeuralRegressor(max_epochs=1))]),
    SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=1)),
    SnapshotEnsembleRegressor(NeuralRegressor(max_epochs=1)),
    MeanCombiner(),
    VotingCombiner(),
    WeightedCombiner(),
    EnsembleSelection(),
    StackingCombiner(),
    SnapshotCombiner(),
    TemperatureScaling(),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_every_parameter_is_validated_with_one_message_shape(estimator):
    check_param_validation(type(estimator).__name__, estimator)
