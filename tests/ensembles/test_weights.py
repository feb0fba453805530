"""Weighted ensembles: sample_weight through every path, metadata routing, the oracles."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import StackingClassifier, VotingClassifier, VotingRegressor
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from combiners import MeanCombiner, StackingCombiner, WeightedCombiner
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    SnapshotEnsembleClassifier,
)
from members import NeuralClassifier, replicate

RNG = np.random.default_rng(0)
X, Y = make_classification(240, 6, n_informative=4, random_state=0)
W = RNG.integers(0, 4, len(Y)).astype(float)
W[:3] = 1.0
ROW_OF = {row.tobytes(): index for index, row in enumerate(X)}


class Recorder(LogisticRegression):
    """A member that keeps the weights its fit received (every fit: folds and refit)."""

    received: list = []
    rows: list = []

    def fit(self, X, y, sample_weight=None):
        Recorder.received.append(None if sample_weight is None else np.asarray(sample_weight))
        Recorder.rows.append([ROW_OF.get(r.tobytes(), -1) for r in np.asarray(X, dtype=np.float64)])
        self.received_ = Recorder.received[-1]
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


@pytest.fixture(autouse=True)
def fresh_recorder():
    Recorder.received, Recorder.rows = [], []


def sklearn_members():
    return [
        ("lr", LogisticRegression()),
        ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ("nb", GaussianNB()),
    ]


# -- the oracles ------------------------------------------------------------------------------
def test_weighted_mean_ensemble_equals_soft_voting():
    ours = EnsembleClassifier(sklearn_members()).fit(X, Y, sample_weight=W)
    voting = VotingClassifier(sklearn_members(), voting="soft").fit(X, Y, sample_weight=W)
    np.testing.assert_allclose(ours.predict_proba(X), voting.predict_proba(X), atol=1e-12)
    unweighted = EnsembleClassifier(sklearn_members()).fit(X, Y)
    assert np.abs(unweighted.predict_proba(X) - ours.predict_proba(X)).max() > 0.05


def test_weighted_regression_ensemble_equals_voting_regressor():
    X_r, y_r = make_regression(200, 5, noise=10.0, random_state=0)
    weights = RNG.integers(0, 4, len(y_r)).astype(float)
    members = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=4, random_state=0))]
    ours = EnsembleRegressor(members).fit(X_r, y_r, sample_weight=weights)
    voting = VotingRegressor(members).fit(X_r, y_r, sample_weight=weights)
    np.testing.assert_allclose(ours.predict(X_r), voting.predict(X_r), rtol=1e-12)


def test_prefit_stacking_equals_stacking_classifier_with_weights():
    first, second = np.arange(120), np.arange(120, 240)
    fitted = [(name, member.fit(X[first], Y[first])) for name, member in sklearn_members()]
    ours = EnsembleClassifier(
        fitted, combiner=StackingCombiner(LogisticRegression()), cv="prefit"
    ).fit(X[second], Y[second], sample_weight=W[second])
    stacking = StackingClassifier(
        [(name, FrozenEstimator(member)) for name, member in fitted],
        final_estimator=LogisticRegression(),
    ).fit(X[second], Y[second], sample_weight=W[second])
    np.testing.assert_allclose(ours.predict_proba(X), stacking.predict_proba(X), atol=1e-10)


# -- every path -------------------------------------------------------------------------------
def test_cross_fitting_gives_each_fold_its_rows_weights_and_the_combiner_the_held_out_ones():
    ensemble = EnsembleClassifier(
        [("rec", Recorder()), ("nb", GaussianNB())],
        combiner=WeightedCombiner(),
        cv=3,
        calibration="temperature",
        random_state=0,
    ).fit(X, Y, sample_weight=W)
    received = Recorder.received
    assert len(received) == 4  # three folds, then the refit
    for weights, rows in zip(received, Recorder.rows, strict=True):
        np.testing.assert_array_equal(weights, W[rows])
    assert len(Recorder.rows[0]) < len(Y) and Recorder.rows[-1] == list(range(len(Y)))
    held = ensemble.oof_index_
    expected = WeightedCombiner().fit(ensemble.oof_predictions_, Y[held], sample_weight=W[held])
    np.testing.assert_allclose(ensemble.combiner_.weights_, expected.weights_)
    unweighted = WeightedCombiner().fit(ensemble.oof_predictions_, Y[held])
    assert not np.allclose(ensemble.combiner_.weights_, unweighted.weights_, atol=1e-3)


def test_neural_members_batched_and_alone_get_the_weights():
    pool = replicate(NeuralClassifier(max_epochs=3, batch_size=512, precision="64-true"), 2)
    mean = MeanCombiner()  # the members are compared: repeated rows would hold out others
    batched = EnsembleClassifier(pool, combiner=mean, batched=True, random_state=0)
    batched.fit(X, Y, sample_weight=W)
    alone = EnsembleClassifier(pool, combiner=mean, batched=False, random_state=0)
    alone.fit(X, Y, sample_weight=W)
    np.testing.assert_allclose(batched.predict_proba(X), alone.predict_proba(X), atol=1e-8)
    kept = W > 0
    repeated = EnsembleClassifier(pool, combiner=mean, batched=False, random_state=0).fit(
        np.repeat(X, W.astype(int), axis=0), np.repeat(Y, W.astype(int))
    )
    np.testing.assert_allclose(alone.predict_proba(X), repeated.predict_proba(X), atol=1e-10)
    assert kept.sum() < len(W)


def test_parallel_workers_cut_the_weights_to_their_rows():
    params = dict(combiner=WeightedCombiner(), cv=3, random_state=0)
    one = EnsembleClassifier(sklearn_members(), **params).fit(X, Y, sample_weight=W)
    two = EnsembleClassifier(sklearn_members(), n_jobs=2, **params).fit(X, Y, sample_weight=W)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), atol=1e-12)


def test_checkpoints_are_keyed_by_the_weights(tmp_path):
    def fit(weights):
        ensemble = EnsembleClassifier(
            [("rec", Recorder())], checkpoint_dir=tmp_path, random_state=0
        )
        return ensemble.fit(X, Y, sample_weight=weights)

    fit(None)
    fit(W)
    assert len(Recorder.received) == 2  # the weighted fit did not reuse the unweighted member
    fit(W)
    assert len(Recorder.received) == 2  # the same weights: reused
    fit(W + 1)
    assert len(Recorder.received) == 3


def test_snapshot_ensemble_weights_reach_its_network():
    kept = W > 0
    params = dict(max_epochs=4, batch_size=512, precision="64-true")
    weighted = SnapshotEnsembleClassifier(NeuralClassifier(**params), n_snapshots=2, random_state=0)
    weighted.fit(X, Y, sample_weight=kept.astype(float))
    subset = SnapshotEnsembleClassifier(NeuralClassifier(**params), n_snapshots=2, random_state=0)
    subset.fit(X[kept], Y[kept])
    np.testing.assert_allclose(weighted.predict_proba(X), subset.predict_proba(X), atol=1e-12)


def test_search_weighs_trials_losses_and_storage_knows_the_weights(tmp_path):
    def search():
        return EnsembleSearchClassifier(
            NeuralClassifier(max_epochs=3),
            n_trials=2,
            ensemble_size=2,
            storage=tmp_path / "study.db",
            random_state=0,
        )

    weighted = search().fit(X, Y, sample_weight=W)
    trials = weighted.trials_
    assert (trials["state"] == "COMPLETE").all()
    # a held-out loss is the weighted one: recompute it from a member the search kept
    number = int(trials["number"].iloc[0])
    member = weighted.trial_members_[number]
    held = weighted.held_out_index_
    proba = member.predict_proba(X[held])
    expected = -np.average(np.log(proba[np.arange(len(held)), Y[held]]), weights=W[held])
    assert trials.set_index("number").loc[number, "nll"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="holds a study named"):
        search().fit(X, Y, sample_weight=W + 1)  # other weights: another search


def test_score_and_evaluate_are_weighted():
    ensemble = EnsembleClassifier(sklearn_members()).fit(X, Y)
    predicted = ensemble.predict(X)
    assert ensemble.score(X, Y, sample_weight=W) == pytest.approx(
        np.average(predicted == Y, weights=W)
    )
    table = ensemble.evaluate(X, Y, sample_weight=W)
    assert table.loc["ensemble", "accuracy"] == pytest.approx(np.average(predicted == Y, weights=W))
    repeated = ensemble.evaluate(np.repeat(X, W.astype(int), 0), np.repeat(Y, W.astype(int)))
    for column in ("accuracy", "nll", "brier", "disagreement"):
        np.testing.assert_allclose(table[column], repeated[column], rtol=1e-9, err_msg=column)
    # torchmetrics computes the unweighted ECE in float32
    np.testing.assert_allclose(table["ece"], repeated["ece"], rtol=1e-5)


# -- errors -----------------------------------------------------------------------------------
def test_a_member_without_sample_weight_is_named():
    members = [("lr", LogisticRegression()), ("knn", KNeighborsClassifier())]
    with pytest.raises(TypeError, match="member 'knn' \\(KNeighborsClassifier\\) takes no"):
        EnsembleClassifier(members).fit(X, Y, sample_weight=W)
    pipeline = [("scaled", make_pipeline(StandardScaler(), LogisticRegression()))]
    with pytest.raises(TypeError, match="member 'scaled' \\(Pipeline\\)"):
        EnsembleClassifier(pipeline).fit(X, Y, sample_weight=W)
    EnsembleClassifier(members).fit(X, Y)  # unweighted, it fits


def test_other_metadata_needs_routing():
    with pytest.raises(TypeError, match="got \\['groups'\\].*metadata routing"):
        EnsembleClassifier(sklearn_members(), cv=GroupKFold(3)).fit(X, Y, groups=W)


@pytest.mark.parametrize(
    ("weights", "match"),
    [(W[:-1], "sample_weight.shape"), (-W, "Negative values"), (0 * W, "non-zero")],
)
def test_bad_weights_are_refused_before_training(weights, match):
    with pytest.raises(ValueError, match=match):
        EnsembleClassifier([("rec", Recorder())]).fit(X, Y, sample_weight=weights)
    assert Recorder.received == []


@pytest.mark.parametrize("estimator", ["ensemble", "search", "snapshot"])
def test_held_out_rows_that_all_weigh_nothing_are_refused_before_training(estimator):
    weights = np.zeros(len(Y))
    weights[[0, 2, 3, 4, 5]] = 1.0  # they train; the held-out rows all weigh 0
    cv = [(np.r_[np.arange(6), np.arange(46, len(Y))], np.arange(6, 46))]
    model = {
        "ensemble": EnsembleClassifier([("rec", Recorder())], combiner=WeightedCombiner(), cv=cv),
        "search": EnsembleSearchClassifier(estimator=Recorder(), space={}, n_trials=2, cv=cv),
        # 24 rows held out at random: of the first 6, only row 1 for this seed
        "snapshot": SnapshotEnsembleClassifier(
            NeuralClassifier(max_epochs=2),
            n_snapshots=2,
            combiner=WeightedCombiner(),
            random_state=0,
        ),
    }[estimator]
    parameter = "validation_fraction=0.1" if estimator == "snapshot" else "cv=a list of 1 splits"
    with pytest.raises(ValueError, match=f"sample_weight is 0 on all .* rows that {parameter}"):
        model.fit(X, Y, sample_weight=weights)
    assert Recorder.received == []  # no member trained


# -- metadata routing -------------------------------------------------------------------------
@pytest.mark.usefixtures("routing")
def test_grid_search_routes_the_weights_to_every_member():
    ensemble = (
        EnsembleClassifier(
            [
                ("rec", Recorder().set_fit_request(sample_weight=True)),
                (
                    "pipe",
                    make_pipeline(
                        StandardScaler().set_fit_request(sample_weight=True),
                        NeuralClassifier(max_epochs=2).set_fit_request(sample_weight=True),
                    ),
                ),
            ],
            combiner=WeightedCombiner(),
            cv=2,
            random_state=0,
        )
        .set_fit_request(sample_weight=True)
        .set_score_request(sample_weight=True)
    )
    search = GridSearchCV(ensemble, {"rec__C": [0.1, 1.0]}, cv=2).fit(X, Y, sample_weight=W)
    # every fit of the recording member (2 outer folds x 2 candidates x 3 fits, then the
    # refit's 3) got weights, each the weights of the rows it trained on
    assert len(Recorder.received) == 2 * 2 * 3 + 3
    assert all(weights is not None for weights in Recorder.received)
    np.testing.assert_array_equal(Recorder.received[-1], W)
    network = search.best_estimator_.named_members_["pipe"][-1]
    assert network.n_features_in_ == X.shape[1]


@pytest.mark.usefixtures("routing")
def test_routing_follows_each_members_request_and_reaches_the_splitter():
    groups = np.arange(len(Y)) % 4
    members = [
        ("rec", Recorder().set_fit_request(sample_weight=False)),
        ("nb", GaussianNB().set_fit_request(sample_weight=True)),
    ]
    ensemble = EnsembleClassifier(
        members, combiner=WeightedCombiner(), cv=GroupKFold(4), random_state=0
    ).fit(X, Y, sample_weight=W, groups=groups)
    assert Recorder.received and all(weights is None for weights in Recorder.received)
    # group folds: each held-out fold is one group
    assert len(ensemble.oof_index_) == len(Y)
    unset = [("rec", Recorder()), ("nb", GaussianNB())]
    with pytest.raises(UnsetMetadataPassedError, match="Recorder.fit"):
        EnsembleClassifier(unset).fit(X, Y, sample_weight=W)


def test_regression_evaluate_is_weighted_like_repeated_rows():
    from sklearn.linear_model import BayesianRidge

    X_r, y_r = make_regression(150, 4, noise=10.0, random_state=1)
    weights = RNG.integers(0, 4, len(y_r)).astype(float)
    ensemble = EnsembleRegressor([("ridge", Ridge()), ("bayes", BayesianRidge())]).fit(X_r, y_r)
    table = ensemble.evaluate(X_r, y_r, sample_weight=weights)
    counts = weights.astype(int)
    repeated = ensemble.evaluate(np.repeat(X_r, counts, 0), np.repeat(y_r, counts))
    for column in ("rmse", "mae", "r2", "gaussian_nll", "crps", "coverage", "width"):
        np.testing.assert_allclose(table[column], repeated[column], rtol=1e-9, err_msg=column)


def test_distillation_carries_the_weights_of_its_rows():
    ensemble = EnsembleClassifier(sklearn_members()).fit(X, Y)
    student = NeuralClassifier(max_epochs=5, batch_size=1024, precision="64-true", random_state=0)
    counts = W.astype(int)
    cached = dict(student=student, method="cached", alpha=0.8, augment=None)
    weighted = ensemble.distill(X, Y, sample_weight=W, **cached)
    on_copies = ensemble.distill(np.repeat(X, counts, 0), np.repeat(Y, counts), **cached)
    np.testing.assert_allclose(weighted.predict_proba(X), on_copies.predict_proba(X), atol=1e-8)
    plain = ensemble.distill(X, Y, **cached)
    assert np.abs(plain.predict_proba(X) - weighted.predict_proba(X)).max() > 1e-4
    # function matching (held-out rows, views): the weights go along
    matched = ensemble.distill(X, Y, student=student, budget=1, sample_weight=W, random_state=0)
    assert matched.n_iter_ <= 5
    # rows of weight 0 are left out before the held-out rows are drawn: as if never given
    kept = W > 0
    alone = ensemble.distill(
        X[kept], Y[kept], student=student, budget=1, sample_weight=W[kept], random_state=0
    )
    np.testing.assert_array_equal(matched.predict_proba(X), alone.predict_proba(X))
    one_row = np.zeros(len(Y))
    one_row[0] = 1.0
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 leaves 0 rows to train"):
        ensemble.distill(X, Y, student=student, sample_weight=one_row)


def test_ensemble_class_weight_shifts_the_fused_calibrated_probabilities():
    """Members, combiner and calibration learn the unweighted problem; the fused, calibrated
    probabilities are moved to the weights' prior (``p_c w_c``, renormalised)."""
    X_i, y_i = make_classification(
        600, 8, n_informative=4, weights=[0.9, 0.1], flip_y=0.02, random_state=0
    )
    members = [("rec", Recorder()), ("nb", GaussianNB())]
    params = dict(combiner=WeightedCombiner(), cv=3, calibration="temperature", random_state=0)
    balanced = EnsembleClassifier(members, class_weight="balanced", **params).fit(X_i, y_i)
    expected = len(y_i) / (2 * np.bincount(y_i))
    np.testing.assert_allclose(balanced.class_weight_, expected)
    assert Recorder.received[-1] is None  # the members' rows are not weighted
    plain = EnsembleClassifier(members, **params).fit(X_i, y_i)
    shifted = plain.predict_proba(X_i) * expected
    shifted /= shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(balanced.predict_proba(X_i), shifted, atol=1e-12)
    # the rare class is predicted more often, its ranking unchanged
    assert balanced.predict(X_i).mean() > plain.predict(X_i).mean()
    np.testing.assert_array_equal(
        np.argsort(balanced.predict_proba(X_i)[:, 1], kind="stable"),
        np.argsort(plain.predict_proba(X_i)[:, 1], kind="stable"),
    )
    with pytest.raises(ValueError, match="'class_weight' parameter of EnsembleRegressor"):
        EnsembleRegressor([("ridge", Ridge())], class_weight="balanced").fit(X_i, y_i)
    with pytest.raises(ValueError, match="not in y: \\[7\\]"):
        EnsembleClassifier(members, class_weight={7: 1.0}).fit(X_i, y_i)


