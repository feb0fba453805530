"""Dataset shift: corrupted copies of test inputs at 5 severities (after Hendrycks & Dietterich,
2019, and Ovadia et al., 2019), for tables, signals and images, and MNIST-1D drawn with
harder generator settings.

Every corruption is measured in units of the *training* data (its per-feature mean and standard
deviation, or its overall standard deviation for signals and images), so severity 3 means the
same on any data set. Severity ``s`` (1 to 5) picks the ``s``-th value of each table below.

- ``noise``: add Gaussian noise of ``NOISE[s]`` standard deviations.
- ``scale``: stretch each row around the training mean by ``1 + SCALE[s]``.
- ``shift``: tables move by ``SHIFT[s]`` standard deviations (every feature, a random sign per
  feature); signals are rolled by up to ``TRANSLATE[s]`` of their length, images translated by
  up to that share of their side (a random offset per row, zero-filled for images).
- ``occlusion``: a random window of ``OCCLUDE[s]`` of a signal's length, a square patch of that
  share of an image's area, or that share of a table's features, set to the training mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

CORRUPTIONS = ("noise", "scale", "shift", "occlusion")
LAYOUTS = ("tabular", "signal", "image")
SEVERITIES = (1, 2, 3, 4, 5)
NOISE = (0.1, 0.2, 0.4, 0.7, 1.0)
SCALE = (0.1, 0.25, 0.5, 0.75, 1.0)
SHIFT = (0.25, 0.5, 1.0, 1.5, 2.0)
TRANSLATE = (0.02, 0.05, 0.1, 0.15, 0.2)
OCCLUDE = (0.05, 0.1, 0.2, 0.3, 0.4)


def corrupt(
    X: Any,
    kind: str,
    severity: int,
    *,
    reference: Any,
    layout: str = "tabular",
    image_shape: tuple[int, int] | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """A corrupted copy of ``X`` (``(n_samples, n_features)``; ``X`` itself is not changed).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    kind : {"noise", "scale", "shift", "occlusion"}
    severity : int in 1..5
    reference : array-like of shape (n_rows, n_features)
        The training data, whose mean and standard deviation set the units.
    layout : {"tabular", "signal", "image"}, default="tabular"
        How a row's features are laid out: independent columns, one signal, or an image of
        ``image_shape`` (row-major).
    image_shape : (height, width), optional
        Needed for ``layout="image"``; default: a square.
    random_state : int, RandomState or None

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 8))
    >>> corrupt(X, "noise", 3, reference=X, random_state=0).shape
    (100, 8)
    """
    X = _check(X, "X")
    reference = _check(reference, "reference")
    if reference.shape[1] != X.shape[1]:
        raise ValueError(
            f"reference must have the {X.shape[1]} features of X; got {reference.shape[1]}"
        )
    if kind not in CORRUPTIONS:
        raise ValueError(f"kind must be one of {list(CORRUPTIONS)}; got {kind!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {list(LAYOUTS)}; got {layout!r}")
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise TypeError(f"severity must be an int in 1..5; got {type(severity).__name__}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be in 1..5; got {severity}")
    shape = _image_shape(X.shape[1], image_shape) if layout == "image" else None
    rng = check_random_state(random_state)
    level = severity - 1
    if layout == "tabular":
        mean, std = reference.mean(axis=0), reference.std(axis=0)
    else:  # one signal or image: the same units for every position
        mean = np.full(X.shape[1], reference.mean())
        std = np.full(X.shape[1], reference.std())
    std = np.where(std > 0, std, 1.0)
    out = X.copy()
    if kind == "noise":
        out += rng.normal(size=X.shape) * NOISE[level] * std
    elif kind == "scale":
        out = mean + (X - mean) * (1.0 + SCALE[level])
    elif kind == "shift":
        if layout == "tabular":
            out += rng.choice([-1.0, 1.0], size=X.shape[1]) * SHIFT[level] * std
        else:
            out = _translate(X, TRANSLATE[level], shape, rng)
    else:
        out = _occlude(X, OCCLUDE[level], mean, layout, shape, rng)
    return out


def _check(X: Any, name: str) -> np.ndarray:
    array = np.asarray(X, dtype=np.float64)
    if array.ndim != 2 or not np.isfinite(array).all():
        raise ValueError(
            f"{name} must be a finite 2-D array (n_samples, n_features); got shape {array.shape}"
        )
    return array


def _image_shape(n_features: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    if image_shape is None:
        side = int(round(np.sqrt(n_features)))
        image_shape = (side, side)
    if image_shape[0] * image_shape[1] != n_features:
        raise ValueError(
            f"image_shape {tuple(image_shape)} does not hold the {n_features} features of a row"
        )
    return int(image_shape[0]), int(image_shape[1])


def _translate(
    X: np.ndarray, share: float, shape: tuple[int, int] | None, rng: np.random.RandomState
) -> np.ndarray:
    out = np.empty_like(X)
    if shape is None:  # a signal: rolled, as MNIST-1D's own translations are circular
        limit = max(1, round(share * X.shape[1]))
        for i, offset in enumerate(rng.randint(-limit, limit + 1, len(X))):
            out[i] = np.roll(X[i], offset)
        return out
    height, width = shape
    limit = max(1, round(share * min(height, width)))
    images = X.reshape(len(X), height, width)
    for i, (dy, dx) in enumerate(rng.randint(-limit, limit + 1, (len(X), 2))):
        moved = np.zeros((height, width))
        source = images[i, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
        moved[
            max(0, dy) : max(0, dy) + source.shape[0], max(0, dx) : max(0, dx) + source.shape[1]
        ] = source
        out[i] = moved.ravel()
    return out


def _occlude(
    X: np.ndarray,
    share: float,
    mean: np.ndarray,
    layout: str,
    shape: tuple[int, int] | None,
    rng: np.random.RandomState,
) -> np.ndarray:
    out = X.copy()
    n_features = X.shape[1]
    if layout == "tabular":
        k = max(1, round(share * n_features))
        for i in range(len(X)):
            columns = rng.choice(n_features, k, replace=False)
            out[i, columns] = mean[columns]
    elif shape is None:
        k = max(1, round(share * n_features))
        for i, start in enumerate(rng.randint(0, n_features - k + 1, len(X))):
            out[i, start : start + k] = mean[start : start + k]
    else:
        height, width = shape
        side = max(1, round(np.sqrt(share * height * width)))
        images = out.reshape(len(X), height, width)
        for i in range(len(X)):
            top, left = rng.randint(0, height - side + 1), rng.randint(0, width - side + 1)
            images[i, top : top + side, left : left + side] = mean[0]
        out = images.reshape(len(X), -1)
    return out


def mnist1d_shifted(
    severity: int, n_samples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D rows drawn by its own generator with harder settings: correlated and i.i.d.
    noise, scaling and shear grown by ``1 + 0.5 * severity`` (severity 0: the standard
    settings), from ``seed`` (not the standard data's seed, so no row repeats a test row). Every
    severity draws the same digits, each further from its clean version (the generator
    standardises its rows, so the shift is in shape, not scale). Generated offline; nothing is
    downloaded."""
    from mnist1d.data import get_dataset_args, make_dataset

    if isinstance(severity, bool) or severity not in (0, *SEVERITIES):
        raise ValueError(f"severity must be an int in 0..5; got {severity!r}")
    args = get_dataset_args()
    factor = 1.0 + 0.5 * severity
    args.num_samples = int(n_samples / (1 - args.train_split)) + 1
    args.seed = 1000 + seed
    for name in ("corr_noise_scale", "iid_noise_scale", "scale_coeff", "shear_scale"):
        setattr(args, name, getattr(args, name) * factor)
    data = make_dataset(args)
    return data["x_test"][:n_samples], data["y_test"][:n_samples]
