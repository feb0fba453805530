"""How much of an ensemble's gain its distilled student keeps: :class:`DistillationReport`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ensembles import metrics
from ensembles.distillation import LATENCY_ROWS, n_parameters, same_architecture, validate_X
from members.data import to_numpy
from members.tasks import task_of


@dataclass
class DistillationReport:
    """Student against the ensemble and networks of the same architecture trained alone.

    ``table`` has one row per model: accuracy, NLL, ECE, top-1 agreement with the ensemble and
    KL(ensemble || model) (classification; RMSE, MAE, R² for regression), parameter count,
    prediction latency per 10k samples (seconds); ``gain_kept``, the share of the ensemble's
    gain over the best network trained alone that the student keeps: ``(student - alone) /
    (ensemble - alone)`` on accuracy (RMSE for regression), "alone" being the baseline that
    scores best; and, when training times are given, ``train_s`` and ``cost``, each time as a
    multiple of the ensemble's (the members' total training time).

    The ensemble's own members are references too (each is a network trained alone on the
    ensemble's data): the rows ``"best member"`` and ``"best member, student's architecture"``
    (the member of the student's class, module and module_kwargs that scores best), named in
    ``references``, and on the student's row the share of the gain it keeps against each,
    ``gain_kept_best_member`` and ``gain_kept_architecture``. A student whose architecture
    caps what it can learn keeps much of the gain over its own architecture and little over
    the best member: then a student of the best member's architecture would keep more.

    Parameters
    ----------
    table : DataFrame
        One row per model, as described above (:meth:`compare` builds it).
    references : dict of str to str, default={}
        The reference rows by role (``"best member"``, ``"best member, student's
        architecture"``) to the member each names.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from ensembles import EnsembleClassifier
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> pool = [
    ...     (f"net{seed}", NeuralClassifier(max_epochs=20, random_state=seed)) for seed in range(2)
    ... ]
    >>> ensemble = EnsembleClassifier(pool, random_state=0).fit(X, y)
    >>> student = ensemble.distill(X, y, method="cached", random_state=0)
    >>> report = DistillationReport.compare(ensemble, student, X, y)
    >>> list(report.table.index)
    ['ensemble', 'student', 'best member', "best member, student's architecture"]
    """

    table: pd.DataFrame
    references: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.table.to_string(float_format=lambda v: f"{v:.4f}")

    @classmethod
    def compare(
        cls,
        ensemble: Any,
        student: Any,
        X: Any,
        y: Any,
        *,
        baseline: Any = None,
        baselines: dict[str, Any] | None = None,
        train_seconds: dict[str, float] | None = None,
    ) -> DistillationReport:
        """Evaluate ``ensemble``, ``student`` and fitted networks trained alone on ``(X, y)``.

        Parameters
        ----------
        ensemble : fitted ensemble
            The teacher.
        student : fitted estimator
            The distilled network.
        X : array-like of shape (n_samples, n_features)
            Rows none of them was trained on.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their true targets.
        baseline : fitted estimator, optional
            One network trained alone (the row ``"alone"``).
        baselines : dict of str to fitted estimator, optional
            Several, by row name (e.g. with the members' budget and with the student's).
        train_seconds : dict of str to float, optional
            Training time by row name; ``"ensemble"`` (the members' total) is the unit of
            ``cost``.
        """
        alone = dict(baselines or {})
        if baseline is not None:
            alone = {"alone": baseline, **alone}
        models = {"ensemble": ensemble, "student": student, **alone}
        X = validate_X(ensemble, X)
        task = task_of(ensemble)
        predict = task.output_method
        outputs = {name: getattr(model, predict)(X) for name, model in models.items()}
        rows = REPORT_ROWS[task.name](ensemble, y, outputs, outputs["ensemble"])
        score, better = REPORT_SCORES[task.name]
        for name, model in models.items():
            rows[name]["n_parameters"] = float(_total_parameters(model))
            rows[name]["latency_10k_s"] = latency(model, X)
        references = _reference_members(ensemble, student, X, y, score, better)
        for row_name, (member_name, row) in references.items():
            member = ensemble.owner(member_name)
            # a sub-network (name[i]) is its share of its network
            share = 1 if member_name in ensemble.named_members_ else member.sub_networks
            row["n_parameters"] = float(_total_parameters(member)) / share
            rows[row_name] = row
        table = pd.DataFrame.from_dict(rows, orient="index")

        def kept_against(reference_score: float) -> float:
            gain = table.loc["ensemble", score] - reference_score
            kept = table.loc["student", score] - reference_score
            return float(kept / gain) if gain != 0 else np.nan

        if alone:
            table["gain_kept"] = np.nan
            table.loc["student", "gain_kept"] = kept_against(
                better(table.loc[name, score] for name in alone)
            )
        for row_name, column in [
            ("best member", "gain_kept_best_member"),
            ("best member, student's architecture", "gain_kept_architecture"),
        ]:
            if row_name in table.index:
                table[column] = np.nan
                table.loc["student", column] = kept_against(table.loc[row_name, score])
        if train_seconds:
            table["train_s"] = pd.Series(train_seconds, dtype=float)
            if "ensemble" in train_seconds:
                table["cost"] = table["train_s"] / train_seconds["ensemble"]
        return cls(table, {row: name for row, (name, _) in references.items()})


def _reference_members(
    ensemble: Any, student: Any, X: np.ndarray, y: Any, score: str, better: Any
) -> dict[str, tuple[str, dict[str, float]]]:
    """The report's rows for the ensemble's best member and its best member of the
    student's architecture: ``{row: (member name, scores)}`` (none for an ensemble whose
    members are not named networks, such as a snapshot ensemble's)."""
    members = getattr(ensemble, "named_members_", None)
    if not members:
        return {}
    outputs = dict(zip(ensemble.output_names_, ensemble.member_predictions(X), strict=True))
    scored = REPORT_ROWS[task_of(ensemble).name](ensemble, y, outputs, None)

    def best(names: list[str]) -> str:
        top = better(scored[name][score] for name in names)
        return next(name for name in names if scored[name][score] == top)

    references = {"best member": best(list(ensemble.output_names_))}
    same = [
        name
        for name in ensemble.output_names_
        if name in members and same_architecture(members[name], student)
    ]
    if same:
        references["best member, student's architecture"] = best(same)
    return {row: (name, dict(scored[name])) for row, name in references.items()}


def _classification_rows(
    ensemble: Any, y: Any, outputs: dict[str, np.ndarray], reference: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """Accuracy, NLL and ECE of each model's probabilities; with the ensemble's as
    ``reference``, also the top-1 agreement with it and KL(ensemble || model)."""
    y_index = metrics.encode_labels(y, ensemble.classes_)
    rows = {}
    for name, proba in outputs.items():
        row = metrics.classification_report(y_index, proba)
        del row["brier"]
        if reference is not None:
            row["agreement"] = float(np.mean(proba.argmax(1) == reference.argmax(1)))
            row["kl_to_ensemble"] = metrics.kl_divergence(reference, proba)
        rows[name] = row
    return rows


def _regression_rows(
    ensemble: Any, y: Any, outputs: dict[str, np.ndarray], reference: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """RMSE, MAE and R² of each model's predictions."""
    target = np.asarray(to_numpy(y), dtype=np.float64)
    return {name: metrics.regression_report(target, output) for name, output in outputs.items()}


# What differs by task (members.tasks) in the report, by the task's name: its rows, and the
# score the gain is measured in (and which way is better).
REPORT_ROWS = {"classification": _classification_rows, "regression": _regression_rows}
REPORT_SCORES = {"classification": ("accuracy", max), "regression": ("rmse", min)}


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
