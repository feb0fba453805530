"""Input conversion, label encoding and the in-memory batch loader of the neural estimators."""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Real
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight, validate_data
from torch.utils.data import DataLoader, Dataset, Sampler

# The input dtypes the estimators accept (float32 stays float32, anything else becomes float64).
FLOAT_DTYPES = (np.float64, np.float32)
# Networks compute in float32: a finite input beyond this magnitude becomes inf there.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_numpy(data: Any) -> Any:
    """Turn a torch tensor (any device) into a numpy array; leave everything else alone."""
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    return data


def validate_inputs(
    estimator: Any, X: Any, y: Any = "no_validation", *, float32: bool = False, **checks: Any
) -> Any:
    """scikit-learn's ``validate_data`` for numeric inputs (float dtypes), with errors that say
    what to fix: text features get a hint to encode them, and with ``float32=True`` (inputs of
    a network) values beyond float32's range are refused instead of turning into inf.

    Returns what ``validate_data`` returns: ``X``, or ``(X, y)`` when ``y`` is given.
    """
    try:
        validated = validate_data(estimator, to_numpy(X), to_numpy(y), dtype=FLOAT_DTYPES, **checks)
    except ValueError as error:
        if "could not convert string to float" not in str(error):
            raise
        raise ValueError(
            f"{type(estimator).__name__} takes numeric features; X holds text ({error}). "
            "Encode text or categorical columns first, e.g. with OneHotEncoder or "
            "OrdinalEncoder in a Pipeline"
        ) from None
    inputs = validated[0] if isinstance(validated, tuple) else validated
    if float32 and inputs.size:
        largest = float(np.abs(inputs).max())
        if largest > FLOAT32_MAX:
            raise ValueError(
                f"X holds values up to {largest:.3g} in magnitude, beyond float32's range "
                f"({FLOAT32_MAX:.3g}) in which {type(estimator).__name__}'s network computes; "
                "rescale X first (a log transform, or StandardScaler in a Pipeline)"
            )
    return validated


def check_sample_weight(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    """``sample_weight`` as float64 ``(n_samples,)``: a number or one non-negative, finite value
    per row of ``X``, not all zero (scikit-learn's checks and messages); ``None`` stays ``None``.

    Examples
    --------
    >>> check_sample_weight([1, 2], np.zeros((2, 3)))
    array([1., 2.])
    """
    if sample_weight is None:
        return None
    return _check_sample_weight(  # type: ignore[no-any-return]
        to_numpy(sample_weight), X, dtype=np.float64, ensure_non_negative=True
    )


def class_weights(
    class_weight: str | dict[Any, float] | None,
    classes: np.ndarray,
    encoded: np.ndarray,
    sample_weight: np.ndarray | None,
) -> np.ndarray | None:
    """Each class's weight (``class_weight``: ``None``, ``"balanced"`` or a dict from labels to
    weights, scikit-learn's meaning), ``(n_classes,)``; ``None`` when unweighted.

    ``"balanced"`` gives class ``c`` the weight ``n_samples / (n_classes * n_c)``, counts
    weighted by ``sample_weight``, over the classes that have rows of positive weight (the
    others weigh 1); a dict's unnamed classes weigh 1. ``encoded`` holds the rows' class
    indices into ``classes``.

    Examples
    --------
    >>> class_weights("balanced", np.array(["a", "b"]), np.array([0, 0, 0, 1]), None)
    array([0.66666667, 2.        ])
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, dict):
        unknown = [key for key in class_weight if key not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight names classes that are not in y: {unknown}; the classes are "
                f"{classes.tolist()}"
            )
        values = list(class_weight.values())
        if not all(isinstance(v, Real) and np.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"class_weight values must be finite numbers >= 0; got {values}")
        if not any(value > 0 for value in values) and len(values) == len(classes):
            raise ValueError(f"class_weight must give some class a weight > 0; got {values}")
    counts = np.bincount(encoded, sample_weight, minlength=len(classes))
    present = np.flatnonzero(counts > 0)
    kept = np.isin(encoded, present)
    per_class = np.ones(len(classes))
    per_class[present] = compute_class_weight(
        class_weight,
        classes=classes[present],
        y=classes[encoded[kept]],
        sample_weight=None if sample_weight is None else sample_weight[kept],
    )
    return per_class


def positive_rows(
    X: np.ndarray, targets: tuple[np.ndarray, ...], weights: np.ndarray | None
) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray | None]:
    """The rows of positive weight (a row of weight 0 is a row left out), and their weights;
    ``None`` for equal weights, whose weighted mean is the plain mean, exactly."""
    if weights is None:
        return X, targets, None
    kept = weights > 0
    X, targets, weights = X[kept], tuple(target[kept] for target in targets), weights[kept]
    return X, targets, None if np.all(weights == weights[0]) else weights


def weighted_moments(X: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations of ``X``, each row counted ``weights`` times."""
    if weights is None:
        return X.mean(axis=0), X.std(axis=0)
    mean = np.average(X, axis=0, weights=weights)
    return mean, np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))


