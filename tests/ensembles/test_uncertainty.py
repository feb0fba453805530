"""Predictive uncertainty of every ensemble class, against closed-form cases."""

from unittest import mock

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import BayesianRidge, LogisticRegression, Ridge
from sklearn.metrics import average_precision_score, roc_auc_score

from combiners import MeanCombiner, StackingCombiner, WeightedCombiner
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    EnsembleSearchRegressor,
    SnapshotEnsembleClassifier,
    SnapshotEnsembleRegressor,
    metrics,
)
from ensembles.uncertainty import classification_uncertainty, entropy, regression_uncertainty
from members import NeuralClassifier, NeuralRegressor


class _Fixed(RegressorMixin, BaseEstimator):
    """A regressor that predicts ``mean`` everywhere, with standard deviation ``std`` (a point
    prediction when ``None``)."""

    def __init__(self, mean=0.0, std=None):
        self.mean = mean
        self.std = std

    @property
    def predicts_std(self):
        return self.std is not None

    def fit(self, X, y):
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict(self, X, return_std=False):
        mean = np.full(len(X), float(self.mean))
        return (mean, np.full(len(X), float(self.std))) if return_std else mean


class _FixedProba(ClassifierMixin, BaseEstimator):
    def __init__(self, proba=(0.5, 0.5)):
        self.proba = proba

    def fit(self, X, y):
        self.classes_ = np.arange(len(self.proba))
        self.n_features_in_ = np.shape(X)[1]
        return self

    def predict_proba(self, X):
        return np.tile(np.asarray(self.proba, dtype=float), (len(X), 1))


X4 = np.zeros((4, 2))
Y4 = np.array([0.0, 1.0, 2.0, 3.0])


def _prefit(members, **kwargs):
    named = [(f"m{i}", member.fit(X4, Y4)) for i, member in enumerate(members)]
    # the closed forms are of the equally weighted mixture
    kwargs.setdefault("combiner", MeanCombiner())
    return EnsembleRegressor(named, cv="prefit", **kwargs).fit(X4, Y4)


def test_two_members_with_known_moments_give_the_known_variance():
    ens = _prefit([_Fixed(0.0, 1.0), _Fixed(2.0, np.sqrt(3.0))])
    mean, std = ens.predict(X4, return_std=True)
    np.testing.assert_allclose(mean, 1.0)
    # mean variance (1 + 3) / 2 = 2, variance of the means 1: total 3
    np.testing.assert_allclose(std, np.sqrt(3.0))
    parts = ens.predict_uncertainty(X4)
    assert list(parts.columns) == ["total", "aleatoric", "epistemic"]
    np.testing.assert_allclose(parts[["total", "aleatoric", "epistemic"]].iloc[0], [3.0, 2.0, 1.0])
    lower, upper = ens.predict_interval(X4, coverage=0.9)
    np.testing.assert_allclose(upper - 1.0, 1.6448536 * np.sqrt(3.0), rtol=1e-6)
    np.testing.assert_allclose(1.0 - lower, upper - 1.0)


def test_weights_of_the_combiner_weight_the_mixture():
    ens = _prefit([_Fixed(0.0, 1.0), _Fixed(2.0, np.sqrt(3.0))], combiner=WeightedCombiner([3, 1]))
    mean, std = ens.predict(X4, return_std=True)
    np.testing.assert_allclose(mean, 0.5)
    # aleatoric 0.75 * 1 + 0.25 * 3 = 1.5; epistemic 0.75 * 0.25 + 0.25 * 2.25 = 0.75
    np.testing.assert_allclose(std**2, 2.25)


def test_point_members_add_to_the_epistemic_part_only():
    ens = _prefit([_Fixed(0.0), _Fixed(2.0), _Fixed(1.0, 2.0)])
    parts = ens.predict_uncertainty(X4).iloc[0]
    assert parts["aleatoric"] == pytest.approx(4.0 / 3)
    assert parts["epistemic"] == pytest.approx(2.0 / 3)


