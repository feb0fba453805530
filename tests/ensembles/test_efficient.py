"""Ensembles inside one network as estimators (ensembles.efficient), and as members of a pool:
every method of the registry, classifier and regressor."""

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from combiners import MeanCombiner, WeightedCombiner
from ensembles import DistillationReport, EnsembleClassifier, EnsembleRegressor
from ensembles.efficient import EFFICIENT_ENSEMBLES
from members import NeuralClassifier, NeuralRegressor, Packed, replicate

METHODS = sorted(EFFICIENT_ENSEMBLES)
X, y = load_digits(return_X_y=True)
X_train, y_train, X_test, y_test = X[:500], y[:500], X[500:800], y[500:800]
X_reg, y_reg = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
TINY = {"hidden": (32,)}


def classifier(method, **params):
    kind = EFFICIENT_ENSEMBLES[method][0]
    return kind(NeuralClassifier(module_kwargs=TINY, max_epochs=20), random_state=0, **params)


def regressor(method, **params):
    kind = EFFICIENT_ENSEMBLES[method][1]
    return kind(NeuralRegressor(module_kwargs=TINY, max_epochs=40), random_state=0, **params)


@pytest.fixture(scope="module")
def fitted():
    return {method: classifier(method).fit(X_train, y_train) for method in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_the_sub_networks_are_the_members_fused_by_the_mean(fitted, method):
    model = fitted[method]
    members = model.member_predictions(X_test)
    n = model.sub_networks
    assert members.shape == (n, len(X_test), 10)
    assert model.ensemble_.output_names_ == [f"{method}[{i}]" for i in range(n)]
    np.testing.assert_allclose(model.predict_proba(X_test), members.mean(axis=0), atol=1e-12)
    assert model.score(X_test, y_test) > 0.7
    # one network holds them all: the members disagree, yet come from one fit
    assert len(model.members_) == 1 and model.network_.sub_networks == n
    assert np.abs(members[0] - members[1]).max() > 1e-3
    table = model.evaluate(X_test, y_test)
    assert list(table.index) == [*model.ensemble_.output_names_, "ensemble"]
    parts = model.predict_uncertainty(X_test)
    assert (parts["epistemic"] >= -1e-12).all() and parts["epistemic"].mean() > 0


@pytest.mark.parametrize("method", METHODS)
def test_a_save_loads_and_predicts_the_same(fitted, method, tmp_path):
    model = fitted[method]
    model.save(tmp_path / method)
    loaded = type(model).load(tmp_path / method)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))


@pytest.mark.parametrize("method", METHODS)
def test_distillation_gives_one_network_of_the_templates_architecture(fitted, method):
    model = fitted[method]
    student = model.distill(X_train, y_train, random_state=0)
    assert isinstance(student, NeuralClassifier)
    assert student.module == "mlp" and student.sub_networks == 1
    report = DistillationReport.compare(model, student, X_test, y_test)
    assert report.table.loc["student", "accuracy"] > 0.6


@pytest.mark.parametrize("method", METHODS)
def test_regressors_predict_the_mean_of_their_sub_networks(method):
    model = regressor(method).fit(X_reg, y_reg)
    members = model.member_predictions(X_reg[:20])
    assert members.shape == (model.sub_networks, 20, 1)
    np.testing.assert_allclose(model.predict(X_reg[:20]), members.mean(axis=0)[:, 0], rtol=1e-9)
    mean, std = model.predict(X_reg[:20], return_std=True)
    assert (std > 0).all()
    assert model.score(X_reg, y_reg) > 0.5


def test_sample_weight_of_zero_leaves_rows_out():
    weights = np.ones(len(X_train))
    weights[:100] = 0.0
    model = classifier("packed").fit(X_train, y_train, sample_weight=weights)
    dropped = classifier("packed").fit(X_train[weights > 0], y_train[weights > 0])
    np.testing.assert_allclose(
        model.predict_proba(X_test), dropped.predict_proba(X_test), atol=1e-6
    )


def test_a_learning_combiner_is_fitted_on_held_out_rows():
    model = classifier("packed", combiner=WeightedCombiner(), validation_fraction=0.2)
    model.fit(X_train, y_train)
    weights = model.combiner_.weights_
    assert weights.shape == (4,) and np.isclose(weights.sum(), 1.0)
    assert model.ensemble_.oof_predictions_.shape == (4, 100, 10)


