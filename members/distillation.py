"""``DistillationModule``: train a student on a teacher's soft targets (Hinton et al., 2015)."""

from __future__ import annotations

from numbers import Real
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from typing_extensions import override

from members.module import MemberModule
from members.params import Interval, check_params

EPS = 1e-12


class DistillationModule(MemberModule):
    """A :class:`MemberModule` whose batches are ``(x, y, teacher)``.

    Classification: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, y)``,
    where ``teacher`` holds probabilities, ``teacher_T = softmax(log(teacher) / T)`` and
    ``student_T = softmax(logits / T)``. Rows with ``y < 0`` (unlabelled, e.g. augmented) add
    to the first term only. Regression: ``alpha * MSE(student, teacher) + (1 - alpha) *
    MSE(student, y)``, rows with a NaN ``y`` adding to the first term only. The module knows
    nothing about where the teacher came from.

    Parameters
    ----------
    backbone : nn.Module
    temperature : float, default=2.0
    alpha : float, default=0.9
        Weight of the teacher term.
    **kwargs
        Passed to :class:`MemberModule` (task, optimizer, lr, weight_decay, scheduler).

    Examples
    --------
    >>> import torch
    >>> module = DistillationModule(torch.nn.Linear(3, 2), temperature=2.0, alpha=0.5)
    >>> x, y = torch.randn(4, 3), torch.tensor([0, 1, -1, -1])
    >>> teacher = torch.softmax(torch.randn(4, 2), dim=1)
    >>> module.distillation_loss(module(x), y, teacher).shape
    torch.Size([])
    """

    def __init__(
        self, backbone: nn.Module, *, temperature: float = 2.0, alpha: float = 0.9, **kwargs: Any
    ) -> None:
        check_distillation(temperature, alpha)
        super().__init__(backbone, **kwargs)
        self.temperature = temperature
        self.alpha = alpha

    def distillation_loss(
        self, output: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor
    ) -> torch.Tensor:
        if self.hparams["task"] == "classification":
            t = self.temperature
            student_t = F.log_softmax(output / t, dim=1)
            teacher_t = F.softmax(torch.log(teacher.clamp_min(EPS)) / t, dim=1)
            soft = F.kl_div(student_t, teacher_t, reduction="batchmean") * t * t
            labelled = y >= 0
            hard = F.cross_entropy(output[labelled], y[labelled]) if labelled.any() else None
        else:
            soft = F.mse_loss(output, teacher)
            labelled = torch.isfinite(y.reshape(len(y), -1)).all(dim=1)
            hard = (
                F.mse_loss(output[labelled], y.reshape(output.shape)[labelled])
                if labelled.any()
                else None
            )
        if hard is None:
            return soft
        return self.alpha * soft + (1 - self.alpha) * hard

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, teacher = batch
        loss = self.distillation_loss(self(x), y, teacher)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss


DISTILLATION_CONSTRAINTS: dict[str, list[Any]] = {
    "temperature": [Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, 1, closed="both")],
}


def check_distillation(temperature: float, alpha: float, caller: str = "distillation") -> None:
    """Clear errors for a temperature that is not positive or an alpha outside [0, 1]."""
    check_params(caller, DISTILLATION_CONSTRAINTS, temperature=temperature, alpha=alpha)