def test_identical_members_have_no_epistemic_uncertainty(regression_data, classification_data):
    X, y = regression_data
    net = NeuralRegressor(loss="gaussian", max_epochs=2, random_state=0).fit(X, y)
    ens = EnsembleRegressor([("a", net), ("b", net)], combiner=MeanCombiner(), cv="prefit").fit(
        X, y
    )
    parts = ens.predict_uncertainty(X)
    np.testing.assert_allclose(parts["epistemic"], 0.0, atol=1e-12)
    np.testing.assert_allclose(parts["aleatoric"], net.predict(X, return_std=True)[1] ** 2)

    X, y = classification_data
    lr = LogisticRegression(max_iter=500).fit(X, y)
    clf = EnsembleClassifier([("a", lr), ("b", lr)], combiner=MeanCombiner(), cv="prefit").fit(X, y)
    parts = clf.predict_uncertainty(X)
    np.testing.assert_allclose(parts["epistemic"], 0.0, atol=1e-12)
    np.testing.assert_allclose(parts["total"], parts["aleatoric"])
    np.testing.assert_allclose(parts["total"], entropy(lr.predict_proba(X)))


def test_classification_parts_in_closed_form():
    X, y = np.zeros((3, 1)), np.array([0, 1, 0])
    members = [("sure0", _FixedProba((1.0, 0.0))), ("sure1", _FixedProba((0.0, 1.0)))]
    clf = EnsembleClassifier(
        [(n, m.fit(X, y)) for n, m in members], combiner=MeanCombiner(), cv="prefit"
    ).fit(X, y)
    parts = clf.predict_uncertainty(X)
    np.testing.assert_allclose(parts["aleatoric"], 0.0)  # each member is sure
    np.testing.assert_allclose(parts["epistemic"], np.log(2))  # and they disagree
    np.testing.assert_allclose(parts["total"], np.log(2))
    members = [("even", _FixedProba((0.5, 0.5))), ("same", _FixedProba((0.5, 0.5)))]
    clf = EnsembleClassifier(
        [(n, m.fit(X, y)) for n, m in members], combiner=MeanCombiner(), cv="prefit"
    ).fit(X, y)
    parts = clf.predict_uncertainty(X)
    np.testing.assert_allclose(parts["aleatoric"], np.log(2))  # noise both members see
    np.testing.assert_allclose(parts["epistemic"], 0.0)


def test_functions_match_their_definitions():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 30, 3))
    proba = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    mixture = np.tensordot(weights, proba, axes=1)
    parts = classification_uncertainty(proba, mixture, weights)
    manual_entropy = -(mixture * np.log(mixture)).sum(axis=1)
    np.testing.assert_allclose(parts["total"], manual_entropy)
    np.testing.assert_allclose(parts["total"], parts["aleatoric"] + parts["epistemic"])
    assert (parts["epistemic"] > 0).all()
    means, variances = rng.normal(size=(4, 30, 2)), rng.uniform(size=(4, 30, 2))
    fused = np.tensordot(weights, means, axes=1)
    parts = regression_uncertainty(means, variances, fused, weights)
    # law of total variance of the mixture
    second = np.tensordot(weights, variances + means**2, axes=1)
    np.testing.assert_allclose(parts["total"], second - fused**2)


def test_non_mixture_rules_and_calibration_keep_the_parts_apart(classification_data):
    X, y = classification_data
    members = [
        ("lr", LogisticRegression(max_iter=500)),
        ("lr_weak", LogisticRegression(C=0.01, max_iter=500)),
    ]
    clf = EnsembleClassifier(
        members, combiner=StackingCombiner(), calibration="temperature", random_state=0
    ).fit(X, y)
    parts = clf.predict_uncertainty(X)
    np.testing.assert_allclose(parts["total"], entropy(clf.predict_proba(X)))
    assert (parts["epistemic"] >= 0).all() and (parts["aleatoric"] >= 0).all()


def test_variance_calibration_makes_the_interval_honest():
    """Members a fifth as wide as they should be: the raw 90 % interval covers far less, the
    calibrated one about 90 % of fresh data."""

    class Overconfident(BayesianRidge):
        def predict(self, X, return_std=False):
            if not return_std:
                return super().predict(X)
            mean, std = super().predict(X, return_std=True)
            return mean, std / 5

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=1200)
    train, test = slice(0, 600), slice(600, None)
    members = [("a", Overconfident()), ("b", Overconfident(alpha_1=1e-3))]
    raw = EnsembleRegressor(members, random_state=0).fit(X[train], y[train])
    calibrated = EnsembleRegressor(members, calibration="variance", random_state=0).fit(
        X[train], y[train]
    )
    assert calibrated.calibrator_.scale_[0] == pytest.approx(25.0, rel=0.2)

    def coverage(ens):
        lower, upper = ens.predict_interval(X[test], coverage=0.9)
        return np.mean((y[test] >= lower) & (y[test] <= upper))

    assert coverage(raw) < 0.4
    assert 0.87 <= coverage(calibrated) <= 0.93
    np.testing.assert_allclose(calibrated.predict(X[test]), raw.predict(X[test]))
    table = calibrated.evaluate(X[test], y[test])
    assert table.loc["ensemble", "coverage"] == pytest.approx(coverage(calibrated))
    assert (
        table.loc["ensemble", "gaussian_nll"]
        < raw.evaluate(X[test], y[test]).loc["ensemble", "gaussian_nll"]
    )


