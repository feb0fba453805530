"""Distillation: compress a fitted ensemble into one student network, and report on it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ensembles import metrics
from members import NeuralClassifier, NeuralRegressor
from members.data import to_numpy, validate_inputs
from members.distillation import check_distillation
from members.params import Interval, StrOptions, check_params
from members.training import while_training

AUGMENTATIONS = (None, "noise", "mixup", "munge")
LATENCY_ROWS = 10_000


def augment_rows(
    X: np.ndarray, method: str, n_copies: int, rng: np.random.RandomState
) -> np.ndarray:
    """``n_copies`` new rows per sample of ``X`` for the transfer set (unlabelled).

    - ``"noise"``: Gaussian noise of 0.1 times each feature's standard deviation.
    - ``"mixup"``: convex combinations of random pairs, weight ~ Beta(0.4, 0.4).
    - ``"munge"`` (Bucila et al., 2006): each feature, with probability 0.5, is redrawn around
      the value of the sample's nearest neighbour (standard deviation |difference| / 2).
    """
    scale = X.std(axis=0)
    copies = []
    for _ in range(n_copies):
        if method == "noise":
            copies.append(X + 0.1 * scale * rng.standard_normal(X.shape))
        elif method == "mixup":
            partner = X[rng.permutation(len(X))]
            weight = rng.beta(0.4, 0.4, size=(len(X), 1))
            copies.append(weight * X + (1 - weight) * partner)
        else:
            standardised = X / np.where(scale > 0, scale, 1.0)
            _, neighbours = NearestNeighbors(n_neighbors=2).fit(standardised).kneighbors()
            neighbour = X[neighbours[:, 1]]
            swap = rng.uniform(size=X.shape) < 0.5
            drawn = rng.normal(neighbour, np.abs(X - neighbour) / 2)
            copies.append(np.where(swap, drawn, X))
    return np.concatenate(copies)


def default_student(ensemble: Any) -> Any:
    """An unfitted copy of the smallest neural member (by parameter count)."""
    neural = [m for m in ensemble.members_ if isinstance(m, NeuralClassifier | NeuralRegressor)]
    if not neural:
        raise TypeError(
            "the ensemble has no neural member to copy as the student; pass "
            "student=NeuralClassifier(...) (or NeuralRegressor(...)) to distill"
        )
    return clone(min(neural, key=n_parameters))


def n_parameters(estimator: Any) -> int:
    return sum(p.numel() for p in estimator.model_.parameters())


def distill(
    ensemble: Any,
    X: Any,
    y: Any = None,
    *,
    student: Any = None,
    temperature: float = 2.0,
    alpha: float = 0.9,
    augment: str | None = None,
    n_augment: int = 1,
    X_unlabeled: Any = None,
    random_state: int | np.random.RandomState | None = None,
) -> Any:
    """Train one student network on a fitted ensemble's outputs (see ``BaseEnsemble.distill``)."""
    check_is_fitted(ensemble)
    check_distillation(temperature, alpha, "distill")
    check_params(
        "distill",
        {
            "augment": [StrOptions(set(AUGMENTATIONS) - {None}), None],
            "n_augment": [Interval(Integral, 1, None, closed="left")],
        },
        augment=augment,
        n_augment=n_augment,
    )
    classifier = is_classifier(ensemble)
    kind = NeuralClassifier if classifier else NeuralRegressor
    student = default_student(ensemble) if student is None else clone(student)
    if not isinstance(student, kind):
        raise TypeError(
            f"student must be an unfitted {kind.__name__} (a neural estimator); "
            f"got {type(student).__name__}"
        )
    rng = check_random_state(random_state)
    X = _validate_X(ensemble, X)
    labels = None if y is None else np.asarray(to_numpy(y))
    if labels is not None and len(labels) != len(X):
        raise ValueError(f"y must label every row of X: got {len(labels)} labels for {len(X)} rows")
    parts = [X]
    if X_unlabeled is not None:
        parts.append(_validate_X(ensemble, X_unlabeled))
    if augment is not None:
        parts.append(augment_rows(np.concatenate(parts), augment, n_augment, rng))
    transfer = np.concatenate(parts)
    # the ensemble labels the transfer set once; the student then trains on cached targets
    teacher = ensemble.predict_proba(transfer) if classifier else ensemble.predict(transfer)
    if student.random_state is None and random_state is not None:
        student.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
    kwargs = {"classes": ensemble.classes_} if classifier else {}
    with while_training(f"the distillation student ({type(student).__name__})"):
        return student.fit_distill(
            transfer, teacher, labels, temperature=temperature, alpha=alpha, **kwargs
        )


