"""``EnsembleSelection``: greedy forward selection with replacement (Caruana et al., 2004)."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.utils import check_random_state

from combiners._validation import Interval, StrOptions, check_targets
from combiners.base import WeightedMeanRule
from combiners.metrics import CLASSIFICATION_LOSSES, REGRESSION_LOSSES


class EnsembleSelection(WeightedMeanRule):
    """Greedy forward ensemble selection with replacement (Caruana et al., 2004).

    Starting from the ``n_init`` best single members, the member whose addition most lowers the
    held-out loss of the running average is added, ``n_iter`` times (a member may be added
    again, which raises its weight). The best point of the trajectory is kept. With
    ``n_bags > 0`` the selection runs on random subsets of the members and the bags' weights are
    averaged, which resists overfitting a small validation set.

    Parameters
    ----------
    n_iter : int, default=50
        Members added after the initialisation.
    metric : {"auto", "nll", "brier", "error", "rmse"} or callable, default="auto"
        Loss to minimise; ``"auto"`` is NLL for classification, RMSE for regression. A callable
        takes ``(y, fused)`` with ``fused`` of shape ``(n_samples, n_outputs)`` and returns a
        loss (lower is better); when the fit is weighted it is called with
        ``sample_weight=`` too (scikit-learn's metrics take it).
    n_init : int, default=3
        Best single members the selection starts from (sorted initialisation).
    n_bags : int, default=0
        Number of bagged selections; 0 selects once over all members.
    bag_fraction : float, default=0.5
        Share of the members drawn (without replacement) for each bag.
    random_state : int, RandomState or None, default=None
        Draws the bags.

    Attributes
    ----------
    weights_ : ndarray of shape (n_members,)
        Selection counts, normalised (averaged over bags).
    trajectories_ : list of list of (int, float)
        For each selection run (one per bag), the member added at each step and the loss of the
        running ensemble after adding it, initial members first.

    Examples
    --------
    >>> import numpy as np
    >>> predictions = np.array([[[0.95, 0.05], [0.7, 0.3]],    # right on sample 0 only
    ...                         [[0.3, 0.7], [0.05, 0.95]],    # right on sample 1 only
    ...                         [[0.4, 0.6], [0.6, 0.4]]])     # wrong on both
    >>> selection = EnsembleSelection(n_iter=10, n_init=1).fit(predictions, y=[0, 1])
    >>> selection.weights_.round(2)
    array([0.5, 0.5, 0. ])
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "metric": [StrOptions({"auto", *CLASSIFICATION_LOSSES, *REGRESSION_LOSSES}), callable],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "n_bags": [Interval(Integral, 0, None, closed="left")],
        "bag_fraction": [Interval(Real, 0, 1, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_iter: int = 50,
        *,
        metric: str | Callable[[np.ndarray, np.ndarray], float] = "auto",
        n_init: int = 3,
        n_bags: int = 0,
        bag_fraction: float = 0.5,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_iter = n_iter
        self.metric = metric
        self.n_init = n_init
        self.n_bags = n_bags
        self.bag_fraction = bag_fraction
        self.random_state = random_state

    @property
    def learns(self) -> bool:
        """``True``: the selection is made on held-out member outputs and targets.

        Returns
        -------
        bool
        """
        return True

    def _loss(
        self, is_classification: bool, sample_weight: np.ndarray | None
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        metrics = CLASSIFICATION_LOSSES if is_classification else REGRESSION_LOSSES
        weighted = {} if sample_weight is None else {"sample_weight": sample_weight}
        if callable(self.metric):
            metric = self.metric

            def user_loss(candidates: np.ndarray, y: np.ndarray) -> np.ndarray:
                losses = np.array([metric(y, c, **weighted) for c in candidates], dtype=float)
                if not np.isfinite(losses).all():
                    name = getattr(metric, "__name__", repr(metric))
                    raise ValueError(
                        f"metric={name} returned {losses[~np.isfinite(losses)][0]} for a "
                        "candidate ensemble; a selection metric must return a finite loss "
                        "(lower is better) for every candidate, or the selection would be "
                        "arbitrary"
                    )
                return losses

            return user_loss
        name = next(iter(metrics)) if self.metric == "auto" else self.metric
        if name not in metrics:
            task = "classification" if is_classification else "regression"
            raise ValueError(
                f"metric={self.metric!r} is not supported for {task}; expected 'auto', one of "
                f"{list(metrics)}, or a callable (y, fused) -> loss"
            )
        chosen = metrics[name]
        return lambda candidates, y: chosen(y, candidates, sample_weight)

    def _fit(
        self, predictions: np.ndarray, y: Any, X: Any, sample_weight: np.ndarray | None
    ) -> None:
        is_classification, target = check_targets(predictions, y, type(self).__name__)
        loss = self._loss(is_classification, sample_weight)
        n_members = len(predictions)
        if self.n_bags == 0:
            bags = [np.arange(n_members)]
        else:
            rng = check_random_state(self.random_state)
            size = max(1, round(self.bag_fraction * n_members))
            bags = [np.sort(rng.choice(n_members, size, replace=False)) for _ in range(self.n_bags)]
        weights = np.zeros(n_members)
        self.trajectories_ = []
        for bag in bags:
            counts, trajectory = self._select(predictions, target, bag, loss)
            weights += counts / counts.sum()
            self.trajectories_.append(trajectory)
        self.weights_ = weights / weights.sum()

    def _select(
        self,
        predictions: np.ndarray,
        y: np.ndarray,
        bag: np.ndarray,
        loss: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, list[tuple[int, float]]]:
        single = loss(predictions[bag], y)
        counts = np.zeros(len(predictions))
        total = np.zeros(predictions.shape[1:])
        trajectory: list[tuple[int, float]] = []
        for member in bag[np.argsort(single, kind="stable")[: self.n_init]]:
            counts[member] += 1
            total += predictions[member]
            trajectory.append((int(member), float(loss((total / counts.sum())[None], y)[0])))
        best_loss, best_counts = trajectory[-1][1], counts.copy()
        for _ in range(self.n_iter):
            size = counts.sum() + 1
            candidate_losses = loss((total[None] + predictions[bag]) / size, y)
            choice = int(np.argmin(candidate_losses))
            member = int(bag[choice])
            counts[member] += 1
            total += predictions[member]
            trajectory.append((member, float(candidate_losses[choice])))
            if candidate_losses[choice] < best_loss:
                best_loss, best_counts = float(candidate_losses[choice]), counts.copy()
        return best_counts, trajectory
