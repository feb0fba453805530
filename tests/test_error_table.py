"""Issue 15's error table: what a hostile or careless user does -> the error they get.

Each row is ``(id, action, exception type, message fragment)``. ``action(tmp_path)`` does one
wrong thing: a bad parameter, bad data, a member that breaks its contract, a damaged or crafted
file, an exploding loss. The error must be raised early, be of the stated type (scikit-learn's
``InvalidParameterError`` is both a ``ValueError`` and a ``TypeError``), and its message must
name what was wrong: the parameter, member or file, what was expected and what was received.
The CLI rows at the end check the same for ``ensembles-study``: exit status and one line.
"""

from __future__ import annotations

import functools
import json
import re
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from torch import nn

from combiners import (
    EnsembleSelection,
    MeanCombiner,
    StackingCombiner,
    TemperatureScaling,
    WeightedCombiner,
)
from ensembles import EnsembleClassifier, EnsembleRegressor, SnapshotEnsembleClassifier
from experiments.study import main
from members import NeuralClassifier, NeuralRegressor, persistence

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 4))
y = np.tile([0, 1], 20)
y_reg = rng.normal(size=40)


def nan_metric(y_true, fused):
    """A user's selection metric that returns NaN (a division by zero, say)."""
    return float("nan")


def with_value(value, row=3, column=1, base=X):
    data = base.copy()
    data[row, column] = value
    return data


def net(**kwargs):
    return NeuralClassifier(max_epochs=1, **kwargs)


def fit(estimator, X_=X, y_=y):
    return lambda tmp: estimator.fit(X_, y_)


def fit_net(**kwargs):
    return fit(net(**kwargs))


def backbone(module, **module_kwargs):
    return fit_net(module=module, module_kwargs=module_kwargs)


@functools.cache
def fitted():
    """A small fitted classifier, and its save to copy and damage."""
    return net(module_kwargs={"hidden": (4,)}, random_state=0).fit(X, y)


def damaged_save(tmp, damage):
    folder = persistence.save(fitted(), tmp / "save")
    damage(folder)
    return lambda: persistence.load(folder)


def load_damaged(damage):
    return lambda tmp: damaged_save(tmp, damage)()


def flip_a_byte(name):
    def damage(folder):
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / name).write_bytes(bytes(data))

    return damage


def as_version_1(damage):
    """A save written before checksums (format version 1), then damaged: the error must still
    name the file."""

    def both(folder):
        manifest = json.loads((folder / "manifest.json").read_text())
        del manifest["files"], manifest["metadata"]
        manifest["format_version"] = 1
        (folder / "manifest.json").write_text(json.dumps(manifest))
        damage(folder)

    return both


def truncate(name):
    def damage(folder):
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])

    return damage


def ensemble(*members, kind=EnsembleClassifier, **kwargs):
    return kind(list(members) or [("a", LogisticRegression()), ("b", net())], **kwargs)


class HardVoter(ClassifierMixin, BaseEstimator):
    """A classifier with hard predictions only; ``mode="unknown-class"`` predicts a label it
    never saw."""

    def __init__(self, mode="fine"):
        self.mode = mode

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), 7 if self.mode == "unknown-class" else self.classes_[0])


class Misbehaving(HardVoter):
    """A classifier whose predict_proba breaks the contract as ``mode`` says."""

    def predict_proba(self, X):
        k = len(self.classes_)
        proba = np.full((len(X), k), 1.0 / k)
        if self.mode == "sum-to-two":
            return 2 * proba
        if self.mode == "nan":
            proba[5, 0] = np.nan
        if self.mode == "negative":
            proba[:, 0], proba[:, 1] = -0.5, 1.5
        if self.mode == "narrow":
            return proba[:, :1]
        if self.mode == "text":
            return np.array([["a"] * k] * len(X))
        return proba


