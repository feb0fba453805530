"""The study's report: one row per member, ensemble draw and student; ``summary.md``; files.

Rows hold the test metrics (accuracy, NLL, Brier, ECE for classification; RMSE, MAE, R² for
regression), the disagreement, and fit and predict times. :func:`write_report` writes
``results.csv``, ``results.json``, the plots and ``summary.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ensembles import metrics
from experiments.data import Dataset
from experiments.study import compare, plots
from experiments.study import soups as soups_step


def scores(y: np.ndarray, output: np.ndarray, classification: bool) -> dict[str, float]:
    """Test metrics of one model's outputs ``(n_samples, n_outputs)`` against encoded ``y``."""
    if classification:
        return metrics.classification_report(y, output)
    return metrics.regression_report(np.reshape(y, (len(y), -1)), output)


def pairwise_disagreement(predictions: np.ndarray, classification: bool) -> np.ndarray:
    """Member disagreement: differing top classes, or RMS difference of predictions."""
    if classification:
        return metrics.disagreement(predictions)
    diff = predictions[:, None] - predictions[None, :]
    return np.sqrt((diff**2).mean(axis=(2, 3)))  # type: ignore[no-any-return]


def row(
    kind: str,
    name: str,
    *,
    combiner: str = "",
    fused_by: str = "",
    guard: str = "",
    size: int = 1,
    draw: int = 0,
    members: str,
    scores: dict[str, float],
    disagreement: float,
    fit_s: float,
    predict_s: float,
) -> dict[str, Any]:
    """One row of ``results.csv``, its columns in the report's order."""
    return {
        "kind": kind,
        "name": name,
        "combiner": combiner,
        "fused_by": fused_by,
        "guard": guard,
        "size": size,
        "draw": draw,
        "members": members,
        **scores,
        "disagreement": disagreement,
        "fit_s": fit_s,
        "predict_s": predict_s,
    }


def summary(
    table: pd.DataFrame,
    data: Dataset,
    figures: list[Path],
    *,
    validation_size: float,
    draws: int,
    subsets: str,
    training: str = "",
    shift: pd.DataFrame | None = None,
    extra: list[str] | None = None,
) -> str:
    """``summary.md``: the headline (best member, full ensembles, student), the metric by
    ensemble size, and the plots."""
    classification = data.task == "classification"
    metric_names = ["accuracy", "nll", "brier", "ece"] if classification else ["rmse", "mae", "r2"]
    key = "nll" if classification else "rmse"  # lower is better for both
    members = table[table.kind == "member"]
    best = members.sort_values(key).iloc[0]
    n_members = len(members)
    full = table[(table.kind == "ensemble") & (table["size"] == n_members)]
    headline = [best.to_dict() | {"name": f"best member ({best['name']})"}]
    # an AutoCombiner's row says which rule it chose: "auto[7] (weighted)"
    headline += [
        row | {"name": f"{row['name']} {row['fused_by'][len(row['combiner']) + 1 :]}"}
        if str(row.get("fused_by", "")).startswith(f"{row['combiner']} (")
        else row
        for row in full.to_dict(orient="records")
    ]
    headline += table[table.kind == "student"].to_dict(orient="records")
    headline += table[table.kind == "search"].to_dict(orient="records")
    columns = ["name", *metric_names, "disagreement", "fit_s", "predict_s"]
    head = pd.DataFrame(headline)[columns]
    curve = (
        table[table.kind == "ensemble"]
        .groupby(["combiner", "size"])[key]
        .agg(["mean", "std"])
        .reset_index()
        .pivot(index="size", columns="combiner", values="mean")
    )
    lines = [
        f"# Ensemble study: {data.name}",
        "",
        f"{data.task}; {len(data.y_train)} training samples "
        f"({validation_size:g} held out for the combiners), "
        f"{len(data.y_test)} test samples; "
        f"{n_members} members. Metrics on the test set. {training}".rstrip(),
        "",
        "## Headline",
        "",
        head.to_markdown(index=False, floatfmt=".4f"),
        "",
        f"## Test {key} by ensemble size (mean over {draws} {subsets} draws)",
        "",
        curve.to_markdown(floatfmt=".4f"),
        "",
        *_search_lines(table),
        *_shift_lines(shift, key),
        *(extra or []),
        "## Plots",
        "",
        *[f"![{figure.stem}](plots/{figure.name})" for figure in figures],
        "",
        "All rows (every member, ensemble draw and student): `results.csv`, `results.json`.",
        "",
    ]
    return "\n".join(lines)


