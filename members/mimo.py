"""MIMO (Havasi et al., ICLR 2021): M inputs and M heads in one network.

The base network reads ``n_members`` rows at once, laid end to end (as extra channels of a
signal or an image), and writes ``n_members`` outputs. In training, head ``m`` predicts the
target of the ``m``-th row, and the rows are drawn independently per head, so the heads learn
independent functions inside one network; at prediction every head gets the same row, and the
heads' outputs are the members. The paper's two knobs: *input repetition* (a share ``rho`` of
the rows are the same for all heads, which lets them share more features) and *batch
repetition* (each batch drawn ``r`` times over, for ``r`` times the gradient steps' rows).
Only the first and last layers grow: about 1x the base's parameters and its predict time.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn
from typing_extensions import override

from members.cnn2d import infer_input_shape
from members.params import Interval, check_params
from members.registry import BackboneFactory
from members.subnetworks import SubNetworkBackbone, SubNetworks


class MIMONetworks(SubNetworks):
    """A network over ``n_members`` rows laid end to end, with ``n_members`` heads.

    Parameters
    ----------
    network : nn.Module
        ``(batch, n_members * n_features)`` to ``(batch, n_members * n_outputs)``.
    n_members : int
    input_repetition : float
        Share of training rows given to every head alike.
    batch_repetition : int
        Times each training batch is drawn.
    """

    def __init__(
        self,
        network: nn.Module,
        n_members: int,
        input_repetition: float = 0.5,
        batch_repetition: int = 1,
    ) -> None:
        super().__init__(n_members)
        self.network = network
        self.input_repetition = input_repetition
        self.batch_repetition = batch_repetition

    def heads(self, inputs: torch.Tensor) -> torch.Tensor:
        """Every head's output, ``(n_members, batch, n_outputs)``, on ``(n_members, batch,
        n_features)`` inputs (head ``m`` reads ``inputs[m]``)."""
        m, batch = inputs.shape[:2]
        mixed = inputs.transpose(0, 1).reshape(batch, -1)
        return self.network(mixed).reshape(batch, m, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        return self.heads(flat.unsqueeze(0).expand(self.n_members, *flat.shape))

    @override
    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Each head gets its own shuffle of the batch (repeated ``batch_repetition`` times),
        the same one as head 0 on a share ``input_repetition`` of the positions; the targets
        (and weights) follow their rows. Drawn from torch's generator, which the training run
        seeds."""
        rows = torch.arange(len(x), device=x.device).repeat(self.batch_repetition)
        order = torch.stack(
            [rows[torch.randperm(len(rows), device=x.device)] for _ in range(self.n_members)]
        )
        same = torch.rand(len(rows), device=x.device) < self.input_repetition
        order[:, same] = order[0, same]
        outputs = self.heads(x.reshape(len(x), -1)[order])
        return outputs, y[order], None if weight is None else weight[order]


class MIMO(SubNetworkBackbone):
    """MIMO of a backbone: ``n_members`` inputs and heads in one network.

    The base is built for ``n_members`` times the features and the outputs: a backbone with an
    ``in_channels`` parameter (``cnn1d``, ``resnet``) gets ``n_members`` times the channels, one
    with ``input_shape`` (``cnn2d``) ``n_members`` times the image's channels, any other
    (``mlp``) the rows side by side.

    Parameters
    ----------
    base : str or callable
        A registered backbone or a backbone class.
    n_members : int, default=3
        Inputs and heads (the paper used 3 on CIFAR).
    input_repetition : float, default=0.5
        The paper's ``rho``: share of training rows every head gets alike (0.6 on CIFAR). Chosen
        on a validation split of MNIST-1D's training rows (``cnn1d``, 3 heads, 2 seeds): NLL
        0.093 at 0.5 against 0.381 at 0 (heads that never share a row each learn from a third
        of the network's capacity) and 0.095 for the single network.
    batch_repetition : int, default=1
        The paper's batch repetition (4 on CIFAR): each batch is drawn this many times, for as
        many times the training cost.

    Examples
    --------
    >>> network = MIMO("cnn1d", n_members=3)(40, 10)
    >>> network(torch.zeros(2, 40)).shape  # (members, rows, outputs)
    torch.Size([3, 2, 10])
    """

    name = "mimo"

    def __init__(
        self,
        base: str | BackboneFactory = "mlp",
        n_members: int = 3,
        input_repetition: float = 0.5,
        batch_repetition: int = 1,
    ) -> None:
        super().__init__(base, n_members)
        self.input_repetition = input_repetition
        self.batch_repetition = batch_repetition

    def _transform(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> SubNetworks:
        check_params(
            "MIMO",
            {
                "input_repetition": [Interval(Real, 0, 1, closed="both")],
                "batch_repetition": [Interval(Integral, 1, None, closed="left")],
            },
            input_repetition=self.input_repetition,
            batch_repetition=self.batch_repetition,
        )
        m = self.n_members
        channels = kwargs.get("in_channels", self._base_default("in_channels"))
        if isinstance(channels, Integral) and not isinstance(channels, bool):
            kwargs["in_channels"] = int(channels) * m
        elif "input_shape" in kwargs or self._base_default("input_shape") is None:
            given: Sequence[int] | None = kwargs.get("input_shape")
            depth, height, width = infer_input_shape(n_features, given)
            kwargs["input_shape"] = (depth * m, height, width)
        network = self._build_base(n_features * m, n_outputs * m, kwargs)
        return MIMONetworks(network, m, self.input_repetition, self.batch_repetition)
