"""SnapshotCollector in a user's own Lightning script (issue 4, point 2)."""

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from members import CyclicCosineSchedule, SnapshotCollector


class UserModule(L.LightningModule):
    """Written the way a user would: no MemberModule, its own optimizer and loss."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        total = self.trainer.estimated_stepping_batches
        scheduler = CyclicCosineSchedule(4)(optimizer, total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _fit(tmp_path, collector, max_epochs=8):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(100, 4), torch.randint(0, 2, (100,)))
    module = UserModule()
    trainer = L.Trainer(
        max_epochs=max_epochs,
        callbacks=[collector],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        accelerator="cpu",
    )
    trainer.fit(module, DataLoader(data, batch_size=25))  # 4 steps an epoch, 32 in all
    return module, trainer


def test_collects_one_snapshot_per_cycle_with_a_user_module(tmp_path):
    collector = SnapshotCollector(4)
    module, _ = _fit(tmp_path, collector)
    assert len(collector.snapshots) == 4
    final = module.state_dict()
    for name, value in collector.snapshots[-1].items():
        torch.testing.assert_close(value, final[name])  # the last cycle ends with training
    first, second = collector.snapshots[0], collector.snapshots[1]
    assert not torch.equal(first["net.0.weight"], second["net.0.weight"])


def test_snapshots_travel_with_lightning_checkpoints(tmp_path):
    collector = SnapshotCollector(4)
    _, trainer = _fit(tmp_path, collector)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if "SnapshotCollector" in k]
    restored = SnapshotCollector(4)
    restored.load_state_dict(state)
    assert len(restored.snapshots) == 4
    torch.testing.assert_close(restored.snapshots[2], collector.snapshots[2])


def test_bad_snapshot_count():
    with pytest.raises(ValueError, match="n_snapshots must be >= 1; got 0"):
        SnapshotCollector(0)
