"""A fitted ensemble as one ONNX graph (ensembles.to_onnx): neural and scikit-learn members, the
combiner and the calibration; ONNX Runtime on raw rows returns what predict_proba / predict
(return_std, member_predictions, predict_uncertainty) return. What has no graph form is refused
by name before anything is written."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import (
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge, LogisticRegression, RidgeCV

from combiners import (
    AutoCombiner,
    BaseCombiner,
    EnsembleSelection,
    MeanCombiner,
    StackingCombiner,
    VotingCombiner,
    WeightedCombiner,
)
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    SnapshotEnsembleClassifier,
    to_onnx,
    to_torch,
)
from ensembles.efficient import EFFICIENT_ENSEMBLES
from members import NeuralClassifier, NeuralRegressor, compress
from tests.members.test_export import load_with_torch_alone, serve_without_torch

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
pytest.importorskip("skl2onnx")

X, y = load_digits(return_X_y=True)
X_train, y_train, X_test = X[:700], y[:700], X[700:]
# noisy targets of unit scale: the graph computes in float32 (a noiseless target makes
# BayesianRidge's variances 1e-9, below what float32 resolves)
y_reg = (X[:, 20:28].sum(axis=1) - 40.0) / 20.0
y_reg = y_reg + np.random.default_rng(0).normal(0.0, 0.3, len(y_reg))
NET = {"max_epochs": 3, "random_state": 0}
TOLERANCE = 1e-5
TREES = 1e-4  # skl2onnx sums tree outputs in float32


def classifier_members(trees=True):
    members = [
        ("mlp", NeuralClassifier(**NET)),
        ("cnn", NeuralClassifier("cnn2d", **NET)),
        ("lr", LogisticRegression(max_iter=300)),
    ]
    if trees:
        members.append(("rf", RandomForestClassifier(n_estimators=15, random_state=0)))
    return members


def run(path, rows):
    return ort.InferenceSession(str(path)).run(None, {"X": rows.astype(np.float32)})


@pytest.fixture(scope="module")
def weighted(tmp_path_factory):
    """2 networks + logistic regression + a random forest, learned weights, temperature."""
    ensemble = EnsembleClassifier(
        classifier_members(), combiner=WeightedCombiner(), calibration="temperature", random_state=0
    )
    return ensemble.fit(X_train, y_train)


def test_weighted_ensemble_with_temperature_is_one_graph(weighted, tmp_path):
    path = to_onnx(weighted, tmp_path / "ensemble.onnx", member_outputs=True, uncertainty=True)
    assert weighted.calibrator_ is not None
    for n in (1, 7, len(X_test)):
        proba, members, total, aleatoric, epistemic = run(path, X_test[:n])
        assert proba.shape == (n, 10)
        assert np.abs(proba - weighted.predict_proba(X_test[:n])).max() <= TREES
        assert np.abs(members - weighted.member_predictions(X_test[:n])).max() <= TREES
        parts = weighted.predict_uncertainty(X_test[:n])
        for name, values in zip(parts.columns, (total, aleatoric, epistemic), strict=True):
            assert np.abs(values - parts[name].to_numpy()).max() <= TREES


@pytest.mark.parametrize(
    "combiner",
    [
        StackingCombiner(),
        StackingCombiner(features="logit", passthrough=True),
        MeanCombiner("geometric"),
        MeanCombiner("logit"),
        EnsembleSelection(),
        AutoCombiner(),
    ],
    ids=["stacking", "stacking-logit-passthrough", "geometric", "logit", "selection", "auto"],
)
def test_every_combiner_with_a_graph_form(combiner, tmp_path):
    """Networks and logistic regression (no trees): equal to 1e-5."""
    ensemble = EnsembleClassifier(classifier_members(trees=False), combiner=combiner)
    ensemble.set_params(random_state=0).fit(X_train, y_train)
    [proba] = run(to_onnx(ensemble, tmp_path / "e.onnx"), X_test)
    assert np.abs(proba - ensemble.predict_proba(X_test)).max() <= TOLERANCE


def test_class_weights_shift_the_graph_as_the_ensemble(tmp_path):
    rare = (y_train == 0).astype(int)
    ensemble = EnsembleClassifier(
        classifier_members(trees=False), class_weight="balanced", calibration="temperature"
    ).set_params(random_state=0)
    ensemble.fit(X_train, rare)
    [proba] = run(to_onnx(ensemble, tmp_path / "e.onnx"), X_test)
    assert np.abs(proba - ensemble.predict_proba(X_test)).max() <= TOLERANCE


def test_a_binary_stacking_ensemble_with_gradient_boosting(tmp_path):
    binary = y_train % 2
    members = [
        ("mlp", NeuralClassifier(**NET)),
        ("gb", GradientBoostingClassifier(n_estimators=20, random_state=0)),
    ]
    ensemble = EnsembleClassifier(members, combiner=StackingCombiner(), random_state=0)
    ensemble.fit(X_train, np.where(binary == 1, "odd", "even"))
    [proba] = run(to_onnx(ensemble, tmp_path / "e.onnx"), X_test)
    assert np.abs(proba - ensemble.predict_proba(X_test)).max() <= TREES


def test_voting_agrees_wherever_no_member_ties(tmp_path):
    """A vote follows each member's argmax: where a member's two best classes tie (a random
    forest's 0.45 and 0.45) float32 may break the tie the other way; everywhere else the
    graph's votes are the ensemble's."""
    ensemble = EnsembleClassifier(classifier_members(), combiner=VotingCombiner(), cv=None)
    ensemble.set_params(random_state=0).fit(X_train, y_train)
    proba, members = run(to_onnx(ensemble, tmp_path / "e.onnx", member_outputs=True), X_test)
    top = np.sort(ensemble.member_predictions(X_test), axis=2)
    clear = (top[:, :, -1] - top[:, :, -2] > 1e-5).all(axis=0)
    assert clear.mean() > 0.9
    assert np.abs(proba - ensemble.predict_proba(X_test))[clear].max() <= TOLERANCE


def test_a_regressor_with_variance_calibration_outputs_mean_and_std(tmp_path):
    members = [
        ("gaussian", NeuralRegressor(loss="gaussian", **NET)),
        ("net", NeuralRegressor(**NET)),
        ("ridge", RidgeCV()),
        ("rf", RandomForestRegressor(n_estimators=15, random_state=0)),
    ]
    ensemble = EnsembleRegressor(members, calibration="variance", random_state=0)
    ensemble.fit(X_train, y_reg[:700])
    assert ensemble.calibrator_ is not None
    path = to_onnx(ensemble, tmp_path / "reg.onnx", return_std=True, uncertainty=True)
    for n in (1, 7, len(X_test)):
        mean, std, total, aleatoric, epistemic = run(path, X_test[:n])
        expected_mean, expected_std = ensemble.predict(X_test[:n], return_std=True)
        assert mean.shape == expected_mean.shape == (n,)
        assert np.abs(mean - expected_mean).max() <= TREES
        assert np.abs(std - expected_std).max() <= TREES
        parts = ensemble.predict_uncertainty(X_test[:n])
        for name, values in zip(parts.columns, (total, aleatoric, epistemic), strict=True):
            # variances in the squared units, some far above 1: float32's relative precision
            np.testing.assert_allclose(values, parts[name].to_numpy(), rtol=1e-5, atol=TREES)


def test_a_stacked_regressor_with_two_outputs(tmp_path):
    targets = np.column_stack([y_reg, -y_reg])[:700]
    members = [("net", NeuralRegressor(**NET)), ("rf", RandomForestRegressor(10, random_state=0))]
    ensemble = EnsembleRegressor(members, combiner=StackingCombiner(RidgeCV()), random_state=0)
    ensemble.fit(X_train, targets)
    [prediction] = run(to_onnx(ensemble, tmp_path / "reg.onnx"), X_test)
    assert prediction.shape == (len(X_test), 2)
    assert np.abs(prediction - ensemble.predict(X_test)).max() <= TREES


def test_a_snapshot_ensemble_and_a_network_go_through_the_same_function(tmp_path):
    snapshot = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=4), n_snapshots=2, random_state=0
    )
    snapshot.fit(X_train, y_train)
    [proba] = run(to_onnx(snapshot, tmp_path / "snap.onnx"), X_test)
    assert np.abs(proba - snapshot.predict_proba(X_test)).max() <= TOLERANCE
    net = NeuralClassifier(**NET).fit(X_train, y_train)
    [proba] = run(to_onnx(net, tmp_path / "net.onnx"), X_test)
    assert np.abs(proba - net.predict_proba(X_test)).max() <= TOLERANCE
    with pytest.raises(ValueError, match="outputs of an ensemble's graph"):
        to_onnx(net, tmp_path / "x.onnx", uncertainty=True)


@pytest.mark.parametrize("method", sorted(EFFICIENT_ENSEMBLES))
def test_an_ensemble_inside_one_network_is_one_graph_and_one_program(method, tmp_path):
    classifier = EFFICIENT_ENSEMBLES[method][0]
    model = classifier(NeuralClassifier("cnn1d", **NET), random_state=0).fit(X_train, y_train)
    path = to_onnx(model, tmp_path / "m.onnx", member_outputs=True, uncertainty=True)
    program = to_torch(model).module()
    metadata = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    names = json.loads(metadata["members"])
    assert names == model.ensemble_.output_names_  # method[0], method[1]...
    for n in (1, 97):
        rows = X_test[:n]
        proba, members, *parts = run(path, rows)
        assert np.abs(proba - model.predict_proba(rows)).max() <= TOLERANCE
        assert np.abs(members - model.member_predictions(rows)).max() <= TOLERANCE
        expected = model.predict_uncertainty(rows)[["total", "aleatoric", "epistemic"]]
        assert np.abs(np.column_stack(parts) - expected.to_numpy()).max() <= TOLERANCE
        served = program(torch.as_tensor(rows, dtype=torch.float32)).detach().numpy()
        assert np.abs(served - model.predict_proba(rows)).max() <= TOLERANCE


@pytest.mark.parametrize("method", sorted(EFFICIENT_ENSEMBLES))
def test_a_gaussian_regressor_inside_one_network_exports_its_std(method, tmp_path):
    regressor = EFFICIENT_ENSEMBLES[method][1]
    model = regressor(NeuralRegressor(loss="gaussian", **NET), random_state=0)
    model.fit(X_train, y_reg[:700])
    mean, std = run(to_onnx(model, tmp_path / "m.onnx", return_std=True), X_test)
    expected_mean, expected_std = model.predict(X_test, return_std=True)
    assert np.abs(mean - expected_mean).max() <= TOLERANCE
    assert np.abs(std - expected_std).max() <= TOLERANCE


@pytest.fixture(scope="module")
def in_network_members():
    """Two ensembles inside one network and a snapshot ensemble, fitted once."""
    members = [
        ("packed", EFFICIENT_ENSEMBLES["packed"][0](NeuralClassifier(**NET), random_state=0)),
        ("mc", EFFICIENT_ENSEMBLES["mc_dropout"][0](NeuralClassifier(**NET), random_state=0)),
        ("snap", SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=4), n_snapshots=2)),
    ]
    return [(name, member.fit(X_train, y_train)) for name, member in members]


@pytest.mark.filterwarnings("ignore:.*worse than its best member")
@pytest.mark.parametrize("sub_networks", ["split", "fused"])
def test_a_pool_with_ensembles_inside_networks_and_a_snapshot_ensemble(
    in_network_members, sub_networks, tmp_path
):
    logistic = LogisticRegression(max_iter=300).fit(X_train, y_train)
    pool = EnsembleClassifier(
        [*in_network_members, ("lr", logistic)],
        combiner=WeightedCombiner(),
        sub_networks=sub_networks,
        cv="prefit",
    ).fit(X_train[:300], y_train[:300])  # the weights, learned on these rows
    assert len(pool.output_names_) == (1 + 4 + 16 + 1 if sub_networks == "split" else 4)
    proba, members = run(to_onnx(pool, tmp_path / "pool.onnx", member_outputs=True), X_test)
    assert np.abs(proba - pool.predict_proba(X_test)).max() <= TOLERANCE
    assert np.abs(members - pool.member_predictions(X_test)).max() <= TOLERANCE
    networks = EnsembleClassifier(in_network_members, sub_networks=sub_networks, cv="prefit")
    networks.fit(X_train, y_train)  # no scikit-learn member: a torch program
    served = to_torch(networks).module()(torch.as_tensor(X_test, dtype=torch.float32))
    assert np.abs(served.detach().numpy() - networks.predict_proba(X_test)).max() <= TOLERANCE


def test_an_int8_ensemble_graph_keeps_its_accuracy(weighted, tmp_path):
    fp32 = to_onnx(weighted, tmp_path / "fp32.onnx")
    int8 = to_onnx(weighted, tmp_path / "int8.onnx", quantize="int8", X=X_train)
    assert int8.stat().st_size < fp32.stat().st_size
    [proba] = run(int8, X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(proba.argmax(axis=1) == weighted.predict(X_test)) >= 0.97


class Opaque(ClassifierMixin, BaseEstimator):
    """A user's classifier that skl2onnx has no converter for."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


class MaxCombiner(BaseCombiner):
    """A user's rule with no graph form."""

    def _combine(self, predictions, X=None):
        return predictions.max(axis=0)


def test_what_has_no_graph_form_is_refused_by_name_and_nothing_is_written(tmp_path):
    target = tmp_path / "e.onnx"
    opaque = EnsembleClassifier([("lr", LogisticRegression()), ("mine", Opaque())], cv=None)
    opaque.fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"member 'mine' \(Opaque\) cannot be converted"):
        to_onnx(opaque, target)
    rule = EnsembleClassifier([("lr", LogisticRegression())], combiner=MaxCombiner(), cv=None)
    rule.fit(X_train, y_train)
    with pytest.raises(ValueError, match="the combiner MaxCombiner has no graph form"):
        to_onnx(rule, target)
    forest = StackingCombiner(RandomForestClassifier(n_estimators=5, random_state=0))
    stacked = EnsembleClassifier([("lr", LogisticRegression())], combiner=forest, random_state=0)
    stacked.fit(X_train, y_train)
    with pytest.raises(ValueError, match="final_estimator RandomForestClassifier has no graph"):
        to_onnx(stacked, target)
    net = NeuralClassifier(**NET).fit(X_train, y_train)
    small = EnsembleClassifier([("small", compress(net, quantize="int8"))], cv="prefit")
    small.fit(X_train[:50], y_train[:50])
    with pytest.raises(ValueError, match="member 'small' holds a compressed"):
        to_onnx(small, target)
    with pytest.raises(NotFittedError):
        to_onnx(EnsembleClassifier([("lr", LogisticRegression())]), target)
    with pytest.raises(NotFittedError):
        to_onnx(SnapshotEnsembleClassifier(NeuralClassifier()), target)
    with pytest.raises(TypeError, match="got LogisticRegression"):
        to_onnx(LogisticRegression().fit(X_train, y_train), target)
    with pytest.raises(ValueError, match="return_std=True is for a regressor"):
        to_onnx(opaque.set_params(mine="drop").fit(X_train, y_train), target, return_std=True)
    bayes = EnsembleRegressor([("bayes", BayesianRidge())], cv=None).fit(X_train, y_reg[:700])
    to_onnx(bayes, tmp_path / "bayes.onnx")  # its mean converts
    with pytest.raises(ValueError, match="member 'bayes' .* predicts its own standard deviation"):
        to_onnx(bayes, target, return_std=True)
    (tmp_path / "bayes.onnx").unlink()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        to_onnx(rule, tmp_path / "missing" / "e.onnx")
    assert not list(tmp_path.iterdir())


