"""MemberModule works in a user's own Lightning script."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from members import MLP, MemberModule


def _trainer(**kwargs):
    return L.Trainer(
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
        **kwargs,
    )


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("scheduler", ["cosine", "constant"])
def test_plain_trainer_lowers_classification_loss(optimizer, scheduler):
    torch.manual_seed(0)
    X = torch.randn(256, 6)
    y = (X[:, 0] > 0).long()
    module = MemberModule(
        MLP(6, 2, hidden=(16,)), optimizer=optimizer, lr=1e-2, scheduler=scheduler
    )
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    before = module.loss(module(X), y).item()
    trainer = _trainer()
    trainer.fit(module, loader, val_dataloaders=DataLoader(TensorDataset(X, y), batch_size=64))
    after = module.loss(module(X), y).item()
    assert after < before
    assert {"train_loss", "val_loss", "val_acc"} <= set(trainer.logged_metrics)


def test_regression_task_and_cosine_schedule_reaches_zero():
    torch.manual_seed(0)
    X = torch.randn(64, 3)
    y = X.sum(dim=1, keepdim=True)
    module = MemberModule(MLP(3, 1, hidden=(8,)), task="regression", lr=1e-2)
    before = module.loss(module(X), y).item()
    trainer = _trainer()
    trainer.fit(module, DataLoader(TensorDataset(X, y), batch_size=16))
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    # the logged loss is the MSE of the last epoch: training lowered it
    assert trainer.callback_metrics["train_loss"].item() < 0.9 * before
    assert module.loss(module(X), y).item() < 0.9 * before


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "ranking"}, r"'task' parameter of MemberModule .* Got 'ranking' instead"),
        ({"optimizer": "lbfgs"}, r"'optimizer' parameter of MemberModule .* Got 'lbfgs' "),
        ({"scheduler": "step"}, r"'scheduler' .* or a callable\. Got 'step' instead"),
        ({"lr": 0.0}, r"'lr' parameter of MemberModule .* \(0.0, inf\)\. Got 0.0 instead"),
    ],
)
def test_bad_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MemberModule(MLP(2, 2), **kwargs)


def test_sgd_has_momentum_and_l1_is_a_hyperparameter():
    module = MemberModule(MLP(6, 2, hidden=(4,)), optimizer="sgd", l1=0.1)
    trainer = _trainer()
    trainer.fit(
        module,
        DataLoader(TensorDataset(torch.randn(32, 6), torch.randint(0, 2, (32,))), batch_size=16),
    )
    [optimizer] = trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    assert module.hparams["l1"] == 0.1


def test_gaussian_loss_is_the_gaussian_nll_and_regression_only():
    from members.module import VARIANCE_FLOOR, gaussian_parts

    module = MemberModule(torch.nn.Linear(3, 2), task="regression", loss="gaussian")
    output = torch.tensor([[0.5, -1.0], [2.0, 3.0]])
    y = torch.tensor([[1.0], [0.0]])
    mean, variance = gaussian_parts(output)
    assert torch.allclose(variance, torch.nn.functional.softplus(output[:, 1:]) + VARIANCE_FLOOR)
    expected = (0.5 * (torch.log(2 * torch.pi * variance) + (y - mean) ** 2 / variance)).mean()
    assert torch.allclose(module.loss(output, y), expected)
    with pytest.raises(ValueError, match="regression loss"):
        MemberModule(torch.nn.Linear(3, 2), task="classification", loss="gaussian")
