"""Distillation: compress a fitted ensemble into one student network, and report on it."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from combiners.metrics import kl_rows, nll_rows, squared_error_rows
from members import NeuralClassifier, NeuralRegressor
from members.augment import augmentation_for
from members.data import (
    check_sample_weight,
    positive_rows,
    split_rows,
    to_numpy,
    validate_inputs,
)
from members.distillation import check_distillation
from members.params import Interval, StrOptions, check_params
from members.subnetworks import is_sub_network_backbone
from members.tasks import task_of
from members.trainer import while_training
from members.training import draw_seed, seeded

AUGMENTATIONS = (None, "noise", "mixup", "munge")
FUNCTION_MATCHING_AUGMENTATIONS = (None, "auto", "mixup", "signal", "image")
LATENCY_ROWS = 10_000


def augment_rows(
    X: np.ndarray, method: str, n_copies: int, rng: np.random.RandomState
) -> np.ndarray:
    """``n_copies`` new rows per sample of ``X`` for the transfer set (unlabelled).

    - ``"noise"``: Gaussian noise of 0.1 times each feature's standard deviation.
    - ``"mixup"``: convex combinations of random pairs, weight ~ Beta(0.4, 0.4).
    - ``"munge"`` (Bucila et al., 2006): each feature, with probability 0.5, is redrawn around
      the value of the sample's nearest neighbour (standard deviation |difference| / 2).
    """
    scale = X.std(axis=0)
    copies = []
    for _ in range(n_copies):
        if method == "noise":
            copies.append(X + 0.1 * scale * rng.standard_normal(X.shape))
        elif method == "mixup":
            partner = X[rng.permutation(len(X))]
            weight = rng.beta(0.4, 0.4, size=(len(X), 1))
            copies.append(weight * X + (1 - weight) * partner)
        else:
            standardised = X / np.where(scale > 0, scale, 1.0)
            _, neighbours = NearestNeighbors(n_neighbors=2).fit(standardised).kneighbors()
            neighbour = X[neighbours[:, 1]]
            swap = rng.uniform(size=X.shape) < 0.5
            drawn = rng.normal(neighbour, np.abs(X - neighbour) / 2)
            copies.append(np.where(swap, drawn, X))
    return np.concatenate(copies)


def default_student(ensemble: Any) -> Any:
    """An unfitted copy of the neural member whose architecture the student should have.

    The member that scored best on the held-out rows of the ensemble's fit
    (``held_out_scores_``, which the default fit has): a student learns the ensemble's
    function best in the architecture that fits the data best on its own (a pool whose gain
    comes from convolutional members gets a convolutional student, not a copy of its
    smallest MLP). Without held-out scores (a fixed rule fitted with ``cv=None``), the smallest
    neural member (by parameter count). The default fit's warm refit leaves each member with
    the parameters the user gave it (its epochs, no ``init``), so the copy trains as asked. A
    copy of a Gaussian member (``loss="gaussian"``) learns the ensemble's mean, so it gets
    ``loss=None``.
    """
    # a student is one network: an ensemble inside one network is not copied as one
    neural = [
        (name, member)
        for name, member in ensemble.named_members_.items()
        if isinstance(member, NeuralClassifier | NeuralRegressor)
        and not is_sub_network_backbone(member.module)
    ]
    if not neural:
        raise TypeError(
            "the ensemble has no neural member to copy as the student; pass "
            "student=NeuralClassifier(...) (or NeuralRegressor(...)) to distill"
        )
    scores = getattr(ensemble, "held_out_scores_", None)
    if scores is not None:
        loss = next(iter(scores["ensemble"]))
        chosen = min(neural, key=lambda pair: scores[pair[0]][loss])[1]
    else:
        chosen = min((member for _, member in neural), key=n_parameters)
    student = clone(chosen)
    if getattr(student, "loss", None) == "gaussian":
        student.set_params(loss=None)
    return student


def same_architecture(member: Any, student: Any) -> bool:
    """Whether ``member`` is a network of the ``student``'s class, module and module_kwargs."""
    return (
        type(member) is type(student)
        and member.module == student.module
        and member.module_kwargs == student.module_kwargs
    )


def n_parameters(estimator: Any) -> int:
    return sum(p.numel() for p in estimator.model_.parameters())


METHODS = ("function_matching", "cached")
# function matching's defaults, chosen on validation splits of the training data
# (python experiments/mnist1d_distill.py --select; the numbers are in its docstring)
TEMPERATURE = 2.0
BUDGET = 3  # the student trains for up to BUDGET x its own max_epochs ...
PATIENCE_FRACTION = 0.25  # ... and stops once a quarter of that passes without improvement
VALIDATION_FRACTION = 0.1
WARM_START = False


