"""Fusion in weight space: model soups, aligned averages and interpolation curves.

A soup (Wortsman et al., ICML 2022) averages the weights of networks of one architecture into
one network: the cost of predicting with it is one network's, and it takes no training beyond
the members'. It works when the members lie in one basin of the loss, as fine-tunes of one
network do (``NeuralClassifier(init=fitted)``) and a snapshot ensemble's snapshots do. Networks
trained from different initialisations are first aligned (``align="weights"``: weight
matching; ``align="activations"``: activation matching on training rows;
:mod:`members.permutation`). :func:`loss_barrier` measures how far apart two networks are: the
loss along the straight line between their weights.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ensembles.metrics import encode_labels, nll, rmse
from members.averaging import average_networks, has_batch_norm, refresh_batch_norm
from members.neural import ARCHITECTURE_PARAMS, BaseNeuralEstimator
from members.permutation import (
    activation_matching,
    permutation_spec,
    permute,
    weight_matching,
)
from members.tasks import task_of

METHODS = ("greedy", "uniform")
ALIGNMENTS = (None, "weights", "activations")


def _named(members: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """``members`` as ``(label, estimator)`` pairs (``member 'name'`` for a named one, the
    label errors use; ``members[i]`` otherwise), and their names."""
    if isinstance(members, BaseNeuralEstimator) or not isinstance(members, Sequence | tuple):
        raise TypeError(
            "members must be a list of fitted NeuralClassifier / NeuralRegressor estimators "
            f"(or of (name, estimator) pairs); got {type(members).__name__}"
        )
    named, names = [], []
    for i, item in enumerate(members):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            named.append((f"member {item[0]!r}", item[1]))
            names.append(item[0])
        else:
            named.append((f"members[{i}]", item))
            names.append(f"members[{i}]")
    if not named:
        raise ValueError("members is empty; a soup needs at least one fitted network")
    return named, names


def _check_members(named: list[tuple[str, Any]]) -> None:
    """Refuse members that cannot be averaged, naming the first difference."""
    first_name, first = named[0]
    for name, member in named:
        if not isinstance(member, BaseNeuralEstimator):
            raise TypeError(
                f"{name} is a {type(member).__name__}; a soup averages networks' weights, so "
                "every member must be a fitted NeuralClassifier or NeuralRegressor"
            )
        check_is_fitted(member, "model_")
        if type(member) is not type(first):
            raise TypeError(
                f"{name} is a {type(member).__name__} but {first_name} a "
                f"{type(first).__name__}; a soup averages networks of one kind"
            )
        if member.sub_networks != 1:
            raise ValueError(
                f"{name} holds an ensemble inside one network ({member.sub_networks} "
                "sub-networks); a soup averages single networks"
            )
        if not any(p.is_floating_point() for p in member.model_.parameters()):
            raise ValueError(f"{name} holds a quantised network; a soup averages float weights")
    params = [member.get_params(deep=False) for _, member in named]
    for (name, member), mine in zip(named[1:], params[1:], strict=True):
        for key in ARCHITECTURE_PARAMS:
            if mine[key] != params[0][key]:
                raise ValueError(
                    f"{name} has {key}={mine[key]!r} but {first_name} has "
                    f"{key}={params[0][key]!r}; a soup averages networks of one architecture"
                )
        if member.n_features_in_ != first.n_features_in_:
            raise ValueError(
                f"{name} takes {member.n_features_in_} features but {first_name} takes "
                f"{first.n_features_in_}"
            )
        task = first.task
        ours_encoding, theirs_encoding = task.fitted_encoding(member), task.fitted_encoding(first)
        for key, value in ours_encoding.items():
            if not np.array_equal(np.asarray(value), np.asarray(theirs_encoding[key])):
                raise ValueError(
                    f"{name} encodes its targets unlike {first_name} ({key.strip('_')} "
                    "differs): its outputs mean something else, so its weights cannot be "
                    "averaged with theirs"
                )
        mine_scaling, their_scaling = member.input_scaling(), first.input_scaling()
        if mine_scaling is not None and their_scaling is not None:
            if not all(
                np.allclose(a, b, rtol=1e-5, atol=1e-8)
                for a, b in zip(mine_scaling, their_scaling, strict=True)
            ):
                raise ValueError(
                    f"{name} scales its inputs unlike {first_name} (fitted on other rows): a "
                    "soup needs members fitted on the same rows, or fine-tuned from one "
                    "network (init=...)"
                )
        ours, theirs = member.model_.state_dict(), first.model_.state_dict()
        for key in [*theirs, *ours]:
            if key not in ours or key not in theirs or ours[key].shape != theirs[key].shape:
                shape = tuple(ours[key].shape) if key in ours else "none"
                other = tuple(theirs[key].shape) if key in theirs else "none"
                raise ValueError(
                    f"{name} differs from {first_name} at parameter {key!r} (shape {shape} "
                    f"against {other}); a soup averages networks of one architecture"
                )


def _with_network(template: BaseNeuralEstimator, network: nn.Module) -> BaseNeuralEstimator:
    """A shallow copy of the fitted ``template`` that predicts with ``network``."""
    twin = copy.copy(template)
    twin.set_network(network, template.callbacks_, template.n_iter_)
    return twin


def _check_align(align: Any, X_train: Any) -> None:
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be None, 'weights' or 'activations'; got {align!r}")
    if align == "activations" and X_train is None:
        raise ValueError(
            "align='activations' matches the networks' hidden units by what they compute on "
            "rows: pass X_train (training rows, never the test set), or use align='weights'"
        )


def _aligned(
    reference: BaseNeuralEstimator,
    networks: list[nn.Module],
    align: str,
    rows: np.ndarray | None,
    random_state: int,
) -> list[nn.Module]:
    """Copies of ``networks`` with their hidden units permuted to match ``reference``'s (by
    their activations on ``rows``, the training rows as the networks take them, for
    ``align="activations"``)."""
    spec = permutation_spec(reference.model_, reference.n_features_in_)
    if align == "activations":
        assert rows is not None  # _check_align asked for X_train
        return [
            permute(network, activation_matching(reference.model_, network, spec, rows), spec)
            for network in networks
        ]
    return [
        permute(
            network,
            weight_matching(reference.model_, network, spec, random_state=random_state),
            spec,
        )
        for network in networks
    ]


def _loss(estimator: BaseNeuralEstimator, X: np.ndarray, y: np.ndarray, weights: Any) -> float:
    """Held-out NLL (a classifier) or RMSE (a regressor): lower is better."""
    # float32: several times faster than predict's float64, and as good for a comparison
    outputs = estimator.network_function()(X)
    if estimator.task.classification:
        return float(nll(y, outputs, weights))
    return float(rmse(y, outputs, weights))


class _Kitchen:
    """What every candidate soup needs: the template to copy and the training rows as the
    networks take them (scaled once: the alignment matches activations on them, batch-norm
    statistics are recomputed on them)."""

    def __init__(self, template: BaseNeuralEstimator, X_train: Any) -> None:
        self.template = template
        self.rows = None if X_train is None else template.network_inputs(X_train)
        self.bn_rows = self.rows if has_batch_norm(template.model_) else None

    def cook(
        self, networks: list[nn.Module], weights: np.ndarray | None = None
    ) -> BaseNeuralEstimator:
        network = average_networks(networks, weights)
        if self.bn_rows is not None:
            refresh_batch_norm(network, self.bn_rows)
        return _with_network(self.template, network)


def soup(
    members: Sequence[Any],
    X: Any = None,
    y: Any = None,
    *,
    method: str = "greedy",
    align: str | None = None,
    X_train: Any = None,
    sample_weight: Any = None,
    weights: Any = None,
    random_state: int = 0,
) -> BaseNeuralEstimator:
    """One network whose weights are the average of the members' (a model soup).

    The soup predicts at the cost of one network and takes no training. Its members must share
    an architecture and, without ``align``, a basin of the loss: fine-tunes of one network
    (``NeuralClassifier(init=fitted)``), the snapshots of one run. The members are never
    modified.

    - ``method="uniform"``: the mean of every member's weights, or their weighted mean with
      ``weights`` (an ensemble's learned combiner weights, say).
    - ``method="greedy"`` (Wortsman et al., 2022): the members sorted by their loss on the
      held-out rows ``(X, y)``; starting from the best, each next one joins the soup only if
      the soup's held-out loss falls. The held-out rows must be rows no member trained on (the
      user's validation split; never the test set); the result is never worse on them than
      the best member.
    - ``align="weights"``: every member is first aligned to the reference (the best member for
      ``"greedy"``, the first for ``"uniform"``) by weight matching
      (:func:`members.permutation.weight_matching`), so that networks trained from different
      initialisations can be averaged (Ainsworth et al., 2023). For chains of ``Linear`` /
      ``Conv1d`` / ``Conv2d`` layers with batch norms (``mlp``, ``cnn1d``, ``cnn2d``); other
      networks are refused by name.
    - ``align="activations"``: the same, by activation matching on ``X_train``
      (:func:`members.permutation.activation_matching`, the paper's other method): each hidden
      unit is paired with the reference's unit whose activations it best matches.

    A network with batch norm gets statistics recomputed on ``X_train`` after averaging (as
    SWA does); without ``X_train`` the members' statistics are averaged, which is close for
    fine-tunes of one network and poor for aligned independent networks (a warning says so).

    Parameters
    ----------
    members : sequence of fitted NeuralClassifier or NeuralRegressor
        The ingredients, or ``(name, estimator)`` pairs (names appear in errors).
    X : array-like of shape (n_samples, n_features), optional
        Held-out rows (``"greedy"`` only; required there).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs), optional
        Their targets; a classifier's must hold at least two classes.
    method : {"greedy", "uniform"}, default="greedy"
    align : {None, "weights", "activations"}, default=None
    X_train : array-like of shape (n_samples, n_features), optional
        Training rows, on which batch-norm statistics are recomputed and (``align=
        "activations"``, required there) the units are matched; no labels needed.
    sample_weight : array-like of shape (n_samples,), optional
        Weights of the held-out rows in the greedy loss.
    weights : array-like of shape (n_members,), optional
        ``"uniform"`` only: each member's share of the average (non-negative, normalised); a
        member of weight 0 is left out. ``None``: equal.
    random_state : int, default=0
        Seeds the order in which weight matching visits the layers.

    Returns
    -------
    NeuralClassifier or NeuralRegressor
        A fitted copy of the reference member holding the soup's weights; its
        ``ingredients_`` lists the names of the members averaged, in the order they joined.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> parent = NeuralClassifier(max_epochs=20, random_state=0).fit(X, y)
    >>> tunes = [
    ...     NeuralClassifier(init=parent, max_epochs=5, lr=1e-3, random_state=s).fit(X, y)
    ...     for s in range(3)
    ... ]
    >>> soup(tunes, method="uniform").score(X, y) > 0.9
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}; got {method!r}")
    _check_align(align, X_train)
    named, names = _named(members)
    _check_members(named)
    first = named[0][1]
    held_out = None
    if method == "greedy":
        if X is None or y is None:
            raise ValueError(
                "method='greedy' needs held-out rows X, y that no member trained on (a "
                "validation split, never the test set); or use method='uniform'"
            )
        held_out = _held_out(first, X, y, sample_weight)
        if weights is not None:
            raise ValueError("weights are for method='uniform'; 'greedy' averages equally")
    elif X is not None or y is not None:
        raise ValueError("method='uniform' takes no held-out rows; pass X and y for 'greedy'")
    share = None
    if weights is not None:
        share = np.asarray(weights, dtype=np.float64)
        if share.shape != (len(named),) or not np.isfinite(share).all() or (share < 0).any():
            raise ValueError(
                f"weights must hold one non-negative weight per member ({len(named)}); got "
                f"{np.asarray(weights).tolist()}"
            )
        if share.sum() <= 0:
            raise ValueError("weights must not all be 0")
    if X_train is None and align is not None and has_batch_norm(first.model_):
        warnings.warn(
            "the aligned networks hold batch norms whose statistics are averaged, not "
            "recomputed; pass X_train so that the soup's statistics are its own",
            UserWarning,
            stacklevel=2,
        )
    order = list(range(len(named)))
    losses: list[float] | None = None
    if held_out is not None:
        losses = [_loss(member, *held_out) for _, member in named]
        order = sorted(order, key=lambda i: losses[i])  # type: ignore[index]
    reference = named[order[0]][1]
    networks = {i: named[i][1].model_ for i in order}
    kitchen = _Kitchen(reference, X_train)
    if align is not None and len(named) > 1:
        aligned = _aligned(
            reference, [networks[i] for i in order[1:]], align, kitchen.rows, random_state
        )
        networks.update(zip(order[1:], aligned, strict=True))
    if held_out is None:
        chosen = [i for i in order if share is None or share[i] > 0]
        result = kitchen.cook(
            [networks[i] for i in chosen], None if share is None else share[chosen]
        )
    else:
        # the best member as it is (its own statistics): the soup is never worse on the
        # held-out rows
        chosen, result = [order[0]], reference
        best = losses[order[0]]  # type: ignore[index]
        for i in order[1:]:
            candidate = kitchen.cook([networks[j] for j in [*chosen, i]])
            score = _loss(candidate, *held_out)
            if score < best:
                chosen, best, result = [*chosen, i], score, candidate
    result = copy.deepcopy(result)
    result.ingredients_ = [names[i] for i in chosen]
    return result


