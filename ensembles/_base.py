"""Shared machinery of the ensemble estimators: members, seeds, cross-fitting, member outputs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, validate_data

from combiners import BaseCombiner, MeanCombiner
from ensembles.distillation import distill
from members._data import to_numpy
from members.batched import can_batch, check_batched, fit_batched, prefer_batched, same_batch
from members.persistence import SaveLoadMixin

logger = logging.getLogger(__name__)

DROP = "drop"
PREFIT = "prefit"
DEFAULT_FOLDS = 5
DTYPES = (np.float64, np.float32)


class BaseEnsemble(SaveLoadMixin, _BaseComposition):
    """Members as ``(name, estimator)`` pairs, trained with their own seeds, fused by a combiner.

    ``get_params``/``set_params`` reach into members by name (``set_params(mlp__lr=1e-3)``), and a
    member can be switched off with ``set_params(mlp="drop")``, as in scikit-learn's ensembles.
    """

    _required_parameters = ["members"]

    def __init__(
        self,
        members: list[tuple[str, Any]],
        *,
        combiner: BaseCombiner | None = None,
        cv: int | float | str | Any | None = None,
        batched: bool | str = "auto",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.members = members
        self.combiner = combiner
        self.cv = cv
        self.batched = batched
        self.checkpoint_dir = checkpoint_dir
        self.random_state = random_state
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return self._get_params("members", deep=deep)  # type: ignore[no-any-return]

    def set_params(self, **params: Any) -> BaseEnsemble:
        self._set_params("members", **params)
        return self

    # -- hooks for the classifier and the regressor ------------------------------------------
    def _validate_targets(
        self, X: Any, y: Any, active: list[tuple[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(X, y for the members, targets for the combiner)``; set target attributes."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _needs_held_out(self, combiner: BaseCombiner) -> bool:
        return combiner.learns

    def _fit_calibration(
        self, predictions: np.ndarray | None, targets: np.ndarray | None, X: Any
    ) -> None:
        """Fit what comes after fusion on held-out outputs (``None`` when none were needed)."""

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
        active = [(name, est) for name, est in self.members if not _is_drop(est)]
        if not active:
            raise ValueError("all members are 'drop'; at least one member must be an estimator")
        predict_method = "predict_proba" if is_classifier(self) else "predict"
        for name, estimator in active:
            if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
                raise TypeError(
                    f"member {name!r} must be a scikit-learn estimator (with fit and get_params); "
                    f"got {type(estimator).__name__}"
                )
            if not hasattr(estimator, predict_method) and not hasattr(estimator, "predict"):
                raise TypeError(f"member {name!r} has no {predict_method} or predict method")
        return active

    def _check_combiner(self) -> BaseCombiner:
        if self.combiner is None:
            return MeanCombiner()
        if not isinstance(self.combiner, BaseCombiner):
            raise TypeError(
                "combiner must be a combiners.BaseCombiner (e.g. MeanCombiner()); "
                f"got {type(self.combiner).__name__}"
            )
        return clone(self.combiner)

    def _check_cv(self) -> None:
        cv = self.cv
        if cv is None or cv == PREFIT or (hasattr(cv, "split") and not isinstance(cv, str)):
            return
        if isinstance(cv, Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv={cv} folds is too few; an int cv must be >= 2")
            return
        if isinstance(cv, Real) and not isinstance(cv, bool):
            if not 0.0 < float(cv) < 1.0:
                raise ValueError(
                    f"cv={cv} is not a held-out fraction; a float cv must be in (0, 1)"
                )
            return
        raise ValueError(
            "cv must be None, an int (K-fold cross-fitting), a float (held-out fraction), "
            f"a scikit-learn CV splitter or 'prefit'; got {cv!r}"
        )

    def _validate_fit_data(self, X: Any, y: Any, **kwargs: Any) -> Any:
        return validate_data(
            self, to_numpy(X), to_numpy(y), dtype=DTYPES, ensure_min_samples=2, **kwargs
        )

    def _validate_X(self, X: Any) -> Any:
        return validate_data(self, to_numpy(X), dtype=DTYPES, reset=False)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> BaseEnsemble:
        """Fit the members, then the combiner on predictions the members did not train on.

        Fixed rules (averaging, voting) need no held-out data: each member is trained once. A
        rule that learns (or calibration) gets held-out member outputs according to ``cv``.
        """
        active = self._check_members()
        combiner = self._check_combiner()
        self._check_cv()
        check_batched(self.batched)
        X, y, targets = self._validate_targets(X, y, active)
        rng = check_random_state(self.random_state) if self.random_state is not None else None
        seeds = [None if rng is None else int(rng.randint(np.iinfo(np.int32).max)) for _ in active]
        needs_held_out = self._needs_held_out(combiner)
        oof: np.ndarray | None = None

        if self.cv == PREFIT:
            self._use_prefit(active)
            # the given data is held out from every member by construction
            held_out = np.arange(len(X))
            oof = self._predict_members(X) if needs_held_out else None
        elif not needs_held_out:
            self._set_members(active, self._fit_members(active, seeds, X, y))
        else:
            held_out, oof = self._cross_fit(active, seeds, X, y, rng)

        if oof is not None:
            self.oof_predictions_ = oof
            self.oof_index_ = held_out
            X_held, targets_held = X[held_out], targets[held_out]
            self.combiner_ = combiner.fit(oof, targets_held, X=X_held)
            self._fit_calibration(oof, targets_held, X_held)
        else:
            # Fixed rules learn nothing from data: fit them on the shape alone.
            shape_only = np.zeros((len(self.members_), 0, self._n_outputs()))
            self.combiner_ = combiner.fit(shape_only)
            self._fit_calibration(None, None, None)
        return self

    def _fit_members(
        self,
        active: list[tuple[str, Any]],
        seeds: list[int | None],
        X: np.ndarray,
        y: np.ndarray,
        fold: int | None = None,
    ) -> list[Any]:
        """Clone and fit every member; one left unseeded gets its seed; a failure names it.

        Members that differ only in ``random_state`` are trained together by the batched engine
        (as ``batched`` says); the others one after another.
        """
        members = []
        for (_, estimator), seed in zip(active, seeds, strict=True):
            member = clone(estimator)
            if seed is not None and member.get_params().get("random_state", 0) is None:
                member.set_params(random_state=seed)
            members.append(member)
        names = [name for name, _ in active]
        fitted: list[Any] = [None] * len(members)
        for group in self._batch_groups(members, X):
            results = fit_members(
                [members[i] for i in group],
                X,
                y,
                wheres=[
                    f"member {names[i]!r}" + ("" if fold is None else f" on fold {fold}")
                    for i in group
                ],
                checkpoint_dir=self.checkpoint_dir,
                file_stems=[names[i] if fold is None else f"{names[i]}-fold{fold}" for i in group],
                log_prefix=f"[{type(self).__name__}] " if self.verbose else None,
            )
            for i, (member, _) in zip(group, results, strict=True):
                fitted[i] = member
        return fitted

    def _batch_groups(self, members: list[Any], X: np.ndarray) -> list[list[int]]:
        """Indices of the members to train together; a group of one trains alone."""
        groups: list[list[int]] = []
        for index, member in enumerate(members):
            if self.batched is not False and can_batch(member):
                group = next(
                    (g for g in groups if same_batch(members[g[0]], member)),
                    None,
                )
                if group is not None:
                    group.append(index)
                    continue
            groups.append([index])
        if self.batched == "auto":
            n_features, n_outputs = X.shape[1], self._n_outputs()
            groups = [
                part
                for group in groups
                for part in (
                    [group]
                    if prefer_batched(members[group[0]], len(group), n_features, n_outputs)
                    else [[i] for i in group]
                )
            ]
        return groups

    def _set_members(self, active: list[tuple[str, Any]], fitted: list[Any]) -> None:
        self.members_ = fitted
        self.named_members_ = {
            name: member for (name, _), member in zip(active, fitted, strict=True)
        }

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

    def _is_holdout(self) -> bool:
        """A float cv: members trained once on the rest, no refit (blending)."""
        return isinstance(self.cv, Real) and not isinstance(self.cv, Integral)

    def _splits(self, X: np.ndarray, y: np.ndarray, rng: Any) -> list[tuple[Any, Any]]:
        shuffle_seed = None if rng is None else int(rng.randint(np.iinfo(np.int32).max))
        cv: Any = DEFAULT_FOLDS if self.cv is None else self.cv
        if self._is_holdout():
            return [held_out_split(y, cv, is_classifier(self), shuffle_seed)]
        if isinstance(cv, Integral):
            kind = StratifiedKFold if is_classifier(self) else KFold
            cv = kind(n_splits=cv, shuffle=True, random_state=shuffle_seed)
        return list(cv.split(X, y))

    def _cross_fit(
        self,
        active: list[tuple[str, Any]],
        seeds: list[int | None],
        X: np.ndarray,
        y: np.ndarray,
        rng: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold member outputs; then the members on all data (K folds) or as trained."""
        splits = self._splits(X, y, rng)
        holdout = self._is_holdout()
        if not holdout:
            message = (
                f"cross-fitting with {len(splits)} folds: each of the {len(active)} members is "
                f"trained {len(splits) + 1} times (once per fold, then on all the data)"
            )
            logger.info(message)
            if self.verbose:
                print(f"[{type(self).__name__}] {message}", flush=True)
        held_out = np.concatenate([test for _, test in splits])
        if len(np.unique(held_out)) != len(held_out):
            raise ValueError("cv must not hold a sample out more than once (test folds overlap)")
        oof = np.zeros((len(active), len(X), self._n_outputs()))
        for fold, (train, test) in enumerate(splits):
            fitted = self._fit_members(active, seeds, X[train], y[train], fold=fold)
            for index, member in enumerate(fitted):
                oof[index, test] = self._member_output(member, X[test])
        self._set_members(active, fitted if holdout else self._fit_members(active, seeds, X, y))
        held_out = np.sort(held_out)
        return held_out, oof[:, held_out]

    # -- distillation ------------------------------------------------------------------------
    def distill(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        """Compress this fitted ensemble into one student network (Hinton et al., 2015).

        The transfer set is ``X`` (labelled by ``y`` when given), plus ``X_unlabeled`` and
        ``n_augment`` augmented copies (``augment="noise" | "mixup" | "munge"``), all
        labelled once by the ensemble. The student (default: an unfitted copy of the smallest
        neural member) is trained with ``alpha * T^2 * KL + (1 - alpha) * CE`` at temperature
        ``T`` (MSE to the ensemble's predictions for regression) and returned fitted.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like, optional
            True targets of ``X``; without them the student learns from the ensemble alone.
        **kwargs
            ``student``, ``temperature`` (2.0), ``alpha`` (0.9), ``augment`` (None),
            ``n_augment`` (1), ``X_unlabeled`` (None), ``random_state`` (None).
        """
        return distill(self, X, y, **kwargs)

    # -- prediction --------------------------------------------------------------------------
    def member_predictions(self, X: Any) -> np.ndarray:
        """Outputs of every member, ``(n_members, n_samples, n_outputs)``."""
        check_is_fitted(self, "members_")
        return self._predict_members(self._validate_X(X))

    def _predict_members(self, X: np.ndarray) -> np.ndarray:
        return np.stack([self._member_output(member, X) for member in self.members_])

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


def fit_member(
    member: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    where: str,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    file_stem: str = "member",
    log_prefix: str | None = None,
) -> tuple[Any, float]:
    """Fit ``member`` (in place) and return it with its fit time in seconds; a failure names it.

    With ``checkpoint_dir`` the fitted member is stored at once, and a member with the same
    class, parameters and training data is loaded from there (with the fit time it took then)
    instead of being retrained.
    """
    [result] = fit_members(
        [member],
        X,
        y,
        wheres=[where],
        checkpoint_dir=checkpoint_dir,
        file_stems=[file_stem],
        log_prefix=log_prefix,
    )
    return result


def fit_members(
    members: list[Any],
    X: np.ndarray,
    y: np.ndarray,
    *,
    wheres: list[str],
    checkpoint_dir: str | os.PathLike[str] | None = None,
    file_stems: list[str],
    log_prefix: str | None = None,
) -> list[tuple[Any, float]]:
    """:func:`fit_member` for several members; two or more of them still to train are trained
    together by :func:`members.batched.fit_batched` (they must differ only in
    ``random_state``), each then credited with an equal share of the time."""
    paths = [
        _checkpoint_path(checkpoint_dir, stem, member, X, y)
        for stem, member in zip(file_stems, members, strict=True)
    ]
    results: dict[int, tuple[Any, float]] = {}
    for index, path in enumerate(paths):
        if path is not None and path.exists():
            results[index] = _load(path)
            if log_prefix is not None:
                print(f"{log_prefix}reusing {wheres[index]}", flush=True)
    todo = [index for index in range(len(members)) if index not in results]
    if log_prefix is not None and todo:
        together = " (together, batched)" if len(todo) > 1 else ""
        print(f"{log_prefix}fitting {', '.join(wheres[i] for i in todo)}{together}", flush=True)
    start = time.perf_counter()
    try:
        if len(todo) > 1:
            fit_batched([members[i] for i in todo], X, y, names=[wheres[i] for i in todo])
        elif todo:
            members[todo[0]].fit(X, y)
    except Exception as exc:
        kept = (
            f"; the members trained before it are kept in checkpoint_dir="
            f"{str(checkpoint_dir)!r} and are reused when fit is called again"
            if checkpoint_dir is not None
            else "; pass checkpoint_dir= to keep the members already trained"
        )
        what = " and ".join(wheres[i] for i in todo)
        together = " (trained together by the batched engine)" if len(todo) > 1 else ""
        exc.add_note(f"raised while fitting ensemble {what}{together}{kept}")
        raise
    seconds = (time.perf_counter() - start) / max(len(todo), 1)
    for index in todo:
        _store(paths[index], members[index], seconds)
        results[index] = (members[index], seconds)
    return [results[index] for index in range(len(members))]


def load_or_train(path: Path | None, train: Callable[[], Any]) -> tuple[Any, float]:
    """``train()`` timed, stored at ``path`` at once; or, when ``path`` exists, what is stored
    there (with the time it took then)."""
    if path is not None and path.exists():
        return _load(path)
    start = time.perf_counter()
    estimator = train()
    seconds = time.perf_counter() - start
    _store(path, estimator, seconds)
    return estimator, seconds


def _load(path: Path) -> tuple[Any, float]:
    stored = joblib.load(path)
    return stored["estimator"], stored["fit_seconds"]


def _store(path: Path | None, estimator: Any, seconds: float) -> None:
    if path is None:
        return
    # write then rename, so an interrupted write never leaves a half estimator behind
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    joblib.dump({"estimator": estimator, "fit_seconds": seconds}, partial)
    partial.replace(path)


# parameters that change what is printed or logged, not the fitted model
_NOT_IN_KEY = ("verbose", "log_dir")


def _checkpoint_path(
    checkpoint_dir: str | os.PathLike[str] | None,
    file_stem: str,
    member: Any,
    X: np.ndarray,
    y: np.ndarray,
) -> Path | None:
    if checkpoint_dir is None:
        return None
    params = {
        key: value
        for key, value in member.get_params(deep=True).items()
        if key.rsplit("__", 1)[-1] not in _NOT_IN_KEY
    }
    try:
        key = joblib.hash((type(member).__qualname__, params, X, y))
    except Exception:  # parameters that cannot be hashed (a lambda, say): no reuse
        logger.warning("%s cannot be checkpointed: its parameters do not hash", file_stem)
        return None
    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{file_stem}-{key[:16]}.joblib"


def held_out_split(
    y: np.ndarray, fraction: float, stratified: bool, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, held_out)`` row indices; ``fraction`` of the rows, at least 2, held out.

    Stratified by ``y`` where every class can appear on both sides; plain otherwise (tiny data).
    """
    n_held = max(2, int(np.ceil(fraction * len(y))))
    if len(y) - n_held < 2:
        raise ValueError(
            f"holding out {fraction} of {len(y)} samples leaves too few to train on; "
            "use more data or a smaller fraction"
        )
    stratify = None
    if stratified:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and min(n_held, len(y) - n_held) >= len(counts):
            stratify = y
    train, held = train_test_split(
        np.arange(len(y)), test_size=n_held, stratify=stratify, random_state=seed
    )
    return np.sort(train), np.sort(held)


def _is_drop(estimator: Any) -> bool:
    return isinstance(estimator, str) and estimator == DROP