def distill_options(
    *,
    method: str = "function_matching",
    temperature: float | None = None,
    alpha: float | None = None,
    augment: str | None = "auto",
    n_augment: int = 1,
    budget: float | None = None,
    validation_fraction: float | None = None,
    warm_start: bool | None = None,
) -> dict[str, Any]:
    """Check :func:`distill`'s options (a study config checks them before training anything);
    return ``temperature``, ``alpha`` and ``augment`` with the method's defaults filled in."""
    check_params(
        "distill",
        {
            "method": [StrOptions(set(METHODS))],
            "n_augment": [Interval(Integral, 1, None, closed="left")],
            "budget": [Interval(Real, 0, None, closed="neither"), None],
            "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
            "warm_start": ["boolean", None],
        },
        method=method,
        n_augment=n_augment,
        budget=budget,
        validation_fraction=validation_fraction,
        warm_start=warm_start,
    )
    matching = method == "function_matching"
    if not matching and augment == "auto":
        augment = None  # cached targets: the transfer set is the rows as given
    temperature = (TEMPERATURE if matching else 2.0) if temperature is None else temperature
    alpha = (1.0 if matching else 0.9) if alpha is None else alpha
    check_distillation(temperature, alpha, "distill")
    options = set(FUNCTION_MATCHING_AUGMENTATIONS if matching else AUGMENTATIONS)
    check_params("distill", {"augment": [StrOptions(options - {None}), None]}, augment=augment)
    if not matching:
        extra = {
            name: value
            for name, value in [
                ("budget", budget),
                ("validation_fraction", validation_fraction),
                ("warm_start", warm_start),
            ]
            if value is not None
        }
        if extra:
            raise ValueError(
                f"{', '.join(extra)} apply to method='function_matching' only; got method='cached'"
            )
    elif n_augment != 1:
        raise ValueError(
            "n_augment applies to method='cached' only: function matching draws a new view "
            "of every batch"
        )
    return {"temperature": temperature, "alpha": alpha, "augment": augment}


