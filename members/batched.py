"""The batched engine: many same-architecture members trained as one LightningModule.

Training small networks one after another leaves a GPU idle: every optimizer step is bound by
kernel launches, not arithmetic. Here the parameters of M members are stacked along a leading
member axis (:func:`torch.func.stack_module_state`) and one ``vmap``-ed
:func:`torch.func.functional_call` (for :class:`~members.MLP`, batched matrix products) runs
all of them in one forward, one backward and one optimizer step. Each member stays an
independent model:

- its own initialisation, data order and (with ``bootstrap=True``) bootstrap sample, all drawn
  from its own ``random_state`` exactly as when it is trained alone;
- its own dropout masks (``vmap(randomness="different")``; element-wise dropout over the
  stacked activations for MLPs) and its own batch-norm statistics
  (the buffers are stacked too, and each member normalises its own batch);
- its own gradients: the loss is the *sum* of the members' losses, so member ``m`` gets exactly
  the gradient of its own loss; element-wise optimizers (Adam, AdamW, SGD, RMSprop) then keep
  per-member state by construction.

After training the stack is cut back into M ordinary fitted estimators.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler

from members.data import TensorTuple, as_tensor, n_batches
from members.mlp import ACTIVATIONS, MLP
from members.module import BatchedMemberModule
from members.neural import BaseNeuralEstimator
from members.params import Interval, StrOptions, check_params
from members.subnetworks import is_sub_network_backbone
from members.trainer import uses_cuda
from members.training import Trained, draw_seeds, seeded

# parameters that may differ between members trained together: each has its own seed
MEMBER_PARAMS = ("random_state",)
# parameters that change only what is printed or logged
_LOGGING_PARAMS = ("verbose",)
# On a 2-core CPU, 8 members of up to ~300k parameters train 1.0-3.2x faster batched (MLP 79k:
# 2.9x, 289k: 1.4x; cnn1d 45k: 1.2x; resnet 111k: 1.1x); an MLP of 1.1M parameters 0.6x.
AUTO_CPU_MAX_PARAMETERS = 300_000
METHODS = ("auto", "vmap", "bmm")
_ELEMENTWISE = tuple(ACTIVATIONS.values())


class StackedNetworks(nn.Module):
    """M networks of one architecture as one module.

    It maps ``(M, batch, ...)`` to ``(M, batch, n_outputs)``; member ``m`` sees only ``x[m]``.

    Parameters
    ----------
    networks : sequence of nn.Module
        Same architecture; their parameters and buffers are copied into the stack.
    method : {"auto", "vmap", "bmm"}, default="auto"
        ``"vmap"``: :func:`torch.func.vmap` over :func:`torch.func.functional_call`, for any
        network. ``"bmm"``: a :class:`~members.MLP`'s layers as batched matrix products
        (``torch.baddbmm``), with fewer kernels per step; on an H100 plain-PyTorch batched
        matmuls ran 25x faster than a loop at M = 32 where vmap ran 15x. ``"auto"``: ``"bmm"``
        for an MLP, else ``"vmap"``. (On a 2-core CPU the two are within noise of each other:
        ``benchmarks/batched.py``.)

    Examples
    --------
    >>> import torch
    >>> from members import MLP
    >>> nets = [MLP(4, 2, hidden=(8,)) for _ in range(3)]
    >>> stacked = StackedNetworks(nets)
    >>> x = torch.randn(3, 5, 4)
    >>> torch.allclose(stacked(x)[1], nets[1](x[1]), atol=1e-6)
    True
    >>> len(stacked.unstack())
    3
    """

    def __init__(self, networks: Sequence[nn.Module], method: str = "auto") -> None:
        super().__init__()
        if len(networks) == 0:
            raise ValueError("networks must hold at least one network; got none")
        check_params("StackedNetworks", {"method": [StrOptions(set(METHODS))]}, method=method)
        layered = _layered(networks[0])
        if method == "bmm" and not layered:
            raise ValueError(
                "method='bmm' needs a members.MLP (Linear, BatchNorm1d, Dropout and element-wise "
                f"activation layers); got {type(networks[0]).__name__}; use 'vmap'"
            )
        self.method = "bmm" if layered and method != "vmap" else "vmap"
        params, buffers = stack_module_state(list(networks))
        self.n_members = len(networks)
        self.param_names, self.buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList([nn.Parameter(params[name]) for name in params])
        for index, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer{index}", buffers[name])
        # the architecture without storage; a list keeps it out of .to() and .parameters()
        self._template = [copy.deepcopy(networks[0]).to("meta")]

    def _buffers_by_name(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"buffer{i}") for i, name in enumerate(self.buffer_names)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        template = self._template[0]
        template.train(self.training)
        params = dict(zip(self.param_names, self.stacked, strict=True))
        if self.method == "bmm":
            return self._layered_forward(x, params)

        def member(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xm: torch.Tensor) -> Any:
            return functional_call(template, (p, b), (xm,))

        return vmap(member, randomness="different")(params, self._buffers_by_name(), x)  # type: ignore[no-any-return]

    def _layered_forward(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """An MLP's layers as batched matrix products (``baddbmm``) and element-wise ops."""
        buffers = self._buffers_by_name()
        x = x.flatten(2)
        layers: nn.Sequential = self._template[0].layers  # type: ignore[assignment]
        for index, layer in enumerate(layers):
            name = f"layers.{index}."
            if isinstance(layer, nn.Linear):
                weight = params[name + "weight"].transpose(1, 2)
                bias = params.get(name + "bias")
                x = (
                    torch.bmm(x, weight)
                    if bias is None
                    else torch.baddbmm(bias[:, None], x, weight)
                )
            elif isinstance(layer, nn.BatchNorm1d):
                # each member's channels side by side: (batch, M * channels)
                m, batch, channels = x.shape
                flat = F.batch_norm(
                    x.transpose(0, 1).reshape(batch, m * channels),
                    buffers[name + "running_mean"].view(-1),
                    buffers[name + "running_var"].view(-1),
                    params[name + "weight"].reshape(-1),
                    params[name + "bias"].reshape(-1),
                    training=self.training,
                    momentum=float(layer.momentum or 0.0),  # never None here: _layered
                    eps=layer.eps,
                )
                if self.training:
                    buffers[name + "num_batches_tracked"].add_(1)
                x = flat.view(batch, m, channels).transpose(0, 1)
            elif isinstance(layer, nn.Dropout):
                x = F.dropout(x, layer.p, self.training)
            else:  # an element-wise activation
                x = layer(x)
        return x

    def unstack(self) -> list[nn.Module]:
        """The members as ordinary networks, on the CPU, in training mode.

        Returns
        -------
        list of nn.Module
            One network per member, in order.
        """
        state = {
            **dict(zip(self.param_names, self.stacked, strict=True)),
            **self._buffers_by_name(),
        }
        networks = []
        for m in range(self.n_members):
            network = copy.deepcopy(self._template[0]).to_empty(device="cpu")
            with torch.no_grad():
                for name, tensor in itertools.chain(
                    network.named_parameters(), network.named_buffers()
                ):
                    tensor.copy_(state[name][m])
            networks.append(network.train())
        return networks


