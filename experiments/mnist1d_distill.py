"""Distil a 5-seed cnn1d ensemble into one cnn1d on MNIST-1D, and report what was kept.

The student and the baseline ("alone") are the same architecture with the same seed and the
same training budget; only the targets differ (ensemble soft targets vs hard labels). The
student is then compressed (int8 quantisation, 50 % magnitude pruning)::

    python experiments/mnist1d_distill.py [--temperature 2] [--alpha 0.9] [--augment mixup]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from ensembles import DistillationReport, EnsembleClassifier
from experiments.data import load_mnist1d
from members import NeuralClassifier, compress, pickled_size


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
        augment=args.augment,
    )
    print(f"student distilled in {time.perf_counter() - start:.0f} s", flush=True)
    alone = NeuralClassifier("cnn1d", random_state=0).fit(X_train, y_train)

    report = DistillationReport.compare(teacher, student, X_test, y_test, baseline=alone)
    print(report)
    ratio = (
        report.table.loc["ensemble", "latency_10k_s"] / report.table.loc["student", "latency_10k_s"]
    )
    print(f"\nstudent predicts {ratio:.1f}x faster than the ensemble (10k samples, best of 2)")

    variants = {
        "student (float)": student,
        "int8": compress(student, quantize="int8", X=X_train),
        "pruned 50% + 5 epochs": compress(
            student, prune=0.5, finetune_epochs=5, X=X_train, y=y_train
        ),
        "pruned 50% + int8": compress(
            student, prune=0.5, finetune_epochs=5, quantize="int8", X=X_train, y=y_train
        ),
    }
    rows = {}
    for name, model in variants.items():
        rows[name] = {
            "accuracy": model.score(X_test, y_test),
            "pickled_kb": pickled_size(model) / 1024,
            "nonzero_weights": nonzero_weights(model),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["size_ratio"] = table["pickled_kb"] / table.loc["student (float)", "pickled_kb"]
    print("\ncompressing the student:")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def nonzero_weights(model: NeuralClassifier) -> float:
    """Non-zero weights of a float network; NaN for a quantised (TorchScript) one."""
    if isinstance(model.model_, torch.jit.ScriptModule):
        return float("nan")
    return float(sum(int((p != 0).sum()) for p in model.model_.parameters()))


if __name__ == "__main__":
    main()