def distill(
    ensemble: Any,
    X: Any,
    y: Any = None,
    *,
    student: Any = None,
    method: str = "function_matching",
    temperature: float | None = None,
    alpha: float | None = None,
    augment: str | None = "auto",
    n_augment: int = 1,
    X_unlabeled: Any = None,
    budget: float | None = None,
    validation_fraction: float | None = None,
    warm_start: bool | None = None,
    random_state: int | np.random.RandomState | None = None,
    sample_weight: Any = None,
) -> Any:
    """Train one student network on a fitted ensemble's outputs (see ``BaseEnsemble.distill``).

    ``sample_weight`` weighs the rows of ``X`` in the student's loss and in the held-out
    loss that stops it (rows of weight 0 are left out before the held-out rows are drawn); the
    rows of ``X_unlabeled`` weigh 1, an augmented row as the row it was made from (mixup: the
    first of its two rows).
    """
    check_is_fitted(ensemble)
    options = distill_options(
        method=method,
        temperature=temperature,
        alpha=alpha,
        augment=augment,
        n_augment=n_augment,
        budget=budget,
        validation_fraction=validation_fraction,
        warm_start=warm_start,
    )
    matching = method == "function_matching"
    temperature, alpha, augment = options["temperature"], options["alpha"], options["augment"]
    task = task_of(ensemble)
    kind = STUDENTS[task.name]
    student = default_student(ensemble) if student is None else clone(student)
    if not isinstance(student, kind):
        raise TypeError(
            f"student must be an unfitted {kind.__name__} (a neural estimator); "
            f"got {type(student).__name__}"
        )
    if getattr(student, "loss", None) == "gaussian":
        raise ValueError(
            "student=NeuralRegressor(loss='gaussian') cannot be distilled: the student learns the "
            "ensemble's prediction, so its variance head would learn nothing; use loss=None"
        )
    rng = check_random_state(random_state)
    X = validate_X(ensemble, X)
    labels = None if y is None else np.asarray(to_numpy(y))
    if labels is not None and len(labels) != len(X):
        raise ValueError(f"y must label every row of X: got {len(labels)} labels for {len(X)} rows")
    weights = check_sample_weight(sample_weight, X)
    # a row of weight 0 is left out, as in a network's fit: before the held-out rows are drawn
    X, given, weights = positive_rows(X, () if labels is None else (labels,), weights)
    labels = given[0] if given else None
    unlabeled = None if X_unlabeled is None else validate_X(ensemble, X_unlabeled)
    n_unlabeled = 0 if unlabeled is None else len(unlabeled)

    def transfer_weights(rows: Any) -> np.ndarray | None:
        """The weights of ``X[rows]`` then 1 for each unlabelled row (None: unweighted)."""
        return None if weights is None else np.r_[weights[rows], np.ones(n_unlabeled)]

    if student.random_state is None and random_state is not None:
        student.set_params(random_state=draw_seed(rng))
    # a classifier's student learns the ensemble's classes (a regressor's has none)
    kwargs = {"classes": getattr(ensemble, "classes_", None)}
    teach = getattr(ensemble, task.output_method)
    if matching:
        # the same outputs, without input checks and with float32 networks: fast per batch
        teach = ensemble.fused_function()
    what = f"the distillation student ({type(student).__name__})"
    if not matching:
        parts = [X] if unlabeled is None else [X, unlabeled]
        cached_weights = transfer_weights(slice(None))
        if augment is not None:
            parts.append(augment_rows(np.concatenate(parts), augment, n_augment, rng))
            if cached_weights is not None:  # each copy follows the rows in order
                cached_weights = np.tile(cached_weights, n_augment + 1)
        transfer = np.concatenate(parts)
        # the ensemble labels the transfer set once; the student then trains on cached targets
        with while_training(what):
            return student.fit_distill(
                transfer,
                teach(transfer),
                labels,
                temperature=temperature,
                alpha=alpha,
                sample_weight=cached_weights,
                **kwargs,
            )
    fit_rows, held_out = split_rows(
        len(X),
        validation_fraction or VALIDATION_FRACTION,
        None if labels is None else task.stratify(labels),
        rng,
        what="the student",
        min_train=2,
    )
    transfer = X[fit_rows] if unlabeled is None else np.concatenate([X[fit_rows], unlabeled])
    initial = None
    if WARM_START if warm_start is None else warm_start:
        initial = best_member(
            ensemble,
            student,
            X[held_out],
            labels,
            held_out,
            None if weights is None else weights[held_out],
        )
        if initial is None and warm_start:
            raise ValueError(
                "warm_start=True needs a member of the student's architecture (the same class, "
                f"module and module_kwargs) to start from; the student is {student.module!r} "
                f"with module_kwargs={student.module_kwargs!r}"
            )
    epochs = max(1, round((BUDGET if budget is None else budget) * student.max_epochs))
    student.set_params(max_epochs=epochs)
    n_outputs = task.n_outputs(ensemble)
    views = None
    if augment is not None:
        # a throwaway network, only to see what the student reads (a signal, an image...);
        # built under a seed so that the caller's global torch RNG does not move
        with seeded(0):
            network = student.build_network(X.shape[1], n_outputs)
        views = augmentation_for(network, X, augment)
    with while_training(what):
        return student.fit_distill(
            transfer,
            teach,
            None if labels is None else labels[fit_rows],
            temperature=temperature,
            alpha=alpha,
            augment=views,
            validation_data=(
                X[held_out],
                teach(X[held_out]),
                *([] if weights is None else [weights[held_out]]),
            ),
            patience=max(1, round(PATIENCE_FRACTION * epochs)),
            init_from=initial,
            sample_weight=transfer_weights(fit_rows),
            **kwargs,
        )


def best_member(
    ensemble: Any,
    student: Any,
    X_val: np.ndarray,
    labels: Any,
    held_out: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> Any:
    """The member of the student's architecture that fits the held-out rows best (log-loss
    or squared error against the labels; against the ensemble without them; each row weighted
    by ``sample_weight``, the held-out rows' weights, when given); ``None`` when no member
    shares the student's architecture."""
    same = [member for member in ensemble.members_ if same_architecture(member, student)]
    if not same:
        return None
    task = task_of(ensemble)
    predict = task.output_method
    row_loss: Callable[[np.ndarray, np.ndarray], np.ndarray]
    if labels is None:
        # against the ensemble: KL ranks the members as the cross-entropy does
        reference = getattr(ensemble, predict)(X_val)
        row_loss = REFERENCE_LOSSES[task.name]
    else:
        reference = task.encode(ensemble, labels[held_out])
        row_loss = LABEL_LOSSES[task.name]
    losses = [row_loss(reference, getattr(m, predict)(X_val)) for m in same]
    scores = [np.average(loss, weights=sample_weight) for loss in losses]
    return same[int(np.argmin(scores))]


# What differs by task (members.tasks) in distillation, by the task's name: the student's
# class, and a member's row losses against labels and against the ensemble.
STUDENTS = {"classification": NeuralClassifier, "regression": NeuralRegressor}
RowLoss = Callable[[np.ndarray, np.ndarray], np.ndarray]
LABEL_LOSSES: dict[str, RowLoss] = {"classification": nll_rows, "regression": squared_error_rows}
REFERENCE_LOSSES: dict[str, RowLoss] = {"classification": kl_rows, "regression": squared_error_rows}


def validate_X(ensemble: Any, X: Any) -> np.ndarray:
    """``X`` checked against the fitted ensemble: numeric, finite, its number of features."""
    return np.asarray(validate_inputs(ensemble, X, reset=False))
