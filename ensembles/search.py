"""Pool search: Optuna proposes members, the training service trains them, and Caruana
selection over every trial builds the ensemble (Neural Ensemble Search, hyper-deep ensembles).

One fit:

1. Split the data as ``cv`` says: a held-out fraction (default 0.2), or K folds.
2. Whenever a worker is free, ask Optuna (TPE, seeded, ``constant_liar``) for a trial: a
   configuration of the template estimator drawn from ``space``, with a seed of its own. Its
   trainings (one per split) are tasks of :mod:`ensembles.training`, drawn lazily by the
   parallel executor (``n_jobs``); the held-out outputs of each trained trial are kept, and its
   objectives (validation NLL or RMSE; optionally prediction latency or parameter count) go
   back to Optuna (``tell``). A trial whose training or prediction raises is told as failed,
   with its error, and the search goes on, until the study holds ``n_trials`` trials.
3. :class:`~combiners.EnsembleSelection` (Caruana et al., 2004, with replacement) picks
   ``ensemble_size`` times among **all** completed trials on their held-out outputs.
4. Optionally (``extra_seeds``), every chosen configuration is trained again with new seeds and
   the selection runs again over the trials and the new seeds (the hyper-deep step).
5. The chosen members are used as trained (held-out fraction) or refit on all the data (K
   folds), and fused with the selection's weights by a prefit ensemble, ``ensemble_``.

With ``storage`` (an SQLite or Optuna journal file) the study outlives the process: a search
stopped midway (Ctrl-C, a crash, a killed job) and started again with the same storage, data
and ``random_state`` continues where it stopped. The trained members are kept in
``checkpoint_dir`` (beside a storage file by default), so the trials already finished are
loaded, not trained again. Several processes, or machines sharing the storage and the
checkpoint folder, can search one study together.
"""

from __future__ import annotations

import logging
import os
from numbers import Integral
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner, EnsembleSelection, WeightedCombiner
from ensembles._wrapped import (
    WrappedClassifierMixin,
    WrappedEnsembleMixin,
    WrappedRegressorMixin,
)
from ensembles.classifier import EnsembleClassifier
from ensembles.regressor import EnsembleRegressor
from ensembles.search_loop import (
    SearchLoop,
    SearchSettings,
    TrialJudge,
    member_name,
    select_weights,
)
from ensembles.search_objectives import (
    CLASSIFIER_OBJECTIVES,
    REGRESSOR_OBJECTIVES,
    trials_pareto,
)
from ensembles.search_space import parse_space
from ensembles.search_storage import open_study
from ensembles.splits import check_held_out_weights, cv_splits, is_holdout
from members import NeuralClassifier, NeuralRegressor
from members.data import check_sample_weight, validate_inputs
from members.params import HasMethods, Interval, RealNotInt
from members.persistence import SaveLoadMixin
from members.tasks import CLASSIFICATION, REGRESSION, Task
from members.training import draw_seed, forget_fit

logger = logging.getLogger(__name__)

