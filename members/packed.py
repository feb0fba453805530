"""Packed-Ensembles (Laurent et al., ICLR 2023): M sub-networks as the groups of grouped layers.

A backbone's widths are multiplied by ``alpha`` and every layer is cut into groups: the first
layer reads the whole input (``groups=1``) and writes ``n_members`` blocks of channels, every
inner layer has ``n_members * gamma`` groups (so sub-network ``m`` only ever reads its own
block; ``gamma > 1`` splits each block further, with fewer parameters), and the last layer has
``n_members`` groups of ``n_outputs``. Batch norm, pooling, activations, dropout and residual
additions act channel by channel, so they keep the blocks apart. With ``gamma=1`` the packed
network *is* ``n_members`` independent networks of widths ``alpha * width / n_members``, run as
one (``tests/members/test_packed.py`` checks it weight for weight).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from members.params import Interval, check_params
from members.registry import BackboneFactory
from members.subnetworks import SubNetworkBackbone, SubNetworks, replace_module

# the backbone parameters that hold widths: Packed scales them by alpha
WIDTH_PARAMETERS = ("hidden", "channels")
# the layers packing knows how to group; a network with other parametrised layers is refused
_GROUPED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_CHANNELWISE = (nn.BatchNorm1d, nn.BatchNorm2d)


class PackedLinear(nn.Module):
    """A linear layer cut into ``groups`` independent blocks: group ``g`` maps its block of
    ``in_features / groups`` inputs to its block of ``out_features / groups`` outputs.

    Equal to ``groups`` :class:`torch.nn.Linear` layers side by side (initialised as each would
    be: uniform in ``±1 / sqrt(in_features / groups)``), computed as one batched product.

    Parameters
    ----------
    in_features, out_features : int
        Both divisible by ``groups``.
    groups : int, default=1
    bias : bool, default=True

    Examples
    --------
    >>> layer = PackedLinear(8, 6, groups=2)
    >>> layer(torch.zeros(3, 8)).shape, layer.weight.shape
    (torch.Size([3, 6]), torch.Size([6, 4]))
    """

    def __init__(self, in_features: int, out_features: int, groups: int = 1, bias: bool = True):
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(
                f"PackedLinear: in_features={in_features} and out_features={out_features} must "
                f"both be divisible by groups={groups}"
            )
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.weight = nn.Parameter(torch.empty(out_features, in_features // groups))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        bound = 1.0 / math.sqrt(in_features // groups)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.groups
        blocks = x.reshape(*x.shape[:-1], g, self.in_features // g)
        weight = self.weight.view(g, self.out_features // g, self.in_features // g)
        out = torch.einsum("...gi,goi->...go", blocks, weight).reshape(
            *x.shape[:-1], self.out_features
        )
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )


def packed_width(width: int, alpha: float, groups: int) -> int:
    """``alpha * width`` rounded up to a multiple of ``groups``.

    Examples
    --------
    >>> packed_width(32, 2, 4), packed_width(10, 1.5, 4)
    (64, 16)
    """
    return int(math.ceil(alpha * width / groups - 1e-9)) * groups


def group_layers(network: nn.Module, n_members: int, gamma: int) -> nn.Module:
    """Cut every linear and convolutional layer of ``network`` into groups, in place.

    The first layer (in module order) keeps ``groups=1``; the last (when it is not the first)
    gets ``n_members`` groups; the others ``n_members * gamma``. Fresh weights: the network
    is untrained.

    Parameters
    ----------
    network : nn.Module
        Built with the packed widths and ``n_members * n_outputs`` outputs.
    n_members, gamma : int

    Returns
    -------
    nn.Module
        ``network``.
    """
    layers = [(name, m) for name, m in network.named_modules() if isinstance(m, _GROUPED)]
    for name, module in network.named_modules():
        own = list(module.parameters(recurse=False))
        if own and not isinstance(module, _GROUPED + _CHANNELWISE):
            raise ValueError(
                f"Packed-Ensembles cannot group the layer {name!r} ({type(module).__name__}); "
                "it groups Linear, Conv1d and Conv2d layers, with BatchNorm between them"
            )
    if not layers:
        raise ValueError("Packed-Ensembles needs a network with Linear or Conv layers")
    for index, (name, layer) in enumerate(layers):
        last = index == len(layers) - 1
        # the first layer reads the whole input, also when it is the only one
        groups = 1 if index == 0 else (n_members if last else n_members * gamma)
        replace_module(network, name, _grouped(layer, groups, name))
    return network


def _grouped(layer: nn.Module, groups: int, name: str) -> nn.Module:
    if isinstance(layer, nn.Linear):
        sizes = (layer.in_features, layer.out_features)
    else:
        sizes = (layer.in_channels, layer.out_channels)  # type: ignore[assignment]
    if sizes[0] % groups or sizes[1] % groups:
        raise ValueError(
            f"Packed-Ensembles: layer {name!r} has {sizes[0]} inputs and {sizes[1]} outputs, "
            f"which {groups} groups do not divide; choose widths (or alpha) so that each is a "
            "multiple of n_members * gamma"
        )
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        return PackedLinear(*sizes, groups=groups, bias=bias)
    conv = type(layer)
    return conv(  # type: ignore[no-any-return]
        *sizes,
        layer.kernel_size,  # type: ignore[arg-type]
        stride=layer.stride,  # type: ignore[arg-type]
        padding=layer.padding,  # type: ignore[arg-type]
        dilation=layer.dilation,  # type: ignore[arg-type]
        groups=groups,
        bias=bias,
        padding_mode=layer.padding_mode,  # type: ignore[arg-type]
    )


class PackedNetworks(SubNetworks):
    """A grouped network whose last layer gives ``n_members`` blocks of ``n_outputs``.

    Parameters
    ----------
    network : nn.Module
        The grouped network (:func:`group_layers`), ``(batch, ...)`` to ``(batch, n_members *
        n_outputs)``.
    n_members : int
    """

    def __init__(self, network: nn.Module, n_members: int) -> None:
        super().__init__(n_members)
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.network(x)
        return output.reshape(x.shape[0], self.n_members, -1).transpose(0, 1)


class Packed(SubNetworkBackbone):
    """Packed-Ensembles of a backbone: ``n_members`` sub-networks as groups of one network.

    The base's widths (its ``hidden`` and ``channels`` parameters) are multiplied by ``alpha``
    and rounded up to a multiple of ``n_members * gamma``; then every layer is grouped
    (:func:`group_layers`). Each sub-network so has ``alpha / n_members`` of the base's width;
    the whole about ``alpha**2 / (n_members * gamma)`` times its parameters in the inner
    layers. Applies to any backbone whose widths are parameters named ``hidden`` or
    ``channels`` and whose layers are Linear, Conv1d, Conv2d and BatchNorm (``mlp``,
    ``cnn1d``, ``cnn2d``, ``resnet``); a network with other layers (LayerNorm, attention,
    recurrent) is refused, and one whose forward mixes channels by hand (a ``view`` that
    interleaves them) would mix the sub-networks.

    Parameters
    ----------
    base : str or callable
        A registered backbone or a backbone class.
    n_members : int, default=4
        Sub-networks (the paper's M).
    alpha : float, default=2
        Width factor of the whole network.
    gamma : int, default=1
        Groups within each sub-network's inner layers (fewer parameters; 1: none).

    Examples
    --------
    >>> network = Packed("cnn1d", n_members=4, alpha=2)(40, 10)
    >>> network(torch.zeros(3, 40)).shape  # (members, rows, outputs)
    torch.Size([4, 3, 10])
    """

    name = "packed"

    def __init__(
        self,
        base: str | BackboneFactory = "mlp",
        n_members: int = 4,
        alpha: float = 2,
        gamma: int = 1,
    ) -> None:
        super().__init__(base, n_members)
        self.alpha = alpha
        self.gamma = gamma

    def _transform(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> SubNetworks:
        check_params(
            "Packed",
            {
                "alpha": [Interval(Real, 0, None, closed="neither")],
                "gamma": [Interval(Integral, 1, None, closed="left")],
            },
            alpha=self.alpha,
            gamma=self.gamma,
        )
        groups = self.n_members * self.gamma
        scaled = False
        for parameter in WIDTH_PARAMETERS:
            widths = kwargs.get(parameter, self._base_default(parameter))
            if isinstance(widths, Sequence) and not isinstance(widths, str):
                kwargs[parameter] = tuple(packed_width(w, self.alpha, groups) for w in widths)
                scaled = True
        if not scaled:
            raise ValueError(
                f"Packed-Ensembles scales the widths of a backbone with the parameters "
                f"{' or '.join(WIDTH_PARAMETERS)}; {self.base!r} has neither"
            )
        network = self._build_base(n_features, n_outputs * self.n_members, kwargs)
        return PackedNetworks(group_layers(network, self.n_members, self.gamma), self.n_members)