def _shift_lines(shift: pd.DataFrame | None, key: str) -> list[str]:
    """The test ``key`` by corruption severity (0: clean), averaged over the corruptions."""
    if shift is None:
        return []
    by_severity = shift.groupby(["severity", "model"])[key].mean().unstack("model")
    kinds = ", ".join(dict.fromkeys(shift["corruption"]))
    return [
        f"## Test {key} under dataset shift (mean over the corruptions: {kinds})",
        "",
        by_severity.to_markdown(floatfmt=".4f"),
        "",
        "Every corruption and severity: `shift.csv`.",
        "",
    ]


def _search_lines(table: pd.DataFrame) -> list[str]:
    """What the headline's search rows are, when there are any."""
    searched = table[table.kind == "search"]
    if searched.empty:
        return []
    return [
        "## Search",
        "",
        "`searched[k]` is the ensemble an `EnsembleSearch` selected (Caruana, with replacement) "
        "from all its trials; `deep ensemble[k]` the same search over seeds of the template "
        "alone, at equal budget (same trainings, split and selection); `fit_s` sums their "
        "trainings. Every trial: `search_searched.csv`, `search_deep.csv`.",
        "",
    ]


def write_report(
    output: Path,
    table: pd.DataFrame,
    data: Dataset,
    *,
    member_names: list[str],
    member_outputs: np.ndarray,
    pairwise: np.ndarray,
    fused: dict[str, np.ndarray],
    y_test: np.ndarray,
    validation_size: float,
    draws: int,
    subsets: str,
    training: str = "",
    searches: dict[str, pd.DataFrame] | None = None,
    shift: pd.DataFrame | None = None,
    systems: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    baseline: str | None = None,
    soups: tuple[pd.DataFrame, pd.DataFrame | None, float] | None = None,
) -> None:
    """Write ``results.csv``, ``results.json``, ``plots/`` and ``summary.md`` to ``output``
    (and, for a search, ``search_<side>.csv``: every trial; under shift, ``shift.csv``; for a
    comparison, ``systems.csv`` and ``systems_runs.csv``; for soups, ``soup.csv`` and
    ``soup_curve.csv``)."""
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / "results.csv", index=False)
    (output / "results.json").write_text(
        json.dumps(table.to_dict(orient="records"), indent=1) + "\n"
    )
    figures = plots.study_plots(
        table,
        member_names,
        member_outputs,
        pairwise,
        fused,
        y_test,
        output / "plots",
        data.task == "classification",
        searches,
        shift,
    )
    for side, trials in (searches or {}).items():
        trials.to_csv(output / f"search_{side}.csv", index=False)
    if shift is not None:
        shift.to_csv(output / "shift.csv", index=False)
    extra: list[str] = []
    if systems is not None and baseline is not None:
        table_systems, runs = systems
        table_systems.to_csv(output / "systems.csv")
        runs.to_csv(output / "systems_runs.csv", index=False)
        figures.append(compare.plot_cost(table_systems, baseline, output / "plots" / "systems.png"))
        extra = compare.lines(table_systems, baseline)
    if soups is not None:
        table_soups, curves, pool_seconds = soups
        table_soups.to_csv(output / "soup.csv")
        if curves is not None:
            curves.to_csv(output / "soup_curve.csv", index=False)
            figures.append(soups_step.plot_curves(curves, output / "plots" / "interpolation.png"))
        extra += soups_step.lines(table_soups, pool_seconds)
    text = summary(
        table,
        data,
        figures,
        validation_size=validation_size,
        draws=draws,
        subsets=subsets,
        training=training,
        shift=shift,
        extra=extra,
    )
    (output / "summary.md").write_text(text)
