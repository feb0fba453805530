"""The study's ``compare`` step: whole systems side by side, as ratios to a baseline.

A *system* is an entry of the pool cut into groups of ``size`` members (in seed order): a
single network (``size: 1``), a deep ensemble of 4 independent networks (``size: 4``, their
plain mean), a snapshot ensemble, or an ensemble inside one network. Each group is one run of
the system; for each run the step measures the test accuracy, NLL and ECE, the AUROC of
out-of-distribution rows (held-out classes, ``data.ood_classes``) against the test rows by the
mutual information between the components (and by the total entropy), the mean accuracy and
NLL under the ``shift`` corruptions, the parameters, the training time (the group's fit
seconds) and the predict time. The summary averages the runs of each system and divides
parameters, training and predict time (and NLL) by the baseline system's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ensembles import metrics
from ensembles.uncertainty import entropy
from experiments.study import plots


@dataclass
class SystemConfig:
    """One system of the comparison: an entry of ``members`` cut into groups of ``size``.

    Parameters
    ----------
    name
        The system's name in the table.
    member
        The ``members`` entry whose members (one per seed) make the system's runs.
    size
        Members per run, fused by the plain mean (4 for a deep ensemble of 4).
    """

    name: str
    member: str
    size: int = 1


@dataclass
class CompareConfig:
    """Systems side by side (``systems.csv``, ``plots/systems.png``).

    Parameters
    ----------
    systems
        The systems, each an entry of ``members`` cut into groups.
    baseline
        The system the ratios divide by (a single network).
    """

    systems: list[SystemConfig] = field(default_factory=list)
    baseline: str = "single"


def components(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The probabilities of what ``estimator`` averages, ``(k, n_samples, n_classes)``: the
    sub-networks of an ensemble inside one network, the members of a snapshot ensemble (any
    estimator with ``member_predictions``), or the estimator itself."""
    if hasattr(estimator, "sub_network_outputs"):
        return np.asarray(estimator.sub_network_outputs(X))
    if hasattr(estimator, "member_predictions"):
        return np.asarray(estimator.member_predictions(X))
    return np.asarray(estimator.predict_proba(X))[None]


def n_parameters(estimator: Any) -> float:
    """The parameters of every network ``estimator`` holds (its ``model_``, or its members'),
    ``nan`` for one without networks."""
    model = getattr(estimator, "model_", None)
    if model is not None:
        return float(sum(p.numel() for p in model.parameters()))
    members = getattr(estimator, "members_", None)
    if members:
        return float(sum(n_parameters(member) for member in members))
    return float("nan")


def mutual_information(parts: np.ndarray) -> np.ndarray:
    """Entropy of the mean minus the mean entropy of ``parts`` ``(k, n, classes)``: 0 for one
    component."""
    return np.asarray(entropy(parts.mean(axis=0)) - entropy(parts).mean(axis=0))


