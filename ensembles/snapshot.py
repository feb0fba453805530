"""Snapshot ensembles: M members for the training cost of one run."""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from lightning.pytorch.callbacks import StochasticWeightAveraging
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner, SnapshotCombiner
from ensembles._base import BaseEnsemble
from ensembles._wrapped import WrappedClassifierMixin, WrappedRegressorMixin
from ensembles.classifier import EnsembleClassifier
from ensembles.regressor import EnsembleRegressor
from ensembles.splits import check_held_out_weights, held_out_split
from members import CyclicCosineSchedule, NeuralClassifier, NeuralRegressor, SnapshotCollector
from members.data import check_sample_weight, validate_inputs
from members.params import Interval, StrOptions
from members.persistence import SaveLoadMixin
from members.tasks import task_of
from members.trainer import while_training
from members.training import draw_seed, forget_fit

METHODS = ("snapshot", "fge", "swa")
# (warmup_fraction, cycle_peak) when left as None. Checked on validation splits of the training
# data (`python experiments/mnist1d_snapshot.py --validation --peaks ...`; numbers in the
# guide's snapshot page, docs/guide/snapshot.md): high peaks regularise the networks that overfit
# MNIST-1D but hurt a plain MLP on small tabular data, so the defaults serve the default data
# and that page says when to lower them.
DEFAULTS = {"snapshot": (0.0, 2.0), "fge": (0.5, 3.0), "swa": (0.75, 0.25)}


# The snapshot ensembles' parameters, in _parameter_constraints form.
SNAPSHOT_CONSTRAINTS: dict[str, list[Any]] = {
    "estimator": [None],  # plus the network class, set by each subclass
    "n_snapshots": [Interval(Integral, 1, None, closed="left")],
    "method": [StrOptions(set(METHODS))],
    "warmup_fraction": [Interval(Real, 0, 1, closed="left"), None],
    "cycle_peak": [Interval(Real, 0, None, closed="neither"), None],
    "combiner": [BaseCombiner, None],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "random_state": ["random_state"],
}


class _BaseSnapshotEnsemble(SaveLoadMixin, BaseEstimator):
    """Train one network once with a cyclic schedule; its snapshots are the members."""

    _estimator_type_: type
    _ensemble_type: type[BaseEnsemble]

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_snapshots: int = 5,
        method: str = "snapshot",
        warmup_fraction: float | None = None,
        cycle_peak: float | None = None,
        combiner: BaseCombiner | None = None,
        validation_fraction: float | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_snapshots = n_snapshots
        self.method = method
        self.warmup_fraction = warmup_fraction
        self.cycle_peak = cycle_peak
        self.combiner = combiner
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = SNAPSHOT_CONSTRAINTS

    def _check_params(self) -> tuple[Any, float, float]:
        self._validate_params()
        estimator = self._estimator_type_() if self.estimator is None else self.estimator
        warmup, peak = DEFAULTS[self.method]
        warmup = warmup if self.warmup_fraction is None else self.warmup_fraction
        peak = peak if self.cycle_peak is None else self.cycle_peak
        return estimator, warmup, peak

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseSnapshotEnsemble:
        """Train the template once, turn its snapshots into members, fit the combiner.

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
        template, warmup, peak = self._check_params()
        forget_fit(self)
        combiner = SnapshotCombiner() if self.combiner is None else clone(self.combiner)
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
        extra = list(network.callbacks or [])
        if self.method == "swa":
            averaging = StochasticWeightAveraging(
                swa_lrs=peak * network.lr,
                swa_epoch_start=warmup,
                annealing_epochs=max(1, network.max_epochs // 20),
            )
            network.set_params(callbacks=[*extra, averaging])
        else:
            collector = SnapshotCollector(self.n_snapshots, warmup_fraction=warmup)
            schedule = CyclicCosineSchedule(self.n_snapshots, warmup, peak)
            network.set_params(scheduler=schedule, callbacks=[*extra, collector])
        with while_training(f"the network of {type(self).__name__}(method={self.method!r})"):
            network.fit(X_fit, y_fit, sample_weight=w_fit)
        # the members keep the user's callbacks, not the averaging or the snapshot store
        network.set_params(callbacks=extra or None)
        if self.method == "swa":
            snapshots = [network]
        else:
            # the run used a fresh copy of the collector, the last of the network's callbacks_;
            # taken out, so that the members do not each carry every snapshot
            used = network.callbacks_.pop()
            snapshots = [_with_weights(network, state) for state in used.snapshots]
        self.ensemble_ = self._ensemble_type(
            [(f"snapshot{i}", member) for i, member in enumerate(snapshots)],
            combiner=combiner,
            cv="prefit",
        ).fit(X_comb, y_comb, sample_weight=w_comb)
        for name in ("classes_", "n_outputs_"):
            if hasattr(self.ensemble_, name):
                setattr(self, name, getattr(self.ensemble_, name))
        return self

    @property
    def members_(self) -> list[Any]:
        """One fitted estimator per snapshot, oldest first."""
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.members_  # type: ignore[no-any-return]

    @property
    def combiner_(self) -> BaseCombiner:
        """The fitted fusion rule of the snapshots.

        Returns
        -------
        BaseCombiner
        """
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.combiner_  # type: ignore[no-any-return]

    def member_predictions(self, X: Any) -> np.ndarray:
        """Outputs of every snapshot, oldest first.

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
        return self.ensemble_.member_predictions(X)

    def _validate_X(self, X: Any) -> Any:
        """``X`` checked against the fit's features (their number, and names when the fit had
        them), as the array the snapshots were trained on."""
        check_is_fitted(self, "ensemble_")
        return validate_inputs(self, X, reset=False)

    def predict(self, X: Any) -> np.ndarray:
        """The snapshot ensemble's predictions.

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
        """Compress the snapshots into one student.

        See :meth:`EnsembleClassifier.distill`; the default student is the template's
        architecture.

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

    def evaluate(self, X: Any, y: Any, *, sample_weight: Any = None) -> pd.DataFrame:
        """The table of :meth:`EnsembleClassifier.evaluate`, one row per snapshot.

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


def _with_weights(network: Any, state: dict[str, Any]) -> Any:
    """A copy of the fitted network estimator holding a snapshot's weights (float64, eval)."""
    member = copy.deepcopy(network)
    member.model_.load_state_dict(
        {name.removeprefix("backbone."): value.double() for name, value in state.items()}
    )
    return member


