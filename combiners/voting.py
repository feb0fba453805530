"""``VotingCombiner``: hard majority vote."""

from __future__ import annotations

import numpy as np

from combiners.base import BaseCombiner


class VotingCombiner(BaseCombiner):
    """Hard majority vote over the members' most probable classes.

    The fused output is each class's share of the votes, ``(n_samples, n_classes)``. Taking
    its ``argmax`` gives the majority class; ties go to the class that comes first, as in
    scikit-learn's ``VotingClassifier(voting="hard")``.

    Examples
    --------
    >>> import numpy as np
    >>> predictions = np.array([[[0.9, 0.1]], [[0.4, 0.6]], [[0.6, 0.4]]])
    >>> VotingCombiner().fit(predictions).combine(predictions).round(3)
    array([[0.667, 0.333]])
    """

    def _combine(self, predictions: np.ndarray, X: object = None) -> np.ndarray:
        n_members, n_samples, n_classes = predictions.shape
        votes = predictions.argmax(axis=2)
        counts = np.zeros((n_samples, n_classes))
        for member_votes in votes:
            counts[np.arange(n_samples), member_votes] += 1
        return counts / n_members
