"""Shared machinery of the ensemble estimators: members, seeds, fitting, member outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted, validate_data

from combiners import BaseCombiner, MeanCombiner
from members._data import to_numpy

DROP = "drop"
DTYPES = (np.float64, np.float32)


class BaseEnsemble(_BaseComposition):
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
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.members = members
        self.combiner = combiner
        self.random_state = random_state
        self.verbose = verbose

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return self._get_params("members", deep=deep)  # type: ignore[no-any-return]

    def set_params(self, **params: Any) -> BaseEnsemble:
        self._set_params("members", **params)
        return self

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

    def _validate_fit_data(self, X: Any, y: Any, **kwargs: Any) -> Any:
        return validate_data(
            self, to_numpy(X), to_numpy(y), dtype=DTYPES, ensure_min_samples=2, **kwargs
        )

    def _validate_X(self, X: Any) -> Any:
        return validate_data(self, to_numpy(X), dtype=DTYPES, reset=False)

    # -- fitting -----------------------------------------------------------------------------
    def _fit_members(self, X: np.ndarray, targets: np.ndarray) -> None:
        """Clone and fit every active member; a member left unseeded gets a seed of its own."""
        active = self._check_members()
        combiner = self._check_combiner()
        rng = check_random_state(self.random_state) if self.random_state is not None else None
        fitted = []
        for name, estimator in active:
            member = clone(estimator)
            seed = None if rng is None else int(rng.randint(np.iinfo(np.int32).max))
            if seed is not None and member.get_params().get("random_state", 0) is None:
                member.set_params(random_state=seed)
            if self.verbose:
                print(f"[{type(self).__name__}] fitting member {name!r}", flush=True)
            try:
                member.fit(X, targets)
            except Exception as exc:
                exc.add_note(f"raised while fitting ensemble member {name!r}")
                raise
            fitted.append((name, member))
        self.members_ = [member for _, member in fitted]
        self.named_members_ = dict(fitted)
        n_outputs = self._n_outputs()
        # Fixed rules learn nothing from data: fit them on the shape alone (no prediction pass).
        fit_predictions = (
            self.member_predictions(X) if combiner.learns else np.zeros((len(fitted), 0, n_outputs))
        )
        self.combiner_ = combiner.fit(fit_predictions, targets)

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _member_output(self, member: Any, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def member_predictions(self, X: Any) -> np.ndarray:
        """Outputs of every member, ``(n_members, n_samples, n_outputs)``."""
        check_is_fitted(self, "members_")
        X = self._validate_X(X)
        return np.stack([self._member_output(member, X) for member in self.members_])

    def _fused(self, X: Any) -> np.ndarray:
        predictions = self.member_predictions(X)
        return self.combiner_.combine(predictions)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def _is_drop(estimator: Any) -> bool:
    return isinstance(estimator, str) and estimator == DROP
