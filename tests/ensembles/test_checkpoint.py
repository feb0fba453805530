"""Nothing lost when a member fails: checkpoint_dir keeps and reuses trained members."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from combiners import WeightedCombiner
from ensembles import EnsembleClassifier
from members import NeuralClassifier

FITS: list[str] = []


class Recorded(LogisticRegression):
    """Records each fit by its C value, so tests can see which members were trained."""

    def fit(self, X, y):
        FITS.append(f"C={self.C}")
        return super().fit(X, y)


class Failing(LogisticRegression):
    def fit(self, X, y):
        raise RuntimeError("out of memory")


@pytest.fixture(autouse=True)
def clear():
    FITS.clear()


def test_failed_member_is_named_and_the_others_are_reused(classification_data, tmp_path):
    X, y = classification_data
    good = [("a", Recorded(C=1.0, max_iter=500)), ("b", Recorded(C=0.5, max_iter=500))]
    with pytest.raises(RuntimeError, match="out of memory") as info:
        EnsembleClassifier([*good, ("c", Failing())], checkpoint_dir=tmp_path).fit(X, y)
    note = "".join(info.value.__notes__)
    assert "member 'c'" in note and "the 2 members trained before it are kept in" in note
    assert FITS == ["C=1.0", "C=0.5"]
    FITS.clear()
    resumed = EnsembleClassifier(
        [*good, ("c", Recorded(C=0.1, max_iter=500))], checkpoint_dir=tmp_path
    ).fit(X, y)
    assert FITS == ["C=0.1"]  # a and b were loaded, not retrained
    fresh = EnsembleClassifier([*good, ("c", Recorded(C=0.1, max_iter=500))]).fit(X, y)
    np.testing.assert_allclose(resumed.predict_proba(X), fresh.predict_proba(X))


def test_a_first_member_that_fails_says_nothing_was_kept(classification_data, tmp_path):
    X, y = classification_data
    members = [("c", Failing()), ("a", Recorded(C=1.0, max_iter=500))]
    with pytest.raises(RuntimeError, match="out of memory") as info:
        EnsembleClassifier(members, checkpoint_dir=tmp_path).fit(X, y)
    note = "".join(info.value.__notes__)
    assert "member 'c'" in note and "no member had finished before it" in note
    assert "kept" not in note


def test_changed_member_or_data_is_retrained(classification_data, tmp_path):
    X, y = classification_data
    EnsembleClassifier([("a", Recorded(C=1.0, max_iter=500))], checkpoint_dir=tmp_path).fit(X, y)
    EnsembleClassifier([("a", Recorded(C=2.0, max_iter=500))], checkpoint_dir=tmp_path).fit(X, y)
    EnsembleClassifier([("a", Recorded(C=2.0, max_iter=500))], checkpoint_dir=tmp_path).fit(
        X[:-10], y[:-10]
    )
    assert FITS == ["C=1.0", "C=2.0", "C=2.0"]


def test_fold_members_and_neural_members_are_checkpointed(classification_data, tmp_path):
    X, y = classification_data
    members = [("net", NeuralClassifier(max_epochs=3)), ("lr", Recorded(max_iter=500))]
    first = EnsembleClassifier(
        members, combiner=WeightedCombiner(), cv=3, checkpoint_dir=tmp_path, random_state=0
    ).fit(X, y)
    assert len(list(tmp_path.glob("*/manifest.json"))) == 2 * (3 + 1)
    FITS.clear()
    again = EnsembleClassifier(
        members, combiner=WeightedCombiner(), cv=3, checkpoint_dir=tmp_path, random_state=0
    ).fit(X, y)
    assert FITS == []
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_without_checkpoint_dir_the_error_says_how_to_keep_members(classification_data):
    X, y = classification_data
    with pytest.raises(RuntimeError) as info:
        EnsembleClassifier([("c", Failing())]).fit(X, y)
    assert "pass checkpoint_dir=" in "".join(info.value.__notes__)
