"""Safe save/load: safetensors weights, skops state, a JSON manifest, no pickle."""

import json
import zipfile

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from members import NeuralClassifier, NeuralRegressor, compress
from members.persistence import FORMAT_VERSION, load

SMALL = {"max_epochs": 3, "module_kwargs": {"hidden": (16,)}, "random_state": 0}


def assert_no_pickle(folder):
    """Every array in the skops state loads with pickle disabled; nothing else is binary."""
    assert sorted(p.name for p in folder.iterdir()) == [
        "estimator.skops",
        "manifest.json",
        "weights.safetensors",
    ]
    with zipfile.ZipFile(folder / "estimator.skops") as archive:
        for name in archive.namelist():
            assert name.endswith((".npy", ".json")), name
            if name.endswith(".npy"):
                with archive.open(name) as handle:
                    np.load(handle, allow_pickle=False)


def test_classifier_round_trip_with_string_labels(classification_data, tmp_path):
    X, y = classification_data
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = NeuralClassifier("mlp", **SMALL).fit(X, labels)
    clf.save(tmp_path / "clf")
    again = NeuralClassifier.load(tmp_path / "clf")
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    assert again.get_params() == clf.get_params()
    assert_no_pickle(tmp_path / "clf")
    manifest = json.loads((tmp_path / "clf" / "manifest.json").read_text())
    assert manifest["class"] == "members.neural.NeuralClassifier"
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["params"]["module_kwargs"] == {"hidden": [16]}
    assert manifest["networks"] == ["net0"]


@pytest.mark.parametrize("module", ["cnn1d", "resnet"])
def test_batch_norm_networks_round_trip_and_can_be_refit(classification_data, tmp_path, module):
    X, y = classification_data
    reg = NeuralRegressor(module, max_epochs=2, random_state=0).fit(X, np.c_[y, -y])
    reg.save(tmp_path / "reg")
    again = NeuralRegressor.load(tmp_path / "reg")
    np.testing.assert_allclose(again.predict(X), reg.predict(X), atol=1e-6)
    assert again.predict(X).shape == (len(X), 2)
    again.set_params(max_epochs=1).fit(X, y)  # a loaded estimator is an ordinary one


def test_loading_does_not_touch_the_global_rng(classification_data, tmp_path):
    X, y = classification_data
    NeuralClassifier(**SMALL).fit(X, y).save(tmp_path / "clf")
    state = torch.get_rng_state()
    NeuralClassifier.load(tmp_path / "clf")
    assert torch.equal(torch.get_rng_state(), state)


def test_saving_again_replaces_the_old_save(classification_data, tmp_path):
    X, y = classification_data
    NeuralClassifier(**SMALL).fit(X, y).save(tmp_path / "clf")
    second = NeuralClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    second.save(tmp_path / "clf")
    np.testing.assert_array_equal(
        NeuralClassifier.load(tmp_path / "clf").predict_proba(X), second.predict_proba(X)
    )
    assert not (tmp_path / "clf.partial").exists()


class OwnMember(LogisticRegression):
    """A user's own estimator class: not trusted by default."""


def test_types_outside_the_library_need_trust(classification_data, tmp_path):
    X, y = classification_data
    OwnMember(max_iter=200).fit(X, y)
    from ensembles import EnsembleClassifier

    ens = EnsembleClassifier([("own", OwnMember(max_iter=200))]).fit(X, y)
    ens.save(tmp_path / "ens")
    with pytest.raises(ValueError, match=r"not trusted by default: \[.*OwnMember'\].*trusted="):
        EnsembleClassifier.load(tmp_path / "ens")
    name = f"{__name__}.OwnMember"
    for trusted in (True, [name]):
        again = EnsembleClassifier.load(tmp_path / "ens", trusted=trusted)
        np.testing.assert_array_equal(again.predict_proba(X), ens.predict_proba(X))


def test_newer_format_version_gives_a_clear_error(classification_data, tmp_path):
    X, y = classification_data
    NeuralClassifier(**SMALL).fit(X, y).save(tmp_path / "clf")
    manifest_file = tmp_path / "clf" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"format version {FORMAT_VERSION + 1}.*upgrade"):
        load(tmp_path / "clf")


@pytest.mark.parametrize(
    ("prepare", "error", "match"),
    [
        (lambda p: p.mkdir(), FileNotFoundError, "has no manifest.json"),
        (lambda p: None, FileNotFoundError, "does not exist: nothing was saved there"),
        (
            lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "other"}')),
            ValueError,
            "is not a torch-fusion-ensembles manifest",
        ),
    ],
)
def test_loading_what_is_not_a_save(tmp_path, prepare, error, match):
    prepare(tmp_path / "x")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=match):
        load(tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no lock file, nothing made


def test_loading_from_a_folder_that_does_not_exist_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path='.*nowhere/x' does not exist"):
        load(tmp_path / "nowhere" / "x")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_to_overwrite_unrelated_files_and_unfitted_estimators(
    classification_data, tmp_path
):
    X, y = classification_data
    (tmp_path / "notes.txt").write_text("keep me")
    clf = NeuralClassifier(**SMALL)
    with pytest.raises(NotFittedError):
        clf.save(tmp_path / "clf")
    clf.fit(X, y)
    with pytest.raises(FileExistsError, match="is not a saved estimator"):
        clf.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_loading_with_the_wrong_class_names_the_right_one(classification_data, tmp_path):
    X, y = classification_data
    NeuralClassifier(**SMALL).fit(X, y).save(tmp_path / "clf")
    with pytest.raises(TypeError, match="holds a NeuralClassifier, not a NeuralRegressor"):
        NeuralRegressor.load(tmp_path / "clf")


@pytest.mark.parametrize("module", ["mlp", "cnn1d"])
def test_quantised_networks_are_refused_with_the_alternative(classification_data, tmp_path, module):
    X, y = classification_data
    clf = NeuralClassifier(module, max_epochs=3, random_state=0).fit(X, y)
    small = compress(clf, quantize="int8")
    with pytest.raises(ValueError, match="compressed.*pickle"):
        small.save(tmp_path / "small")
    assert not (tmp_path / "small").exists()
    pruned = compress(clf, prune=0.5)  # pruning keeps a float network: saved as usual
    pruned.save(tmp_path / "pruned")
    np.testing.assert_array_equal(
        NeuralClassifier.load(tmp_path / "pruned").predict_proba(X), pruned.predict_proba(X)
    )


def test_every_public_estimator_combiner_and_backbone_is_trusted_by_name():
    """The allow-list is explicit (no prefixes), so a new class must be added to it."""
    import inspect

    import combiners
    import ensembles
    import members
    from members.persistence import TRUSTED_TYPES

    public = [
        getattr(package, name)
        for package in (members, combiners, ensembles)
        for name in package.__all__
    ]
    saveable = [
        obj
        for obj in public
        if inspect.isclass(obj)
        and (hasattr(obj, "get_params") or obj in members.BACKBONES.values())
        and not inspect.isabstract(obj)
    ]
    assert len(saveable) >= 15
    missing = [f"{c.__module__}.{c.__qualname__}" for c in saveable]
    missing = [name for name in missing if name not in TRUSTED_TYPES]
    assert missing == []
    assert not any(name.endswith(".") for name in TRUSTED_TYPES)  # names, never prefixes
