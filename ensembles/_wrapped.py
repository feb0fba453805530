"""The prediction and uncertainty methods of estimators that wrap a fitted ensemble as
``ensemble_`` (snapshot ensembles, ensembles inside one network, the searches): each hands its
inputs, checked by its own ``_validate_X``, to the ensemble's method of the same name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner


class WrappedEnsembleMixin:
    """``members_``, ``combiner_``, :meth:`member_predictions`, :meth:`predict`,
    :meth:`distill` and :meth:`evaluate` of the wrapped ensemble."""

    ensemble_: Any

    # the wrapper's own input check (defined by the class this mixes into)
    _validate_X: Callable[[Any], Any]

    @property
    def members_(self) -> list[Any]:
        """The wrapped ensemble's fitted members, in order."""
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.members_  # type: ignore[no-any-return]

    @property
    def combiner_(self) -> BaseCombiner:
        """The fitted fusion rule.

        Returns
        -------
        BaseCombiner
        """
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.combiner_  # type: ignore[no-any-return]

    def member_predictions(self, X: Any) -> np.ndarray:
        """Outputs of every member, in order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (n_members, n_samples, n_outputs)
            One output per member, laid out on the ensemble's outputs.
        """
        X = self._validate_X(X)
        return self.ensemble_.member_predictions(X)  # type: ignore[no-any-return]

    def predict(self, X: Any) -> np.ndarray:
        """The ensemble's predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (a classifier) or predictions (a regressor).
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict(X)  # type: ignore[no-any-return]

    def distill(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """Compress the members into one student.

        See :meth:`EnsembleClassifier.distill`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,), default=None
            True targets of ``X``.
        **kwargs
            The options of :meth:`EnsembleClassifier.distill`.

        Returns
        -------
        estimator
            The fitted student.
        """
        X = self._validate_X(X)
        return self.ensemble_.distill(X, y, **kwargs)

    def soup(self, X: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """Average the members' weights into one network.

        See :meth:`EnsembleClassifier.soup` and :func:`ensembles.soup`; a snapshot
        ensemble's snapshots come from one run, so they share a basin and average well.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Held-out rows for ``method="greedy"``, which the run did not train on.
        y : array-like of shape (n_samples,), default=None
            Their targets.
        **kwargs
            The options of :meth:`EnsembleClassifier.soup`.

        Returns
        -------
        estimator
            The fitted soup.
        """
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.soup(X, y, **kwargs)

    def evaluate(self, X: Any, y: Any, *, sample_weight: Any = None) -> pd.DataFrame:
        """The table of :meth:`EnsembleClassifier.evaluate`, one row per member.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets of those rows.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight in every metric.

        Returns
        -------
        DataFrame
            One row per member and one named ``"ensemble"``.
        """
        X = self._validate_X(X)
        return self.ensemble_.evaluate(  # type: ignore[no-any-return]
            X, y, sample_weight=sample_weight
        )


class WrappedClassifierMixin(WrappedEnsembleMixin):
    """:meth:`predict_uncertainty` and ``evaluate(X, y, X_ood)`` of the wrapped
    :class:`~ensembles.EnsembleClassifier`."""

    ensemble_: Any

    # the wrapper's own input check (defined by the class this mixes into)
    _validate_X: Callable[[Any], Any]

    def predict_proba(self, X: Any) -> np.ndarray:
        """The wrapped ensemble's class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        X = self._validate_X(X)
        return self.ensemble_.predict_proba(X)  # type: ignore[no-any-return]

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """Total, aleatoric and epistemic uncertainty per sample.

        See :meth:`EnsembleClassifier.predict_uncertainty`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        DataFrame of shape (n_samples, 3)
            Columns ``total``, ``aleatoric`` and ``epistemic``, in nats.
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_uncertainty(X)  # type: ignore[no-any-return]

    def evaluate(
        self, X: Any, y: Any, X_ood: Any = None, *, sample_weight: Any = None
    ) -> pd.DataFrame:
        """The table of :meth:`EnsembleClassifier.evaluate`.

        One row per member, with the out-of-distribution columns when ``X_ood`` is given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets of those rows.
        X_ood : array-like of shape (n_ood, n_features), default=None
            Out-of-distribution rows; when given, the table has the columns ``auroc_<score>`` and
            ``aupr_<score>``.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight in every metric.

        Returns
        -------
        DataFrame
            One row per member and one named ``"ensemble"``.
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        X_ood = None if X_ood is None else self._validate_X(X_ood)
        return self.ensemble_.evaluate(  # type: ignore[no-any-return]
            X, y, X_ood=X_ood, sample_weight=sample_weight
        )


class WrappedRegressorMixin(WrappedEnsembleMixin):
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
        """Fused predictions and, optionally, the predictive standard deviation.

        See :meth:`EnsembleRegressor.predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        return_std : bool, default=False
            Also return the predictive standard deviation.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The fused predictions.
        std : ndarray of the shape of ``mean``
            Only with ``return_std=True``.
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict(X, return_std=return_std)  # type: ignore[no-any-return]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict_interval(self, X: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """The central ``coverage`` interval of each prediction.

        See :meth:`EnsembleRegressor.predict_interval`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        coverage : float, default=0.9
            Share of the predictive distribution between the bounds, in (0, 1).

        Returns
        -------
        lower : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The lower bounds.
        upper : ndarray of the shape of ``lower``
            The upper bounds.
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_interval(X, coverage=coverage)  # type: ignore[no-any-return]

    def predict_uncertainty(self, X: Any) -> pd.DataFrame:
        """Total, aleatoric and epistemic predictive variance per sample.

        See :meth:`EnsembleRegressor.predict_uncertainty`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        DataFrame
            Columns ``total``, ``aleatoric`` and ``epistemic`` (one set per output, suffixed
            ``_0``, ``_1``, ... with several outputs).
        """
        X = self._validate_X(X)  # first: it raises NotFittedError before fit
        return self.ensemble_.predict_uncertainty(X)  # type: ignore[no-any-return]