def test_evaluate_out_of_distribution_columns_match_scikit_learn(classification_data):
    X, y = classification_data
    members = [(f"lr{c}", LogisticRegression(C=c, max_iter=500)) for c in (0.05, 1.0)]
    clf = EnsembleClassifier(members).fit(X, y)
    X_ood = np.random.default_rng(0).normal(size=(80, X.shape[1])) * 3
    combine = clf.combiner_.combine
    with mock.patch.object(clf.combiner_, "combine", wraps=combine) as counted:
        table = clf.evaluate(X, y, X_ood=X_ood)
    assert counted.call_count == 2  # once for X, once for X_ood: nothing fused twice
    inside, outside = clf.predict_uncertainty(X), clf.predict_uncertainty(X_ood)
    labels = np.r_[np.zeros(len(X)), np.ones(len(X_ood))]
    for score in ("total", "aleatoric", "epistemic"):
        scores = np.r_[inside[score], outside[score]]
        assert table.loc["ensemble", f"auroc_{score}"] == pytest.approx(
            roc_auc_score(labels, scores)
        )
        assert table.loc["ensemble", f"aupr_{score}"] == pytest.approx(
            average_precision_score(labels, scores)
        )
    member = clf.named_members_["lr1.0"]
    alone = np.r_[entropy(member.predict_proba(X)), entropy(member.predict_proba(X_ood))]
    assert table.loc["lr1.0", "auroc_total"] == pytest.approx(roc_auc_score(labels, alone))
    assert np.isnan(table.loc["lr1.0", "auroc_epistemic"])
    assert "auroc_total" not in clf.evaluate(X, y).columns


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"coverage": 1.0}, ValueError, r"coverage must be in \(0, 1\)"),
        ({"coverage": 0}, ValueError, r"coverage must be in \(0, 1\)"),
        ({"coverage": "90%"}, TypeError, "coverage must be a float"),
    ],
)
def test_bad_coverage(kwargs, error, match):
    ens = _prefit([_Fixed(0.0, 1.0)])
    with pytest.raises(error, match=match):
        ens.predict_interval(X4, **kwargs)


def test_a_member_with_a_malformed_std_is_named():
    class Broken(_Fixed):
        def predict(self, X, return_std=False):
            mean = np.zeros(len(X))
            return (mean, -np.ones(len(X))) if return_std else mean

    ens = _prefit([_Fixed(0.0, 1.0), Broken(0.0, 1.0)])
    with pytest.raises(ValueError, match="member 'm1': predict returned a negative"):
        ens.predict(X4, return_std=True)


def test_calibration_is_refused_by_name_on_the_wrong_task(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match="'calibration' parameter of EnsembleRegressor"):
        EnsembleRegressor([("r", Ridge())], calibration="temperature").fit(X, y)
    with pytest.raises(ValueError, match="'calibration' parameter of EnsembleClassifier"):
        EnsembleClassifier([("r", LogisticRegression())], calibration="variance").fit(X, y > 0)


def _classifiers():
    tiny = {"module_kwargs": {"hidden": (8,)}, "max_epochs": 4}
    return {
        "ensemble": EnsembleClassifier(
            [(f"n{i}", NeuralClassifier(**tiny)) for i in range(2)], random_state=0
        ),
        "snapshot": SnapshotEnsembleClassifier(
            NeuralClassifier(**tiny), n_snapshots=2, random_state=0
        ),
        "search": EnsembleSearchClassifier(
            NeuralClassifier(**tiny), n_trials=3, ensemble_size=2, random_state=0
        ),
    }


def _regressors():
    tiny = {"module_kwargs": {"hidden": (8,)}, "max_epochs": 4, "loss": "gaussian"}
    return {
        "ensemble": EnsembleRegressor(
            [(f"n{i}", NeuralRegressor(**tiny)) for i in range(2)], random_state=0
        ),
        "snapshot": SnapshotEnsembleRegressor(
            NeuralRegressor(**tiny), n_snapshots=2, random_state=0
        ),
        "search": EnsembleSearchRegressor(
            NeuralRegressor(**tiny), n_trials=3, ensemble_size=2, random_state=0
        ),
    }


