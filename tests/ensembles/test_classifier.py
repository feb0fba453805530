import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from combiners import MeanCombiner, VotingCombiner
from ensembles import EnsembleClassifier
from ensembles.metrics import nll
from members import NeuralClassifier


def small_ensemble(**kwargs):
    return EnsembleClassifier(
        [
            ("wide", NeuralClassifier(max_epochs=10, module_kwargs={"hidden": (64,)})),
            ("narrow", NeuralClassifier(max_epochs=10, module_kwargs={"hidden": (16,)})),
            ("lr", LogisticRegression(max_iter=500)),
        ],
        **kwargs,
    )


def test_fit_attributes_and_member_predictions(classification_data):
    X, y = classification_data
    ens = small_ensemble(random_state=0).fit(X, y)
    assert list(ens.named_members_) == ["wide", "narrow", "lr"]
    assert ens.members_[0] is ens.named_members_["wide"]
    assert ens.n_features_in_ == X.shape[1]
    predictions = ens.member_predictions(X)
    assert predictions.shape == (3, len(X), 3)
    np.testing.assert_allclose(ens.predict_proba(X), predictions.mean(axis=0))
    # the template members are left unfitted (clones are trained)
    assert not hasattr(ens.members[0][1], "model_")


def test_members_get_distinct_reproducible_seeds(classification_data):
    X, y = classification_data
    twins = EnsembleClassifier(
        [("a", NeuralClassifier(max_epochs=3)), ("b", NeuralClassifier(max_epochs=3))],
        random_state=0,
    )
    first = twins.fit(X, y).member_predictions(X)
    again = clone(twins).fit(X, y).member_predictions(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[0], first[1])
    seeded = [m.random_state for m in twins.members_]
    assert len(set(seeded)) == 2


def test_explicit_member_seed_is_kept(classification_data):
    X, y = classification_data
    ens = EnsembleClassifier(
        [("a", NeuralClassifier(max_epochs=2, random_state=7))], random_state=0
    )
    assert ens.fit(X, y).members_[0].random_state == 7


def test_string_labels_and_voting(classification_data):
    X, y = classification_data
    labels = np.array(["low", "mid", "high"])[y]
    ens = small_ensemble(combiner=VotingCombiner(), random_state=0).fit(X, labels)
    assert set(ens.predict(X)) <= {"low", "mid", "high"}
    assert list(ens.classes_) == ["high", "low", "mid"]
    votes = ens.member_predictions(X).argmax(axis=2)
    assert (ens.predict_proba(X) * 3).round().astype(int).sum(axis=1).tolist() == [3] * len(X)
    assert votes.shape == (3, len(X))


def test_evaluate_table(classification_data):
    X, y = classification_data
    labels = np.array(["a", "b", "c"])[y]
    ens = small_ensemble(random_state=0).fit(X, labels)
    table = ens.evaluate(X, labels)
    assert list(table.index) == ["wide", "narrow", "lr", "ensemble"]
    assert list(table.columns) == ["accuracy", "nll", "brier", "ece", "disagreement"]
    assert table.loc["ensemble", "accuracy"] == pytest.approx(ens.score(X, labels))
    assert table.loc["ensemble", "nll"] == pytest.approx(nll(y, ens.predict_proba(X)))
    assert 0 <= table.loc["ensemble", "disagreement"] <= 1
    with pytest.raises(ValueError, match=r"labels not seen during fit: \['z'\]"):
        ens.evaluate(X[:2], np.array(["a", "z"]))


def test_member_without_some_classes_is_aligned():
    X = np.arange(60, dtype=float).reshape(30, 2)
    y = np.repeat([0, 1, 2], 10)

    class TwoClassMember(LogisticRegression):
        def fit(self, X, y):
            keep = y < 2
            return super().fit(X[keep], y[keep])

    ens = EnsembleClassifier([("partial", TwoClassMember())]).fit(X, y)
    predictions = ens.member_predictions(X)
    assert predictions.shape == (1, 30, 3)
    assert (predictions[0, :, 2] == 0).all()


def test_drop_member_and_nested_params(classification_data):
    X, y = classification_data
    ens = small_ensemble(random_state=0)
    assert ens.get_params()["wide__lr"] == 3e-3
    ens.set_params(wide__lr=1e-2, lr="drop")
    assert ens.members[0][1].lr == 1e-2
    ens.fit(X, y)
    assert list(ens.named_members_) == ["wide", "narrow"]


def test_pipeline_grid_search_cross_val_and_pickle(classification_data):
    X, y = classification_data
    pipe = make_pipeline(StandardScaler(), small_ensemble(random_state=0))
    search = GridSearchCV(
        pipe, {"ensembleclassifier__narrow__lr": [1e-3, 1e-2]}, cv=2, error_score="raise"
    ).fit(X, y)
    assert search.best_params_["ensembleclassifier__narrow__lr"] in (1e-3, 1e-2)
    scores = cross_val_score(small_ensemble(random_state=0), X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()
    fitted = search.best_estimator_
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))


def test_failing_member_is_named(classification_data):
    X, y = classification_data

    class Broken(LogisticRegression):
        def fit(self, X, y):
            raise RuntimeError("out of memory")

    ens = EnsembleClassifier([("ok", LogisticRegression()), ("broken", Broken())])
    with pytest.raises(RuntimeError, match="out of memory") as info:
        ens.fit(X, y)
    assert "member 'broken'" in "".join(info.value.__notes__)


def test_digits_heterogeneous_ensemble_beats_best_member_nll():
    """Acceptance 4: two MLP widths and gradient boosting; the fused NLL beats every member."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    ens = EnsembleClassifier(
        [
            ("mlp_wide", NeuralClassifier("mlp", module_kwargs={"hidden": (512, 256)})),
            ("mlp_narrow", NeuralClassifier("mlp", module_kwargs={"hidden": (64,)})),
            ("hgb", HistGradientBoostingClassifier(random_state=0)),
        ],
        combiner=MeanCombiner(),
        random_state=0,
    ).fit(X_train, y_train)
    table = ens.evaluate(X_test, y_test)
    print(table.round(4))
    best_member_nll = table.drop(index="ensemble")["nll"].min()
    assert table.loc["ensemble", "nll"] < best_member_nll
