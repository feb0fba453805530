"""A run whose loss explodes stops with a FloatingPointError naming the network, in every
training path, also when the loss stays finite (issue: lr=1e6 once returned 0-4 % models)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from ensembles import EnsembleClassifier, SnapshotEnsembleClassifier
from members import NeuralClassifier, compress, fit_batched, replicate

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)[:600]
y = y[:600]


def wild(**kwargs):
    """Adam at lr=1e6: the loss climbs to ~1e22 and stays finite."""
    return NeuralClassifier("mlp", lr=1e6, optimizer="adam", max_epochs=2, **kwargs)


def healthy():
    return NeuralClassifier("mlp", max_epochs=3, random_state=0)


def single():
    wild(random_state=1).fit(X, y)


def in_an_ensemble():
    members = [("calm", healthy()), ("wild", wild(random_state=1))]
    EnsembleClassifier(members, batched=False).fit(X, y)


def a_batched_group():
    fit_batched([m for _, m in replicate(wild(random_state=1), 3)], X, y, names=["a", "b", "c"])


def a_distillation():
    EnsembleClassifier([("calm", healthy())]).fit(X, y).distill(X, y, student=wild())


def a_snapshot_ensemble():
    SnapshotEnsembleClassifier(wild(random_state=1), n_snapshots=2).fit(X, y)


def a_compress_finetune():
    tuned = healthy().fit(X, y).set_params(lr=1e6, optimizer="adam")
    compress(tuned, prune=0.5, finetune_epochs=2, X=X, y=y)


CASES = [
    (single, r"loss became \S+e\+\d+ in epoch 0, from 2.3\d* at the start", ""),
    (in_an_ensemble, "loss became", "ensemble member 'wild'"),
    (a_batched_group, "the loss of a, b, c became", ""),
    (a_distillation, "loss became", "the distillation student (NeuralClassifier)"),
    (a_snapshot_ensemble, "loss became", "the network of SnapshotEnsembleClassifier"),
    (a_compress_finetune, "loss became", "the pruned network (compress fine-tune)"),
]


@pytest.mark.parametrize(("fit", "message", "note"), CASES, ids=[c[0].__name__ for c in CASES])
def test_an_exploding_loss_stops_the_fit_and_names_the_network(fit, message, note):
    with pytest.raises(FloatingPointError, match=message) as info:
        fit()
    assert "lower the learning rate" in str(info.value)
    assert note in " ".join(getattr(info.value, "__notes__", []))


def test_a_healthy_run_is_not_stopped():
    assert healthy().fit(X, y).score(X, y) > 0.9
    snapshots = SnapshotEnsembleClassifier(healthy(), n_snapshots=3, random_state=0).fit(X, y)
    assert np.isfinite(snapshots.predict_proba(X)).all()
