"""A fitted network, and a fused ensemble, served every way the library offers, in one run::

    python benchmarks/deploy.py [--epochs 40] [--repeats 200]
    python benchmarks/deploy.py --efficient [--epochs 5] [--repeats 200]

Three models: the MNIST-1D student (``distill()`` of the 5-member ensemble below, with its
defaults: a ``cnn1d``), a 5-member ``cnn1d`` ensemble on MNIST-1D (the mean; one ONNX graph
against ``predict_proba``, which calls the members one after another in Python) and a default
``mlp`` on scikit-learn's digits. The ways: eager ``predict_proba`` (validates its input,
computes in float64, as a user calls it), the ``torch.export`` program, ONNX Runtime float32,
ONNX Runtime int8 (``to_onnx(quantize="int8")``: dynamic without calibration rows, static
with them) and torchao's int8 network (``compress(quantize="int8")``, eager). At batch 1 and
batch 1000: the median latency of repeated calls as a ratio to eager, the file size (the eager
row: the float32 weights), test accuracy and the largest difference of probabilities from
eager ``predict_proba``.

``--efficient``: the systems of ``efficient_vs_deep`` deployed, each as one ONNX graph
(float32, ONNX Runtime): the study's template (``cnn1d``, channels 64, 128, 128, 256), a deep
ensemble of 4, Packed-Ensembles (M=4, alpha=2), BatchEnsemble (4), MIMO (3) and MC-Dropout (16
passes), trained for ``--epochs`` (latency and size do not depend on it; the study measures
accuracy at its 40 epochs). Prints each system's graph size, median latency at batch 1 and
1000 and their ratios to the single network's graph, and the largest difference of the graph's
probabilities from eager ``predict_proba``.
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from combiners import MeanCombiner
from ensembles import (
    BatchEnsembleClassifier,
    EnsembleClassifier,
    MCDropoutClassifier,
    MIMOClassifier,
    PackedEnsembleClassifier,
    to_onnx,
)
from experiments.data import load_mnist1d
from members import NeuralClassifier, compress, to_torch


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def state_bytes(networks: list[torch.nn.Module]) -> int:
    """Bytes of the networks' weights saved with ``torch.save`` (float32 unless quantised)."""
    total = 0
    for network in networks:
        buffer = io.BytesIO()
        torch.save(network.state_dict(), buffer)
        total += len(buffer.getvalue())
    return total


