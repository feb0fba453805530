"""``SnapshotCombiner``: fuse the snapshots of one cyclic training run."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from combiners._validation import Interval
from combiners.base import WeightedMeanRule
from combiners.weighted import check_weights


class SnapshotCombiner(WeightedMeanRule):
    """Average the last ``n_last`` snapshots (all by default), uniformly or with fixed weights.

    Snapshots are ordered oldest first, so the last ones are the most trained. Any other
    combiner (e.g. a learned :class:`~combiners.WeightedCombiner`) can be used on snapshots too.

    Parameters
    ----------
    n_last : int, optional
        How many of the most recent snapshots to use; all when ``None``.
    weights : sequence of float, optional
        Fixed non-negative weights for those ``n_last`` snapshots, oldest first.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Zero for the snapshots left out.

    Examples
    --------
    >>> import numpy as np
    >>> predictions = np.array([[[1.0, 0.0]], [[0.5, 0.5]], [[0.0, 1.0]]])
    >>> SnapshotCombiner(n_last=2).fit(predictions).combine(predictions)
    array([[0.25, 0.75]])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_last": [Interval(Integral, 1, None, closed="left"), None],
        "weights": ["array-like", None],
    }

    def __init__(self, n_last: int | None = None, weights: Sequence[float] | None = None) -> None:
        self.n_last = n_last
        self.weights = weights

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        n_members = len(predictions)
        n_last = n_members if self.n_last is None else self.n_last
        if not (isinstance(n_last, int | np.integer) and 1 <= n_last <= n_members):
            raise ValueError(f"n_last must be an int in [1, {n_members}]; got {self.n_last!r}")
        weights = np.ones(n_last) if self.weights is None else self.weights
        self.weights_ = np.zeros(n_members)
        self.weights_[n_members - n_last :] = check_weights(weights, n_last)
