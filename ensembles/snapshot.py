"""Snapshot ensembles: M members for the training cost of one run."""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from lightning.pytorch.callbacks import StochasticWeightAveraging
from sklearn.base import ClassifierMixin, RegressorMixin

from combiners import BaseCombiner, SnapshotCombiner
from ensembles._one_run import ONE_RUN_CONSTRAINTS, OneRunEnsemble
from ensembles._wrapped import WrappedClassifierMixin, WrappedRegressorMixin
from ensembles.classifier import EnsembleClassifier
from ensembles.regressor import EnsembleRegressor
from members import CyclicCosineSchedule, NeuralClassifier, NeuralRegressor, SnapshotCollector
from members.params import Interval, StrOptions

METHODS = ("snapshot", "fge", "swa")
# (warmup_fraction, cycle_peak) when left as None. Checked on validation splits of the training
# data (`python experiments/mnist1d_snapshot.py --validation --peaks ...`; numbers in the
# guide's snapshot page, docs/guide/snapshot.md): high peaks regularise the networks that overfit
# MNIST-1D but hurt a plain MLP on small tabular data, so the defaults serve the default data
# and that page says when to lower them.
DEFAULTS = {"snapshot": (0.0, 2.0), "fge": (0.5, 3.0), "swa": (0.75, 0.25)}


# The snapshot ensembles' parameters, in _parameter_constraints form.
SNAPSHOT_CONSTRAINTS: dict[str, list[Any]] = {
    **ONE_RUN_CONSTRAINTS,
    "n_snapshots": [Interval(Integral, 1, None, closed="left")],
    "method": [StrOptions(set(METHODS))],
    "warmup_fraction": [Interval(Real, 0, 1, closed="left"), None],
    "cycle_peak": [Interval(Real, 0, None, closed="neither"), None],
}


class _BaseSnapshotEnsemble(OneRunEnsemble):
    """Train one network once with a cyclic schedule; its snapshots are the members."""

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

    def _default_combiner(self) -> BaseCombiner:
        return SnapshotCombiner()

    def _describe(self) -> str:
        return f"the network of {type(self).__name__}(method={self.method!r})"

    def _configure(self, network: Any, rng: np.random.RandomState) -> Any:
        warmup, peak = DEFAULTS[self.method]
        warmup = warmup if self.warmup_fraction is None else self.warmup_fraction
        peak = peak if self.cycle_peak is None else self.cycle_peak
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
        return extra

    def _members(self, network: Any, configured: Any) -> list[tuple[str, Any]]:
        # the members keep the user's callbacks, not the averaging or the snapshot store
        network.set_params(callbacks=configured or None)
        if self.method == "swa":
            snapshots = [network]
        else:
            # the run used a fresh copy of the collector, the last of the network's callbacks_;
            # taken out, so that the members do not each carry every snapshot
            used = network.callbacks_.pop()
            snapshots = [_with_weights(network, state) for state in used.snapshots]
        return [(f"snapshot{i}", member) for i, member in enumerate(snapshots)]


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
