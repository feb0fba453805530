"""scikit-learn's shared estimator checks on every estimator, configured small."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from combiners import StackingCombiner
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    EnsembleSearchRegressor,
    SnapshotEnsembleClassifier,
    SnapshotEnsembleRegressor,
)
from members import NeuralClassifier, NeuralRegressor, replicate

ESTIMATORS = [
    NeuralClassifier("mlp", max_epochs=20, random_state=0),
    NeuralRegressor("mlp", max_epochs=20, random_state=0),
    EnsembleClassifier(
        [
            ("wide", NeuralClassifier(max_epochs=20)),
            ("narrow", NeuralClassifier(module_kwargs={"hidden": (32,)}, max_epochs=20)),
        ],
        random_state=0,
    ),
    EnsembleRegressor(
        [
            ("wide", NeuralRegressor(max_epochs=20)),
            ("narrow", NeuralRegressor(module_kwargs={"hidden": (32,)}, max_epochs=20)),
        ],
        random_state=0,
    ),
    # the cross-fitting path: a learned combiner, K folds, calibration
    EnsembleClassifier(
        [
            ("wide", NeuralClassifier(max_epochs=20)),
            ("narrow", NeuralClassifier(module_kwargs={"hidden": (32,)}, max_epochs=20)),
        ],
        combiner=StackingCombiner(),
        cv=3,
        calibration="temperature",
        random_state=0,
    ),
    EnsembleRegressor(
        [
            ("wide", NeuralRegressor(max_epochs=20)),
            ("narrow", NeuralRegressor(module_kwargs={"hidden": (32,)}, max_epochs=20)),
        ],
        combiner=StackingCombiner(),
        cv=3,
        random_state=0,
    ),
    # members trained together by the batched engine
    EnsembleClassifier(replicate(NeuralClassifier(max_epochs=20, random_state=0), 2), batched=True),
    EnsembleRegressor(
        replicate(NeuralRegressor(max_epochs=20, random_state=0), 2, bootstrap=True),
        batched=True,
    ),
    SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=20), n_snapshots=3, random_state=0),
    SnapshotEnsembleRegressor(NeuralRegressor(max_epochs=20), n_snapshots=3, random_state=0),
    # the pool search: three trials of the "mlp" space, the ensemble selected from them
    EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=20), n_trials=3, ensemble_size=2, random_state=0
    ),
    EnsembleSearchRegressor(
        NeuralRegressor(max_epochs=20), n_trials=3, ensemble_size=2, random_state=0
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)
