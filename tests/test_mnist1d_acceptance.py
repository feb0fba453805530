"""MNIST-1D acceptance (issue 2, point 3). Slow: ~1 minute on 2 cores; run with ``-m slow``."""

import time

import numpy as np
import pytest

from combiners import MeanCombiner
from ensembles import EnsembleClassifier
from experiments.data import load_mnist1d
from members import NeuralClassifier

pytest.importorskip("mnist1d.data")


@pytest.fixture(scope="module")
def data():
    return load_mnist1d()


@pytest.mark.slow
def test_default_cnn1d_and_five_seed_ensemble(data):
    X_train, y_train, X_test, y_test = data
    start = time.perf_counter()
    single = NeuralClassifier("cnn1d", random_state=0).fit(X_train, y_train)
    single_seconds = time.perf_counter() - start
    accuracy = single.score(X_test, y_test)
    print(f"cnn1d seed 0: accuracy {accuracy:.4f}, fit {single_seconds:.1f} s")
    assert accuracy >= 0.94

    ensemble = EnsembleClassifier(
        [(f"seed{s}", NeuralClassifier("cnn1d", random_state=s)) for s in range(5)],
        combiner=MeanCombiner(),
    ).fit(X_train, y_train)
    table = ensemble.evaluate(X_test, y_test)
    print(table.round(4))
    assert table.loc["ensemble", "accuracy"] >= 0.965
    assert table.loc["ensemble", "nll"] <= 0.15


@pytest.mark.slow
def test_learned_fusion_on_heterogeneous_pool():
    """Issue 3, point 3: prefit pool, combiners on the last 800 training samples."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "experiments"))
    from mnist1d_fusion import fusion_table

    table = fusion_table(random_state=0)
    print(table.round(4).to_string())
    mean = table.loc["mean"]
    for name in ("weighted", "selection", "stacking"):
        assert table.loc[name, "nll"] <= mean["nll"] + 0.01
        assert table.loc[name, "accuracy"] >= mean["accuracy"] - 0.005
    assert table.loc[["weighted", "selection", "stacking"], "accuracy"].max() >= 0.965
    for name in ("mean+T", "weighted+T", "selection+T", "stacking+T"):
        assert table.loc[name, "ece"] <= 0.015


@pytest.mark.slow
def test_the_distilled_student_beats_the_networks_trained_alone(data):
    """Issue 17, point 1, on seed 0 (all three seeds: experiments/mnist1d_distill.py)."""
    X_train, y_train, X_test, y_test = data
    ensemble = EnsembleClassifier(
        [(f"seed{s}", NeuralClassifier("cnn1d", random_state=s)) for s in range(5)]
    ).fit(X_train, y_train)
    student = ensemble.distill(X_train, y_train, random_state=0)
    alone = [
        NeuralClassifier("cnn1d", max_epochs=epochs, random_state=0).fit(X_train, y_train)
        for epochs in (40, student.max_epochs)
    ]
    scores = ensemble.evaluate(X_test, y_test)
    student_nll = -np.mean(np.log(student.predict_proba(X_test)[np.arange(len(y_test)), y_test]))
    for network in alone:
        nll = -np.mean(np.log(network.predict_proba(X_test)[np.arange(len(y_test)), y_test]))
        assert student_nll < nll
    best_member = max(member.score(X_test, y_test) for member in ensemble.members_)
    assert student.score(X_test, y_test) >= best_member
    gain = scores.loc["ensemble", "accuracy"] - max(a.score(X_test, y_test) for a in alone)
    kept = student.score(X_test, y_test) - max(a.score(X_test, y_test) for a in alone)
    print(f"gain kept: {kept / gain:.3f}")
    assert kept >= 0.8 * gain
