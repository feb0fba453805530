"""Ensembles train members that differ only in random_state together (the batched engine)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

import members.batched
from combiners import WeightedCombiner
from ensembles import EnsembleClassifier, EnsembleRegressor
from members import NeuralClassifier, NeuralRegressor, replicate

SMALL = NeuralClassifier("mlp", module_kwargs={"hidden": (32,)}, max_epochs=3, random_state=0)


@pytest.fixture
def batched_calls(monkeypatch):
    """The sizes of the groups handed to the batched engine."""
    calls = []
    original = members.batched.fit_batched

    def counting(estimators, *args, **kwargs):
        calls.append(len(estimators))
        return original(estimators, *args, **kwargs)

    monkeypatch.setattr("ensembles.training.fit_batched", counting)
    return calls


def test_batched_and_sequential_ensembles_agree(classification_data, batched_calls):
    X, y = classification_data
    pool = replicate(SMALL, 3)
    together = EnsembleClassifier(pool, batched=True).fit(X, y)
    apart = EnsembleClassifier(pool, batched=False).fit(X, y)
    assert batched_calls == [3]
    np.testing.assert_allclose(together.predict_proba(X), apart.predict_proba(X), atol=1e-4)
    outputs = together.member_predictions(X)
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-2  # independent members


def test_heterogeneous_pool_groups_what_it_can(classification_data, batched_calls):
    X, y = classification_data
    pool = [
        *replicate(SMALL, 2, name="small"),
        ("cnn", NeuralClassifier("cnn1d", max_epochs=1, random_state=0)),
        *replicate(clone(SMALL).set_params(lr=1e-2), 2, name="other_lr"),
        ("lr", LogisticRegression(max_iter=500)),
        # unseeded: the ensemble's random_state gives them distinct seeds, then they group
        ("u0", NeuralClassifier(max_epochs=1)),
        ("u1", NeuralClassifier(max_epochs=1)),
    ]
    ens = EnsembleClassifier(pool, batched=True, random_state=0).fit(X, y)
    assert sorted(batched_calls) == [2, 2, 2]
    assert list(ens.named_members_) == [name for name, _ in pool]
    assert ens.named_members_["u0"].random_state != ens.named_members_["u1"].random_state
    assert ens.score(X, y) > 0.7


def test_auto_leaves_large_networks_on_the_cpu_to_train_one_after_another(
    classification_data, batched_calls
):
    X, y = classification_data
    wide = NeuralClassifier(
        module_kwargs={"hidden": (1024, 1024)}, max_epochs=1, accelerator="cpu", random_state=0
    )
    EnsembleClassifier(replicate(wide, 2), batched="auto").fit(X, y)
    assert batched_calls == []
    small = clone(SMALL).set_params(accelerator="cpu")
    EnsembleClassifier(replicate(small, 2), batched="auto").fit(X, y)
    assert batched_calls == [2]
    EnsembleClassifier(replicate(SMALL, 2), batched=False).fit(X, y)
    assert batched_calls == [2]


def test_cross_fitting_batches_each_fold(classification_data, batched_calls):
    X, y = classification_data
    ens = EnsembleClassifier(
        replicate(SMALL, 2), combiner=WeightedCombiner(), cv=3, batched=True, random_state=0
    ).fit(X, y)
    assert batched_calls == [2, 2, 2, 2]  # three folds, then all the data
    assert ens.oof_predictions_.shape == (2, len(X), 3)


def test_regressor_with_bootstrap_members(regression_data, batched_calls):
    X, y = regression_data
    template = NeuralRegressor(module_kwargs={"hidden": (16,)}, max_epochs=3, random_state=0)
    ens = EnsembleRegressor(replicate(template, 3, bootstrap=True), batched=True).fit(X, y)
    assert batched_calls == [3]
    assert all(member.bootstrap for member in ens.members_)
    assert ens.predict(X).shape == y.shape


def test_a_failing_group_keeps_what_was_trained_before(classification_data, tmp_path, capsys):
    X, y = classification_data
    pool = [
        ("first", NeuralClassifier(max_epochs=1, random_state=0)),
        *replicate(NeuralClassifier(lr=1e8, max_epochs=2, random_state=0), 2, name="wild"),
    ]
    ens = EnsembleClassifier(pool, batched=True, checkpoint_dir=tmp_path, verbose=True)
    with pytest.raises(FloatingPointError) as info:
        ens.fit(X, y)
    note = " ".join(info.value.__notes__)
    assert "member 'wild_0' and member 'wild_1' (trained together by the batched engine)" in note
    assert "kept in checkpoint_dir" in note
    assert "(together, batched)" in capsys.readouterr().out
    assert [p.parent.name.split("-")[0] for p in tmp_path.glob("*/manifest.json")] == ["first"]


def test_checkpointed_group_is_reused(classification_data, tmp_path, batched_calls):
    X, y = classification_data
    ens = EnsembleClassifier(replicate(SMALL, 2), batched=True, checkpoint_dir=tmp_path)
    first = ens.fit(X, y).predict_proba(X)
    assert len(list(tmp_path.glob("*/manifest.json"))) == 2
    second = ens.fit(X, y).predict_proba(X)
    assert batched_calls == [2]
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("bad", ["yes", 1, None, "Auto"])
def test_bad_batched_value(classification_data, bad):
    X, y = classification_data
    with pytest.raises(
        ValueError,
        match=r"'batched' parameter of EnsembleClassifier must be a str among {'auto'} or an "
        r"instance of 'bool' or an instance of 'numpy.bool'\. Got .* instead",
    ):
        EnsembleClassifier(replicate(SMALL, 2), batched=bad).fit(X, y)
