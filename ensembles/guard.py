"""The fusion guard: is a fused ensemble worse than its best member on held-out rows?

Every ensemble fit that has held-out member outputs runs it (``held_out_scores_`` and a
``UserWarning``); the study runs it on its validation rows for each combiner of the full pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from combiners.metrics import error_rows, nll_rows, squared_error_rows

# The guard speaks when the fused ensemble's mean held-out loss is above its best member's by
# more than this many standard errors of the paired per-row difference: worse beyond the noise
# of the held-out rows, not by a row or two.
GUARD_STANDARD_ERRORS = 2.0

# How the mean of each kind of row loss is reported: (score name, from the mean loss to it).
_SCORES = {
    "nll": ("nll", lambda mean: mean),
    "error": ("accuracy", lambda mean: 1.0 - mean),
    "squared_error": ("rmse", lambda mean: float(np.sqrt(mean))),
}


def row_losses(outputs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Each row's losses under ``outputs`` ``(n_samples, n_outputs)``, the main one first:
    NLL and error for class probabilities (a 1-D ``targets`` of class indices with two or more
    outputs, the combiners' rule), squared error (averaged over outputs) otherwise.

    Examples
    --------
    >>> row_losses(np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([0, 1]))["error"]
    array([0., 1.])
    """
    targets = np.asarray(targets)
    if targets.ndim == 1 and outputs.shape[1] >= 2:
        return {"nll": nll_rows(targets, outputs), "error": error_rows(targets, outputs)}
    return {"squared_error": squared_error_rows(targets, outputs)}


def held_out_scores(
    predictions: np.ndarray,
    fused: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    sample_weight: np.ndarray | None = None,
) -> tuple[dict[str, dict[str, float]], str | None]:
    """Scores of each member (``predictions``, ``(n_members, n_samples, n_outputs)``) and of
    the ``fused`` outputs on held-out rows, ``{name: {score: value}}`` with ``"ensemble"``
    last (NLL and accuracy, or RMSE); and the name of the member the ensemble is worse than
    by more than :data:`GUARD_STANDARD_ERRORS` standard errors of the paired per-row
    difference in some loss (``None``: not worse beyond the noise).

    Examples
    --------
    >>> targets = np.array([0, 1] * 50)
    >>> strong = np.eye(2)[targets] * 0.8 + 0.1
    >>> predictions = np.stack([strong, np.full((100, 2), 0.5)])
    >>> scores, worse = held_out_scores(predictions, predictions.mean(0), targets, ["s", "w"])
    >>> worse, round(scores["ensemble"]["nll"], 3), round(scores["s"]["nll"], 3)
    ('s', 0.357, 0.105)
    """
    losses = [row_losses(output, targets) for output in [*predictions, fused]]
    weights = np.ones(len(fused)) if sample_weight is None else np.asarray(sample_weight)
    scores = {
        name: {
            _SCORES[kind][0]: _SCORES[kind][1](float(np.average(loss, weights=weights)))
            for kind, loss in row.items()
        }
        for name, row in zip([*names, "ensemble"], losses, strict=True)
    }
    n_effective = weights.sum() ** 2 / (weights**2).sum()
    for kind, ensemble in losses[-1].items():
        means = [float(np.average(row[kind], weights=weights)) for row in losses[:-1]]
        best = int(np.argmin(means))
        difference = ensemble - losses[best][kind]
        mean = float(np.average(difference, weights=weights))
        spread = float(np.average((difference - mean) ** 2, weights=weights))
        noise = GUARD_STANDARD_ERRORS * np.sqrt(spread / max(n_effective - 1, 1))
        if mean > max(noise, 1e-9):  # the same outputs differ by rounding only
            return scores, names[best]
    return scores, None


def fusion_warning(
    owner: str, scores: dict[str, dict[str, float]], worse: str, combiner: Any, n_rows: int
) -> str:
    """What the guard says: the fused ensemble against member ``worse`` on ``n_rows``
    held-out rows, and what would help (weights for a fixed rule; fewer members for a learned
    one)."""

    def shown(row: dict[str, float]) -> str:
        return ", ".join(f"{key} {value:.4g}" for key, value in row.items())

    if combiner.learns:
        advice = (
            "its members add nothing the best one lacks here: drop the weak ones "
            f"(set_params(<name>='drop')) or use member {worse!r} alone"
        )
    else:
        advice = (
            "weigh the members on held-out outputs (combiner=None, the default: weights "
            "learned on held-out rows; or EnsembleSelection()), or drop the weak ones "
            "(set_params(<name>='drop'))"
        )
    return (
        f"{owner}: on {n_rows} held-out rows the fused ensemble ({combiner}: "
        f"{shown(scores['ensemble'])}) is worse than its best member {worse!r} "
        f"({shown(scores[worse])}); {advice}"
    )
