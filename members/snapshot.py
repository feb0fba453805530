"""``SnapshotCollector``: keep a model's weights at the end of each learning-rate cycle."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from members.schedules import cycle_ends


class SnapshotCollector(Callback):
    """Collect ``n_snapshots`` copies of the weights, one at the end of each cycle.

    Cycle ends follow :func:`members.schedules.cycle_ends` over the trainer's total optimizer
    steps, the same boundaries :class:`~members.schedules.CyclicCosineSchedule` uses, so pair
    the two. Works with any LightningModule and a plain :class:`lightning.Trainer`; the
    snapshots are saved in and restored from Lightning checkpoints.

    Parameters
    ----------
    n_snapshots : int
        Copies to collect, one per cycle.
    warmup_fraction : float, default=0.0
        Share of the steps before the first cycle starts (fast geometric ensembling).

    Attributes
    ----------
    snapshots : list of dict
        ``state_dict`` copies on the CPU, oldest first.

    Examples
    --------
    >>> import lightning as L, torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from members import MLP, MemberModule, CyclicCosineSchedule
    >>> module = MemberModule(MLP(4, 2, hidden=(8,)), scheduler=CyclicCosineSchedule(3))
    >>> collector = SnapshotCollector(3)
    >>> data = TensorDataset(torch.randn(60, 4), torch.randint(0, 2, (60,)))
    >>> trainer = L.Trainer(max_epochs=6, callbacks=[collector], logger=False,
    ...                     enable_progress_bar=False, enable_model_summary=False,
    ...                     enable_checkpointing=False)
    >>> trainer.fit(module, DataLoader(data, batch_size=20))
    >>> len(collector.snapshots)
    3
    """

    def __init__(self, n_snapshots: int, warmup_fraction: float = 0.0) -> None:
        if n_snapshots < 1:
            raise ValueError(f"n_snapshots must be >= 1; got {n_snapshots}")
        self.n_snapshots = n_snapshots
        self.warmup_fraction = warmup_fraction
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self._ends: set[int] = set()

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = int(trainer.estimated_stepping_batches)
        self._ends = set(cycle_ends(total, self.n_snapshots, self.warmup_fraction))

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.global_step in self._ends and len(self.snapshots) < len(self._ends):
            self.snapshots.append(
                {
                    name: value.detach().cpu().clone()
                    for name, value in pl_module.state_dict().items()
                }
            )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": self.snapshots}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.snapshots = list(state_dict["snapshots"])
