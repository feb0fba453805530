"""``BaseCombiner``: the contract every fusion rule follows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from combiners._validation import check_predictions, check_sample_weights


class BaseCombiner(BaseEstimator, ABC):
    """Fuse member outputs ``(n_members, n_samples, n_outputs)`` into ``(n_samples, n_outputs)``.

    Subclasses implement :meth:`_combine`; rules that learn from held-out member outputs also
    override :meth:`_fit` and :attr:`learns`. ``X`` (raw features) is optional everywhere and
    used only by rules that say so (stacking with ``passthrough=True``).

    Attributes
    ----------
    n_members_ : int
    n_outputs_ : int

    Parameters are declared in scikit-learn's ``_parameter_constraints`` vocabulary and checked
    when ``fit`` starts, with one message shape (parameter, expected, received).

    Examples
    --------
    A rule of one's own: the member with the highest output wins, per sample and output.

    >>> import numpy as np
    >>> class MaxCombiner(BaseCombiner):
    ...     def _combine(self, predictions, X=None):
    ...         return predictions.max(axis=0)
    >>> MaxCombiner().fit(np.zeros((2, 0, 1))).combine(np.array([[[1.0]], [[3.0]]]))
    array([[3.]])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    @property
    def learns(self) -> bool:
        """Whether ``fit`` learns from outputs and targets (and so needs held-out predictions).

        ``False`` for fixed rules (averaging, voting, given weights): their ``fit`` only records
        the shape, so an ensemble fits them on a zero-sample array and spends no prediction pass
        on its training data.
        """
        return False

    def mixture_weights(self) -> np.ndarray | None:
        """Each member's weight when this fitted rule is a weighted mean of member outputs.

        Then the fused output is the mean of a mixture of the members' predictive
        distributions, which is what uncertainty is read from.

        Returns
        -------
        ndarray of shape (n_members,) or None
            The weights (non-negative, summing to one); ``None`` for rules that are not a
            weighted mean (geometric or logit means, votes, stacking).
        """
        return None

    def check_task(self, classification: bool) -> None:
        """Raise ``TypeError`` if this rule's settings cannot serve the task.

        An ensemble asks before training its members; every rule fits both tasks unless it
        says otherwise.

        Parameters
        ----------
        classification : bool
            ``True`` for a classification ensemble, ``False`` for a regression one.
        """

    def fit(
        self, predictions: Any, y: Any = None, X: Any = None, sample_weight: Any = None
    ) -> BaseCombiner:
        """Learn what the rule needs from member outputs and targets.

        Parameters
        ----------
        predictions : array-like of shape (n_members, n_samples, n_outputs)
            Held-out member outputs: class probabilities, or regression predictions. Fixed
            rules accept ``n_samples == 0`` (they only record the shape).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets: class indices for classification. Needed by rules that learn.
        X : array-like of shape (n_samples, n_features), default=None
            Raw features, used only by rules that say so (stacking with ``passthrough``).
        sample_weight : array-like of shape (n_samples,), default=None
            Weighs each held-out row in what a learned rule minimises.

        Returns
        -------
        self
            The fitted rule.
        """
        self._validate_params()
        predictions = check_predictions(predictions, allow_empty=not self.learns)
        self.n_members_, n_samples, self.n_outputs_ = predictions.shape
        self._fit(predictions, y, X, check_sample_weights(sample_weight, n_samples))
        return self

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        """Hook for learned rules (``sample_weight`` checked, or ``None``); fixed rules learn
        nothing."""

    def combine(self, predictions: Any, X: Any = None) -> np.ndarray:
        """Fuse member outputs into one output per sample.

        Parameters
        ----------
        predictions : array-like of shape (n_members, n_samples, n_outputs)
            Member outputs, as many members and outputs as the rule was fitted on.
        X : array-like of shape (n_samples, n_features), default=None
            Raw features, used only by rules that say so.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            The fused outputs, one row a sample.
        """
        check_is_fitted(self, "n_members_")
        predictions = check_predictions(predictions)
        if predictions.shape[0] != self.n_members_ or predictions.shape[2] != self.n_outputs_:
            raise ValueError(
                f"{type(self).__name__} was fitted on {self.n_members_} members with "
                f"{self.n_outputs_} outputs; got predictions of shape {predictions.shape}"
            )
        return self._combine(predictions, X)

    @abstractmethod
    def _combine(self, predictions: np.ndarray, X: Any) -> np.ndarray:
        """Fuse validated predictions."""


class WeightedMeanRule(BaseCombiner):
    """A rule whose fit yields one weight per member and whose fusion is the weighted mean.

    Subclasses set ``weights_`` (shape ``(n_members,)``, non-negative, summing to one) in
    :meth:`~BaseCombiner._fit`; fusing and the mixture weights are the same for all of them
    (learned weights, Caruana selection, the last snapshots).

    Examples
    --------
    >>> import numpy as np
    >>> class FirstOnly(WeightedMeanRule):
    ...     def _fit(self, predictions, y, X, sample_weight):
    ...         self.weights_ = np.eye(len(predictions))[0]
    >>> FirstOnly().fit(np.zeros((2, 0, 1))).combine(np.array([[[1.0]], [[3.0]]]))
    array([[1.]])
    """

    def mixture_weights(self) -> np.ndarray | None:
        """The fitted weights.

        Returns
        -------
        ndarray of shape (n_members,)
            ``weights_``: non-negative, summing to one.
        """
        check_is_fitted(self, "weights_")
        return self.weights_  # type: ignore[no-any-return]

    def _combine(self, predictions: np.ndarray, X: Any = None) -> np.ndarray:
        return np.tensordot(self.weights_, predictions, axes=1)  # type: ignore[no-any-return]