class SnapshotEnsembleClassifier(ClassifierMixin, WrappedClassifierMixin, _BaseSnapshotEnsemble):
    """Snapshot ensemble (Huang et al., 2017) of a :class:`~members.NeuralClassifier`.

    The template network is trained once with a cyclic cosine schedule of ``n_snapshots``
    cycles (each from ``cycle_peak`` times the template's ``lr`` down to zero, stepped every
    batch); the weights at the end of each cycle become one member, and the members are
    averaged. Fit costs one run.

    Parameters
    ----------
    estimator : NeuralClassifier, optional
        The network to train; ``NeuralClassifier("mlp")`` when ``None``.
    n_snapshots : int, default=5
        Members taken from the one run: one per learning-rate cycle (``"snapshot"``,
        ``"fge"``), or the number of averaged weights (``"swa"``).
    method : {"snapshot", "fge", "swa"}, default="snapshot"
        ``"fge"``: fast geometric ensembling: an ordinary run over ``warmup_fraction`` of the
        steps, then ``n_snapshots`` short cycles peaking at ``cycle_peak * lr``. ``"swa"``:
        stochastic weight averaging with Lightning's callback from ``warmup_fraction`` of the
        epochs, at ``cycle_peak * lr``, batch-norm statistics recomputed: one averaged member.
    warmup_fraction, cycle_peak : float, optional
        Defaults by method: snapshot (0, 2), fge (0.5, 3), swa (0.75, 0.25).
    combiner : BaseCombiner, optional
        :class:`~combiners.SnapshotCombiner` (uniform over all snapshots) by default. A combiner
        that learns is fitted on ``validation_fraction`` of the data, held out from training.
    validation_fraction : float, optional
        Default 0.1, used only by a combiner that learns.
    random_state : int, RandomState or None
        Seeds the template when its own ``random_state`` is ``None``, and the held-out split.

    Attributes
    ----------
    members_ : list of NeuralClassifier
        One fitted estimator per snapshot, oldest first.
    combiner_ : BaseCombiner
    ensemble_ : EnsembleClassifier
        The prefit ensemble of snapshots that does the fusion.
    classes_, n_features_in_

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> snap = SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=30), n_snapshots=3,
    ...                                   random_state=0).fit(X, y)
    >>> len(snap.members_), snap.predict_proba(X).shape
    (3, (150, 3))
    """

    _estimator_type_ = NeuralClassifier
    _ensemble_type = EnsembleClassifier
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SNAPSHOT_CONSTRAINTS,
        "estimator": [NeuralClassifier, None],
    }

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fused class probabilities of the snapshots.

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


class SnapshotEnsembleRegressor(RegressorMixin, WrappedRegressorMixin, _BaseSnapshotEnsemble):
    """Snapshot ensemble of a :class:`~members.NeuralRegressor`.

    Parameters
    ----------
    estimator : NeuralRegressor, optional
        The network to train; ``NeuralRegressor("mlp")`` when ``None``.
    n_snapshots : int, default=5
        As in :class:`SnapshotEnsembleClassifier`.
    method : {"snapshot", "fge", "swa"}, default="snapshot"
        As in :class:`SnapshotEnsembleClassifier`.
    warmup_fraction : float, optional
        As in :class:`SnapshotEnsembleClassifier`.
    cycle_peak : float, optional
        As in :class:`SnapshotEnsembleClassifier`.
    combiner : BaseCombiner, optional
        As in :class:`SnapshotEnsembleClassifier`.
    validation_fraction : float, optional
        As in :class:`SnapshotEnsembleClassifier`.
    random_state : int, RandomState or None
        As in :class:`SnapshotEnsembleClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from members import NeuralRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    >>> snap = SnapshotEnsembleRegressor(NeuralRegressor(max_epochs=30), n_snapshots=3,
    ...                                  random_state=0).fit(X, y)
    >>> snap.member_predictions(X).shape
    (3, 200, 1)
    """

    _estimator_type_ = NeuralRegressor
    _ensemble_type = EnsembleRegressor
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **SNAPSHOT_CONSTRAINTS,
        "estimator": [NeuralRegressor, None],
    }

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
