"""``AutoCombiner``: the fusion rule that scores best on held-out member outputs, chosen per fit."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from combiners._validation import Interval, check_targets
from combiners.base import BaseCombiner
from combiners.crossfit import cross_fitted_fusion
from combiners.mean import MeanCombiner
from combiners.metrics import nll, rmse
from combiners.selection import EnsembleSelection
from combiners.weighted import WeightedCombiner


def default_candidates() -> list[tuple[str, BaseCombiner]]:
    """The rules :class:`AutoCombiner` chooses from, simplest first (a tie keeps the first)."""
    return [
        ("mean", MeanCombiner()),
        ("weighted", WeightedCombiner()),
        ("selection", EnsembleSelection()),
    ]


def held_out_loss(
    fused: np.ndarray, y: np.ndarray, classification: bool, sample_weight: np.ndarray | None
) -> float:
    """NLL of fused probabilities against class indices ``y`` (classification), RMSE of fused
    predictions otherwise (the losses :class:`EnsembleSelection` minimises), row-weighted by
    ``sample_weight``; lower is better."""
    return float((nll if classification else rmse)(y, fused, sample_weight))


class AutoCombiner(BaseCombiner):
    """Choose, on held-out member outputs, the fusion rule whose cross-fitted loss is lowest.

    Each candidate is fitted on ``cv - 1`` folds of the held-out rows and scored on the fold
    it did not see (NLL for classification, RMSE for regression), so a rule that learns is
    judged on rows it was not fitted to, as the plain mean is; the winner (a tie keeps the
    simpler, earlier candidate) is then fitted on all of them.

    Not the ensembles' default: on the validation splits of ``benchmarks/defaults.py`` the
    choice, made on a fifth of the rows held out from members trained on the rest, kept the
    plain mean where learned weights did better on the members refit on every row (digits),
    so the default is :class:`WeightedCombiner` alone. It pays where held-out rows are many
    (``cv=5`` gives every row) and the members' differences are unknown.

    Parameters
    ----------
    candidates : list of (str, BaseCombiner), optional
        The rules to choose from; default: ``mean`` (:class:`MeanCombiner`), ``weighted``
        (:class:`WeightedCombiner`, learned) and ``selection`` (:class:`EnsembleSelection`).
    cv : int, default=5
        Folds of the held-out rows the candidates are scored on (fewer when there are fewer
        rows).
    random_state : int, default=0
        Shuffles those folds.

    Attributes
    ----------
    chosen_ : str
        Name of the rule chosen.
    combiner_ : BaseCombiner
        That rule, fitted on all the held-out outputs; ``combine`` is its ``combine``.
    scores_ : dict of str to float
        Each candidate's cross-fitted loss.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 200)
    >>> strong = np.where(np.eye(2)[y] == 1, 0.9, 0.1)  # right on every row
    >>> weak = rng.dirichlet([1, 1], size=(3, 200))      # three members that guess
    >>> auto = AutoCombiner().fit(np.concatenate([strong[None], weak]), y)
    >>> auto.chosen_
    'weighted'
    >>> bool(auto.scores_["weighted"] < auto.scores_["mean"])
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "candidates": [list, tuple, None],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        candidates: Sequence[tuple[str, BaseCombiner]] | None = None,
        *,
        cv: int = 5,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.cv = cv
        self.random_state = random_state

    @property
    def learns(self) -> bool:
        """``True``: the choice is made on held-out member outputs and targets.

        Returns
        -------
        bool
        """
        return True

    def _candidates(self) -> list[tuple[str, BaseCombiner]]:
        candidates = default_candidates() if self.candidates is None else list(self.candidates)
        if not candidates or not all(
            isinstance(entry, tuple | list)
            and len(entry) == 2
            and isinstance(entry[0], str)
            and isinstance(entry[1], BaseCombiner)
            for entry in candidates
        ):
            raise ValueError(
                "candidates must be a non-empty list of (name, BaseCombiner) pairs; got "
                f"{self.candidates!r}"
            )
        return [(name, combiner) for name, combiner in candidates]

    def check_task(self, classification: bool) -> None:
        """Raise ``TypeError`` if a candidate rule cannot serve the task.

        Parameters
        ----------
        classification : bool
            ``True`` for a classification ensemble, ``False`` for a regression one.
        """
        for _, combiner in self._candidates():
            combiner.check_task(classification)

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        classification, target = check_targets(predictions, y, type(self).__name__)
        candidates = self._candidates()
        self.scores_: dict[str, float] = {}
        for name, candidate in candidates:
            if predictions.shape[1] < 2:  # nothing to cross-fit on
                self.scores_[name] = np.nan
                continue
            fused = cross_fitted_fusion(
                candidate,
                predictions,
                target,
                X,
                sample_weight,
                cv=self.cv,
                random_state=self.random_state,
            )
            self.scores_[name] = held_out_loss(fused, target, classification, sample_weight)
        scores = np.array([self.scores_[name] for name, _ in candidates])
        best = int(np.nanargmin(scores)) if np.isfinite(scores).any() else 0
        self.chosen_, chosen = candidates[best]
        self.combiner_ = clone(chosen).fit(predictions, target, X=X, sample_weight=sample_weight)

    def mixture_weights(self) -> np.ndarray | None:
        """The chosen rule's mixture weights.

        Returns
        -------
        ndarray of shape (n_members,) or None
            What the chosen rule's :meth:`~combiners.BaseCombiner.mixture_weights` returns.
        """
        check_is_fitted(self, "combiner_")
        return self.combiner_.mixture_weights()

    def _combine(self, predictions: np.ndarray, X: Any = None) -> np.ndarray:
        return self.combiner_.combine(predictions, X=X)

    def __str__(self) -> str:
        chosen = getattr(self, "chosen_", None)
        return "auto" if chosen is None else f"auto ({chosen})"
