"""Distil a 5-seed cnn1d ensemble into one cnn1d on MNIST-1D, and report what was kept.

For each seed: the teacher is 5 default ``cnn1d`` members fused by the mean; the student comes
from ``ensemble.distill(X, y)`` with the library's defaults (function matching: the ensemble
labels each augmented view the student sees). Beside them, a ``cnn1d`` trained alone on the
labels with the members' budget and one with the student's budget; the gain kept is measured
against the better of the two::

    python experiments/mnist1d_distill.py                 # seeds 0, 1, 2
    python experiments/mnist1d_distill.py --method cached # the old recipe, for comparison
    python experiments/mnist1d_distill.py --select        # how the defaults were chosen
    python experiments/mnist1d_distill.py --compress      # int8, pruning, int8 ONNX

``--select`` never looks at the test set: it splits the training data (80 % / 20 %,
stratified), trains the teacher on the 80 %, and scores students on the 20 %: first the
temperature, then a warm start from the best member, then the budget, each kept only if it
lowers the validation NLL.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from typing import Any

import numpy as np
import onnxruntime
import pandas as pd
from sklearn.model_selection import train_test_split

from combiners import MeanCombiner
from ensembles import DistillationReport, EnsembleClassifier
from ensembles.metrics import classification_report, encode_labels
from experiments.data import load_mnist1d
from members import NeuralClassifier, compress, pickled_size, to_onnx

N_MEMBERS = 5


def teacher_for(seed: int, X: np.ndarray, y: np.ndarray) -> tuple[EnsembleClassifier, float]:
    """5 default cnn1d members (seeds 10 * seed + 0..4), mean-fused; and their training time."""
    members = [
        (f"cnn1d_{i}", NeuralClassifier("cnn1d", random_state=10 * seed + i))
        for i in range(N_MEMBERS)
    ]
    start = time.perf_counter()
    ensemble = EnsembleClassifier(members, combiner=MeanCombiner()).fit(X, y)
    return ensemble, time.perf_counter() - start


def report(seed: int, method: str, data: tuple[np.ndarray, ...]) -> dict[str, float]:
    X, y, X_test, y_test = data
    ensemble, members_s = teacher_for(seed, X, y)
    start = time.perf_counter()
    student = ensemble.distill(X, y, method=method, random_state=seed)
    student_s = time.perf_counter() - start
    alone = NeuralClassifier("cnn1d", random_state=seed).fit(X, y)
    long_alone = NeuralClassifier("cnn1d", max_epochs=student.max_epochs, random_state=seed).fit(
        X, y
    )
    result = DistillationReport.compare(
        ensemble,
        student,
        X_test,
        y_test,
        baselines={"alone": alone, "alone, student's budget": long_alone},
        train_seconds={"ensemble": members_s, "student": student_s},
    )
    print(f"\nseed {seed}: student {student.max_epochs} epochs at most ({method})")
    print(result)
    best_member = max(member.score(X_test, y_test) for member in ensemble.members_)
    table = result.table
    row = {
        "seed": seed,
        "ensemble": table.loc["ensemble", "accuracy"],
        "best member": best_member,
        "alone": table.loc["alone", "accuracy"],
        "alone, student's budget": table.loc["alone, student's budget", "accuracy"],
        "student": table.loc["student", "accuracy"],
        "gain kept": table.loc["student", "gain_kept"],
        "student NLL": table.loc["student", "nll"],
        "best alone NLL": table.loc[["alone", "alone, student's budget"], "nll"].min(),
        "cost": table.loc["student", "cost"],
    }
    return row


def select(seed: int, data: tuple[np.ndarray, ...]) -> None:
    """Choose temperature, warm start and budget on a validation split of the training data."""
    X, y = data[0], data[1]
    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    ensemble, members_s = teacher_for(seed, X_fit, y_fit)
    print(f"teacher on {len(X_fit)} rows in {members_s:.0f} s; scored on {len(X_val)} held-out")
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, **settings: Any) -> float:
        start = time.perf_counter()
        student = ensemble.distill(X_fit, y_fit, random_state=seed, **settings)
        seconds = time.perf_counter() - start
        proba = student.predict_proba(X_val)
        metrics = classification_report(encode_labels(y_val, student.classes_), proba)
        rows[name] = {
            "accuracy": metrics["accuracy"],
            "nll": metrics["nll"],
            "cost": seconds / members_s,
        }
        print(f"{name}: {rows[name]}", flush=True)
        return float(metrics["nll"])

    ensemble_metrics = classification_report(
        encode_labels(y_val, ensemble.classes_), ensemble.predict_proba(X_val)
    )
    print(f"ensemble: {ensemble_metrics}")
    scores = {t: score(f"T={t}", temperature=t, budget=3) for t in (1.0, 2.0, 4.0)}
    best_t = min(scores, key=scores.__getitem__)
    warm = score(f"T={best_t}, warm start", temperature=best_t, budget=3, warm_start=True)
    use_warm = warm < scores[best_t]
    short = score(f"T={best_t}, budget 2", temperature=best_t, budget=2, warm_start=use_warm)
    print(pd.DataFrame.from_dict(rows, orient="index").to_string(float_format="{:.4f}".format))
    print(
        f"chosen: temperature={best_t}, warm_start={use_warm}, "
        f"budget={2 if short < min(scores[best_t], warm) else 3}"
    )


def compress_student(seed: int, data: tuple[np.ndarray, ...]) -> None:
    """The student compressed: int8 (torchao, linear layers), pruning, and the int8 ONNX
    graph (ONNX Runtime's quantiser, convolutions too), sizes against the float32 student."""
    X, y, X_test, y_test = data
    ensemble, _ = teacher_for(seed, X, y)
    student = ensemble.distill(X, y, random_state=seed)
    pruned = compress(student, prune=0.5, finetune_epochs=5, X=X, y=y)  # fine-tuned once
    variants = {
        "student (float32)": float32(student),
        "int8 (torchao)": compress(student, quantize="int8"),
        "pruned 50% + 5 epochs": float32(pruned),
        "pruned 50% + int8": compress(pruned, quantize="int8"),
    }
    rows = {}
    for name, model in variants.items():
        rows[name] = {
            "accuracy": model.score(X_test, y_test),
            "file_kb": pickled_size(model) / 1024,
            "nonzero_weights": nonzero_weights(model),
        }
    with tempfile.TemporaryDirectory() as folder:
        exports: dict[str, dict[str, Any]] = {
            "ONNX float32": {},
            "ONNX int8 (static)": {"quantize": "int8", "X": X},
        }
        for name, options in exports.items():
            path = to_onnx(student, f"{folder}/{len(rows)}.onnx", **options)
            [proba] = onnxruntime.InferenceSession(str(path)).run(
                None, {"X": X_test.astype(np.float32)}
            )
            rows[name] = {
                "accuracy": float((student.classes_[proba.argmax(axis=1)] == y_test).mean()),
                "file_kb": path.stat().st_size / 1024,
                "nonzero_weights": float("nan"),
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    onnx = table.index.str.startswith("ONNX")
    float32_kb = table.loc[["student (float32)", "ONNX float32"], "file_kb"].to_numpy()
    table["size_ratio"] = table["file_kb"] / np.where(onnx, float32_kb[1], float32_kb[0])
    print("\ncompressing the student (sizes: pickles against the float32 pickle; ONNX files")
    print("against the float32 ONNX file):")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def float32(model: NeuralClassifier) -> NeuralClassifier:
    """A copy with its network in float32 (a fitted estimator keeps float64 weights)."""
    copy_ = copy.deepcopy(model)
    copy_.model_ = copy_.model_.float()
    return copy_


def nonzero_weights(model: NeuralClassifier) -> float:
    """Non-zero weights of the network (an int8 weight counts its non-zero int8 values)."""
    total = 0
    for parameter in model.model_.parameters():
        values = getattr(parameter, "qdata", parameter)  # torchao's int8 weights
        total += int((values != 0).sum())
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--method", choices=["function_matching", "cached"], default=None)
    parser.add_argument("--select", action="store_true")
    parser.add_argument("--compress", action="store_true")
    args = parser.parse_args()
    data = load_mnist1d()
    if args.select:
        select(args.seeds[0], data)
        return
    if args.compress:
        compress_student(args.seeds[0], data)
        return
    method = args.method or "function_matching"
    rows = [report(seed, method, data) for seed in args.seeds]
    table = pd.DataFrame(rows).set_index("seed")
    print("\nper seed (test set):")
    print(table.to_string(float_format="{:.4f}".format))
    kept, cost = table["gain kept"].mean(), table["cost"].mean()
    print(f"\nmean gain kept: {kept:.3f}; mean cost: {cost:.2f}x the members' training time")


if __name__ == "__main__":
    main()
