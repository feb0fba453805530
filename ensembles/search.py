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
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner, EnsembleSelection, WeightedCombiner
from combiners.metrics import CLASSIFICATION_LOSSES, rmse
from ensembles._base import check_held_out_weights, cv_splits, is_holdout
from ensembles._wrapped import WrappedClassifierMixin, WrappedRegressorMixin
from ensembles.classifier import EnsembleClassifier, member_probabilities
from ensembles.regressor import EnsembleRegressor, member_predictions
from ensembles.search_space import SubSpace, estimator_params, parse_space
from ensembles.training import FittedMember, MemberTask, load_fitted, plan_tasks, run_tasks
from members import NeuralClassifier, NeuralRegressor
from members.data import check_sample_weight, encode_classes, validate_inputs
from members.params import HasMethods, Interval, RealNotInt
from members.persistence import SaveLoadMixin
from members.training import draw_seed, forget_fit

logger = logging.getLogger(__name__)

CLASSIFIER_OBJECTIVES = ("nll", "error", "latency", "parameters")
REGRESSOR_OBJECTIVES = ("rmse", "latency", "parameters")
# Optuna's attributes of a trial: where it runs, its seed, why it failed
# (a failed trial without an error was interrupted: Ctrl-C, or its process was killed)
_OWNER, _SEED, _ERROR = "owner", "seed", "error"
_DATA = "data_fingerprint"

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


@dataclass
class _Trial:
    """One trial's configuration, and what came of it."""

    number: int
    values: dict[str, Any]  # the space's values (module_kwargs__* keys)
    params: dict[str, Any]  # set_params arguments for the template
    seed: int | None
    label: str
    state: str = "RUNNING"
    held_out: np.ndarray | None = None  # outputs on the held-out rows
    members: list[Any] = field(default_factory=list)  # one per split
    fit_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    seed_of: int | None = None  # the hyper-deep step: the trial whose configuration this reruns
    repeat: int = 0  # and which of its extra seeds this is


