"""2-D convolutional network for small images (8x8 digits, 28x28 and the like)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from members.mlp import check_backbone_params, make_activation
from members.registry import register_backbone


def infer_input_shape(n_features: int, input_shape: Sequence[int] | None) -> tuple[int, int, int]:
    """Return ``(channels, height, width)``; a square one-channel image when not given."""
    if input_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"cnn2d needs input_shape=(height, width) or (channels, height, width): "
                f"n_features={n_features} is not a square number"
            )
        return (1, side, side)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise ValueError(
            f"input_shape={tuple(input_shape)} does not match n_features={n_features}; "
            "expected (height, width) or (channels, height, width) whose product is n_features"
        )
    return shape  # type: ignore[return-value]


@register_backbone("cnn2d")
class CNN2d(nn.Module):
    """Batch-normalised 2-D CNN with global average pooling for small images.

    Parameters
    ----------
    n_features, n_outputs : int
    input_shape : (height, width) or (channels, height, width), optional
        Shape of one flattened sample; a square one-channel image when omitted.
    channels : sequence of int, default=(32, 64, 128)
        One 3x3 convolution per entry; every one after the first halves height and width.
    activation : str, default="relu"
    dropout : float, default=0.0

    Examples
    --------
    >>> import torch
    >>> CNN2d(64, 10)(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        input_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (32, 64, 128),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_backbone_params(self, locals())
        self.input_shape = infer_input_shape(n_features, input_shape)
        layers: list[nn.Module] = []
        width = self.input_shape[0]
        for i, size in enumerate(channels):
            layers += [
                nn.Conv2d(width, size, 3, stride=1 if i == 0 else 2, padding=1),
                nn.BatchNorm2d(size),
                make_activation(activation),
            ]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.input_shape)
        return self.head(self.features(x).mean(dim=(-2, -1)))