@pytest.mark.parametrize("kind", sorted(_classifiers()))
def test_every_classifier_ensemble_reports_uncertainty(kind, classification_data):
    X, y = classification_data
    clf = _classifiers()[kind].fit(X, y)
    parts = clf.predict_uncertainty(X[:20])
    assert list(parts.columns) == ["total", "aleatoric", "epistemic"] and len(parts) == 20
    assert (parts.to_numpy() >= 0).all()
    # weighted means without calibration: the parts add up
    np.testing.assert_allclose(parts["total"], parts["aleatoric"] + parts["epistemic"])
    table = clf.evaluate(X[:40], y[:40], X_ood=X[:20] * 10)
    assert 0.0 <= table.loc["ensemble", "auroc_epistemic"] <= 1.0


@pytest.mark.parametrize("kind", sorted(_regressors()))
def test_every_regressor_ensemble_reports_a_distribution(kind, regression_data):
    X, y = regression_data
    reg = _regressors()[kind].fit(X, y)
    mean, std = reg.predict(X[:20], return_std=True)
    assert mean.shape == std.shape == (20,) and (std > 0).all()
    np.testing.assert_allclose(mean, reg.predict(X[:20]))
    parts = reg.predict_uncertainty(X[:20])
    np.testing.assert_allclose(parts["total"], std**2)
    assert (parts["aleatoric"] > 0).all()  # Gaussian members bring their own variance
    lower, upper = reg.predict_interval(X[:20], coverage=0.5)
    assert (lower < mean).all() and (mean < upper).all()


def test_metrics_against_references():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    y, mean, std = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.5, 2, 50)
    assert metrics.gaussian_nll(y, mean, std**2) == pytest.approx(-norm.logpdf(y, mean, std).mean())
    # CRPS of a Gaussian in closed form (Gneiting & Raftery, 2007)
    z = (y - mean) / std
    closed = std * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    assert metrics.crps(y, mean, std) == pytest.approx(closed.mean())
    assert metrics.crps(y, mean, np.zeros(50)) == pytest.approx(np.abs(y - mean).mean())
    report = metrics.ood_report(np.array([0.1, 0.2]), np.array([0.3, 0.15]))
    assert report["auroc"] == pytest.approx(0.75)


def test_a_calibrated_regressor_saves_and_loads_its_distribution(tmp_path, regression_data):
    X, y = regression_data
    members = [
        ("gauss", NeuralRegressor(loss="gaussian", max_epochs=2, module_kwargs={"hidden": (8,)})),
        ("bayes", BayesianRidge()),
        ("ridge", Ridge()),
    ]
    ens = EnsembleRegressor(members, calibration="variance", random_state=0).fit(X, y)
    loaded = EnsembleRegressor.load(ens.save(tmp_path / "ens"))
    np.testing.assert_allclose(loaded.calibrator_.scale_, ens.calibrator_.scale_)
    for a, b in zip(
        loaded.predict(X[:10], return_std=True), ens.predict(X[:10], return_std=True), strict=True
    ):
        np.testing.assert_allclose(a, b)


def test_estimators_saved_before_uncertainty_existed_still_predict(regression_data):
    """State written before ``loss`` and regression ``calibration`` existed loads with their
    old meaning: a point-prediction network, an uncalibrated ensemble."""
    X, y = regression_data
    members = [("net", NeuralRegressor(max_epochs=1)), ("ridge", Ridge())]
    ens = EnsembleRegressor(members, random_state=0).fit(X, y)
    state = dict(ens.__getstate__())  # a copy: scikit-learn may hand out __dict__ itself
    del state["calibration"], state["calibrator_"]
    net_state = dict(ens.named_members_["net"].__getstate__())
    del net_state["loss"]
    old_net = NeuralRegressor.__new__(NeuralRegressor)
    old_net.__setstate__(net_state)
    assert old_net.loss is None
    np.testing.assert_allclose(old_net.predict(X[:5]), ens.named_members_["net"].predict(X[:5]))
    old = EnsembleRegressor.__new__(EnsembleRegressor)
    old.__setstate__(state)
    assert old.calibration is None and old.calibrator_ is None
    for a, b in zip(
        old.predict(X[:5], return_std=True), ens.predict(X[:5], return_std=True), strict=True
    ):
        np.testing.assert_allclose(a, b)