class _BaseEnsembleSearch(SaveLoadMixin, BaseEstimator):
    """The search; :class:`EnsembleSearchClassifier` and :class:`EnsembleSearchRegressor` set
    the task."""

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
        raise NotImplementedError

    def _output(self, member: Any, X: np.ndarray, name: str) -> np.ndarray:
        raise NotImplementedError

    def _metric_names(self) -> tuple[str, ...]:
        """The held-out losses every trial reports (columns of ``trials_``)."""
        raise NotImplementedError

    def _losses(
        self, outputs: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None
    ) -> dict[str, float]:
        """The held-out losses of one trial's outputs (weighted by ``sample_weight``)."""
        raise NotImplementedError

    def _refits(self) -> bool:
        """K folds: the chosen configurations are trained again on all the data."""
        return not is_holdout(self.cv)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _BaseEnsembleSearch:
        """Search ``n_trials`` configurations, select the ensemble from all of them, fit it.

        ``sample_weight`` weighs each row in every trial's training (its rows of it), in the
        held-out losses that judge the trials and in the selection.
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
        splits = cv_splits(self.cv, X, y, isinstance(self, ClassifierMixin), split_seed)
        held = np.concatenate([test for _, test in splits])
        order = np.argsort(held)
        held = held[order]
        held_weights = None if row_weights is None else row_weights[held]
        check_held_out_weights(
            row_weights, held, "cv", self.cv, "judging the trials and the selection"
        )

        study = self._study(optuna, objectives, X, y, splits, row_weights)
        search = _Search(
            self,
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
        weights = _select(selection, trials, targets[held], X[held], held_weights)
        if self.extra_seeds:
            chosen = [trial for trial, weight in zip(trials, weights, strict=True) if weight > 0]
            trials += search.reseed(chosen, self.extra_seeds)
            trials = [trial for trial in trials if trial.state == "COMPLETE"]
            weights = _select(selection, trials, targets[held], X[held], held_weights)
        members = search.final_members(trials, weights)
        named = [
            (_member_name(trial), member)
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

    def _study(
        self,
        optuna: Any,
        objectives: tuple[str, ...],
        X: np.ndarray,
        y: np.ndarray,
        splits: list[tuple[Any, Any]],
        weights: np.ndarray | None,
    ) -> Any:
        storage = self.storage
        if isinstance(storage, str | os.PathLike) and "://" not in str(storage):
            storage = _file_storage(optuna, Path(storage))
        data = (X, y) if weights is None else (X, y, weights)  # unweighted: as before
        fingerprint = joblib.hash(
            (type(self).__name__, *data, [(train, test) for train, test in splits], objectives)
        )
        optuna.logging.set_verbosity(
            optuna.logging.INFO if self.verbose else optuna.logging.WARNING
        )
        study = optuna.create_study(
            storage=storage,
            study_name=self.study_name,
            sampler=optuna.samplers.RandomSampler(0),  # each ask gets its own (_Search)
            directions=["minimize"] * len(objectives),
            load_if_exists=True,
        )
        stored = study.user_attrs.get(_DATA)
        if stored is None:
            study.set_user_attr(_DATA, fingerprint)
        elif stored != fingerprint:
            raise ValueError(
                f"storage={str(self.storage)!r} holds a study named {self.study_name!r} of "
                "another search (other data, splits, objectives or random_state); give another "
                "study_name or storage to start a new search, or the same data and "
                "random_state to continue that one"
            )
        return study

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
        return _pareto(self.trials_, self._fitted_objectives)

    # -- prediction --------------------------------------------------------------------------
    def _validate_X(self, X: Any) -> np.ndarray:
        """``X`` checked against the fit's features (their number, and names when the fit had
        them), as the array the members were trained on."""
        check_is_fitted(self, "ensemble_")
        return validate_inputs(self, X, reset=False)  # type: ignore[no-any-return]

    def predict(self, X: Any) -> np.ndarray:
        X = self._validate_X(X)
        return self.ensemble_.predict(X)  # type: ignore[no-any-return]

    def member_predictions(self, X: Any) -> np.ndarray:
        """Outputs of the chosen members, ``(n_members, n_samples, n_outputs)``."""
        X = self._validate_X(X)
        return self.ensemble_.member_predictions(X)  # type: ignore[no-any-return]

    def evaluate(self, X: Any, y: Any, *, sample_weight: Any = None) -> pd.DataFrame:
        """The table of the fitted ensemble's ``evaluate``: one row per chosen member."""
        X = self._validate_X(X)
        return self.ensemble_.evaluate(  # type: ignore[no-any-return]
            X, y, sample_weight=sample_weight
        )

    def distill(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """Compress the searched ensemble into one student; see
        :meth:`EnsembleClassifier.distill`."""
        X = self._validate_X(X)
        return self.ensemble_.distill(X, y, **kwargs)

    @property
    def members_(self) -> list[Any]:
        """The chosen members, fitted."""
        check_is_fitted(self, "ensemble_")
        return self.ensemble_.members_  # type: ignore[no-any-return]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class _Search:
    """The ask-train-tell loop of one fit, and the trials it ran or found in storage."""

    def __init__(
        self,
        owner: _BaseEnsembleSearch,
        template: Any,
        space: list[SubSpace],
        objectives: tuple[str, ...],
        splits: list[tuple[Any, Any]],
        order: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        sampler_seed: int,
        weights: np.ndarray | None,
        held_weights: np.ndarray | None,
    ) -> None:
        self.owner, self.template, self.space = owner, template, space
        self.objectives, self.splits, self.order = objectives, splits, order
        self.X, self.y, self.seed, self.sampler_seed = X, y, seed, sampler_seed
        self.checkpoint_dir = owner._checkpoint_dir()
        self.trials: list[_Trial] = []
        # the rows' weights (None: equal), and those of the held-out rows in held-out order
        self.weights, self.held_weights = weights, held_weights
        self.me = f"{socket.gethostname()}:{os.getpid()}"
        self.seeded = template.get_params().get("random_state", 0) is None

    # -- configurations ----------------------------------------------------------------------
    def _seed_of(self, number: int, repeat: int = 0) -> int | None:
        if not self.seeded:
            return None  # the template's own random_state holds
        seeds = np.random.SeedSequence([self.seed, number, repeat]).generate_state(1)
        return int(seeds[0] % np.iinfo(np.int32).max)

    def _sample(self, trial: Any) -> tuple[str, dict[str, Any]]:
        if len(self.space) == 1:
            alternative = self.space[0]
        else:
            label = trial.suggest_categorical("space", [a.label for a in self.space])
            alternative = next(a for a in self.space if a.label == label)
        prefix = f"{alternative.label}:" if len(self.space) > 1 else ""
        return alternative.label, {p.name: p.sample(trial, prefix) for p in alternative.params}

    def _decode(self, stored: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        alternative = (
            self.space[0]
            if len(self.space) == 1
            else next(a for a in self.space if a.label == stored["space"])
        )
        prefix = f"{alternative.label}:" if len(self.space) > 1 else ""
        return alternative.label, {p.name: p.decode(stored, prefix) for p in alternative.params}

    def _make(self, number: int, label: str, values: dict[str, Any], seed: int | None) -> _Trial:
        return _Trial(number, values, estimator_params(self.template, values), seed, label)

    def _estimator(self, trial: _Trial) -> Any:
        estimator = clone(self.template)
        try:
            estimator.set_params(**trial.params)
            if trial.seed is not None:
                estimator.set_params(random_state=trial.seed)
        except ValueError as error:
            raise ValueError(
                f"space does not fit estimator {type(self.template).__name__}: {error}"
            ) from None
        return estimator

    def _tasks(self, trial: _Trial) -> list[MemberTask]:
        name = _member_name(trial)
        return [
            MemberTask(
                [self._estimator(trial)],
                [f"trial {name}" + (f" on fold {fold}" if len(self.splits) > 1 else "")],
                [name if len(self.splits) == 1 else f"{name}-fold{fold}"],
                np.asarray(train),
                [(trial.number, fold)],
                self._fit_params(),
            )
            for fold, (train, _) in enumerate(self.splits)
        ]

    def _fit_params(self) -> dict[str, Any] | None:
        return None if self.weights is None else {"sample_weight": self.weights}

    # -- the loop ----------------------------------------------------------------------------
    def run(self, study: Any, targets: np.ndarray) -> None:
        """Ask, train and tell until the study holds ``n_trials`` finished trials."""
        from optuna.trial import TrialState

        self.targets = targets
        self._fail_stale(study, TrialState)
        self._reload(study, targets, TrialState)
        n_trials = self.owner.n_trials
        lock = threading.Lock()  # joblib may draw the next task from another thread
        # trials asked and not yet told: number -> (Optuna's trial, ours, fitted by fold)
        pending: dict[int, tuple[Any, _Trial, dict[int, FittedMember]]] = {}

        def tasks() -> Iterator[MemberTask]:
            """The next trial's tasks, asked of Optuna when a worker comes free."""
            while True:
                with lock:
                    if self._counted(study, TrialState) >= n_trials:
                        return
                    optuna_trial = study.ask()
                    # TPE draws when the trial suggests (lazily), so its seed can be the
                    # trial's number: unique even among processes sharing the storage
                    study.sampler = self._sampler(optuna_trial.number)
                    label, values = self._sample(optuna_trial)
                    trial = self._make(optuna_trial.number, label, values, None)
                    trial.seed = self._seed_of(trial.number)
                    optuna_trial.set_user_attr(_SEED, trial.seed)
                    optuna_trial.set_user_attr(_OWNER, self.me)
                    pending[trial.number] = (optuna_trial, trial, {})
                yield from self._tasks(trial)

        def done(task: MemberTask, fitted: list[FittedMember]) -> None:
            """A training finished: once all of a trial's have, judge it and tell Optuna."""
            number, fold = task.keys[0]  # type: ignore[index]
            with lock:
                optuna_trial, trial, by_fold = pending[number]
                by_fold[fold] = fitted[0]
                if len(by_fold) < len(self.splits):
                    return
                del pending[number]
                self._finish(trial, [by_fold[f] for f in range(len(self.splits))], targets)
                self._tell(study, optuna_trial, trial, TrialState)

        try:
            run_tasks(
                tasks(),
                self.X,
                self.y,
                checkpoint_dir=self.checkpoint_dir,
                log=self._log(),
                on_done=done,
                n_jobs=self.owner.n_jobs,
                failures="record",
            )
        except KeyboardInterrupt:
            # told failed without an error: interrupted, neither counted nor reloaded
            for optuna_trial, _, _ in pending.values():
                study.tell(optuna_trial, state=TrialState.FAIL)
            raise
        # what other processes sharing the storage finished meanwhile joins the selection
        self._reload(study, targets, TrialState)

    def _sampler(self, number: int) -> Any:
        """TPE seeded by ``random_state`` and the trial's number: a search resumed, or a second
        process on a shared storage, draws anew instead of repeating the first proposals.
        ``constant_liar``: trials running elsewhere count as bad, so that trials asked while
        others train differ from them (TPE keeps no state between asks that matters: every
        history is in the storage)."""
        from optuna.samplers import TPESampler

        seed = np.random.SeedSequence([self.sampler_seed, number]).generate_state(1)[0]
        return TPESampler(seed=int(seed), constant_liar=True)

    def _tell(self, study: Any, optuna_trial: Any, trial: _Trial, TrialState: Any) -> None:
        if trial.state == "COMPLETE":
            study.tell(optuna_trial, [trial.metrics[name] for name in self.objectives])
        else:
            optuna_trial.set_user_attr(_ERROR, trial.error)
            study.tell(optuna_trial, state=TrialState.FAIL)
            warnings.warn(
                f"trial {trial.number} failed and is left out: {trial.error}", stacklevel=2
            )
        self.trials.append(trial)

    def _log(self) -> Callable[[str], None] | None:
        prefix = f"[{type(self.owner).__name__}] "
        return (lambda line: print(prefix + line, flush=True)) if self.owner.verbose else None

    def _counted(self, study: Any, TrialState: Any) -> int:
        """Trials that count towards ``n_trials``: finished (complete or failed, not
        interrupted) or running elsewhere."""
        return sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
            or (t.state == TrialState.FAIL and _ERROR in t.user_attrs)
        )

    def _fail_stale(self, study: Any, TrialState: Any) -> None:
        """Trials left running by a process of this machine that no longer exists (killed):
        failed without an error, i.e. interrupted, so that they do not count."""
        host = socket.gethostname()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = str(trial.user_attrs.get(_OWNER, ""))
            name, _, pid = owner.rpartition(":")
            if name == host and pid.isdigit() and not _alive(int(pid)):
                study.tell(trial.number, state=TrialState.FAIL)

    def _reload(self, study: Any, targets: np.ndarray, TrialState: Any) -> None:
        """The trials an earlier run (or another process) finished and this one does not hold
        yet: completed ones loaded from ``checkpoint_dir`` (never trained again), failed ones
        listed."""
        found = []
        known = {trial.number for trial in self.trials}
        for stored in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)
        ):
            if stored.number in known:
                continue
            if stored.state == TrialState.FAIL and _ERROR not in stored.user_attrs:
                continue  # interrupted
            try:
                label, values = self._decode(stored.params)
            except (KeyError, IndexError, StopIteration):
                raise ValueError(
                    f"trial {stored.number} in storage does not fit space={self.owner.space!r}: "
                    "continue a search with the space it was started with"
                ) from None
            trial = self._make(stored.number, label, values, stored.user_attrs.get(_SEED))
            if stored.state == TrialState.FAIL:
                trial.state, trial.error = "FAIL", stored.user_attrs.get(_ERROR)
                self.trials.append(trial)
                continue
            found.append(trial)
        missing = []
        for trial in found:
            loaded = [
                load_fitted(task, self.X, self.y, self.checkpoint_dir)[0]
                for task in self._tasks(trial)
            ]
            if any(member is None for member in loaded):
                missing.append(trial.number)
                continue
            self._finish(trial, [m for m in loaded if m is not None], targets)
            self.trials.append(trial)
        if missing:
            warnings.warn(
                f"trials {missing} of study {self.owner.study_name!r} finished in another run "
                "whose members are not in checkpoint_dir; they are left out of the selection",
                stacklevel=4,
            )

    def _train(self, trials: list[_Trial], targets: np.ndarray) -> None:
        tasks = [task for trial in trials for task in self._tasks(trial)]
        results = run_tasks(
            tasks,
            self.X,
            self.y,
            checkpoint_dir=self.checkpoint_dir,
            log=self._log(),
            n_jobs=self.owner.n_jobs,
            failures="record",
        )
        by_number: dict[int, list[FittedMember]] = {}
        for task, fitted in zip(tasks, results, strict=True):
            by_number.setdefault(task.keys[0][0], []).extend(fitted)  # type: ignore[index]
        for trial in trials:
            self._finish(trial, by_number[trial.number], targets)

    def _finish(self, trial: _Trial, fitted: list[FittedMember], targets: np.ndarray) -> None:
        """The trial's held-out outputs and objectives, or its failure."""
        failed = next((member.error for member in fitted if member.error), None)
        if failed is None:
            try:
                trial.members = [member.estimator for member in fitted]
                trial.fit_seconds = sum(member.fit_seconds for member in fitted)
                outputs, latency = [], []
                for member, (_, test) in zip(trial.members, self.splits, strict=True):
                    start = time.perf_counter()
                    outputs.append(self.owner._output(member, self.X[test], _member_name(trial)))
                    latency.append((time.perf_counter() - start) / max(len(test), 1))
                trial.held_out = np.concatenate(outputs)[self.order]
                trial.metrics = self.owner._losses(trial.held_out, targets, self.held_weights)
                # milliseconds for 1000 rows
                trial.metrics["latency"] = 1e6 * _latency(
                    trial.members[0], self.X[self.splits[0][1]], min(latency)
                )
                count = _count_parameters(trial.members[0], "parameters" in self.objectives)
                trial.metrics["parameters"] = np.nan if count is None else float(count)
            except Exception as error:  # a member that predicts NaN, say
                failed = f"{type(error).__name__}: {error}"
        if failed is not None:
            trial.state, trial.error, trial.members, trial.held_out = "FAIL", failed, [], None
        else:
            trial.state = "COMPLETE"

    # -- after the search --------------------------------------------------------------------
    def reseed(self, chosen: list[_Trial], extra: int) -> list[_Trial]:
        """The hyper-deep step: each chosen configuration trained ``extra`` more times, each
        with a new seed, each training its own task (in parallel with ``n_jobs``)."""
        if not self.seeded:
            warnings.warn(
                "extra_seeds needs a template whose random_state is None (the search seeds "
                "each training); the template fixes it, so no extra seeds are trained",
                stacklevel=3,
            )
            return []
        seeds: list[_Trial] = []
        for trial in chosen:
            for repeat in range(1, extra + 1):
                copy = self._make(trial.number, trial.label, trial.values, None)
                copy.seed, copy.seed_of = self._seed_of(trial.number, repeat), trial.number
                copy.repeat = repeat
                copy.number = -(len(seeds) + 1)  # not an Optuna trial
                seeds.append(copy)
        if not seeds:
            return []
        self._train(seeds, self.targets)
        return seeds

    def final_members(self, trials: list[_Trial], weights: np.ndarray) -> list[Any]:
        """The chosen trials' members: as trained (held-out fraction) or refit on all rows."""
        if not self.owner._refits():
            return [trial.members[0] if w > 0 else None for trial, w in zip(trials, weights)]
        chosen = [trial for trial, w in zip(trials, weights, strict=True) if w > 0]
        estimators = [self._estimator(trial) for trial in chosen]
        tasks = plan_tasks(
            estimators,
            names=[f"trial {_member_name(trial)} on all the data" for trial in chosen],
            stems=[f"{_member_name(trial)}-all" for trial in chosen],
            batched=False,
            n_features=self.X.shape[1],
            n_outputs=1,
            fit_params=[self._fit_params()] * len(estimators),
        )
        results = run_tasks(
            tasks, self.X, self.y, checkpoint_dir=self.checkpoint_dir, n_jobs=self.owner.n_jobs
        )
        refit = iter([member.estimator for fitted in results for member in fitted])
        return [next(refit) if w > 0 else None for w in weights]

    def table(self, weights: np.ndarray, selected: list[_Trial]) -> list[dict[str, Any]]:
        weight_of = {id(trial): w for trial, w in zip(selected, weights, strict=True)}
        rows = []
        for trial in sorted(
            {id(t): t for t in [*self.trials, *selected]}.values(),
            key=lambda t: (t.number if t.seed_of is None else t.seed_of, t.repeat),
        ):
            row: dict[str, Any] = {
                "number": trial.number if trial.seed_of is None else None,
                "seed_of": trial.seed_of,
                "state": trial.state,
                "space": trial.label,
                **trial.values,
                **{name: trial.metrics.get(name, np.nan) for name in self.owner._metric_names()},
                "latency_ms": trial.metrics.get("latency", np.nan),
                "parameters": trial.metrics.get("parameters", np.nan),
                "fit_seconds": trial.fit_seconds,
                "weight": float(weight_of.get(id(trial), 0.0)),
                "seed": trial.seed,
                "failure": trial.error,
            }
            rows.append(row)
        return rows