def session(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime

    run = onnxruntime.InferenceSession(str(path)).run
    return lambda rows: run(["proba"], {"X": rows})[0]


def serve_ways(model: Any, X_train: np.ndarray, folder: Path) -> dict[str, dict]:
    """Each way of serving ``model`` (a network or an ensemble): a predict function on rows
    and its file size."""
    ways: dict[str, dict] = {}
    networks = getattr(model, "members_", [model])
    float32 = [copy.deepcopy(member.model_).float() for member in networks]
    ways["eager predict_proba"] = {"run": model.predict_proba, "bytes": state_bytes(float32)}
    if not hasattr(model, "members_"):
        exported_program = to_torch(model)
        program = exported_program.module()
        program_file = io.BytesIO()
        torch.export.save(exported_program, program_file)

        def exported(rows: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return program(torch.from_numpy(rows)).numpy()  # type: ignore[no-any-return]

        ways["torch.export"] = {"run": exported, "bytes": len(program_file.getvalue())}
    files = {
        "onnxruntime fp32": to_onnx(model, folder / "fp32.onnx"),
        "onnxruntime int8 dynamic": to_onnx(model, folder / "dynamic.onnx", quantize="int8"),
        "onnxruntime int8 static": to_onnx(
            model, folder / "static.onnx", quantize="int8", X=X_train
        ),
    }
    for way, path in files.items():
        ways[way] = {"run": session(path), "bytes": path.stat().st_size}
    if not hasattr(model, "members_"):
        small = compress(model, quantize="int8")
        ways["torchao int8"] = {"run": small.predict_proba, "bytes": state_bytes([small.model_])}
    return ways


def measure(name: str, model: Any, data: tuple[np.ndarray, ...], repeats: int) -> list[dict]:
    X_train, X_test, y_test = data
    table = []
    rows32 = X_test.astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        ways = serve_ways(model, X_train, Path(folder))
        reference = model.predict_proba(X_test)
        eager = {}
        for way, spec in ways.items():
            rows = X_test if "predict_proba" in way or "torchao" in way else rows32
            proba = np.asarray(spec["run"](rows))
            row = {
                "model": name,
                "way": way,
                "file kB": round(spec["bytes"] / 1024, 1),
                "accuracy": float((model.classes_[proba.argmax(axis=1)] == y_test).mean()),
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


def efficient(epochs: int, repeats: int) -> pd.DataFrame:
    """The ``--efficient`` table: each system of ``efficient_vs_deep`` as one ONNX graph."""
    X_train, y_train, X_test, y_test = load_mnist1d()
    template = NeuralClassifier(
        "cnn1d", module_kwargs={"channels": (64, 128, 128, 256)}, lr=0.006, max_epochs=epochs
    )
    deep = [(f"cnn1d_{seed}", clone(template).set_params(random_state=seed)) for seed in range(4)]
    systems = {
        "single": clone(template).set_params(random_state=0),
        "deep (4)": EnsembleClassifier(deep, combiner=MeanCombiner(), cv=None),
        "packed (4)": PackedEnsembleClassifier(template, random_state=0),
        "batchensemble (4)": BatchEnsembleClassifier(template, random_state=0),
        "mimo (3)": MIMOClassifier(template, random_state=0),
        "mc_dropout (16)": MCDropoutClassifier(template, random_state=0),
    }
    rows32 = X_test.astype(np.float32)
    table = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model in systems.items():
            model.fit(X_train, y_train)
            path = to_onnx(model, Path(folder) / "graph.onnx", overwrite=True)
            run = session(path)
            proba = run(rows32)
            row = {
                "system": name,
                "file kB": round(path.stat().st_size / 1024, 1),
                "accuracy": float((model.classes_[proba.argmax(axis=1)] == y_test).mean()),
                "max |dproba|": float(np.abs(proba - model.predict_proba(X_test)).max()),
            }
            for batch, count in ((1, repeats), (1000, max(repeats // 10, 5))):
                one = rows32[:batch]
                seconds = median_seconds(lambda one=one, run=run: run(one), count)
                row[f"batch {batch} ms"] = round(seconds * 1e3, 3)
            table.append(row)
    frame = pd.DataFrame(table)
    for batch in (1, 1000):
        column = f"batch {batch} ms"
        frame[f"batch {batch} / single"] = (frame[column] / frame[column].iloc[0]).round(2)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="40; 5 with --efficient")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--efficient", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    if args.efficient:
        print(efficient(args.epochs or 5, args.repeats).to_string(index=False))
        return
    args.epochs = args.epochs or 40
    X_train, y_train, X_test, y_test = load_mnist1d()
    members = [
        (f"cnn1d_{seed}", NeuralClassifier("cnn1d", max_epochs=args.epochs, random_state=seed))
        for seed in range(5)
    ]
    ensemble = EnsembleClassifier(members, combiner=MeanCombiner(), cv=None).fit(X_train, y_train)
    student = ensemble.distill(X_train, y_train, random_state=0)
    X, y = load_digits(return_X_y=True)
    mlp = NeuralClassifier("mlp", max_epochs=args.epochs, random_state=0).fit(X[:1297], y[:1297])
    mnist1d = (X_train, X_test, y_test)
    table = [
        *measure("MNIST-1D student", student, mnist1d, args.repeats),
        *measure("MNIST-1D 5 cnn1d", ensemble, mnist1d, args.repeats),
        *measure("digits mlp", mlp, (X[:1297], X[1297:], y[1297:]), args.repeats),
    ]
    pd.set_option("display.width", 250)
    print(pd.DataFrame(table).to_string(index=False))


if __name__ == "__main__":
    main()
