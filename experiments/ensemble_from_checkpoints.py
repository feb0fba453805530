"""Build an ensemble from members trained by ``train_member.py`` and evaluate it.

    python experiments/ensemble_from_checkpoints.py \\
        runs/members/*/lightning_logs/*/checkpoints/*.ckpt

Each checkpoint becomes a fitted ``NeuralClassifier`` (``NeuralClassifier.from_checkpoint``:
weights read with ``weights_only=True``, architecture from LightningCLI's ``config.yaml``). They
are fused with ``EnsembleClassifier(cv="prefit")``; a combiner that learns is fitted on the
data module's validation split (held out from every member trained with the same data seed),
and the table is computed on the test set.
"""

from __future__ import annotations

import argparse
from typing import Any

from combiners import COMBINERS
from ensembles import EnsembleClassifier
from experiments.train_member import StudyDataModule
from members import NeuralClassifier


def evaluate(
    checkpoints: list[str], source: str = "mnist1d", combiner: str = "mean", seed: int = 0
) -> Any:
    """The ``evaluate`` table (one row per checkpoint and one for the ensemble) on test data."""
    data = StudyDataModule(source=source, seed=seed)
    classes = sorted(set(data.data.y_train.tolist()))
    members = [
        (f"ckpt{i}", NeuralClassifier.from_checkpoint(path, classes=classes))
        for i, path in enumerate(checkpoints)
    ]
    val = data.val_index
    ensemble = EnsembleClassifier(members, combiner=COMBINERS[combiner](), cv="prefit")
    ensemble.fit(data.data.X_train[val], data.data.y_train[val])
    return ensemble.evaluate(data.data.X_test, data.data.y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help=".ckpt files from train_member.py")
    parser.add_argument("--source", default="mnist1d", help="the data the members trained on")
    parser.add_argument("--combiner", choices=sorted(COMBINERS), default="mean")
    parser.add_argument("--seed", type=int, default=0, help="the data module's split seed")
    args = parser.parse_args()
    table = evaluate(args.checkpoints, args.source, args.combiner, args.seed)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
