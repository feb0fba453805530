"""Checks shared by every combiner."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_predictions(
    predictions: Any, *, allow_empty: bool = False, name: str = "predictions"
) -> np.ndarray:
    """Return ``predictions`` as a finite float64 array ``(n_members, n_samples, n_outputs)``.

    Accepts numpy arrays, nested lists and torch tensors (duck-typed: combiners do not
    import torch).
    """
    if hasattr(predictions, "detach"):
        predictions = predictions.detach().cpu().numpy()
    try:
        array = np.asarray(predictions, dtype=np.float64)
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


def check_probabilities(predictions: np.ndarray, method: str) -> None:
    """Raise unless every value is a probability (needed by log-space fusion rules)."""
    if predictions.min() < 0.0 or predictions.max() > 1.0:
        raise ValueError(
            f"method={method!r} fuses class probabilities, so predictions must lie in [0, 1]; "
            f"got values in [{predictions.min():.3g}, {predictions.max():.3g}]"
        )
