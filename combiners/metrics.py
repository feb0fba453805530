"""The library's metrics: plain functions over numpy arrays, one of each, used everywhere.

Every function takes the targets first and the outputs second (scikit-learn's order):

- classification: ``y``, class indices ``0..n_classes-1`` of shape ``(n_samples,)``, and
  ``proba``, probabilities of shape ``(..., n_samples, n_classes)``;
- regression: ``y`` of shape ``(n_samples,)`` or ``(n_samples, n_outputs)``, and
  ``prediction`` of shape ``(..., n_samples, n_outputs)`` (or ``(n_samples,)``).

Leading axes of the outputs are candidates (members, or candidate ensembles of a selection): a
metric returns one value per candidate, an array of the leading shape, and a ``float`` for
one set of outputs (torchmetrics' functional style). ``sample_weight`` (one weight per sample;
``None``: equal) weighs each sample's loss in the mean, as scikit-learn's metrics do.

The ``*_rows`` functions give each sample's loss, before the mean: the fusion guard compares
two models row by row with them.

This module sits in ``combiners``, the lowest package that needs a metric (the selection
minimises one), and imports numpy only; ``ensembles.metrics`` builds the evaluation reports on
it. :func:`nll` equals scikit-learn's ``log_loss`` and :func:`ece` torchmetrics'
``multiclass_calibration_error`` (``tests/combiners/test_metrics.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# bins of the expected calibration error
ECE_BINS = 15
# class probabilities: entries in [0, 1] up to rounding, each row summing to 1 within this
PROBA_SUM_TOLERANCE = 1e-3
PROBA_RANGE_TOLERANCE = 1e-6
# one weight per sample, or None (equal weights)
Weights = np.ndarray | None


def check_proba(proba: Any, what: str) -> np.ndarray:
    """Class probabilities checked where they enter the fusion rules and the calibration.

    Every combiner fitted on class labels, ``MeanCombiner``'s log-space means and temperature
    scaling take probabilities through it; ``members`` (which may not import ``combiners``)
    holds the same rule for member outputs and a teacher's targets
    (``members.tasks.check_probabilities``).

    Parameters
    ----------
    proba : array-like of shape (..., n_samples, n_classes)
        What should be class probabilities, ``n_classes >= 2``.
    what : str
        What they are, for the error (``"member 'mlp': predict_proba"``, ``"teacher"``).

    Returns
    -------
    ndarray
        ``proba`` as float64.

    Raises
    ------
    ValueError
        Naming ``what``: NaN or infinite values, fewer than 2 columns, entries outside [0, 1],
        or a row that does not sum to 1 (within ``PROBA_SUM_TOLERANCE``).

    Examples
    --------
    >>> check_proba([[0.2, 0.8]], "teacher")
    array([[0.2, 0.8]])
    >>> check_proba([[0.2, 0.2]], "teacher")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: teacher must be class probabilities ... a row summing to 0.4 (row 0)
    """
    array = np.asarray(proba, dtype=np.float64)
    if array.ndim < 2 or array.shape[-1] < 2:
        raise ValueError(
            f"{what} must be class probabilities of shape (n_samples, n_classes >= 2); got "
            f"shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be class probabilities; got NaN or infinite values")
    if array.size == 0:
        return array
    sums = array.sum(axis=-1).reshape(-1)
    worst = int(np.abs(sums - 1.0).argmax())
    low, high = array.min(), array.max()
    if (
        low < -PROBA_RANGE_TOLERANCE
        or high > 1 + PROBA_RANGE_TOLERANCE
        or abs(sums[worst] - 1.0) > PROBA_SUM_TOLERANCE
    ):
        raise ValueError(
            f"{what} must be class probabilities (entries in [0, 1], each row summing to 1); "
            f"got values in [{low:.3g}, {high:.3g}] and a row summing to {sums[worst]:.6g} "
            f"(row {worst % array.shape[-2] if array.ndim > 1 else worst})"
        )
    return array


def _mean(rows: np.ndarray, sample_weight: Weights) -> Any:
    """The (weighted) mean over samples, the last axis: a float, or one per candidate."""
    value = np.average(rows, axis=-1, weights=sample_weight)
    return float(value) if np.ndim(value) == 0 else value


def _truth(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each sample's probability of its true class, ``(..., n_samples)``."""
    labels = np.asarray(y, dtype=np.int64)
    return np.take_along_axis(proba, np.broadcast_to(labels[:, None], (*proba.shape[:-1], 1)), -1)[
        ..., 0
    ]


def nll_rows(y: np.ndarray, proba: np.ndarray, *, eps: float | None = None) -> np.ndarray:
    """Each sample's negative log-likelihood of its true class.

    The probability is clipped to ``[eps, 1 - eps]``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    eps : float, optional
        The clip; the machine epsilon of ``proba``'s dtype by default, as scikit-learn's
        ``log_loss``.

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per sample.
    """
    proba = np.asarray(proba)
    if eps is None:
        eps = float(np.finfo(proba.dtype if proba.dtype.kind == "f" else np.float64).eps)
    return -np.log(np.clip(_truth(y, proba), eps, 1 - eps))  # type: ignore[no-any-return]


def error_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """1.0 for each sample whose most probable class is not its true one, else 0.0.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per sample.
    """
    return (np.asarray(proba).argmax(axis=-1) != np.asarray(y)).astype(np.float64)


