"""``StackingCombiner``: a scikit-learn meta-learner on member outputs."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.utils.validation import has_fit_parameter

from combiners._validation import HasMethods, StrOptions, check_features, check_targets, safe_log
from combiners.base import BaseCombiner

FEATURES = ("proba", "logit")


class StackingCombiner(BaseCombiner):
    """Stacked generalisation: a meta-learner trained on held-out member outputs.

    Features follow scikit-learn's ``StackingClassifier``: each member's class columns side by
    side, and only the positive-class column per member for binary problems.

    Parameters
    ----------
    final_estimator : estimator, optional
        Any scikit-learn classifier (with ``predict_proba``) or regressor. Default:
        ``LogisticRegression()`` for classification, ``RidgeCV()`` for regression.
    features : {"proba", "logit"}, default="proba"
        ``"logit"`` feeds log-probabilities (binary: log-odds) instead, often a better scale
        for a linear meta-learner.
    passthrough : bool, default=False
        Also feed the raw features ``X``; then ``fit`` and ``combine`` need ``X`` (an ensemble
        passes it in).

    Attributes
    ----------
    final_estimator_ : estimator
        The fitted meta-learner.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 100)
    >>> good = np.stack([1 - 0.8 * y - 0.1, 0.8 * y + 0.1], axis=1)
    >>> noise = rng.dirichlet([1, 1], 100)
    >>> stack = StackingCombiner().fit(np.stack([good, noise]), y)
    >>> (stack.combine(np.stack([good, noise])).argmax(axis=1) == y).mean()
    np.float64(1.0)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "final_estimator": [HasMethods(["fit"]), None],
        "features": [StrOptions(set(FEATURES))],
        "passthrough": ["boolean"],
    }

    def __init__(
        self,
        final_estimator: Any = None,
        *,
        features: str = "proba",
        passthrough: bool = False,
    ) -> None:
        self.final_estimator = final_estimator
        self.features = features
        self.passthrough = passthrough

    @property
    def learns(self) -> bool:
        """``True``: the meta-learner is fitted on held-out member outputs.

        Returns
        -------
        bool
        """
        return True

    def check_task(self, classification: bool) -> None:
        """Raise ``TypeError`` if ``final_estimator`` is of the other kind.

        A regressor cannot stack a classification ensemble's outputs, nor a classifier a
        regression ensemble's.

        Parameters
        ----------
        classification : bool
            ``True`` for a classification ensemble, ``False`` for a regression one.
        """
        if self.final_estimator is not None:
            _check_meta_learner(self.final_estimator, classification)

    def _stack(self, predictions: np.ndarray, X: Any) -> np.ndarray:
        n_members, n_samples, n_outputs = predictions.shape
        values = predictions
        if self.is_classification_:
            if self.features == "logit":
                values = safe_log(predictions)
            if n_outputs == 2:
                binary = values[:, :, 1] - (values[:, :, 0] if self.features == "logit" else 0)
                values = binary[:, :, None]
        stacked = values.transpose(1, 0, 2).reshape(n_samples, -1)
        if self.passthrough:
            if X is None:
                raise ValueError(
                    "StackingCombiner(passthrough=True) feeds the raw features too: pass X"
                )
            stacked = np.hstack([stacked, check_features(X, n_samples)])
        return stacked

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        if self.features not in FEATURES:
            raise ValueError(
                f"features={self.features!r} is not supported; expected one of {FEATURES}"
            )
        self.is_classification_, target = check_targets(predictions, y, type(self).__name__)
        if self.final_estimator is not None:
            estimator = clone(self.final_estimator)
        else:
            estimator = LogisticRegression() if self.is_classification_ else RidgeCV()
        _check_meta_learner(estimator, self.is_classification_)
        if self.is_classification_ and len(np.unique(target)) < 2:
            raise ValueError(
                "StackingCombiner learns a classifier on held-out member outputs, which needs "
                f"at least 2 classes in y; got only class {target[0]} (use more held-out data "
                "or MeanCombiner)"
            )
        if not self.is_classification_ and target.shape[1] == 1:
            target = target.ravel()
        weighted = {}
        if sample_weight is not None:
            if not has_fit_parameter(estimator, "sample_weight"):
                raise TypeError(
                    f"the meta-learner {type(estimator).__name__} takes no sample_weight in fit, "
                    "so a weighted fit cannot reach it; pass a final_estimator that does "
                    "(LogisticRegression, RidgeCV...)"
                )
            weighted["sample_weight"] = sample_weight
        self.final_estimator_ = estimator.fit(self._stack(predictions, X), target, **weighted)

    def _combine(self, predictions: np.ndarray, X: Any = None) -> np.ndarray:
        stacked = self._stack(predictions, X)
        n_samples, n_outputs = predictions.shape[1:]
        if not self.is_classification_:
            return np.asarray(self.final_estimator_.predict(stacked), dtype=np.float64).reshape(
                n_samples, n_outputs
            )
        # The meta-learner knows only the classes it saw; lay them out on all n_outputs.
        proba = np.zeros((n_samples, n_outputs))
        columns = np.asarray(self.final_estimator_.classes_, dtype=int)
        proba[:, columns] = self.final_estimator_.predict_proba(stacked)
        return proba


def _check_meta_learner(estimator: Any, classification: bool) -> None:
    """A classifier with ``predict_proba`` for classification; anything but a classifier for
    regression."""
    name = type(estimator).__name__
    if classification and not (is_classifier(estimator) and hasattr(estimator, "predict_proba")):
        raise TypeError(
            "for classification, final_estimator must be a classifier with predict_proba; "
            f"got {name}"
        )
    if not classification and is_classifier(estimator):
        raise TypeError(
            f"for regression, final_estimator must be a regressor; got the classifier {name}"
        )