class MemberBatches(Sampler[torch.Tensor]):
    """Index batches ``(M, batch_size)``: row ``m`` is what member ``m``'s own loader
    (:class:`members.data.ShuffledBatches` with its seed) would give it, mapped through its
    training rows."""

    def __init__(
        self, rows: Sequence[np.ndarray | None], n_samples: int, batch_size: int, seeds: list[int]
    ) -> None:
        self.n_samples, self.batch_size = n_samples, batch_size
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        identity = torch.arange(n_samples)
        self.rows = torch.stack([identity if r is None else torch.as_tensor(r) for r in rows])

    def __len__(self) -> int:
        return n_batches(self.n_samples, self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        orders = torch.stack([torch.randperm(self.n_samples, generator=g) for g in self.generators])
        order = self.rows.gather(1, orders)
        for batch_index in range(len(self)):
            start = batch_index * self.batch_size
            yield order[:, start : start + self.batch_size]


def _layered(network: nn.Module) -> bool:
    """Whether ``network`` is an MLP that the batched-matmul path reproduces exactly."""
    if type(network) is not MLP:
        return False
    for layer in network.layers:
        if isinstance(layer, nn.BatchNorm1d):
            if layer.momentum is None or not (layer.affine and layer.track_running_stats):
                return False
        elif not isinstance(layer, (nn.Linear, nn.Dropout, *_ELEMENTWISE)):
            return False
    return True


def can_batch(estimator: Any) -> bool:
    """Whether ``estimator`` can be trained by :func:`fit_batched` (a neural estimator with
    no callbacks of its own and no early stopping, which ends each member at its own epoch,
    and one network, not an ensemble inside one: :mod:`members.subnetworks`)."""
    return (
        isinstance(estimator, BaseNeuralEstimator)
        and not estimator.callbacks
        and not estimator.early_stopping
        # an ensemble inside one network already trains its members together
        and not is_sub_network_backbone(estimator.module)
    )


def batch_key(estimator: Any) -> tuple[type, dict[str, Any]]:
    """What members trained together must share: class and parameters but ``random_state``."""
    params = {
        key: value
        for key, value in estimator.get_params(deep=False).items()
        if key not in MEMBER_PARAMS and key not in _LOGGING_PARAMS
    }
    return type(estimator), params


def same_batch(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` can be trained together."""
    try:
        return bool(batch_key(a) == batch_key(b))
    except Exception:  # parameters that do not compare (arrays, say): train apart
        return False


def prefer_batched(estimator: Any, n_members: int, n_features: int, n_outputs: int) -> bool:
    """``batched="auto"``: whether ``n_members`` copies of ``estimator`` train faster batched.

    On a GPU (``accelerator`` ``"gpu"``, ``"cuda"``, ``"mps"``, or ``"auto"`` with CUDA present)
    always, from two members on: small networks there are bound by kernel launches. On the CPU
    only small networks gain (:data:`AUTO_CPU_MAX_PARAMETERS`); larger ones train one after
    another, which is then at least as fast.
    """
    if n_members < 2 or not can_batch(estimator):
        return False
    accelerator = str(estimator.accelerator).lower()
    if accelerator == "mps" or uses_cuda(accelerator):
        return True
    try:
        with torch.device("meta"):
            network = estimator.build_network(n_features, n_outputs)
    except Exception:  # a user's network that cannot be built without storage: do not guess
        return False
    return sum(p.numel() for p in network.parameters()) <= AUTO_CPU_MAX_PARAMETERS


def fit_batched(
    estimators: Sequence[Any],
    X: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    names: Sequence[str] | None = None,
) -> list[Any]:
    """Fit neural estimators that differ only in ``random_state`` together, in place.

    Each comes out as if fitted alone (its own initialisation, data order, bootstrap sample,
    dropout masks and batch-norm statistics), and is an ordinary fitted
    :class:`~members.NeuralClassifier` / :class:`~members.NeuralRegressor`.

    Parameters
    ----------
    estimators : sequence of NeuralClassifier or NeuralRegressor
        Equal in class and every parameter except ``random_state``, with no ``callbacks``.
    X : array-like of shape (n_samples, n_features)
        Training rows, shared by all of them.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Their targets.
    sample_weight : array-like of shape (n_samples,), optional
        Each row's weight in every member's loss, as in their ``fit``.
    names : sequence of str, optional
        Used in error messages (a member whose training diverged).

    Returns
    -------
    list of estimator
        ``estimators``, fitted in place.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from members import NeuralClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> members = [m for _, m in replicate(NeuralClassifier(max_epochs=30, random_state=0), 3)]
    >>> fitted = fit_batched(members, X, y)
    >>> [round(member.score(X, y), 1) >= 0.9 for member in fitted]
    [True, True, True]
    """
    estimators = list(estimators)
    if not estimators:
        raise ValueError("estimators must hold at least one estimator; got none")
    reference = batch_key(estimators[0])[1] if can_batch(estimators[0]) else {}
    for index, estimator in enumerate(estimators):
        if not can_batch(estimator):
            raise TypeError(
                "fit_batched trains NeuralClassifier/NeuralRegressor members without callbacks; "
                f"estimators[{index}] is {estimator!r}"
            )
        if not same_batch(estimators[0], estimator):
            different = sorted(
                key
                for key, value in batch_key(estimator)[1].items()
                if not _equal(reference.get(key), value)
            )
            raise ValueError(
                "estimators trained together must differ only in random_state; estimators[0] "
                f"and estimators[{index}] differ in {different or ['class']}"
            )
    if names is not None and len(names) != len(estimators):
        raise ValueError(f"names must name every estimator ({len(estimators)}); got {len(names)}")

    plans = [estimator.plan_fit(X, y, sample_weight) for estimator in estimators]
    networks = []
    for plan in plans:
        with seeded(plan.seed):
            networks.append(plan.build_network())
    stacked = StackedNetworks(networks)
    first = plans[0]
    module = BatchedMemberModule(stacked, names=names, **first.settings)
    # on a GPU the data moves there once, not as M batches every step
    device = "cuda" if uses_cuda(first.trainer.accelerator) else "cpu"
    # the weights (sample_weight, class_weight) are the same for every member: their
    # parameters and data are
    arrays = [first.inputs, first.targets[0]]
    if first.batch_weights is not None:
        arrays.append(first.batch_weights)
    data = TensorTuple(*(as_tensor(array).to(device) for array in arrays))
    sampler = MemberBatches(
        [plan.rows for plan in plans],
        len(first.X),
        first.trainer.batch_size,
        [plan.seed for plan in plans],
    )
    with seeded(first.seed):
        epochs = first.run(module, DataLoader(data, sampler=sampler, batch_size=None))
    return [
        estimator.accept(Trained(network, epochs, plan.callbacks))
        for estimator, plan, network in zip(estimators, plans, stacked.unstack(), strict=True)
    ]


def plan_groups(
    estimators: Sequence[Any], *, batched: bool | str, n_features: int, n_outputs: int
) -> list[list[int]]:
    """Which estimators train together: lists of indices, a list of one trains alone.

    ``batched=False``: each alone. ``True``: every set of estimators that :func:`same_batch`
    allows forms one group for :func:`fit_batched`. ``"auto"``: those groups that
    :func:`prefer_batched` says train faster batched; the others are split up.

    Examples
    --------
    >>> from members import NeuralClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> pool = [m for _, m in replicate(NeuralClassifier(random_state=0), 2)]
    >>> plan_groups([*pool, LogisticRegression()], batched=True, n_features=4, n_outputs=3)
    [[0, 1], [2]]
    """
    check_params("plan_groups", {"batched": [StrOptions({"auto"}), "boolean"]}, batched=batched)
    groups: list[list[int]] = []
    for index, estimator in enumerate(estimators):
        if batched is not False and can_batch(estimator):
            group = next((g for g in groups if same_batch(estimators[g[0]], estimator)), None)
            if group is not None:
                group.append(index)
                continue
        groups.append([index])
    if batched == "auto":
        groups = [
            part
            for group in groups
            for part in (
                [group]
                if prefer_batched(estimators[group[0]], len(group), n_features, n_outputs)
                else [[i] for i in group]
            )
        ]
    return groups


def replicate(
    estimator: Any, n: int, *, bootstrap: bool = False, name: str | None = None
) -> list[tuple[str, Any]]:
    """Copies of an estimator as ensemble members that differ only in their seed.

    ``n`` ``(name, estimator)`` pairs that differ only in ``random_state`` (and, with
    ``bootstrap=True``, in the bootstrap sample each draws from it).

    Seeds come from the estimator's own ``random_state``: an int ``s`` gives ``s, s + 1, ...``,
    a ``RandomState`` draws them, and ``None`` leaves every seed ``None`` for the ensemble's
    ``random_state`` to fill.
    An :class:`~ensembles.EnsembleClassifier` trains such members with the batched engine.

    Parameters
    ----------
    estimator : estimator
        The template; it is cloned, never changed.
    n : int
        Number of copies.
    bootstrap : bool, default=False
        Set ``bootstrap=True`` on each copy (a neural estimator's bootstrap sample).
    name : str, optional
        Prefix of the names, ``<name>_0``, ``<name>_1``, ...; the network's ``module`` name
        (or the class name in lower case) by default.

    Returns
    -------
    list of (str, estimator)
        The members, ready for an ensemble's ``members``.

    Examples
    --------
    >>> from members import NeuralClassifier
    >>> members = replicate(NeuralClassifier("mlp", random_state=0), 3, bootstrap=True)
    >>> [member_name for member_name, _ in members]
    ['mlp_0', 'mlp_1', 'mlp_2']
    >>> len({member.random_state for _, member in members})
    3
    """
    check_params(
        "replicate",
        {
            "n": [Interval(Integral, 1, None, closed="left")],
            "bootstrap": ["boolean"],
            "name": [str, None],
        },
        n=n,
        bootstrap=bootstrap,
        name=name,
    )
    if "random_state" not in estimator.get_params():
        raise TypeError(f"estimator must have a random_state parameter; got {estimator!r}")
    if bootstrap and "bootstrap" not in estimator.get_params():
        raise TypeError(
            f"bootstrap=True needs an estimator with a bootstrap parameter; got {estimator!r}"
        )
    if name is None:
        module = estimator.get_params().get("module")
        name = module if isinstance(module, str) else type(estimator).__name__.lower()
    random_state = estimator.get_params()["random_state"]
    if random_state is None or isinstance(random_state, Integral):
        # an int s gives seeds s, s + 1, ...: member 0 is the estimator itself
        seeds = [None if random_state is None else int(random_state) + i for i in range(n)]
    else:
        seeds = [seed for seed in draw_seeds(random_state, n)]
    members = [clone(estimator).set_params(random_state=seed) for seed in seeds]
    if bootstrap:
        members = [member.set_params(bootstrap=True) for member in members]
    return [(f"{name}_{i}", member) for i, member in enumerate(members)]


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False
