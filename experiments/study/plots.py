"""Study plots (matplotlib): metric vs ensemble size, reliability diagram, disagreement heatmap;
for a search, the held-out loss of every trial and the accuracy-latency front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ensembles.search_objectives import pareto_front

RELIABILITY_BINS = 15


def study_plots(
    table: pd.DataFrame,
    member_names: list[str],
    member_outputs: np.ndarray,
    pairwise: np.ndarray,
    fused: dict[str, np.ndarray],
    y: np.ndarray,
    folder: Path,
    classification: bool,
    searches: dict[str, pd.DataFrame] | None = None,
    shift: pd.DataFrame | None = None,
) -> list[Path]:
    """Write the study's figures to ``folder``; return their paths.

    ``member_outputs`` are the members' test outputs ``(n_members, n_samples, n_outputs)``;
    ``pairwise`` their disagreement matrix; ``fused`` the full pool's test outputs per
    combiner; ``y`` the encoded test targets; ``searches`` the ``trials_`` of the study's
    searches by side (``"searched"``, ``"deep"``).
    """
    import matplotlib

    matplotlib.use("Agg")
    folder.mkdir(parents=True, exist_ok=True)
    metric_names = ["accuracy", "nll"] if classification else ["rmse", "r2"]
    figures = [metric_vs_size(table, metric_names, folder / "metric_vs_size.png")]
    if classification:
        members = table[table.kind == "member"].reset_index(drop=True)
        best = int(members["nll"].idxmin())
        curves = {f"best member ({member_names[best]})": member_outputs[best], **fused}
        figures.append(reliability_diagram(curves, y, folder / "reliability.png"))
    figures.append(
        disagreement_heatmap(pairwise, member_names, folder / "disagreement.png", classification)
    )
    if searches:
        key = "nll" if classification else "rmse"
        figures.append(search_trials(searches, key, folder / "search_trials.png"))
        if "searched" in searches:
            figures.append(
                search_pareto(searches["searched"], classification, folder / "search_pareto.png")
            )
    if shift is not None:
        shift_metrics = ["accuracy", "nll", "ece"] if classification else ["rmse", "r2"]
        figures.append(metric_vs_severity(shift, shift_metrics, folder / "shift.png"))
    return figures


def metric_vs_severity(shift: pd.DataFrame, metric_names: list[str], path: Path) -> Path:
    """Each metric against corruption severity (0: clean), one line per model, the mean over
    the corruptions with their range shaded (as in Ovadia et al., 2019)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metric_names), figsize=(4.5 * len(metric_names), 3.6))
    for axis, metric in zip(np.atleast_1d(axes), metric_names, strict=True):
        for model, rows in shift.groupby("model", sort=False):
            by_severity = rows.groupby("severity")[metric]
            mean = by_severity.mean()
            axis.plot(mean.index, mean.to_numpy(), marker="o", label=model)
            axis.fill_between(
                mean.index, by_severity.min().to_numpy(), by_severity.max().to_numpy(), alpha=0.15
            )
        axis.set_xlabel("severity (0: clean)")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("Test metrics under dataset shift")
    return save_figure(fig, path)


def metric_vs_size(table: pd.DataFrame, metric_names: list[str], path: Path) -> Path:
    """Mean (and spread over draws) of each metric against ensemble size, one line per combiner;
    the best single member as a dashed line."""
    import matplotlib.pyplot as plt

    ensembles = table[table.kind == "ensemble"]
    members = table[table.kind == "member"]
    fig, axes = plt.subplots(1, len(metric_names), figsize=(5 * len(metric_names), 3.8))
    for axis, metric in zip(np.atleast_1d(axes), metric_names, strict=True):
        for combiner, rows in ensembles.groupby("combiner", sort=False):
            stats = rows.groupby("size")[metric].agg(["mean", "std"]).fillna(0.0)
            axis.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["std"],
                marker="o",
                capsize=3,
                label=str(combiner),
            )
        higher_is_better = metric in ("accuracy", "r2")
        best = members[metric].max() if higher_is_better else members[metric].min()
        axis.axhline(best, color="grey", linestyle="--", label="best member")
        axis.set_xlabel("ensemble size")
        axis.set_ylabel(f"test {metric}")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return save_figure(fig, path)


