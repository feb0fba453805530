"""scikit-learn estimators over one Lightning-trained network.

This module holds the estimators themselves: their parameters (described on
:class:`NeuralClassifier`, listed on :class:`NeuralRegressor`), planning a fit, taking the
trained network and predicting. What
they share with other modules lives there: the task (:mod:`members.tasks`), the training run
(:mod:`members.training`), distillation (:mod:`members.student`), saving and loading
(:mod:`members.network_state`) and checkpoints trained elsewhere (:mod:`members.checkpoints`).
About 880 lines, of which some 480 are docstrings (numpydoc sections for every parameter and
method) and 400 code.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, Literal, overload

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from members.checkpoints import estimator_from_checkpoint
from members.data import (
    check_sample_weight,
    positive_rows,
    standardize,
    validate_inputs,
    weighted_moments,
)
from members.module import LOSSES, OPTIMIZERS, SCHEDULERS, SchedulerFactory
from members.network_state import NetworkStateMixin
from members.network_state import ScriptBytes as _ScriptBytes  # noqa: F401 (older pickles name it)
from members.params import Interval, ListOf, Names, StrOptions
from members.persistence import (
    SaveLoadMixin,
)
from members.registry import BACKBONES, BackboneFactory, NetworkSpec, build_backbone
from members.student import StudentMixin
from members.subnetworks import SubNetworks
from members.tasks import CLASSIFICATION, GAUSSIAN_REGRESSION, REGRESSION, Task
from members.trainer import ACCELERATORS, PRECISIONS, check_accelerator
from members.training import (
    Trained,
    TrainerSettings,
    TrainingPlan,
    bootstrap_rows,
    draw_seed,
    forget_fit,
    train_network,
)

PREDICT_CHUNK = 8192

# the parameters that decide what a network computes besides its weights: a fine-tune
# (init=) and the networks of a soup (ensembles.soup) must agree on them
ARCHITECTURE_PARAMS = ("module", "module_kwargs", "loss", "standardize")

# The parameters every neural estimator takes, in _parameter_constraints form; each task adds
# its losses.
NEURAL_CONSTRAINTS: dict[str, list[Any]] = {
    "module": [Names(BACKBONES, "registered backbone"), callable],
    "module_kwargs": [dict, None],
    "init": "no_validation",  # type: ignore[dict-item]  # a fitted estimator: checked in fit
    "loss": [None],  # plus the losses of the task (each class adds them)
    "class_weight": [None],  # the classifier adds its options
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "optimizer": [StrOptions(set(OPTIMIZERS))],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "l1": [Interval(Real, 0, None, closed="left")],
    "scheduler": [StrOptions(set(SCHEDULERS)), callable],
    "callbacks": [ListOf(Callback, "lightning.pytorch.callbacks.Callback instances"), None],
    "standardize": ["boolean"],
    "accelerator": [StrOptions(set(ACCELERATORS))],
    "devices": [
        Interval(Integral, 1, None, closed="left"),
        ListOf(Integral, "device indices"),
        StrOptions({"auto"}),
    ],
    "strategy": [str],
    "precision": [StrOptions(set(PRECISIONS))],
    "bootstrap": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "log_dir": [str, os.PathLike, None],
}


class BaseNeuralEstimator(StudentMixin, NetworkStateMixin, SaveLoadMixin, BaseEstimator):
    """Shared fit/predict machinery of :class:`NeuralClassifier` and :class:`NeuralRegressor`.

    Subclasses set the task (:mod:`members.tasks`), which encodes the targets and decodes
    the network's outputs. Training goes through the seam of :mod:`members.training`:
    :meth:`plan_fit` / :meth:`plan_finetune` / :meth:`plan_distill` turn data into a
    :class:`~members.training.TrainingPlan`, :func:`~members.training.train_network` runs it,
    and :meth:`accept` takes the trained network.
    """

    #: what differs between classification and regression (:mod:`members.tasks`)
    task: Task

    _parameter_constraints: dict[str, list[Any]] = NEURAL_CONSTRAINTS

    def __init__(
        self,
        module: str | BackboneFactory = "mlp",
        *,
        module_kwargs: dict[str, Any] | None = None,
        init: BaseNeuralEstimator | None = None,
        loss: str | None = None,
        class_weight: str | dict[Any, float] | None = None,
        max_epochs: int = 40,
        batch_size: int = 128,
        lr: float = 3e-3,
        optimizer: str = "adamw",
        weight_decay: float = 1e-2,
        l1: float = 0.0,
        scheduler: str | SchedulerFactory = "cosine",
        callbacks: list[Callback] | None = None,
        standardize: bool = True,
        accelerator: str = "auto",
        devices: int | list[int] | str = 1,
        strategy: str = "auto",
        precision: str = "32-true",
        bootstrap: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        log_dir: str | None = None,
    ) -> None:
        self.module = module
        self.module_kwargs = module_kwargs
        self.init = init
        self.loss = loss
        self.class_weight = class_weight
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.l1 = l1
        self.scheduler = scheduler
        self.callbacks = callbacks
        self.standardize = standardize
        self.accelerator = accelerator
        self.devices = devices
        self.strategy = strategy
        self.precision = precision
        self.bootstrap = bootstrap
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.log_dir = log_dir

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseNeuralEstimator:
        """Train the network on ``X`` and targets ``y``.

        ``sample_weight`` (one non-negative weight per row, or ``None``): each batch's loss is
        the weighted mean of its rows' losses, so that an integer weight counts as that many
        copies of the row. Rows of weight 0 are left out; the input (and a regressor's
        target) scaling is the weighted one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (array, tensor or DataFrame).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight.

        Returns
        -------
        self
            The fitted estimator.
        """
        return self.accept(train_network(self.plan_fit(X, y, sample_weight)))

    # -- the training seam (members.training) -------------------------------------------------
    def plan_fit(self, X: Any, y: Any, sample_weight: Any = None) -> TrainingPlan:
        """The plan that trains this estimator's network on ``(X, y)``.

        Checks the parameters, validates ``(X, y, sample_weight)`` and fits the input scaling and
        the target encoding (see :meth:`fit` for the weights).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight.

        Returns
        -------
        TrainingPlan
            The plan; :func:`members.training.train_network` runs it.
        """
        self._validate_params()
        forget_fit(self)
        X, y = self._validate_fit_data(X, y)
        sample_weight = check_sample_weight(sample_weight, X)
        if self.init is None:
            self._fit_scaling(X, sample_weight)
            encoding = self.task.fit_encoding(
                y, sample_weight, owner=type(self).__name__, scale=self.standardize
            )
        else:  # a fine-tune: the inputs and targets mean to the network what they meant
            self._check_init(X.shape[1])
            self._copy_scaling(self.init)
            encoding = self.task.fitted_encoding(self.init)
        self.__dict__.update(encoding)
        targets = self.encode_targets(y)
        self.class_weight_ = self.task.class_weights(
            self, targets, sample_weight, self.class_weight
        )
        X, (targets,), weights = positive_rows(X, (targets,), sample_weight)
        initial = None if self.init is None else self.init.model_
        plan = self._plan(X, (targets,), self.max_epochs, weights=weights, initial=initial)
        if self.early_stopping:
            plan = plan.held_out(
                self.validation_fraction,
                self.n_iter_no_change,
                stratify=self.task.stratify(plan.targets[0]),
            )
        return plan

    def _check_init(self, n_features: int) -> None:
        """Refuse an ``init`` this estimator cannot start from, naming what differs."""
        init, owner = self.init, type(self).__name__
        if type(init) is not type(self):
            raise TypeError(
                f"init must be a fitted {owner} to start from; got {type(init).__name__}"
            )
        if not hasattr(init, "model_"):
            raise ValueError(f"init must be a fitted {owner}; the one given is not fitted")
        ours, theirs = self.get_params(deep=False), init.get_params(deep=False)
        for name in ARCHITECTURE_PARAMS:
            if ours[name] != theirs[name]:
                raise ValueError(
                    f"init was fitted with {name}={theirs[name]!r} but this {owner} has "
                    f"{name}={ours[name]!r}; a fine-tune starts from the same architecture"
                )
        if init.n_features_in_ != n_features:
            raise ValueError(
                f"X has {n_features} features, but init was fitted on {init.n_features_in_}"
            )

    def __sklearn_clone__(self) -> BaseNeuralEstimator:
        """An unfitted copy with the same parameters; ``init``, a fitted network to start
        from, is shared, not reset (scikit-learn's clone would return it unfitted)."""
        twin: BaseNeuralEstimator = super().__sklearn_clone__()  # type: ignore[misc]
        twin.init = self.init
        return twin

    def plan_finetune(
        self, X: Any, y: Any, *, max_epochs: int, sample_weight: Any = None
    ) -> TrainingPlan:
        """The plan that goes on training this fitted estimator's network on ``(X, y)``.

        Rows are weighted by ``sample_weight``, as in :meth:`fit` (the fit's ``class_weight_``
        still shifts the probabilities). Nothing
        fitted changes: ``X`` is scaled and ``y`` encoded as in the original fit (a regressor
        keeps its ``y_mean_`` / ``y_scale_``); labels unknown to the fit are refused. The caller
        passes the network to train to :meth:`TrainingPlan.module`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        max_epochs : int
            Epochs of the fine-tune.
        sample_weight : array-like of shape (n_samples,), default=None
            Each row's weight.

        Returns
        -------
        TrainingPlan
            The plan.
        """
        check_is_fitted(self, "model_")
        X, y = self._validate_fit_data(X, y, reset=False)
        targets = self.encode_targets(y)
        weights = check_sample_weight(sample_weight, X)
        X, (targets,), weights = positive_rows(X, (targets,), weights)
        return self._plan(X, (targets,), max_epochs, weights=weights)

    def _plan(
        self,
        X: np.ndarray,
        targets: tuple[np.ndarray, ...],
        max_epochs: int,
        distillation: dict[str, Any] | None = None,
        weights: np.ndarray | None = None,
        **more: Any,
    ) -> TrainingPlan:
        """The plan of a run on validated ``X``: the seed, the bootstrap rows, the network to
        build, the trainer's settings and the input scaling (``more``: further fields of
        :class:`~members.training.TrainingPlan`)."""
        check_accelerator(self.accelerator, type(self).__name__)
        seed = draw_seed(check_random_state(self.random_state))
        rows = bootstrap_rows(seed, len(X), weights) if self.bootstrap else None
        return TrainingPlan(
            X=X,
            targets=targets,
            seed=seed,
            rows=rows,
            max_epochs=max_epochs,
            network=self.network_spec(X.shape[1]),
            trainer=TrainerSettings(
                batch_size=self.batch_size,
                accelerator=self.accelerator,
                devices=self.devices,
                strategy=self.strategy,
                precision=self.precision,
                log_dir=self.log_dir,
                verbose=bool(self.verbose),
            ),
            scaling=self.input_scaling(),
            settings=self.module_settings(),
            distillation=distillation,
            # each run gets fresh copies: a callback's state never leaks into the next fit
            callbacks=[copy.deepcopy(callback) for callback in self.callbacks or []],
            weights=None if weights is None else weights.astype(np.float32),
            **more,
        )

    def _fit_scaling(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> None:
        if self.standardize:
            self.x_mean_, scale = weighted_moments(X, sample_weight)
            self.x_scale_ = np.where(scale > 0, scale, 1.0)

    def encode_targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network learns them, with the encoding fitted on the training data.

        Parameters
        ----------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Targets in the user's terms (labels; regression targets).

        Returns
        -------
        ndarray
            Class indices; standardised regression targets.
        """
        return self.task.encode(self, y)

    def _validate_fit_data(
        self, X: Any, y: Any, *, reset: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.task.validate(self, X, y, float32=True, ensure_min_samples=2, reset=reset)

    def build_network(self, n_features: int, n_outputs: int | None = None) -> nn.Module:
        """A fresh network; seed it with :func:`members.training.seeded`.

        Parameters
        ----------
        n_features : int
            Inputs per row.
        n_outputs : int, optional
            Outputs of the network; the fitted targets' by default.

        Returns
        -------
        nn.Module
            The untrained network.
        """
        spec = self.network_spec(n_features, n_outputs)
        return build_backbone(spec.module, spec.n_features, spec.n_columns, spec.module_kwargs)

    def network_spec(self, n_features: int, n_outputs: int | None = None) -> NetworkSpec:
        """The network this estimator trains, as a value.

        Parameters
        ----------
        n_features : int
            Inputs per row.
        n_outputs : int, optional
            Outputs of the network; the fitted targets' by default.

        Returns
        -------
        NetworkSpec
            The factory, its arguments and the input and output sizes.
        """
        n_outputs = self.task.n_outputs(self) if n_outputs is None else n_outputs
        return NetworkSpec(
            self.module,
            n_features,
            n_outputs * self.task.heads,
            self.module_kwargs,
            type(self).__name__,
        )

    def module_settings(self) -> dict[str, Any]:
        """Arguments of :class:`~members.MemberModule` besides the network.

        Returns
        -------
        dict
            ``task``, ``loss``, ``optimizer``, ``lr``, ``weight_decay``, ``scheduler``, ``l1``.
        """
        return {
            "task": self.task.name,
            "loss": self.task.module_loss(self.loss),
            "optimizer": self.optimizer,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "scheduler": self.scheduler,
            "l1": self.l1,
        }

    def accept(self, trained: Trained) -> BaseNeuralEstimator:
        """Take a training run's result as the fitted network.

        Parameters
        ----------
        trained : Trained
            What :func:`members.training.train_network` returned for one of this estimator's
            plans.

        Returns
        -------
        self
            The fitted estimator.
        """
        self.set_network(trained.network, trained.callbacks, trained.epochs)
        return self

    def set_network(
        self, network: nn.Module, callbacks: Sequence[Callback] = (), n_iter: int | None = None
    ) -> None:
        """Store a trained network as the fitted one.

        Parameters
        ----------
        network : nn.Module
            Kept as ``model_``, on the CPU, in float64, in eval mode.
        callbacks : sequence of lightning Callback, default=()
            The callbacks its run used, kept as ``callbacks_``.
        n_iter : int, optional
            The epochs it trained, kept as ``n_iter_``.
        """
        self.n_iter_ = self.max_epochs if n_iter is None else n_iter
        # float64 for inference: a sample's output then does not depend on the batch it comes in.
        self.model_: nn.Module = network.cpu().double().eval()
        self.callbacks_ = list(callbacks)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike[str],
        backbone: nn.Module | None = None,
        *,
        n_features: int | None = None,
        classes: Any = None,
        trusted: Sequence[str] = (),
    ) -> Any:
        """A fitted estimator over a :class:`~members.MemberModule` checkpoint.

        The checkpoint may come from a plain :class:`lightning.Trainer` or from LightningCLI
        (``experiments/train_member.py``). It is read with ``weights_only=True``, so loading
        runs no code from the file. The network takes the features as the training data
        loader gave them (``standardize=False``).

        Parameters
        ----------
        checkpoint : path
            A ``.ckpt`` file.
        backbone : nn.Module, optional
            The trained architecture (its weights are replaced). By default it is built from
            the ``model.backbone`` ``class_path`` / ``init_args`` of the ``config.yaml`` that
            LightningCLI writes for the run (beside the checkpoint, or beside its
            ``checkpoints/`` folder); the class must be one of this library's backbones or named
            in ``trusted``.
        n_features : int, optional
            Input size; by default the backbone's ``n_features`` argument.
        classes : array-like, optional
            Classifier: the label of each output column; ``0 .. n_outputs - 1`` by default.
        trusted : sequence of str, default=()
            Backbone classes (``"package.module.Class"``) that the ``config.yaml`` may name
            besides this library's own. Nothing else named in the file is imported or called.
        """
        return estimator_from_checkpoint(
            cls, checkpoint, backbone, n_features=n_features, classes=classes, trusted=trusted
        )

    def set_outputs(self, n_outputs: int, classes: Any = None) -> None:
        """Set the target attributes of a network trained elsewhere (a checkpoint).

        Parameters
        ----------
        n_outputs : int
            Target columns of the network.
        classes : array-like, optional
            A classifier's ``classes_`` (``0 .. n_outputs - 1`` by default); a regressor gets
            ``n_outputs_`` and an identity target scaling.
        """
        self.__dict__.update(self.task.outputs_of(n_outputs, classes))

    # -- prediction --------------------------------------------------------------------------
    def network_inputs(self, X: Any) -> np.ndarray:
        """``X`` as the network takes it.

        Validated against the fit (numeric, finite, the features seen in fit), standardised when
        ``standardize``, float32.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In float32.
        """
        check_is_fitted(self, "n_features_in_")
        X = validate_inputs(self, X, float32=True, reset=False)
        return self.scale_inputs(X)

    def input_scaling(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The fitted input scaling.

        Returns
        -------
        tuple of (ndarray, ndarray) or None
            ``(x_mean_, x_scale_)`` when ``standardize``, else ``None``.
        """
        return (self.x_mean_, self.x_scale_) if self.standardize else None

    def scale_inputs(self, X: np.ndarray) -> np.ndarray:
        """Validated ``X`` as the network takes it.

        Standardised with the fitted mean and scale (when ``standardize``), float32.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated rows.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            In float32.
        """
        return standardize(X, self.input_scaling())

    def network_function(
        self, dtype: torch.dtype = torch.float32
    ) -> Callable[[np.ndarray], np.ndarray]:
        """The estimator's output as a function of validated raw rows, in ``dtype``.

        What :meth:`predict_proba` (classifier) or :meth:`predict` (regressor) returns. For
        labelling many small batches fast, as distillation's teacher does: no input checks per
        call, and float32 convolutions are several times faster on a CPU than the float64 ones
        ``predict`` uses. The outputs differ from ``predict``'s by float32 rounding only.

        Parameters
        ----------
        dtype : torch.dtype, default=torch.float32
            The precision the network computes in.

        Returns
        -------
        callable
            ``function(rows) -> ndarray``.
        """
        check_is_fitted(self, "model_")
        network = self.model_
        if any(p.is_floating_point() for p in network.parameters()):
            network = copy.deepcopy(network).to(dtype)
        network.eval()

        def outputs(rows: np.ndarray) -> np.ndarray:
            inputs = torch.from_numpy(self.scale_inputs(np.asarray(rows))).to(dtype)
            with torch.inference_mode():
                raw = torch.cat([network(chunk) for chunk in inputs.split(PREDICT_CHUNK)], dim=-2)
                if raw.dim() == 3:  # an ensemble inside one network predicts as its mixture
                    raw = self.task.mix(raw.double())
            return self.task.decode(self, raw.double().numpy())

        return outputs

    @property
    def sub_networks(self) -> int:
        """The number of sub-networks in the fitted network.

        1 for one network, ``n_members`` for an ensemble inside one network (a ``module`` such
        as :class:`~members.Packed`).

        Returns
        -------
        int
        """
        check_is_fitted(self, "model_")
        return self.model_.n_members if isinstance(self.model_, SubNetworks) else 1

    def sub_network_outputs(self, X: Any) -> np.ndarray:
        """Each sub-network's prediction, from one forward pass.

        What :meth:`predict_proba` (a classifier) or ``predict`` (a regressor) returns, per
        sub-network; those methods return their equal-weight mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, with the features of the fit.

        Returns
        -------
        ndarray of shape (sub_networks, n_samples, ...)
            One prediction per sub-network (one for a plain network).
        """
        raw = self._network_outputs(X)
        raw = raw if raw.ndim == 3 else raw[None]
        return np.stack([self.task.decode(self, member) for member in raw])

    def _forward(self, X: Any) -> np.ndarray:
        """Raw network outputs (logits or scaled predictions), ``(n_samples, n_outputs)``; the
        mixture's (:meth:`members.tasks.Task.mix`) for an ensemble inside one network."""
        raw = self._network_outputs(X)
        if raw.ndim == 2:
            return raw
        return self.task.mix(torch.from_numpy(raw)).numpy()  # type: ignore[no-any-return]

    def _network_outputs(self, X: Any) -> np.ndarray:
        """What the network returns: ``(n_samples, n_columns)``, or ``(n_members, n_samples,
        n_columns)`` for an ensemble inside one network."""
        check_is_fitted(self, "model_")
        # float64 for trained networks; float32 for compressed (quantised) ones
        dtype = next(
            (p.dtype for p in self.model_.parameters() if p.is_floating_point()), torch.float32
        )
        inputs = torch.from_numpy(self.network_inputs(X).astype(np.float64)).to(dtype)
        self.model_.eval()
        with torch.inference_mode():
            outputs = [self.model_(chunk) for chunk in inputs.split(PREDICT_CHUNK)]
        return torch.cat(outputs, dim=-2).double().numpy()

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class NeuralClassifier(ClassifierMixin, BaseNeuralEstimator):
    """A scikit-learn classifier over one network trained with :class:`lightning.Trainer`.

    Parameters
    ----------
    module : str, class or callable, default="mlp"
        A registry name (``"mlp"``, ``"cnn1d"``, ``"cnn2d"``, ``"resnet"``), a backbone class, or
        any callable ``f(n_features, n_outputs, **module_kwargs) -> nn.Module``.
    module_kwargs : dict, optional
        Extra arguments for the backbone, e.g. ``{"hidden": (512, 256), "dropout": 0.1}``.
    init : NeuralClassifier or NeuralRegressor, optional
        A fitted estimator of this class and architecture (``module``, ``module_kwargs``,
        ``loss``, ``standardize``) whose network this one starts from: a fine-tune. Its input
        scaling and target encoding are kept (its classes, its target scaling), so labels it
        did not see are refused. Fine-tunes of one network (other seeds, learning rates,
        augmentations) can be averaged in weight space: :func:`ensembles.soup`. ``clone``
        keeps ``init`` fitted (it is shared, never refitted or modified); a save holds its
        network too.
    loss : str, optional
        ``NeuralClassifier``: cross-entropy (``None`` or ``"cross_entropy"``).
        ``NeuralRegressor``: ``None`` or ``"mse"`` (mean squared error, a point prediction), or
        ``"gaussian"``: the network predicts a mean and a variance per output (a second head;
        the variance is ``softplus + 1e-6``, in standardised units) and learns the Gaussian
        negative log-likelihood (Lakshminarayanan et al., 2017); ``predict(X,
        return_std=True)`` then also returns the predicted standard deviation.
    class_weight : "balanced", dict or None, default=None
        ``NeuralClassifier`` only: weights of the classes. ``"balanced"`` gives class ``c`` the
        weight ``n_samples / (n_classes * n_c)`` (counts weighted by ``sample_weight``), as in
        scikit-learn; a dict maps labels to weights (unnamed classes weigh 1). The network
        learns the unweighted problem and its probabilities are shifted to the weights' prior,
        ``p_c w_c / sum_k p_k w_k`` (:class:`members.tasks.PriorShift`; Menon et al., 2021),
        which is where a weighted loss would lead a model that fits it exactly. Chosen over
        weighing the loss on validation splits of ``benchmarks/imbalanced.py``: balanced
        accuracy up in 9 of 9 (model, seed) pairs (+0.026 to +0.114), ROC-AUC unchanged (at
        most 0.0001 lower),
        where the weighted loss gained +0.007 to +0.061 (a network that interpolates its
        training rows learns nearly the same function whatever they weigh). For imbalanced
        data: it raises the rare classes' recall at the cost of calibrated probabilities.
    max_epochs : int, default=40
        Epochs of training (the cosine schedule spans them all).
    batch_size : int, default=128
        Rows per optimizer step.
    lr : float, default=3e-3
        Peak learning rate.
    optimizer : {"adamw", "adam", "sgd", "rmsprop"}, default="adamw"
        ``"sgd"`` is SGD with momentum 0.9.
    weight_decay : float, default=1e-2
        L2 penalty (decoupled for ``"adamw"``).
    l1 : float, default=0.0
        L1 penalty: ``l1 * sum(|w|)`` over the weights (not biases or normalisation scales) is
        added to the loss, which drives the weights of useless inputs towards zero.
    scheduler : {"cosine", "constant"} or callable, default="cosine"
        A callable ``f(optimizer, total_steps) -> LRScheduler`` is stepped every batch.
    callbacks : list of lightning Callback, optional
        Extra callbacks for the :class:`lightning.Trainer` (e.g. ``SnapshotCollector``,
        ``StochasticWeightAveraging``). Each fit uses fresh copies, so no state leaks from one
        fit into the next; the copies a fit used are kept as ``callbacks_`` for inspection.
    standardize : bool, default=True
        Centre and scale each feature with the training mean and standard deviation.
    accelerator : {"auto", "cpu", "gpu", "cuda", "mps", "tpu"}, default="auto"
        Passed to :class:`lightning.Trainer`. A device this machine lacks is refused when
        ``fit`` starts; ``"auto"`` takes a GPU when there is one.
    devices : int, list of int or "auto", default=1
        Devices for one member's training, passed to :class:`lightning.Trainer`: more than one
        trains this member data-parallel, with ``strategy``.
    strategy : str, default="auto"
        Lightning's strategy for ``devices`` > 1: ``"ddp_spawn"`` (or ``"ddp_notebook"``)
        from a session or notebook, ``"ddp"`` from a script (it runs the script again per
        device), ``"fsdp"``... The trained network comes back to this process.
    precision : str, default="32-true"
        Lightning's training precision: ``"bf16-mixed"``, ``"16-mixed"`` (GPU), ``"64-true"``,
        ``"bf16-true"``... The network is stored and predicts in float64 either way.
    bootstrap : bool, default=False
        Train on a bootstrap sample (``n`` rows drawn with replacement, from ``random_state``)
        instead of on every row, as in bagging; the scaling still comes from all rows.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for a classifier, drawn from
        ``random_state``), stop once the validation loss has not improved for
        ``n_iter_no_change`` epochs, and keep the best epoch's weights (scikit-learn's names).
        The cosine schedule still spans ``max_epochs``. A member with early stopping is
        trained on its own, never in a batched group.
    validation_fraction : float, default=0.1
        Share of the rows held out for ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before ``early_stopping`` stops.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, data order and dropout; the global RNGs are left untouched.
    verbose : bool, default=False
        Show Lightning's progress bar and model summary.
    log_dir : str, optional
        Log the training loss per epoch under this folder: ``csv/version_N/metrics.csv``, and
        TensorBoard event files under ``tensorboard/`` when TensorBoard is installed.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    model_ : nn.Module
        The trained network, on the CPU, in eval mode, in float64 (so that a sample's output does
        not depend on the other samples in its batch).
    n_iter_ : int
        Epochs trained (fewer than ``max_epochs`` when early stopping stopped the run).
    class_weight_ : ndarray of shape (n_classes,) or None
        The classes' weights that shift the probabilities (``class_weight``); ``None``
        without.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralClassifier("mlp", max_epochs=30, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> clf.score(X, y) > 0.9
    True
    """

    task = CLASSIFICATION
    _parameter_constraints: dict[str, list[Any]] = {
        **NEURAL_CONSTRAINTS,
        "loss": [StrOptions({"cross_entropy"}), None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns ordered as ``classes_``.
        """
        return self.task.decode(self, self._forward(X))

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns ordered as ``classes_``.
        """
        logits = torch.from_numpy(self._shifted_logits(X))
        return torch.log_softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        logits = self._shifted_logits(X)
        return self.classes_[logits.argmax(axis=1)]  # type: ignore[no-any-return]

    def _shifted_logits(self, X: Any) -> np.ndarray:
        """The network's logits plus the log of ``class_weight_`` (the shift
        :class:`members.tasks.PriorShift` makes in ``predict_proba``)."""
        logits = self._forward(X)
        weights = getattr(self, "class_weight_", None)
        if weights is None:
            return logits
        with np.errstate(divide="ignore"):
            return logits + np.log(weights)  # type: ignore[no-any-return]


class NeuralRegressor(RegressorMixin, BaseNeuralEstimator):
    """A scikit-learn regressor over one network trained with :class:`lightning.Trainer`.

    Takes the same parameters as :class:`NeuralClassifier`. With ``standardize=True`` the
    targets are standardised too (and predictions mapped back), so the defaults work for
    targets of any scale. ``y`` may be 1-D or ``(n_samples, n_outputs)``.

    Parameters
    ----------
    module : str, class or callable, default="mlp"
        As in :class:`NeuralClassifier`.
    module_kwargs : dict, optional
        As in :class:`NeuralClassifier`.
    init : NeuralRegressor, optional
        As in :class:`NeuralClassifier`.
    loss : {None, "mse", "gaussian"}, default=None
        ``None`` or ``"mse"``: mean squared error, a point prediction. ``"gaussian"``: a mean
        and a variance per output, learned by the Gaussian NLL; see :class:`NeuralClassifier`.
    class_weight : None
        A classifier's parameter; a regressor takes only None.
    max_epochs : int, default=40
        As in :class:`NeuralClassifier`.
    batch_size : int, default=128
        As in :class:`NeuralClassifier`.
    lr : float, default=3e-3
        As in :class:`NeuralClassifier`.
    optimizer : {"adamw", "adam", "sgd", "rmsprop"}, default="adamw"
        As in :class:`NeuralClassifier`.
    weight_decay : float, default=1e-2
        As in :class:`NeuralClassifier`.
    l1 : float, default=0.0
        As in :class:`NeuralClassifier`.
    scheduler : {"cosine", "constant"} or callable, default="cosine"
        As in :class:`NeuralClassifier`.
    callbacks : list of lightning Callback, optional
        As in :class:`NeuralClassifier`.
    standardize : bool, default=True
        As in :class:`NeuralClassifier`.
    accelerator : {"auto", "cpu", "gpu", "cuda", "mps", "tpu"}, default="auto"
        As in :class:`NeuralClassifier`.
    devices : int, list of int or "auto", default=1
        As in :class:`NeuralClassifier`.
    strategy : str, default="auto"
        As in :class:`NeuralClassifier`.
    precision : str, default="32-true"
        As in :class:`NeuralClassifier`.
    bootstrap : bool, default=False
        As in :class:`NeuralClassifier`.
    early_stopping : bool, default=False
        As in :class:`NeuralClassifier`.
    validation_fraction : float, default=0.1
        As in :class:`NeuralClassifier`.
    n_iter_no_change : int, default=10
        As in :class:`NeuralClassifier`.
    random_state : int, RandomState or None, default=None
        As in :class:`NeuralClassifier`.
    verbose : bool, default=False
        As in :class:`NeuralClassifier`.
    log_dir : str, optional
        As in :class:`NeuralClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    >>> reg = NeuralRegressor("mlp", max_epochs=30, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> reg.score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict[str, list[Any]] = {
        **NEURAL_CONSTRAINTS,
        "loss": [StrOptions(set(LOSSES)), None],
    }

    @property
    def task(self) -> Task:  # type: ignore[override]
        """Regression; with a variance head for ``loss="gaussian"``."""
        return GAUSSIAN_REGRESSION if self.loss == "gaussian" else REGRESSION

    @property
    def predicts_std(self) -> bool:
        """Whether :meth:`predict` can return a predictive standard deviation.

        ``True`` for ``loss="gaussian"``; an ensemble reads a member's spread from it.

        Returns
        -------
        bool
        """
        return self.loss == "gaussian"

    @property
    def target_ndim(self) -> int:
        """The number of dimensions of what :meth:`predict` returns.

        Returns
        -------
        int
            1 for targets fitted as ``(n_samples,)``, 2 for ``(n_samples, n_outputs)``.
        """
        return int(self._y_ndim)

    @overload
    def predict(self, X: Any, return_std: Literal[False] = ...) -> np.ndarray: ...

    @overload
    def predict(self, X: Any, return_std: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, X: Any, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predictions: ``(n_samples,)`` for 1-D targets, else ``(n_samples, n_outputs)``.

        With ``return_std=True`` (``loss="gaussian"`` only), also the predicted standard
        deviation of the target around each prediction, of the same shape (scikit-learn's
        ``GaussianProcessRegressor`` convention).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows (array, tensor or DataFrame), with the features of the fit.
        return_std : bool, default=False
            Also return the predicted standard deviation.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predictions.
        std : ndarray of the shape of ``mean``
            Only with ``return_std=True``.
        """
        if return_std and not self.predicts_std:
            raise ValueError(
                f"return_std=True needs a network that predicts a variance: "
                f"NeuralRegressor(loss='gaussian'); this one has loss={self.loss!r}"
            )
        outputs = self._forward(X)
        if not return_std:
            return self.task.decode(self, outputs)
        with torch.no_grad():
            prediction, std = self.task.head(self, return_std=True)(torch.from_numpy(outputs))
        return prediction.numpy(), std.numpy()

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
