import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

from ensembles import (
    DistillationReport,
    EnsembleClassifier,
    EnsembleRegressor,
    SnapshotEnsembleClassifier,
)
from ensembles.distillation import augment_rows, best_member
from members import NeuralClassifier, NeuralRegressor


@pytest.fixture(scope="module")
def teacher(classification_data):
    X, y = classification_data
    labels = np.array(["a", "b", "c"])[y]
    return (
        EnsembleClassifier(
            [
                ("wide", NeuralClassifier(max_epochs=60, module_kwargs={"hidden": (128, 128)})),
                ("small", NeuralClassifier(max_epochs=60, module_kwargs={"hidden": (16,)})),
                ("lr", LogisticRegression(max_iter=500)),
            ],
            random_state=0,
        ).fit(X, labels),
        X,
        labels,
    )


def test_student_is_a_fitted_classifier_close_to_its_teacher(teacher):
    ensemble, X, labels = teacher
    student = ensemble.distill(X, labels, random_state=0)
    assert isinstance(student, NeuralClassifier)
    assert student.module_kwargs == {"hidden": (16,)}  # the smallest neural member's architecture
    assert list(student.classes_) == ["a", "b", "c"]
    restored = pickle.loads(pickle.dumps(student))
    np.testing.assert_array_equal(restored.predict_proba(X), student.predict_proba(X))


def test_a_capable_student_follows_its_teacher(teacher):
    ensemble, X, labels = teacher
    capable = NeuralClassifier(max_epochs=60, module_kwargs={"hidden": (128, 128)})
    student = ensemble.distill(X, labels, student=capable, random_state=0)
    assert np.mean(student.predict(X) == ensemble.predict(X)) > 0.85


@pytest.mark.parametrize("method", ["noise", "mixup", "munge"])
def test_augmentations(teacher, method):
    ensemble, X, labels = teacher
    rows = augment_rows(X, method, 2, np.random.RandomState(0))
    assert rows.shape == (2 * len(X), X.shape[1]) and np.isfinite(rows).all()
    assert not np.allclose(rows[: len(X)], X)
    student = ensemble.distill(
        X,
        labels,
        augment=method,
        X_unlabeled=X[:50] + 0.01,
        method="cached",
        random_state=0,
        student=NeuralClassifier(max_epochs=5),
    )
    assert student.n_features_in_ == X.shape[1]


def test_without_labels_and_report(teacher):
    ensemble, X, labels = teacher
    small = {"max_epochs": 20, "module_kwargs": {"hidden": (16,)}}
    student = ensemble.distill(X, student=NeuralClassifier(**small), random_state=0)
    alone = NeuralClassifier(**small, random_state=0).fit(X, labels)
    report = DistillationReport.compare(ensemble, student, X, labels, baseline=alone)
    table = report.table
    assert list(table.index) == [
        "ensemble",
        "student",
        "alone",
        "best member",
        "best member, student's architecture",
    ]
    assert report.references["best member, student's architecture"] == "small"
    assert np.isnan(table.loc["ensemble", "gain_kept_architecture"])
    assert table.loc["ensemble", "agreement"] == 1.0
    assert table.loc["ensemble", "kl_to_ensemble"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["student", "n_parameters"] < table.loc["ensemble", "n_parameters"]
    expected = (table.loc["student", "accuracy"] - table.loc["alone", "accuracy"]) / (
        table.loc["ensemble", "accuracy"] - table.loc["alone", "accuracy"]
    )
    assert table.loc["student", "gain_kept"] == pytest.approx(expected)
    assert "latency_10k_s" in str(report)


def test_regression_distillation_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    ensemble = EnsembleRegressor(
        [("mlp", NeuralRegressor()), ("ridge", Ridge())], random_state=0
    ).fit(X_train, y_train)
    student = ensemble.distill(X_train, y_train, random_state=0)
    assert isinstance(student, NeuralRegressor)
    report = DistillationReport.compare(ensemble, student, X_test, y_test).table
    print(report.round(3))
    assert report.loc["student", "r2"] > 0.3
    assert report.loc["student", "rmse"] < 1.15 * report.loc["ensemble", "rmse"]


def test_distilling_a_snapshot_ensemble(classification_data):
    X, y = classification_data
    snap = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=20), n_snapshots=3, random_state=0
    )
    student = snap.fit(X, y).distill(X, y, random_state=0)
    # function matching trains the student for up to 3 times a member's epochs
    assert student.get_params()["max_epochs"] == 3 * 20
    assert np.mean(student.predict(X) == snap.predict(X)) > 0.85


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"temperature": 0}, ValueError, r"'temperature' parameter of distill .* Got 0 "),
        ({"temperature": -1.0}, ValueError, r"'temperature' .* \(0.0, inf\)\. Got -1.0 "),
        ({"alpha": 1.5}, ValueError, r"'alpha' parameter of distill .* \[0.0, 1.0\]\. Got 1.5"),
        (
            {"student": LogisticRegression()},
            TypeError,
            r"must be an unfitted NeuralClassifier .* got LogisticRegression",
        ),
        ({"student": NeuralRegressor()}, TypeError, r"got NeuralRegressor"),
        ({"augment": "rotate"}, ValueError, r"'augment' parameter of distill .* Got 'rotate'"),
        ({"n_augment": 0}, ValueError, r"'n_augment' parameter of distill .* Got 0 instead"),
        ({"method": "online"}, ValueError, r"'method' parameter of distill .* Got 'online'"),
        ({"budget": 0}, ValueError, r"'budget' parameter of distill .* Got 0 instead"),
        (
            {"validation_fraction": 1.0},
            ValueError,
            r"'validation_fraction' parameter of distill .* Got 1.0 instead",
        ),
        (
            {"method": "cached", "budget": 2, "warm_start": True},
            ValueError,
            r"budget, warm_start apply to method='function_matching' only",
        ),
        ({"n_augment": 3}, ValueError, r"n_augment applies to method='cached' only"),
        (
            {"method": "cached", "augment": "signal"},
            ValueError,
            r"'augment' parameter of distill .* Got 'signal'",
        ),
        (
            {"warm_start": True, "student": NeuralClassifier(module_kwargs={"hidden": (7,)})},
            ValueError,
            r"warm_start=True needs a member of the student's architecture .* "
            r"module_kwargs=\{'hidden': \(7,\)\}",
        ),
    ],
)
def test_bad_arguments(teacher, kwargs, error, match):
    ensemble, X, labels = teacher
    with pytest.raises(error, match=match):
        ensemble.distill(X, labels, **kwargs)


