"""Metrics for ensembles and their members: plain functions over numpy arrays.

Classification metrics take encoded labels ``y`` (integers ``0..n_classes-1``) and
probabilities ``proba`` of shape ``(n_samples, n_classes)``.
"""

from __future__ import annotations

import numpy as np
import properscoring
import torch
from sklearn.metrics import (
    average_precision_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from torchmetrics.functional.classification import multiclass_calibration_error

# metrics take labels encoded as class indices; this encodes them
from ensembles.uncertainty import gaussian_interval
from members.data import encode_labels as encode_labels

ECE_BINS = 15


def accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    """Share of samples whose most probable class is the true one."""
    return float(np.mean(proba.argmax(axis=1) == y))


def nll(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (scikit-learn's ``log_loss``)."""
    return float(log_loss(y, proba, labels=np.arange(proba.shape[1])))


def brier(y: np.ndarray, proba: np.ndarray) -> float:
    """Multiclass Brier score: mean over samples of ``sum_k (p_k - [y == k])^2``."""
    onehot = np.eye(proba.shape[1])[y]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def ece(y: np.ndarray, proba: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins (torchmetrics)."""
    return float(
        multiclass_calibration_error(
            torch.as_tensor(proba, dtype=torch.float64),
            torch.as_tensor(y, dtype=torch.long),
            num_classes=proba.shape[1],
            n_bins=n_bins,
            norm="l1",
        )
    )


def disagreement(predictions: np.ndarray) -> np.ndarray:
    """Pairwise disagreement of members: share of samples whose top classes differ.

    Returns the ``(n_members, n_members)`` matrix for ``predictions`` of shape
    ``(n_members, n_samples, n_classes)``.
    """
    votes = predictions.argmax(axis=2)
    return (votes[:, None, :] != votes[None, :, :]).mean(axis=2)  # type: ignore[no-any-return]


def classification_report(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, NLL, Brier and ECE of one set of probabilities."""
    return {
        "accuracy": accuracy(y, proba),
        "nll": nll(y, proba),
        "brier": brier(y, proba),
        "ece": ece(y, proba),
    }


def regression_report(y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² (averaged uniformly over outputs)."""
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, prediction))),
        "mae": float(mean_absolute_error(y, prediction)),
        "r2": float(r2_score(y, prediction)),
    }


# predictive distributions (regression) -------------------------------------------------------
INTERVAL_COVERAGE = 0.9


def gaussian_nll(y: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> float:
    """Mean negative log-likelihood of ``y`` under ``Normal(mean, variance)`` (all outputs)."""
    variance = np.maximum(variance, np.finfo(float).tiny)
    return float(np.mean(0.5 * (np.log(2 * np.pi * variance) + (y - mean) ** 2 / variance)))


def crps(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Mean continuous ranked probability score of ``Normal(mean, std^2)`` (properscoring);
    in the units of ``y``, and equal to the absolute error for a point prediction (std 0)."""
    std = np.broadcast_to(std, np.shape(mean))
    spread = std > 0
    scores = np.abs(y - mean)  # the CRPS of a point prediction
    scores[spread] = properscoring.crps_gaussian(y[spread], mu=mean[spread], sig=std[spread])
    return float(np.mean(scores))


def distribution_report(
    y: np.ndarray, mean: np.ndarray, variance: np.ndarray, coverage: float = INTERVAL_COVERAGE
) -> dict[str, float]:
    """Gaussian NLL, CRPS, and the share of ``y`` inside the central ``coverage`` interval
    (``coverage``) with its mean width (``width``)."""
    std = np.sqrt(variance)
    lower, upper = gaussian_interval(mean, std, coverage)
    return {
        "gaussian_nll": gaussian_nll(y, mean, variance),
        "crps": crps(y, mean, std),
        "coverage": float(np.mean((y >= lower) & (y <= upper))),
        "width": float(np.mean(upper - lower)),
    }


# out-of-distribution detection ---------------------------------------------------------------
def ood_report(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """How well a score (higher: more uncertain) tells out-of-distribution inputs from
    in-distribution ones: ``auroc`` (scikit-learn's ``roc_auc_score``) and ``aupr``
    (``average_precision_score``), out-of-distribution being the positive class."""
    labels = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    scores = np.r_[scores_in, scores_out]
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "aupr": float(average_precision_score(labels, scores)),
    }