def test_early_stopping_trains_the_whole_network_once():
    template = NeuralClassifier(
        module_kwargs=TINY, max_epochs=300, early_stopping=True, n_iter_no_change=3
    )
    model = EFFICIENT_ENSEMBLES["batchensemble"][0](template, random_state=0).fit(X_train, y_train)
    # the validation loss (the members' mean) stopped the one run before 300 epochs
    assert model.network_.n_iter_ < 300 and model.score(X_test, y_test) > 0.7


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (
            lambda: EFFICIENT_ENSEMBLES["packed"][0](NeuralClassifier(Packed("mlp"))),
            ValueError,
            "already an ensemble inside one network",
        ),
        (
            lambda: EFFICIENT_ENSEMBLES["mc_dropout"][0](
                NeuralClassifier(max_epochs=1), dropout=None
            ),
            ValueError,
            "Dropout layers",
        ),
        (lambda: classifier("packed", alpha=0), ValueError, "alpha"),
        (lambda: classifier("mimo", input_repetition=1.5), ValueError, "input_repetition"),
        (lambda: classifier("mc_dropout", n_samples=0), ValueError, "n_samples"),
        (
            lambda: EFFICIENT_ENSEMBLES["packed"][0](NeuralRegressor()),
            ValueError,
            "estimator",
        ),
    ],
)
def test_bad_settings_are_refused_by_name(build, error, match):
    with pytest.raises(error, match=match):
        build().fit(X_train[:100], y_train[:100])


# -- as members of a pool ------------------------------------------------------------------
def test_in_a_pool_each_sub_network_gets_its_own_weight():
    pool = EnsembleClassifier(
        [
            ("packed", classifier("packed")),
            ("lr", LogisticRegression(max_iter=500)),
            ("hgb", HistGradientBoostingClassifier(max_iter=20)),
        ],
        combiner=WeightedCombiner(),
        cv=0.3,
        random_state=0,
    ).fit(X_train, y_train)
    names = ["packed[0]", "packed[1]", "packed[2]", "packed[3]", "lr", "hgb"]
    assert pool.output_names_ == names
    assert pool.combiner_.weights_.shape == (6,)
    assert list(pool.held_out_scores_)[:6] == names
    assert pool.member_predictions(X_test).shape == (6, len(X_test), 10)
    assert list(pool.evaluate(X_test, y_test).index) == [*names, "ensemble"]
    proba, seconds = pool.member_predictions(X_test, return_seconds=True)
    assert len(seconds) == 6


def test_fused_sub_networks_are_one_member():
    members = [("packed", classifier("packed")), ("lr", LogisticRegression(max_iter=500))]
    fused = EnsembleClassifier(members, combiner=MeanCombiner(), sub_networks="fused")
    fused.fit(X_train, y_train)
    assert fused.output_names_ == ["packed", "lr"]
    split = EnsembleClassifier(members, combiner=MeanCombiner()).fit(X_train, y_train)
    # the same two fitted members, fused first or not: the packed mixture weighs 1/2, each of
    # its sub-networks 1/8
    packed = fused.named_members_["packed"].predict_proba(X_test)
    lr = fused.named_members_["lr"].predict_proba(X_test)
    np.testing.assert_allclose(fused.predict_proba(X_test), (packed + lr) / 2, atol=1e-12)
    expected = (4 * split.named_members_["packed"].predict_proba(X_test)) / 5 + (
        split.named_members_["lr"].predict_proba(X_test) / 5
    )
    np.testing.assert_allclose(split.predict_proba(X_test), expected, atol=1e-12)


def test_a_network_of_sub_networks_is_split_as_a_member_too():
    member = NeuralClassifier(Packed("mlp", n_members=3), module_kwargs=TINY, max_epochs=5)
    pool = EnsembleClassifier([("p", member)], combiner=MeanCombiner(), random_state=0)
    pool.fit(X_train, y_train)
    assert pool.output_names_ == ["p[0]", "p[1]", "p[2]"]
    np.testing.assert_allclose(
        pool.predict_proba(X_test), pool.named_members_["p"].predict_proba(X_test), atol=1e-12
    )
    # the teacher's function splits and fuses the same way
    np.testing.assert_allclose(pool.fused_function()(X_test), pool.predict_proba(X_test), atol=1e-5)


def test_cross_fitting_a_pool_with_sub_networks():
    pool = EnsembleRegressor(
        [("mimo", regressor("mimo")), ("mlp", NeuralRegressor(max_epochs=5))],
        combiner=WeightedCombiner(),
        cv=2,
        random_state=0,
    ).fit(X_reg, y_reg)
    assert pool.output_names_ == ["mimo[0]", "mimo[1]", "mimo[2]", "mlp"]
    assert pool.oof_predictions_.shape == (4, len(X_reg), 1)
    assert list(pool.evaluate(X_reg, y_reg).index) == [*pool.output_names_, "ensemble"]


def test_the_batched_engine_trains_networks_of_sub_networks_apart():
    members = replicate(
        NeuralClassifier(Packed("mlp"), module_kwargs=TINY, max_epochs=4, random_state=0), 2
    )
    batched = EnsembleClassifier(members, combiner=MeanCombiner(), batched=True)
    sequential = EnsembleClassifier(members, combiner=MeanCombiner(), batched=False)
    np.testing.assert_array_equal(
        batched.fit(X_train, y_train).predict_proba(X_test),
        sequential.fit(X_train, y_train).predict_proba(X_test),
    )
    assert len(batched.output_names_) == 8