class WideRegressor(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.zeros((len(X), 3))


def ensemble_with(member, **kwargs):
    return fit(ensemble(("lr", LogisticRegression()), ("odd", member), **kwargs))


def predict_with(estimator, X_):
    return lambda tmp: estimator.fit(X, y).predict_proba(X_)


def wide_network(n_features, n_outputs):
    return nn.Linear(n_features, n_outputs + 1)


def wrong_input_network(n_features, n_outputs):
    return nn.Linear(n_features + 3, n_outputs)


def not_a_network(n_features, n_outputs):
    return "a network"


def a_tuple_network(n_features, n_outputs):
    return nn.Sequential(nn.Linear(n_features, n_outputs), TupleOut())


class TupleOut(nn.Module):
    def forward(self, x):
        return x, x


digits_X, digits_y = load_digits(return_X_y=True)
digits_X = StandardScaler().fit_transform(digits_X)[:300]
digits_y = digits_y[:300]


def web_app(tmp):
    """A user's folder that happens to hold a ``manifest.json``."""
    (tmp / "app" / "src").mkdir(parents=True)
    (tmp / "app" / "manifest.json").write_text('{"name": "my web app"}')
    (tmp / "app" / "index.html").write_text("<html></html>")
    return tmp / "app"


def malicious_checkpoint(tmp):
    checkpoint = tmp / "run" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, checkpoint)
    (tmp / "run" / "config.yaml").write_text(
        "model:\n  backbone:\n    class_path: os.system\n    init_args: {command: 'touch x'}\n"
    )
    return lambda: NeuralClassifier.from_checkpoint(checkpoint)