def test_a_wrong_number_of_features_is_refused_by_the_graph(weighted, tmp_path):
    path = to_onnx(weighted, tmp_path / "e.onnx")
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        run(path, X_test[:, :10])


def test_the_ensemble_file_runs_with_onnxruntime_and_numpy_alone(weighted, tmp_path):
    path = to_onnx(weighted, tmp_path / "e.onnx")
    proba = serve_without_torch(path, X_test, tmp_path)
    assert np.abs(proba - weighted.predict_proba(X_test)).max() <= TREES


def neural_pool(task="classification"):
    if task == "classification":
        return [
            (f"net{seed}", NeuralClassifier(**{**NET, "random_state": seed})) for seed in (0, 1)
        ]
    return [
        ("gaussian", NeuralRegressor(loss="gaussian", **NET)),
        ("net", NeuralRegressor("cnn1d", **NET)),
    ]


def test_an_ensemble_of_networks_is_one_torch_export_program(tmp_path):
    ensemble = EnsembleClassifier(
        neural_pool(), combiner=WeightedCombiner(), calibration="temperature", random_state=0
    ).fit(X_train, y_train)
    program = to_torch(ensemble, tmp_path / "e.pt2", member_outputs=True, uncertainty=True)
    rows = torch.as_tensor(X_test, dtype=torch.float32)
    with torch.no_grad():
        proba, members, total, aleatoric, epistemic = program.module()(rows)
    assert np.abs(proba.numpy() - ensemble.predict_proba(X_test)).max() <= TOLERANCE
    assert np.abs(members.numpy() - ensemble.member_predictions(X_test)).max() <= TOLERANCE
    parts = ensemble.predict_uncertainty(X_test)
    assert np.abs(epistemic.numpy() - parts["epistemic"].to_numpy()).max() <= TOLERANCE
    proba = load_with_torch_alone(tmp_path / "e.pt2", X_test, tmp_path)
    assert np.abs(proba - ensemble.predict_proba(X_test)).max() <= TOLERANCE


