"""Task strategies: everything that differs between classification and regression, in one place.

An estimator or ensemble holds one task (its class attribute ``task``) and asks it, instead of
branching on ``is_classifier``:

- how targets are validated (:meth:`Task.validate`), which rows a split stratifies on
  (:meth:`Task.stratify`) and which member kind is refused (:meth:`Task.is_other_kind`);
- how the target encoding is fitted (:meth:`Task.fit_encoding`: the classes, or the number of
  outputs and the target scaling) and applied (:meth:`Task.encode`), how many outputs it has
  (:meth:`Task.n_outputs`), and the classes' weights (:meth:`Task.class_weights`);
- how network outputs become predictions (:meth:`Task.decode`) and distillation targets
  (:meth:`Task.distillation_targets`);
- how a member's output is read and checked (:meth:`Task.member_output`, with
  :func:`check_member_output`);
- the default losses, by their names in :mod:`combiners.metrics` (:attr:`Task.metric_names`).

A task is stateless: what it fits is returned as the fitted attributes of the estimator
(``classes_``; ``n_outputs_``, ``y_mean_``, ``y_scale_``), which the estimator sets on itself
and passes back as ``fitted`` (any object with those public attributes). So the files saved
before the tasks existed still load: the attributes are the same.

Three tasks: :data:`CLASSIFICATION`, :data:`REGRESSION` and :data:`GAUSSIAN_REGRESSION` (a
network with a second head for the variance: ``NeuralRegressor(loss="gaussian")``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.multiclass import check_classification_targets
from torch import nn

from members.data import (
    FLOAT32_MAX,
    class_weights,
    encode_classes,
    encode_labels,
    validate_inputs,
    weighted_moments,
)
from members.module import VARIANCE_FLOOR, gaussian_parts

__all__ = [
    "CLASSIFICATION",
    "GAUSSIAN_REGRESSION",
    "REGRESSION",
    "TASKS",
    "Task",
    "check_member_output",
    "check_probabilities",
    "task_of",
]


class PriorShift(nn.Module):
    """Class probabilities reweighted by the classes' weights: ``p_c w_c / sum_k p_k w_k``.

    This is how ``class_weight`` acts (Menon et al., 2021, post-hoc logit adjustment): the
    model learns the unweighted problem and its probabilities are moved to the prior the
    weights describe, which is what weighing the loss would reach if the model fitted it
    exactly; a network that interpolates its training rows learns nearly the same function
    whatever they weigh (Byrd and Lipton, 2019), so weighing its loss barely moves it. For two
    classes the shift is monotone: rankings (ROC-AUC) are unchanged.

    Parameters
    ----------
    weights : array-like of shape (n_classes,)
        Each class's weight, ``>= 0`` (a class of weight 0 is never predicted).
    logits : bool, default=False
        Whether the input is logits (softmax first) or probabilities.

    Examples
    --------
    >>> shift = PriorShift(np.array([1.0, 3.0]))
    >>> shift(torch.tensor([[0.75, 0.25]]))
    tensor([[0.5000, 0.5000]])
    """

    log_weight: torch.Tensor

    def __init__(self, weights: Any, *, logits: bool = False) -> None:
        super().__init__()
        with np.errstate(divide="ignore"):
            log_weight = np.log(np.asarray(weights, dtype=np.float64))
        # float64, so that an ensemble's float64 probabilities are shifted exactly; an
        # exported graph casts it to its inputs' float32
        self.register_buffer("log_weight", torch.as_tensor(log_weight, dtype=torch.float64))
        self.logits = logits

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Shifted class probabilities.

        Parameters
        ----------
        values : Tensor of shape (n_samples, n_classes)
            Logits (``logits=True``) or probabilities.

        Returns
        -------
        Tensor of shape (n_samples, n_classes)
            Probabilities, rows summing to one.
        """
        log_weight = self.log_weight.to(values.dtype)
        if self.logits:
            return torch.softmax(values + log_weight, dim=1)
        shifted = values * torch.exp(log_weight)
        return shifted / shifted.sum(dim=1, keepdim=True)