# fmt: off
CASES = [
    # -- item 8: parameters and backbone options ----------------------------------------------
    ("channels-int", backbone("cnn1d", channels=64), ValueError, r"'channels' parameter of CNN1d must be a non-empty list or tuple of ints >= 1\. Got 64"),  # noqa: E501
    ("hidden-str", backbone("mlp", hidden="x"), ValueError, r"'hidden' parameter of MLP .* Got 'x'"),  # noqa: E501
    ("hidden-zero", backbone("mlp", hidden=(8, 0)), ValueError, r"'hidden' parameter of MLP .* ints >= 1\. Got \(8, 0\)"),  # noqa: E501
    ("kernel-size-0", backbone("cnn1d", kernel_size=0), ValueError, r"'kernel_size' parameter of CNN1d must be an int in the range \[1, inf\)\. Got 0"),  # noqa: E501
    ("dropout-1.5", backbone("mlp", dropout=1.5), ValueError, r"'dropout' parameter of MLP must be a float in the range \[0\.0, 1\.0\)\. Got 1\.5"),  # noqa: E501
    ("activation", backbone("mlp", activation="swish"), ValueError, r"'activation' parameter of MLP .*'relu'.* Got 'swish'"),  # noqa: E501
    ("batch-norm-str", backbone("mlp", batch_norm="yes"), TypeError, r"'batch_norm' parameter of MLP must be an instance of 'bool'"),  # noqa: E501
    ("resnet-blocks-0", backbone("resnet", blocks_per_stage=0), ValueError, r"'blocks_per_stage' parameter of ResNet must be an int in the range \[1, inf\)\. Got 0"),  # noqa: E501
    ("cnn2d-not-square", fit(net(module="cnn2d"), X[:, :3]), ValueError, r"cnn2d needs input_shape=\(height, width\) or \(channels, height, width\): n_features=3 is not a square number"),  # noqa: E501
    ("unknown-kwarg", backbone("mlp", width=3), ValueError, r"module_kwargs \['width'\] do not fit 'mlp'"),  # noqa: E501
    ("lr-nan", fit_net(lr=float("nan")), ValueError, r"'lr' parameter of NeuralClassifier must be a float in the range \(0\.0, inf\)\. Got nan"),  # noqa: E501
    ("lr-inf", fit_net(lr=float("inf")), ValueError, r"'lr' parameter .* Got inf"),
    ("lr-zero", fit_net(lr=0.0), ValueError, r"'lr' parameter .* Got 0\.0"),
    ("lr-str", fit_net(lr="0.1"), TypeError, r"'lr' parameter .* Got '0\.1'"),
    ("weight-decay-negative", fit_net(weight_decay=-1.0), ValueError, r"'weight_decay' parameter .* \[0(\.0)?, inf\)\. Got -1\.0"),  # noqa: E501
    ("max-epochs-float", lambda tmp: NeuralClassifier(max_epochs=1.5).fit(X, y), TypeError, r"'max_epochs' parameter .* int .* Got 1\.5"),  # noqa: E501
    ("batch-size-str", fit_net(batch_size="32"), TypeError, r"'batch_size' parameter .* Got '32'"),  # noqa: E501
    ("optimizer-case", fit_net(optimizer="Adam"), ValueError, r"'optimizer' parameter .* Got 'Adam'"),  # noqa: E501
    ("scheduler", fit_net(scheduler="linear"), ValueError, r"'scheduler' parameter .* Got 'linear'"),  # noqa: E501
    ("callbacks-not-list", fit_net(callbacks=EarlyStopping("loss")), TypeError, r"'callbacks' parameter of NeuralClassifier must be a list of lightning\.pytorch\.callbacks\.Callback instances or None\. Got <lightning.*EarlyStopping"),  # noqa: E501
    ("callbacks-items", fit_net(callbacks=[1]), TypeError, r"'callbacks' parameter .*Callback instances or None\. Got \[1\]"),  # noqa: E501
    ("standardize-str", fit_net(standardize="yes"), TypeError, r"'standardize' parameter .* Got 'yes'"),  # noqa: E501
    ("bootstrap-str", fit_net(bootstrap="no"), TypeError, r"'bootstrap' parameter .* Got 'no'"),
    ("accelerator-tpu", fit_net(accelerator="tpu"), ValueError, r"NeuralClassifier\(accelerator='tpu'\): this machine has no tpu device; available here: \['cpu'"),  # noqa: E501
    ("accelerator-typo", fit_net(accelerator="cpux"), ValueError, r"'accelerator' parameter .* Got 'cpux'"),  # noqa: E501
    ("precision-half", fit_net(precision="half"), ValueError, r"'precision' parameter of NeuralClassifier must be a str among .*'bf16-mixed'.* Got 'half'"),  # noqa: E501
    ("devices-0", fit_net(devices=0), ValueError, r"'devices' parameter of NeuralClassifier .* Got 0"),  # noqa: E501
    ("strategy-int", fit_net(strategy=2), TypeError, r"'strategy' parameter of NeuralClassifier must be an instance of 'str'\. Got 2"),  # noqa: E501
    ("random-state-str", fit_net(random_state="seed"), ValueError, r"'random_state' parameter .* Got 'seed'"),  # noqa: E501
    ("log-dir-int", fit_net(log_dir=3), TypeError, r"'log_dir' parameter .* Got 3"),
    ("verbose-str", fit_net(verbose="loud"), ValueError, r"'verbose' parameter .* Got 'loud'"),
    ("module-unknown", fit_net(module="transformer"), ValueError, r"'module' parameter .* registered backbones .* Got 'transformer'"),  # noqa: E501
    ("module-int", fit_net(module=3), TypeError, r"'module' parameter .* Got 3"),
    ("module-kwargs-list", fit_net(module_kwargs=[1]), TypeError, r"'module_kwargs' parameter of NeuralClassifier must be an instance of 'dict' or None\. Got \[1\]"),  # noqa: E501
    ("regressor-lr-nan", fit(NeuralRegressor(lr=float("nan")), X, y_reg), ValueError, r"'lr' parameter of NeuralRegressor"),  # noqa: E501
    # -- item 8: members, combiners and meta-learners of the wrong kind ------------------------
    ("combiner-class", fit(ensemble(combiner=MeanCombiner)), TypeError, r"'combiner' parameter of EnsembleClassifier must be an instance of 'combiners\.base\.BaseCombiner' or None\. Got <class 'combiners\.mean\.MeanCombiner'>"),  # noqa: E501
    ("combiner-str", fit(ensemble(combiner="mean")), TypeError, r"'combiner' parameter .* Got 'mean'"),  # noqa: E501
    ("regressor-in-classifier", fit(ensemble(("r", Ridge()), ("lr", LogisticRegression()))), TypeError, r"member 'r' of EnsembleClassifier is a regressor \(Ridge\)"),  # noqa: E501
    ("classifier-in-regressor", fit(ensemble(("r", Ridge()), ("lr", LogisticRegression()), kind=EnsembleRegressor), X, y_reg), TypeError, r"member 'lr' of EnsembleRegressor is a classifier \(LogisticRegression\)"),  # noqa: E501
    ("classifier-meta-learner", fit(ensemble(("r", Ridge()), ("o", LinearRegression()), kind=EnsembleRegressor, combiner=StackingCombiner(LogisticRegression())), X, y_reg), TypeError, r"for regression, final_estimator must be a regressor; got the classifier LogisticRegression"),  # noqa: E501
    ("regressor-meta-learner", fit(ensemble(combiner=StackingCombiner(Ridge()))), TypeError, r"for classification, final_estimator must be a classifier with predict_proba; got Ridge"),  # noqa: E501
    ("members-empty", fit(EnsembleClassifier([])), ValueError, r"members must be a non-empty list of \(name, estimator\) pairs; got \[\]"),  # noqa: E501
    ("members-duplicate", fit(ensemble(("a", net()), ("a", net()))), ValueError, r"member names must be unique; got duplicates \['a'\]"),  # noqa: E501
    ("member-int", fit(ensemble(("a", net()), ("b", 42))), TypeError, r"member 'b' must be a scikit-learn estimator .* got int"),  # noqa: E501
    ("member-not-pair", fit(EnsembleClassifier([net()])), TypeError, r"must be a \(name, estimator\) pair"),  # noqa: E501
    ("members-all-drop", fit(ensemble(("a", "drop"))), ValueError, r"all members are 'drop'"),
    ("member-name-dunder", fit(ensemble(("a__b", net()))), ValueError, r"without '__'; got 'a__b'"),  # noqa: E501
    ("member-name-clash", fit(ensemble(("cv", net()))), ValueError, r"member names \['cv'\] clash with constructor parameter names"),  # noqa: E501
    ("cv-1", fit(ensemble(combiner=WeightedCombiner(), cv=1)), ValueError, r"'cv' parameter of EnsembleClassifier .* Got 1"),  # noqa: E501
    ("cv-1.5", fit(ensemble(combiner=WeightedCombiner(), cv=1.5)), ValueError, r"'cv' parameter .* Got 1\.5"),  # noqa: E501
    ("cv-str", fit(ensemble(combiner=WeightedCombiner(), cv="auto")), ValueError, r"'cv' parameter .* Got 'auto'"),  # noqa: E501
    ("batched-str", fit(ensemble(batched="yes")), ValueError, r"'batched' parameter .* Got 'yes'"),  # noqa: E501
    ("n-jobs-0", fit(ensemble(n_jobs=0)), ValueError, r"'n_jobs' parameter of EnsembleClassifier must be an int in the range \(-inf, -1\], an int in the range \[1, inf\) or None\. Got 0"),  # noqa: E501
    ("n-jobs-str", fit(ensemble(n_jobs="2")), TypeError, r"'n_jobs' parameter .* Got '2'"),
    ("checkpoint-dir-int", fit(ensemble(checkpoint_dir=3)), TypeError, r"'checkpoint_dir' parameter .* Got 3"),  # noqa: E501
    ("prefit-unfitted", fit(ensemble(("a", LogisticRegression()), cv="prefit")), NotFittedError, r"cv='prefit' uses the members as they are, but member 'a' is not fitted"),  # noqa: E501
    ("snapshots-0", fit(SnapshotEnsembleClassifier(n_snapshots=0)), ValueError, r"'n_snapshots' parameter of SnapshotEnsembleClassifier .* Got 0"),  # noqa: E501
    ("distill-temperature-0", lambda tmp: ensemble().fit(X, y).distill(X, y, temperature=0.0), ValueError, r"'temperature' parameter .* Got 0\.0"),  # noqa: E501
    ("distill-alpha-2", lambda tmp: ensemble().fit(X, y).distill(X, y, alpha=2.0), ValueError, r"'alpha' parameter .* Got 2\.0"),  # noqa: E501
    ("distill-method", lambda tmp: ensemble().fit(X, y).distill(X, y, method="online"), ValueError, r"'method' parameter of distill .* Got 'online'"),  # noqa: E501
    ("distill-budget-0", lambda tmp: ensemble().fit(X, y).distill(X, y, budget=0), ValueError, r"'budget' parameter of distill .* Got 0"),  # noqa: E501
    ("distill-cached-budget", lambda tmp: ensemble().fit(X, y).distill(X, y, method="cached", budget=2), ValueError, r"budget apply to method='function_matching' only"),  # noqa: E501
    ("distill-fm-n-augment", lambda tmp: ensemble().fit(X, y).distill(X, y, n_augment=2), ValueError, r"n_augment applies to method='cached' only"),  # noqa: E501
    ("distill-augment-munge", lambda tmp: ensemble().fit(X, y).distill(X, y, augment="munge"), ValueError, r"'augment' parameter of distill .* Got 'munge'"),  # noqa: E501
    # -- item 7: member outputs that break the contract ------------------------------------------
    ("proba-sums-to-two", predict_with(ensemble(("lr", LogisticRegression()), ("odd", Misbehaving("sum-to-two"))), X), ValueError, r"member 'odd': predict_proba must be class probabilities .* a row summing to 2"),  # noqa: E501
    ("proba-nan", predict_with(ensemble(("lr", LogisticRegression()), ("odd", Misbehaving("nan"))), X), ValueError, r"member 'odd': predict_proba returned NaN or infinite values in 1 of 40 rows \(first: \[5\]\)"),  # noqa: E501
    ("proba-negative", predict_with(ensemble(("lr", LogisticRegression()), ("odd", Misbehaving("negative"))), X), ValueError, r"member 'odd': predict_proba must be class probabilities .* values in \[-0\.5, 1\.5\]"),  # noqa: E501
    ("proba-narrow", predict_with(ensemble(("lr", LogisticRegression()), ("odd", Misbehaving("narrow"))), X), ValueError, r"member 'odd': predict_proba returned shape \(40, 1\); expected \(40, 2\)"),  # noqa: E501
    ("proba-text", predict_with(ensemble(("lr", LogisticRegression()), ("odd", Misbehaving("text"))), X), TypeError, r"member 'odd': predict_proba must return numbers"),  # noqa: E501
    ("proba-held-out", ensemble_with(Misbehaving("sum-to-two"), combiner=WeightedCombiner(), cv=0.3), ValueError, r"member 'odd': predict_proba must be class probabilities"),  # noqa: E501
    ("hard-unknown-class", predict_with(ensemble(("lr", LogisticRegression()), ("odd", HardVoter("unknown-class"))), X), ValueError, r"member 'odd' predicts classes \[7\] that are not among the ensemble's classes \[0, 1\]"),  # noqa: E501
    ("regressor-wide", lambda tmp: ensemble(("r", Ridge()), ("wide", WideRegressor()), kind=EnsembleRegressor).fit(X, y_reg).predict(X), ValueError, r"member 'wide': predict returned shape \(40, 3\); expected \(40, 1\) \(one row per sample, one column per output\)"),  # noqa: E501
    ("network-width", backbone(wide_network), ValueError, r"the network of NeuralClassifier\(module=<function wide_network.*must map a batch \(2, 4\) to a tensor \(2, 2\).*returned shape \(2, 3\)"),  # noqa: E501
    ("network-input", backbone(wrong_input_network), ValueError, r"the network of NeuralClassifier\(module=<function wrong_input_network.*fails on a batch of shape \(2, 4\)"),  # noqa: E501
    ("network-tuple", backbone(a_tuple_network), ValueError, r"must map a batch .* it returned tuple"),  # noqa: E501
    ("network-not-module", backbone(not_a_network), TypeError, r"must return a torch\.nn\.Module; got str"),  # noqa: E501
    ("network-width-regressor", fit(NeuralRegressor(wide_network, max_epochs=1), X, y_reg), ValueError, r"NeuralRegressor.*to a tensor \(2, 1\).*returned shape \(2, 2\)"),  # noqa: E501
    ("network-in-ensemble", fit(ensemble(("w", net(module=wide_network)), ("lr", LogisticRegression()))), ValueError, r"must map a batch"),  # noqa: E501
    # -- item 7 and 8: inputs ------------------------------------------------------------------
    ("x-above-float32", fit(net(), with_value(3.5e38)), ValueError, r"X holds values up to 3\.5e\+38 in magnitude, beyond float32's range \(3\.4e\+38\) in which NeuralClassifier's network computes; rescale X first"),  # noqa: E501
    ("x-1e200", fit(net(), with_value(1e200)), ValueError, r"X holds values up to 1e\+200 in magnitude, beyond float32's range \(3\.4e\+38\)"),  # noqa: E501
    ("x-negative-huge", fit(net(), with_value(-1e39)), ValueError, r"X holds values up to 1e\+39 in magnitude"),  # noqa: E501
    ("predict-above-float32", lambda tmp: fitted().predict(with_value(1e39)), ValueError, r"beyond float32's range"),  # noqa: E501
    ("snapshot-above-float32", fit(SnapshotEnsembleClassifier(n_snapshots=2), with_value(1e39)), ValueError, r"beyond float32's range"),  # noqa: E501
    ("x-text", fit(net(), np.array([["a", "b"]] * 40)), ValueError, r"NeuralClassifier takes numeric features; X holds text .* OneHotEncoder"),  # noqa: E501
    ("x-text-ensemble", fit(ensemble(), np.array([["a", "b"]] * 40)), ValueError, r"EnsembleClassifier takes numeric features; X holds text"),  # noqa: E501
    ("x-nan", fit(net(), with_value(np.nan)), ValueError, r"Input X contains NaN"),
    ("x-inf", fit(net(), with_value(np.inf)), ValueError, r"Input X contains infinity"),
    ("x-1d", fit(net(), X[:, 0]), ValueError, r"Expected a 2-dimensional container but got .*ndarray.* instead|Expected 2D array"),  # noqa: E501
    ("x-3d", fit(net(), X.reshape(40, 2, 2)), ValueError, r"Found array with dim 3"),
    ("x-empty", fit(net(), X[:0], y[:0]), ValueError, r"0 sample\(s\)"),
    ("x-one-row", fit(net(), X[:1], y[:1]), ValueError, r"1 sample\(s\) .* minimum of 2"),
    ("y-length", fit(net(), X, y[:30]), ValueError, r"inconsistent numbers of samples: \[40, 30\]"),  # noqa: E501
    ("y-one-class", fit(net(), X, np.zeros(40)), ValueError, r"at least 2 classes in y; got 1 class"),  # noqa: E501
    ("y-continuous", fit(net(), X, y_reg), ValueError, r"Unknown label type"),
    ("y-nan-regressor", fit(NeuralRegressor(max_epochs=1), X, with_value(np.nan, 3, 0, y_reg[:, None]).ravel()), ValueError, r"Input y contains NaN"),  # noqa: E501
    ("predict-features", lambda tmp: fitted().predict(X[:, :3]), ValueError, r"X has 3 features, but NeuralClassifier is expecting 4 features"),  # noqa: E501
    ("predict-unfitted", lambda tmp: net().predict(X), NotFittedError, r"This NeuralClassifier instance is not fitted yet"),  # noqa: E501
    ("ensemble-predict-unfitted", lambda tmp: ensemble().predict(X), NotFittedError, r"This EnsembleClassifier instance is not fitted yet"),  # noqa: E501
    # -- item 3: an exploding loss ---------------------------------------------------------------
    ("divergence", fit(NeuralClassifier("mlp", lr=1e6, max_epochs=3, random_state=0), digits_X, digits_y), FloatingPointError, r"diverged"),  # noqa: E501
    # -- items 1, 2 and 6: files -----------------------------------------------------------------
    ("save-unrelated-folder", lambda tmp: persistence.save(fitted(), web_app(tmp)), FileExistsError, r"app' exists and is not a saved estimator \(it holds files a save does not write\); choose a new folder"),  # noqa: E501
    ("save-lambda-module", lambda tmp: persistence.save(NeuralClassifier(lambda n, k: nn.Linear(n, k), max_epochs=1).fit(X, y), tmp / "s"), ValueError, r"cannot be imported by name"),  # noqa: E501
    ("load-missing-folder", lambda tmp: persistence.load(tmp / "nowhere"), FileNotFoundError, r"nowhere"),  # noqa: E501
    ("load-flipped-weights", load_damaged(flip_a_byte("weights.safetensors")), ValueError, r"weights\.safetensors does not match the checksum"),  # noqa: E501
    ("load-flipped-estimator", load_damaged(flip_a_byte("estimator.skops")), ValueError, r"estimator\.skops does not match the checksum"),  # noqa: E501
    ("load-missing-weights", load_damaged(lambda f: (f / "weights.safetensors").unlink()), ValueError, r"weights\.safetensors"),  # noqa: E501
    ("load-broken-manifest", load_damaged(lambda f: (f / "manifest.json").write_text("{not json")), ValueError, r"manifest\.json"),  # noqa: E501
    ("load-future-format", load_damaged(lambda f: (f / "manifest.json").write_text(json.dumps({**json.loads((f / "manifest.json").read_text()), "format_version": 99}))), ValueError, r"format"),  # noqa: E501
    ("load-v1-truncated-weights", load_damaged(as_version_1(truncate("weights.safetensors"))), ValueError, r"save/weights\.safetensors cannot be read"),  # noqa: E501
    ("load-v1-truncated-estimator", load_damaged(as_version_1(truncate("estimator.skops"))), ValueError, r"save/estimator\.skops cannot be read"),  # noqa: E501
    ("from-checkpoint-os-system", lambda tmp: malicious_checkpoint(tmp)(), ValueError, r"os\.system"),  # noqa: E501
    # -- issue 34: the last silent wrong answers -------------------------------------------------
    ("calibration-rows-not-summing", lambda tmp: TemperatureScaling().fit(np.full((4, 2), 0.3), [0, 1, 0, 1]), ValueError, r"proba must be class probabilities .* a row summing to 0\.6"),  # noqa: E501
    ("teacher-rows-not-summing", lambda tmp: net().fit_distill(X, np.full((40, 2), 0.3), y), ValueError, r"teacher must be class probabilities .* a row summing to 0\.6"),  # noqa: E501
    ("combiner-not-probabilities", lambda tmp: WeightedCombiner().fit(np.full((2, 40, 2), 0.7), y), ValueError, r"predictions \(class probabilities, as y holds class indices\) must be class probabilities .* summing to 1\.4"),  # noqa: E501
    ("y-overflows-scaling", fit(NeuralRegressor(max_epochs=1), X, y_reg * 1e200), ValueError, r"NeuralRegressor: y has values up to .*e\+200, too large to standardise"),  # noqa: E501
    ("y-beyond-float32-unscaled", fit(NeuralRegressor(max_epochs=1, standardize=False), X, y_reg * 1e39), ValueError, r"y has values up to .*e\+39, beyond float32's range .* set standardize=True"),  # noqa: E501
    ("selection-metric-nan", lambda tmp: EnsembleSelection(metric=nan_metric).fit(np.full((2, 40, 2), 0.5), y), ValueError, r"metric=nan_metric returned nan .* must return a finite loss"),  # noqa: E501
    ("divergence-in-the-last-step", fit(NeuralClassifier(max_epochs=1, lr=1000.0, optimizer="sgd", random_state=0)), FloatingPointError, r"diverged: the loss became .* on the last batch under the final weights"),  # noqa: E501
    ("load-missing-path-named", lambda tmp: persistence.load(tmp / "models" / "m1"), FileNotFoundError, r"path='.*models/m1' does not exist: nothing was saved there"),  # noqa: E501
]
# fmt: on


