"""The training seam: the one recipe that trains a neural estimator's network.

Every path that trains a network (:meth:`NeuralClassifier.fit`, ``fit_distill``,
:func:`members.fit_batched` and the fine-tune in :func:`members.compress`) goes through here:

1. the estimator turns ``(X, y)`` into a :class:`TrainingPlan`, a value (``plan_fit``,
   ``plan_finetune``, or ``plan_distill`` with the teacher's outputs as targets too):
   parameters checked, data validated, the input scaling and target encoding fitted (or, for
   a fine-tune, only applied), the seed drawn and the bootstrap rows chosen; the plan carries
   the trainer's settings (:class:`TrainerSettings`) and the network to build
   (:class:`~members.registry.NetworkSpec`), not the estimator;
2. the plan builds the network (:meth:`TrainingPlan.build_network`) and the Lightning module
   (:meth:`TrainingPlan.module`) under the member's seed (:func:`seeded`);
3. :func:`build_trainer`, the only place a :class:`lightning.Trainer` is made for a member,
   trains it (:meth:`TrainingPlan.run`);
4. the run's result, a :class:`Trained` value, goes back to the estimator (its ``accept``).

So every way of training a network is ``estimator.accept(train_network(estimator.plan_*(...)))``:
:func:`train_network` is steps 2 and 3 for one network; the batched engine does step 2 for each
of its members and step 3 once for all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.utilities.seed import isolate_rng
from torch import nn
from torch.utils.data import DataLoader
from typing_extensions import override

from members.data import make_loader, split_rows, standardize
from members.distillation import DistillationModule, FunctionMatchingModule
from members.module import MemberModule
from members.registry import NetworkSpec
from members.subnetworks import SubNetworkModule, SubNetworks
from members.trainer import build_trainer, keyboard_interrupts, quiet_lightning


def forget_fit(estimator: Any) -> None:
    """Remove the fitted attributes of an earlier fit (scikit-learn's trailing underscore), so
    that nothing from it survives a refit that would not set it again."""
    for name in [name for name in vars(estimator) if name.endswith("_") and name[0] != "_"]:
        delattr(estimator, name)


# seeds drawn for members, splits and students are below this bound (a 32-bit seed)
SEED_BOUND = np.iinfo(np.int32).max


def draw_seed(rng: np.random.RandomState) -> int:
    """The next seed from ``rng``: how every random draw of the library turns a
    ``random_state`` into a seed for one member, split or run.

    Examples
    --------
    >>> draw_seed(np.random.RandomState(0))
    209652396
    """
    return int(rng.randint(SEED_BOUND))


def draw_seeds(rng: np.random.RandomState, n: int) -> list[int]:
    """``n`` seeds from ``rng`` in one draw (the batched engine's members)."""
    return [int(seed) for seed in rng.randint(SEED_BOUND, size=n)]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generators with ``seed`` inside, and restore them afterwards."""
    with isolate_rng():
        torch.manual_seed(seed)
        yield


class BestWeights(Callback):
    """Keep the weights of the epoch with the lowest ``monitor`` in memory, and put them back
    when training ends (early stopping then returns the best student, not the last).

    Parameters
    ----------
    monitor : str, default="val_teacher_loss"

    Examples
    --------
    >>> BestWeights().best_epoch is None
    True
    """

    def __init__(self, monitor: str = "val_teacher_loss") -> None:
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    @override
    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        if self.best is None or value < self.best:
            self.best, self.best_epoch = value, trainer.current_epoch
            self._state = copy.deepcopy(pl_module.state_dict())

    @override
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._state is not None:
            pl_module.load_state_dict(self._state)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}


@dataclass(frozen=True)
class TrainerSettings:
    """The settings of a member's :class:`lightning.Trainer` and data loader (an estimator's
    parameters of the same names; see :class:`~members.NeuralClassifier`)."""

    batch_size: int = 128
    accelerator: str = "auto"
    devices: int | list[int] | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    log_dir: str | None = None
    verbose: bool = False


@dataclass(frozen=True, eq=False)
class Trained:
    """What a training run gives back: the trained ``network``, the ``epochs`` it trained
    (fewer than planned when early stopping stopped it) and the ``callbacks`` the run used."""

    network: nn.Module
    epochs: int
    callbacks: list[Callback]


@dataclass(frozen=True, eq=False)
class TrainingPlan:
    """What one training run of a network needs, computed once from its data: a value.

    Made by an estimator's ``plan_fit`` / ``plan_finetune`` / ``plan_distill``, which fit the
    input scaling and the target encoding on the estimator while planning; the plan holds
    everything the run needs (the trainer's settings, the network to build, the scaling) and
    refers to no estimator, so running it twice trains the same network twice, and what it
    trains comes back as a :class:`Trained` value (:func:`train_network`), which the
    estimator takes (``accept``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The validated inputs: every row, also those a bootstrap leaves out. :attr:`inputs`
        scales them when first asked (the batched engine asks only its first member's plan).
    targets : tuple of ndarray
        The encoded targets the module's batches carry after ``x`` (labels; and the teacher's
        outputs when distilling).
    seed : int
        Seeds the network's initialisation, the data order and dropout.
    rows : ndarray, optional
        The rows to train on (a bootstrap sample); ``None``: all of them.
    max_epochs : int
    network : NetworkSpec
        The network to build (:mod:`members.registry`).
    trainer : TrainerSettings
    scaling : tuple of ndarray, optional
        ``(mean, scale)`` of the inputs (:func:`members.data.standardize`); ``None``: none.
    settings : dict
        Arguments of :class:`MemberModule` besides the network.
    distillation : dict, optional
        ``temperature`` and ``alpha`` of a :class:`DistillationModule`; with a ``teacher``
        (and ``augment``, ``x_mean``, ``x_scale``), of a :class:`FunctionMatchingModule`.
    callbacks : list of Callback
        Fresh copies of the estimator's ``callbacks`` for this run, so that no state leaks
        from one fit into the next; the estimator keeps them as ``callbacks_``.
    validation : tuple of ndarray, optional
        ``(inputs, targets)``: scaled held-out rows and their targets (the teacher's outputs
        when distilling), and their weights last for a weighted fit. Each epoch is then
        validated, training stops once ``monitor`` has not improved for ``patience`` epochs, and
        the best epoch's weights are kept (:class:`BestWeights`).
    patience : int, optional
    monitor : str, default="val_loss"
        What the validation logs and early stopping watches (``"val_teacher_loss"`` when
        distilling).
    initial : nn.Module, optional
        A trained network of the same architecture to start from (a warm start).
    weights : ndarray of shape (n_samples,), optional
        Each row's weight in the loss (``sample_weight`` times the class weights), all
        positive; ``None``: every row counts once. A bootstrap sample (``rows``) is drawn in
        proportion to them instead, and trains unweighted.
    """

    X: np.ndarray
    targets: tuple[np.ndarray, ...]
    seed: int
    rows: np.ndarray | None
    max_epochs: int
    network: NetworkSpec
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    scaling: tuple[np.ndarray, np.ndarray] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    distillation: dict[str, Any] | None = None
    callbacks: list[Callback] = field(default_factory=list)
    validation: tuple[np.ndarray, ...] | None = None
    patience: int | None = None
    monitor: str = "val_loss"
    initial: nn.Module | None = None
    weights: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @cached_property
    def inputs(self) -> np.ndarray:
        """``X`` as the network takes it (the plan's scaling, float32)."""
        return standardize(self.X, self.scaling)

    def build_network(self) -> nn.Module:
        """A fresh, randomly initialised network (seed it with :func:`seeded`), checked to give
        one output per target column; the ``initial`` network's weights when there is one."""
        network = self.network.build()
        if self.initial is not None:
            try:
                # copies the values, in the new network's dtype
                network.load_state_dict(self.initial.state_dict())
            except RuntimeError as error:
                raise ValueError(
                    "the network to start from (init_from) does not have the student's "
                    f"architecture: {error}"
                ) from None
        return network

    def module(self, network: nn.Module) -> MemberModule:
        """The LightningModule that trains ``network`` under this plan."""
        if isinstance(network, SubNetworks):
            if self.distillation is not None:
                raise ValueError(
                    "a student must be one network; an ensemble inside one network "
                    f"({type(network).__name__}) cannot be distilled into"
                )
            return SubNetworkModule(network, **self.settings)
        if self.distillation is None:
            return MemberModule(network, **self.settings)
        if "teacher" in self.distillation:
            return FunctionMatchingModule(network, **self.distillation, **self.settings)
        return DistillationModule(network, **self.distillation, **self.settings)

    def loader(self) -> DataLoader:
        """Shuffled batches of the training rows, in the order the seed gives."""
        arrays = [self.inputs, *self.targets]
        if self.rows is not None:
            arrays = [array[self.rows] for array in arrays]
        elif self.weights is not None:
            arrays.append(self.weights)
        return make_loader(*arrays, batch_size=self.trainer.batch_size, seed=self.seed)

    @property
    def batch_weights(self) -> np.ndarray | None:
        """The weights the batches carry: :attr:`weights`, unless a bootstrap sample (drawn in
        proportion to them) replaces them."""
        return self.weights if self.rows is None else None

    def held_out(self, fraction: float, patience: int, stratify: np.ndarray | None) -> TrainingPlan:
        """This plan with a random ``fraction`` of the rows (stratified by ``stratify`` when
        every class allows it) kept for early stopping: training stops once the validation
        loss has not improved for ``patience`` epochs, and the best epoch is kept. Drawn from
        the plan's seed; a bootstrap is redrawn over the rows that remain."""
        train, held = split_rows(len(self.X), fraction, stratify, self.seed)
        weights = self.weights
        kept = None if weights is None else weights[train]
        return replace(
            self,
            X=self.X[train],
            targets=tuple(target[train] for target in self.targets),
            weights=kept,
            rows=None if self.rows is None else bootstrap_rows(self.seed, len(train), kept),
            validation=(
                standardize(self.X[held], self.scaling),
                *(target[held] for target in self.targets),
                *([] if weights is None else [weights[held]]),
            ),
            patience=patience,
            monitor="val_loss",
        )

    def run(self, module: L.LightningModule, loader: Any) -> int:
        """Train ``module`` on ``loader`` for ``max_epochs`` with :func:`build_trainer` (and,
        with ``validation``, early stopping back to the best epoch); return the number of
        epochs trained."""
        trainer_settings = self.trainer
        callbacks, held_out = list(self.callbacks), None
        if self.validation is not None:
            held_out = make_loader(
                *self.validation, batch_size=max(trainer_settings.batch_size, 512), seed=self.seed
            )
            stop = EarlyStopping(self.monitor, patience=self.patience or self.max_epochs)
            callbacks += [stop, BestWeights(self.monitor)]
        with quiet_lightning(trainer_settings.verbose):
            trainer = build_trainer(
                max_epochs=self.max_epochs,
                n_batches=len(loader),
                accelerator=trainer_settings.accelerator,
                devices=trainer_settings.devices,
                strategy=trainer_settings.strategy,
                precision=trainer_settings.precision,
                callbacks=callbacks,
                log_dir=trainer_settings.log_dir,
                verbose=trainer_settings.verbose,
            )
            with keyboard_interrupts(trainer):
                trainer.fit(module, train_dataloaders=loader, val_dataloaders=held_out)
        return int(trainer.current_epoch)


def bootstrap_rows(seed: int, n_samples: int, weights: np.ndarray | None) -> np.ndarray:
    """A bootstrap sample: ``n_samples`` row indices drawn with replacement from ``seed``, in
    proportion to ``weights`` when given (so that a weight of 2 counts as the row twice).

    Examples
    --------
    >>> bootstrap_rows(0, 5, np.array([0.0, 1.0, 0.0, 0.0, 0.0])).tolist()
    [1, 1, 1, 1, 1]
    """
    rng = np.random.RandomState(seed)
    if weights is None:
        return rng.randint(0, n_samples, n_samples)
    return rng.choice(n_samples, n_samples, p=weights / weights.sum())


def train_network(plan: TrainingPlan) -> Trained:
    """Build and train one network as ``plan`` says; the estimator that planned it takes the
    result (``estimator.accept(train_network(estimator.plan_fit(X, y)))`` is its ``fit``).

    One random stream, seeded by the plan, serves the initialisation and then the training
    (dropout), so the result depends on the seed alone.
    """
    with seeded(plan.seed):
        network = plan.build_network()
        epochs = plan.run(plan.module(network), plan.loader())
    return Trained(network, epochs, plan.callbacks)
