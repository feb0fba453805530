"""Predictive uncertainty of an ensemble, from its members' outputs: plain numpy functions.

Classification (Depeweg et al., 2018; Malinin & Gales, 2018): the entropy of the fused
probabilities is the ``total`` uncertainty; the members' expected entropy is the ``aleatoric``
part (noise every member sees); their mutual information with the prediction, the entropy of
the mixture minus the expected entropy, is the ``epistemic`` part (their disagreement).

Regression (Lakshminarayanan et al., 2017): the ensemble is a mixture of the members'
predictive distributions. Its variance is the members' mean variance (``aleatoric``; zero for a
point-prediction member) plus the variance of their means around the ensemble's prediction
(``epistemic``). Intervals treat the mixture as one Gaussian with these moments.

The weights are those of the combiner when it is a weighted mean
(:meth:`~combiners.BaseCombiner.mixture_weights`), equal otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import norm

from combiners import BaseCombiner

COMPONENTS = ("total", "aleatoric", "epistemic")


def entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of ``proba`` (``(..., n_classes)`` to ``(...)``)."""
    safe = np.where(proba > 0, proba, 1.0)
    return -(proba * np.log(safe)).sum(axis=-1)  # type: ignore[no-any-return]


def member_weights(combiner: BaseCombiner, n_members: int) -> np.ndarray:
    """The combiner's mixture weights, or equal ones when it is not a weighted mean."""
    weights = combiner.mixture_weights()
    if weights is None:
        return np.full(n_members, 1.0 / n_members)
    return np.asarray(weights, dtype=np.float64)


def classification_uncertainty(
    predictions: np.ndarray, fused: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """``total`` (entropy of ``fused``), ``aleatoric`` (expected member entropy) and
    ``epistemic`` (mutual information: entropy of the weighted mixture of the members minus
    their expected entropy, never negative), one value per sample.

    ``predictions`` are the member probabilities ``(n_members, n_samples, n_classes)``. When
    ``fused`` is the mixture itself (a weighted mean, no calibration), ``total`` equals
    ``aleatoric + epistemic``.

    Examples
    --------
    >>> p = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two sure members that disagree
    >>> parts = classification_uncertainty(p, p.mean(axis=0), np.array([0.5, 0.5]))
    >>> [round(float(parts[k][0]), 4) for k in ("total", "aleatoric", "epistemic")]
    [0.6931, 0.0, 0.6931]
    """
    aleatoric = np.tensordot(weights, entropy(predictions), axes=1)
    mixture = np.tensordot(weights, predictions, axes=1)
    epistemic = np.maximum(entropy(mixture) - aleatoric, 0.0)
    return {"total": entropy(fused), "aleatoric": aleatoric, "epistemic": epistemic}


def regression_uncertainty(
    means: np.ndarray, variances: np.ndarray, fused: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """``aleatoric`` (weighted mean of the member variances), ``epistemic`` (weighted mean
    squared distance of the member means from the ensemble's prediction ``fused``) and
    ``total`` (their sum), each ``(n_samples, n_outputs)``.

    Examples
    --------
    >>> means = np.array([[[0.0]], [[2.0]]]); variances = np.array([[[1.0]], [[3.0]]])
    >>> parts = regression_uncertainty(means, variances, means.mean(axis=0), np.array([0.5, 0.5]))
    >>> [float(parts[k][0, 0]) for k in ("total", "aleatoric", "epistemic")]
    [3.0, 2.0, 1.0]
    """
    aleatoric = np.tensordot(weights, variances, axes=1)
    epistemic = np.tensordot(weights, (means - fused[None]) ** 2, axes=1)
    return {"total": aleatoric + epistemic, "aleatoric": aleatoric, "epistemic": epistemic}


def check_coverage(coverage: Any) -> float:
    """``coverage`` as a float in (0, 1), or a ``ValueError`` naming it."""
    if isinstance(coverage, bool) or not isinstance(coverage, int | float | np.floating):
        raise TypeError(f"coverage must be a float in (0, 1); got {type(coverage).__name__}")
    if not 0.0 < float(coverage) < 1.0:
        raise ValueError(f"coverage must be in (0, 1), e.g. 0.9; got {coverage!r}")
    return float(coverage)


def gaussian_interval(
    mean: np.ndarray, std: np.ndarray, coverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """The central ``coverage`` interval ``(lower, upper)`` of ``Normal(mean, std^2)``."""
    half = norm.ppf(0.5 + check_coverage(coverage) / 2.0) * std
    return mean - half, mean + half