def test_bad_data_and_unfitted_ensemble(teacher):
    ensemble, X, labels = teacher
    with pytest.raises(
        ValueError, match=r"X has 3 features, but EnsembleClassifier is expecting 8"
    ):
        ensemble.distill(X[:, :3])
    with pytest.raises(ValueError, match=r"y must label every row of X: got 10 labels for 240"):
        ensemble.distill(X, labels[:10])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EnsembleClassifier([("lr", LogisticRegression())]).distill(X)
    with pytest.raises(TypeError, match="no neural member"):
        EnsembleClassifier([("lr", LogisticRegression())]).fit(X, labels).distill(X)


def test_the_best_member_is_chosen_on_the_weighted_held_out_loss():
    sure, unsure = NeuralClassifier(), NeuralClassifier()  # one architecture, fixed outputs
    sure.predict_proba = lambda X: np.tile([0.9, 0.1], (len(X), 1))
    unsure.predict_proba = lambda X: np.tile([0.4, 0.6], (len(X), 1))
    ensemble = EnsembleClassifier([("sure", sure), ("unsure", unsure)])
    ensemble.members_, ensemble.classes_ = [sure, unsure], np.array([0, 1])
    labels, held_out, X_val = np.array([0, 0, 1, 1]), np.arange(4), np.zeros((4, 1))
    # unweighted log-loss: sure 1.20, unsure 0.71; the first two rows weighted 10: 0.31, 0.88
    assert best_member(ensemble, NeuralClassifier(), X_val, labels, held_out) is unsure
    weights = np.array([10.0, 10.0, 1.0, 1.0])
    assert best_member(ensemble, NeuralClassifier(), X_val, labels, held_out, weights) is sure


def test_function_matching_is_the_default_and_warm_starts_from_the_best_member(teacher):
    ensemble, X, labels = teacher
    held_out = np.arange(0, len(X), 5)
    # "small" trained 60 epochs; a copy trained 1 epoch fits the held-out rows worse
    worse = NeuralClassifier(max_epochs=1, module_kwargs={"hidden": (16,)}).fit(X, labels)
    two = EnsembleClassifier(
        [("small", ensemble.named_members_["small"]), ("worse", worse)], cv="prefit"
    ).fit(X, labels)
    student = NeuralClassifier(max_epochs=4, module_kwargs={"hidden": (16,)})
    assert best_member(two, student, X[held_out], labels, held_out) is two.members_[0]
    assert best_member(two, NeuralClassifier(), X[held_out], labels, held_out) is None
    warm = two.distill(X, labels, student=student, warm_start=True, random_state=0)
    assert warm.max_epochs == 3 * 4  # the default budget: 3 times the student's epochs
    cold = two.distill(X, labels, student=student, warm_start=False, random_state=0)
    # a warm start from the 60-epoch member: the student is ahead of a cold one after 12 epochs
    assert warm.score(X, labels) > cold.score(X, labels)


