"""Train a student on a teacher: on cached soft targets (:class:`DistillationModule`, Hinton et
al., 2015), or by function matching (:class:`FunctionMatchingModule`, Beyer et al., 2022): the
teacher labels each fresh augmented view the student sees."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from typing_extensions import override

from members.module import MemberModule, weighted_mean
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
        The student's network.
    temperature : float, default=2.0
        Softens the teacher's and the student's distributions in the KL term.
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
        self,
        output: torch.Tensor,
        y: torch.Tensor,
        teacher: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``alpha`` times the teacher term plus ``1 - alpha`` times the label term.

        The label term covers the labelled rows only; each term is a weighted mean over the rows
        with ``weight``.

        Parameters
        ----------
        output : Tensor of shape (batch, n_outputs)
            The student's logits or predictions.
        y : Tensor of shape (batch,) or (batch, n_outputs)
            Encoded targets; ``-1`` (classification) or NaN (regression) for unlabelled rows.
        teacher : Tensor of shape (batch, n_outputs)
            The teacher's probabilities (classification) or predictions.
        weight : Tensor of shape (batch,), default=None
            Each row's weight.

        Returns
        -------
        Tensor
            A scalar.
        """
        if weight is not None:
            return self._weighted_distillation_loss(output, y, teacher, weight)
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

    def teacher_losses(self, output: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Each row's teacher term.

        ``T^2 * KL(teacher_T || student_T)``, or the squared error to the teacher averaged over
        the outputs.

        Parameters
        ----------
        output : Tensor of shape (batch, n_outputs)
            The student's logits or predictions.
        teacher : Tensor of shape (batch, n_outputs)
            The teacher's probabilities (classification) or predictions.

        Returns
        -------
        Tensor of shape (batch,)
            One loss per row.
        """
        if self.hparams["task"] == "classification":
            t = self.temperature
            student_t = F.log_softmax(output / t, dim=1)
            teacher_t = F.softmax(torch.log(teacher.clamp_min(EPS)) / t, dim=1)
            return F.kl_div(student_t, teacher_t, reduction="none").sum(dim=1) * t * t
        return ((output - teacher.reshape(output.shape)) ** 2).mean(dim=1)

    def _weighted_distillation_loss(
        self, output: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        soft = weighted_mean(self.teacher_losses(output, teacher), weight)
        if self.hparams["task"] == "classification":
            labelled = y >= 0
        else:
            labelled = torch.isfinite(y.reshape(len(y), -1)).all(dim=1)
        if not labelled.any():
            return soft
        hard = self.loss(output[labelled], y[labelled], weight[labelled])
        return self.alpha * soft + (1 - self.alpha) * hard

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, teacher, *weight = batch  # a weighted fit's batches carry each row's weight
        loss = self.distillation_loss(self(x), y, teacher, *weight) + self.penalty()
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    @override
    def final_losses(self, batch: Any) -> torch.Tensor | None:
        """The teacher term on ``batch`` under the final weights.

        Parameters
        ----------
        batch : tuple of Tensor
            A training batch, ``(x, y, teacher)`` or ``(x, y, teacher, weight)``.

        Returns
        -------
        Tensor of shape (1,)
            The mean teacher loss.
        """
        x, _, teacher, *_ = batch
        with self.evaluating():
            return self.teacher_losses(self(x), teacher).mean().reshape(-1)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Log how close the student is to the teacher on held-out rows.

        Validation batches are ``(x, teacher)`` (and weights): the teacher's outputs on
        held-out rows. ``val_teacher_loss`` is KL(teacher || student) at temperature 1 (MSE
        for regression), ``val_agreement`` the share of matching top classes.

        Parameters
        ----------
        batch : tuple of Tensor
            ``(x, teacher)`` or ``(x, teacher, weight)``.
        batch_idx : int
            The batch's index in the epoch (Lightning's argument).
        """
        x, teacher, *weight = batch
        output = self(x)
        if self.hparams["task"] == "classification":
            log_student = F.log_softmax(output, dim=1)
            log_teacher = teacher.clamp_min(EPS).log()
            if weight:
                gaps = F.kl_div(log_student, log_teacher, reduction="none", log_target=True)
                gap = weighted_mean(gaps.sum(dim=1), weight[0])
            else:
                gap = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
            agreement = (output.argmax(dim=1) == teacher.argmax(dim=1)).float().mean()
            self.log("val_agreement", agreement, prog_bar=True, batch_size=len(x))
        elif weight:
            gaps = ((output - teacher.reshape(output.shape)) ** 2).mean(dim=1)
            gap = weighted_mean(gaps, weight[0])
        else:
            gap = F.mse_loss(output, teacher.reshape(output.shape))
        self.log("val_teacher_loss", gap, prog_bar=True, batch_size=len(x))


class FunctionMatchingModule(DistillationModule):
    """Distillation by function matching: each step, the teacher labels the view the student sees.

    Batches are ``(x, y)``: the student's (scaled) inputs and labels (``-1`` / NaN where there
    are none). Each step undoes the scaling, draws a fresh view of the rows with ``augment``,
    asks ``teacher`` for its outputs on that view (in the student's target encoding:
    probabilities, or scaled predictions), and trains the student on the same view with the
    teacher term of :class:`DistillationModule`. With ``alpha < 1`` the labels add
    ``(1 - alpha)`` times the usual loss on the rows as they are (one more forward pass).

    Validation batches are ``(x, teacher)``, the teacher's outputs on held-out rows, computed
    once: ``val_teacher_loss`` is KL(teacher || student) at temperature 1 (MSE for regression),
    and ``val_agreement`` the share of rows where both pick the same class.

    Parameters
    ----------
    backbone : nn.Module
    teacher : callable
        ``teacher(rows)``: numpy float32 raw rows ``(batch, n_features)`` to the teacher's
        outputs ``(batch, n_outputs)``. Called without gradients; never saved.
    augment : callable, optional
        ``augment(rows, generator)``: views of a tensor of raw rows
        (:class:`~members.augment.Augmentation`); ``None``: the rows as they are.
    x_mean, x_scale : ndarray of shape (n_features,), optional
        The student's input scaling; ``None``: inputs are not scaled.
    temperature : float, default=1.0
    alpha : float, default=1.0
        Weight of the teacher term.
    **kwargs
        Passed to :class:`MemberModule`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> teacher = lambda rows: np.full((len(rows), 2), 0.5, dtype=np.float32)
    >>> module = FunctionMatchingModule(torch.nn.Linear(3, 2), teacher=teacher)
    >>> module.teacher_targets(torch.zeros(4, 3)).shape
    torch.Size([4, 2])
    """

    not_hyperparameters = (
        *MemberModule.not_hyperparameters,
        "teacher",
        "augment",
        "x_mean",
        "x_scale",
    )

    def __init__(
        self,
        backbone: nn.Module,
        *,
        teacher: Callable[[np.ndarray], np.ndarray],
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        x_mean: np.ndarray | None = None,
        x_scale: np.ndarray | None = None,
        temperature: float = 1.0,
        alpha: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, temperature=temperature, alpha=alpha, **kwargs)
        self.teacher = teacher
        self.augment = augment
        self.x_mean = None if x_mean is None else torch.as_tensor(x_mean, dtype=torch.float32)
        self.x_scale = None if x_scale is None else torch.as_tensor(x_scale, dtype=torch.float32)
        self.views: torch.Generator | None = None

    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        if self.x_mean is None or self.x_scale is None:
            return x
        return x * self.x_scale.to(x) + self.x_mean.to(x)

    def _scaled(self, raw: torch.Tensor) -> torch.Tensor:
        if self.x_mean is None or self.x_scale is None:
            return raw
        return (raw - self.x_mean.to(raw)) / self.x_scale.to(raw)

    def teacher_targets(self, raw: torch.Tensor) -> torch.Tensor:
        """The teacher's outputs on raw rows, as a float32 tensor beside ``raw``."""
        rows = raw.detach().cpu().numpy().astype(np.float32, copy=False)
        return torch.as_tensor(np.asarray(self.teacher(rows)), dtype=torch.float32).to(raw.device)

    @override
    def final_losses(self, batch: Any) -> torch.Tensor | None:
        """The teacher term on the rows of ``batch`` as given (no view) under the final weights.

        Parameters
        ----------
        batch : tuple of Tensor
            A training batch, ``(x, y)`` or ``(x, y, weight)``.

        Returns
        -------
        Tensor of shape (1,)
            The mean teacher loss.
        """
        raw = self._raw(batch[0])  # the rows as given, not a view: no generator draw
        with self.evaluating():
            return (
                self.teacher_losses(self(self._scaled(raw)), self.teacher_targets(raw))
                .mean()
                .reshape(-1)
            )

    @override
    def on_train_start(self) -> None:
        super().on_train_start()
        # the views follow the run's seed (train_network seeds torch before training)
        self.views = torch.Generator().manual_seed(int(torch.randint(2**31 - 1, ())))

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, *weight = batch  # a view is weighted as the row it is drawn from
        raw = self._raw(x)
        if self.augment is not None:
            assert self.views is not None  # made in on_train_start
            raw = self.augment(raw.cpu(), self.views).to(x.device)
        view = self._scaled(raw)
        teacher = self.teacher_targets(raw)
        unlabelled = (
            torch.full_like(y, -1)
            if self.hparams["task"] == "classification"
            else torch.full_like(y, float("nan"))
        )
        loss = self.distillation_loss(self(view), unlabelled, teacher, *weight) + self.penalty()
        if self.alpha < 1:
            labelled = (y >= 0) if y.dtype == torch.long else torch.isfinite(y).all(dim=-1)
            if labelled.any():
                hard = self.loss(self(x[labelled]), y[labelled], *(w[labelled] for w in weight))
                loss = self.alpha * loss + (1 - self.alpha) * hard
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss


DISTILLATION_CONSTRAINTS: dict[str, list[Any]] = {
    "temperature": [Interval(Real, 0, None, closed="neither")],
    "alpha": [Interval(Real, 0, 1, closed="both")],
}


def check_distillation(temperature: float, alpha: float, caller: str = "distillation") -> None:
    """Clear errors for a temperature that is not positive or an alpha outside [0, 1]."""
    check_params(caller, DISTILLATION_CONSTRAINTS, temperature=temperature, alpha=alpha)