def test_a_regressor_program_returns_the_calibrated_std(tmp_path):
    ensemble = EnsembleRegressor(neural_pool("regression"), calibration="variance", random_state=0)
    ensemble.fit(X_train, y_reg[:700])
    with torch.no_grad():
        mean, std = to_torch(ensemble, return_std=True).module()(
            torch.as_tensor(X_test, dtype=torch.float32)
        )
    expected_mean, expected_std = ensemble.predict(X_test, return_std=True)
    assert np.abs(mean.numpy() - expected_mean).max() <= TOLERANCE
    assert np.abs(std.numpy() - expected_std).max() <= TOLERANCE


def test_a_scikit_learn_member_has_no_torch_form(tmp_path):
    ensemble = EnsembleClassifier(
        [("net", NeuralClassifier(**NET)), ("lr", LogisticRegression(max_iter=300))], cv=None
    ).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"member 'lr' \(LogisticRegression\) .* no torch form"):
        to_torch(ensemble, tmp_path / "e.pt2")
    assert not list(tmp_path.iterdir())


def test_a_read_only_folder_is_an_error_naming_the_path_and_keeps_the_old_file(
    weighted, tmp_path, monkeypatch
):
    """Writing goes through a temporary sibling and a rename: a folder that refuses the write
    (simulated: this test may run as root, whom chmod does not stop) leaves the user's file as
    it was and no temporary file."""
    from pathlib import Path

    existing = tmp_path / "e.onnx"
    existing.write_bytes(b"the user's file")

    def refuse(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    with pytest.raises(PermissionError, match=r"cannot write path='.*e\.onnx': Permission denied"):
        to_onnx(weighted, existing, overwrite=True)
    monkeypatch.undo()
    assert existing.read_bytes() == b"the user's file"
    assert [p.name for p in tmp_path.iterdir()] == ["e.onnx"]