def test_the_report_measures_the_gain_against_the_better_network_alone(teacher):
    ensemble, X, labels = teacher
    small = {"max_epochs": 5, "module_kwargs": {"hidden": (16,)}}
    student = ensemble.distill(X, labels, student=NeuralClassifier(**small), random_state=0)
    short = NeuralClassifier(**{**small, "max_epochs": 1}, random_state=0).fit(X, labels)
    long = NeuralClassifier(**{**small, "max_epochs": 15}, random_state=0).fit(X, labels)
    table = DistillationReport.compare(
        ensemble,
        student,
        X,
        labels,
        baselines={"alone": short, "alone, student's budget": long},
        train_seconds={"ensemble": 10.0, "student": 15.0},
    ).table
    best = max(table.loc["alone", "accuracy"], table.loc["alone, student's budget", "accuracy"])
    expected = (table.loc["student", "accuracy"] - best) / (
        table.loc["ensemble", "accuracy"] - best
    )
    assert table.loc["student", "gain_kept"] == pytest.approx(expected)
    assert table.loc["student", "cost"] == 1.5 and table.loc["ensemble", "cost"] == 1.0
    assert np.isnan(table.loc["alone", "cost"])


def test_the_fused_function_gives_predict_s_outputs_up_to_float32_rounding(teacher):
    ensemble, X, labels = teacher
    fused = ensemble.fused_function()
    np.testing.assert_allclose(fused(X), ensemble.predict_proba(X), atol=1e-5)
    network = ensemble.named_members_["wide"].network_function()
    np.testing.assert_allclose(
        network(X), ensemble.named_members_["wide"].predict_proba(X), atol=1e-5
    )
    Xr, yr = load_diabetes(return_X_y=True)
    regressor = EnsembleRegressor(
        [("mlp", NeuralRegressor(max_epochs=3, random_state=0)), ("ridge", Ridge())]
    ).fit(Xr, yr)
    predictions = regressor.fused_function()(Xr)
    assert predictions.shape == (len(Xr),)
    np.testing.assert_allclose(predictions, regressor.predict(Xr), rtol=1e-5)


class FailsLater(LogisticRegression):
    """Predicts normally for ``calls`` calls, then raises (a teacher that breaks mid-run)."""

    def __init__(self, calls=3, max_iter=300):
        super().__init__(max_iter=max_iter)
        self.calls = calls

    def predict_proba(self, X):
        self.count_ = getattr(self, "count_", 0) + 1
        if self.count_ > self.calls:
            raise RuntimeError("the teacher broke")
        return super().predict_proba(X)


def test_a_teacher_that_breaks_mid_run_is_named_and_the_ensemble_is_intact(teacher):
    ensemble, X, labels = teacher
    mixed = EnsembleClassifier(
        [
            ("small", ensemble.named_members_["small"]),
            ("flaky", FailsLater(calls=5).fit(X, labels)),
        ],
        cv="prefit",
    ).fit(X, labels)
    before = mixed.named_members_["small"].predict_proba(X)
    with pytest.raises(RuntimeError, match="the teacher broke") as raised:
        mixed.distill(X, labels, random_state=0)
    notes = "\n".join(raised.value.__notes__)
    assert "raised while member 'flaky' predicted" in notes
    assert "raised while training the distillation student (NeuralClassifier)" in notes
    np.testing.assert_array_equal(mixed.named_members_["small"].predict_proba(X), before)


def test_function_matching_learns_unlabelled_rows_from_the_ensemble(teacher):
    """Rows without labels join the transfer set; the ensemble labels their views, so the
    student follows it better there than a student that never saw them (measured on seeds
    0, 1, 2: 0.88 / 0.90 / 0.87 against 0.83 / 0.88 / 0.78)."""
    ensemble, X, labels = teacher
    unlabelled = X[120:]

    def student():
        return NeuralClassifier(max_epochs=20, module_kwargs={"hidden": (64,)})

    def agreement(model):
        return np.mean(model.predict(unlabelled) == ensemble.predict(unlabelled))

    seen = ensemble.distill(
        X[:120], labels[:120], X_unlabeled=unlabelled, student=student(), random_state=2
    )
    unseen = ensemble.distill(X[:120], labels[:120], student=student(), random_state=2)
    assert agreement(seen) > agreement(unseen)


def test_too_few_rows_for_the_held_out_split_are_refused(teacher):
    ensemble, X, labels = teacher
    with pytest.raises(ValueError, match=r"validation_fraction=0.5 leaves 1 rows to train"):
        ensemble.distill(X[:2], labels[:2], validation_fraction=0.5)


def test_distillation_leaves_the_global_torch_rng_alone(teacher):
    import torch

    ensemble, X, labels = teacher
    before = torch.random.get_rng_state()
    ensemble.distill(X, labels, student=NeuralClassifier(max_epochs=1), random_state=0)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_gaussian_members_distill_into_a_student_of_the_mean(regression_data):
    X, y = regression_data
    member = NeuralRegressor(
        module_kwargs={"hidden": (8,)}, loss="gaussian", max_epochs=3, random_state=0
    )
    ens = EnsembleRegressor([("a", member), ("b", clone(member))], random_state=0).fit(X, y)
    student = ens.distill(X, budget=1, random_state=0)
    assert student.loss is None and student.predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match="loss='gaussian'.* cannot be distilled"):
        ens.distill(X, student=member, random_state=0)
