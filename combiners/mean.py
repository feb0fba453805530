"""``MeanCombiner``: unweighted averaging of member outputs."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit, logit, softmax
from sklearn.utils.validation import check_is_fitted

from combiners._validation import EPS, StrOptions
from combiners.base import BaseCombiner
from combiners.metrics import check_proba

METHODS = ("arithmetic", "geometric", "logit")


class MeanCombiner(BaseCombiner):
    """Average member outputs.

    Parameters
    ----------
    method : {"arithmetic", "geometric", "logit"}, default="arithmetic"
        - ``"arithmetic"``: mean of probabilities (soft voting), or of predictions for regression.
        - ``"geometric"``: normalised geometric mean of probabilities,
          ``softmax(mean(log p))`` — the same as averaging the members' logits.
        - ``"logit"``: per-class log-odds averaging, ``sigmoid(mean(logit p))``, rows then
          renormalised; sharper than the arithmetic mean where members agree.

    Examples
    --------
    >>> import numpy as np
    >>> predictions = np.array([[[0.9, 0.1]], [[0.5, 0.5]]])
    >>> MeanCombiner().fit(predictions).combine(predictions)
    array([[0.7, 0.3]])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"method": [StrOptions(set(METHODS))]}

    def __init__(self, method: str = "arithmetic") -> None:
        self.method = method

    def mixture_weights(self) -> np.ndarray | None:
        """Equal weights for the arithmetic mean.

        Returns
        -------
        ndarray of shape (n_members,) or None
            ``1 / n_members`` each for ``method="arithmetic"``; ``None`` for the geometric and
            logit means, which are not mixtures.
        """
        check_is_fitted(self, "n_members_")
        if self.method != "arithmetic":
            return None
        return np.full(self.n_members_, 1.0 / self.n_members_)

    def _combine(self, predictions: np.ndarray, X: object = None) -> np.ndarray:
        if self.method == "arithmetic":
            return predictions.mean(axis=0)  # type: ignore[no-any-return]
        check_proba(predictions, f"predictions (method={self.method!r} fuses class probabilities)")
        clipped = np.clip(predictions, EPS, 1.0 - EPS)
        if self.method == "geometric":
            return softmax(np.log(clipped).mean(axis=0), axis=1)  # type: ignore[no-any-return]
        fused = expit(logit(clipped).mean(axis=0))
        return fused / fused.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
