"""An ensemble inside one network as a member of a heterogeneous pool (MNIST-1D).

    python benchmarks/efficient_pool.py [--seed 0] [--epochs 40]

The pool: ``PackedEnsembleClassifier`` of ``cnn1d`` (M=4, alpha=2), a ``resnet`` network and a
``HistGradientBoostingClassifier``, fused by ``WeightedCombiner`` (learned weights on the simplex)
fitted on a held-out fifth of the training rows (``cv=0.2``: every member trained once, on the
rest). The packed member gives the combiner its four sub-networks, each with its own weight.
Prints each output's weight, the test accuracy and NLL of every member (the packed one as its
own mixture, and each sub-network) and of the fused pool, measured in one run on MNIST-1D's
standard test set. Every setting was fixed before the run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from combiners import WeightedCombiner
from ensembles import EnsembleClassifier, PackedEnsembleClassifier, metrics
from experiments.data import load_dataset
from members import NeuralClassifier


def main(seed: int, epochs: int) -> pd.DataFrame:
    data = load_dataset("mnist1d")
    pool = EnsembleClassifier(
        [
            (
                "packed",
                PackedEnsembleClassifier(
                    NeuralClassifier("cnn1d", max_epochs=epochs), n_members=4, alpha=2
                ),
            ),
            ("resnet", NeuralClassifier("resnet", max_epochs=epochs)),
            ("hgb", HistGradientBoostingClassifier(random_state=seed)),
        ],
        combiner=WeightedCombiner(),
        cv=0.2,
        random_state=seed,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pool.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    y = metrics.encode_labels(data.y_test, pool.classes_)
    weights = dict(zip(pool.output_names_, pool.combiner_.weights_, strict=True))
    outputs = dict(zip(pool.output_names_, pool.member_predictions(data.X_test), strict=True))
    rows = {}
    for name, member in pool.named_members_.items():
        # a member: its own prediction (the packed one: its sub-networks' mixture), the sum of
        # its outputs' weights; then each of its sub-networks
        parts = [output for output in pool.output_names_ if pool.owner(output) is member]
        own = metrics.classification_report(y, member.predict_proba(data.X_test))
        rows[name] = own | {"weight": sum(weights[part] for part in parts)}
        for part in parts:
            if part != name:
                report = metrics.classification_report(y, outputs[part])
                rows[f"  {part}"] = report | {"weight": weights[part]}
    rows["pool (learned weights)"] = metrics.classification_report(
        y, pool.predict_proba(data.X_test)
    ) | {"weight": 1.0}
    table = pd.DataFrame.from_dict(rows, orient="index")[["weight", "accuracy", "nll", "ece"]]
    members = table.loc[list(pool.named_members_)]
    best = members["nll"].idxmin()
    print(f"MNIST-1D, seed {seed}, {epochs} epochs; the pool fitted in {seconds:.0f} s\n")
    print(table.to_markdown(floatfmt=".4f"))
    pooled = table.loc["pool (learned weights)"]
    verdict = "lower" if pooled["nll"] < members.loc[best, "nll"] else "NOT lower"
    print(
        f"\nbest member by test NLL: {best} ({members.loc[best, 'nll']:.4f}); the pool: "
        f"{pooled['nll']:.4f} ({verdict})"
    )
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=40)
    arguments = parser.parse_args()
    main(arguments.seed, arguments.epochs)
