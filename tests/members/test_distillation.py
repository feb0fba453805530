"""Function matching (members/distillation.py, NeuralClassifier.fit_distill with a callable
teacher): the teacher labels exactly the view the student trains on; early stopping keeps the
best epoch; a warm start begins from the given network."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from sklearn.datasets import load_digits
from torch import nn

from members import NeuralClassifier, NeuralRegressor
from members.augment import Augmentation
from members.training import BestWeights

X, y = load_digits(return_X_y=True)
X, y = X[:300].astype(np.float32), y[:300]
N_CLASSES = 10


class Recording(nn.Module):
    """A linear network that keeps every batch it trains on."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.linear(x)


class Teacher:
    """Uniform-ish probabilities that depend on the rows; keeps every call's rows."""

    def __init__(self):
        self.calls = []

    def __call__(self, rows):
        self.calls.append(np.array(rows))
        logits = rows[:, :N_CLASSES] / 8.0
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


class EpochCounter(Callback):
    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1


def test_the_teacher_labels_the_very_view_the_student_trains_on():
    teacher = Teacher()
    student = NeuralClassifier(Recording, max_epochs=2, batch_size=64, random_state=0)
    views = Augmentation(shift=2, scale=0.1, noise=0.1, feature_std=X.std(axis=0))
    student.fit_distill(X, teacher, y, augment=views, alpha=1.0)
    # the first call labels the training rows, to check them; the last checks the final
    # weights on the last batch's rows as given (members.module.END_DIVERGENCE_FACTOR)
    seen = student.model_.seen  # what the network saw in training mode
    batches, final_rows = teacher.calls[1:-1], teacher.calls[-1]
    assert len(batches) == len(seen) == 2 * int(np.ceil(len(X) / 64))
    assert all(np.isclose(row, X, atol=1e-5).all(axis=1).any() for row in final_rows)  # no view
    for rows, student_input in zip(batches, seen, strict=True):
        scaled = (rows - student.x_mean_) / student.x_scale_
        np.testing.assert_allclose(scaled, student_input.numpy(), rtol=1e-5, atol=1e-4)
        # a fresh view: no row of the batch is a training row as it was
        assert not any(np.isclose(row, X, atol=1e-3).all(axis=1).any() for row in rows[:5])


def test_without_views_the_teacher_sees_the_training_rows_and_the_student_learns_them():
    teacher = Teacher()
    student = NeuralClassifier(max_epochs=30, random_state=0).fit_distill(X, teacher, alpha=1.0)
    rows = np.concatenate(teacher.calls[1 : 1 + int(np.ceil(len(X) / 128))])
    order = np.lexsort(rows.T)
    np.testing.assert_allclose(rows[order], X[np.lexsort(X.T)], atol=1e-4)
    target = teacher(X)
    kl = np.mean(np.sum(target * np.log(target / student.predict_proba(X)), axis=1))
    kl_uniform = np.mean(np.sum(target * np.log(target * N_CLASSES), axis=1))
    assert kl < 0.1 * kl_uniform


def test_early_stopping_stops_and_keeps_the_best_epoch():
    # the held-out teacher disagrees with the training teacher: the student gets worse on it
    counter = EpochCounter()
    flipped = Teacher()(X)[:, ::-1].copy()
    student = NeuralClassifier(max_epochs=50, callbacks=[counter], random_state=0)
    student.fit_distill(X, Teacher(), validation_data=(X, flipped), patience=3)
    assert student.callbacks_[0].epochs < 50


def test_best_weights_puts_back_the_best_epoch():
    module = nn.Linear(2, 2)
    keeper = BestWeights("val_teacher_loss")
    for epoch, loss in enumerate([3.0, 1.0, 2.0]):
        with torch.no_grad():
            module.weight.fill_(epoch)
        trainer = SimpleNamespace(
            callback_metrics={"val_teacher_loss": torch.tensor(loss)},
            sanity_checking=False,
            current_epoch=epoch,
        )
        keeper.on_validation_end(trainer, module)
    keeper.on_train_end(trainer, module)
    assert keeper.best_epoch == 1 and keeper.state_dict() == {"best": 1.0, "best_epoch": 1}
    assert torch.all(module.weight == 1.0)


def test_a_warm_start_begins_from_the_given_network():
    member = NeuralClassifier(max_epochs=20, random_state=1).fit(X, y)
    # a learning rate so small that the student stays where it started
    student = NeuralClassifier(max_epochs=1, lr=1e-12, random_state=2)
    student.fit_distill(X, member.predict_proba, init_from=member)
    np.testing.assert_allclose(student.predict_proba(X), member.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(student.x_mean_, member.x_mean_)
    with pytest.raises(ValueError, match=r"does not have the student's architecture"):
        NeuralClassifier(module_kwargs={"hidden": (8,)}, max_epochs=1).fit_distill(
            X, member.predict_proba, init_from=member
        )


def test_regression_matches_a_callable_teacher():
    target = X @ np.linspace(-1, 1, X.shape[1]) + 3.0
    student = NeuralRegressor(max_epochs=60, random_state=0)
    student.fit_distill(X, lambda rows: rows @ np.linspace(-1, 1, X.shape[1]) + 3.0)
    rmse = np.sqrt(np.mean((student.predict(X) - target) ** 2))
    assert rmse < 0.2 * target.std()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: NeuralClassifier(max_epochs=1).fit_distill(
                X, Teacher()(X), augment=Augmentation()
            ),
            ValueError,
            r"augment needs a callable teacher",
        ),
        (
            lambda: NeuralClassifier(max_epochs=1).fit_distill(
                X, lambda rows: np.full((len(rows), 2), 0.5)[: len(rows) if len(rows) == 300 else 1]
            ),
            ValueError,
            r"teacher\(rows\) must hold finite outputs for every row of X \(\d+\); "
            r"got shape \(1, 2\)",
        ),
        (
            lambda: NeuralClassifier(max_epochs=1).fit_distill(X, Teacher(), patience=0),
            ValueError,
            r"'patience' parameter of fit_distill .* Got 0",
        ),
        (
            lambda: NeuralClassifier(max_epochs=1).fit_distill(
                X, Teacher(), validation_data=(X[:5], np.ones((4, N_CLASSES)) / N_CLASSES)
            ),
            ValueError,
            r"teacher_val must hold finite outputs for every row of X \(5\); got shape \(4, 10\)",
        ),
        (
            lambda: NeuralClassifier(max_epochs=1).fit_distill(
                X, Teacher(), init_from=NeuralRegressor(max_epochs=1).fit(X, y)
            ),
            ValueError,
            r"init_from must be a fitted NeuralClassifier with standardize=True; got "
            r"NeuralRegressor",
        ),
    ],
)
def test_bad_function_matching_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