SEARCH_CONSTRAINTS: dict[str, list[Any]] = {
    "estimator": [HasMethods(["fit", "get_params"]), None],
    "space": [str, dict, list],
    "n_trials": [Interval(Integral, 1, None, closed="left")],
    "ensemble_size": [Interval(Integral, 1, None, closed="left")],
    "selection": [BaseCombiner, None],
    "extra_seeds": [Interval(Integral, 0, None, closed="left")],
    "cv": [
        Interval(RealNotInt, 0, 1, closed="neither"),
        Interval(Integral, 2, None, closed="left"),
        HasMethods(["split", "get_n_splits"]),
        list,  # of (train, test) index pairs
    ],
    "objectives": [tuple, list, str, None],
    "storage": [str, os.PathLike, None, HasMethods(["create_new_study"])],
    "study_name": [str],
    "checkpoint_dir": [str, os.PathLike, None],
    "n_jobs": [
        Interval(Integral, None, -1, closed="right"),
        Interval(Integral, 1, None, closed="left"),
        None,
    ],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class _BaseEnsembleSearch(WrappedEnsembleMixin, SaveLoadMixin, BaseEstimator):
    """The search; :class:`EnsembleSearchClassifier` and :class:`EnsembleSearchRegressor` set
    the task."""

    #: what differs between classification and regression (:mod:`members.tasks`)
    task: ClassVar[Task]
    _template_type: type
    _ensemble_type: type
    _objective_names: tuple[str, ...]
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = SEARCH_CONSTRAINTS

    def __init__(
        self,
        estimator: Any = None,
        *,
        space: str | dict[str, Any] | list[dict[str, Any]] = "mlp",
        n_trials: int = 20,
        ensemble_size: int = 5,
        selection: BaseCombiner | None = None,
        extra_seeds: int = 0,
        cv: float | int | Any = 0.2,
        objectives: tuple[str, ...] | str | None = None,
        storage: str | os.PathLike[str] | Any = None,
        study_name: str = "ensemble-search",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.n_trials = n_trials
        self.ensemble_size = ensemble_size
        self.selection = selection
        self.extra_seeds = extra_seeds
        self.cv = cv
        self.objectives = objectives
        self.storage = storage
        self.study_name = study_name
        self.checkpoint_dir = checkpoint_dir
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- checks ------------------------------------------------------------------------------
    def _check_objectives(self) -> tuple[str, ...]:
        objectives = self.objectives
        if objectives is None:
            objectives = (self._objective_names[0],)
        elif isinstance(objectives, str):
            objectives = (objectives,)
        objectives = tuple(objectives)
        unknown = [name for name in objectives if name not in self._objective_names]
        if not objectives or unknown or len(set(objectives)) != len(objectives):
            raise ValueError(
                f"objectives must be distinct names among {list(self._objective_names)} "
                f"(the first is what the selection and the search minimise first); got "
                f"{self.objectives!r}"
            )
        if objectives[0] in ("latency", "parameters"):
            raise ValueError(
                f"objectives={self.objectives!r}: the first objective must be a held-out "
                f"loss ({self._objective_names[0]!r}); latency and parameters come after it"
            )
        return objectives

    def _template(self) -> Any:
        return self._template_type() if self.estimator is None else self.estimator

    def _selection(self) -> BaseCombiner:
        if self.selection is None:
            return EnsembleSelection(n_iter=self.ensemble_size - 1, n_init=1)
        if not self.selection.learns:
            raise ValueError(
                f"selection must be a combiner that learns its weights from held-out outputs "
                f"(EnsembleSelection, WeightedCombiner()); got {self.selection!r}"
            )
        return clone(self.selection)

    def _checkpoint_dir(self) -> str | os.PathLike[str] | None:
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        if isinstance(self.storage, str | os.PathLike) and "://" not in str(self.storage):
            return f"{self.storage}.members"
        return None

    # -- the task ----------------------------------------------------------------------------
    def _validate_targets(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, the selection's targets)``; sets ``classes_`` or ``n_outputs_``."""
        X, y = self.task.validate(self, X, y, ensure_min_samples=2)
        self.__dict__.update(self.task.fit_encoding(y, owner=type(self).__name__))
        return X, y, self.task.encode(self, y)

    def _judge(self) -> TrialJudge:
        """How the loop reads and scores a trial: the task, and the target attributes a
        member's output is laid out on."""
        fitted = SimpleNamespace(
            **{key: getattr(self, key) for key in ("classes_", "n_outputs_") if hasattr(self, key)}
        )
        return TrialJudge(self.task, fitted)

    def _settings(self) -> SearchSettings:
        return SearchSettings(
            name=type(self).__name__,
            n_trials=self.n_trials,
            n_jobs=self.n_jobs,
            verbose=bool(self.verbose),
            space=self.space,
            study_name=self.study_name,
            checkpoint_dir=self._checkpoint_dir(),
            refits=self._refits(),
        )

    def _refits(self) -> bool:
        """K folds: the chosen configurations are trained again on all the data."""
        return not is_holdout(self.cv)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseEnsembleSearch:
        """Search ``n_trials`` configurations, select the ensemble from all of them, fit it.

        ``sample_weight`` weighs each row in every trial's training (its rows of it), in the
        held-out losses that judge the trials and in the selection.

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
        import optuna

        self._validate_params()
        template = self._template()
        space = parse_space(self.space)
        objectives = self._check_objectives()
        selection = self._selection()
        forget_fit(self)
        X, y, targets = self._validate_targets(X, y)
        row_weights = check_sample_weight(sample_weight, X)
        rng = check_random_state(self.random_state)
        split_seed, sampler_seed, trial_seed = (draw_seed(rng) for _ in range(3))
        splits = cv_splits(self.cv, X, y, self.task.classification, split_seed)
        held = np.concatenate([test for _, test in splits])
        order = np.argsort(held)
        held = held[order]
        held_weights = None if row_weights is None else row_weights[held]
        check_held_out_weights(
            row_weights, held, "cv", self.cv, "judging the trials and the selection"
        )

        study = open_study(self, optuna, objectives, X, y, splits, row_weights)
        search = SearchLoop(
            self._settings(),
            self._judge(),
            template,
            space,
            objectives,
            splits,
            order,
            X,
            y,
            trial_seed,
            sampler_seed,
            row_weights,
            held_weights,
        )
        search.run(study, targets[held])
        trials = [trial for trial in search.trials if trial.state == "COMPLETE"]
        if not trials:
            errors = sorted({t.error for t in search.trials if t.error})
            raise ValueError(
                f"every one of the {len(search.trials)} trials failed, so there is no ensemble "
                f"to select; their errors: {errors[:3]}"
            )
        weights = select_weights(selection, trials, targets[held], X[held], held_weights)
        if self.extra_seeds:
            chosen = [trial for trial, weight in zip(trials, weights, strict=True) if weight > 0]
            trials += search.reseed(chosen, self.extra_seeds)
            trials = [trial for trial in trials if trial.state == "COMPLETE"]
            weights = select_weights(selection, trials, targets[held], X[held], held_weights)
        members = search.final_members(trials, weights)
        named = [
            (member_name(trial), member)
            for trial, weight, member in zip(trials, weights, members, strict=True)
            if weight > 0
        ]
        self.ensemble_ = self._ensemble_type(
            named, combiner=WeightedCombiner([w for w in weights if w > 0]), cv="prefit"
        ).fit(X, y, sample_weight=row_weights)
        self.weights_ = np.asarray([w for w in weights if w > 0])
        self.held_out_index_ = held
        # plain rows (the safe file format holds them; a DataFrame it cannot)
        self._trial_rows = search.table(weights, trials)
        self._fitted_objectives = objectives
        self.trial_members_ = {
            trial.number: trial.members[0]
            for trial in search.trials
            if trial.state == "COMPLETE" and not self._refits() and trial.seed_of is None
        }
        return self

    @property
    def trials_(self) -> pd.DataFrame:
        """One row per trial (see the class docstring)."""
        check_is_fitted(self, "ensemble_")
        frame = pd.DataFrame(self._trial_rows)
        for column in ("number", "seed_of"):
            frame[column] = frame[column].astype("Int64")
        return frame

    @property
    def pareto_(self) -> pd.DataFrame:
        """The completed trials no other trial beats on every objective, best first."""
        return trials_pareto(self.trials_, self._fitted_objectives)

    # -- prediction --------------------------------------------------------------------------
    def _validate_X(self, X: Any) -> np.ndarray:
        """``X`` checked against the fit's features (their number, and names when the fit had
        them), as the array the members were trained on."""
        check_is_fitted(self, "ensemble_")
        return validate_inputs(self, X, reset=False)  # type: ignore[no-any-return]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class EnsembleSearchClassifier(ClassifierMixin, WrappedClassifierMixin, _BaseEnsembleSearch):
    """Search a pool of classifiers with Optuna and build the ensemble from all its trials.

    Every trial is a configuration of ``estimator`` drawn from ``space`` (TPE, seeded) with a
    seed of its own, trained on the training part of ``cv`` by the member-training service
    (in parallel with ``n_jobs``); its held-out probabilities are kept. Caruana selection with
    replacement then picks ``ensemble_size`` times among all completed trials (Neural
    Ensemble Search, Zaidi et al. 2021; auto-sklearn's and AutoGluon's final ensembles), and
    the picks become the members of ``ensemble_``, weighted by how often each was picked.

    Parameters
    ----------
    estimator : estimator, optional
        The template each trial configures; ``NeuralClassifier()`` when ``None``. Its
        parameters that ``space`` leaves alone (``max_epochs``, ``batch_size``, devices...)
        hold for every trial. Any scikit-learn classifier works with a dict ``space`` over its
        parameters.
    space : {"mlp", "cnn1d", "cnn2d", "any"}, dict or list of dicts, default="mlp"
        What the search may vary; see :mod:`ensembles.search_space` for the form
        (``{"lr": (1e-4, 1e-2, "log"), "module_kwargs__hidden": [(64,), (128, 128)],
        "optimizer": ["adamw", "sgd"]}``). The presets search depth and width (channels),
        activation, dropout, optimizer (SGD with momentum, Adam, AdamW, RMSprop), learning
        rate, weight decay and (``"mlp"``) L1; ``"any"`` also chooses among ``mlp``,
        ``cnn1d`` and ``resnet`` (for signals). An empty dict searches seeds only: a deep
        ensemble of the template under the same split and selection.
    n_trials : int, default=20
        Trials in the study, counting those an earlier run (or another process) finished.
    ensemble_size : int, default=5
        Picks of the default selection (``EnsembleSelection(n_init=1, n_iter=ensemble_size -
        1)``): at most this many distinct members, weights in multiples of ``1 /
        ensemble_size`` (the best point of the selection's trajectory is kept).
    selection : BaseCombiner, optional
        Another combiner that learns weights on held-out outputs (an ``EnsembleSelection``
        with bagging, or ``WeightedCombiner()``); members with zero weight are left out.
    extra_seeds : int, default=0
        The hyper-deep step (Wenzel et al. 2020): after the first selection, every chosen
        configuration is trained ``extra_seeds`` more times with new seeds, and the selection
        runs again over the trials and the new seeds.
    cv : float, int, CV splitter or list of (train, test) pairs, default=0.2
        A float: that fraction is held out (stratified); every trial trains once on the rest,
        and the chosen members are used as trained. An int K, a splitter or folds given as
        index pairs: every trial trains
        K times and is judged on its out-of-fold outputs; the chosen configurations are then
        trained again on all the data (K + 1 trainings for each of them).
    objectives : tuple of str, optional
        What each trial is judged by, all minimised: ``("nll",)`` by default; ``"error"``
        (1 - accuracy); ``"latency"`` (milliseconds to predict 1000 rows, on this machine);
        ``"parameters"`` (a network's weights). With more than one, Optuna searches a Pareto
        front (``pareto_``); the selection always minimises the first (a held-out loss).
    storage : str, path or optuna storage, optional
        Keep the study in a file so that a search stopped midway continues when ``fit`` is
        called again with the same storage, data and ``random_state``: a path ending in
        ``.db``/``.sqlite`` is an SQLite database, any other path an Optuna journal file (the
        one to share on a network file system); a URL (``sqlite:///...``,
        ``postgresql://...``) or an Optuna storage object works too. Several processes or
        machines with the same storage (and ``checkpoint_dir``) search one study together.
        The storage holds only parameters and metrics (no pickles); members are kept in
        ``checkpoint_dir``.
    study_name : str, default="ensemble-search"
        The Optuna study's name in ``storage``: processes that share a storage and a name
        search one study together.
    checkpoint_dir : str or path, optional
        Where every trained member is kept (safe format, no pickle), so that finished trials
        are loaded, never trained again. With a storage file and no ``checkpoint_dir``, the
        folder ``<storage>.members`` beside it.
    n_jobs : int, optional
        Trials trained at once (joblib: loky, or Ray or Dask under ``joblib.parallel_config``);
        the next trial is asked as soon as a worker comes free, and TPE's ``constant_liar``
        makes trials asked while others train differ from them. Under Ray's joblib backend,
        which hands results back only at the end, TPE learns nothing during the run (the trials
        are then as good as random ones).
    random_state : int, RandomState or None
        Seeds the split, the sampler and each trial's seed (when the template's
        ``random_state`` is ``None``).
    verbose : bool, default=False
        Print one line per finished trial.

    Attributes
    ----------
    ensemble_ : EnsembleClassifier
        The chosen members fused with the selection's weights (``cv="prefit"``).
    weights_ : ndarray of shape (n_members,)
        The chosen members' weights, in the order of ``ensemble_.members_``.
    trials_ : DataFrame
        One row per trial (and per extra seed, with ``seed_of`` set): ``number``, ``state``
        (``"COMPLETE"`` or ``"FAIL"``), ``space`` (the sub-space), the searched values, the
        held-out ``nll`` and ``error``, ``latency_ms`` (per 1000 rows), ``parameters``,
        ``fit_seconds``, ``weight`` in the ensemble, ``seed`` and ``failure`` (why it failed).
    pareto_ : DataFrame
        The completed trials no other trial beats on every objective, best first: the rows
        of ``trials_`` to choose one network from under a latency or size limit.
    held_out_index_ : ndarray
        The rows of the training data every trial was judged on (its held-out part, or all
        rows out of fold), on which the selection chose.
    trial_members_ : dict of int to estimator
        The fitted member of every completed trial, by number (held-out ``cv`` only; with
        folds, the chosen members are refit and live in ``ensemble_``).
    classes_, n_features_in_

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> search = EnsembleSearchClassifier(
    ...     NeuralClassifier(max_epochs=20), n_trials=4, ensemble_size=3, random_state=0
    ... ).fit(X, y)
    >>> len(search.trials_), float(search.weights_.sum().round(6))
    (4, 1.0)
    >>> search.score(X, y) > 0.8
    True
    """

    task = CLASSIFICATION
    _template_type = NeuralClassifier
    _ensemble_type = EnsembleClassifier
    _objective_names = CLASSIFIER_OBJECTIVES


class EnsembleSearchRegressor(RegressorMixin, WrappedRegressorMixin, _BaseEnsembleSearch):
    """Search a pool of regressors with Optuna and build the ensemble from all its trials.

    The parameters and attributes are those of :class:`EnsembleSearchClassifier`, with
    ``NeuralRegressor()`` as the default template, ``("rmse",)`` as the default objectives
    (``"latency"`` and ``"parameters"`` may follow), an unstratified split, and
    ``ensemble_`` an :class:`EnsembleRegressor`.

    Parameters
    ----------
    estimator : estimator, optional
        The template of every trial; ``NeuralRegressor()`` when ``None``.
    space : {"mlp", "cnn1d", "cnn2d", "any"}, dict or list of dicts, default="mlp"
        As in :class:`EnsembleSearchClassifier`.
    n_trials : int, default=20
        As in :class:`EnsembleSearchClassifier`.
    ensemble_size : int, default=5
        As in :class:`EnsembleSearchClassifier`.
    selection : BaseCombiner, optional
        As in :class:`EnsembleSearchClassifier`.
    extra_seeds : int, default=0
        As in :class:`EnsembleSearchClassifier`.
    cv : float, int, CV splitter or list of (train, test) pairs, default=0.2
        As in :class:`EnsembleSearchClassifier`.
    objectives : tuple of str, optional
        ``("rmse",)`` when ``None``; ``"latency"`` and ``"parameters"`` may follow.
    storage : str, path or optuna storage, optional
        As in :class:`EnsembleSearchClassifier`.
    study_name : str, default="ensemble-search"
        As in :class:`EnsembleSearchClassifier`.
    checkpoint_dir : str or path, optional
        As in :class:`EnsembleSearchClassifier`.
    n_jobs : int, optional
        As in :class:`EnsembleSearchClassifier`.
    random_state : int, RandomState or None
        As in :class:`EnsembleSearchClassifier`.
    verbose : bool, default=False
        As in :class:`EnsembleSearchClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from members import NeuralRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=0)
    >>> search = EnsembleSearchRegressor(
    ...     NeuralRegressor(max_epochs=20), n_trials=3, ensemble_size=2, random_state=0
    ... ).fit(X, y)
    >>> search.predict(X[:4]).shape
    (4,)
    """

    task = REGRESSION
    _template_type = NeuralRegressor
    _ensemble_type = EnsembleRegressor
    _objective_names = REGRESSOR_OBJECTIVES
