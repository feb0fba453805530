"""``cross_fitted_fusion``: fused outputs that a learned combiner did not see in its own fit."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

from combiners.base import BaseCombiner


def cross_fitted_fusion(
    combiner: BaseCombiner,
    predictions: np.ndarray,
    targets: np.ndarray,
    X: Any = None,
    sample_weight: np.ndarray | None = None,
    *,
    cv: int = 5,
    random_state: int = 0,
) -> np.ndarray:
    """Fused outputs that a learned combiner did not see in its own fit.

    Each row is fused by a clone of ``combiner`` fitted on the other folds (``cv`` shuffled
    folds, at most one per row), each fold's clone weighted by ``sample_weight`` (a fold whose
    rows all weigh 0 learns unweighted). A fixed rule simply combines (fitted or not).
    Calibration, the fusion guard and :class:`~combiners.AutoCombiner` judge a learned rule on
    these, so none of them sees its in-sample fit.

    Parameters
    ----------
    combiner : BaseCombiner
        The rule; it is cloned, never fitted itself.
    predictions : ndarray of shape (n_members, n_samples, n_outputs)
        Held-out member outputs.
    targets : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets of those rows (class indices for classification).
    X : array-like of shape (n_samples, n_features), default=None
        Raw features, for rules that use them.
    sample_weight : ndarray of shape (n_samples,), default=None
        Row weights in each fold's fit.
    cv : int, default=5
        Number of folds.
    random_state : int, default=0
        Seed of the fold shuffle.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs)
        The cross-fitted fused outputs.

    Examples
    --------
    >>> import numpy as np
    >>> from combiners import MeanCombiner
    >>> predictions = np.full((2, 4, 2), 0.5)
    >>> cross_fitted_fusion(MeanCombiner(), predictions, np.array([0, 1, 0, 1])).shape
    (4, 2)
    """
    if not combiner.learns:  # a fixed rule learns nothing: any fit of it fuses the same
        return clone(combiner).fit(predictions, X=X).combine(predictions, X=X)
    fused = np.zeros(predictions.shape[1:])
    folds = KFold(min(cv, len(targets)), shuffle=True, random_state=random_state)
    for train, test in folds.split(targets):
        weights = None if sample_weight is None else sample_weight[train]
        if weights is not None and not weights.any():
            weights = None
        fold_combiner = clone(combiner).fit(
            predictions[:, train],
            targets[train],
            X=None if X is None else X[train],
            sample_weight=weights,
        )
        fused[test] = fold_combiner.combine(predictions[:, test], X=None if X is None else X[test])
    return fused
