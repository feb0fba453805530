"""Data sources for studies: MNIST-1D (generated offline), scikit-learn's bundled sets, files.

Every source gives the same :class:`Dataset`: a train/test split and its task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

BUNDLED = {
    "digits": (sk_datasets.load_digits, "classification"),
    "breast_cancer": (sk_datasets.load_breast_cancer, "classification"),
    "wine": (sk_datasets.load_wine, "classification"),
    "iris": (sk_datasets.load_iris, "classification"),
    "diabetes": (sk_datasets.load_diabetes, "regression"),
}
SOURCES = ("mnist1d", "digits28", *BUNDLED, "<file>.npz", "<file>.csv")


@dataclass
class Dataset:
    """A train/test split of one data source."""

    name: str
    task: str  # "classification" or "regression"
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_mnist1d() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D's standard split (4000 / 1000), generated offline from its default seed.

    Needs the ``mnist1d`` package (``pip install torch-fusion-ensembles[data]``). Never
    downloads: ``make_dataset`` builds the data procedurally.
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError(
            "data source 'mnist1d' needs the mnist1d package: "
            "pip install 'torch-fusion-ensembles[data]'"
        ) from None
    data = make_dataset(get_dataset_args())
    return data["x"], data["y"], data["x_test"], data["y_test"]


def load_digits28(
    copies: int = 3, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """28x28 digit images generated offline from scikit-learn's 8x8 digits.

    Each 8x8 digit is upscaled (bilinear) to a random size between 16 and 22 pixels, placed at a
    random position in a 28x28 frame, and given pixel noise, ``copies`` times. The train/test
    split is by source digit, so no copy of a test digit is trained on. Rows are flattened
    images scaled to [0, 1] (784 features). Nothing is downloaded.
    """
    import torch
    from torch.nn import functional as F

    digits = sk_datasets.load_digits()
    images = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    rng = np.random.RandomState(seed)
    train, test = train_test_split(
        np.arange(len(images)), test_size=test_size, stratify=digits.target, random_state=seed
    )
    parts = []
    for rows in (train, test):
        frames, labels = [], []
        for _ in range(copies):
            sizes = rng.randint(16, 23, len(rows))
            for size in np.unique(sizes):
                chosen = rows[sizes == size]
                scaled = F.interpolate(images[chosen], size=(size, size), mode="bilinear")
                frame = torch.zeros(len(chosen), 1, 28, 28)
                for i, (top, left) in enumerate(rng.randint(0, 28 - size + 1, (len(chosen), 2))):
                    frame[i, :, top : top + size, left : left + size] = scaled[i]
                frames.append(frame)
                labels.append(digits.target[chosen])
        X = torch.cat(frames).reshape(-1, 784).numpy()
        X = np.clip(X + rng.normal(0, 0.05, X.shape), 0, 1).astype(np.float32)
        parts += [X, np.concatenate(labels)]
    return parts[0], parts[1], parts[2], parts[3]


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    task: str | None = None,
    test_size: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load ``source`` and split it (MNIST-1D keeps its own standard split).

    Parameters
    ----------
    source : str
        ``"mnist1d"``, ``"digits28"`` (:func:`load_digits28`), a scikit-learn bundled set
        (``"digits"``, ``"breast_cancer"``, ``"wine"``, ``"iris"``, ``"diabetes"``), or a path
        to a ``.npz`` file (arrays ``X`` and ``y``, or ``X_train, y_train, X_test, y_test``) or
        a ``.csv`` file (numeric feature columns and a ``target`` column).
    target : str, optional
        The ``.csv`` column (or ``.npz`` array) holding the targets; ``"y"`` for ``.npz``.
    task : {"classification", "regression"}, optional
        Needed only for files: by default integer or string targets are classification,
        float targets regression.
    test_size : float, default=0.2
        Share of the samples held out for testing (stratified for classification).
    seed : int, default=0
        Seeds the split.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"data.test_size must be in (0, 1); got {test_size!r}")
    if source == "mnist1d":
        X_train, y_train, X_test, y_test = load_mnist1d()
        return Dataset("mnist1d", "classification", X_train, y_train, X_test, y_test)
    if source == "digits28":
        X_train, y_train, X_test, y_test = load_digits28(test_size=test_size, seed=seed)
        return Dataset("digits28", "classification", X_train, y_train, X_test, y_test)
    if source in BUNDLED:
        loader, kind = BUNDLED[source]
        X, y = loader(return_X_y=True)
        return _split(source, kind, X, y, test_size, seed)
    path = Path(source)
    if path.suffix not in (".npz", ".csv"):
        raise ValueError(f"data.source={source!r} is not one of {list(SOURCES)}")
    if not path.is_file():
        raise FileNotFoundError(f"data.source={source!r}: no such file")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as arrays:
            if {"X_train", "y_train", "X_test", "y_test"} <= set(arrays.files):
                parts = [arrays[name] for name in ("X_train", "y_train", "X_test", "y_test")]
                _check_finite(source, "the training data", *parts[:2])
                _check_finite(source, "the test data", *parts[2:])
                return Dataset(path.stem, task or _task_of(parts[1]), *parts)
            key = target or "y"
            if "X" not in arrays.files or key not in arrays.files:
                raise ValueError(
                    f"data.source={source!r} must hold arrays 'X' and {key!r} (or X_train, "
                    f"y_train, X_test, y_test); it holds {arrays.files}"
                )
            X, y = arrays["X"], arrays[key]
    else:
        import pandas as pd

        frame = pd.read_csv(path)
        if target is None or target not in frame.columns:
            raise ValueError(
                f"data.target must name the target column of {source!r}; got {target!r}, "
                f"columns are {list(frame.columns)}"
            )
        y = frame.pop(target).to_numpy()
        non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            raise ValueError(f"data.source={source!r}: non-numeric feature columns {non_numeric}")
        X = frame.to_numpy(dtype=np.float64)
    _check_finite(source, "the data", X, y)
    return _split(path.stem, task or _task_of(y), X, y, test_size, seed)


def _check_finite(source: str, part: str, X: np.ndarray, y: np.ndarray) -> None:
    """Refuse missing or infinite values before anything trains (the ensembles need finite
    features, and a member that tolerates NaN would otherwise train first)."""
    try:
        features = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"data.source={source!r}: the features of {part} are not numeric"
        ) from None
    bad_rows = _non_finite_rows(features)
    if bad_rows.size:
        raise ValueError(
            f"data.source={source!r}: {part} has NaN or infinite features in {bad_rows.size} "
            f"rows (first: {bad_rows[:5].tolist()}); impute or drop them first"
        )
    if np.issubdtype(np.asarray(y).dtype, np.number):
        bad_targets = _non_finite_rows(np.asarray(y, dtype=np.float64))
        if bad_targets.size:
            raise ValueError(
                f"data.source={source!r}: {part} has NaN or infinite targets in "
                f"{bad_targets.size} rows (first: {bad_targets[:5].tolist()})"
            )


def _non_finite_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows holding NaN or infinity."""
    return np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))


def _task_of(y: np.ndarray) -> str:
    return "regression" if np.issubdtype(y.dtype, np.floating) else "classification"


def _split(
    name: str, task: str, X: np.ndarray, y: np.ndarray, test_size: float, seed: int
) -> Dataset:
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=stratify
    )
    return Dataset(name, task, X_train, y_train, X_test, y_test)
