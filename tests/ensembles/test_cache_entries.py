"""Members given callbacks save, load and are reused from ``checkpoint_dir`` (callbacks are
training-time objects: a save leaves them out, the cache gives them back); a cache entry proves
which member it is, so one copied from another member is trained again, not reused."""

import shutil
import warnings

import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback, EarlyStopping

from combiners import MeanCombiner
from ensembles import EnsembleClassifier, SnapshotEnsembleClassifier
from members import NeuralClassifier, SnapshotCollector
from members.persistence import CallbacksNotSavedWarning, load, save

RUNS: list[str] = []


class Counting(Callback):
    """A user's own callback: records each training run it sees."""

    def __init__(self, label: str = "run") -> None:
        self.label = label

    def on_fit_start(self, trainer, pl_module):
        RUNS.append(self.label)


@pytest.fixture(autouse=True)
def clear():
    RUNS.clear()


def pool():
    small = {"max_epochs": 3, "module_kwargs": {"hidden": (8,)}}
    return [
        (
            "stop",
            NeuralClassifier(**small, callbacks=[EarlyStopping("train_loss")], random_state=0),
        ),
        ("own", NeuralClassifier(**small, callbacks=[Counting("own")], random_state=1)),
        ("snap", NeuralClassifier(**small, callbacks=[SnapshotCollector(2)], random_state=2)),
    ]


@pytest.mark.parametrize(
    "callback", [EarlyStopping("train_loss"), Counting(), SnapshotCollector(2)]
)
def test_a_network_fitted_with_callbacks_saves_and_loads(classification_data, tmp_path, callback):
    X, y = classification_data
    clf = NeuralClassifier(max_epochs=3, callbacks=[callback], random_state=0).fit(X, y)
    with pytest.warns(CallbacksNotSavedWarning, match=type(callback).__name__):
        loaded = NeuralClassifier.load(save(clf, tmp_path / "clf"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.callbacks is None and loaded.callbacks_ == []
    # given back, it fits again as the original would
    refit = loaded.set_params(callbacks=[callback]).fit(X, y)
    np.testing.assert_array_equal(refit.predict_proba(X), clf.predict_proba(X))


def test_members_with_callbacks_are_kept_in_checkpoint_dir_and_reused(
    classification_data, tmp_path
):
    X, y = classification_data
    first = EnsembleClassifier(pool(), combiner=MeanCombiner(), checkpoint_dir=tmp_path).fit(X, y)
    assert RUNS == ["own"]
    assert len(list(tmp_path.iterdir())) == 3  # all three kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cannot be kept", no "cannot be reused"
        again = EnsembleClassifier(pool(), combiner=MeanCombiner(), checkpoint_dir=tmp_path)
        again.fit(X, y)
    assert RUNS == ["own"]  # reused, not trained again
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))
    # the reused members carry the callbacks they were asked with
    kinds = [type(member.callbacks[0]) for member in again.members_]
    assert kinds == [EarlyStopping, Counting, SnapshotCollector]


def test_a_swa_snapshot_ensemble_saves_and_loads(classification_data, tmp_path):
    X, y = classification_data
    snap = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=6, module_kwargs={"hidden": (8,)}), method="swa", random_state=0
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CallbacksNotSavedWarning)
        loaded = load(save(snap, tmp_path / "swa"))
    np.testing.assert_array_equal(loaded.predict_proba(X), snap.predict_proba(X))


def test_a_cache_entry_copied_from_another_member_is_not_reused(classification_data, tmp_path):
    X, y = classification_data
    members = pool()[:2]
    EnsembleClassifier(members, combiner=MeanCombiner(), checkpoint_dir=tmp_path).fit(X, y)
    own, stop = sorted(tmp_path.iterdir())  # entries are named after their members
    assert stop.name.startswith("stop") and own.name.startswith("own")
    shutil.rmtree(own)
    shutil.copytree(stop, own)  # a complete save, but of the other member
    RUNS.clear()
    with pytest.warns(UserWarning, match=rf"{own.name}.*written as the entry '{stop.name}'"):
        again = EnsembleClassifier(pool()[:2], combiner=MeanCombiner(), checkpoint_dir=tmp_path)
        again.fit(X, y)
    assert RUNS == ["own"]  # trained again, not taken from the copied entry
    fresh = EnsembleClassifier(pool()[:2], combiner=MeanCombiner()).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fresh.predict_proba(X))


def first_factory(n_features, n_outputs):
    from torch import nn

    return nn.Linear(n_features, n_outputs)


def second_factory(n_features, n_outputs):
    from torch import nn

    return nn.Linear(n_features, n_outputs)


def test_cache_keys_are_the_same_for_equal_members_in_every_run():
    from ensembles.member_cache import stable_hash

    # a callback holding a tensor (EarlyStopping's best_score): equal ones hash equal
    assert stable_hash([EarlyStopping("val_loss")]) == stable_hash([EarlyStopping("val_loss")])
    assert stable_hash([EarlyStopping("val_loss")]) != stable_hash([EarlyStopping("train_loss")])
    assert stable_hash(NeuralClassifier(module=first_factory)) != stable_hash(
        NeuralClassifier(module=second_factory)
    )
    assert stable_hash(NeuralClassifier(lr=0.1)) != stable_hash(NeuralClassifier(lr=0.2))


def test_a_fine_tune_s_cache_key_holds_its_parent_s_weights():
    """Two parents with equal parameters but trained on other rows: their fine-tunes differ."""
    from sklearn.datasets import load_iris

    from ensembles.member_cache import stable_hash

    X, y = load_iris(return_X_y=True)
    parents = [
        NeuralClassifier(max_epochs=1, random_state=0).fit(X[rows], y[rows])
        for rows in (slice(0, 150), slice(0, 150, 2))
    ]
    first, second = (NeuralClassifier(init=parent) for parent in parents)
    assert stable_hash(first) != stable_hash(second)
    assert stable_hash(first) == stable_hash(NeuralClassifier(init=parents[0]))
