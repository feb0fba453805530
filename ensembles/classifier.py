"""``EnsembleClassifier``: any scikit-learn classifiers, fused by a combiner."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from ensembles import metrics
from ensembles._base import BaseEnsemble
from members._data import encode_classes, to_numpy


class EnsembleClassifier(ClassifierMixin, BaseEnsemble):
    """Train several classifiers and fuse their class probabilities.

    Parameters
    ----------
    members : list of (str, estimator)
        Named members, as in ``StackingClassifier(estimators=...)``: ``NeuralClassifier``\\ s or
        any scikit-learn classifier. A member set to ``"drop"`` is left out.
    combiner : BaseCombiner, optional
        Fusion rule; :class:`~combiners.MeanCombiner` (soft voting) when ``None``.
    random_state : int, RandomState or None, default=None
        When set, every member whose own ``random_state`` is ``None`` gets a distinct seed drawn
        from it, so the ensemble is reproducible and its members differ.
    verbose : bool, default=False
        Print which member is being trained.

    Attributes
    ----------
    members_ : list of estimators
        Fitted members, in order (``"drop"`` ones left out).
    named_members_ : dict
        Fitted members by name.
    combiner_ : BaseCombiner
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> ens = EnsembleClassifier(
    ...     [("mlp", NeuralClassifier(max_epochs=30)), ("lr", LogisticRegression(max_iter=1000))],
    ...     random_state=0,
    ... ).fit(X, y)
    >>> ens.member_predictions(X).shape
    (2, 150, 3)
    >>> ens.score(X, y) > 0.9
    True
    """

    def fit(self, X: Any, y: Any) -> EnsembleClassifier:
        """Fit every member on ``(X, y)``, then the combiner."""
        self._check_members()
        X, y = self._validate_fit_data(X, y)
        check_classification_targets(y)
        self.classes_, encoded = encode_classes(y, type(self).__name__)
        self._fit_members(X, encoded)
        return self

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        """Member probabilities laid out on the ensemble's classes (a member may lack some)."""
        columns = np.asarray(member.classes_, dtype=int)
        proba = np.zeros((len(X), len(self.classes_)))
        if hasattr(member, "predict_proba"):
            proba[:, columns] = member.predict_proba(X)
        else:
            # A member with hard predictions only counts as a one-hot vote.
            proba[np.arange(len(X)), member.predict(X).astype(int)] = 1.0
        return proba

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fused class probabilities, ``(n_samples, n_classes)``."""
        return self._fused(X)

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest fused probability."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]  # type: ignore[no-any-return]

    def evaluate(self, X: Any, y: Any) -> pd.DataFrame:
        """One row per member and one for the ensemble: accuracy, NLL, Brier, ECE, disagreement.

        ``disagreement`` is a member's mean share of differing top-class predictions against the
        other members; on the ensemble row, the mean over all member pairs.
        """
        predictions = self.member_predictions(X)
        encoded = self._encode_labels(y)
        rows = {
            name: metrics.classification_report(encoded, proba)
            for name, proba in zip(self.named_members_, predictions, strict=True)
        }
        rows["ensemble"] = metrics.classification_report(
            encoded, self.combiner_.combine(predictions)
        )
        pairwise = metrics.disagreement(predictions)
        n_members = len(predictions)
        others = max(n_members - 1, 1)
        for name, row in zip(self.named_members_, pairwise, strict=True):
            rows[name]["disagreement"] = float(row.sum() / others)
        rows["ensemble"]["disagreement"] = float(pairwise.sum() / max(n_members * others, 1))
        return pd.DataFrame.from_dict(rows, orient="index")

    def _encode_labels(self, y: Any) -> np.ndarray:
        y = np.asarray(to_numpy(y))
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(
                f"y holds labels not seen during fit: {unknown[:5].tolist()}; "
                f"known classes are {self.classes_.tolist()}"
            )
        return np.searchsorted(self.classes_, y)  # type: ignore[no-any-return]
