"""Nothing lost when a member fails: time a fit that crashes, then the resumed fit.

Two 60-epoch MLP members train on MNIST-1D; a third member crashes (a simulated out-of-memory
error raised by a Lightning callback at a chosen epoch). ``fit`` raises an error naming the third
member; calling ``fit`` again with a working third member and the same ``checkpoint_dir`` loads
the first two instead of retraining them. Prints one row per crash epoch::

    python experiments/checkpoint_resume.py [--crash-epochs 1 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
from lightning.pytorch.callbacks import Callback

from combiners import MeanCombiner
from ensembles import EnsembleClassifier
from experiments.data import load_mnist1d
from members import NeuralClassifier

EPOCHS = 60
# one member after another, as the members of a heterogeneous pool train: this measures what a
# resumed fit saves, not what training same-config members together saves (members.batched)
BATCHED = False


class CrashAt(Callback):
    """Raises at the end of one epoch, as an out-of-memory error would mid-training."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        if trainer.current_epoch + 1 == self.epoch:
            raise RuntimeError(f"simulated out-of-memory in epoch {self.epoch}")


def members(third: NeuralClassifier) -> list[tuple[str, NeuralClassifier]]:
    return [
        ("mlp_a", NeuralClassifier("mlp", max_epochs=EPOCHS, random_state=0)),
        ("mlp_b", NeuralClassifier("mlp", max_epochs=EPOCHS, random_state=1)),
        ("third", third),
    ]


def measure(crash_epoch: int) -> dict[str, object]:
    X_train, y_train, X_test, y_test = load_mnist1d()
    third = NeuralClassifier("mlp", max_epochs=EPOCHS, random_state=2)
    with tempfile.TemporaryDirectory() as directory:
        crashing = third.set_params(callbacks=[CrashAt(crash_epoch)])
        start = time.perf_counter()
        mean = MeanCombiner()
        try:
            EnsembleClassifier(
                members(crashing), combiner=mean, checkpoint_dir=directory, batched=BATCHED
            ).fit(X_train, y_train)
        except RuntimeError as error:
            message = str(error) + " | " + " ".join(getattr(error, "__notes__", []))
        else:
            raise AssertionError("the crashing member did not crash")
        first = time.perf_counter() - start
        working = NeuralClassifier("mlp", max_epochs=EPOCHS, random_state=2)
        start = time.perf_counter()
        ens = EnsembleClassifier(
            members(working), combiner=MeanCombiner(), checkpoint_dir=directory, batched=BATCHED
        )
        ens.fit(X_train, y_train)
        second = time.perf_counter() - start
    return {
        "crash_epoch": crash_epoch,
        "first_fit_s": round(first, 1),
        "resumed_fit_s": round(second, 1),
        "ratio": round(second / first, 2),
        "test_accuracy": round(ens.score(X_test, y_test), 4),
        "error": message,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crash-epochs", type=int, nargs="+", default=[1, EPOCHS])
    args = parser.parse_args()
    table = pd.DataFrame([measure(epoch) for epoch in args.crash_epochs])
    with pd.option_context("display.max_colwidth", 200, "display.width", 250):
        print(table.drop(columns="error").to_string(index=False))
        print("\nerror of the first fit:", table["error"].iloc[-1])


if __name__ == "__main__":
    main()