@dataclass
class DistillationReport:
    """Student against the ensemble and a baseline of the same architecture trained alone.

    ``table`` has one row per model: accuracy, NLL, ECE, top-1 agreement with the ensemble and
    KL(ensemble || model) (classification; RMSE, MAE, R² for regression), parameter count,
    prediction latency per 10k samples (seconds), and ``gain_kept``: the share of the
    ensemble's accuracy gain over the baseline that the student keeps (RMSE for regression).
    """

    table: pd.DataFrame

    def __str__(self) -> str:
        return self.table.to_string(float_format=lambda v: f"{v:.4f}")

    @classmethod
    def compare(
        cls, ensemble: Any, student: Any, X: Any, y: Any, *, baseline: Any = None
    ) -> DistillationReport:
        """Evaluate ``ensemble``, ``student`` and an optional fitted ``baseline`` on ``(X, y)``."""
        models = {"ensemble": ensemble, "student": student}
        if baseline is not None:
            models["alone"] = baseline
        X = _validate_X(ensemble, X)
        rows: dict[str, dict[str, float]] = {}
        if is_classifier(ensemble):
            y_index = metrics.encode_labels(y, ensemble.classes_)
            reference = ensemble.predict_proba(X)
            for name, model in models.items():
                proba = reference if name == "ensemble" else model.predict_proba(X)
                row = metrics.classification_report(y_index, proba)
                del row["brier"]
                row["agreement"] = float(np.mean(proba.argmax(1) == reference.argmax(1)))
                row["kl_to_ensemble"] = kl_divergence(reference, proba)
                rows[name] = row
            score = "accuracy"
        else:
            target = np.asarray(to_numpy(y), dtype=np.float64)
            for name, model in models.items():
                rows[name] = metrics.regression_report(target, model.predict(X))
            score = "rmse"
        for name, model in models.items():
            rows[name]["n_parameters"] = float(_total_parameters(model))
            rows[name]["latency_10k_s"] = latency(model, X)
        table = pd.DataFrame.from_dict(rows, orient="index")
        if baseline is not None:
            gain = table.loc["ensemble", score] - table.loc["alone", score]
            kept = table.loc["student", score] - table.loc["alone", score]
            table["gain_kept"] = np.nan
            table.loc["student", "gain_kept"] = kept / gain if gain != 0 else np.nan
        return cls(table)


def _validate_X(ensemble: Any, X: Any) -> np.ndarray:
    """``X`` checked against the fitted ensemble: numeric, finite, its number of features."""
    return np.asarray(validate_inputs(ensemble, X, reset=False))


def kl_divergence(reference: np.ndarray, proba: np.ndarray) -> float:
    """Mean KL(reference || proba) over samples."""
    p = np.clip(reference, 1e-12, 1.0)
    q = np.clip(proba, 1e-12, 1.0)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def latency(model: Any, X: np.ndarray) -> float:
    """Seconds to predict 10k samples (rows of ``X`` repeated), best of two runs."""
    rows = X[np.arange(LATENCY_ROWS) % len(X)]
    predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    times = []
    for _ in range(2):
        start = time.perf_counter()
        predict(rows)
        times.append(time.perf_counter() - start)
    return min(times)


def _total_parameters(model: Any) -> int:
    members = getattr(model, "members_", [model])
    return sum(n_parameters(m) for m in members if hasattr(m, "model_"))
