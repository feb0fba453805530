"""Small 1-D residual network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from members.mlp import check_backbone_params, make_activation
from members.registry import register_backbone


class ResidualBlock1d(nn.Module):
    """Two 3-wide convolutions with a skip connection (projected when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
            make_activation(activation),
            nn.Conv1d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm1d(out_channels),
            )
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.skip(x))


@register_backbone("resnet")
class ResNet(nn.Module):
    """1-D ResNet: a stem convolution, residual stages, global average pooling.

    Parameters
    ----------
    n_features : int
        Length of one flattened input row.
    n_outputs : int
        Outputs per row (classes, or regression targets).
    channels : sequence of int, default=(32, 64, 128)
        Width of each stage; every stage after the first halves the length.
    blocks_per_stage : int, default=1
        Residual blocks in each stage.
    activation : str, default="relu"
        ``"relu"``, ``"gelu"``, ``"leaky_relu"`` or ``"elu"``.
    dropout : float, default=0.0
        Dropout before the output layer.
    in_channels : int, default=1
        Channels of the input signal: a row is ``in_channels`` signals laid end to end.

    Examples
    --------
    >>> import torch
    >>> ResNet(40, 10)(torch.zeros(2, 40)).shape
    torch.Size([2, 10])
    """

    # rows are 1-D signals: distillation shifts and scales them (members.augment)
    input_kind = "signal"

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        channels: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 1,
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
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, channels[0], 5, padding=2, bias=False),
            nn.BatchNorm1d(channels[0]),
            make_activation(activation),
        )
        blocks: list[nn.Module] = []
        width = channels[0]
        for i, size in enumerate(channels):
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(ResidualBlock1d(width, size, stride, activation))
                width = size
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, -1)
        return self.head(self.stages(self.stem(x)).mean(dim=-1))
