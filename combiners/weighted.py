"""``WeightedCombiner``: a weighted mean of member outputs, weights given or learned."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize

from combiners._validation import EPS, check_targets
from combiners.base import WeightedMeanRule


def simplex_weights(loss_and_grad: Any, n_members: int) -> np.ndarray:
    """Minimise a convex loss of the weights over the probability simplex (SLSQP)."""
    result = minimize(
        loss_and_grad,
        np.full(n_members, 1.0 / n_members),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * n_members,
        constraints=[
            {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}
        ],
        options={"maxiter": 500, "ftol": 1e-10},
    )
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()  # type: ignore[no-any-return]


def _row_shares(n_samples: int, sample_weight: np.ndarray | None) -> np.ndarray:
    """Each row's share of a (weighted) mean: ``1 / n``, or its weight over their sum."""
    if sample_weight is None:
        return np.full(n_samples, 1.0 / n_samples)
    return sample_weight / sample_weight.sum()  # type: ignore[no-any-return]


def nll_weights(
    predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Weights minimising the (row-weighted) NLL of the weighted mean of member
    probabilities."""
    n_samples = predictions.shape[1]
    truth = predictions[:, np.arange(n_samples), y]  # (n_members, n_samples): p_m(true class)
    shares = _row_shares(n_samples, sample_weight)

    def loss_and_grad(weights: np.ndarray) -> tuple[float, np.ndarray]:
        fused = np.maximum(weights @ truth, EPS)
        return float(-shares @ np.log(fused)), -(truth / fused) @ shares

    return simplex_weights(loss_and_grad, len(predictions))


def squared_error_weights(
    predictions: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Non-negative weights summing to one minimising the (row-weighted) squared error
    (Breiman, 1996)."""
    n_members, n_samples, n_outputs = predictions.shape
    flat = predictions.reshape(n_members, -1)
    target = y.reshape(-1)
    shares = np.repeat(_row_shares(n_samples, sample_weight), n_outputs) / n_outputs

    def loss_and_grad(weights: np.ndarray) -> tuple[float, np.ndarray]:
        residual = weights @ flat - target
        return float(shares @ residual**2), 2.0 * flat @ (shares * residual)

    return simplex_weights(loss_and_grad, len(predictions))


class WeightedCombiner(WeightedMeanRule):
    """Weighted mean of member outputs.

    Parameters
    ----------
    weights : sequence of float, optional
        Fixed, non-negative weights, one per member (normalised to sum to one). When ``None``
        the weights are learned from held-out member outputs: minimising the negative
        log-likelihood of the fused probabilities over the simplex (classification), or the
        squared error with non-negative weights summing to one (regression, Breiman's stacked
        regression).

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)

    Examples
    --------
    >>> import numpy as np
    >>> predictions = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.5, 0.5]]])
    >>> WeightedCombiner([3, 1]).fit(predictions).combine(predictions)
    array([[0.8  , 0.2  ],
           [0.275, 0.725]])
    >>> learned = WeightedCombiner().fit(predictions, y=[0, 1])
    >>> learned.weights_.round(3)  # the informative member takes all the weight
    array([1., 0.])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"weights": ["array-like", None]}

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        self.weights = weights

    @property
    def learns(self) -> bool:
        """Whether the weights are learned.

        Returns
        -------
        bool
            ``True`` when ``weights`` is ``None`` (learned from held-out outputs), ``False``
            when they are given.
        """
        return self.weights is None

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        if self.weights is not None:
            self.weights_ = check_weights(self.weights, len(predictions))
            return
        is_classification, target = check_targets(predictions, y, type(self).__name__)
        if is_classification:
            self.weights_ = nll_weights(predictions, target, sample_weight)
        else:
            self.weights_ = squared_error_weights(predictions, target, sample_weight)


def check_weights(weights: Any, n_members: int) -> np.ndarray:
    """Validate fixed weights: one per member, finite, non-negative, not all zero."""
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or len(values) != n_members:
        raise ValueError(
            f"weights must hold one value per member; got {values.size} weights for "
            f"{n_members} members"
        )
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"weights must be finite and non-negative; got {values.tolist()}")
    if values.sum() == 0:
        raise ValueError("weights must not all be zero")
    return values / values.sum()  # type: ignore[no-any-return]
