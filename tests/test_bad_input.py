"""Bad input gets a clear, early error naming what was wrong (issue 2's table)."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from ensembles import EnsembleClassifier, EnsembleRegressor
from members import NeuralClassifier, NeuralRegressor

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 4))
y = np.tile([0, 1], 20)
X_nan = X.copy()
X_nan[3, 1] = np.nan
X_inf = X.copy()
X_inf[0, 0] = np.inf


def neural(**kwargs):
    return NeuralClassifier(max_epochs=1, **kwargs)


def ensemble(members=None, **kwargs):
    members = members if members is not None else [("a", neural()), ("b", LogisticRegression())]
    return EnsembleClassifier(members, **kwargs)


CASES = [
    # (id, estimator factory, X, y, error, match)
    ("nan", neural, X_nan, y, ValueError, "Input X contains NaN"),
    ("inf", neural, X_inf, y, ValueError, "Input X contains infinity"),
    ("length", neural, X, y[:30], ValueError, r"inconsistent numbers of samples: \[40, 30\]"),
    ("one-class", neural, X, np.zeros(40), ValueError, r"at least 2 classes in y; got 1 class"),
    ("empty", neural, np.empty((0, 4)), np.empty(0), ValueError, r"0 sample\(s\)"),
    (
        "unknown-backbone",
        lambda: NeuralClassifier("transformer"),
        X,
        y,
        ValueError,
        r"The 'module' parameter of NeuralClassifier must be one of the registered backbones "
        r"\['cnn1d', 'cnn2d', 'mlp', 'resnet'\] or a callable. Got 'transformer' instead",
    ),
    (
        "max-epochs",
        lambda: NeuralClassifier(max_epochs=0),
        X,
        y,
        ValueError,
        r"'max_epochs' parameter of NeuralClassifier must be an int in the range \[1, inf\)\. "
        r"Got 0 instead",
    ),
    (
        "batch-size",
        lambda: neural(batch_size=0),
        X,
        y,
        ValueError,
        r"'batch_size' parameter of NeuralClassifier must be an int in the range \[1, inf\)",
    ),
    ("lr", lambda: neural(lr=-1.0), X, y, ValueError, r"'lr' .* \(0.0, inf\)\. Got -1.0 instead"),
    (
        "optimizer",
        lambda: neural(optimizer="adagrad"),
        X,
        y,
        ValueError,
        r"'optimizer' parameter of NeuralClassifier must be a str among .*'adamw'.*\. "
        r"Got 'adagrad' instead",
    ),
    (
        "module-kwargs",
        lambda: neural(module_kwargs=[1]),
        X,
        y,
        TypeError,
        r"'module_kwargs' parameter of NeuralClassifier must be an instance of 'dict' or None\. "
        r"Got \[1\] instead",
    ),
    (
        "module-type",
        lambda: NeuralClassifier(3),
        X,
        y,
        TypeError,
        r"'module' parameter of NeuralClassifier must be one of the registered backbones .* "
        r"or a callable\. Got 3 instead",
    ),
    ("regression-target", neural, X, rng.normal(size=40), ValueError, "Unknown label type"),
    ("ens-nan", ensemble, X_nan, y, ValueError, "Input X contains NaN"),
    (
        "ens-one-class",
        ensemble,
        X,
        np.ones(40),
        ValueError,
        r"at least 2 classes in y; got 1 class",
    ),
    (
        "ens-empty-members",
        lambda: ensemble([]),
        X,
        y,
        ValueError,
        r"members must be a non-empty list of \(name, estimator\) pairs; got \[\]",
    ),
    (
        "ens-duplicate-names",
        lambda: ensemble([("a", neural()), ("a", neural())]),
        X,
        y,
        ValueError,
        r"member names must be unique; got duplicates \['a'\]",
    ),
    (
        "ens-not-estimator",
        lambda: ensemble([("a", neural()), ("b", 42)]),
        X,
        y,
        TypeError,
        r"member 'b' must be a scikit-learn estimator .* got int",
    ),
    (
        "ens-not-pair",
        lambda: ensemble([neural()]),
        X,
        y,
        TypeError,
        r"must be a \(name, estimator\) pair",
    ),
    (
        "ens-all-drop",
        lambda: ensemble([("a", "drop")]),
        X,
        y,
        ValueError,
        r"all members are 'drop'",
    ),
    (
        "ens-bad-name",
        lambda: ensemble([("a__b", neural())]),
        X,
        y,
        ValueError,
        r"without '__'; got 'a__b'",
    ),
    (
        "ens-combiner",
        lambda: ensemble(combiner="mean"),
        X,
        y,
        TypeError,
        r"'combiner' parameter of EnsembleClassifier must be an instance of "
        r"'combiners.base.BaseCombiner' or None\. Got 'mean' instead",
    ),
    (
        "ens-reg-members",
        lambda: EnsembleRegressor([]),
        X,
        y.astype(float),
        ValueError,
        r"members must be a non-empty list",
    ),
]


@pytest.mark.parametrize(
    "factory, X_, y_, error, match", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_fit_input(factory, X_, y_, error, match):
    with pytest.raises(error, match=match):
        factory().fit(X_, y_)


@pytest.mark.parametrize(
    "factory",
    [neural, ensemble, lambda: NeuralRegressor(max_epochs=1)],
    ids=["neural", "ensemble", "regressor"],
)
def test_wrong_number_of_features_at_predict(factory):
    estimator = factory().fit(X, y)
    with pytest.raises(ValueError, match=r"X has 3 features, but \w+ is expecting 4 features"):
        estimator.predict(X[:, :3])


@pytest.mark.parametrize(
    "estimator",
    [neural(), ensemble(), NeuralRegressor(), EnsembleRegressor([("r", NeuralRegressor())])],
    ids=["neural", "ensemble", "regressor", "ensemble-regressor"],
)
def test_not_fitted(estimator):
    with pytest.raises(NotFittedError):
        estimator.predict(X)