def _held_out(
    template: BaseNeuralEstimator, X: Any, y: Any, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated held-out rows, their targets as the metrics take them, and their weights."""
    task = task_of(template)
    X, y = task.validate(template, X, y, reset=False)
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights is not None and weights.shape != (len(X),):
        raise ValueError(
            f"sample_weight must hold one weight per held-out row ({len(X)}); got shape "
            f"{weights.shape}"
        )
    if task.classification:
        labels = np.unique(y)
        if len(labels) < 2:
            raise ValueError(
                f"the held-out y holds one class only ({labels[0]!r}); greedy selection on it "
                "would keep the soup that best predicts that class alone. Pass held-out rows "
                "of every class"
            )
        y = encode_labels(y, template.classes_)
    return X, y, weights


@dataclass(frozen=True)
class InterpolationCurve:
    """The loss along the straight line between two networks' weights.

    Parameters
    ----------
    t : ndarray of shape (steps,)
        Positions: 0 is the first network, 1 the second.
    loss : ndarray of shape (steps,)
        The held-out loss (NLL for a classifier, RMSE for a regressor) at each position.
    aligned : bool
        Whether the second network was aligned to the first.

    Examples
    --------
    >>> curve = InterpolationCurve(np.array([0, 0.5, 1]), np.array([1.0, 3.0, 1.0]), False)
    >>> float(curve.barrier), float(curve.midpoint_ratio)
    (2.0, 3.0)
    """

    t: np.ndarray
    loss: np.ndarray
    aligned: bool

    @property
    def barrier(self) -> float:
        """The largest excess of the loss over the line between the ends' losses.

        Frankle et al. (2020)'s barrier; 0 when the path is no worse than its ends.

        Returns
        -------
        float
        """
        line = (1 - self.t) * self.loss[0] + self.t * self.loss[-1]
        return float(max(0.0, np.max(self.loss - line)))

    @property
    def midpoint_ratio(self) -> float:
        """The loss at the midpoint over the mean of the ends' losses (1: no barrier).

        Returns
        -------
        float
        """
        middle = float(np.interp(0.5, self.t, self.loss))
        return middle / float((self.loss[0] + self.loss[-1]) / 2)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the loss against ``t`` on ``ax`` (a new figure's by default).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.
        **kwargs
            Passed to ``ax.plot`` (``label``, ``color``...).

        Returns
        -------
        matplotlib Axes
            The axes drawn on.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        kwargs.setdefault("label", "aligned" if self.aligned else "naive")
        ax.plot(self.t, self.loss, marker="o", **kwargs)
        ax.set_xlabel("interpolation t (0: first network, 1: second)")
        ax.set_ylabel("held-out loss")
        return ax


def loss_barrier(
    a: BaseNeuralEstimator,
    b: BaseNeuralEstimator,
    X: Any,
    y: Any,
    *,
    steps: int = 11,
    align: str | None = None,
    X_train: Any = None,
    random_state: int = 0,
) -> InterpolationCurve:
    """The loss of ``(1 - t) * a + t * b`` in weight space, for ``t`` from 0 to 1.

    Parameters
    ----------
    a, b : fitted NeuralClassifier or NeuralRegressor
        Two networks of one architecture (left unchanged).
    X, y : array-like
        Rows to measure the loss on (held-out rows or the test set: this is a report, nothing
        is chosen on it).
    steps : int, default=11
        Positions, evenly spaced, ends included (at least 3).
    align : {None, "weights", "activations"}, default=None
        Align ``b`` to ``a`` first, by weight matching or by activation matching on
        ``X_train``.
    X_train : array-like, optional
        Training rows on which each interpolated network's batch-norm statistics are
        recomputed (recommended for networks with batch norm) and, with
        ``align="activations"`` (required there), the units are matched.
    random_state : int, default=0
        Seeds weight matching.

    Returns
    -------
    InterpolationCurve
        The positions and losses; ``barrier`` and ``midpoint_ratio`` summarise them.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> a, b = (NeuralClassifier(max_epochs=10, random_state=s).fit(X, y) for s in (0, 1))
    >>> curve = loss_barrier(a, b, X, y, steps=3, align="weights")
    >>> curve.t.tolist()
    [0.0, 0.5, 1.0]
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 3:
        raise ValueError(f"steps must be an int >= 3; got {steps!r}")
    _check_align(align, X_train)
    _check_members([("a", a), ("b", b)])
    X_held, y_held, _ = _held_out(a, X, y, None)
    kitchen = _Kitchen(a, X_train)
    [other] = (
        [b.model_] if align is None else _aligned(a, [b.model_], align, kitchen.rows, random_state)
    )
    t = np.linspace(0.0, 1.0, steps)
    losses = [
        _loss(
            kitchen.cook([a.model_, other], np.array([1 - position, position])),
            X_held,
            y_held,
            None,
        )
        for position in t
    ]
    return InterpolationCurve(t, np.array(losses), align is not None)