@pytest.mark.parametrize(
    "action, error, match", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_error_table(action, error, match, tmp_path):
    with pytest.raises(error, match=match):
        action(tmp_path)


def test_the_table_has_at_least_80_distinct_rows():
    assert len({case[0] for case in CASES}) == len(CASES) >= 80


# -- the CLI: exit status 2 and one line naming the problem; nothing trains -------------------
STUDY = textwrap.dedent(
    """
    data: {source: SOURCE, target: label}
    members:
      - name: lr
        estimator: {class_path: sklearn.linear_model.LogisticRegression}
    output: OUTPUT
    """
)


def write_csv(path, *, nan=False):
    frame = {"a": X[:, 0].copy(), "b": X[:, 1], "label": y}
    if nan:
        frame["a"][7] = np.nan
    pd.DataFrame(frame).to_csv(path, index=False)
    return path


def study(tmp, source="data.csv", output="out", nan=False):
    write_csv(tmp / "data.csv", nan=nan)
    config = tmp / "study.yaml"
    config.write_text(
        STUDY.replace("SOURCE", str(tmp / source)).replace("OUTPUT", str(tmp / output))
    )
    return config


def binary_config(tmp):
    (tmp / "c.yaml").write_bytes(b"\x00\xff\xfe binary")
    return tmp / "c.yaml"


def empty_config(tmp):
    (tmp / "c.yaml").write_text("  \n")
    return tmp / "c.yaml"


def directory_config(tmp):
    (tmp / "c.yaml").mkdir()
    return tmp / "c.yaml"


def output_is_a_file(tmp):
    (tmp / "taken").write_text("a user's file")
    return study(tmp, output="taken")


def output_under_a_file(tmp):
    (tmp / "taken").write_text("a user's file")
    return study(tmp, output="taken/out")


def nan_in_csv(tmp):
    return study(tmp, nan=True)


def weights_for_one_size(tmp):
    """Given weights for 3 members, while the study also fuses ensembles of 1 and 2."""
    config = tmp / "study.yaml"
    config.write_text(
        textwrap.dedent(
            """
            data: {source: iris}
            members:
              - {name: lr, estimator: sklearn.linear_model.LogisticRegression, seeds: [0, 1, 2]}
            combiners:
              fixed: {class_path: combiners.WeightedCombiner, init_args: {weights: [1, 2, 3]}}
            """
        )
    )
    return config


def inf_in_npz(tmp):
    np.savez(tmp / "data.npz", X=with_value(np.inf), label=y)
    return study(tmp, source="data.npz")


CLI_CASES = [
    ("binary-config", binary_config, r"is not a text \(UTF-8\) YAML file"),
    ("empty-config", empty_config, r"is empty; a study config is a YAML mapping"),
    ("directory-config", directory_config, r"is a directory; expected a YAML file"),
    ("output-is-a-file", output_is_a_file, r"output folder '.*taken' cannot be written"),
    ("weights-and-sizes", weights_for_one_size, r"combiners\.fixed cannot fuse .* \[1, 2, 3\]\)"),
    ("output-under-a-file", output_under_a_file, r"output folder '.*taken/out' cannot be written"),
    ("nan-in-csv", nan_in_csv, r"the data has NaN or infinite features in 1 rows \(first: \[7\]\)"),  # noqa: E501
    ("inf-in-npz", inf_in_npz, r"the data has NaN or infinite features in 1 rows \(first: \[3\]\)"),  # noqa: E501
]


@pytest.mark.parametrize(
    "make_config, match", [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES]
)
def test_cli_error_table(make_config, match, tmp_path, capsys):
    config = make_config(tmp_path)
    assert main([str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ensembles-study: error:") and len(err.splitlines()) == 1, err
    assert re.search(match, err), err
    assert not list(tmp_path.glob("**/cache")), "nothing may train"
    if (tmp_path / "taken").is_file():
        assert (tmp_path / "taken").read_text() == "a user's file"


def test_cli_warns_in_one_line_when_the_combiners_validation_split_is_tiny(tmp_path, capsys):
    config = study(tmp_path)
    text = config.read_text().replace("target: label}", "target: label, validation_size: 0.05}")
    config.write_text(text + "combiners:\n  weighted: combiners.WeightedCombiner\n")
    assert main([str(config), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert (
        "ensembles-study: UserWarning: data.validation_size=0.05 holds out only 2 rows, 1 in its "
        "smallest class for weighted: too few to learn from" in err
    ), err
