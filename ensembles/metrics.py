"""Metrics for ensembles and their members: plain functions over numpy arrays.

Classification metrics take encoded labels ``y`` (integers ``0..n_classes-1``) and
probabilities ``proba`` of shape ``(n_samples, n_classes)``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, r2_score
from torchmetrics.functional.classification import multiclass_calibration_error

# metrics take labels encoded as class indices; this encodes them
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
