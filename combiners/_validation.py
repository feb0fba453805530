"""Checks shared by every combiner."""

from __future__ import annotations

from typing import Any

import numpy as np

# scikit-learn's parameter constraints, imported here once for every combiner (members.params is
# the same shim for the other packages; combiners may not import members)
from sklearn.utils._param_validation import HasMethods as HasMethods
from sklearn.utils._param_validation import Interval as Interval
from sklearn.utils._param_validation import StrOptions as StrOptions
from sklearn.utils.validation import _check_sample_weight

from combiners.metrics import check_proba

# Probabilities are clipped to at least EPS before a log, so that one member's zero cannot turn
# a loss or a fused value into inf.
EPS = 1e-12


def safe_log(proba: np.ndarray) -> np.ndarray:
    """``log(max(p, EPS))``: finite logs of probabilities."""
    return np.log(np.maximum(proba, EPS))  # type: ignore[no-any-return]


def _as_array(data: Any) -> Any:
    """A torch tensor (duck-typed: combiners do not import torch) or array-like as numpy."""
    if hasattr(data, "detach"):
        data = data.detach().cpu().numpy()
    return np.asarray(data)


def check_predictions(
    predictions: Any, *, allow_empty: bool = False, name: str = "predictions"
) -> np.ndarray:
    """Return ``predictions`` as a finite float64 array ``(n_members, n_samples, n_outputs)``.

    Accepts numpy arrays, nested lists and torch tensors (duck-typed: combiners do not
    import torch).
    """
    try:
        array = np.asarray(_as_array(predictions), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a numeric array of shape (n_members, n_samples, n_outputs); "
            f"got {type(predictions).__name__} that cannot be converted ({exc})"
        ) from None
    if array.ndim != 3:
        raise ValueError(
            f"{name} must have 3 dimensions (n_members, n_samples, n_outputs); "
            f"got shape {array.shape}"
        )
    n_members, n_samples, n_outputs = array.shape
    if n_members == 0 or n_outputs == 0 or (n_samples == 0 and not allow_empty):
        raise ValueError(
            f"{name} must hold at least one member, sample and output; got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def check_targets(predictions: np.ndarray, y: Any, owner: str) -> tuple[bool, np.ndarray]:
    """Validate ``y`` against ``predictions``; return ``(is_classification, y)``.

    The task follows from the shapes, without guessing from values: a 1-D ``y`` with two or
    more outputs per sample means classification, ``y`` holding class indices
    ``0..n_outputs-1``; anything else is regression with ``y`` of shape ``(n_samples,)`` or
    ``(n_samples, n_outputs)``, returned as ``(n_samples, n_outputs)`` floats.
    """
    if y is None:
        raise ValueError(f"{owner} learns from held-out outputs and needs y; got y=None")
    target = _as_array(y)
    _, n_samples, n_outputs = predictions.shape
    if len(target) != n_samples:
        raise ValueError(
            f"y has {len(target)} samples but predictions have {n_samples} "
            f"(predictions shape {predictions.shape})"
        )
    if target.ndim == 1 and n_outputs >= 2:
        if not (np.issubdtype(target.dtype, np.number) and np.all(np.mod(target, 1) == 0)):
            raise ValueError(
                f"for classification, y must hold class indices 0..{n_outputs - 1}; got "
                f"{target.dtype} values (for regression with {n_outputs} outputs pass y of "
                f"shape (n_samples, {n_outputs}))"
            )
        labels = target.astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_outputs:
            raise ValueError(
                f"for classification, y must hold class indices 0..{n_outputs - 1}; "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        # a classifier's members give class probabilities: a rule that learns from others would
        # learn nonsense silently
        check_proba(predictions, "predictions (class probabilities, as y holds class indices)")
        return True, labels
    try:
        values = np.asarray(target, dtype=np.float64).reshape(n_samples, n_outputs)
    except ValueError:
        raise ValueError(
            f"for regression, y must have shape ({n_samples},) or ({n_samples}, {n_outputs}); "
            f"got {target.shape}"
        ) from None
    if not np.isfinite(values).all():
        raise ValueError("y contains NaN or infinite values")
    return False, values


def check_sample_weights(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """Held-out rows' weights as float64 ``(n_samples,)``: non-negative, finite, not all zero
    (scikit-learn's checks); ``None`` stays ``None`` (every row counts once)."""
    if sample_weight is None:
        return None
    return _check_sample_weight(  # type: ignore[no-any-return]
        _as_array(sample_weight),
        np.empty((n_samples, 0)),
        dtype=np.float64,
        ensure_non_negative=True,
    )


def check_features(X: Any, n_samples: int) -> np.ndarray:
    """Raw features passed beside member outputs: 2-D, finite, one row per sample."""
    features = np.asarray(_as_array(X), dtype=np.float64)
    if features.ndim != 2 or len(features) != n_samples:
        raise ValueError(
            f"X must have shape (n_samples={n_samples}, n_features); got {features.shape}"
        )
    if not np.isfinite(features).all():
        raise ValueError("X contains NaN or infinite values")
    return features
