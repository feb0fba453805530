"""Metrics for ensembles and their members: plain functions over numpy arrays.

Classification metrics take encoded labels ``y`` (integers ``0..n_classes-1``) and
probabilities ``proba`` of shape ``(n_samples, n_classes)``. Every per-sample metric takes
``sample_weight`` (one weight per sample; ``None``: equal), as scikit-learn's metrics do.
"""

from __future__ import annotations

import numpy as np
import properscoring
from sklearn.metrics import (
    average_precision_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

# the metrics themselves live in combiners.metrics, the lowest package that needs them; this
# module builds the reports of evaluate() and the study on them
from combiners.metrics import ECE_BINS as ECE_BINS
from combiners.metrics import Weights, rmse
from combiners.metrics import accuracy as accuracy
from combiners.metrics import brier as brier
from combiners.metrics import ece as ece
from combiners.metrics import kl_divergence as kl_divergence
from combiners.metrics import nll as nll
from ensembles.uncertainty import gaussian_interval

# metrics take labels encoded as class indices; this encodes them
from members.data import encode_labels as encode_labels


def disagreement(predictions: np.ndarray, sample_weight: Weights = None) -> np.ndarray:
    """Pairwise disagreement of members: share of samples whose top classes differ.

    Parameters
    ----------
    predictions : ndarray of shape (n_members, n_samples, n_classes)
        The members' probabilities.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    ndarray of shape (n_members, n_members)
        Symmetric, zero on the diagonal.
    """
    votes = predictions.argmax(axis=2)
    differ = votes[:, None, :] != votes[None, :, :]
    return np.average(differ, axis=2, weights=sample_weight)  # type: ignore[no-any-return]


def classification_report(
    y: np.ndarray, proba: np.ndarray, sample_weight: Weights = None
) -> dict[str, float]:
    """Accuracy, NLL, Brier and ECE of one set of probabilities.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        True labels, encoded as class indices ``0 .. n_classes - 1``.
    proba : ndarray of shape (n_samples, n_classes)
        Class probabilities.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    dict of str to float
        Keys ``accuracy``, ``nll``, ``brier``, ``ece``.
    """
    return {
        "accuracy": accuracy(y, proba, sample_weight),
        "nll": nll(y, proba, sample_weight),
        "brier": brier(y, proba, sample_weight),
        "ece": ece(y, proba, sample_weight),
    }


def regression_report(
    y: np.ndarray, prediction: np.ndarray, sample_weight: Weights = None
) -> dict[str, float]:
    """RMSE, MAE and R² (averaged uniformly over outputs).

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    prediction : ndarray of the shape of ``y``
        Predictions.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    dict of str to float
        Keys ``rmse``, ``mae``, ``r2``.
    """
    return {
        "rmse": rmse(y, prediction, sample_weight),
        "mae": float(mean_absolute_error(y, prediction, sample_weight=sample_weight)),
        "r2": float(r2_score(y, prediction, sample_weight=sample_weight)),
    }


# predictive distributions (regression) -------------------------------------------------------
INTERVAL_COVERAGE = 0.9


def _sample_mean(values: np.ndarray, sample_weight: Weights) -> float:
    """The mean over samples (axis 0; weighted) of the mean over outputs."""
    per_sample = np.asarray(values, dtype=np.float64).reshape(len(values), -1).mean(axis=1)
    return float(np.average(per_sample, weights=sample_weight))


def gaussian_nll(
    y: np.ndarray, mean: np.ndarray, variance: np.ndarray, sample_weight: Weights = None
) -> float:
    """Mean negative log-likelihood of ``y`` under ``Normal(mean, variance)``.

    Over all outputs.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    mean : ndarray of the shape of ``y``
        Predicted means.
    variance : ndarray of the shape of ``y``
        Predicted variances.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float
        The mean NLL.
    """
    variance = np.maximum(variance, np.finfo(float).tiny)
    scores = 0.5 * (np.log(2 * np.pi * variance) + (y - mean) ** 2 / variance)
    return _sample_mean(scores, sample_weight)


def crps(y: np.ndarray, mean: np.ndarray, std: np.ndarray, sample_weight: Weights = None) -> float:
    """Mean continuous ranked probability score of ``Normal(mean, std^2)`` (properscoring).

    In the units of ``y``, and equal to the absolute error for a point prediction (std 0).

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    mean : ndarray of the shape of ``y``
        Predicted means.
    std : ndarray of the shape of ``y``, or a scalar
        Predicted standard deviations.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.

    Returns
    -------
    float
        The mean CRPS.
    """
    std = np.broadcast_to(std, np.shape(mean))
    spread = std > 0
    scores = np.abs(y - mean)  # the CRPS of a point prediction
    scores[spread] = properscoring.crps_gaussian(y[spread], mu=mean[spread], sig=std[spread])
    return _sample_mean(scores, sample_weight)


def distribution_report(
    y: np.ndarray,
    mean: np.ndarray,
    variance: np.ndarray,
    sample_weight: Weights = None,
    coverage: float = INTERVAL_COVERAGE,
) -> dict[str, float]:
    """Gaussian NLL, CRPS, and the coverage and width of the central interval.

    ``coverage`` is the share of ``y`` inside the central ``coverage`` interval, ``width`` its
    mean width.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        True targets.
    mean : ndarray of the shape of ``y``
        Predicted means.
    variance : ndarray of the shape of ``y``
        Predicted variances.
    sample_weight : ndarray of shape (n_samples,), default=None
        Each sample's weight; ``None``: equal.
    coverage : float, default=0.9
        The interval's nominal coverage.

    Returns
    -------
    dict of str to float
        Keys ``gaussian_nll``, ``crps``, ``coverage``, ``width``.
    """
    std = np.sqrt(variance)
    lower, upper = gaussian_interval(mean, std, coverage)
    return {
        "gaussian_nll": gaussian_nll(y, mean, variance, sample_weight),
        "crps": crps(y, mean, std, sample_weight),
        "coverage": _sample_mean((y >= lower) & (y <= upper), sample_weight),
        "width": _sample_mean(upper - lower, sample_weight),
    }


# out-of-distribution detection ---------------------------------------------------------------
def ood_report(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """How well a score tells out-of-distribution inputs from in-distribution ones.

    Out-of-distribution is the positive class; a higher score means more uncertain.

    Parameters
    ----------
    scores_in : ndarray of shape (n_in,)
        The score on in-distribution inputs.
    scores_out : ndarray of shape (n_out,)
        The score on out-of-distribution inputs.

    Returns
    -------
    dict of str to float
        ``auroc`` (scikit-learn's ``roc_auc_score``) and ``aupr``
        (``average_precision_score``).
    """
    labels = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    scores = np.r_[scores_in, scores_out]
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
    }
