"""Train one member with LightningCLI: ``MemberModule`` over any backbone, on any study data.

    python experiments/train_member.py fit --config experiments/configs/member_cnn1d.yaml
    python experiments/train_member.py fit --config experiments/configs/member_cnn1d.yaml \\
        --trainer.max_epochs=1 --seed_everything=1

Every Trainer, model and data option can be set in the YAML file or on the command line
(``--help`` lists them). The checkpoint lands under ``trainer.default_root_dir``; build an
ensemble from several with ``experiments/ensemble_from_checkpoints.py``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.cli import LightningCLI

from experiments.data import load_dataset
from members import MemberModule
from members.data import make_loader


class StudyDataModule(L.LightningDataModule):
    """A study data source (``mnist1d``, a scikit-learn set, a ``.npz``/``.csv`` file) as
    Lightning loaders: training, a validation split of it, and the test set.

    Inputs are passed as they are (no standardisation), so a checkpoint's network takes the
    raw features, as ``NeuralClassifier.from_checkpoint`` expects.
    """

    def __init__(
        self,
        source: str = "mnist1d",
        target: str | None = None,
        test_size: float = 0.2,
        validation_size: float = 0.1,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.data = load_dataset(source, target=target, test_size=test_size, seed=seed)
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.data.y_train))
        n_val = int(round(validation_size * len(order)))
        self.val_index, self.train_index = order[:n_val], order[n_val:]

    def _targets(self, y: np.ndarray) -> np.ndarray:
        if self.data.task == "classification":
            return np.searchsorted(np.unique(self.data.y_train), y)
        return np.asarray(y, dtype=np.float32).reshape(len(y), -1)

    def _loader(self, X: np.ndarray, y: np.ndarray) -> Any:
        return make_loader(
            X, self._targets(y), batch_size=self.hparams["batch_size"], seed=self.hparams["seed"]
        )

    def train_dataloader(self) -> Any:
        train = self.train_index
        return self._loader(self.data.X_train[train], self.data.y_train[train])

    def val_dataloader(self) -> Any:
        return self._loader(self.data.X_train[self.val_index], self.data.y_train[self.val_index])

    def test_dataloader(self) -> Any:
        return self._loader(self.data.X_test, self.data.y_test)


def main() -> None:
    LightningCLI(MemberModule, StudyDataModule, seed_everything_default=0)


if __name__ == "__main__":
    main()