def system_runs(
    systems: list[SystemConfig],
    groups: dict[str, list[int]],
    estimators: list[Any],
    fit_seconds: list[float],
    X_test: np.ndarray,
    y_test: np.ndarray,
    X_ood: np.ndarray | None,
    shifted: list[tuple[str, int, np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """One row per run of every system (see the module's docstring).

    ``groups`` maps each ``members`` entry to the indices of its members in ``estimators``;
    ``y_test`` is encoded; ``shifted`` holds ``(corruption, severity, X, y)`` test sets. Each
    member predicts each set once, also when two systems share it (the single network and the
    deep ensemble cut from one entry); a run's predict time is the sum of its members' on the
    test rows.
    """
    needed = sorted({i for system in systems for i in groups[system.member]})
    test, seconds = {}, {}
    for i in needed:
        begin = time.perf_counter()
        test[i] = components(estimators[i], X_test)
        seconds[i] = time.perf_counter() - begin
    ood = None if X_ood is None else {i: components(estimators[i], X_ood) for i in needed}
    corrupted = [({i: components(estimators[i], X) for i in needed}, y) for _, _, X, y in shifted]
    rows = []
    for system in systems:
        indices = groups[system.member]
        for run, start in enumerate(range(0, len(indices) - system.size + 1, system.size)):
            chosen = indices[start : start + system.size]
            parts = np.concatenate([test[i] for i in chosen])
            proba = parts.mean(axis=0)
            report = metrics.classification_report(y_test, proba)
            row: dict[str, Any] = {
                "system": system.name,
                "run": run,
                "members": len(parts),
                "accuracy": report["accuracy"],
                "nll": report["nll"],
                "ece": report["ece"],
                "parameters": sum(n_parameters(estimators[i]) for i in chosen),
                "train_s": sum(fit_seconds[i] for i in chosen),
                "predict_s": sum(seconds[i] for i in chosen),
            }
            if ood is not None:
                outside = np.concatenate([ood[i] for i in chosen])
                mi = metrics.ood_report(mutual_information(parts), mutual_information(outside))
                total = metrics.ood_report(entropy(proba), entropy(outside.mean(axis=0)))
                row["ood_auroc_mi"] = mi["auroc"]
                row["ood_auroc_entropy"] = total["auroc"]
            if corrupted:
                scored = [
                    metrics.classification_report(
                        y, np.concatenate([outputs[i] for i in chosen]).mean(axis=0)
                    )
                    for outputs, y in corrupted
                ]
                row["shift_accuracy"] = float(np.mean([s["accuracy"] for s in scored]))
                row["shift_nll"] = float(np.mean([s["nll"] for s in scored]))
            rows.append(row)
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, baseline: str, order: list[str]) -> pd.DataFrame:
    """Each system's mean over its runs (and the standard deviation of accuracy and NLL), with
    parameters, training and predict time and NLL as ratios to ``baseline``'s means."""
    numeric = runs.drop(columns=["run"]).groupby("system", sort=False)
    table = numeric.mean(numeric_only=True)
    table.insert(0, "runs", numeric.size())
    for column in ("accuracy", "nll"):
        table[f"{column}_sd"] = numeric[column].std(ddof=1) if len(runs) > 1 else np.nan
    base = table.loc[baseline]
    for column, ratio in [
        ("parameters", "parameters_x"),
        ("train_s", "train_x"),
        ("predict_s", "predict_x"),
        ("nll", "nll_x"),
    ]:
        table[ratio] = table[column] / base[column]
    return table.loc[order]


def plot_cost(table: pd.DataFrame, baseline: str, path: Path) -> Path:
    """Test NLL against training cost (a ratio to ``baseline``), one point per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.0, 4.2))
    for name, row in table.iterrows():
        axis.errorbar(row["train_x"], row["nll"], yerr=row.get("nll_sd"), fmt="o", capsize=3)
        axis.annotate(
            str(name),
            (row["train_x"], row["nll"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    axis.set_xlabel(f"training time (x {baseline})")
    axis.set_ylabel("test NLL")
    axis.set_title("NLL against training cost")
    axis.grid(alpha=0.3)
    return plots.save_figure(fig, path)


def lines(table: pd.DataFrame, baseline: str) -> list[str]:
    """``summary.md``'s section for the comparison."""
    columns = [
        column
        for column in (
            "runs",
            "members",
            "accuracy",
            "accuracy_sd",
            "nll",
            "nll_sd",
            "ece",
            "ood_auroc_mi",
            "ood_auroc_entropy",
            "shift_accuracy",
            "shift_nll",
            "parameters_x",
            "train_x",
            "predict_x",
        )
        if column in table
    ]
    return [
        f"## Systems (ratios to {baseline}; mean over runs)",
        "",
        table[columns].to_markdown(floatfmt=".4f"),
        "",
        "Every run: `systems_runs.csv`; the table: `systems.csv`. `ood_auroc_mi`: held-out "
        "classes against the test rows by the mutual information of the components (0.5 for "
        "one network, which has none); `ood_auroc_entropy` by the total entropy.",
        "",
    ]
