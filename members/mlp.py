"""Multi-layer perceptron for tabular and vector inputs."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from members.params import Interval, Names, PositiveInts, check_params
from members.registry import register_backbone

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


# The options the backbones share, checked before torch sees a value (members.params).
BACKBONE_CONSTRAINTS: dict[str, list[Any]] = {
    "n_features": [Interval(Integral, 1, None, closed="left")],
    "n_outputs": [Interval(Integral, 1, None, closed="left")],
    "hidden": [PositiveInts(allow_empty=True)],  # no hidden layer: a linear model
    "channels": [PositiveInts()],
    "input_shape": [PositiveInts(), None],
    "activation": [Names(ACTIVATIONS, "activation")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "batch_norm": ["boolean"],
    "kernel_size": [Interval(Integral, 1, None, closed="left")],
    "in_channels": [Interval(Integral, 1, None, closed="left")],
    "blocks_per_stage": [Interval(Integral, 1, None, closed="left")],
}


def check_backbone_params(backbone: nn.Module, arguments: dict[str, Any]) -> None:
    """Raise a clear ``InvalidParameterError`` for a bad backbone option (``channels=64``,
    ``hidden="x"``, ``kernel_size=0``...) before torch turns it into a cryptic error.

    ``arguments`` are the backbone's ``__init__`` arguments (its ``locals()``); those named in
    :data:`BACKBONE_CONSTRAINTS` are checked.
    """
    params = {name: value for name, value in arguments.items() if name in BACKBONE_CONSTRAINTS}
    check_params(type(backbone).__name__, BACKBONE_CONSTRAINTS, **params)


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not supported; expected one of {list(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


@register_backbone("mlp")
class MLP(nn.Module):
    """Fully connected network: ``n_features`` inputs, the ``hidden`` layers, ``n_outputs`` outputs.

    Parameters
    ----------
    n_features, n_outputs : int
        Input and output sizes, known at fit time.
    hidden : sequence of int, default=(256, 256)
        Width of each hidden layer.
    activation : {"relu", "gelu", "leaky_relu", "elu"}, default="relu"
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    batch_norm : bool, default=False
        Batch normalisation before each hidden activation.

    Examples
    --------
    >>> import torch
    >>> MLP(8, 3, hidden=(16,))(torch.zeros(5, 8)).shape
    torch.Size([5, 3])
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        check_backbone_params(self, locals())
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))
