"""NeuralClassifier / NeuralRegressor behaviour beyond scikit-learn's shared checks."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from torch import nn

from members import MLP, NeuralClassifier, NeuralRegressor

SMALL = {"max_epochs": 20, "module_kwargs": {"hidden": (32,)}}


def test_same_seed_same_predictions_and_global_rng_untouched(classification_data):
    X, y = classification_data
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = NeuralClassifier(random_state=0, **SMALL).fit(X, y).predict_proba(X)
    b = NeuralClassifier(random_state=0, **SMALL).fit(X, y).predict_proba(X)
    c = NeuralClassifier(random_state=1, **SMALL).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert torch.equal(torch.get_rng_state(), state)


def test_string_labels_and_probabilities(classification_data):
    X, y = classification_data
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = NeuralClassifier(random_state=0, **SMALL).fit(X, labels)
    by_index = NeuralClassifier(random_state=0, **SMALL).fit(X, y)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[by_index.predict(X)])
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.score(X, labels) > 0.6  # chance is 1/3


def test_numpy_torch_and_pandas_inputs_agree(classification_data):
    X, y = classification_data
    from_numpy = NeuralClassifier(random_state=0, **SMALL).fit(X, y)
    from_torch = NeuralClassifier(random_state=0, **SMALL).fit(torch.tensor(X), torch.tensor(y))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    from_pandas = NeuralClassifier(random_state=0, **SMALL).fit(frame, pd.Series(y))
    expected = from_numpy.predict_proba(X)
    np.testing.assert_allclose(from_torch.predict_proba(torch.tensor(X)), expected, atol=1e-6)
    np.testing.assert_allclose(from_pandas.predict_proba(frame), expected, atol=1e-6)
    assert list(from_pandas.feature_names_in_) == list(frame.columns)


def test_prediction_does_not_depend_on_batch(classification_data):
    X, y = classification_data
    clf = NeuralClassifier("cnn1d", max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X)[:1], clf.predict_proba(X[:1]))


@pytest.mark.parametrize(
    "module",
    [MLP, lambda n_features, n_outputs: nn.Linear(n_features, n_outputs)],
    ids=["class", "callable"],
)
def test_module_as_class_or_callable(module, classification_data):
    X, y = classification_data
    clf = NeuralClassifier(module, max_epochs=5, random_state=0).fit(X, y)
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_pickle_round_trip(classification_data):
    X, y = classification_data
    clf = NeuralClassifier(random_state=0, **SMALL).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params() == clf.get_params()


def test_regressor_multi_output_and_target_scale(regression_data):
    X, y = regression_data
    Y = np.column_stack([y, 1000.0 * y + 5e4])  # very different scales
    reg = NeuralRegressor(max_epochs=30, random_state=0).fit(X, Y)
    prediction = reg.predict(X)
    assert prediction.shape == Y.shape
    for column in range(2):
        residual = np.mean((prediction[:, column] - Y[:, column]) ** 2)
        assert residual < 0.1 * np.var(Y[:, column])


def test_regressor_without_standardize_learns_raw_targets(regression_data):
    X, y = regression_data
    reg = NeuralRegressor(max_epochs=40, standardize=False, random_state=0).fit(X, y / 100)
    assert reg.score(X, y / 100) > 0.8


def test_quiet_by_default_and_progress_bar_when_verbose(classification_data, capsys):
    X, y = classification_data
    NeuralClassifier(max_epochs=1, random_state=0).fit(X, y)
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""
    NeuralClassifier(max_epochs=1, random_state=0, verbose=True).fit(X, y)
    loud = capsys.readouterr()
    assert "Epoch 0" in loud.out + loud.err


@pytest.mark.parametrize("estimator", [NeuralClassifier, NeuralRegressor])
def test_divergence_is_reported_not_returned(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e6  # badly scaled, and not standardised
    y = (X[:, 0] > 0).astype(int)
    net = estimator("mlp", lr=1e8, standardize=False, max_epochs=5, random_state=0)
    with pytest.raises(
        FloatingPointError,
        match=r"diverged: the loss became (nan|inf|\S+e\+\d+) in epoch \d+, from \S+ at the start; "
        r"lower the learning rate \(lr=1",
    ):
        net.fit(X, y)
    assert not hasattr(net, "model_")


def test_divergence_inside_an_ensemble_names_the_member():
    from ensembles import EnsembleClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * 1e6
    y = (X[:, 0] > 0).astype(int)
    bad = NeuralClassifier("mlp", lr=1e8, standardize=False, max_epochs=5)
    with pytest.raises(FloatingPointError) as info:
        EnsembleClassifier([("exploding", bad)], random_state=0).fit(X, y)
    assert "member 'exploding'" in "".join(info.value.__notes__)


def test_from_checkpoint_of_a_plain_trainer(classification_data, tmp_path):
    import lightning as L

    from members import MemberModule
    from members.data import make_loader

    X, y = classification_data
    module = MemberModule(MLP(8, 3, hidden=(16,)), lr=1e-2)
    trainer = L.Trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, make_loader(X, y, batch_size=32, seed=0))
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    with pytest.raises(ValueError, match="no LightningCLI config.yaml.*pass backbone="):
        NeuralClassifier.from_checkpoint(checkpoint)
    with pytest.raises(FileNotFoundError, match="no such file"):
        NeuralClassifier.from_checkpoint(tmp_path / "none.ckpt", MLP(8, 3, hidden=(16,)))
    clf = NeuralClassifier.from_checkpoint(
        checkpoint, MLP(8, 3, hidden=(16,)), n_features=8, classes=["a", "b", "c"]
    )
    with torch.inference_mode():
        expected = torch.softmax(module(torch.as_tensor(X, dtype=torch.float32)), dim=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), atol=1e-5)
    assert set(clf.predict(X)) <= {"a", "b", "c"} and clf.get_params()["lr"] == 1e-2


def test_fit_is_its_training_plan_run(classification_data):
    """The training seam: a plan trains the same network as fit, and fits nothing itself."""
    from members.training import train_network

    X, y = classification_data
    fitted = NeuralClassifier(max_epochs=3, bootstrap=True, random_state=0).fit(X, y)
    planned = NeuralClassifier(max_epochs=3, bootstrap=True, random_state=0)
    plan = planned.plan_fit(X, y)
    assert plan.inputs.dtype == np.float32 and plan.rows is not None and len(plan.rows) == len(X)
    assert plan.settings == fitted.module_settings() and not hasattr(planned, "model_")
    assert planned.accept(train_network(plan)) is planned
    np.testing.assert_array_equal(planned.predict_proba(X), fitted.predict_proba(X))
    # the plan is a value: it refers to no estimator
    assert not any(value is planned for value in vars(plan).values())


def test_a_finetune_plan_encodes_with_the_fitted_encoding(regression_data):
    X, y = regression_data
    reg = NeuralRegressor(max_epochs=2, random_state=0).fit(X, y)
    mean, scale = reg.y_mean_.copy(), reg.y_scale_.copy()
    plan = reg.plan_finetune(X[:50], y[:50] + 1000.0, max_epochs=1)
    np.testing.assert_array_equal(reg.y_mean_, mean)
    np.testing.assert_array_equal(reg.y_scale_, scale)
    expected = ((y[:50] + 1000.0 - mean) / scale).astype(np.float32)
    np.testing.assert_allclose(plan.targets[0].ravel(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.plan_finetune(X[:, :3], y, max_epochs=1)


def test_each_fit_starts_clean(classification_data, regression_data):
    """A reused callback starts each fit fresh, and no fitted attribute of an earlier fit
    survives a refit."""
    from lightning.pytorch.callbacks import EarlyStopping

    from members import CyclicCosineSchedule, SnapshotCollector

    X, y = classification_data
    stop = EarlyStopping(monitor="train_loss", patience=1, min_delta=10.0)  # stops at epoch 1
    clf = NeuralClassifier(max_epochs=6, callbacks=[stop], random_state=0)
    first = clf.fit(X, y).callbacks_[0].stopped_epoch
    second = clf.fit(X, y).callbacks_[0].stopped_epoch
    assert first == second == 1 and stop.stopped_epoch == 0 and stop.wait_count == 0
    collector = SnapshotCollector(3)
    snap = NeuralClassifier(
        max_epochs=6, scheduler=CyclicCosineSchedule(3), callbacks=[collector], random_state=0
    )
    for _ in range(2):
        assert len(snap.fit(X, y).callbacks_[0].snapshots) == 3
    assert collector.snapshots == []
    Xr, yr = regression_data
    reg = NeuralRegressor(max_epochs=1, random_state=0).fit(Xr, yr)
    assert hasattr(reg, "x_mean_")
    reg.set_params(standardize=False).fit(Xr, yr)
    assert not hasattr(reg, "x_mean_")  # an earlier fit's scaling is gone


def test_precision_and_devices_reach_lightning(classification_data):
    """Issue 16: mixed precision, and one member data-parallel on two (CPU) devices."""
    X, y = classification_data
    bf16 = NeuralClassifier(max_epochs=5, precision="bf16-mixed", accelerator="cpu", random_state=0)
    assert bf16.fit(X, y).score(X, y) > 0.6
    assert next(bf16.model_.parameters()).dtype == torch.float64  # predicts in float64
    with pytest.raises(ValueError, match=r"'precision' parameter .* Got 'half'"):
        NeuralClassifier(precision="half").fit(X, y)
    with pytest.raises(ValueError, match=r"'devices' parameter .* Got 0"):
        NeuralClassifier(devices=0).fit(X, y)


def test_one_member_trains_data_parallel_and_comes_back(classification_data):
    """``devices=2, strategy="ddp_spawn"`` on the CPU (gloo): two processes train one network,
    whose weights return to this process. (This container's shared memory refuses torch's
    default file-descriptor sharing between processes; the file-system strategy works.)"""
    import torch.multiprocessing as mp

    X, y = classification_data
    before = mp.get_sharing_strategy()
    mp.set_sharing_strategy("file_system")
    try:
        clf = NeuralClassifier(
            max_epochs=5, accelerator="cpu", devices=2, strategy="ddp_spawn", random_state=0
        ).fit(X, y)
    finally:
        mp.set_sharing_strategy(before)
    untrained = NeuralClassifier(max_epochs=1, lr=1e-9, accelerator="cpu", random_state=0)
    assert clf.score(X, y) > untrained.fit(X, y).score(X, y) + 0.2
    assert next(clf.model_.parameters()).device.type == "cpu"


# -- loss="gaussian": a mean and a variance per output ----------------------------------------
def _heteroscedastic(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1))
    noise = 0.05 + 0.3 * (x[:, 0] + 1)  # std from 0.05 to 0.65
    return x, np.sin(3 * x[:, 0]) + noise * rng.normal(size=n), noise


def test_gaussian_regressor_learns_the_noise_level():
    X, y, _ = _heteroscedastic(1000, 0)
    reg = NeuralRegressor(loss="gaussian", max_epochs=40, random_state=0).fit(X, y)
    points = np.array([[-0.8], [0.0], [0.8]])
    mean, std = reg.predict(points, return_std=True)
    truth = 0.05 + 0.3 * (points[:, 0] + 1)
    assert mean.shape == std.shape == (3,)
    np.testing.assert_allclose(mean, reg.predict(points))
    np.testing.assert_allclose(std, truth, rtol=0.35)
    assert std[2] > 3 * std[0]
    assert reg.model_(torch.zeros(1, 1, dtype=torch.float64)).shape == (1, 2)


def test_gaussian_regressor_multi_output_and_save_load(tmp_path):
    X, y, _ = _heteroscedastic(200, 1)
    Y = np.c_[y, 10 * y]
    reg = NeuralRegressor(loss="gaussian", max_epochs=3, random_state=0).fit(X, Y)
    mean, std = reg.predict(X[:5], return_std=True)
    assert mean.shape == std.shape == (5, 2) and (std > 0).all()
    # the target scaling applies to the spread too
    assert (std[:, 1] > 5 * std[:, 0]).all()
    loaded = NeuralRegressor.load(reg.save(tmp_path / "reg"))
    for a, b in zip(loaded.predict(X[:5], return_std=True), (mean, std), strict=True):
        np.testing.assert_allclose(a, b)


def test_return_std_needs_a_gaussian_regressor_and_losses_are_per_task():
    X, y, _ = _heteroscedastic(50, 2)
    reg = NeuralRegressor(max_epochs=1, random_state=0).fit(X, y)
    assert not reg.predicts_std
    with pytest.raises(ValueError, match="return_std=True needs .*loss='gaussian'"):
        reg.predict(X, return_std=True)
    with pytest.raises(ValueError, match="'loss' parameter of NeuralClassifier"):
        NeuralClassifier(loss="gaussian", max_epochs=1).fit(X, (y > 0).astype(int))
    with pytest.raises(ValueError, match="'loss' parameter of NeuralRegressor"):
        NeuralRegressor(loss="huber", max_epochs=1).fit(X, y)
