"""Study plots (matplotlib): metric vs ensemble size, reliability diagram, disagreement heatmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
) -> list[Path]:
    """Write the study's figures to ``folder``; return their paths.

    ``member_outputs`` are the members' test outputs ``(n_members, n_samples, n_outputs)``;
    ``pairwise`` their disagreement matrix; ``fused`` the full pool's test outputs per
    combiner; ``y`` the encoded test targets.
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
    return figures


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
