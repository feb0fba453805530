"""Model soups and aligned averages, measured (issue: fusion in weight space).

    python benchmarks/soups.py finetune [--seeds 0 1 2] [--recipes gentle bold bold-long]
                                        [--validation]
    python benchmarks/soups.py barrier [--widths 128 512 2048] [--sources mnist1d digits28]

``finetune``: on MNIST-1D, a ``cnn1d`` parent (every option at its default) is trained on 80 %
of the training rows; 8 fine-tunes start from it (``NeuralClassifier(init=parent)``), 10
epochs each, at learning rates 1e-4, 3e-4, 1e-3 and 3e-3 with two seeds each (fixed before
the run). The held-out 20 % of the training rows choose the best fine-tune (lowest NLL) and
the greedy soup's ingredients; batch-norm statistics are recomputed on the training rows. The
test rows (MNIST-1D's standard test set) only score: the parent, the best fine-tune, the
greedy and the uniform soup and the output ensemble (mean of the 8 fine-tunes' probabilities),
in accuracy, NLL and ECE, with the seconds to predict the test set and to build the soup.
``--recipes`` names other fine-tuning recipes (``RECIPES``); ``--validation`` never reads the
test rows and scores on a quarter of the training rows instead (that is how the recipes were
compared: ``gentle``, the one above, kept).

``barrier``: two ``mlp`` networks (two hidden layers of ``width`` units, every other option at
its default) trained from different seeds on the whole training set; the test NLL along the
straight line between their weights (11 points): naive, after weight matching, and after
activation matching on the training rows. Prints the midpoint's NLL over the mean of the ends'
(1.0: no barrier) and the barrier (the largest excess over the line between the ends), per
source and width. ``--plot FILE`` draws the curves.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from combiners import MeanCombiner
from ensembles import EnsembleClassifier, held_out_split, loss_barrier, metrics, soup
from experiments.data import load_dataset
from members import NeuralClassifier

# the fine-tune recipes: learning rates (two seeds each) and epochs. "gentle" was fixed before
# any run; the others were added after it, to be compared on validation splits (--validation)
RECIPES = {
    "gentle": ((1e-4, 3e-4, 1e-3, 3e-3), 10),
    "bold": ((1e-3, 2e-3, 4e-3, 8e-3), 10),
    "bold-long": ((1e-3, 2e-3, 4e-3, 8e-3), 20),
}
RECIPE = "gentle"
# the paths between two independent networks: naive, weight matching, activation matching
ALIGNMENTS = (None, "weights", "activations")


def report(estimator, X, y) -> dict[str, float]:
    start = time.perf_counter()
    proba = estimator.predict_proba(X)
    seconds = time.perf_counter() - start
    scores = metrics.classification_report(metrics.encode_labels(y, estimator.classes_), proba)
    return {k: scores[k] for k in ("accuracy", "nll", "ece")} | {"predict_s": seconds}


def finetune(seed: int, recipe: str = RECIPE, validation: bool = False) -> pd.DataFrame:
    data = load_dataset("mnist1d")
    X_train, y_train, X_test, y_test = data.X_train, data.y_train, data.X_test, data.y_test
    if validation:  # the test rows are never read: score on a quarter of the training rows
        rest, quarter = held_out_split(y_train, 0.25, True, 1000 + seed)
        X_train, y_train, X_test, y_test = (
            X_train[rest],
            y_train[rest],
            X_train[quarter],
            y_train[quarter],
        )
    train, held = held_out_split(y_train, 0.2, True, seed)
    X_fit, y_fit = X_train[train], y_train[train]
    X_val, y_val = X_train[held], y_train[held]
    start = time.perf_counter()
    parent = NeuralClassifier("cnn1d", random_state=seed).fit(X_fit, y_fit)
    parent_s = time.perf_counter() - start
    tunes, tune_s = [], 0.0
    rates, epochs = RECIPES[recipe]
    for lr, offset in [(lr, offset) for lr in rates for offset in (1, 2)]:
        start = time.perf_counter()
        tune = NeuralClassifier(
            "cnn1d", init=parent, lr=lr, max_epochs=epochs, random_state=100 * seed + offset
        )
        tunes.append(tune.fit(X_fit, y_fit))
        tune_s += time.perf_counter() - start
    held_nll = [report(tune, X_val, y_val)["nll"] for tune in tunes]
    best = tunes[int(np.argmin(held_nll))]
    rows = {"parent": report(parent, X_test, y_test)}
    rows["best fine-tune"] = report(best, X_test, y_test)
    for method in ("greedy", "uniform"):
        start = time.perf_counter()
        held_out = (X_val, y_val) if method == "greedy" else (None, None)
        result = soup(tunes, *held_out, method=method, X_train=X_fit)
        build = time.perf_counter() - start
        rows[f"{method} soup"] = report(result, X_test, y_test) | {"build_s": build}
        if method == "greedy":
            rows[f"{method} soup"]["ingredients"] = len(result.ingredients_)
    pool = EnsembleClassifier(
        [(f"t{i}", t) for i, t in enumerate(tunes)], combiner=MeanCombiner(), cv="prefit"
    )
    pool.fit(X_val, y_val)  # the plain mean: nothing is learned
    rows["ensemble of 8 (mean)"] = report(pool, X_test, y_test)
    table = pd.DataFrame(rows).T
    table["pool_train_s"] = parent_s + tune_s
    return table


def barrier(sources: list[str], widths: list[int], plot: str | None) -> pd.DataFrame:
    rows, curves = [], {}
    for source in sources:
        data = load_dataset(source)
        for width in widths:
            networks = []
            for seed in (0, 1):
                options = {"module_kwargs": {"hidden": (width, width)}, "random_state": seed}
                networks.append(NeuralClassifier("mlp", **options).fit(data.X_train, data.y_train))
            for align in ALIGNMENTS:
                start = time.perf_counter()
                train = {"X_train": data.X_train} if align == "activations" else {}
                curve = loss_barrier(*networks, data.X_test, data.y_test, align=align, **train)
                seconds = time.perf_counter() - start
                curves[(source, width, align)] = curve
                rows.append(
                    {
                        "source": source,
                        "width": width,
                        "path": align or "naive",
                        "end_a_nll": curve.loss[0],
                        "end_b_nll": curve.loss[-1],
                        "midpoint_nll": float(np.interp(0.5, curve.t, curve.loss)),
                        "midpoint_ratio": curve.midpoint_ratio,
                        "barrier": curve.barrier,
                        "seconds": seconds,
                    }
                )
            print(
                pd.DataFrame(rows[-len(ALIGNMENTS) :]).to_string(index=False, float_format="%.4f"),
                flush=True,
            )
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(sources), figsize=(5 * len(sources), 3.5), squeeze=False)
        for ax, source in zip(axes[0], sources, strict=True):
            for (name, width, align), curve in curves.items():
                if name == source:
                    curve.plot(ax, label=f"width {width}, {align or 'naive'}")
            ax.set_title(f"{source}: two mlp networks, test NLL")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"wrote {plot}")
    return pd.DataFrame(rows)


def compare_soups(recipe: str, seeds: list[int], validation: bool) -> None:
    """Print :func:`finetune`'s table per seed, their mean, and on how many seeds the greedy
    soup is at least as accurate as the best fine-tune with a lower NLL."""
    tables = []
    for seed in seeds:
        table = finetune(seed, recipe, validation)
        print(f"\nseed {seed}\n{table.to_string(float_format='%.4f')}", flush=True)
        tables.append(table.assign(seed=seed))
    both = pd.concat(tables)
    numeric = both.drop(columns=["seed"]).apply(pd.to_numeric, errors="coerce")
    mean = numeric.groupby(level=0, sort=False).mean()
    print(f"\nmean over seeds {seeds}\n{mean.to_string(float_format='%.4f')}")
    greedy, best = both.loc["greedy soup"], both.loc["best fine-tune"]
    wins = int(
        (
            (greedy["accuracy"].values >= best["accuracy"].values)
            & (greedy["nll"].values < best["nll"].values)
        ).sum()
    )
    where = "validation splits" if validation else "test rows"
    print(
        f"\n{recipe}, {where}: greedy soup accuracy >= and NLL < the best fine-tune's on "
        f"{wins} of {len(seeds)} seeds"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tune = commands.add_parser("finetune")
    tune.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    tune.add_argument("--recipes", nargs="+", choices=RECIPES, default=[RECIPE])
    tune.add_argument("--validation", action="store_true")
    curve = commands.add_parser("barrier")
    curve.add_argument("--widths", type=int, nargs="+", default=[128, 512, 2048])
    curve.add_argument("--sources", nargs="+", default=["mnist1d", "digits28"])
    curve.add_argument("--plot", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    pd.set_option("display.width", 200)
    if args.command == "finetune":
        for recipe in args.recipes:
            print(f"\nrecipe {recipe}: learning rates and epochs {RECIPES[recipe]}")
            compare_soups(recipe, args.seeds, args.validation)
    else:
        table = barrier(args.sources, args.widths, args.plot)
        print(f"\n{table.to_string(index=False, float_format='%.4f')}")


if __name__ == "__main__":
    main()
