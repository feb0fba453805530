"""scikit-learn's shared estimator checks on every estimator, configured small."""

import warnings

from sklearn.base import is_classifier
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
from ensembles.efficient import EFFICIENT_ENSEMBLES
from members import NeuralClassifier, NeuralRegressor, replicate

# The networks train in float64: check_sample_weight_equivalence_on_dense_data compares a
# weighted fit with a fit on repeated rows to a relative 1e-7, and the two sum the same losses
# in another order, which float32 rounding turns into differences of about 1e-6 after 20 steps
# (float64: 2e-16). The checks' data sets fit in one batch, so the two fits are the same
# gradient descent.
ESTIMATORS = [
    NeuralClassifier("mlp", max_epochs=20, random_state=0, precision="64-true"),
    NeuralRegressor("mlp", max_epochs=20, random_state=0, precision="64-true"),
    EnsembleClassifier(
        [
            ("wide", NeuralClassifier(max_epochs=20, precision="64-true")),
            (
                "narrow",
                NeuralClassifier(
                    module_kwargs={"hidden": (32,)}, max_epochs=20, precision="64-true"
                ),
            ),
        ],
        random_state=0,
    ),
    EnsembleRegressor(
        [
            ("wide", NeuralRegressor(max_epochs=20, precision="64-true")),
            (
                "narrow",
                NeuralRegressor(
                    module_kwargs={"hidden": (32,)}, max_epochs=20, precision="64-true"
                ),
            ),
        ],
        random_state=0,
    ),
    # the cross-fitting path: a learned combiner, K folds (2: the fewest that cross-fit, each
    # fold training costs the suite about 10 s), calibration
    EnsembleClassifier(
        [
            ("wide", NeuralClassifier(max_epochs=20, precision="64-true")),
            (
                "narrow",
                NeuralClassifier(
                    module_kwargs={"hidden": (32,)}, max_epochs=20, precision="64-true"
                ),
            ),
        ],
        combiner=StackingCombiner(),
        cv=2,
        calibration="temperature",
        random_state=0,
    ),
    EnsembleRegressor(
        [
            ("wide", NeuralRegressor(max_epochs=20, precision="64-true")),
            (
                "narrow",
                NeuralRegressor(
                    module_kwargs={"hidden": (32,)}, max_epochs=20, precision="64-true"
                ),
            ),
        ],
        combiner=StackingCombiner(),
        cv=2,
        random_state=0,
    ),
    # members trained together by the batched engine
    EnsembleClassifier(
        replicate(NeuralClassifier(max_epochs=20, random_state=0, precision="64-true"), 2),
        batched=True,
    ),
    EnsembleRegressor(
        replicate(
            NeuralRegressor(max_epochs=20, random_state=0, precision="64-true"), 2, bootstrap=True
        ),
        batched=True,
    ),
    SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=20, precision="64-true"), n_snapshots=3, random_state=0
    ),
    SnapshotEnsembleRegressor(
        NeuralRegressor(max_epochs=20, precision="64-true"), n_snapshots=3, random_state=0
    ),
    # the pool search: three trials of the "mlp" space, the ensemble selected from them
    EnsembleSearchClassifier(
        NeuralClassifier(max_epochs=20, precision="64-true"),
        n_trials=3,
        ensemble_size=2,
        random_state=0,
    ),
    EnsembleSearchRegressor(
        NeuralRegressor(max_epochs=20, precision="64-true"),
        n_trials=3,
        ensemble_size=2,
        random_state=0,
    ),
    # the ensembles inside one network, every method of the registry
    *(
        kind(template(max_epochs=20, precision="64-true"), random_state=0)
        for pair in EFFICIENT_ENSEMBLES.values()
        for kind, template in zip(pair, (NeuralClassifier, NeuralRegressor), strict=True)
    ),
]


def expected_failed_checks(estimator):
    """Checks that cannot pass by design, and why."""
    params = estimator.get_params()
    if any(key.endswith("bootstrap") and value is True for key, value in params.items()):
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "a bootstrap is drawn in proportion to the weights: the same distribution as "
                "drawing from repeated rows, not the same draws"
            )
        }
    if "input_repetition" in params:
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "MIMO shuffles the batch once per head: a row repeated twice is drawn as two "
                "rows, a row of weight 2 as one (the same expectation, not the same draws)"
            )
        }
    if "n_samples" in params and "dropout" in params:
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "MC-Dropout trains with dropout, which draws one mask per row: a row repeated "
                "twice gets two masks, a row of weight 2 one"
            )
        }
    if "alpha" in params and "gamma" in params and not is_classifier(estimator):
        return {
            f"check_regressors_train{variant}": (
                "the check sets alpha=0.01 on any regressor with an alpha (a linear model's "
                "penalty); Packed-Ensembles' alpha is the width factor, and 0.01 leaves each "
                "sub-network one unit per layer"
            )
            for variant in (
                "",
                "(readonly_memmap=True)",
                "(readonly_memmap=True,X_dtype=float32)",
            )
        }
    if "n_trials" in params:
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "the search space samples dropout, and dropout draws one mask per row: a row "
                "repeated twice gets two masks, a row of weight 2 one (without dropout a "
                "weighted network equals one trained on repeated rows: tests/members/"
                "test_weights.py)"
            )
        }
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)
