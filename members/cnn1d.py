"""1-D convolutional network for signals such as MNIST-1D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from members.mlp import check_backbone_params, make_activation
from members.registry import register_backbone


def conv_block(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, activation: str
) -> list[nn.Module]:
    """Convolution (same padding), batch norm and activation."""
    return [
        nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2),
        nn.BatchNorm1d(out_channels),
        make_activation(activation),
    ]


@register_backbone("cnn1d")
class CNN1d(nn.Module):
    """Batch-normalised 1-D CNN with global average pooling.

    The input ``(n_samples, n_features)`` is read as a one-channel signal of length
    ``n_features`` (or ``(n_samples, in_channels, length)`` when ``in_channels > 1``). The first
    convolution keeps the length; each later one halves it. Global average pooling makes the
    network independent of the signal length.

    Parameters
    ----------
    n_features : int
        Length of one flattened input row.
    n_outputs : int
        Outputs per row (classes, or regression targets).
    channels : sequence of int, default=(32, 64, 64, 128)
        Channels of each convolution; every one after the first halves the length.
    kernel_size : int, default=5
        Kernel of the first convolution; later ones use 3.
    activation : str, default="relu"
        ``"relu"``, ``"gelu"``, ``"leaky_relu"`` or ``"elu"``.
    dropout : float, default=0.0
        Dropout before the output layer.
    in_channels : int, default=1
        Channels of the input signal: a row is ``in_channels`` signals laid end to end.

    Examples
    --------
    >>> import torch
    >>> CNN1d(40, 10)(torch.zeros(2, 40)).shape
    torch.Size([2, 10])
    """

    # rows are 1-D signals: distillation shifts and scales them (members.augment)
    input_kind = "signal"

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        channels: Sequence[int] = (32, 64, 64, 128),
        kernel_size: int = 5,
        activation: str = "relu",
        dropout: float = 0.0,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_backbone_params(self, locals())
        if n_features % in_channels:
            raise ValueError(
                f"n_features={n_features} is not divisible by in_channels={in_channels}"
            )
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        width = in_channels
        for i, size in enumerate(channels):
            k, stride = (kernel_size, 1) if i == 0 else (3, 2)
            layers += conv_block(width, size, k, stride, activation)
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, -1)
        return self.head(self.features(x).mean(dim=-1))
