"""Multi-layer perceptron for tabular and vector inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from members.registry import register_backbone

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not supported; expected one of {list(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


@register_backbone("mlp")
class MLP(nn.Module):
    """Fully connected network: ``n_features -> hidden... -> n_outputs``.

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
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
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
