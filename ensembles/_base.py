"""Shared machinery of the ensemble estimators: members, seeds, cross-fitting, member outputs.

:class:`BaseEnsemble` is one estimator whose fit runs in steps that share its state (check the
members and the combiner, route the fit's metadata, train the members on the held-out plan's
rows, fit the combiner and the calibration on held-out outputs, run the fusion guard, refit),
and whose prediction fuses its members' outputs; about 720 lines (520 of code, the rest
docstrings), kept in one class so that a step reads the attributes the previous one set.
What is not the estimator's lives beside it: the task (:mod:`members.tasks`), the splits
(:mod:`ensembles.splits`), metadata routing (:mod:`ensembles.routing`), training the members
(:mod:`ensembles.training`) and the guard (:mod:`ensembles.guard`).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any, ClassVar, Literal, overload

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.metadata_routing import (
    MetadataRouter,
)
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from combiners import BaseCombiner, MeanCombiner, WeightedCombiner, cross_fitted_fusion
from ensembles.distillation import distill
from ensembles.guard import fusion_warning, held_out_scores
from ensembles.routing import is_drop, metadata_router, route_fit
from ensembles.soup import soup
from ensembles.splits import (
    DEFAULT_FOLDS,
    PREFIT,
    check_held_out_weights,
    cv_splits,
    is_holdout,
)
from ensembles.training import plan_tasks, run_tasks
from members.data import check_sample_weight, validate_inputs
from members.neural import BaseNeuralEstimator
from members.params import HasMethods, Interval, RealNotInt, StrOptions
from members.persistence import SaveLoadMixin
from members.tasks import Task
from members.training import draw_seed, forget_fit

logger = logging.getLogger(__name__)

# The default fusion (combiner=None, cv=None): learned weights (WeightedCombiner) on this share
# of the rows, held out from members trained on the rest, then the members refit on every row:
# each network warm, fine-tuned from its held-out-scheme self for WARM_REFIT of its epochs
# ((1 - DEFAULT_HOLDOUT) + WARM_REFIT trainings each), any other member from scratch. Chosen on
# validation splits of the training data of five sets (python benchmarks/defaults.py
# --validation; the table: docs/guide/defaults.md), against no refit, a full refit (as good
# against the best member, higher loss in 7 of 10 splits, 1.75 times the mean's time (median)
# against 1.0), a warm refit at 0.3 or 0.1 times the learning rate (at the bar in 5 and 4 of
# 10 splits, against 6), a full refit after held-out networks trained for a half or a quarter
# of their epochs (6 of 10, 1.4 and 1.2 times), AutoCombiner's choice and Caruana selection.
DEFAULT_HOLDOUT = 0.2
WARM_REFIT = 0.25
# ... at this share of the member's own learning rate (the cosine schedule restarts from it)
WARM_LR = 1.0
# the parameters the warm refit changes (warm_refit), and gives back to the user's (as_given)
WARM_PARAMS = ("init", "max_epochs", "lr")
# Below this many training rows the default is the plain mean: too few to hold any out.
DEFAULT_MIN_ROWS = 250
# The parameters every ensemble takes, in _parameter_constraints form; subclasses add theirs.
ENSEMBLE_CONSTRAINTS: dict[str, list[Any]] = {
    "members": [list, tuple],  # each entry is checked by _check_members
    "combiner": [BaseCombiner, None],
    "cv": [
        Interval(Integral, 2, None, closed="left"),
        Interval(RealNotInt, 0, 1, closed="neither"),
        HasMethods(["split", "get_n_splits"]),
        list,  # of (train, test) index pairs
        StrOptions({PREFIT}),
        None,
    ],
    "class_weight": [None],  # the classifier adds its options
    "sub_networks": [StrOptions({"split", "fused"})],
    "batched": [StrOptions({"auto"}), "boolean"],
    "checkpoint_dir": [str, os.PathLike, None],
    # scikit-learn's n_jobs: -1 every core, -2 all but one...; 0 means nothing
    "n_jobs": [
        Interval(Integral, None, -1, closed="right"),
        Interval(Integral, 1, None, closed="left"),
        None,
    ],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class BaseEnsemble(SaveLoadMixin, _BaseComposition):
    """Members as ``(name, estimator)`` pairs, trained with their own seeds, fused by a combiner.

    ``get_params``/``set_params`` reach into members by name (``set_params(mlp__lr=1e-3)``), and a
    member can be switched off with ``set_params(mlp="drop")``, as in scikit-learn's ensembles.
    """

    _required_parameters = ["members"]

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = ENSEMBLE_CONSTRAINTS
    #: what differs between classification and regression (:mod:`members.tasks`)
    task: ClassVar[Task]

    def __init__(
        self,
        members: list[tuple[str, Any]],
        *,
        combiner: BaseCombiner | None = None,
        cv: int | float | str | Any | None = None,
        calibration: str | None = None,
        class_weight: str | dict[Any, float] | None = None,
        sub_networks: str = "split",
        batched: bool | str = "auto",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.members = members
        self.combiner = combiner
        self.cv = cv
        self.calibration = calibration
        self.class_weight = class_weight
        self.sub_networks = sub_networks
        self.batched = batched
        self.checkpoint_dir = checkpoint_dir
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __setstate__(self, state: dict[str, Any]) -> None:
        # saves from before class weights: none; from before they shifted the fused
        # probabilities (they weighed the rows): no shift
        defaults: dict[str, Any] = {"class_weight": None, "sub_networks": "split"}
        if "members_" in state:
            defaults["class_weight_"] = None
            # saves from before sub-networks: one output per member
            defaults["output_names_"] = list(state.get("named_members_", {}))
        super().__setstate__({**defaults, **state})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ensemble's parameters, and its members' as ``<name>__<parameter>``.

        Parameters
        ----------
        deep : bool, default=True
            Include each member (by its name) and its parameters.

        Returns
        -------
        dict
            Parameter names to values.
        """
        return self._get_params("members", deep=deep)  # type: ignore[no-any-return]

    def set_params(self, **params: Any) -> BaseEnsemble:
        """Set parameters of the ensemble, or of a member as ``<name>__<parameter>``.

        Parameters
        ----------
        **params
            Parameter names to values; ``<name>=estimator`` replaces a member.

        Returns
        -------
        self
            The ensemble.
        """
        self._set_params("members", **params)
        return self

    # -- what the task says (members.tasks) --------------------------------------------------
    def _validate_targets(
        self, X: Any, y: Any, active: list[tuple[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(X, y for the members, targets for the combiner)``; set the target
        attributes (``classes_``; ``n_outputs_``)."""
        X, y = self.task.validate(self, X, y, ensure_min_samples=2)
        self.__dict__.update(self.task.fit_encoding(y, owner=type(self).__name__))
        return X, y, self.task.encode(self, y)

    def _n_outputs(self) -> int:
        return self.task.n_outputs(self)

    def _member_output(self, name: str, member: Any, X: np.ndarray) -> np.ndarray:
        """Member ``name``'s output on ``X``, ``(n_samples, n_outputs)``, checked with
        :func:`members.tasks.check_member_output`."""
        return self.task.member_output(member, X, self, name)

    def _needs_held_out(self, combiner: BaseCombiner) -> bool:
        # folds or a held-out fraction give a fixed rule held-out outputs too, for the fusion
        # guard; "prefit" data may be the members' own (a snapshot ensemble's fixed rule)
        return combiner.learns or self.calibration is not None or self.cv not in (None, PREFIT)

    def _held_out_member(
        self, name: str, member: Any, X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Member ``name``'s output on held-out rows (:meth:`_member_output`) and, from the same
        prediction, a second output that calibration needs (a regressor's predictive
        variances), ``(n_samples, n_outputs)``; ``None`` (the default) when it needs none."""
        return self._member_output(name, member, X), None

    def _fit_calibration(
        self,
        predictions: np.ndarray | None,
        targets: np.ndarray | None,
        X: Any,
        extra: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
        fused: np.ndarray | None = None,
    ) -> None:
        """Fit what comes after fusion on held-out outputs (``None`` when none were needed);
        ``extra`` holds the members' second outputs (:meth:`_held_out_member`) on those rows,
        ``sample_weight`` their weights (``None``: equal), ``fused`` their cross-fitted fusion
        (:func:`~combiners.cross_fitted_fusion`)."""

    # -- validation --------------------------------------------------------------------------
    def _check_members(self) -> list[tuple[str, Any]]:
        if not isinstance(self.members, list | tuple) or len(self.members) == 0:
            raise ValueError(
                f"members must be a non-empty list of (name, estimator) pairs; got {self.members!r}"
            )
        for entry in self.members:
            if not (isinstance(entry, tuple | list) and len(entry) == 2):
                raise TypeError(
                    f"each entry of members must be a (name, estimator) pair; got {entry!r}"
                )
        names = [name for name, _ in self.members]
        for name in names:
            if not isinstance(name, str) or not name or "__" in name:
                raise ValueError(
                    f"member names must be non-empty strings without '__'; got {name!r}"
                )
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"member names must be unique; got duplicates {duplicates}")
        clash = sorted(set(names) & set(self._get_param_names()))
        if clash:
            raise ValueError(f"member names {clash} clash with constructor parameter names")
        active = [(name, est) for name, est in self.members if not is_drop(est)]
        if not active:
            raise ValueError("all members are 'drop'; at least one member must be an estimator")
        predict_method = self.task.output_method
        # a member of the other kind is refused (a classifier is not a regressor, and back)
        wrong_kind, kind = self.task.is_other_kind, self.task.other_kind
        for name, estimator in active:
            if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
                raise TypeError(
                    f"member {name!r} must be a scikit-learn estimator (with fit and get_params); "
                    f"got {type(estimator).__name__}"
                )
            if wrong_kind(estimator):
                raise TypeError(
                    f"member {name!r} of {type(self).__name__} is a {kind} "
                    f"({type(estimator).__name__}); use EnsembleClassifier for classifiers and "
                    "EnsembleRegressor for regressors"
                )
            if not hasattr(estimator, predict_method) and not hasattr(estimator, "predict"):
                raise TypeError(f"member {name!r} has no {predict_method} or predict method")
        return active

    def _check_combiner(self) -> BaseCombiner:
        combiner = WeightedCombiner() if self.combiner is None else clone(self.combiner)
        combiner.check_task(self.task.classification)
        return combiner

    def _default_combiner(
        self, combiner: BaseCombiner, n_members: int, n_rows: int
    ) -> BaseCombiner:
        """The combiner ``combiner=None`` means for this fit: learned weights
        (:class:`~combiners.WeightedCombiner`) with two or more members and, unless ``cv`` says
        where held-out rows come from, at least :data:`DEFAULT_MIN_ROWS` rows; the plain mean
        otherwise (nothing to weigh, or too few rows to hold out); ``combiner`` itself when
        the user gave one."""
        if self.combiner is not None:
            return combiner
        if n_members > 1 and (self.cv is not None or n_rows >= DEFAULT_MIN_ROWS):
            return combiner
        return MeanCombiner()

    def _held_out_plan(self) -> tuple[Any, str | None]:
        """``(cv, refit)``: where held-out outputs come from (a ``cv`` value) and how the
        members are then refit on all the rows (``"warm"``, ``"full"`` or ``None``: not at
        all). ``cv=None``: :data:`DEFAULT_HOLDOUT` of the rows with a warm refit for the
        default combiner, :data:`DEFAULT_FOLDS` folds and a full refit for one given."""
        if self.cv is None:
            if self.combiner is None:
                return DEFAULT_HOLDOUT, "warm"
            return DEFAULT_FOLDS, "full"
        return self.cv, None if is_holdout(self.cv) else "full"

    def _validate_X(self, X: Any) -> Any:
        return validate_inputs(self, X, reset=False)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any) -> BaseEnsemble:
        """Fit the members, then the combiner on predictions the members did not train on.

        Fixed rules (averaging, voting) need no held-out data: each member is trained once. A
        rule that learns (or calibration) gets held-out member outputs according to ``cv``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), optional
            Each row's weight. Every member gets the weights of the rows it trains on, as
            ``VotingClassifier`` passes them (a member whose ``fit`` takes no
            ``sample_weight`` is refused by name); a learned combiner and the calibration
            weigh the held-out rows by them. With scikit-learn's metadata routing enabled,
            a member gets them only if it asks (``member.set_fit_request(sample_weight=True)``);
            the combiner and calibration always use them.
        **fit_params
            Other metadata, for metadata routing only: each member gets what it requests for
            ``fit``, and a splitter ``cv`` what it requests for ``split`` (``groups``).

        Returns
        -------
        self
            The fitted ensemble.
        """
        self._validate_params()
        active = self._check_members()
        combiner = self._check_combiner()
        forget_fit(self)  # nothing of an earlier fit (oof_predictions_, say) survives a refit
        X, y, targets = self._validate_targets(X, y, active)
        combiner = self._default_combiner(combiner, len(active), len(X))
        sample_weight = check_sample_weight(sample_weight, X)
        self.refit_: str | None = None  # _cross_fit says how the members were refit, if at all
        self.class_weight_ = self.task.class_weights(
            self, targets, sample_weight, self.class_weight
        )
        member_params, split_params = self._route_fit(active, sample_weight, fit_params)
        rng = check_random_state(self.random_state) if self.random_state is not None else None
        seeds = [None if rng is None else draw_seed(rng) for _ in active]
        needs_held_out = self._needs_held_out(combiner)
        oof: np.ndarray | None = None
        extra: np.ndarray | None = None

        if self.cv == PREFIT:
            self._use_prefit(active)
            # the given data is held out from every member by construction
            held_out = np.arange(len(X))
            if needs_held_out:
                oof, extra = self._held_out_outputs(list(self.named_members_.items()), X)
        elif not needs_held_out:
            [fitted] = self._fit_members(active, seeds, X, y, [(None, None)], member_params)
            self._set_members(active, fitted)
        else:
            held_out, oof, extra = self._cross_fit(
                active, seeds, X, y, rng, member_params, split_params, sample_weight
            )

        if oof is not None:
            self.oof_predictions_ = oof
            self.oof_index_ = held_out
            X_held, targets_held = X[held_out], targets[held_out]
            weights_held = None if sample_weight is None else sample_weight[held_out]
            self.combiner_ = combiner.fit(oof, targets_held, X=X_held, sample_weight=weights_held)
            # the fused held-out outputs a learned combiner did not fit, computed once: the
            # calibration learns from them and the guard judges them
            fused = cross_fitted_fusion(self.combiner_, oof, targets_held, X_held, weights_held)
            self._fit_calibration(oof, targets_held, X_held, extra, weights_held, fused)
            self._guard_fusion(oof, fused, targets_held, weights_held)
        else:
            # Fixed rules learn nothing from data: fit them on the shape alone.
            shape_only = np.zeros((len(self.output_names_), 0, self._n_outputs()))
            self.combiner_ = combiner.fit(shape_only)
            self._fit_calibration(None, None, None, None)
        return self

    def _route_fit(
        self,
        active: list[tuple[str, Any]],
        sample_weight: np.ndarray | None,
        fit_params: dict[str, Any],
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """What each member's ``fit`` gets besides ``(X, y)``, by name, and what the
        splitter's ``split`` gets (:func:`ensembles.routing.route_fit`)."""
        return route_fit(self, active, sample_weight, fit_params)

    def get_metadata_routing(self) -> MetadataRouter:
        """The metadata routing of scikit-learn for this ensemble.

        The ensemble uses ``sample_weight`` itself (its combiner and calibration) and routes
        ``fit`` metadata to each member that requests it, and ``split`` metadata (``groups``)
        to a splitter ``cv``.

        Returns
        -------
        MetadataRouter
            What :func:`sklearn.utils.metadata_routing.get_routing_for_object` reads.
        """
        return metadata_router(self)

    def _held_out_outputs(
        self, named: list[tuple[str, Any]], X: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The members' outputs on held-out rows ``X``, ``(n_members, n_samples, n_outputs)``,
        and their second outputs (:meth:`_held_out_member`; ``None`` when calibration needs
        none), each member predicting once."""
        outputs, extras = [], []
        for name, member in self._output_members(named, X):
            with naming(name):
                output, extra = self._held_out_member(name, member, X)
            outputs.append(output)
            extras.append(extra)
        if any(extra is None for extra in extras):
            return np.stack(outputs), None
        return np.stack(outputs), np.stack([extra for extra in extras if extra is not None])

    def _fit_members(
        self,
        active: list[tuple[str, Any]],
        seeds: list[int | None],
        X: np.ndarray,
        y: np.ndarray,
        jobs: list[tuple[int | None, np.ndarray | None]],
        member_params: dict[str, dict[str, Any]],
    ) -> list[list[Any]]:
        """For each ``(fold, rows)`` job, fresh clones of the members fitted on those rows
        (with their ``member_params``, :meth:`_route_fit`, cut to the rows).

        A member left unseeded gets its seed; a failure names the member (and fold). Every
        training of every job is one task of the member-training service
        (:mod:`ensembles.training`), members that differ only in ``random_state`` grouped for
        the batched engine as ``batched`` says.
        """
        names = [name for name, _ in active]
        tasks = []
        for job, (fold, rows) in enumerate(jobs):
            members = []
            for (_, estimator), seed in zip(active, seeds, strict=True):
                member = clone(estimator)
                if seed is not None and member.get_params().get("random_state", 0) is None:
                    member.set_params(random_state=seed)
                members.append(member)
            on_fold = "" if fold is None else f" on fold {fold}"
            tasks += plan_tasks(
                members,
                names=[f"member {name!r}{on_fold}" for name in names],
                stems=[name if fold is None else f"{name}-fold{fold}" for name in names],
                batched=self.batched,
                n_features=X.shape[1],
                n_outputs=self._n_outputs(),
                rows=rows,
                keys=[(job, index) for index in range(len(members))],
                fit_params=[member_params[name] for name in names],
            )
        prefix = f"[{type(self).__name__}] "
        results = run_tasks(
            tasks,
            X,
            y,
            checkpoint_dir=self.checkpoint_dir,
            log=(lambda line: print(prefix + line, flush=True)) if self.verbose else None,
            n_jobs=self.n_jobs,
        )
        fitted: list[list[Any]] = [[None] * len(active) for _ in jobs]
        for task, done in zip(tasks, results, strict=True):
            for (job, index), member in zip(task.keys or [], done, strict=True):
                fitted[job][index] = member.estimator
        return fitted

    def _set_members(self, active: list[tuple[str, Any]], fitted: list[Any]) -> None:
        self.members_ = fitted
        self.named_members_ = {
            name: member for (name, _), member in zip(active, fitted, strict=True)
        }
        self.output_names_ = [
            output
            for name, member in self.named_members_.items()
            for output in self._output_names(name, member)
        ]

    # -- sub-networks: an ensemble inside one member -----------------------------------------
    def _split(self, member: Any) -> int:
        """How many outputs the fitted ``member`` gives the combiner: its sub-networks
        (``member.sub_networks``: an ensemble inside one network, ``members.Packed`` and the
        like, or :mod:`ensembles.efficient`'s estimators) when ``sub_networks="split"``, else 1."""
        if self.sub_networks != "split":
            return 1
        count = getattr(member, "sub_networks", 1)
        return int(count) if isinstance(count, Integral) and not isinstance(count, bool) else 1

    def _output_names(self, name: str, member: Any) -> list[str]:
        count = self._split(member)
        return [name] if count == 1 else [f"{name}[{index}]" for index in range(count)]

    def _output_members(self, named: Any, X: np.ndarray) -> list[tuple[str, Any]]:
        """``(name, member)`` for every output the combiner fuses on rows ``X``: a member that
        splits gives one member per sub-network, ``name[i]``, whose outputs come from one
        forward pass of its network."""
        result: list[tuple[str, Any]] = []
        for name, member in named:
            names = self._output_names(name, member)
            if len(names) == 1:
                result.append((name, member))
                continue
            with naming(name):
                outputs = np.asarray(member.sub_network_outputs(X))
            result += [
                (output_name, _FunctionMember(member, _Constant(output), split=False))
                for output_name, output in zip(names, outputs, strict=True)
            ]
        return result

    def owner(self, output_name: str) -> Any:
        """The fitted member that gives the output ``output_name``.

        ``output_name`` is one of ``output_names_``: the member of that name, or the one whose
        sub-network ``name[i]`` is.

        Parameters
        ----------
        output_name : str
            A member's name, or ``name[i]``.

        Returns
        -------
        estimator
            The fitted member.
        """
        check_is_fitted(self, "members_")
        if output_name in self.named_members_:
            return self.named_members_[output_name]
        name = output_name.rpartition("[")[0]
        if output_name in self.output_names_ and name in self.named_members_:
            return self.named_members_[name]
        raise KeyError(f"{output_name!r} is not one of this ensemble's outputs")

    def _use_prefit(self, active: list[tuple[str, Any]]) -> None:
        for name, estimator in active:
            try:
                check_is_fitted(estimator)
            except NotFittedError:
                raise NotFittedError(
                    f"cv='prefit' uses the members as they are, but member {name!r} is not "
                    "fitted; fit it first or choose another cv"
                ) from None
        self._set_members(active, [estimator for _, estimator in active])

    def _splits(
        self, X: np.ndarray, y: np.ndarray, rng: Any, split_params: dict[str, Any], cv: Any
    ) -> list[tuple[Any, Any]]:
        shuffle_seed = None if rng is None else draw_seed(rng)
        return cv_splits(cv, X, y, self.task.classification, shuffle_seed, split_params)

    def _guard_fusion(
        self,
        predictions: np.ndarray,
        fused: np.ndarray,
        targets: np.ndarray,
        sample_weight: np.ndarray | None,
    ) -> None:
        """Score each member (``predictions``) and the fused ensemble (``fused``: a learned
        combiner cross-fitted, so it is judged on rows it was not fitted to) on the held-out
        rows, keep the scores as ``held_out_scores_``, and warn when the ensemble is worse than
        its best member beyond the noise of those rows
        (:func:`ensembles.guard.held_out_scores`)."""
        names = list(self.output_names_)
        self.held_out_scores_, worse = held_out_scores(
            predictions, fused, targets, names, sample_weight
        )
        if worse is not None:
            message = fusion_warning(
                type(self).__name__, self.held_out_scores_, worse, self.combiner_, len(targets)
            )
            warnings.warn(message, UserWarning, stacklevel=3)

    def _cross_fit(
        self,
        active: list[tuple[str, Any]],
        seeds: list[int | None],
        X: np.ndarray,
        y: np.ndarray,
        rng: Any,
        member_params: dict[str, dict[str, Any]],
        split_params: dict[str, Any],
        sample_weight: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Held-out rows, their out-of-fold member outputs and extras (:meth:`_held_out_outputs`);
        then the members on all data (K folds) or as trained. Each member trains with its
        ``member_params`` cut to its rows (sample weights follow their rows). Held-out rows
        that all weigh 0 (``sample_weight``) are refused before anything trains."""
        cv, refit = self._held_out_plan()
        self.refit_ = refit
        splits = self._splits(X, y, rng, split_params, cv)
        held_out = np.concatenate([test for _, test in splits])
        check_held_out_weights(
            sample_weight, held_out, "cv", self.cv, "the combiner and calibration"
        )
        if refit:
            what = (
                f"holding out {len(held_out)} rows"
                if len(splits) == 1
                else f"cross-fitting with {len(splits)} folds"
            )
            if refit == "warm":
                message = (
                    f"{what}: each of the {len(active)} members is trained on the other rows, "
                    f"then each network fine-tuned from itself on all the data for "
                    f"{WARM_REFIT:.0%} of its epochs (any other member trained again)"
                )
            else:
                message = (
                    f"{what}: each of the {len(active)} members is trained {len(splits) + 1} "
                    f"times ({'on the other rows' if len(splits) == 1 else 'once per fold'}, "
                    "then on all the data)"
                )
            logger.info(message)
            if self.verbose:
                print(f"[{type(self).__name__}] {message}", flush=True)
        jobs: list[tuple[int | None, np.ndarray | None]] = [
            (fold, np.asarray(train)) for fold, (train, _) in enumerate(splits)
        ]
        if refit == "full":
            jobs.append((None, None))  # the refit on all the data
        fitted = self._fit_members(active, seeds, X, y, jobs, member_params)
        if refit == "warm":
            warm = [
                (name, warm_refit(estimator, member, y))
                for (name, estimator), member in zip(active, fitted[0], strict=True)
            ]
            (refits,) = self._fit_members(warm, seeds, X, y, [(None, None)], member_params)
            fitted.append(
                [
                    as_given(member, estimator)
                    for member, (_, estimator) in zip(refits, active, strict=True)
                ]
            )
        oof: np.ndarray | None = None
        extra: np.ndarray | None = None
        for members, (_, test) in zip(fitted, splits, strict=False):
            named = [(name, member) for (name, _), member in zip(active, members, strict=True)]
            outputs, fold_extra = self._held_out_outputs(named, X[test])
            if oof is None:  # a member's sub-networks are known once it is trained
                oof = np.zeros((len(outputs), len(X), self._n_outputs()))
            oof[:, test] = outputs
            if fold_extra is not None:
                extra = np.zeros_like(oof) if extra is None else extra
                extra[:, test] = fold_extra
        self._set_members(active, fitted[-1])
        held_out = np.sort(held_out)
        assert oof is not None  # there is at least one split
        return held_out, oof[:, held_out], None if extra is None else extra[:, held_out]

    # -- distillation ------------------------------------------------------------------------
    def distill(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """Compress this fitted ensemble into one student network, returned fitted.

        By default (``method="function_matching"``, Beyer et al., 2022) the ensemble labels,
        at every step, the very view of a batch that the student trains on: views drawn afresh
        by ``augment`` (``"auto"``: shifts, scaling, noise and mixup with ``λ ~ U(0, 1)`` for a
        signal or image network, mixup alone otherwise). The student learns
        ``T^2 * KL(teacher_T || student_T)`` (MSE to the ensemble's prediction for
        regression), for up to ``budget`` times its own ``max_epochs``; a held-out
        ``validation_fraction`` of ``X`` stops it once its KL to the ensemble stops improving,
        and the best epoch is kept. ``method="cached"`` is the older recipe: the ensemble
        labels a transfer set once (``X``, ``X_unlabeled`` and ``n_augment`` augmented copies,
        ``augment="noise" | "mixup" | "munge"``) and the student learns ``alpha * T^2 * KL +
        (1 - alpha) * CE`` on it for ``max_epochs``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The rows the student learns on (the transfer set).
        y : array-like, optional
            True targets of ``X``: they stratify the held-out split and, with ``alpha < 1``,
            add a label term; without them the student learns from the ensemble alone.
        **kwargs
            ``student`` (default: an unfitted copy of the smallest neural member),
            ``method`` ("function_matching"), ``temperature`` (2.0), ``alpha`` (1.0; 0.9 for
            "cached"), ``augment`` ("auto"; None for "cached"), ``budget`` (3),
            ``validation_fraction`` (0.1), ``warm_start`` (False: start from the best member
            of the student's architecture when True), ``n_augment`` (1, "cached" only),
            ``X_unlabeled`` (None), ``random_state`` (None), ``sample_weight`` (None: the rows of
            ``X`` weigh equally). The defaults of function matching
            were chosen on a validation split of MNIST-1D's training data
            (``python experiments/mnist1d_distill.py --select``).

        Returns
        -------
        estimator
            The fitted student (a copy of the ``student`` template);
            :meth:`DistillationReport.compare` measures what it kept.
        """
        return distill(self, X, y, **kwargs)

    def soup(self, X: Any = None, y: Any = None, *, members: Any = None, **kwargs: Any) -> Any:
        """Average the members' weights into one network (a model soup).

        See :func:`ensembles.soup`: one network of the members' architecture, at the cost of
        one network's prediction and no training. The members must be networks of one
        architecture that share a basin of the loss (fine-tunes of one network,
        ``NeuralClassifier(init=fitted)``), or be aligned first (``align="weights"`` or
        ``"activations"``). The fitted members were trained on every row of the fit (after a
        refit), so the held-out rows of a greedy soup must be other rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Held-out rows for ``method="greedy"`` (the default), which no member trained on.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
            Their targets.
        members : list of str, optional
            The names of the members to average; all of them by default.
        **kwargs
            ``method`` ("greedy"), ``align`` (None), ``X_train`` (None),
            ``sample_weight`` (None), ``weights`` (None; one per member averaged, for
            ``"uniform"``), ``random_state`` (0): see :func:`ensembles.soup`.

        Returns
        -------
        NeuralClassifier or NeuralRegressor
            The fitted soup; its ``ingredients_`` names the members it averages.
        """
        check_is_fitted(self, "members_")
        names = list(self.named_members_) if members is None else list(members)
        unknown = [name for name in names if name not in self.named_members_]
        if unknown:
            raise ValueError(
                f"members names {unknown}, which are not members of this ensemble; its "
                f"members are {list(self.named_members_)}"
            )
        return soup([(name, self.named_members_[name]) for name in names], X, y, **kwargs)

    # -- prediction --------------------------------------------------------------------------
    @overload
    def member_predictions(self, X: Any, *, return_seconds: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def member_predictions(
        self, X: Any, *, return_seconds: Literal[True]
    ) -> tuple[np.ndarray, list[float]]: ...

    def member_predictions(
        self, X: Any, *, return_seconds: bool = False
    ) -> np.ndarray | tuple[np.ndarray, list[float]]:
        """Outputs of every member, laid out on the ensemble's outputs.

        A classifier's columns are ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.
        return_seconds : bool, default=False
            Also return the seconds each member took to predict.

        Returns
        -------
        predictions : ndarray of shape (n_members, n_samples, n_outputs)
            One output per member.
        seconds : list of float
            Only with ``return_seconds=True``, one per member.
        """
        check_is_fitted(self, "members_")
        predictions, seconds = self._timed_member_outputs(self._validate_X(X))
        return (predictions, seconds) if return_seconds else predictions

    def _predict_members(self, X: np.ndarray) -> np.ndarray:
        return self._timed_member_outputs(X)[0]

    def _timed_member_outputs(self, X: np.ndarray) -> tuple[np.ndarray, list[float]]:
        outputs: list[np.ndarray] = []
        seconds: list[float] = []
        for name, member in self.named_members_.items():
            start = time.perf_counter()
            parts = [
                self._output_of(output_name, output_member, X)
                for output_name, output_member in self._output_members([(name, member)], X)
            ]
            outputs += parts
            # a member that splits predicts its sub-networks in one pass: its time, shared
            seconds += [(time.perf_counter() - start) / len(parts)] * len(parts)
        return np.stack(outputs), seconds

    def _output_of(self, name: str, member: Any, X: np.ndarray) -> np.ndarray:
        """:meth:`_member_output`, with any error from inside the member marked with its name."""
        with naming(name):
            return self._member_output(name, member, X)

    def fused_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """The ensemble's output as a function of rows that are already validated.

        ``predict_proba`` (a classifier) or ``predict`` (a regressor), for labelling many small
        batches (distillation's teacher).

        Neural members predict through their float32 ``network_function``; the others as
        usual; the combiner and the calibration are those of ``predict``. The outputs differ
        from ``predict``'s by float32 rounding only.

        Returns
        -------
        callable
            ``fused(rows) -> ndarray``: rows of shape ``(n_samples, n_features)`` to outputs of
            the shape ``predict_proba`` (a classifier) or ``predict`` (a regressor) returns.
        """
        check_is_fitted(self, "members_")
        members = {
            name: _FunctionMember(member, member.network_function())
            if hasattr(member, "network_function")
            else member
            for name, member in self.named_members_.items()
        }

        def fused(rows: np.ndarray) -> np.ndarray:
            rows = np.asarray(rows)
            outputs = [
                self._output_of(name, member, rows)
                for name, member in self._output_members(members.items(), rows)
            ]
            return self._shaped(self._fuse(np.stack(outputs), rows))

        return fused

    def _shaped(self, fused: np.ndarray) -> np.ndarray:
        """Fused outputs in the shape the public predictions have."""
        return fused

    def _fuse(self, predictions: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Member outputs to the ensemble's output (the classifier adds calibration)."""
        return self.combiner_.combine(predictions, X=X)

    def _fused(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        return self._fuse(self._predict_members(X), X)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


@contextmanager
def naming(name: str) -> Iterator[None]:
    """Mark any error raised inside with the member ``name`` that was predicting."""
    try:
        yield
    except Exception as error:
        if f"member {name!r}" not in str(error):
            error.add_note(f"raised while member {name!r} predicted")
        raise


def warm_refit(
    estimator: Any,
    fitted: Any,
    y: np.ndarray,
    fraction: float = WARM_REFIT,
    lr_scale: float = WARM_LR,
) -> Any:
    """What the default fit trains on all the rows after the held-out rows' outputs: for a network
    (:class:`~members.NeuralClassifier` / :class:`~members.NeuralRegressor`), a fine-tune of
    ``fitted`` (the same member trained on the other rows, ``init=fitted``) for ``fraction``
    (:data:`WARM_REFIT`) of its epochs at ``lr_scale`` (:data:`WARM_LR`) times its learning
    rate, so that the refit member stays the network whose outputs the combiner weighed; any
    other estimator, or a network whose fit did not see every class (a fine-tune keeps its
    parent's classes), as given, trained from scratch."""
    if not isinstance(fitted, BaseNeuralEstimator):
        return estimator
    seen = getattr(fitted, "classes_", None)
    if seen is not None and len(seen) < len(np.unique(y)):
        return estimator
    epochs = max(1, round(fitted.max_epochs * fraction))
    lr = estimator.get_params()["lr"] * lr_scale
    return clone(estimator).set_params(init=fitted, max_epochs=epochs, lr=lr)


def as_given(refit: Any, estimator: Any) -> Any:
    """The member ``refit`` of a warm refit (:func:`warm_refit`) with the parameters its
    ``estimator`` was given (``init``, ``max_epochs``, ``lr``), as every other fitted member
    has: its parent, the network it was fine-tuned from, is not kept (a save would hold each
    network twice), and a copy of it trains as the user asked. ``refit_`` says how it was
    trained. Any other member is returned as it is."""
    if not isinstance(refit, BaseNeuralEstimator):
        return refit
    given = estimator.get_params(deep=False)
    return refit.set_params(**{key: given[key] for key in WARM_PARAMS})


class _FunctionMember:
    """A fitted member whose predictions come from a function (its ``network_function``, or
    one sub-network's outputs already computed)."""

    def __init__(
        self, member: Any, function: Callable[[np.ndarray], np.ndarray], *, split: bool = True
    ) -> None:
        if hasattr(member, "classes_"):
            self.classes_ = member.classes_
        self.function = function
        # a network's function splits into sub-networks as the network does (split=False: it
        # is one sub-network's already)
        self.sub_networks = getattr(member, "sub_networks", 1) if split else 1
        if self.sub_networks != 1:
            self.sub_network_outputs = member.sub_network_outputs

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.function(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.function(X)


class _Constant:
    """The outputs of one sub-network, computed once for the rows being predicted."""

    def __init__(self, output: np.ndarray) -> None:
        self.output = output

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.output