@pytest.mark.parametrize(
    "estimator",
    [
        NeuralClassifier(max_epochs=2, random_state=0),
        EnsembleClassifier(sklearn_members(), combiner=WeightedCombiner(), cv=2, random_state=0),
        SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=4), n_snapshots=2, random_state=0),
        EnsembleSearchClassifier(
            NeuralClassifier(max_epochs=2), n_trials=2, ensemble_size=2, random_state=0
        ),
    ],
    ids=lambda estimator: type(estimator).__name__,
)
def test_feature_names_survive_weighted_fits_and_saving(estimator, tmp_path):
    import pandas as pd

    from members import persistence

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    fitted = estimator.fit(frame, Y, sample_weight=W)
    assert list(fitted.feature_names_in_) == list(frame.columns)
    persistence.save(fitted, tmp_path / "model")
    loaded = persistence.load(tmp_path / "model", trusted=[f"{Recorder.__module__}.Recorder"])
    assert list(loaded.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted.predict_proba(frame))
    renamed = frame.rename(columns={"f0": "other"})
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict_proba(renamed)


@pytest.mark.usefixtures("routing")
def test_an_ensemble_inside_a_pipeline_gets_the_routed_weights():
    ensemble = EnsembleClassifier(
        [("rec", Recorder().set_fit_request(sample_weight=True))]
    ).set_fit_request(sample_weight=True)
    pipeline = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), ensemble)
    pipeline.fit(X, Y, sample_weight=W)
    np.testing.assert_array_equal(Recorder.received[-1], W)
    assert pipeline.score(X, Y) > 0.5
