"""The uncertainty methods of estimators that wrap a fitted ensemble as ``ensemble_`` (snapshot
ensembles, the searches): each hands its inputs, checked by its own ``_validate_X``, to the
ensemble's method of the same name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np
import pandas as pd


class WrappedClassifierMixin:
    """:meth:`predict_uncertainty` and ``evaluate(X, y, X_ood)`` of the wrapped
    :class:`~ensembles.EnsembleClassifier`."""

    ensemble_: Any

    # the wrapper's own input check (defined by the class this mixes into)
    _validate_X: Callable[[Any], Any]

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """``total``, ``aleatoric`` and ``epistemic`` uncertainty per sample; see
        :meth:`EnsembleClassifier.predict_uncertainty`."""
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_uncertainty(X)  # type: ignore[no-any-return]

    def evaluate(
        self, X: Any, y: Any, X_ood: Any = None, *, sample_weight: Any = None
    ) -> pd.DataFrame:
        """The table of :meth:`EnsembleClassifier.evaluate`, one row per member, with the
        out-of-distribution columns when ``X_ood`` is given."""
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        X_ood = None if X_ood is None else self._validate_X(X_ood)
        return self.ensemble_.evaluate(  # type: ignore[no-any-return]
            X, y, X_ood=X_ood, sample_weight=sample_weight
        )


class WrappedRegressorMixin:
    """``predict(X, return_std)``, :meth:`predict_interval` and :meth:`predict_uncertainty`
    of the wrapped :class:`~ensembles.EnsembleRegressor`."""

    ensemble_: Any

    # the wrapper's own input check (defined by the class this mixes into)
    _validate_X: Callable[[Any], Any]

    @overload
    def predict(self, X: Any, return_std: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def predict(self, X: Any, return_std: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, X: Any, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Fused predictions and, with ``return_std=True``, the predictive standard deviation;
        see :meth:`EnsembleRegressor.predict`."""
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict(X, return_std=return_std)  # type: ignore[no-any-return]

    def predict_interval(self, X: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of the central ``coverage`` interval; see
        :meth:`EnsembleRegressor.predict_interval`."""
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_interval(X, coverage=coverage)  # type: ignore[no-any-return]

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """``total``, ``aleatoric`` and ``epistemic`` predictive variance per sample; see
        :meth:`EnsembleRegressor.predict_uncertainty`."""
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_uncertainty(X)  # type: ignore[no-any-return]
