"""Distil a 5-seed cnn1d ensemble into one cnn1d on MNIST-1D, and report what was kept.

The student and the baseline ("alone") are the same architecture with the same seed and the
same training budget; only the targets differ (ensemble soft targets vs hard labels)::

    python experiments/mnist1d_distill.py [--temperature 2] [--alpha 0.9] [--augment mixup]
"""

from __future__ import annotations

import argparse
import time

from mnist1d_ensemble import load_mnist1d

from ensembles import DistillationReport, EnsembleClassifier
from members import NeuralClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--augment", choices=["noise", "mixup", "munge"], default=None)
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_mnist1d()

    start = time.perf_counter()
    teacher = EnsembleClassifier(
        [(f"seed{s}", NeuralClassifier("cnn1d", random_state=s)) for s in range(5)]
    ).fit(X_train, y_train)
    print(f"teacher: 5 x cnn1d in {time.perf_counter() - start:.0f} s", flush=True)

    start = time.perf_counter()
    student = teacher.distill(
        X_train,
        y_train,
        student=NeuralClassifier("cnn1d", random_state=0),
        temperature=args.temperature,
        alpha=args.alpha,
        augment_with=args.augment,
    )
    print(f"student distilled in {time.perf_counter() - start:.0f} s", flush=True)
    alone = NeuralClassifier("cnn1d", random_state=0).fit(X_train, y_train)

    report = DistillationReport.compare(teacher, student, X_test, y_test, baseline=alone)
    print(report)
    ratio = (
        report.table.loc["ensemble", "latency_10k_s"] / report.table.loc["student", "latency_10k_s"]
    )
    print(f"\nstudent predicts {ratio:.1f}x faster than the ensemble (10k samples, best of 2)")


if __name__ == "__main__":
    main()
