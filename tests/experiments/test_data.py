"""Study data sources: bundled sets, .npz and .csv files, with clear errors."""

import numpy as np
import pandas as pd
import pytest

from experiments.data import load_dataset


def test_bundled_sets_split_stratified():
    data = load_dataset("wine", test_size=0.25, seed=1)
    assert data.task == "classification" and data.X_train.shape[1] == 13
    assert len(data.y_test) == 45 and set(data.y_test) == {0, 1, 2}
    assert load_dataset("diabetes").task == "regression"


def test_npz_and_csv_files(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), np.repeat(["a", "b"], 25)
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    data = load_dataset(str(tmp_path / "xy.npz"), test_size=0.2)
    assert data.task == "classification" and len(data.y_train) == 40 and data.name == "xy"
    np.savez(
        tmp_path / "split.npz", X_train=X[:40], y_train=X[:40, 0], X_test=X[40:], y_test=X[40:, 0]
    )
    data = load_dataset(str(tmp_path / "split.npz"))
    assert data.task == "regression" and len(data.y_test) == 10
    frame = pd.DataFrame(X, columns=["f0", "f1", "f2"]).assign(label=y)
    frame.to_csv(tmp_path / "table.csv", index=False)
    data = load_dataset(str(tmp_path / "table.csv"), target="label")
    assert data.X_train.shape == (40, 3) and set(data.y_train) == {"a", "b"}


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "match"),
    [
        ("cifar10", {}, ValueError, r"data.source='cifar10' is not one of \['mnist1d'"),
        ("missing.csv", {}, FileNotFoundError, "no such file"),
        ("table.csv", {}, ValueError, r"data.target must name the target column.*'f0'"),
        ("table.csv", {"target": "f0"}, ValueError, r"non-numeric feature columns \['label'\]"),
        ("bad.npz", {}, ValueError, r"must hold arrays 'X' and 'y'"),
        ("digits", {"test_size": 1.5}, ValueError, r"data.test_size must be in \(0, 1\)"),
    ],
)
def test_bad_sources(tmp_path, source, kwargs, error, match):
    pd.DataFrame({"f0": [1.0, 2.0], "label": ["a", "b"]}).to_csv(tmp_path / "table.csv")
    np.savez(tmp_path / "bad.npz", features=np.zeros((3, 2)))
    path = source if source in ("cifar10", "digits") else str(tmp_path / source)
    with pytest.raises(error, match=match):
        load_dataset(path, **kwargs)


def test_digits28_are_generated_offline_split_by_source_digit():
    from experiments.data import load_digits28

    X_train, y_train, X_test, y_test = load_digits28(copies=1)
    assert X_train.shape[1] == X_test.shape[1] == 784
    assert X_train.dtype == np.float32 and X_train.min() >= 0 and X_train.max() <= 1
    # 1797 source digits, a quarter of them held out: no copy of a test digit is trained on
    assert len(X_train) + len(X_test) == 1797 and len(X_test) == 450
    assert set(np.unique(y_test)) == set(range(10))
    again = load_digits28(copies=1)
    np.testing.assert_array_equal(again[0], X_train)
    dataset = load_dataset("digits28")  # the study's source: test_size=0.2 of the digits
    assert dataset.X_train.shape == (3 * 1437, 784) and dataset.X_test.shape == (3 * 360, 784)
