"""Distillation's side of a neural estimator: planning a fit on a teacher's outputs.

:class:`StudentMixin` gives :class:`~members.NeuralClassifier` and
:class:`~members.NeuralRegressor` their ``fit_distill`` and ``plan_distill``: a student learns
cached teacher outputs (Hinton et al., 2015) or a teacher called on every augmented view
(function matching, Beyer et al., 2022), through the same training seam as ``fit``
(:mod:`members.training`); the task (:mod:`members.tasks`) encodes the teacher's outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from members.data import check_sample_weight, positive_rows, to_numpy, validate_inputs
from members.distillation import check_distillation
from members.params import Interval, check_params
from members.training import TrainingPlan, forget_fit, train_network

if TYPE_CHECKING:
    from members.neural import BaseNeuralEstimator
    from members.tasks import Task
    from members.training import Trained


class StudentMixin:
    """``fit_distill`` / ``plan_distill`` for a neural estimator, which provides what is
    declared below: the task, the input scaling, the plan of a run and taking its result."""

    if TYPE_CHECKING:  # what the estimator provides
        task: Task
        max_epochs: int
        standardize: bool

        def accept(self, trained: Trained) -> BaseNeuralEstimator: ...

        def scale_inputs(self, X: np.ndarray) -> np.ndarray: ...

        def _validate_params(self) -> None: ...

        def _fit_scaling(self, X: np.ndarray, sample_weight: np.ndarray | None = None) -> None: ...

        def _plan(
            self,
            X: np.ndarray,
            targets: tuple[np.ndarray, ...],
            max_epochs: int,
            distillation: dict[str, Any] | None = None,
            weights: np.ndarray | None = None,
            **more: Any,
        ) -> TrainingPlan: ...

    def fit_distill(
        self,
        X: Any,
        teacher: Any,
        y: Any = None,
        **options: Any,
    ) -> BaseNeuralEstimator:
        """Train on a teacher's outputs (knowledge distillation) instead of labels alone.

        The network :meth:`plan_distill` plans, with the same arguments.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The transfer set.
        teacher : array-like or callable
            The teacher's outputs on ``X``, or a function of raw rows that computes them.
        y : array-like, optional
            True targets of the first ``len(y)`` rows of ``X``.
        **options
            The keyword arguments of :meth:`plan_distill`.

        Returns
        -------
        self
            The fitted student.
        """
        return self.accept(train_network(self.plan_distill(X, teacher, y, **options)))

    def plan_distill(
        self,
        X: Any,
        teacher: Any,
        y: Any = None,
        *,
        classes: Any = None,
        temperature: float = 2.0,
        alpha: float = 0.9,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        validation_data: tuple[Any, Any] | None = None,
        patience: int | None = None,
        init_from: BaseNeuralEstimator | None = None,
        sample_weight: Any = None,
    ) -> TrainingPlan:
        """The plan that trains this estimator's network on a teacher's outputs.

        Knowledge distillation instead of labels alone; :meth:`fit_distill` runs it.

        Two ways: with ``teacher`` an array, the student learns the outputs the teacher
        computed once on ``X`` (cached targets, Hinton et al., 2015). With ``teacher`` a
        callable, the teacher labels every view the student trains on, freshly drawn by
        ``augment`` each step (function matching, Beyer et al., 2022).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The transfer set.
        teacher : array-like or callable
            Classifier: teacher probabilities ``(n_samples, n_classes)``. Regressor: teacher
            predictions ``(n_samples,)`` or ``(n_samples, n_outputs)``. A callable maps raw
            rows (a float32 array) to such outputs.
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
        augment : callable, optional
            A callable teacher only: ``augment(rows, generator)`` draws views of a tensor of
            raw rows (:class:`members.augment.Augmentation`).
        validation_data : tuple, optional
            ``(X_val, teacher_val)`` or ``(X_val, teacher_val, sample_weight_val)``: held-out
            rows, the teacher's outputs on them (and their weights). Each
            epoch is validated (KL or MSE to the teacher), training stops after ``patience``
            epochs without improvement, and the best epoch's weights are kept.
        patience : int, optional
            Epochs without improvement before stopping (default: never stop early).
        init_from : NeuralClassifier or NeuralRegressor, optional
            A fitted estimator of the same architecture whose network the student starts from
            (a warm start); its input scaling is used too.
        sample_weight : array-like of shape (n_samples,), optional
            Each row's weight in both terms of the loss (a view drawn from a row weighs as the
            row), as in :meth:`fit`; rows of weight 0 are left out.

        Returns
        -------
        TrainingPlan
            The plan; :func:`members.training.train_network` runs it and :meth:`accept` takes
            the result.
        """
        check_distillation(temperature, alpha, "fit_distill")
        self._validate_params()
        check_params(
            "fit_distill",
            {"patience": [Interval(Integral, 1, None, closed="left"), None]},
            patience=patience,
        )
        forget_fit(self)
        X = validate_inputs(self, X, float32=True, ensure_min_samples=2)
        weights = check_sample_weight(sample_weight, X)
        online = callable(teacher)
        if augment is not None and not online:
            raise ValueError(
                "augment needs a callable teacher that labels each view; with cached teacher "
                "outputs, augment the transfer set before computing them"
            )
        outputs = self._teacher_outputs(teacher(X) if online else teacher, len(X), "teacher")
        labels = None if y is None else np.asarray(to_numpy(y))
        if labels is not None and len(labels) > len(X):
            raise ValueError(f"y labels the first rows of X: got {len(labels)} > {len(X)} rows")
        if init_from is not None:
            self._copy_scaling(init_from)
        else:
            self._fit_scaling(X, weights)
        targets: tuple[np.ndarray, ...] = self._distillation_targets(outputs, labels, classes)
        distillation: dict[str, Any] = {"temperature": temperature, "alpha": alpha}
        if online:
            # the network learns the teacher's outputs in its own encoding
            distillation.update(
                teacher=lambda rows: self._distillation_targets(
                    self._teacher_outputs(teacher(rows), len(rows), "teacher(rows)"),
                    None,
                    None,
                    refit=False,
                )[1],
                augment=augment,
                x_mean=getattr(self, "x_mean_", None),
                x_scale=getattr(self, "x_scale_", None),
            )
            targets = (targets[0],)
        X, targets, weights = positive_rows(X, targets, weights)
        validation: dict[str, Any] = {}
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be (X_val, teacher_val) or (X_val, teacher_val, "
                    f"sample_weight_val); got {type(validation_data).__name__}"
                )
            X_val = validate_inputs(self, validation_data[0], float32=True, reset=False)
            val_outputs = self._teacher_outputs(validation_data[1], len(X_val), "teacher_val")
            val_targets = self._distillation_targets(val_outputs, None, None, refit=False)[1]
            val_weights = check_sample_weight(
                validation_data[2] if len(validation_data) == 3 else None, X_val
            )
            validation = {
                "validation": (
                    self.scale_inputs(X_val),
                    val_targets,
                    *([] if val_weights is None else [val_weights.astype(np.float32)]),
                ),
                "patience": patience,
                "monitor": "val_teacher_loss",
            }
        return self._plan(
            X,
            targets,
            self.max_epochs,
            distillation,
            weights=weights,
            initial=None if init_from is None else init_from.model_,
            **validation,
        )

    @staticmethod
    def _teacher_outputs(teacher: Any, n_rows: int, name: str) -> np.ndarray:
        outputs = np.asarray(to_numpy(teacher), dtype=np.float64)
        if len(outputs) != n_rows or not np.isfinite(outputs).all():
            raise ValueError(
                f"{name} must hold finite outputs for every row of X ({n_rows}); got shape "
                f"{outputs.shape}"
            )
        return outputs

    def _copy_scaling(self, other: BaseNeuralEstimator) -> None:
        check_is_fitted(other, "model_")
        if type(other) is not type(self) or other.standardize != self.standardize:
            raise ValueError(
                f"init_from must be a fitted {type(self).__name__} with standardize="
                f"{self.standardize}; got {type(other).__name__}"
            )
        if self.standardize:
            self.x_mean_: np.ndarray = np.asarray(other.x_mean_)
            self.x_scale_: np.ndarray = np.asarray(other.x_scale_)

    def _distillation_targets(
        self, teacher: np.ndarray, y: np.ndarray | None, classes: Any, *, refit: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, soft targets)`` as the network learns them; ``refit=False`` keeps the
        target encoding fitted before (for later batches of an online teacher)."""
        encoding, labels, soft = self.task.distillation_targets(self, teacher, y, classes, refit)
        self.__dict__.update(encoding)
        return labels, soft
