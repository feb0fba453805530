"""scikit-learn estimators over one Lightning-trained network."""

from __future__ import annotations

import importlib
import importlib.util
import io
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.utilities.seed import isolate_rng
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state, check_scalar
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from members._data import encode_classes, make_loader, to_numpy
from members.distillation import DistillationModule, check_distillation
from members.module import OPTIMIZERS, SCHEDULERS, MemberModule, SchedulerFactory, check_choice
from members.persistence import NetworkRef, SaveLoadMixin, export_network, import_network
from members.registry import BackboneFactory, build_backbone

PREDICT_CHUNK = 8192


@contextmanager
def quiet_lightning(verbose: bool) -> Iterator[None]:
    """Silence Lightning's banner lines and hints unless the user asked for output."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", message=".*have no `val_dataloader`.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
            # SnapshotEnsemble*(method="swa") swaps our per-step schedule for SWALR on purpose
            warnings.filterwarnings("ignore", message=".*SWA is currently only supported every.*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def training_loggers(log_dir: str | None) -> list[Logger] | bool:
    """Lightning loggers writing under ``log_dir``: CSV, plus TensorBoard when it is installed."""
    if log_dir is None:
        return False
    loggers: list[Logger] = [CSVLogger(log_dir, name="csv")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(log_dir, name="tensorboard"))
    return loggers


class _ScriptBytes:
    """A TorchScript network saved to bytes, for pickling."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class _NeuralEstimator(SaveLoadMixin, BaseEstimator):
    """Shared fit/predict machinery; subclasses define the task and the target encoding."""

    _task: str

    def __init__(
        self,
        module: str | BackboneFactory = "mlp",
        *,
        module_kwargs: dict[str, Any] | None = None,
        max_epochs: int = 40,
        batch_size: int = 128,
        lr: float = 3e-3,
        optimizer: str = "adamw",
        weight_decay: float = 1e-2,
        scheduler: str | SchedulerFactory = "cosine",
        callbacks: list[Callback] | None = None,
        standardize: bool = True,
        accelerator: str = "auto",
        bootstrap: bool = False,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
        log_dir: str | None = None,
    ) -> None:
        self.module = module
        self.module_kwargs = module_kwargs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.scheduler = scheduler
        self.callbacks = callbacks
        self.standardize = standardize
        self.accelerator = accelerator
        self.bootstrap = bootstrap
        self.random_state = random_state
        self.verbose = verbose
        self.log_dir = log_dir

    # -- fitting -----------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_scalar(self.max_epochs, "max_epochs", Integral, min_val=1)
        check_scalar(self.batch_size, "batch_size", Integral, min_val=1)
        check_scalar(self.lr, "lr", Real, min_val=0.0, include_boundaries="neither")
        check_scalar(self.weight_decay, "weight_decay", Real, min_val=0.0)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.bootstrap, bool | np.bool_):
            raise TypeError(f"bootstrap must be True or False; got {self.bootstrap!r}")
        if not callable(self.scheduler):
            check_choice("scheduler", self.scheduler, SCHEDULERS)
        if self.callbacks is not None and not all(
            isinstance(callback, Callback) for callback in self.callbacks
        ):
            raise TypeError(
                "callbacks must be a list of lightning.pytorch.callbacks.Callback; "
                f"got {self.callbacks!r}"
            )
        if self.module_kwargs is not None and not isinstance(self.module_kwargs, dict):
            raise TypeError(
                f"module_kwargs must be a dict or None; got {type(self.module_kwargs).__name__}"
            )
        if not (isinstance(self.module, str) or callable(self.module)):
            raise TypeError(
                "module must be a registry name, a backbone class or a callable "
                f"f(n_features, n_outputs) -> nn.Module; got {type(self.module).__name__}"
            )

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _validate_fit_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return validate_data(  # type: ignore[no-any-return]
            self, to_numpy(X), to_numpy(y), dtype=(np.float64, np.float32), ensure_min_samples=2
        )

    def fit(self, X: Any, y: Any) -> _NeuralEstimator:
        """Train the network on ``X`` (array-like, tensor or DataFrame) and targets ``y``."""
        self._check_params()
        X, y = self._validate_fit_data(X, y)
        self._train(X, self._encode_targets(y))
        return self

    def fit_distill(
        self,
        X: Any,
        teacher: Any,
        y: Any = None,
        *,
        classes: Any = None,
        temperature: float = 2.0,
        alpha: float = 0.9,
    ) -> _NeuralEstimator:
        """Train on a teacher's outputs (knowledge distillation) instead of labels alone.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The transfer set.
        teacher : array-like
            Classifier: teacher probabilities ``(n_samples, n_classes)``. Regressor: teacher
            predictions ``(n_samples,)`` or ``(n_samples, n_outputs)``.
        y : array-like, optional
            True targets for the first ``len(y)`` rows of ``X``; the rows after them (augmented
            or unlabelled samples) learn from the teacher alone. ``None``: teacher only.
        classes : array-like, optional
            Classifier: the label of each teacher column; ``np.unique(y)`` (or column indices
            when ``y`` is ``None``) by default.
        temperature : float, default=2.0
            Softens both distributions (classification).
        alpha : float, default=0.9
            Weight of the teacher term; ``1 - alpha`` weighs the true targets.
        """
        check_distillation(temperature, alpha)
        self._check_params()
        X = validate_data(self, to_numpy(X), dtype=(np.float64, np.float32), ensure_min_samples=2)
        teacher = np.asarray(to_numpy(teacher), dtype=np.float64)
        if len(teacher) != len(X) or not np.isfinite(teacher).all():
            raise ValueError(
                f"teacher must hold finite outputs for every row of X ({len(X)}); got shape "
                f"{teacher.shape}"
            )
        labels = None if y is None else np.asarray(to_numpy(y))
        if labels is not None and len(labels) > len(X):
            raise ValueError(f"y labels the first rows of X: got {len(labels)} > {len(X)} rows")
        targets, soft = self._distillation_targets(teacher, labels, classes)
        self._train(X, targets, soft, distillation={"temperature": temperature, "alpha": alpha})
        return self

    def _distillation_targets(
        self, teacher: np.ndarray, y: np.ndarray | None, classes: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _train(
        self, X: np.ndarray, *targets: np.ndarray, distillation: dict[str, float] | None = None
    ) -> None:
        """Build the network and train it on validated ``X`` and encoded ``targets``."""
        seed, rows = self._prepare(X)
        with isolate_rng():
            torch.manual_seed(seed)
            network = self._build_network(X.shape[1])
            settings = self._module_settings()
            module = (
                MemberModule(network, **settings)
                if distillation is None
                else DistillationModule(network, **distillation, **settings)
            )
            arrays = [self._scale(X), *targets]
            if rows is not None:
                arrays = [array[rows] for array in arrays]
            loader = make_loader(*arrays, batch_size=self.batch_size, seed=seed)
            self._run_trainer(module, loader, self.max_epochs)
        self._set_network(network)

    def _prepare(self, X: np.ndarray) -> tuple[int, np.ndarray | None]:
        """Fit the input scaling; return the training seed and the rows to train on (``None``:
        all of them; with ``bootstrap``, ``n`` rows drawn with replacement from the seed)."""
        if self.standardize:
            self.x_mean_ = X.mean(axis=0)
            scale = X.std(axis=0)
            self.x_scale_ = np.where(scale > 0, scale, 1.0)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        rows = np.random.RandomState(seed).randint(0, len(X), len(X)) if self.bootstrap else None
        return seed, rows

    def _build_network(self, n_features: int, n_outputs: int | None = None) -> nn.Module:
        """A fresh network; ``n_outputs`` defaults to the fitted targets'."""
        n_outputs = self._n_outputs() if n_outputs is None else n_outputs
        return build_backbone(self.module, n_features, n_outputs, self.module_kwargs)

    def _module_settings(self) -> dict[str, Any]:
        """Arguments of :class:`MemberModule` besides the network."""
        return {
            "task": self._task,
            "optimizer": self.optimizer,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "scheduler": self.scheduler,
        }

    def _set_network(self, network: nn.Module) -> None:
        # float64 for inference: a sample's output then does not depend on the batch it comes in.
        self.model_: nn.Module = network.cpu().double().eval()

    def _run_trainer(self, module: L.LightningModule, loader: Any, max_epochs: int) -> None:
        """Fit ``module`` with a quiet single-device :class:`lightning.Trainer`."""
        with quiet_lightning(self.verbose):
            trainer = L.Trainer(
                accelerator=self.accelerator,
                devices=1,
                max_epochs=max_epochs,
                logger=training_loggers(self.log_dir),
                enable_checkpointing=False,
                enable_progress_bar=bool(self.verbose),
                enable_model_summary=bool(self.verbose),
                log_every_n_steps=max(1, min(50, len(loader))),
                num_sanity_val_steps=0,
                callbacks=list(self.callbacks or []),
            )
            trainer.fit(module, train_dataloaders=loader)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike[str],
        backbone: nn.Module | None = None,
        *,
        n_features: int | None = None,
        classes: Any = None,
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
            LightningCLI writes beside its checkpoints.
        n_features : int, optional
            Input size; by default the backbone's ``n_features`` argument.
        classes : array-like, optional
            Classifier: the label of each output column; ``0 .. n_outputs - 1`` by default.
        """
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint={str(path)!r}: no such file")
        state = torch.load(path, map_location="cpu", weights_only=True)
        spec: dict[str, Any] = {}
        if backbone is None:
            spec = _backbone_spec(path)
            backbone = _import(spec["class_path"])(**spec.get("init_args", {}))
        weights = {
            name.removeprefix("backbone."): value
            for name, value in state["state_dict"].items()
            if name.startswith("backbone.")
        }
        backbone.load_state_dict(weights)
        n_features = n_features or spec.get("init_args", {}).get("n_features")
        if n_features is None:
            raise ValueError("n_features is needed: the backbone's input size is not known")
        hparams = state.get("hyper_parameters", {})
        init_args = {
            k: v
            for k, v in spec.get("init_args", {}).items()
            if k not in ("n_features", "n_outputs")
        }
        estimator = cls(
            type(backbone),
            module_kwargs=init_args or None,
            max_epochs=int(state.get("epoch", 0)) + 1,
            standardize=False,
            **{k: hparams[k] for k in ("lr", "optimizer", "weight_decay") if k in hparams},
        )
        network = backbone.double().eval()
        with torch.inference_mode():
            n_outputs = network(torch.zeros(2, n_features, dtype=torch.float64)).shape[1]
        estimator.n_features_in_ = int(n_features)
        estimator.model_ = network
        estimator._set_outputs(n_outputs, classes)
        return estimator

    def _set_outputs(self, n_outputs: int, classes: Any) -> None:
        raise NotImplementedError

    # -- prediction --------------------------------------------------------------------------
    def _validate_X(self, X: Any) -> np.ndarray:
        """``X`` at predict time: numeric, finite, with the features seen in fit."""
        return validate_data(  # type: ignore[no-any-return]
            self, to_numpy(X), dtype=(np.float64, np.float32), reset=False
        )

    def _scale(self, X: np.ndarray) -> np.ndarray:
        if self.standardize:
            X = (X - self.x_mean_) / self.x_scale_
        return np.asarray(X, dtype=np.float32)

    def _forward(self, X: Any) -> np.ndarray:
        """Raw network outputs (logits or scaled predictions), ``(n_samples, n_outputs)``."""
        check_is_fitted(self, "model_")
        X = self._validate_X(X)
        # float64 for trained networks; float32 for compressed (quantised) ones
        dtype = next(
            (p.dtype for p in self.model_.parameters() if p.is_floating_point()), torch.float32
        )
        inputs = torch.from_numpy(self._scale(X).astype(np.float64)).to(dtype)
        self.model_.eval()
        with torch.inference_mode():
            outputs = [self.model_(chunk) for chunk in inputs.split(PREDICT_CHUNK)]
        return torch.cat(outputs).double().numpy()

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        network = state.get("model_")
        ref = None if network is None else export_network(network)
        if ref is not None:
            # members.persistence.save: the weights go to safetensors, not into this state
            state = {**state, "model_": ref}
        elif isinstance(network, torch.jit.ScriptModule):
            # a quantised network (members.compress) travels as TorchScript bytes
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                # TorchScript is deprecated upstream but is what pickles a quantised network
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(state["model_"], buffer)
            state = {**state, "model_": _ScriptBytes(buffer.getvalue())}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("model_"), _ScriptBytes):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                network = torch.jit.load(io.BytesIO(state["model_"].data))
            state = {**state, "model_": network}
        super().__setstate__(state)
        if isinstance(state.get("model_"), NetworkRef):
            self.model_ = import_network(
                state["model_"], lambda: self._build_network(self.n_features_in_).double()
            )

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class NeuralClassifier(ClassifierMixin, _NeuralEstimator):
    """A scikit-learn classifier over one network trained with :class:`lightning.Trainer`.

    Parameters
    ----------
    module : str, class or callable, default="mlp"
        A registry name (``"mlp"``, ``"cnn1d"``, ``"cnn2d"``, ``"resnet"``), a backbone class, or
        any callable ``f(n_features, n_outputs, **module_kwargs) -> nn.Module``.
    module_kwargs : dict, optional
        Extra arguments for the backbone, e.g. ``{"hidden": (512, 256), "dropout": 0.1}``.
    max_epochs : int, default=40
    batch_size : int, default=128
    lr : float, default=3e-3
        Peak learning rate.
    optimizer : {"adamw", "adam", "sgd", "rmsprop"}, default="adamw"
    weight_decay : float, default=1e-2
    scheduler : {"cosine", "constant"} or callable, default="cosine"
        A callable ``f(optimizer, total_steps) -> LRScheduler`` is stepped every batch.
    callbacks : list of lightning Callback, optional
        Extra callbacks for the :class:`lightning.Trainer` (e.g. ``SnapshotCollector``,
        ``StochasticWeightAveraging``). They are used as given, so their state after ``fit``
        can be inspected.
    standardize : bool, default=True
        Centre and scale each feature with the training mean and standard deviation.
    bootstrap : bool, default=False
        Train on a bootstrap sample (``n`` rows drawn with replacement, from ``random_state``)
        instead of on every row, as in bagging; the scaling still comes from all rows.
    accelerator : str, default="auto"
        Passed to :class:`lightning.Trainer` (``"cpu"``, ``"gpu"``, ``"auto"``...).
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

    _task = "classification"

    def _validate_fit_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = super()._validate_fit_data(X, y)
        check_classification_targets(y)
        return X, y

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        self.classes_, encoded = encode_classes(y, type(self).__name__)
        return encoded

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _set_outputs(self, n_outputs: int, classes: Any) -> None:
        self.classes_ = np.arange(n_outputs) if classes is None else np.asarray(classes)
        if len(self.classes_) != n_outputs:
            raise ValueError(
                f"classes names {len(self.classes_)} classes but the network has {n_outputs} "
                "outputs"
            )

    def _distillation_targets(
        self, teacher: np.ndarray, y: np.ndarray | None, classes: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        if teacher.ndim != 2 or teacher.shape[1] < 2 or teacher.min() < 0 or teacher.max() > 1:
            raise ValueError(
                "teacher must hold class probabilities of shape (n_samples, n_classes >= 2); "
                f"got shape {teacher.shape}"
            )
        if classes is None:
            classes = np.arange(teacher.shape[1]) if y is None else np.unique(y)
        self.classes_ = np.asarray(classes)
        if len(self.classes_) != teacher.shape[1]:
            raise ValueError(
                f"classes names {len(self.classes_)} classes but teacher has "
                f"{teacher.shape[1]} columns"
            )
        labels = np.full(len(teacher), -1, dtype=np.int64)
        if y is not None:
            unknown = np.setdiff1d(y, self.classes_)
            if unknown.size:
                raise ValueError(f"y holds labels that are not in classes: {unknown[:5].tolist()}")
            labels[: len(y)] = np.searchsorted(self.classes_, y)
        return labels, teacher.astype(np.float32)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n_samples, n_classes)``, columns ordered as ``classes_``."""
        logits = torch.from_numpy(self._forward(X))
        return torch.softmax(logits, dim=1).numpy()

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably from the logits."""
        logits = torch.from_numpy(self._forward(X))
        return torch.log_softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label for each sample."""
        logits = self._forward(X)
        return self.classes_[logits.argmax(axis=1)]  # type: ignore[no-any-return]


class NeuralRegressor(RegressorMixin, _NeuralEstimator):
    """A scikit-learn regressor over one network trained with :class:`lightning.Trainer`.

    Takes the same parameters as :class:`NeuralClassifier`. With ``standardize=True`` the
    targets are standardised too (and predictions mapped back), so the defaults work for
    targets of any scale. ``y`` may be 1-D or ``(n_samples, n_outputs)``.

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

    _task = "regression"

    def _validate_fit_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        return validate_data(  # type: ignore[no-any-return]
            self,
            to_numpy(X),
            to_numpy(y),
            dtype=(np.float64, np.float32),
            ensure_min_samples=2,
            y_numeric=True,
            multi_output=True,
        )

    def _encode_targets(self, y: np.ndarray) -> np.ndarray:
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        targets = np.asarray(y, dtype=np.float64).reshape(len(y), self.n_outputs_)
        self.y_mean_ = targets.mean(axis=0) if self.standardize else np.zeros(self.n_outputs_)
        scale = targets.std(axis=0) if self.standardize else np.ones(self.n_outputs_)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        self._y_ndim = y.ndim
        return ((targets - self.y_mean_) / self.y_scale_).astype(np.float32)

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _set_outputs(self, n_outputs: int, classes: Any) -> None:
        self.n_outputs_, self._y_ndim = n_outputs, 1 if n_outputs == 1 else 2
        self.y_mean_, self.y_scale_ = np.zeros(n_outputs), np.ones(n_outputs)

    def _distillation_targets(
        self, teacher: np.ndarray, y: np.ndarray | None, classes: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        # the teacher's scale defines the standardisation; true targets share it
        soft = self._encode_targets(teacher)
        labels = np.full(soft.shape, np.nan, dtype=np.float32)
        if y is not None:
            known = np.asarray(y, dtype=np.float64).reshape(len(y), self.n_outputs_)
            labels[: len(y)] = (known - self.y_mean_) / self.y_scale_
        return labels, soft

    def predict(self, X: Any) -> np.ndarray:
        """Predictions: ``(n_samples,)`` for 1-D targets, else ``(n_samples, n_outputs)``."""
        prediction = self._forward(X) * self.y_scale_ + self.y_mean_
        return prediction.ravel() if self._y_ndim == 1 else prediction

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _backbone_spec(checkpoint: Path) -> dict[str, Any]:
    """``model.backbone`` of the LightningCLI ``config.yaml`` beside (or above) a checkpoint."""
    import yaml

    for folder in list(checkpoint.parents)[:3]:
        config = folder / "config.yaml"
        if config.is_file():
            spec = (yaml.safe_load(config.read_text()) or {}).get("model", {}).get("backbone")
            if isinstance(spec, dict) and "class_path" in spec:
                return spec
    raise ValueError(
        f"no LightningCLI config.yaml with model.backbone found beside {checkpoint}; pass "
        "backbone= (the trained architecture)"
    )


def _import(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)
