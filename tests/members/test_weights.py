"""Weighted fits of the neural members: sample_weight and class_weight."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from members import MemberModule, NeuralClassifier, NeuralRegressor, fit_batched, persistence
from members.batched import BatchedMemberModule, StackedNetworks
from members.training import bootstrap_rows

# weights 2 on the first rows, 0 on the last ones, 1 elsewhere; the same data with those rows
# repeated and removed
N = 60
WEIGHTS = np.ones(N)
WEIGHTS[:20], WEIGHTS[50:] = 2, 0


def repeated(X, y):
    counts = WEIGHTS.astype(int)
    return np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0)


def classification():
    return make_classification(N, 5, n_informative=3, random_state=0)


def regression():
    X, y = make_regression(N, 5, noise=5.0, random_state=0)
    return X, y


# -- the loss ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "loss", "width"),
    [("classification", None, 3), ("regression", "mse", 2), ("regression", "gaussian", 4)],
)
def test_weighted_loss_equals_the_loss_on_repeated_rows(task, loss, width):
    rng = torch.Generator().manual_seed(0)
    output = torch.randn(6, width, generator=rng)
    if task == "classification":
        y = torch.tensor([0, 1, 2, 1, 0, 2])
    else:
        y = torch.randn(6, 2, generator=rng)
    weight = torch.tensor([2.0, 1.0, 0.0, 3.0, 1.0, 1.0])
    counts = weight.long()
    module = MemberModule(torch.nn.Identity(), task=task, loss=loss)
    weighted = module.loss(output, y, weight)
    on_repeated = module.loss(output.repeat_interleave(counts, 0), y.repeat_interleave(counts, 0))
    assert weighted.item() == pytest.approx(on_repeated.item(), rel=1e-6)
    # equal weights are the plain mean
    assert module.loss(output, y, torch.full((6,), 3.0)).item() == pytest.approx(
        module.loss(output, y).item(), rel=1e-6
    )


def test_batched_module_weighs_each_member_like_its_own_loss():
    networks = [torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)]
    module = BatchedMemberModule(StackedNetworks(networks), task="classification")
    x = torch.randn(2, 5, 4)
    y = torch.randint(0, 3, (2, 5))
    weight = torch.tensor([[1.0, 2.0, 0.0, 1.0, 3.0], [2.0, 2.0, 1.0, 1.0, 1.0]])
    losses = module.member_losses(module(x), y, weight)
    for m, network in enumerate(networks):
        alone = MemberModule(network).loss(network(x[m]), y[m], weight[m])
        assert losses[m].item() == pytest.approx(alone.item(), rel=1e-6)


# -- fits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["64-true", "32-true"])
def test_integer_weights_equal_repeated_rows_at_equal_steps(precision):
    """One batch per epoch on both sides (batch_size above the rows): the same gradient descent,
    so the same network up to rounding."""
    X, y = classification()
    params = dict(max_epochs=20, batch_size=512, random_state=0, precision=precision)
    weighted = NeuralClassifier(**params).fit(X, y, sample_weight=WEIGHTS)
    on_copies = NeuralClassifier(**params).fit(*repeated(X, y))
    tolerance = 1e-12 if precision == "64-true" else 1e-5
    np.testing.assert_allclose(
        weighted.predict_proba(X), on_copies.predict_proba(X), atol=tolerance
    )


def test_regressor_weights_equal_repeated_rows_and_scale_by_them():
    X, y = regression()
    params = dict(max_epochs=20, batch_size=512, random_state=0, precision="64-true")
    for loss in ("mse", "gaussian"):
        weighted = NeuralRegressor(loss=loss, **params).fit(X, y, sample_weight=WEIGHTS)
        on_copies = NeuralRegressor(loss=loss, **params).fit(*repeated(X, y))
        np.testing.assert_allclose(weighted.y_mean_, on_copies.y_mean_, rtol=1e-12)
        np.testing.assert_allclose(weighted.x_scale_, on_copies.x_scale_, rtol=1e-12)
        np.testing.assert_allclose(weighted.predict(X), on_copies.predict(X), rtol=1e-10)


def test_batched_engine_weights_equal_repeated_rows():
    X, y = classification()
    params = dict(max_epochs=20, batch_size=512, precision="64-true")
    weighted = [NeuralClassifier(random_state=s, **params) for s in (0, 1)]
    on_copies = [NeuralClassifier(random_state=s, **params) for s in (0, 1)]
    fit_batched(weighted, X, y, sample_weight=WEIGHTS)
    fit_batched(on_copies, *repeated(X, y))
    for a, b in zip(weighted, on_copies, strict=True):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-12)
    alone = NeuralClassifier(random_state=1, **params).fit(X, y, sample_weight=WEIGHTS)
    np.testing.assert_allclose(weighted[1].predict_proba(X), alone.predict_proba(X), atol=1e-6)


def test_minibatch_weighted_fit_tracks_repeated_rows():
    """With several batches per epoch the two fits see other batches, so they differ; they
    must still learn the same thing."""
    X, y = make_classification(400, 8, random_state=0)
    weights = np.where(np.arange(400) % 2 == 0, 2.0, 1.0)
    counts = weights.astype(int)
    weighted = NeuralClassifier(max_epochs=30, batch_size=64, random_state=0)
    weighted.fit(X, y, sample_weight=weights)
    on_copies = NeuralClassifier(max_epochs=20, batch_size=64, random_state=0)
    on_copies.fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    agreement = (weighted.predict(X) == on_copies.predict(X)).mean()
    assert agreement > 0.95


def test_zero_weights_drop_rows_and_equal_weights_change_nothing():
    X, y = classification()
    kept = WEIGHTS > 0
    params = dict(max_epochs=5, random_state=0)
    zero = NeuralClassifier(**params).fit(X, y, sample_weight=kept.astype(float))
    dropped = NeuralClassifier(**params).fit(X[kept], y[kept])
    np.testing.assert_array_equal(zero.predict_proba(X), dropped.predict_proba(X))
    plain = NeuralClassifier(**params).fit(X, y)
    equal = NeuralClassifier(**params).fit(X, y, sample_weight=np.full(N, 3.0))
    np.testing.assert_array_equal(plain.predict_proba(X), equal.predict_proba(X))


def test_class_weight_shifts_the_probabilities_of_the_unweighted_fit():
    """``class_weight`` moves the probabilities of the network trained on the unweighted rows to
    the weights' prior; ``sample_weight`` still weighs the rows."""
    X, y = classification()
    params = dict(max_epochs=5, random_state=0)
    by_class = NeuralClassifier(class_weight={1: 4.0}, **params).fit(X, y)
    plain = NeuralClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(by_class.class_weight_, [1.0, 4.0])
    shifted = plain.predict_proba(X) * [1.0, 4.0]
    shifted /= shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(by_class.predict_proba(X), shifted, atol=1e-12)
    rows = np.where(y == 1, 2.0, 1.0)
    both = NeuralClassifier(class_weight={1: 4.0}, **params).fit(X, y, sample_weight=rows)
    by_row = NeuralClassifier(**params).fit(X, y, sample_weight=rows)
    shifted = by_row.predict_proba(X) * [1.0, 4.0]
    shifted /= shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(both.predict_proba(X), shifted, atol=1e-12)
    assert NeuralClassifier(**params).fit(X, y).class_weight_ is None
    # predict and predict_log_proba shift as predict_proba does
    proba = by_class.predict_proba(X)
    np.testing.assert_array_equal(by_class.predict(X), by_class.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(by_class.predict_log_proba(X)), proba, atol=1e-12)
    assert (by_class.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


def test_balanced_class_weight_helps_the_rare_class():
    X, y = make_classification(
        1200, 10, n_informative=4, weights=[0.95, 0.05], flip_y=0.02, random_state=0
    )
    X_train, y_train, X_test, y_test = X[:800], y[:800], X[800:], y[800:]
    params = dict(max_epochs=30, random_state=0)
    plain = NeuralClassifier(**params).fit(X_train, y_train)
    balanced = NeuralClassifier(class_weight="balanced", **params).fit(X_train, y_train)
    assert balanced_accuracy_score(y_test, balanced.predict(X_test)) > balanced_accuracy_score(
        y_test, plain.predict(X_test)
    )
    assert roc_auc_score(y_test, balanced.predict_proba(X_test)[:, 1]) > 0.8


def test_weights_reach_early_stopping_and_bootstrap():
    X, y = make_classification(200, 5, random_state=0)
    weights = np.where(y == 1, 3.0, 1.0)
    model = NeuralClassifier(max_epochs=5, early_stopping=True, bootstrap=True, random_state=0).fit(
        X, y, sample_weight=weights
    )
    assert model.n_iter_ <= 5
    draws = bootstrap_rows(0, 1000, np.where(np.arange(1000) < 500, 3.0, 1.0))
    assert 0.7 < (draws < 500).mean() < 0.8  # three quarters of the weight
    assert set(bootstrap_rows(1, 4, np.array([0.0, 1.0, 0.0, 1.0]))) <= {1, 3}


def test_class_weight_survives_saving(tmp_path):
    X, y = classification()
    model = NeuralClassifier(max_epochs=2, class_weight={0: 1.0, 1: 3.0}, random_state=0)
    model.fit(X, y)
    persistence.save(model, tmp_path / "model")
    loaded = persistence.load(tmp_path / "model")
    assert loaded.class_weight == {0: 1.0, 1: 3.0}
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize(
    ("estimator", "weights", "match"),
    [
        (NeuralClassifier(max_epochs=1), np.ones(N + 1), "sample_weight.shape"),
        (NeuralClassifier(max_epochs=1), -np.ones(N), "Negative values .*sample_weight"),
        (NeuralClassifier(max_epochs=1), np.zeros(N), "weights must contain at least one non"),
        (NeuralClassifier(max_epochs=1), np.full(N, np.nan), "sample_weight contains NaN"),
        (NeuralClassifier(max_epochs=1, class_weight={7: 2.0}), None, "not in y: \\[7\\]"),
        (NeuralClassifier(max_epochs=1, class_weight={0: -2.0}), None, "finite numbers >= 0"),
        (NeuralClassifier(max_epochs=1, class_weight={0: 0.0, 1: 0.0}), None, "some class"),
        (NeuralRegressor(max_epochs=1, class_weight="balanced"), None, "class_weight"),
    ],
)
def test_bad_weights_are_named(estimator, weights, match):
    X, y = classification()
    with pytest.raises(ValueError, match=match):
        estimator.fit(X, y, sample_weight=weights)


# -- distillation -----------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_weighted_distillation_loss_equals_the_loss_on_repeated_rows(task):
    from members.distillation import DistillationModule

    rng = torch.Generator().manual_seed(0)
    width = 3 if task == "classification" else 2
    output = torch.randn(6, width, generator=rng)
    if task == "classification":
        teacher = torch.softmax(torch.randn(6, 3, generator=rng), dim=1)
        y = torch.tensor([0, 2, -1, 1, -1, 0])
    else:
        teacher = torch.randn(6, 2, generator=rng)
        y = torch.randn(6, 2, generator=rng)
        y[2] = float("nan")
    weight = torch.tensor([2.0, 1.0, 3.0, 1.0, 2.0, 1.0])
    counts = weight.long()
    module = DistillationModule(torch.nn.Identity(), task=task, temperature=2.0, alpha=0.7)
    weighted = module.distillation_loss(output, y, teacher, weight)
    on_copies = module.distillation_loss(
        *(t.repeat_interleave(counts, 0) for t in (output, y, teacher))
    )
    assert weighted.item() == pytest.approx(on_copies.item(), rel=1e-5)


@pytest.mark.parametrize("online", [False, True])
def test_fit_distill_weights_equal_repeated_rows(online):
    X, y = classification()
    teacher = NeuralClassifier(max_epochs=5, random_state=1).fit(X, y)
    params = dict(max_epochs=10, batch_size=512, random_state=0, precision="64-true")
    source = teacher.predict_proba if online else None

    def outputs(rows):
        return source if online else teacher.predict_proba(rows)

    weighted = NeuralClassifier(**params).fit_distill(
        X, outputs(X), y, alpha=0.8, sample_weight=WEIGHTS
    )
    X_rep, y_rep = repeated(X, y)
    on_copies = NeuralClassifier(**params).fit_distill(X_rep, outputs(X_rep), y_rep, alpha=0.8)
    np.testing.assert_allclose(weighted.predict_proba(X), on_copies.predict_proba(X), atol=1e-6)
    # held-out weights: accepted as a third entry of validation_data
    checked = NeuralClassifier(**params).fit_distill(
        X,
        outputs(X),
        validation_data=(X[:10], teacher.predict_proba(X[:10]), np.arange(1.0, 11.0)),
        patience=2,
        sample_weight=WEIGHTS,
    )
    assert checked.n_iter_ <= 10
    with pytest.raises(ValueError, match="validation_data must be"):
        NeuralClassifier(**params).fit_distill(X, outputs(X), validation_data=(X,))


def test_compress_fine_tune_is_weighted():
    from members import compress

    X, y = classification()
    model = NeuralClassifier(max_epochs=5, batch_size=512, precision="64-true", random_state=0)
    model.fit(X, y)
    params = dict(prune=0.5, finetune_epochs=3)
    weighted = compress(model, X=X, y=y, sample_weight=WEIGHTS, **params)
    on_copies = compress(model, X=repeated(X, y)[0], y=repeated(X, y)[1], **params)
    plain = compress(model, X=X, y=y, **params)
    np.testing.assert_allclose(weighted.predict_proba(X), on_copies.predict_proba(X), atol=1e-6)
    assert np.abs(weighted.predict_proba(X) - plain.predict_proba(X)).max() > 1e-6
    with pytest.raises(ValueError, match="sample_weight weighs the fine-tune"):
        compress(model, prune=0.5, X=X, y=y, sample_weight=WEIGHTS)
