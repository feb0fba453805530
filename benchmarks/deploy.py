"""A fitted network served four ways, measured in one run: eager PyTorch, ``torch.export``,
ONNX Runtime in float32 and ONNX Runtime with dynamic int8 weights::

    python benchmarks/deploy.py [--epochs 40] [--repeats 200]

For a ``cnn1d`` on MNIST-1D (the default study's student architecture) and a default ``mlp`` on
scikit-learn's digits, at batch 1 and batch 1000: the median latency of repeated calls as a
ratio to eager ``predict_proba`` (which validates its input and computes in float64, as a user
calls it), the file size (the ONNX files; the eager row is the float32 weights), test accuracy
and the largest difference of probabilities from eager ``predict_proba``. ONNX Runtime's
dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``) turns the matrix products'
weights into int8; convolutions stay float32, so a convolutional network shrinks little.

The fused ensemble as one graph, and int8 through torchao, are not here yet (issue 30).
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits

from experiments.data import load_mnist1d
from members import NeuralClassifier, to_onnx, to_torch


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def serve_ways(clf: NeuralClassifier, X_test: np.ndarray, folder: Path) -> dict[str, dict]:
    """Each way of serving ``clf``: a predict function on float rows and its file size."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rows32 = X_test.astype(np.float32)
    program = to_torch(clf).module()
    onnx_path = to_onnx(clf, folder / "fp32.onnx")
    int8_path = folder / "int8.onnx"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs its advice to pre-process on every call
    try:
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    fp32 = onnxruntime.InferenceSession(str(onnx_path))
    int8 = onnxruntime.InferenceSession(str(int8_path))
    weights = io.BytesIO()
    torch.save(copy.deepcopy(clf.model_).float().state_dict(), weights)
    program_file = io.BytesIO()
    torch.export.save(to_torch(clf), program_file)

    def exported(rows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return program(torch.from_numpy(rows)).numpy()  # type: ignore[no-any-return]

    return {
        "eager predict_proba": {"run": clf.predict_proba, "bytes": len(weights.getvalue())},
        "torch.export": {"run": exported, "bytes": len(program_file.getvalue())},
        "onnxruntime fp32": {
            "run": lambda rows: fp32.run(None, {"X": rows})[0],
            "bytes": onnx_path.stat().st_size,
        },
        "onnxruntime int8": {
            "run": lambda rows: int8.run(None, {"X": rows})[0],
            "bytes": int8_path.stat().st_size,
        },
        "_rows32": {"rows": rows32},
    }


def measure(name: str, clf: NeuralClassifier, X_test, y_test, repeats: int) -> list[dict]:
    table = []
    with tempfile.TemporaryDirectory() as folder:
        ways = serve_ways(clf, X_test, Path(folder))
        rows32 = ways.pop("_rows32")["rows"]
        reference = clf.predict_proba(X_test)
        eager = {}
        for way, spec in ways.items():
            rows = X_test if way == "eager predict_proba" else rows32
            proba = np.asarray(spec["run"](rows))
            row = {
                "model": name,
                "way": way,
                "file kB": round(spec["bytes"] / 1024, 1),
                "accuracy": float((clf.classes_[proba.argmax(axis=1)] == y_test).mean()),
                "max |dproba|": float(np.abs(proba - reference).max()),
            }
            for batch, count in ((1, repeats), (1000, max(repeats // 10, 5))):
                one = rows[:batch]
                seconds = median_seconds(lambda one=one, spec=spec: spec["run"](one), count)
                if way == "eager predict_proba":
                    eager[batch] = seconds
                row[f"batch {batch} ms"] = round(seconds * 1e3, 3)
                row[f"batch {batch} / eager"] = round(seconds / eager[batch], 2)
            table.append(row)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    X_train, y_train, X_test, y_test = load_mnist1d()
    cnn = NeuralClassifier("cnn1d", max_epochs=args.epochs, random_state=0).fit(X_train, y_train)
    X, y = load_digits(return_X_y=True)
    mlp = NeuralClassifier("mlp", max_epochs=args.epochs, random_state=0).fit(X[:1297], y[:1297])
    table = [
        *measure("MNIST-1D cnn1d", cnn, X_test, y_test, args.repeats),
        *measure("digits mlp", mlp, X[1297:], y[1297:], args.repeats),
    ]
    pd.set_option("display.width", 200)
    print(pd.DataFrame(table).to_string(index=False))


if __name__ == "__main__":
    main()
