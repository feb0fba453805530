"""BatchEnsemble (Wen et al., ICLR 2020): shared weights and a rank-1 fast weight per member.

Every linear and convolutional layer ``W`` of the base becomes, for member ``m``,
``W ∘ (s_m r_mᵀ)``, computed as ``s_m ∘ (W (r_m ∘ x)) + b_m``: the input scaled by the member's
``r_m`` (one per input channel), the shared layer, the output scaled by ``s_m`` (one per output
channel) plus the member's own bias. The batch is repeated once per member, as in the paper, so
each member sees every row; each member's batch norm keeps statistics and an affine transform of
its own (:class:`EnsembleBatchNorm`, as edward2's BatchEnsemble models do). The parameters grow
by ``n_members * (in + 2 * out)`` per layer (and ``2 * channels`` per batch norm): about 1x the
base. With every fast weight 1 and each member's bias the shared one, the network is the
base network (``tests/members/test_batch_ensemble.py``).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch
from torch import nn

from members.params import Interval, check_params
from members.registry import BackboneFactory
from members.subnetworks import SubNetworkBackbone, SubNetworks, replace_module

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


class Rank1Layer(nn.Module):
    """A shared linear or convolutional layer with a rank-1 fast weight and a bias per member.

    Its input is ``(n_members * batch, channels, ...)``: member ``m``'s rows are the ``m``-th
    block of ``batch``.

    Parameters
    ----------
    layer : nn.Linear, nn.Conv1d or nn.Conv2d
        The shared layer; its bias becomes each member's initial bias.
    n_members : int
    init_std : float, default=0.5
        The fast weights start at ``N(1, init_std)`` (the paper's random-sign initialisation is
        the alternative; a normal around 1 starts every member near the shared network).

    Examples
    --------
    >>> layer = Rank1Layer(nn.Linear(3, 2), n_members=4)
    >>> layer(torch.zeros(8, 3)).shape, layer.r.shape, layer.s.shape
    (torch.Size([8, 2]), torch.Size([4, 3]), torch.Size([4, 2]))
    """

    def __init__(self, layer: nn.Module, n_members: int, init_std: float = 0.5) -> None:
        super().__init__()
        if isinstance(layer, nn.Linear):
            n_in, n_out = layer.in_features, layer.out_features
        else:
            n_in, n_out = layer.in_channels, layer.out_channels  # type: ignore[assignment]
        bias = layer.bias
        assert isinstance(layer.weight, torch.Tensor)
        self.n_members = n_members
        self.r = nn.Parameter(torch.empty(n_members, n_in))
        self.s = nn.Parameter(torch.empty(n_members, n_out))
        nn.init.normal_(self.r, 1.0, init_std)
        nn.init.normal_(self.s, 1.0, init_std)
        self.bias: nn.Parameter | None = None
        if bias is not None:
            # each member's bias drawn as the shared layer draws one
            fan_in = layer.weight[0].numel()  # inputs per output (times the kernel)
            bound = 1.0 / math.sqrt(fan_in)
            self.bias = nn.Parameter(torch.empty(n_members, n_out).uniform_(-bound, bound))
            layer.register_parameter("bias", None)
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.n_members
        rows = x.reshape(m, -1, *x.shape[1:])
        spatial = (1,) * (x.dim() - 2)
        inputs = rows * self.r.view(m, 1, -1, *spatial).to(x.dtype)
        out = self.layer(inputs.reshape(x.shape))
        out = out.reshape(m, -1, *out.shape[1:])
        s = self.s.view(m, 1, -1, *spatial).to(x.dtype)
        if self.bias is None:
            out = out * s
        else:  # one pass over the output: s * out + b
            out = torch.addcmul(self.bias.view(m, 1, -1, *spatial).to(x.dtype), out, s)
        return out.reshape(-1, *out.shape[2:])


class EnsembleBatchNorm(nn.Module):
    """Batch norm with statistics and an affine transform of its own per member.

    Its input is ``(n_members * batch, channels, ...)``; member ``m``'s rows (the ``m``-th block)
    are normalised by their own statistics, as edward2's ``EnsembleSyncBatchNorm`` does for
    BatchEnsemble: shared statistics would mix members whose fast weights scale their
    activations differently.

    Parameters
    ----------
    norm : nn.BatchNorm1d or nn.BatchNorm2d
        The base's layer: its settings, and its state as every member's start.
    n_members : int

    Examples
    --------
    >>> norm = EnsembleBatchNorm(nn.BatchNorm1d(3), n_members=2)
    >>> norm(torch.randn(8, 3)).shape
    torch.Size([8, 3])
    """

    def __init__(self, norm: nn.Module, n_members: int) -> None:
        super().__init__()
        assert isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d)
        channels = norm.num_features
        self.n_members = n_members
        self.norm = type(norm)(
            channels * n_members,
            eps=norm.eps,
            momentum=norm.momentum,
            affine=norm.affine,
            track_running_stats=norm.track_running_stats,
        )
        with torch.no_grad():
            for name, value in norm.state_dict().items():
                target = self.norm.state_dict()[name]
                target.copy_(value.repeat(n_members) if value.dim() else value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.n_members
        rows = x.reshape(m, -1, *x.shape[1:])  # (m, batch, channels, ...)
        norm = self.norm
        if not norm.training and norm.running_mean is not None and norm.running_var is not None:
            # at prediction each member's norm is an affine map of its channels: one pass,
            # without regrouping the rows by channel as the batch statistics need
            scale = torch.rsqrt(norm.running_var + norm.eps)
            shift = -norm.running_mean * scale
            if norm.weight is not None and norm.bias is not None:
                scale = scale * norm.weight
                shift = shift * norm.weight + norm.bias
            view = (m, 1, x.shape[1], *((1,) * (x.dim() - 2)))
            out = torch.addcmul(shift.view(view).to(x.dtype), rows, scale.view(view).to(x.dtype))
            return out.reshape(x.shape)
        batch = rows.shape[1]
        stacked = rows.transpose(0, 1).reshape(batch, m * x.shape[1], *x.shape[2:])
        out = self.norm(stacked).reshape(batch, m, *x.shape[1:]).transpose(0, 1)
        return out.reshape(x.shape)


class BatchEnsembleNetworks(SubNetworks):
    """The base network with :class:`Rank1Layer` layers, run on the batch repeated per member.

    Parameters
    ----------
    network : nn.Module
        The base network, its layers wrapped (:func:`rank1_layers`).
    n_members : int
    """

    def __init__(self, network: nn.Module, n_members: int) -> None:
        super().__init__(n_members)
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        repeated = x.repeat(self.n_members, *([1] * (x.dim() - 1)))
        output = self.network(repeated)
        return output.reshape(self.n_members, x.shape[0], -1)


def rank1_layers(network: nn.Module, n_members: int, init_std: float = 0.5) -> nn.Module:
    """Wrap every linear and convolutional layer of ``network`` in a :class:`Rank1Layer`, and
    give every batch norm per-member statistics (:class:`EnsembleBatchNorm`), in place.

    Parameters
    ----------
    network : nn.Module
    n_members : int
    init_std : float, default=0.5

    Returns
    -------
    nn.Module
        ``network``.
    """
    layers = [name for name, m in network.named_modules() if isinstance(m, _LAYERS)]
    if not layers:
        raise ValueError("BatchEnsemble needs a network with Linear or Conv layers")
    norms = [name for name, m in network.named_modules() if isinstance(m, _NORMS)]
    for name in layers + norms:
        layer = network.get_submodule(name)
        if isinstance(layer, _NORMS):
            replace_module(network, name, EnsembleBatchNorm(layer, n_members))
        else:
            replace_module(network, name, Rank1Layer(layer, n_members, init_std))
    return network


class BatchEnsemble(SubNetworkBackbone):
    """BatchEnsemble of a backbone: ``n_members`` members sharing its weights.

    Applies to any backbone whose forward treats rows independently but for batch norm
    (``mlp``, ``cnn1d``, ``cnn2d``, ``resnet``); every Linear, Conv1d and Conv2d layer gets the
    members' fast weights.

    Parameters
    ----------
    base : str or callable
        A registered backbone or a backbone class.
    n_members : int, default=4
        Members (the paper's ensemble size).
    init_std : float, default=0.5
        Spread of the fast weights' initialisation around 1.

    Examples
    --------
    >>> network = BatchEnsemble("mlp", n_members=3)(4, 2, hidden=(8,))
    >>> network(torch.zeros(5, 4)).shape  # (members, rows, outputs)
    torch.Size([3, 5, 2])
    """

    name = "batchensemble"

    def __init__(
        self, base: str | BackboneFactory = "mlp", n_members: int = 4, init_std: float = 0.5
    ) -> None:
        super().__init__(base, n_members)
        self.init_std = init_std

    def _transform(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> SubNetworks:
        check_params(
            "BatchEnsemble",
            {"init_std": [Interval(Real, 0, None, closed="left")]},
            init_std=self.init_std,
        )
        network = self._build_base(n_features, n_outputs, kwargs)
        return BatchEnsembleNetworks(
            rank1_layers(network, self.n_members, self.init_std), self.n_members
        )