def reliability_diagram(
    curves: dict[str, np.ndarray], y: np.ndarray, path: Path, n_bins: int = RELIABILITY_BINS
) -> Path:
    """Accuracy against top-class confidence in equal-width bins, one line per model."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(4.8, 4.5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for label, proba in curves.items():
        confidence = proba.max(axis=1)
        correct = proba.argmax(axis=1) == y
        bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
        used = [b for b in range(n_bins) if np.any(bins == b)]
        axis.plot(
            [confidence[bins == b].mean() for b in used],
            [correct[bins == b].mean() for b in used],
            marker="o",
            label=label,
        )
    axis.set_xlabel("confidence (top-class probability)")
    axis.set_ylabel("accuracy")
    axis.set_title("Reliability on the test set")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return save_figure(fig, path)


def disagreement_heatmap(
    pairwise: np.ndarray, member_names: list[str], path: Path, classification: bool
) -> Path:
    """Pairwise member disagreement on the test set (share of differing top classes, or the RMS
    difference of predictions for regression)."""
    import matplotlib.pyplot as plt

    title = (
        "share of test samples with different top class"
        if classification
        else "RMS difference of test predictions"
    )
    n_members = len(member_names)
    size = 1.2 + 0.55 * n_members
    fig, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(pairwise, cmap="viridis")
    axis.set_xticks(range(n_members), member_names, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(n_members), member_names, fontsize=8)
    for i in range(n_members):
        for j in range(n_members):
            axis.text(
                j,
                i,
                f"{pairwise[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if pairwise[i, j] < pairwise.max() / 2 else "black",
            )
    fig.colorbar(image, ax=axis, fraction=0.046)
    axis.set_title(title, fontsize=9)
    return save_figure(fig, path)


def search_trials(searches: dict[str, pd.DataFrame], key: str, path: Path) -> Path:
    """Each search's held-out ``key`` (NLL or RMSE) against trial number, and the best so far;
    failed trials marked on the axis."""
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.0, 4.0))
    for (side, trials), color in zip(searches.items(), ("C0", "C1", "C2"), strict=False):
        first = trials[trials["seed_of"].isna()].sort_values("number")
        done = first[first["state"] == "COMPLETE"]
        axis.scatter(done["number"], done[key], s=14, color=color, alpha=0.6, label=side)
        axis.step(
            done["number"], done[key].cummin(), where="post", color=color, label=f"{side}: best"
        )
        failed = first[first["state"] == "FAIL"]
        if len(failed):
            axis.scatter(
                failed["number"],
                np.full(len(failed), done[key].min()),
                marker="x",
                color=color,
                label=f"{side}: failed",
            )
    axis.set_yscale("log")
    axis.set_xlabel("trial")
    axis.set_ylabel(f"held-out {key}")
    axis.set_title("Search: held-out loss by trial", fontsize=9)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return save_figure(fig, path)


def search_pareto(trials: pd.DataFrame, classification: bool, path: Path) -> Path:
    """Every completed trial's held-out accuracy (RMSE for regression) against its prediction
    latency, the front of trials that no other beats on both joined by a line."""
    import matplotlib.pyplot as plt

    done = trials[(trials["state"] == "COMPLETE") & trials["seed_of"].isna()]
    loss = "error" if classification else "rmse"
    front = pareto_front(done, [loss, "latency_ms"]).sort_values("latency_ms")

    def shown(frame: pd.DataFrame) -> pd.Series:
        return 1.0 - frame[loss] if classification else frame[loss]

    fig, axis = plt.subplots(figsize=(5.5, 4.0))
    axis.scatter(done["latency_ms"], shown(done), s=14, color="grey", alpha=0.6, label="trials")
    axis.plot(front["latency_ms"], shown(front), marker="o", color="C3", label="Pareto front")
    for number, x, y in zip(front["number"], front["latency_ms"], shown(front), strict=True):
        axis.annotate(str(number), (x, y), fontsize=7)
    axis.set_xscale("log")
    axis.set_xlabel("latency (ms per 1000 rows)")
    axis.set_ylabel("held-out accuracy" if classification else "held-out RMSE")
    axis.set_title("Search: accuracy against latency", fontsize=9)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Lay ``fig`` out, write it to ``path`` (its folder made if need be) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
