"""MC-Dropout (Gal and Ghahramani, ICML 2016): dropout kept on at prediction, ``n_samples`` passes.

The network trains as usual (one pass, dropout on). At prediction each of ``n_samples`` passes
draws one dropout mask per dropout layer from a generator seeded by ``seed`` and the pass
number, and applies it to every row alike: pass ``s`` is one fixed thinned network, the
``s``-th member. So the predictions are deterministic, and a row's prediction does not depend
on the other rows of its batch (masks drawn per row would make it depend on the row's place in
the batch). With dropout probability 0 every pass is the plain network.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

import torch
from torch import nn
from typing_extensions import override

from members.params import Interval, check_params
from members.registry import BackboneFactory
from members.subnetworks import SubNetworkBackbone, SubNetworks, repeat


class MCDropoutNetworks(SubNetworks):
    """A network whose ``n_samples`` dropout masks, fixed by ``seed``, are its members.

    Parameters
    ----------
    network : nn.Module
        With at least one :class:`torch.nn.Dropout` layer.
    n_samples : int
        Passes at prediction.
    seed : int
        Seeds the masks.
    """

    def __init__(self, network: nn.Module, n_samples: int, seed: int = 0) -> None:
        super().__init__(n_samples)
        self.network = network
        self.seed = seed
        self.dropouts = [m for m in network.modules() if isinstance(m, nn.Dropout)]
        if not self.dropouts:
            raise ValueError(
                "MC-Dropout needs a network with torch.nn.Dropout layers; give the backbone "
                "dropout > 0 (module_kwargs={'dropout': 0.1}) or add Dropout layers"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.network(x).unsqueeze(0)
        outputs = []
        for sample in range(self.n_members):
            generator = torch.Generator(device=x.device).manual_seed(self.seed * 100_003 + sample)
            with self.masks(generator):
                outputs.append(self.network(x))
        return torch.stack(outputs)

    @contextmanager
    def masks(self, generator: torch.Generator) -> Iterator[None]:
        """Within: every dropout layer (in eval mode) multiplies its input by a mask drawn
        from ``generator``, one per layer call, shared by the rows."""

        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: Any) -> Any:
            (x,) = inputs
            p = float(module.p)  # type: ignore[arg-type]
            if p <= 0:
                return x
            if p >= 1:
                return torch.zeros_like(x)
            keep = torch.rand(x.shape[1:], generator=generator, device=x.device) >= p
            return x * (keep.to(x.dtype) / (1 - p))

        handles = [layer.register_forward_hook(hook) for layer in self.dropouts]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @override
    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One pass of the network, dropout drawn per row as in any training (none in eval
        mode: the divergence check after training)."""
        output = self.network(x).unsqueeze(0)
        return output, repeat(y, 1), None if weight is None else repeat(weight, 1)


class MCDropout(SubNetworkBackbone):
    """MC-Dropout of a backbone: its dropout layers stay on at prediction.

    Applies to any backbone with :class:`torch.nn.Dropout` layers; give the library's
    backbones ``dropout`` in ``module_kwargs`` (``mlp``: after every hidden layer; ``cnn1d``,
    ``cnn2d``, ``resnet``: before the output layer, so there it is last-layer MC-Dropout).

    Parameters
    ----------
    base : str or callable
        A registered backbone or a backbone class.
    n_samples : int, default=16
        Passes at prediction (the members).
    seed : int, default=0
        Seeds the masks, so that predictions are deterministic.

    Examples
    --------
    >>> network = MCDropout("mlp", n_samples=5)(4, 2, hidden=(8,), dropout=0.5)
    >>> network.eval()(torch.zeros(3, 4)).shape  # (members, rows, outputs)
    torch.Size([5, 3, 2])
    """

    name = "mc_dropout"

    def __init__(
        self, base: str | BackboneFactory = "mlp", n_samples: int = 16, seed: int = 0
    ) -> None:
        super().__init__(base, n_samples)
        self.seed = seed

    @property
    def n_samples(self) -> int:
        """Passes at prediction (``n_members``)."""
        return self.n_members

    def _transform(self, n_features: int, n_outputs: int, kwargs: dict[str, Any]) -> SubNetworks:
        check_params(
            "MCDropout",
            {"seed": [Interval(Integral, 0, None, closed="left")]},
            seed=self.seed,
        )
        network = self._build_base(n_features, n_outputs, kwargs)
        return MCDropoutNetworks(network, self.n_members, self.seed)
