"""Ensembles that cost one training run: one network is trained once, and what it holds (the
snapshots of its schedule, or the sub-networks inside it) becomes the members of a prefit
:class:`~ensembles.EnsembleClassifier` / :class:`~ensembles.EnsembleRegressor`, which does the
fusion, the uncertainty, the evaluation and the distillation.

:class:`OneRunEnsemble` is the fit they share; :mod:`ensembles.snapshot` and
:mod:`ensembles.efficient` say how the network is set up before its run and what its members
are after it.
"""

from __future__ import annotations

from abc import abstractmethod
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner
from ensembles._base import BaseEnsemble
from ensembles._wrapped import WrappedEnsembleMixin
from ensembles.splits import check_held_out_weights, held_out_split
from members.data import check_sample_weight, validate_inputs
from members.params import Interval
from members.persistence import SaveLoadMixin
from members.tasks import task_of
from members.trainer import while_training
from members.training import draw_seed, forget_fit

# the parameters every one-run ensemble takes, in _parameter_constraints form
ONE_RUN_CONSTRAINTS: dict[str, list[Any]] = {
    "estimator": [None],  # plus the network class, set by each subclass
    "combiner": [BaseCombiner, None],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "random_state": ["random_state"],
}


class OneRunEnsemble(WrappedEnsembleMixin, SaveLoadMixin, BaseEstimator):
    """Train the template network once; its parts are the members of a prefit ensemble.

    Subclasses set the network class (``_estimator_type_``), the ensemble class
    (``_ensemble_type``) and implement :meth:`_configure` (the run's settings) and
    :meth:`_members` (the members the trained network gives). They hold the parameters
    ``estimator``, ``combiner``, ``validation_fraction`` and ``random_state``.
    """

    _estimator_type_: type
    _ensemble_type: type[BaseEnsemble]
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = ONE_RUN_CONSTRAINTS

    estimator: Any
    combiner: BaseCombiner | None
    validation_fraction: float | None
    random_state: Any

    def _template(self) -> Any:
        """The parameters checked, the network to clone (the default one when ``None``)."""
        self._validate_params()
        return self._estimator_type_() if self.estimator is None else self.estimator

    @abstractmethod
    def _default_combiner(self) -> BaseCombiner:
        """The fusion rule when ``combiner`` is ``None``."""

    @abstractmethod
    def _configure(self, network: Any, rng: np.random.RandomState) -> Any:
        """Set up the clone ``network`` for its run (``rng``: the fit's seeds); what is
        returned is given to :meth:`_members`."""

    @abstractmethod
    def _members(self, network: Any, configured: Any) -> list[tuple[str, Any]]:
        """The named members the trained ``network`` gives."""

    def _describe(self) -> str:
        """Who trains, for the message of a failed run."""
        return f"the network of {type(self).__name__}"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> OneRunEnsemble:
        """Train the template once, turn what it holds into members, fit the combiner.

        A combiner that learns is fitted on ``validation_fraction`` of the data (default 0.1),
        held out from the training run. ``sample_weight`` weighs each row in the network's
        loss and, for the held-out rows, in the combiner's fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets of those rows.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight.

        Returns
        -------
        self
            The fitted estimator.
        """
        template = self._template()
        forget_fit(self)
        combiner = self._default_combiner() if self.combiner is None else clone(self.combiner)
        task = task_of(template)
        X, y = task.validate(self, X, y, float32=True, ensure_min_samples=2)
        weights = check_sample_weight(sample_weight, X)
        rng = check_random_state(self.random_state)
        network = clone(template)
        if network.random_state is None and self.random_state is not None:
            network.set_params(random_state=draw_seed(rng))
        X_fit, y_fit, X_comb, y_comb = X, y, X, y
        w_fit = w_comb = weights
        if combiner.learns:
            fraction = 0.1 if self.validation_fraction is None else self.validation_fraction
            seed = draw_seed(rng)
            train, held = held_out_split(y, fraction, task.classification, seed)
            check_held_out_weights(weights, held, "validation_fraction", fraction, "the combiner")
            X_fit, y_fit, X_comb, y_comb = X[train], y[train], X[held], y[held]
            if weights is not None:
                w_fit, w_comb = weights[train], weights[held]
        configured = self._configure(network, rng)
        with while_training(self._describe()):
            network.fit(X_fit, y_fit, sample_weight=w_fit)
        self.ensemble_ = self._ensemble_type(
            self._members(network, configured), combiner=combiner, cv="prefit"
        ).fit(X_comb, y_comb, sample_weight=w_comb)
        for name in ("classes_", "n_outputs_"):
            if hasattr(self.ensemble_, name):
                setattr(self, name, getattr(self.ensemble_, name))
        return self

    def _validate_X(self, X: Any) -> Any:
        """``X`` checked against the fit's features (their number, and names when the fit had
        them), as the array the network was trained on."""
        check_is_fitted(self, "ensemble_")
        return validate_inputs(self, X, reset=False)