def standardize(X: np.ndarray, scaling: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``X`` as a network takes it: ``(X - mean) / scale`` with ``scaling = (mean, scale)``
    (``None``: unscaled), float32.

    Examples
    --------
    >>> standardize(np.array([[1.0, 4.0]]), (np.array([1.0, 2.0]), np.array([1.0, 2.0])))
    array([[0., 1.]], dtype=float32)
    """
    if scaling is not None:
        X = (X - scaling[0]) / scaling[1]
    return np.asarray(X, dtype=np.float32)


def encode_classes(y: np.ndarray, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Sorted class labels and ``y`` encoded as their indices; at least two classes."""
    classes, encoded = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{owner} needs at least 2 classes in y; got 1 class ({classes[0]!r})")
    return classes, encoded.astype(np.int64)


def encode_labels(y: Any, classes: np.ndarray) -> np.ndarray:
    """``y`` as indices into the sorted ``classes``; a label not among them is refused.

    Examples
    --------
    >>> encode_labels(["b", "a", "b"], np.array(["a", "b"]))
    array([1, 0, 1])
    """
    labels = np.asarray(to_numpy(y))
    unknown = np.setdiff1d(labels, classes)
    if unknown.size:
        raise ValueError(
            f"y holds labels not seen during fit: {unknown[:5].tolist()}; known classes are "
            f"{np.asarray(classes).tolist()}"
        )
    return np.searchsorted(classes, labels).astype(np.int64)


class TensorTuple(Dataset):
    """Equal-length tensors indexed by a whole batch of indices at once (no collation)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: list[int]) -> tuple[torch.Tensor, ...]:
        return tuple(tensor[index] for tensor in self.tensors)


class ShuffledBatches(Sampler[list[int]]):
    """Reshuffled index batches from a seeded generator.

    A last batch of a single sample is dropped (the next epoch reshuffles, so no sample is
    left out for good): batch normalisation cannot train on one sample.
    """

    def __init__(self, n_samples: int, batch_size: int, seed: int) -> None:
        self.n_samples, self.batch_size = n_samples, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return n_batches(self.n_samples, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n_samples, generator=self.generator).tolist()
        for batch_index in range(len(self)):
            start = batch_index * self.batch_size
            yield order[start : start + self.batch_size]


def n_batches(n_samples: int, batch_size: int) -> int:
    """Batches per epoch: a last batch of one sample is dropped unless it is the only one."""
    full, rest = divmod(n_samples, batch_size)
    return full + (rest > 1 or (full == 0 and rest > 0))


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """Integers become class indices (long), everything else float32."""
    return torch.as_tensor(array, dtype=torch.long if array.dtype.kind in "iu" else torch.float32)


def make_loader(X: np.ndarray, *targets: np.ndarray, batch_size: int, seed: int) -> DataLoader:
    """A DataLoader over in-memory arrays that slices whole batches at once."""
    tensors = TensorTuple(torch.as_tensor(X, dtype=torch.float32), *map(as_tensor, targets))
    return DataLoader(tensors, sampler=ShuffledBatches(len(X), batch_size, seed), batch_size=None)


def split_rows(
    n_rows: int,
    fraction: float,
    stratify: np.ndarray | None,
    random_state: Any,
    *,
    what: str = "the network",
    min_train: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices ``(train, held)`` with a random ``fraction`` of ``n_rows`` held out
    (counted as ``train_test_split`` counts them), stratified by ``stratify`` when every
    class allows it and a plain random split otherwise. A ``ValueError`` naming
    ``validation_fraction`` when fewer than ``min_train`` rows would train ``what`` or none
    would validate it.

    Examples
    --------
    >>> train, held = split_rows(10, 0.2, np.array([0, 1] * 5), random_state=0)
    >>> len(train), len(held)
    (8, 2)
    """
    n_held = int(np.ceil(fraction * n_rows))
    if n_held < 1 or n_rows - n_held < min_train:
        raise ValueError(
            f"validation_fraction={fraction} leaves {n_rows - n_held} rows to train {what} and "
            f"{n_held} to validate it, of {n_rows}; pass more rows or another fraction"
        )
    rows = np.arange(n_rows)
    try:
        train, held = train_test_split(
            rows, test_size=fraction, stratify=stratify, random_state=random_state
        )
    except ValueError:  # a class too small to be split: a plain random split
        train, held = train_test_split(rows, test_size=fraction, random_state=random_state)
    return np.sort(train), np.sort(held)
