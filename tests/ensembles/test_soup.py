"""Model soups and interpolation curves (ensembles.soup): uniform and greedy soups of
fine-tunes, aligned averages of independent networks, batch-norm statistics recomputed, and the
hostile cases (members that cannot be averaged, held-out rows of one class, nothing a user
passed modified)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from torch import nn

from combiners.metrics import nll
from ensembles import EnsembleClassifier, SnapshotEnsembleClassifier, loss_barrier, soup
from members import NeuralClassifier, NeuralRegressor, Packed, to_onnx
from members.persistence import load, save

X, y = load_digits(return_X_y=True)
X_train, y_train = X[:700], y[:700]
X_val, y_val = X[700:1000], y[700:1000]
X_test, y_test = X[1000:], y[1000:]
MLP = {"module_kwargs": {"hidden": (64,)}}
CNN = {"module_kwargs": {"channels": (8, 16)}}


@pytest.fixture(scope="module")
def tunes():
    parent = NeuralClassifier("mlp", **MLP, max_epochs=8, random_state=0).fit(X_train, y_train)
    return [
        NeuralClassifier("mlp", **MLP, init=parent, max_epochs=2, lr=lr, random_state=seed).fit(
            X_train, y_train
        )
        for seed, lr in [(1, 1e-3), (2, 3e-3), (3, 1e-2), (4, 3e-2)]
    ]


@pytest.fixture(scope="module")
def independent():
    return [
        NeuralClassifier("mlp", **MLP, max_epochs=8, random_state=seed).fit(X_train, y_train)
        for seed in (10, 11)
    ]


def weights_of(estimator):
    return {k: v.clone() for k, v in estimator.model_.state_dict().items()}


def held_out_loss(estimator, X_rows=X_val, y_rows=y_val):
    return nll(y_rows, estimator.predict_proba(X_rows))


def test_a_uniform_soup_is_the_mean_of_the_weights(tunes):
    result = soup(tunes, method="uniform")
    assert isinstance(result, NeuralClassifier) and result is not tunes[0]
    for key, value in result.model_.state_dict().items():
        expected = sum(t.model_.state_dict()[key] for t in tunes) / len(tunes)
        torch.testing.assert_close(value, expected)
    assert result.ingredients_ == [f"members[{i}]" for i in range(4)]
    assert result.score(X_test, y_test) > 0.85


def test_a_weighted_soup_is_the_weighted_mean_and_leaves_out_members_of_weight_zero(tunes):
    result = soup(tunes, method="uniform", weights=[3, 1, 0, 0])
    for key, value in result.model_.state_dict().items():
        expected = (
            0.75 * tunes[0].model_.state_dict()[key] + 0.25 * tunes[1].model_.state_dict()[key]
        )
        torch.testing.assert_close(value, expected)
    assert result.ingredients_ == ["members[0]", "members[1]"]


def test_a_greedy_soup_is_never_worse_on_the_held_out_rows_than_its_best_member(tunes):
    losses = [held_out_loss(t) for t in tunes]
    result = soup(tunes, X_val, y_val)
    best = int(np.argmin(losses))
    assert result.ingredients_[0] == f"members[{best}]"
    assert held_out_loss(result) <= min(losses)
    # each ingredient joined because the soup's held-out loss fell: dropping the last one
    # raises it again
    if len(result.ingredients_) > 1:
        fewer = soup([tunes[int(n[8:-1])] for n in result.ingredients_[:-1]], method="uniform")
        assert held_out_loss(fewer) > held_out_loss(result)


def test_soups_modify_nothing_a_user_passed(tunes, independent):
    before = [weights_of(t) for t in [*tunes, *independent]]
    rows = X_val.copy()
    soup(tunes, X_val, y_val)
    soup(independent, method="uniform", align="weights")
    soup(independent, method="uniform", align="activations", X_train=rows)
    loss_barrier(*independent, X_val, y_val, steps=3, align="weights")
    for estimator, weights in zip([*tunes, *independent], before, strict=True):
        for key, value in estimator.model_.state_dict().items():
            assert torch.equal(value, weights[key])
    assert np.array_equal(rows, X_val)


@pytest.mark.parametrize("align", ["weights", "activations"])
def test_alignment_lets_independent_networks_be_averaged(independent, align):
    naive = soup(independent, method="uniform")
    rows = {"X_train": X_train} if align == "activations" else {}
    aligned = soup(independent, method="uniform", align=align, **rows)
    assert held_out_loss(aligned) < held_out_loss(naive)
    naive_curve = loss_barrier(*independent, X_val, y_val, steps=5)
    aligned_curve = loss_barrier(*independent, X_val, y_val, steps=5, align=align, **rows)
    assert aligned_curve.barrier < naive_curve.barrier
    assert aligned_curve.midpoint_ratio < naive_curve.midpoint_ratio
    # the curve's ends are the two networks
    assert naive_curve.loss[0] == pytest.approx(held_out_loss(independent[0]))
    assert aligned_curve.loss[-1] == pytest.approx(held_out_loss(independent[1]), rel=1e-6)


def test_batch_norm_statistics_are_recomputed_on_the_training_rows():
    networks = [
        NeuralClassifier("cnn1d", **CNN, max_epochs=2, random_state=seed).fit(X_train, y_train)
        for seed in (0, 1)
    ]
    averaged = soup(networks, method="uniform")
    rows = X_train[:512]  # one batch: the statistics are the rows' own
    refreshed = soup(networks, method="uniform", X_train=rows)
    mean = averaged.model_.features[1].running_mean
    assert not torch.allclose(refreshed.model_.features[1].running_mean, mean)
    first = refreshed.model_.features[0]
    inputs = torch.from_numpy(refreshed.network_inputs(rows)).double().reshape(len(rows), 1, -1)
    torch.testing.assert_close(
        refreshed.model_.features[1].running_mean,
        first(inputs).mean(dim=(0, 2)),
    )
    with pytest.warns(UserWarning, match="pass X_train"):
        soup(networks, method="uniform", align="weights")


def test_one_member_is_its_own_soup(tunes):
    result = soup(tunes[:1], method="uniform")
    np.testing.assert_allclose(result.predict_proba(X_test), tunes[0].predict_proba(X_test))
    assert soup(tunes[:1], X_val, y_val).ingredients_ == ["members[0]"]


def my_network(n_features, n_outputs):
    return nn.Sequential(
        nn.Linear(n_features, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, n_outputs)
    )


@pytest.fixture(scope="module")
def others(tunes):
    return {
        "wider": NeuralClassifier("mlp", module_kwargs={"hidden": (32,)}, max_epochs=1).fit(
            X_train, y_train
        ),
        "gelu": NeuralClassifier(
            "mlp", module_kwargs={"hidden": (64,), "activation": "gelu"}, max_epochs=1
        ).fit(X_train, y_train),
        "regressor": NeuralRegressor("mlp", **MLP, max_epochs=1).fit(
            X_train, y_train.astype(float)
        ),
        "sklearn": LogisticRegression(max_iter=50).fit(X_train, y_train),
        "unfitted": NeuralClassifier("mlp", **MLP),
        "packed": NeuralClassifier(Packed("mlp", n_members=2), max_epochs=1).fit(X_train, y_train),
        "other rows": NeuralClassifier("mlp", **MLP, max_epochs=1).fit(
            X_train[:300], y_train[:300]
        ),
        "fewer classes": NeuralClassifier("mlp", **MLP, max_epochs=1).fit(
            X_train[y_train < 9], y_train[y_train < 9]
        ),
    }


@pytest.mark.parametrize(
    ("other", "error", "match"),
    [
        ("wider", ValueError, r"module_kwargs=\{'hidden': \(32,\)\}"),
        ("gelu", ValueError, "activation"),
        ("regressor", TypeError, "NeuralRegressor but a NeuralClassifier|NeuralClassifier"),
        ("sklearn", TypeError, "LogisticRegression; a soup averages networks' weights"),
        ("unfitted", Exception, "not fitted"),
        ("packed", ValueError, "ensemble inside one network"),
        ("other rows", ValueError, "scales its inputs"),
        ("fewer classes", ValueError, "classes differs"),
    ],
)
def test_members_that_cannot_be_averaged_are_refused_by_name(tunes, others, other, error, match):
    with pytest.raises(error, match=match) as caught:
        soup([tunes[0], ("suspect", others[other])], method="uniform")
    assert "suspect" in str(caught.value) or other == "unfitted"


def test_a_network_the_alignment_does_not_know_is_averaged_without_it():
    networks = [
        NeuralClassifier(my_network, max_epochs=1, random_state=s).fit(X_train, y_train)
        for s in (0, 1)
    ]
    assert soup(networks, method="uniform").predict(X_test).shape == (len(X_test),)
    with pytest.raises(ValueError, match="LayerNorm.*soup without align"):
        soup(networks, method="uniform", align="weights")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "greedy"}, "needs held-out rows"),
        ({"method": "uniform", "X": X_val, "y": y_val}, "takes no held-out rows"),
        ({"method": "best"}, "method must be one of"),
        ({"method": "uniform", "align": "neurons"}, "align must be None, 'weights' or"),
        ({"method": "uniform", "align": "activations"}, "align='activations'.*pass X_train"),
        ({"X": X_val[y_val == 3], "y": y_val[y_val == 3]}, "one class only"),
        ({"X": X_val, "y": y_val, "sample_weight": np.ones(3)}, "one weight per held-out row"),
        ({"X": X_val[:, :10], "y": y_val}, "features"),
        ({"X": X_val, "y": y_val, "weights": [1, 1, 1, 1]}, "weights are for method='uniform'"),
        ({"method": "uniform", "weights": [1, 2]}, "one non-negative weight per member"),
        ({"method": "uniform", "weights": [1, -1, 1, 1]}, "one non-negative weight per member"),
        ({"method": "uniform", "weights": [0, 0, 0, 0]}, "must not all be 0"),
    ],
    ids=[
        "no-rows",
        "uniform-rows",
        "method",
        "align",
        "activations-without-rows",
        "one-class",
        "weights",
        "features",
        "greedy-weights",
        "weights-length",
        "weights-negative",
        "weights-zero",
    ],
)
def test_bad_options_are_clear_errors(tunes, kwargs, match):
    with pytest.raises(ValueError, match=match):
        soup(tunes, **kwargs)


@pytest.mark.parametrize("members", [[], "mlp", NeuralClassifier()], ids=["empty", "str", "one"])
def test_members_must_be_a_list_of_networks(members):
    with pytest.raises((TypeError, ValueError), match="members"):
        soup(members, method="uniform")


def test_loss_barrier_checks_its_options(independent):
    with pytest.raises(ValueError, match="steps must be an int >= 3"):
        loss_barrier(*independent, X_val, y_val, steps=2)


def test_a_soup_saves_loads_exports_and_teaches_like_any_network(tunes, tmp_path):
    result = soup(tunes, X_val, y_val)
    save(result, tmp_path / "soup")
    loaded = load(tmp_path / "soup")
    np.testing.assert_allclose(loaded.predict_proba(X_test), result.predict_proba(X_test))
    assert loaded.ingredients_ == result.ingredients_
    ort = pytest.importorskip("onnxruntime")
    path = to_onnx(result, tmp_path / "soup.onnx")
    (proba,) = ort.InferenceSession(str(path)).run(None, {"X": X_test.astype(np.float32)})
    np.testing.assert_allclose(proba, result.predict_proba(X_test), atol=1e-5)
    student = NeuralClassifier("mlp", **MLP, max_epochs=15, random_state=0)
    student.fit_distill(X_train, result.predict_proba(X_train), y_train)
    assert (student.predict(X_test) == result.predict(X_test)).mean() > 0.85


def test_the_ensembles_make_soups_of_their_members(tunes):
    pool = EnsembleClassifier([(f"tune{i}", t) for i, t in enumerate(tunes)], cv="prefit").fit(
        X_val, y_val
    )
    result = pool.soup(X_val, y_val)
    assert result.ingredients_[0].startswith("tune")
    mixed = EnsembleClassifier(
        [("net", tunes[0]), ("lr", LogisticRegression(max_iter=50).fit(X_train, y_train))],
        cv="prefit",
    ).fit(X_val, y_val)
    with pytest.raises(TypeError, match="member 'lr' is a LogisticRegression"):
        mixed.soup(method="uniform")
    assert mixed.soup(method="uniform", members=["net"]).ingredients_ == ["net"]
    snapshots = SnapshotEnsembleClassifier(
        NeuralClassifier("mlp", **MLP, max_epochs=6, random_state=0), n_snapshots=3
    ).fit(X_train, y_train)
    averaged = snapshots.soup(method="uniform", X_train=X_train)
    assert averaged.ingredients_ == ["snapshot0", "snapshot1", "snapshot2"]
    assert averaged.score(X_test, y_test) > 0.8


def test_a_regressor_soup_chooses_on_the_held_out_rmse():
    from sklearn.datasets import make_regression

    Xr, yr = make_regression(n_samples=300, n_features=8, noise=5.0, random_state=0)
    parent = NeuralRegressor("mlp", **MLP, max_epochs=10, random_state=0).fit(Xr[:200], yr[:200])
    tunes = [
        NeuralRegressor("mlp", **MLP, init=parent, max_epochs=2, lr=lr, random_state=1).fit(
            Xr[:200], yr[:200]
        )
        for lr in (1e-4, 1e-2)
    ]
    result = soup(tunes, Xr[200:250], yr[200:250])
    assert isinstance(result, NeuralRegressor)

    def rmse(estimator):
        return float(np.sqrt(np.mean((estimator.predict(Xr[200:250]) - yr[200:250]) ** 2)))

    assert rmse(result) <= min(rmse(t) for t in tunes) + 1e-6
    assert result.predict(Xr[250:]).shape == (50,)


def test_a_search_over_fine_tunes_gives_a_pool_to_soup(tunes):
    """The search's trials of a template with ``init`` are fine-tunes of one network."""
    from ensembles import EnsembleSearchClassifier

    parent = tunes[0].init
    template = NeuralClassifier("mlp", **MLP, init=parent, max_epochs=2)
    search = EnsembleSearchClassifier(
        template, space={"lr": [1e-4, 1e-3, 1e-2]}, n_trials=3, ensemble_size=2, random_state=0
    ).fit(X_train, y_train)
    assert all(member.init is parent for member in search.members_)
    result = search.soup(method="uniform", X_train=X_train)
    assert result.score(X_test, y_test) > 0.85
