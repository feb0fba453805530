"""``EnsembleRegressor``: any scikit-learn regressors, fused by a combiner."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ensembles import metrics
from ensembles._base import BaseEnsemble, check_member_output
from members.data import to_numpy


class EnsembleRegressor(RegressorMixin, BaseEnsemble):
    """Train several regressors and fuse their predictions.

    Parameters and attributes are those of :class:`EnsembleClassifier` without calibration and
    ``classes_``; the default combiner is the plain mean, and an int ``cv`` makes plain
    (unstratified, shuffled) K folds. ``y`` may be 1-D or ``(n_samples, n_outputs)``.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.linear_model import Ridge
    >>> from members import NeuralRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=0)
    >>> ens = EnsembleRegressor(
    ...     [("mlp", NeuralRegressor(max_epochs=30)), ("ridge", Ridge())], random_state=0
    ... ).fit(X, y)
    >>> ens.predict(X[:4]).shape
    (4,)
    >>> ens.score(X, y) > 0.9
    True
    """

    def _validate_targets(
        self, X: Any, y: Any, active: list[tuple[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y = self._validate_fit_data(X, y, y_numeric=True, multi_output=True)
        self._y_ndim = y.ndim
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return X, y, y

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _member_output(self, name: str, member: Any, X: np.ndarray) -> np.ndarray:
        return member_predictions(member, X, self.n_outputs_, name)

    def predict(self, X: Any) -> np.ndarray:
        """Fused predictions, 1-D when the training targets were 1-D."""
        return self._shaped(self._fused(X))

    def _shaped(self, fused: np.ndarray) -> np.ndarray:
        return fused.ravel() if self._y_ndim == 1 else fused

    def evaluate(self, X: Any, y: Any) -> pd.DataFrame:
        """One row per member and one for the ensemble: RMSE, MAE, R²."""
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        predictions = self._predict_members(X)
        target = np.asarray(to_numpy(y))
        target = target.reshape(len(target), -1)
        rows = {
            name: metrics.regression_report(target, prediction)
            for name, prediction in zip(self.named_members_, predictions, strict=True)
        }
        rows["ensemble"] = metrics.regression_report(target, self._fuse(predictions, X))
        return pd.DataFrame.from_dict(rows, orient="index")

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def member_predictions(member: Any, X: np.ndarray, n_outputs: int, name: str) -> np.ndarray:
    """Member ``name``'s predictions on ``X`` as ``(n_samples, n_outputs)``, checked by
    :func:`check_member_output` (one output may come as ``(n_samples,)``)."""
    output = member.predict(X)
    shape = (len(X),) if n_outputs == 1 and np.ndim(output) == 1 else (len(X), n_outputs)
    return check_member_output(output, name, "predict", shape).reshape(len(X), n_outputs)
