"""``MemberModule``: the LightningModule that trains one member network."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from numbers import Real
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from typing_extensions import override

from members.params import Interval, StrOptions, check_params

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    # plain SGD barely trains these networks in 40 epochs; momentum is what users mean by it
    "sgd": functools.partial(torch.optim.SGD, momentum=0.9),
    "rmsprop": torch.optim.RMSprop,
}
SCHEDULERS = ("cosine", "constant")
TASKS = ("classification", "regression")
# Regression losses: "mse" fits a mean; "gaussian" a mean and a variance per output (the
# network's outputs are the means, then the raw variances; see gaussian_parts).
LOSSES = ("mse", "gaussian")
# The smallest variance a Gaussian head predicts, in the network's (standardised) target units:
# it keeps the NLL finite where a network would otherwise shrink a variance to zero.
VARIANCE_FLOOR = 1e-6
# A run has diverged when an epoch's mean loss exceeds this many times its first batch's loss
# (at least 1): no healthy run climbs four orders of magnitude above its untrained start, while
# exploding runs reach 1e10 and beyond with the loss still finite.
DIVERGENCE_FACTOR = 1e4
# after training, the loss of the last batch under the final weights against the first batch's:
# a healthy run ends below its start; one that ends 10x above it (or above 10 when it started
# below 1) diverged in its last steps, which no epoch's mean shows (one step on small data)
END_DIVERGENCE_FACTOR = 10.0
SchedulerFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]


MODULE_CONSTRAINTS: dict[str, list[Any]] = {
    "task": [StrOptions(set(TASKS))],
    "loss": [StrOptions(set(LOSSES)), None],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "l1": [Interval(Real, 0, None, closed="left")],
    "scheduler": [StrOptions(set(SCHEDULERS)), callable],
}


class MemberModule(L.LightningModule):
    """Train any backbone with a plain :class:`lightning.Trainer`.

    Batches are ``(x, y)``, or ``(x, y, weight)`` for a weighted fit (the loss is then the
    weighted mean over the batch's rows, see :meth:`loss`). Classification uses cross-entropy
    on integer labels ``y``; regression uses mean squared error on float targets of shape
    ``(batch, n_outputs)``, or the Gaussian negative log-likelihood with ``loss="gaussian"``.

    Parameters
    ----------
    backbone : nn.Module
        Maps ``(batch, n_features)`` to ``(batch, n_outputs)`` logits or predictions.
    task : {"classification", "regression"}, default="classification"
        What the outputs are: logits of classes, or predictions.
    loss : {None, "mse", "gaussian"}, default=None
        Regression only. ``None`` or ``"mse"``: mean squared error. ``"gaussian"``: the backbone
        gives ``2 * n_outputs`` columns, the means then the raw variances, and learns the
        Gaussian NLL (Lakshminarayanan et al., 2017); see :func:`gaussian_parts`.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adamw"
        ``"sgd"`` is SGD with momentum 0.9.
    lr : float, default=3e-3
        Peak learning rate.
    weight_decay : float, default=1e-2
        L2 penalty (decoupled for ``"adamw"``).
    scheduler : {"cosine", "constant"} or callable, default="cosine"
        ``"cosine"``: annealing from ``lr`` to 0 over all training steps, stepped every batch.
        A callable ``f(optimizer, total_steps) -> LRScheduler`` (e.g.
        :class:`~members.schedules.CyclicCosineSchedule`) is also stepped every batch.
    l1 : float, default=0.0
        Adds ``l1 * sum(|w|)`` over the weights to the loss (sparse weights).

    Examples
    --------
    >>> import lightning as L, torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    >>> module = MemberModule(torch.nn.Linear(4, 2))
    >>> trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False,
    ...                     enable_model_summary=False, enable_checkpointing=False)
    >>> trainer.fit(module, DataLoader(data, batch_size=16))
    >>> module(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """

    # constructor arguments that are objects, not settings: never written to a checkpoint
    not_hyperparameters: ClassVar[tuple[str, ...]] = ("backbone", "scheduler")

    def __init__(
        self,
        backbone: nn.Module,
        *,
        task: str = "classification",
        loss: str | None = None,
        optimizer: str = "adamw",
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        scheduler: str | SchedulerFactory = "cosine",
        l1: float = 0.0,
    ) -> None:
        super().__init__()
        if task == "classification" and loss not in (None, "mse"):
            raise ValueError(
                f"loss={loss!r} is a regression loss; classification learns cross-entropy "
                "(leave loss=None)"
            )
        check_params(
            type(self).__name__,
            MODULE_CONSTRAINTS,
            task=task,
            loss=loss,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            scheduler=scheduler,
            l1=l1,
        )
        self.save_hyperparameters(ignore=list(self.not_hyperparameters))
        self.scheduler = scheduler
        self.backbone = backbone

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def loss(
        self, output: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The batch's mean loss.

        With ``weight`` (one per row), the weighted mean ``sum(w * loss) / sum(w)``, so that a row
        of weight 2 counts as that row twice.

        Parameters
        ----------
        output : Tensor of shape (batch, n_outputs)
            The network's logits or predictions.
        y : Tensor of shape (batch,) or (batch, n_outputs)
            Encoded targets: class indices, or standardised regression targets.
        weight : Tensor of shape (batch,), default=None
            Each row's weight.

        Returns
        -------
        Tensor
            A scalar.
        """
        if weight is not None:
            return weighted_mean(self.sample_losses(output, y), weight)
        if self.hparams["task"] == "classification":
            return F.cross_entropy(output, y)
        if self.hparams.get("loss") == "gaussian":
            mean, variance = gaussian_parts(output)
            return F.gaussian_nll_loss(mean, y.reshape(mean.shape), variance, full=True)
        return F.mse_loss(output, y.reshape(output.shape))

    def sample_losses(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each row's loss.

        Cross-entropy; or the squared error or Gaussian NLL averaged over the outputs. Leading
        axes (the batched engine's member axis) are kept.

        Parameters
        ----------
        output : Tensor of shape (..., batch, n_outputs)
            The network's logits or predictions.
        y : Tensor of shape (..., batch) or (..., batch, n_outputs)
            Encoded targets.

        Returns
        -------
        Tensor of shape (..., batch)
            One loss per row.
        """
        if self.hparams["task"] == "classification":
            losses = F.cross_entropy(output.flatten(0, -2), y.flatten(), reduction="none")
            return losses.view(y.shape)
        if self.hparams.get("loss") == "gaussian":
            mean, variance = gaussian_parts(output)
            nll = F.gaussian_nll_loss(
                mean, y.reshape(mean.shape), variance, full=True, reduction="none"
            )
            return nll.mean(dim=-1)
        return ((output - y.reshape(output.shape)) ** 2).mean(dim=-1)

    # a weight is a parameter with this many dimensions or more (biases and norm scales have 1)
    weight_ndim = 2

    def penalty(self) -> torch.Tensor | float:
        """The L1 penalty: ``l1`` times the sum of the absolute weights.

        Biases and normalisation scales are left alone, as ``weight_decay`` does in
        scikit-learn's MLP.

        Returns
        -------
        Tensor or float
            The penalty; 0 without ``l1``.
        """
        l1 = self.hparams.get("l1", 0.0)
        if not l1:
            return 0.0
        weights = [p for p in self.parameters() if p.ndim >= self.weight_ndim]
        return l1 * sum(p.abs().sum() for p in weights)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, *weight = batch  # a weighted fit's batches carry each row's weight last
        loss = self.loss(self(x), y, *weight) + self.penalty()
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    @override
    def on_train_start(self) -> None:
        self._first_loss: torch.Tensor | None = None
        self._last_batch: Any = None

    @override
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._last_batch = batch  # a reference; read once at the end (on_train_end)

    @override
    def on_train_end(self) -> None:
        batch, self._last_batch = getattr(self, "_last_batch", None), None
        if batch is None or getattr(self, "_first_loss", None) is None:
            return
        losses = self.final_losses(batch)
        if losses is not None:
            self.check_divergence(
                losses,
                self.member_names(),
                factor=END_DIVERGENCE_FACTOR,
                when="on the last batch under the final weights",
            )

    def final_losses(self, batch: Any) -> torch.Tensor | None:
        """The loss of each member on ``batch`` under the final weights, as training weighs it.

        The rows' weights count as in training, so that it compares with the first batch's; dropout
        is off and batch-norm statistics are left as they are.

        Parameters
        ----------
        batch : tuple of Tensor
            A training batch, ``(x, y)`` or ``(x, y, weight)``.

        Returns
        -------
        Tensor of shape (n_members,) or None
            One loss per member (one for a single network); ``None``: not checked.
        """
        x, y, *weight = batch
        with self.evaluating():
            return self.loss(self(x), y, *weight).reshape(-1)

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Dropout off and no gradients for a check, the module's mode restored after.

        Yields
        ------
        None
        """
        training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(training)

    def member_names(self) -> list[str] | None:
        """Names of the members this module trains, for messages.

        Returns
        -------
        list of str or None
            ``None`` for one network.
        """
        return None

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if getattr(self, "_first_loss", None) is None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            # the loss of the untrained network, kept on the device (no synchronisation)
            self._first_loss = loss.detach().reshape(-1)

    @override
    def on_train_epoch_end(self) -> None:
        # Checked once per epoch, which costs no per-step device synchronisation: the epoch's
        # mean loss is non-finite as soon as one step was, and explodes with the weights.
        loss = self.trainer.callback_metrics.get("train_loss")
        if loss is not None:
            self.check_divergence(loss.reshape(-1))

    def check_divergence(
        self,
        losses: torch.Tensor,
        names: list[str] | None = None,
        *,
        factor: float = DIVERGENCE_FACTOR,
        when: str | None = None,
    ) -> None:
        """Raise ``FloatingPointError`` when training diverged.

        That is when an epoch's mean loss (one per member) is not finite, or is ``factor``
        times its first batch's (at least ``factor``), or when a weight is not finite.

        Parameters
        ----------
        losses : Tensor of shape (n_members,)
            The epoch's mean loss of each member (one for a single network), or the loss of
            the last batch after training (:meth:`on_train_end`).
        names : list of str, optional
            Which member each loss is, for the message (none for one network).
        factor : float, default=DIVERGENCE_FACTOR
            How far above the first batch's loss a loss counts as diverged.
        when : str, optional
            When the losses were measured, for the message (default: the current epoch).
        """
        losses = losses.detach().cpu().double()
        first = getattr(self, "_first_loss", None)
        limit = (
            torch.full_like(losses, float("inf"))
            if first is None
            else factor * first.detach().cpu().double().clamp_min(1.0)
        )
        bad = (~torch.isfinite(losses)) | (losses > limit)
        if not bad.any() and not all(torch.isfinite(p).all() for p in self.parameters()):
            bad = torch.ones_like(bad)
        if not bad.any():
            return
        index = int(torch.nonzero(bad).flatten()[0])
        who = (
            ""
            if names is None
            else f"of {', '.join(names[i] for i in torch.nonzero(bad).flatten().tolist())} "
        )
        start = (
            "" if first is None else f", from {first.reshape(-1)[index].item():.4g} at the start"
        )
        raise FloatingPointError(
            f"training diverged: the loss {who}became {losses[index].item():.4g} "
            f"{when or f'in epoch {self.current_epoch}'}{start}; lower the learning rate "
            f"(lr={self.hparams['lr']}) or standardise the inputs"
        )

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, *weight = batch
        output = self(x)
        self.log("val_loss", self.loss(output, y, *weight), prog_bar=True, batch_size=len(x))
        if self.hparams["task"] == "classification":
            accuracy = (output.argmax(dim=1) == y).float().mean()
            self.log("val_acc", accuracy, prog_bar=True, batch_size=len(x))

    @override
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = OPTIMIZERS[hp["optimizer"]](
            self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"]
        )
        if self.scheduler == "constant":
            return optimizer
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        if callable(self.scheduler):
            scheduler = self.scheduler(optimizer, total_steps)
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class BatchedMemberModule(MemberModule):
    """A :class:`MemberModule` over :class:`~members.StackedNetworks`.

    Batches are ``(x, y)`` with a leading member axis, and the loss is the sum of the members'
    own losses. :class:`~members.subnetworks.SubNetworkModule` trains the sub-networks of one
    network the same way (its :meth:`batch_losses` differs).

    A member whose loss stops being finite fails the fit with a ``FloatingPointError`` that
    names it (``names``, default ``member 0 .. M-1``).

    Parameters
    ----------
    backbone : StackedNetworks
        The members' networks, stacked.
    names : sequence of str, optional
        The members' names, for error messages.
    **settings
        The other arguments of :class:`MemberModule` (task, loss, optimizer, lr, ...).

    Examples
    --------
    >>> import torch
    >>> from members import MLP, StackedNetworks
    >>> stacked = StackedNetworks([MLP(4, 3, hidden=(8,)) for _ in range(2)])
    >>> module = BatchedMemberModule(stacked, names=["a", "b"], task="classification")
    >>> module.backbone(torch.zeros(2, 5, 4)).shape  # (members, rows, outputs)
    torch.Size([2, 5, 3])
    """

    # stacked parameters carry the member axis first: a weight has 3 dimensions or more
    weight_ndim = 3

    def __init__(
        self, backbone: nn.Module, *, names: Sequence[str] | None = None, **settings: Any
    ) -> None:
        super().__init__(backbone, **settings)
        self.n_members: int = backbone.n_members  # type: ignore[assignment]
        self.names = list(names) if names is not None else None
        self._epoch_loss: torch.Tensor | None = None

    def member_losses(
        self, output: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Each member's mean loss over its batch.

        Parameters
        ----------
        output : Tensor of shape (M, batch, n_outputs)
            The stacked networks' outputs.
        y : Tensor of shape (M, batch) or (M, batch, n_outputs)
            Each member's encoded targets.
        weight : Tensor of shape (M, batch), default=None
            Each member's row weights.

        Returns
        -------
        Tensor of shape (M,)
            The (weighted) mean loss of each member.
        """
        losses = self.sample_losses(output, y)
        return losses.mean(dim=1) if weight is None else weighted_mean(losses, weight)

    @override
    def loss(
        self, output: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The sum of the members' own mean losses (what the optimizer minimises).

        Parameters
        ----------
        output : Tensor of shape (M, batch, n_outputs)
            The stacked networks' outputs.
        y : Tensor of shape (M, batch) or (M, batch, n_outputs)
            Each member's encoded targets.
        weight : Tensor of shape (M, batch), default=None
            Each member's row weights.

        Returns
        -------
        Tensor
            A scalar.
        """
        return self.member_losses(output, y, weight).sum()

    def batch_losses(self, batch: Any) -> torch.Tensor:
        """Each member's (weighted) mean loss on a training batch.

        Parameters
        ----------
        batch : tuple of Tensor
            ``(x, y)`` or ``(x, y, weight)``, each with a leading member axis.

        Returns
        -------
        Tensor of shape (M,)
            One loss per member.
        """
        x, y, *weight = batch
        return self.member_losses(self(x), y, *weight)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        losses = self.batch_losses(batch)
        detached = losses.detach()
        if getattr(self, "_first_loss", None) is None:
            self._first_loss = detached.clone()  # each member's untrained loss
        # summed on the device; read once per epoch, so no step waits for a synchronisation
        self._epoch_loss = detached if self._epoch_loss is None else self._epoch_loss + detached
        return losses.sum() + self.penalty()

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass  # the first losses are each member's, recorded in training_step

    @override
    def final_losses(self, batch: Any) -> torch.Tensor | None:
        """Each member's weighted mean loss on ``batch`` under the final weights.

        Parameters
        ----------
        batch : tuple of Tensor
            A training batch with a leading member axis, ``(x, y)`` or ``(x, y, weight)``.

        Returns
        -------
        Tensor of shape (M,)
            One loss per member.
        """
        with self.evaluating():
            return self.batch_losses(batch)

    @override
    def member_names(self) -> list[str] | None:
        """The members' names, ``member 0 .. M-1`` when none were given.

        Returns
        -------
        list of str
            One name per member.
        """
        return self.names or [f"member {i}" for i in range(self.n_members)]

    @override
    def on_train_epoch_start(self) -> None:
        self._epoch_loss = None

    @override
    def on_train_epoch_end(self) -> None:
        if self._epoch_loss is None:
            return
        mean = (self._epoch_loss / self.trainer.num_training_batches).cpu()
        self.log("train_loss", mean.mean())
        self.check_divergence(mean, self.member_names())


def weighted_mean(losses: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum(w * loss) / sum(w)`` over the last axis (the rows), one value per leading index.

    Examples
    --------
    >>> weighted_mean(torch.tensor([1.0, 4.0]), torch.tensor([2.0, 1.0])).item()
    2.0
    """
    weight = weight.to(losses.dtype)
    return (weight * losses).sum(dim=-1) / weight.sum(dim=-1)


def gaussian_parts(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a Gaussian head's output ``(..., 2 * n_outputs)`` into means and variances, each
    ``(..., n_outputs)``: the variance is ``softplus(raw) + VARIANCE_FLOOR``, positive and smooth.

    Examples
    --------
    >>> mean, variance = gaussian_parts(torch.tensor([[1.0, 0.0]]))
    >>> mean.tolist(), round(variance.item(), 4)
    ([[1.0]], 0.6931)
    """
    mean, raw = output.chunk(2, dim=-1)
    return mean, F.softplus(raw) + VARIANCE_FLOOR
