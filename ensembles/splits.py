"""Where held-out rows come from: a held-out fraction, K folds, a splitter or given splits.

``cv`` of an ensemble or a search: a float holds that fraction out (:func:`held_out_split`,
stratified for a classifier); an int is K shuffled folds; a splitter or a list of ``(train,
test)`` pairs is used as it is (:func:`cv_splits`); ``"prefit"`` (:data:`PREFIT`) trains
nothing.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, check_cv, train_test_split

PREFIT = "prefit"
DEFAULT_FOLDS = 5


def is_holdout(cv: Any) -> bool:
    """Whether ``cv`` is a held-out fraction (a float) rather than folds."""
    return isinstance(cv, Real) and not isinstance(cv, Integral)


def cv_splits(
    cv: Any,
    X: np.ndarray,
    y: np.ndarray,
    stratified: bool,
    seed: int | None,
    split_params: dict[str, Any] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, held_out)`` row indices ``cv`` means: one :func:`held_out_split` for a
    float, shuffled K folds (stratified for a classifier) for an int, a splitter's own folds
    (given ``split_params``, e.g. ``groups``) or a list of ``(train, test)`` pairs
    otherwise. Refused when a row is held out more than once (overlapping test folds)."""
    if is_holdout(cv):
        return [held_out_split(y, float(cv), stratified, seed)]
    if isinstance(cv, Integral):
        kind = StratifiedKFold if stratified else KFold
        cv = kind(n_splits=int(cv), shuffle=True, random_state=seed)
    splitter = check_cv(cv)  # a splitter as it is; an iterable of splits wrapped
    splits = [
        (np.asarray(train), np.asarray(test))
        for train, test in splitter.split(X, y, **(split_params or {}))
    ]
    held_out = np.concatenate([test for _, test in splits])
    if len(np.unique(held_out)) != len(held_out):
        raise ValueError("cv must not hold a sample out more than once (test folds overlap)")
    return splits


def check_held_out_weights(
    sample_weight: np.ndarray | None, held_out: np.ndarray, parameter: str, value: Any, learner: str
) -> None:
    """Refuse held-out rows that all weigh 0: ``learner``, which learns from them, would learn
    from nothing (a ``ValueError`` naming ``sample_weight`` and the ``parameter`` that held
    them out, before anything trains)."""
    if sample_weight is not None and not sample_weight[held_out].any():
        shown = f"a list of {len(value)} splits" if isinstance(value, list | tuple) else value
        raise ValueError(
            f"sample_weight is 0 on all {len(held_out)} rows that {parameter}={shown} holds out "
            f"for {learner}, which would learn from nothing; give some of them weight or hold "
            "out more rows"
        )


def held_out_split(
    y: np.ndarray, fraction: float, stratified: bool, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, held_out)`` row indices; ``fraction`` of the rows, at least 2, held out.

    Stratified by ``y`` where every class can appear on both sides; plain otherwise (tiny data).

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        Targets (class indices when stratified).
    fraction : float
        Share of the rows held out, in (0, 1).
    stratified : bool
        Stratify by ``y`` (classification) where it can.
    seed : int or None
        Seed of the shuffle.

    Returns
    -------
    train : ndarray of int
        Sorted indices of the rows to train on.
    held_out : ndarray of int
        Sorted indices of the held-out rows.

    Examples
    --------
    >>> train, held = held_out_split(np.array([0, 1] * 5), 0.2, True, seed=0)
    >>> len(train), len(held), sorted(np.array([0, 1] * 5)[held].tolist())
    (8, 2, [0, 1])
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