def _select(
    selection: BaseCombiner,
    trials: list[_Trial],
    targets: np.ndarray,
    X: np.ndarray,
    sample_weight: np.ndarray | None,
) -> np.ndarray:
    outputs = np.stack([trial.held_out for trial in trials])  # type: ignore[misc]
    fitted = clone(selection).fit(outputs, targets, X=X, sample_weight=sample_weight)
    weights = getattr(fitted, "weights_", None)
    if weights is None:
        raise ValueError(
            f"selection {type(selection).__name__} has no weights_ after fitting; the search "
            "needs a combiner that weighs its members (EnsembleSelection, WeightedCombiner)"
        )
    return np.asarray(weights, dtype=float)


def _pareto(trials: pd.DataFrame, objectives: tuple[str, ...]) -> pd.DataFrame:
    """The completed first-round trials no other trial beats on every objective, best first."""
    done = trials[(trials["state"] == "COMPLETE") & trials["seed_of"].isna()]
    return pareto_front(done, [_column(name) for name in objectives])


def pareto_front(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows no other row beats on every one of ``columns`` (all minimised), sorted by the
    first column.

    Examples
    --------
    >>> rows = pd.DataFrame({"nll": [0.1, 0.2, 0.3, 0.25], "latency_ms": [9.0, 4.0, 1.0, 5.0]})
    >>> pareto_front(rows, ["nll", "latency_ms"])["nll"].tolist()
    [0.1, 0.2, 0.3]
    """
    values = rows[columns].to_numpy(dtype=float)
    keep = [
        not np.any(np.all(values <= row, axis=1) & np.any(values < row, axis=1)) for row in values
    ]
    return rows[keep].sort_values(columns[0]).reset_index(drop=True)


def _column(objective: str) -> str:
    return "latency_ms" if objective == "latency" else objective


def _member_name(trial: _Trial) -> str:
    if trial.seed_of is None:
        return f"trial{trial.number}"
    return f"trial{trial.seed_of}_seed{trial.repeat}"


def _latency(member: Any, X: np.ndarray, first: float) -> float:
    """Seconds per row to predict ``X``: the best of the first pass and two more."""
    times = [first]
    predict = getattr(member, "predict_proba", None) or member.predict
    for _ in range(2):
        start = time.perf_counter()
        predict(X)
        times.append((time.perf_counter() - start) / max(len(X), 1))
    return min(times)


def _count_parameters(member: Any, required: bool) -> int | None:
    """The weights of ``member``'s fitted network; ``None`` (or, when ``required``, an error)
    for a member without one."""
    network = getattr(member, "model_", None)
    if network is None or not hasattr(network, "parameters"):
        if not required:
            return None
        raise TypeError(
            f"objective 'parameters' counts a network's weights; {type(member).__name__} has "
            "no fitted torch network (model_)"
        )
    return int(sum(p.numel() for p in network.parameters()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _file_storage(optuna: Any, path: Path) -> Any:
    """An SQLite file (``.db``, ``.sqlite``, ``.sqlite3``) or an Optuna journal (any other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path.resolve()}"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


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

    _template_type = NeuralClassifier
    _ensemble_type = EnsembleClassifier
    _objective_names = CLASSIFIER_OBJECTIVES

    def _validate_targets(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y = validate_inputs(self, X, y, ensure_min_samples=2)
        check_classification_targets(y)
        self.classes_, encoded = encode_classes(y, type(self).__name__)
        return X, y, encoded

    def _metric_names(self) -> tuple[str, ...]:
        return ("nll", "error")

    def _output(self, member: Any, X: np.ndarray, name: str) -> np.ndarray:
        return member_probabilities(member, X, self.classes_, name)

    def _losses(
        self, outputs: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None
    ) -> dict[str, float]:
        # the very losses the selection minimises
        return {
            name: float(CLASSIFICATION_LOSSES[name](targets, outputs, sample_weight))
            for name in self._metric_names()
        }

    def predict_proba(self, X: Any) -> np.ndarray:
        """The searched ensemble's class probabilities."""
        X = self._validate_X(X)
        return self.ensemble_.predict_proba(X)  # type: ignore[no-any-return]


class EnsembleSearchRegressor(RegressorMixin, WrappedRegressorMixin, _BaseEnsembleSearch):
    """Search a pool of regressors with Optuna and build the ensemble from all its trials.

    The parameters and attributes are those of :class:`EnsembleSearchClassifier`, with
    ``NeuralRegressor()`` as the default template, ``("rmse",)`` as the default objectives
    (``"latency"`` and ``"parameters"`` may follow), an unstratified split, and
    ``ensemble_`` an :class:`EnsembleRegressor`.

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

    _template_type = NeuralRegressor
    _ensemble_type = EnsembleRegressor
    _objective_names = REGRESSOR_OBJECTIVES

    def _validate_targets(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X, y = validate_inputs(self, X, y, ensure_min_samples=2, y_numeric=True, multi_output=True)
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return X, y, y.reshape(len(y), -1)

    def _metric_names(self) -> tuple[str, ...]:
        return ("rmse",)

    def _output(self, member: Any, X: np.ndarray, name: str) -> np.ndarray:
        return member_predictions(member, X, self.n_outputs_, name)

    def _losses(
        self, outputs: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray | None
    ) -> dict[str, float]:
        return {"rmse": float(rmse(targets, outputs, sample_weight))}

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
