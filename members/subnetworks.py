"""Ensembles inside one network: the contract of a network that holds M sub-networks.

Packed-Ensembles (:mod:`members.packed`), BatchEnsemble (:mod:`members.batch_ensemble`), MIMO
(:mod:`members.mimo`) and MC-Dropout (:mod:`members.mc_dropout`) each turn a backbone into one
:class:`SubNetworks` module: it maps ``(batch, n_features)`` to ``(n_members, batch,
n_outputs)``, one output per sub-network, in one forward pass. A *transformation*
(:class:`SubNetworkBackbone`) builds it; it is a backbone factory like any other, so a
:class:`~members.NeuralClassifier` whose ``module`` is one trains the whole ensemble in one
Lightning run through the training seam (:mod:`members.training`), which gives the network
:class:`SubNetworkModule`: the loss is the sum of the sub-networks' own losses, as in the batched
engine (:class:`~members.module.BatchedMemberModule`).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from numbers import Integral
from typing import Any, cast

import torch
from torch import nn
from typing_extensions import override

from members.module import BatchedMemberModule
from members.params import Interval, check_params
from members.registry import BackboneFactory, build_backbone, get_backbone


class SubNetworks(nn.Module, ABC):
    """A network holding ``n_members`` sub-networks, one output each.

    It maps ``(batch, ...)`` to ``(n_members, batch, n_outputs)``. Subclasses implement
    :meth:`forward`; a method whose training differs from its prediction (MIMO's mixed inputs,
    MC-Dropout's single pass) overrides :meth:`training_outputs`.

    Parameters
    ----------
    n_members : int
        Sub-networks in the network.

    Examples
    --------
    >>> from members import Packed
    >>> network = Packed("mlp", n_members=3)(4, 2, hidden=(6,))
    >>> isinstance(network, SubNetworks), network(torch.zeros(5, 4)).shape
    (True, torch.Size([3, 5, 2]))
    """

    def __init__(self, n_members: int) -> None:
        super().__init__()
        self.n_members = int(n_members)

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every sub-network's output on the same rows.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
            Input rows.

        Returns
        -------
        Tensor of shape (n_members, batch, n_outputs)
        """

    def member_outputs(
        self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Every sub-network's output on ``x``, with the targets repeated per sub-network.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
            Input rows.
        y : Tensor of shape (batch,) or (batch, n_outputs)
            Encoded targets.
        weight : Tensor of shape (batch,), optional
            Each row's weight.

        Returns
        -------
        outputs : Tensor of shape (k, batch, n_outputs)
            One output per sub-network.
        targets : Tensor of shape (k, batch) or (k, batch, n_outputs)
            The targets, once per sub-network.
        weights : Tensor of shape (k, batch) or None
            The weights, once per sub-network.
        """
        output = self(x)
        k = output.shape[0]
        return output, repeat(y, k), None if weight is None else repeat(weight, k)

    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """What one training step computes its loss on.

        :meth:`member_outputs`, unless the method trains otherwise.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
            Input rows.
        y : Tensor of shape (batch,) or (batch, n_outputs)
            Encoded targets.
        weight : Tensor of shape (batch,), optional
            Each row's weight.

        Returns
        -------
        outputs, targets, weights
            As :meth:`member_outputs`.
        """
        return self.member_outputs(x, y, weight)


def repeat(values: torch.Tensor, k: int) -> torch.Tensor:
    """``values`` with a new leading axis of length ``k`` (a view, no copy)."""
    return values.unsqueeze(0).expand(k, *values.shape)


def replace_module(network: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in place of ``network``'s submodule ``name`` (dotted, as ``named_modules``
    gives it), in place."""
    parent_name, _, attribute = name.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, attribute, new)


class SubNetworkModule(BatchedMemberModule):
    """Train a :class:`SubNetworks` network: the loss is the sum of its sub-networks' own
    (weighted) mean losses, so each sub-network gets the gradient of its own loss and shared
    weights the sum, and a sub-network whose loss diverges is named.

    Parameters
    ----------
    backbone : SubNetworks
        The network.
    names : sequence of str, optional
        The sub-networks' names, for error messages (``member 0 .. M-1`` by default).
    **settings
        The other arguments of :class:`~members.MemberModule`.

    Examples
    --------
    >>> import torch
    >>> from members import Packed
    >>> network = Packed("mlp", n_members=2)(4, 3, hidden=(8,))
    >>> module = SubNetworkModule(network, task="classification")
    >>> x, y = torch.zeros(5, 4), torch.zeros(5, dtype=torch.long)
    >>> module.batch_losses((x, y)).shape  # one loss per sub-network
    torch.Size([2])
    """

    # one network: its weights have 2 dimensions or more, as a single network's
    weight_ndim = 2

    def __init__(
        self, backbone: SubNetworks, *, names: Sequence[str] | None = None, **settings: Any
    ) -> None:
        super().__init__(backbone, names=names, **settings)

    @property
    def network(self) -> SubNetworks:
        """The network being trained (``backbone``)."""
        return cast(SubNetworks, self.backbone)

    @override
    def batch_losses(self, batch: Any) -> torch.Tensor:
        x, y, *weight = batch
        output, targets, weights = self.network.training_outputs(x, y, *weight)
        return self.member_losses(output, targets, weights)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, *weight = batch
        output, targets, weights = self.network.member_outputs(x, y, *weight)
        # the mean of the sub-networks' losses: what early stopping watches
        loss = self.member_losses(output, targets, weights).mean()
        self.log("val_loss", loss, prog_bar=True, batch_size=len(x))


class SubNetworkBackbone(ABC):
    """A backbone transformation: a base backbone turned into a :class:`SubNetworks` network.

    Called as a backbone factory, ``f(n_features, n_outputs, **module_kwargs)``, it builds the
    ``base`` backbone (with ``module_kwargs``) and turns it into ``n_members`` sub-networks.

    Give one as the ``module`` of a :class:`~members.NeuralClassifier` or
    :class:`~members.NeuralRegressor` to train the whole ensemble in one run; the estimators
    of :mod:`ensembles.efficient` do this for you.

    Parameters
    ----------
    base : str or callable
        A registered backbone name, a backbone class or a factory.
    n_members : int
        Sub-networks.

    Examples
    --------
    >>> from members import BatchEnsemble, NeuralClassifier
    >>> isinstance(BatchEnsemble("mlp"), SubNetworkBackbone)
    True
    >>> clf = NeuralClassifier(BatchEnsemble("mlp", n_members=2))  # one run trains both
    """

    # the method's name: the prefix of the sub-networks' names (packed[0]...)
    name: str = "subnetwork"

    def __init__(self, base: str | BackboneFactory, n_members: int = 4) -> None:
        self.base = base
        self.n_members = n_members

    def __call__(self, n_features: int, n_outputs: int, **module_kwargs: Any) -> SubNetworks:
        check_params(
            type(self).__name__,
            {"n_members": [Interval(Integral, 1, None, closed="left")]},
            n_members=self.n_members,
        )
        if isinstance(self.base, SubNetworkBackbone):
            raise TypeError(
                f"{type(self).__name__}'s base is itself a {type(self.base).__name__}; "
                "ensembles inside one network do not nest"
            )
        return self._transform(n_features, n_outputs, dict(module_kwargs))

    @abstractmethod
    def _transform(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> SubNetworks:
        """Build the network (the parameters are checked)."""

    def _build_base(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> nn.Module:
        """The base backbone, built by :func:`members.registry.build_backbone`."""
        return build_backbone(self.base, n_features, n_outputs, kwargs)

    def _base_default(self, parameter: str) -> Any:
        """The default of ``parameter`` in the base factory's signature; ``inspect.Parameter.empty``
        when it has no such parameter (or none with a default)."""
        factory = get_backbone(self.base) if isinstance(self.base, str) else self.base
        try:
            found = inspect.signature(factory).parameters.get(parameter)
        except (TypeError, ValueError):
            return inspect.Parameter.empty
        return inspect.Parameter.empty if found is None else found.default

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if key != "base")
        return f"{type(self).__name__}({self.base!r}, {args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))


def is_sub_network_backbone(module: Any) -> bool:
    """Whether a ``module`` parameter is a backbone transformation (:class:`SubNetworkBackbone`)."""
    return isinstance(module, SubNetworkBackbone)
