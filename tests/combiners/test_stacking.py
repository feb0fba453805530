"""StackingCombiner against scikit-learn's stacking estimators on the same prefit members."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from combiners import StackingCombiner


def _prefit_classifiers(X, y):
    return [
        ("lr", LogisticRegression(max_iter=1000).fit(X, y)),
        ("nb", GaussianNB().fit(X, y)),
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)),
    ]


@pytest.mark.parametrize("loader", [load_iris, load_breast_cancer], ids=["multiclass", "binary"])
@pytest.mark.parametrize("passthrough", [False, True])
def test_equals_sklearn_stacking_classifier_prefit(loader, passthrough):
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    estimators = _prefit_classifiers(X, y)
    reference = StackingClassifier(
        estimators,
        final_estimator=LogisticRegression(max_iter=1000),
        cv="prefit",
        stack_method="predict_proba",
        passthrough=passthrough,
    ).fit(X, y)
    predictions = np.stack([est.predict_proba(X) for _, est in estimators])
    ours = StackingCombiner(LogisticRegression(max_iter=1000), passthrough=passthrough)
    ours.fit(predictions, y, X=X if passthrough else None)
    fused = ours.combine(predictions, X=X if passthrough else None)
    np.testing.assert_allclose(fused, reference.predict_proba(X), atol=1e-10)


def test_equals_sklearn_stacking_regressor_prefit():
    X, y = load_diabetes(return_X_y=True)
    estimators = [("ridge", Ridge().fit(X, y)), ("knn", KNeighborsRegressor().fit(X, y))]
    reference = StackingRegressor(estimators, final_estimator=LinearRegression(), cv="prefit").fit(
        X, y
    )
    predictions = np.stack([est.predict(X) for _, est in estimators])[:, :, None]
    fused = StackingCombiner(LinearRegression()).fit(predictions, y).combine(predictions)
    np.testing.assert_allclose(fused.ravel(), reference.predict(X))


def test_logit_features_use_log_probabilities():
    X, y = load_iris(return_X_y=True)
    estimators = _prefit_classifiers(X, y)
    predictions = np.stack([est.predict_proba(X) for _, est in estimators])
    stack = StackingCombiner(features="logit").fit(predictions, y)
    stacked = stack._stack(predictions, None)
    np.testing.assert_allclose(stacked[:, :3], np.log(np.clip(predictions[0], 1e-12, 1)))
    assert (stack.combine(predictions).argmax(1) == y).mean() > 0.9


def test_classes_missing_from_meta_training_are_laid_out():
    predictions = np.full((2, 6, 3), 1 / 3)
    y = np.array([0, 1, 0, 1, 0, 1])  # class 2 never seen
    fused = StackingCombiner().fit(predictions, y).combine(predictions)
    assert fused.shape == (6, 3) and (fused[:, 2] == 0).all()


@pytest.mark.parametrize(
    "combiner, X, error, match",
    [
        (StackingCombiner(passthrough=True), None, ValueError, "pass X"),
        (
            StackingCombiner(passthrough=True),
            np.ones((5, 2)),
            ValueError,
            r"X must have shape \(n_samples=6",
        ),
        (
            StackingCombiner(features="rank"),
            None,
            ValueError,
            r"'features' .* a str among .*\. Got 'rank'",
        ),
        (
            StackingCombiner(Ridge()),
            None,
            TypeError,
            "must be a classifier with predict_proba; got Ridge",
        ),
    ],
)
def test_bad_input(combiner, X, error, match):
    predictions = np.full((2, 6, 2), 0.5)
    with pytest.raises(error, match=match):
        combiner.fit(predictions, np.array([0, 1] * 3), X=X)


def test_single_class_held_out_targets_give_a_clear_error():
    predictions = np.full((2, 4, 2), 0.5)
    with pytest.raises(ValueError, match=r"at least 2 classes in y; got only class 0"):
        StackingCombiner().fit(predictions, np.zeros(4, dtype=int))