class Task(ABC):
    """What one kind of target needs; see the module docstring. Subclasses: one per kind."""

    #: ``"classification"`` or ``"regression"`` (the :class:`~members.MemberModule` task)
    name: ClassVar[str]
    #: the member method whose output an ensemble fuses
    output_method: ClassVar[str]
    #: the held-out losses a selection or a search minimises, main one first
    metric_names: ClassVar[tuple[str, ...]]
    #: what :func:`members.data.validate_inputs` accepts as targets, besides finite numbers
    target_checks: ClassVar[dict[str, bool]] = {}
    #: network columns per target column
    heads: ClassVar[int] = 1
    #: the kind of member an ensemble of this task refuses, and its name
    other_kind: ClassVar[str]

    @property
    def classification(self) -> bool:
        return self.name == "classification"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- targets -----------------------------------------------------------------------------
    def validate(self, owner: Any, X: Any, y: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)`` validated for ``owner`` (scikit-learn's ``validate_data``; ``kwargs``
        pass on), the targets checked for this task."""
        return validate_inputs(owner, X, y, **self.target_checks, **kwargs)  # type: ignore[no-any-return]

    def stratify(self, encoded: np.ndarray) -> np.ndarray | None:
        """What a random split stratifies on: the encoded classes, or nothing."""
        return None

    def is_other_kind(self, estimator: Any) -> bool:
        """Whether ``estimator`` is of the other task (a regressor in a classification
        ensemble, and back); an estimator of neither kind is not."""
        return not self.accepts(estimator) and (is_classifier(estimator) or is_regressor(estimator))

    @abstractmethod
    def accepts(self, estimator: Any) -> bool:
        """Whether ``estimator`` is of this task (scikit-learn's estimator type)."""

    @abstractmethod
    def fit_encoding(
        self,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        owner: str,
        scale: bool | None = None,
    ) -> dict[str, Any]:
        """The fitted attributes that say how targets are encoded (see the subclasses)."""

    @abstractmethod
    def fitted_encoding(self, fitted: Any) -> dict[str, Any]:
        """What :meth:`fit_encoding` gave ``fitted``: another estimator that takes it encodes
        targets as ``fitted`` does (a fine-tune of its network)."""

    @abstractmethod
    def encode(self, fitted: Any, y: Any) -> np.ndarray:
        """Targets as a network or a combiner learns them, with ``fitted``'s encoding."""

    @abstractmethod
    def n_outputs(self, fitted: Any) -> int:
        """The number of target columns of ``fitted``."""

    def module_loss(self, loss: str | None) -> str | None:
        """The ``loss`` a :class:`~members.MemberModule` of this task takes for an estimator's
        ``loss`` parameter (a classifier's cross-entropy is the module's only one: ``None``)."""
        return loss

    def class_weights(
        self,
        fitted: Any,
        encoded: np.ndarray,
        sample_weight: np.ndarray | None,
        class_weight: Any = None,
    ) -> np.ndarray | None:
        """The classes' weights ``class_weight_`` (a classification task; ``None`` here):
        they shift the predicted probabilities (:class:`PriorShift`), not the loss."""
        return None

    # -- outputs -----------------------------------------------------------------------------
    @abstractmethod
    def head(self, fitted: Any, *, return_std: bool = False) -> nn.Module:
        """What ``fitted``'s prediction does to the network's raw outputs, as a torch module:
        :meth:`decode` runs it, and an exported graph (:mod:`members.export`) holds it."""

    def mix(self, outputs: torch.Tensor) -> torch.Tensor:
        """The raw outputs of sub-networks, ``(n_members, n_samples, n_columns)``, as one
        network's raw outputs whose :meth:`decode` is the mean of the members' decoded
        predictions (an ensemble inside one network predicts as its equal-weight mixture).
        Regression: the mean of the members' outputs."""
        return outputs.mean(dim=0)

    def decode(self, fitted: Any, outputs: np.ndarray) -> np.ndarray:
        """Network outputs ``(n_samples, n_columns)`` as ``fitted`` predicts them."""
        with torch.no_grad():
            return self.head(fitted)(torch.from_numpy(outputs)).numpy()  # type: ignore[no-any-return]

    @abstractmethod
    def outputs_of(self, n_outputs: int, classes: Any) -> dict[str, Any]:
        """The fitted attributes of a network with ``n_outputs`` target columns that was
        trained elsewhere (a checkpoint); ``classes`` names a classifier's columns."""

    @abstractmethod
    def distillation_targets(
        self, fitted: Any, teacher: np.ndarray, y: np.ndarray | None, classes: Any, refit: bool
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """``(fitted attributes, labels, soft targets)`` for a student that learns the
        ``teacher``'s outputs (and the true targets ``y`` of the first rows); ``refit=False``
        keeps ``fitted``'s encoding (a later batch of an online teacher) and fits nothing."""

    @abstractmethod
    def member_output(self, member: Any, X: np.ndarray, fitted: Any, name: str) -> np.ndarray:
        """Member ``name``'s output on ``X``, ``(n_samples, n_outputs)``, checked by
        :func:`check_member_output`."""


class Classification(Task):
    """Class labels: encoded as indices into the sorted ``classes_``; softmax outputs."""

    name = "classification"
    output_method = "predict_proba"
    metric_names = ("nll", "error")
    other_kind = "regressor"

    def validate(self, owner: Any, X: Any, y: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = super().validate(owner, X, y, **kwargs)
        check_classification_targets(y)
        return X, y

    def stratify(self, encoded: np.ndarray) -> np.ndarray | None:
        return encoded

    def module_loss(self, loss: str | None) -> str | None:
        return None

    def accepts(self, estimator: Any) -> bool:
        return is_classifier(estimator)

    def fit_encoding(
        self,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        owner: str,
        scale: bool | None = None,
    ) -> dict[str, Any]:
        """``{"classes_": the sorted labels}``; at least two classes."""
        classes, _ = encode_classes(y, owner)
        return {"classes_": classes}

    def fitted_encoding(self, fitted: Any) -> dict[str, Any]:
        return {"classes_": np.asarray(fitted.classes_)}

    def encode(self, fitted: Any, y: Any) -> np.ndarray:
        """Class indices into ``fitted.classes_``; a label not among them is refused."""
        return encode_labels(y, fitted.classes_)

    def n_outputs(self, fitted: Any) -> int:
        return len(fitted.classes_)

    def class_weights(
        self,
        fitted: Any,
        encoded: np.ndarray,
        sample_weight: np.ndarray | None,
        class_weight: Any = None,
    ) -> np.ndarray | None:
        return class_weights(class_weight, fitted.classes_, encoded, sample_weight)

    def head(self, fitted: Any, *, return_std: bool = False) -> nn.Module:
        """Logits to class probabilities, shifted by the classes' weights when it has them."""
        weights = getattr(fitted, "class_weight_", None)
        return nn.Softmax(dim=1) if weights is None else PriorShift(weights, logits=True)

    def outputs_of(self, n_outputs: int, classes: Any) -> dict[str, Any]:
        classes = np.arange(n_outputs) if classes is None else np.asarray(classes)
        if len(classes) != n_outputs:
            raise ValueError(
                f"classes names {len(classes)} classes but the network has {n_outputs} outputs"
            )
        return {"classes_": classes}

    def distillation_targets(
        self, fitted: Any, teacher: np.ndarray, y: np.ndarray | None, classes: Any, refit: bool
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        check_probabilities(teacher, "teacher")
        if teacher.ndim != 2:
            raise ValueError(
                "teacher must hold class probabilities of shape (n_samples, n_classes >= 2); "
                f"got shape {teacher.shape}"
            )
        labels = np.full(len(teacher), -1, dtype=np.int64)
        if not refit:
            if teacher.shape[1] != len(fitted.classes_):
                raise ValueError(
                    f"the teacher gave {teacher.shape[1]} columns on a batch; it gave "
                    f"{len(fitted.classes_)} on the training rows"
                )
            return {}, labels, teacher.astype(np.float32)
        if classes is None:
            classes = np.arange(teacher.shape[1]) if y is None else np.unique(y)
        classes = np.asarray(classes)
        if len(classes) != teacher.shape[1]:
            raise ValueError(
                f"classes names {len(classes)} classes but teacher has {teacher.shape[1]} columns"
            )
        if y is not None:
            labels[: len(y)] = encode_labels(y, classes)
        return {"classes_": classes}, labels, teacher.astype(np.float32)

    def member_output(self, member: Any, X: np.ndarray, fitted: Any, name: str) -> np.ndarray:
        """Member ``name``'s probabilities on ``X``, laid out on ``fitted.classes_`` (a member
        may lack some, e.g. one trained on a fold without them). A member with hard
        predictions only counts as a one-hot vote."""
        classes = fitted.classes_
        proba = np.zeros((len(X), len(classes)))
        if hasattr(member, "predict_proba"):
            columns = _class_columns(classes, member.classes_, name)
            proba[:, columns] = check_member_output(
                member.predict_proba(X),
                name,
                "predict_proba",
                (len(X), len(columns)),
                probabilities=True,
            )
        else:
            labels = np.asarray(member.predict(X))
            if labels.shape != (len(X),):
                raise ValueError(
                    f"member {name!r}: predict returned shape {labels.shape}; expected "
                    f"({len(X)},), one label per sample"
                )
            proba[np.arange(len(X)), _class_columns(classes, labels, name)] = 1.0
        return proba

    def mix(self, outputs: torch.Tensor) -> torch.Tensor:
        """Logits whose softmax is the mean of the members' softmax: ``log mean_m p_m``."""
        log_proba = torch.log_softmax(outputs, dim=-1)
        return torch.logsumexp(log_proba, dim=0) - math.log(outputs.shape[0])


class Regression(Task):
    """Real targets, ``(n_samples,)`` or ``(n_samples, n_outputs)``: a network learns them
    standardised (``scale=True``) and predicts them back in their units."""

    name = "regression"
    output_method = "predict"
    metric_names = ("rmse",)
    target_checks: ClassVar[dict[str, bool]] = {"y_numeric": True, "multi_output": True}
    other_kind = "classifier"

    def accepts(self, estimator: Any) -> bool:
        return is_regressor(estimator)

    def fit_encoding(
        self,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        owner: str,
        scale: bool | None = None,
    ) -> dict[str, Any]:
        """``n_outputs_`` and the target's dimensions; with ``scale`` given, the target
        scaling ``y_mean_`` / ``y_scale_`` (the weighted moments when ``scale``, else none)."""
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        fitted: dict[str, Any] = {"n_outputs_": n_outputs, "_y_ndim": y.ndim}
        if scale is not None:
            targets = np.asarray(y, dtype=np.float64).reshape(len(y), n_outputs)
            largest = float(np.abs(targets).max()) if targets.size else 0.0
            if scale:
                with np.errstate(over="ignore", invalid="ignore"):
                    mean, spread = weighted_moments(targets, sample_weight)
                if not (np.isfinite(mean).all() and np.isfinite(spread).all()):
                    raise ValueError(
                        f"{owner}: y has values up to {largest:.3g}, too large to standardise "
                        "(their spread overflows float64, and every prediction would be "
                        "infinite); rescale y, for example to its units in thousands or millions"
                    )
            else:
                if largest > FLOAT32_MAX:
                    raise ValueError(
                        f"{owner}: y has values up to {largest:.3g}, beyond float32's range "
                        f"({FLOAT32_MAX:.3g}), in which the network learns them; rescale y, or "
                        "set standardize=True"
                    )
                mean, spread = np.zeros(n_outputs), np.ones(n_outputs)
            fitted.update(y_mean_=mean, y_scale_=np.where(spread > 0, spread, 1.0))
        return fitted

    def fitted_encoding(self, fitted: Any) -> dict[str, Any]:
        encoding = {"n_outputs_": int(fitted.n_outputs_), "_y_ndim": fitted.target_ndim}
        for name in ("y_mean_", "y_scale_"):
            if hasattr(fitted, name):
                encoding[name] = np.asarray(getattr(fitted, name))
        return encoding

    def encode(self, fitted: Any, y: Any) -> np.ndarray:
        """Targets standardised with ``fitted.y_mean_`` and ``y_scale_``, ``(n_samples,
        n_outputs)`` float32, when it has them (a network); as floats of their own shape
        otherwise (an ensemble's combiner takes ``(n_samples,)`` or ``(n_samples,
        n_outputs)``)."""
        targets = np.asarray(y, dtype=np.float64)
        if targets.size != len(targets) * fitted.n_outputs_:
            raise ValueError(
                f"y must have {fitted.n_outputs_} output(s) per sample, as in fit; got shape "
                f"{targets.shape}"
            )
        if not hasattr(fitted, "y_mean_"):
            return targets
        targets = targets.reshape(len(targets), fitted.n_outputs_)
        return ((targets - fitted.y_mean_) / fitted.y_scale_).astype(np.float32)

    def n_outputs(self, fitted: Any) -> int:
        return int(fitted.n_outputs_)

    def head(self, fitted: Any, *, return_std: bool = False) -> nn.Module:
        """The means in the targets' units, ``(n_samples,)`` for 1-D targets (a Gaussian
        head's variances, after the means, are left out unless ``return_std``)."""
        return TargetScaling(
            fitted.y_mean_, fitted.y_scale_, flat=fitted.target_ndim == 1, return_std=return_std
        )

    def outputs_of(self, n_outputs: int, classes: Any) -> dict[str, Any]:
        return {
            "n_outputs_": n_outputs,
            "_y_ndim": 1 if n_outputs == 1 else 2,
            "y_mean_": np.zeros(n_outputs),
            "y_scale_": np.ones(n_outputs),
        }

    def distillation_targets(
        self, fitted: Any, teacher: np.ndarray, y: np.ndarray | None, classes: Any, refit: bool
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        # the teacher's scale defines the standardisation; true targets share it
        attributes = self.fit_encoding(teacher, owner="", scale=fitted.standardize) if refit else {}
        encoding = SimpleNamespace(**attributes) if refit else fitted
        soft = self.encode(encoding, teacher)
        labels = np.full(soft.shape, np.nan, dtype=np.float32)
        if y is not None:
            labels[: len(y)] = self.encode(encoding, y)
        return attributes, labels, soft

    def member_output(self, member: Any, X: np.ndarray, fitted: Any, name: str) -> np.ndarray:
        """Member ``name``'s predictions on ``X`` as ``(n_samples, n_outputs)`` (one output
        may come as ``(n_samples,)``)."""
        n_outputs = fitted.n_outputs_
        output = member.predict(X)
        shape = (len(X),) if n_outputs == 1 and np.ndim(output) == 1 else (len(X), n_outputs)
        return check_member_output(output, name, "predict", shape).reshape(len(X), n_outputs)


class GaussianRegression(Regression):
    """Regression by a network with a second head per output for the variance (the Gaussian
    negative log-likelihood, ``NeuralRegressor(loss="gaussian")``)."""

    heads = 2

    def mix(self, outputs: torch.Tensor) -> torch.Tensor:
        """The mixture's mean and variance (the law of total variance), with the variance
        given back as the raw output whose ``softplus + VARIANCE_FLOOR`` it is."""
        means, variances = gaussian_parts(outputs)
        mean = means.mean(dim=0)
        variance = (variances + means**2).mean(dim=0) - mean**2
        excess = (variance - VARIANCE_FLOOR).clamp_min(1e-12)
        # softplus inverted: log(exp(v) - 1), taken as v where exp(v) would overflow
        raw = torch.where(excess > 20, excess, torch.log(torch.expm1(excess.clamp(max=20))))
        return torch.cat([mean, raw], dim=-1)


CLASSIFICATION = Classification()
REGRESSION = Regression()
GAUSSIAN_REGRESSION = GaussianRegression()
#: the tasks by name (a data set's ``task``)
TASKS: dict[str, Task] = {"classification": CLASSIFICATION, "regression": REGRESSION}


def task_of(estimator: Any) -> Task:
    """The task of any scikit-learn estimator: its own ``task`` when it has one, else
    classification for a classifier and regression otherwise."""
    task = getattr(estimator, "task", None)
    if isinstance(task, Task):
        return task
    return CLASSIFICATION if is_classifier(estimator) else REGRESSION


def _class_columns(classes: np.ndarray, labels: Any, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    columns = np.searchsorted(classes, labels)
    known = columns < len(classes)
    known[known] = classes[columns[known]] == labels[known]
    if not known.all():
        raise ValueError(
            f"member {name!r} predicts classes {np.unique(labels[~known])[:5].tolist()} that "
            f"are not among the ensemble's classes {classes.tolist()}"
        )
    return columns  # type: ignore[no-any-return]


def check_probabilities(proba: Any, what: str) -> np.ndarray:
    """Class probabilities where they enter a network's side: a member's outputs, a teacher's
    targets. The rule is :func:`combiners.metrics.check_proba`'s (entries in [0, 1] within
    1e-6, each row summing to 1 within 1e-3, finite, at least 2 columns), written here too
    because ``members`` may not import ``combiners`` (ARCHITECTURE.md: the floors).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        What should be class probabilities.
    what : str
        What they are, for the error.

    Returns
    -------
    ndarray
        ``proba`` as float64.

    Examples
    --------
    >>> check_probabilities([[0.2, 0.8]], "teacher")
    array([[0.2, 0.8]])
    """
    array = np.asarray(proba, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 2:
        raise ValueError(
            f"{what} must be class probabilities of shape (n_samples, n_classes >= 2); got "
            f"shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{what} must be class probabilities; got NaN or infinite values")
    if array.size == 0:
        return array
    sums = array.sum(axis=1)
    worst = int(np.abs(sums - 1.0).argmax())
    if array.min() < -1e-6 or array.max() > 1 + 1e-6 or abs(sums[worst] - 1.0) > 1e-3:
        raise ValueError(
            f"{what} must be class probabilities (entries in [0, 1], each row summing to 1); "
            f"got values in [{array.min():.3g}, {array.max():.3g}] and a row summing to "
            f"{sums[worst]:.6g} (row {worst})"
        )
    return array


def check_member_output(
    output: Any,
    name: str,
    method: str,
    shape: tuple[int, ...],
    *,
    probabilities: bool = False,
) -> np.ndarray:
    """Member ``name``'s ``method`` output as a float64 array of ``shape``, or an error naming
    the member: wrong shape, NaN or infinity, or (``probabilities``) rows that are not
    probability distributions (entries in [0, 1], each row summing to 1 within 1e-3).

    Examples
    --------
    >>> check_member_output([[0.2, 0.8]], "mlp", "predict_proba", (1, 2), probabilities=True)
    array([[0.2, 0.8]])
    """
    try:
        array = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"member {name!r}: {method} must return numbers; got {type(output).__name__} ({error})"
        ) from None
    if array.shape != shape:
        raise ValueError(
            f"member {name!r}: {method} returned shape {array.shape}; expected {shape} "
            "(one row per sample, one column per output)"
        )
    if not np.isfinite(array).all():
        rows = np.flatnonzero(~np.isfinite(array.reshape(len(array), -1)).all(axis=1))
        raise ValueError(
            f"member {name!r}: {method} returned NaN or infinite values in {len(rows)} of "
            f"{len(array)} rows (first: {rows[:5].tolist()})"
        )
    if probabilities and array.size:
        check_probabilities(array, f"member {name!r}: {method}")
    return array


class TargetScaling(nn.Module):
    """A regression network's standardised outputs back in the targets' units.

    The first ``n_outputs`` columns are the means; with ``return_std``, the columns after them
    (a Gaussian head's raw variances) become standard deviations in the same units.

    Parameters
    ----------
    mean, scale : array-like of shape (n_outputs,)
        The fitted target scaling (``y_mean_``, ``y_scale_``).
    flat : bool
        Return ``(n_samples,)`` (targets fitted 1-D) instead of ``(n_samples, n_outputs)``.
    return_std : bool, default=False
        Also return the standard deviations.

    Examples
    --------
    >>> head = TargetScaling(np.array([10.0]), np.array([2.0]), flat=True)
    >>> head(torch.tensor([[1.0], [0.0]], dtype=torch.float64))
    tensor([12., 10.], dtype=torch.float64)
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, mean: Any, scale: Any, *, flat: bool, return_std: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float64)))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float64)))
        self.n_outputs = len(self.mean)
        self.flat, self.return_std = flat, return_std

    def forward(self, output: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Means (and standard deviations) in the targets' units.

        Parameters
        ----------
        output : Tensor of shape (n_samples, n_columns)
            The network's raw outputs.

        Returns
        -------
        Tensor, or a tuple of two Tensors
            The predictions, and with ``return_std`` their standard deviations.
        """
        mean = output[:, : self.n_outputs] * self.scale + self.mean
        if not self.return_std:
            return mean.reshape(-1) if self.flat else mean
        std = gaussian_parts(output)[1].sqrt() * self.scale
        return (mean.reshape(-1), std.reshape(-1)) if self.flat else (mean, std)