def brier_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each sample's multiclass Brier score, ``sum_k (p_k - [y == k])^2``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per sample.
    """
    proba = np.asarray(proba)
    onehot = np.eye(proba.shape[-1])[np.asarray(y, dtype=np.int64)]
    return np.sum((proba - onehot) ** 2, axis=-1)  # type: ignore[no-any-return]


def squared_error_rows(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Each sample's squared error, averaged over outputs.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    prediction : ndarray of the shape of ``y`` (or (..., n_samples, n_outputs))
        Predictions.

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per sample.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    n_samples = len(y)
    if prediction.ndim == 1:
        prediction = prediction[:, None]
    target = np.asarray(y, dtype=np.float64).reshape(n_samples, -1)
    return np.mean((prediction - target) ** 2, axis=-1)  # type: ignore[no-any-return]


def nll(
    y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None, *, eps: float | None = None
) -> Any:
    """Mean negative log-likelihood of the true class (scikit-learn's ``log_loss``).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.
    eps : float, optional
        The clip of the probabilities, as in :func:`nll_rows`.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.

    Examples
    --------
    >>> round(nll(np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])), 4)
    0.367
    """
    return _mean(nll_rows(y, proba, eps=eps), sample_weight)


def brier(y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None) -> Any:
    """Mean multiclass Brier score, ``sum_k (p_k - [y == k])^2`` per sample.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.

    Examples
    --------
    >>> round(brier(np.array([0, 1]), np.array([[0.8, 0.2], [0.4, 0.6]])), 4)
    0.2
    """
    return _mean(brier_rows(y, proba), sample_weight)


def error(y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None) -> Any:
    """Share of samples whose most probable class is not the true one (``1 - accuracy``).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.
    """
    return _mean(error_rows(y, proba), sample_weight)


def accuracy(y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None) -> Any:
    """Share of samples whose most probable class is the true one.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.

    Examples
    --------
    >>> accuracy(np.array([0, 1]), np.array([[0.8, 0.2], [0.6, 0.4]]))
    0.5
    """
    value = _mean(1.0 - error_rows(y, proba), sample_weight)
    return value


def rmse(y: np.ndarray, prediction: np.ndarray, sample_weight: Weights = None) -> Any:
    """Root mean squared error, the squared errors averaged over outputs.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    prediction : ndarray of the shape of ``y`` (or (..., n_samples, n_outputs))
        Predictions.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.

    Examples
    --------
    >>> rmse(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    1.4142135623730951
    """
    value = np.sqrt(np.average(squared_error_rows(y, prediction), axis=-1, weights=sample_weight))
    return float(value) if np.ndim(value) == 0 else value


def ece(
    y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None, n_bins: int = ECE_BINS
) -> float:
    """Expected calibration error of the top-class confidence over equal-width bins.

    ``sum_b |accuracy_b - confidence_b| * share_b``, each sample counting by its weight. The
    bins are torchmetrics' (``multiclass_calibration_error``, ``norm="l1"``): a sample of
    confidence ``c`` falls in the bin ``[k / n_bins, (k + 1) / n_bins)`` holding it, the
    confidence taken in float32, and a confidence of exactly 1 in a bin of its own.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.
    n_bins : int, default=15
        Number of bins.

    Returns
    -------
    float
        The error, in [0, 1].

    Examples
    --------
    >>> round(ece(np.array([0, 1]), np.array([[0.8, 0.2], [0.6, 0.4]])), 4)
    0.4
    """
    proba = np.asarray(proba)
    confidence = proba.max(axis=1).astype(np.float32)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    bounds = np.linspace(0.0, 1.0, n_bins + 1).astype(np.float32)
    bins = np.searchsorted(bounds, confidence, side="right") - 1
    weights = np.ones(len(confidence)) if sample_weight is None else np.asarray(sample_weight)
    total = np.bincount(bins, weights, minlength=n_bins + 1)
    gap = np.bincount(bins, weights * (confidence - correct), minlength=n_bins + 1)
    return float(np.abs(gap).sum() / total.sum())


def kl_rows(reference: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each sample's KL(reference || proba), both clipped to at least 1e-12.

    Parameters
    ----------
    reference : ndarray of shape (n_samples, n_classes)
        The reference distributions (a teacher's, an ensemble's).
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.

    Returns
    -------
    ndarray of shape (..., n_samples)
        One value per sample.
    """
    p = np.clip(reference, 1e-12, 1.0)
    q = np.clip(proba, 1e-12, 1.0)
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)  # type: ignore[no-any-return]


def kl_divergence(reference: np.ndarray, proba: np.ndarray, sample_weight: Weights = None) -> Any:
    """Mean KL(reference || proba) over samples.

    How far ``proba`` is from the reference distributions (a teacher's, an ensemble's).

    Parameters
    ----------
    reference : ndarray of shape (n_samples, n_classes)
        The reference distributions.
    proba : ndarray of shape (..., n_samples, n_classes)
        Class probabilities; leading axes (stacked candidates) give one value each.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float or ndarray
        A float, or one value per stacked candidate.

    Examples
    --------
    >>> kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]))
    0.0
    """
    return _mean(kl_rows(reference, proba), sample_weight)


# The losses a selection or a search may minimise, by name: lower is better.
CLASSIFICATION_LOSSES = {"nll": nll, "brier": brier, "error": error}
REGRESSION_LOSSES = {"rmse": rmse}
