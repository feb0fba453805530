"""MC-Dropout (Gal and Ghahramani, ICML 2016): dropout kept on at prediction, ``n_samples`` passes.

The network trains as usual (one pass, dropout on). At prediction each of ``n_samples`` passes
draws one dropout mask per dropout layer from a generator seeded by ``seed`` and the pass
number, and applies it to every row alike: pass ``s`` is one fixed thinned network, the
``s``-th member. So the predictions are deterministic, and a row's prediction does not depend
on the other rows of its batch (masks drawn per row would make it depend on the row's place in
the batch). With dropout probability 0 every pass is the plain network.

The passes run as one forward that forks at the first dropout layer, when the network allows it
(:meth:`MCDropoutNetworks.check_forking`): the layers before it run once, so dropout before the
output layer costs about one network. For export the masks are drawn once and held as constants
(:meth:`MCDropoutNetworks.with_fixed_masks`). The network's dropout layers become
:class:`SeededDropout` layers, which apply the masks of the thread (or task) that predicts, so
threads may predict with one network at once.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from numbers import Integral
from typing import Any, cast

import torch
from torch import nn
from typing_extensions import override

from members.params import Interval, check_params
from members.registry import BackboneFactory
from members.subnetworks import SubNetworkBackbone, SubNetworks, repeat, replace_module


@dataclass
class Passes:
    """The masks of one prediction of an :class:`MCDropoutNetworks` (its ``masks``).

    The first layer that applies masks forks its rows, ``(batch, ...)``, into one block per
    pass, ``(len(generators) * batch, ...)``; every later layer applies pass ``s``'s mask to
    the ``s``-th block (with one generator, that is one pass).

    Parameters
    ----------
    layers : set of int
        The ``id`` of each dropout layer of the network.
    generators : list of torch.Generator
        One per pass.
    calls : list or None
        Each call's layer and masks (``(len(generators), ...)``, ``True``: kept; ``None`` for
        ``p=0``) are appended when given.
    forked : bool, default=False
        Whether a layer has forked the rows.
    """

    layers: set[int]
    generators: list[torch.Generator]
    calls: list[tuple[nn.Module, torch.Tensor | None]] | None
    forked: bool = False

    def apply(self, layer: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
        """``layer``'s masks on its input ``x`` (forking it on the first call that masks).

        Parameters
        ----------
        layer : nn.Dropout
            The layer called.
        x : Tensor of shape (rows, ...)
            Its input: ``batch`` rows before the fork, ``len(generators) * batch`` after.

        Returns
        -------
        Tensor
            Its output.
        """
        k, p, shape = len(self.generators), float(layer.p), x.shape[1:]
        keep = None
        if p >= 1:
            keep = torch.zeros((k, *shape), dtype=torch.bool, device=x.device)
        elif p > 0:
            draws = [torch.rand(shape, generator=g, device=x.device) for g in self.generators]
            keep = torch.stack(draws) >= p
        if self.calls is not None:
            self.calls.append((layer, keep))
        if keep is None:
            return x
        rows = x.reshape(k, -1, *shape) if self.forked else x.unsqueeze(0)
        self.forked = True
        if p >= 1:
            return torch.zeros((k * rows.shape[1], *shape), dtype=x.dtype, device=x.device)
        return (rows * (keep.to(x.dtype) / (1 - p)).unsqueeze(1)).reshape(-1, *shape)


#: The masks in force in this thread or task: set by ``MCDropoutNetworks.masks``.
_PASSES: ContextVar[Passes | None] = ContextVar("mc_dropout_passes", default=None)


class SeededDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` that, at prediction within its network's
    ``MCDropoutNetworks.masks`` (in the thread or task that entered it), applies the passes'
    seeded masks; everywhere else it is ``nn.Dropout``. :class:`MCDropoutNetworks` puts one in
    place of each dropout layer of its network.

    Parameters
    ----------
    p : float, default=0.5
        Probability of dropping an element.
    inplace : bool, default=False
        As ``nn.Dropout``'s.

    Examples
    --------
    >>> layer = SeededDropout(0.5).eval()
    >>> bool((layer(torch.ones(2, 3)) == 1).all())  # outside the passes: the identity
    True
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        passes = _PASSES.get()
        if self.training or passes is None or id(self) not in passes.layers:
            return super().forward(input)
        return passes.apply(self, input)


class MCDropoutNetworks(SubNetworks):
    """A network whose ``n_samples`` dropout masks, fixed by ``seed``, are its members.

    At prediction the passes run as one forward when the network allows it (:attr:`forks`):
    the rows go through the layers before the first dropout layer once and fork there into
    one block per pass, so a network with dropout before its output layer (the convolutional
    backbones') costs about one network plus ``n_samples`` output layers; otherwise the
    passes run one after another. Both give the same masks and the same predictions.

    Parameters
    ----------
    network : nn.Module
        With at least one :class:`torch.nn.Dropout` layer.
    n_samples : int
        Passes at prediction.
    seed : int
        Seeds the masks.
    """

    #: whether the passes fork at the first dropout layer (:meth:`check_forking`); a class
    #: default, so that a network pickled before forking existed runs its passes one by one
    forks: bool = False

    def __init__(self, network: nn.Module, n_samples: int, seed: int = 0) -> None:
        super().__init__(n_samples)
        self.network = network
        self.seed = seed
        self.dropouts = self._seeded_dropouts()
        if not self.dropouts:
            raise ValueError(
                "MC-Dropout needs a network with torch.nn.Dropout layers; give the backbone "
                "dropout > 0 (module_kwargs={'dropout': 0.1}) or add Dropout layers"
            )
        self.forks = False

    def _seeded_dropouts(self) -> list[SeededDropout]:
        """Put a :class:`SeededDropout` in place of each dropout layer of the network (one per
        layer object, wherever it sits) and return them."""
        seeded: dict[int, SeededDropout] = {}
        for name, module in list(self.network.named_modules(remove_duplicate=False)):
            if name and isinstance(module, nn.Dropout) and not isinstance(module, SeededDropout):
                if id(module) not in seeded:
                    layer = SeededDropout(module.p, module.inplace)
                    seeded[id(module)] = layer.train(module.training)
                replace_module(self.network, name, seeded[id(module)])
        return [m for m in self.network.modules() if isinstance(m, SeededDropout)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.network(x).unsqueeze(0)
        generators = self.generators(x.device)
        if self.forks:
            with self.masks(generators) as passes:
                output = self.network(x)
            if not passes.forked:  # every dropout probability 0: one network, n times
                return repeat(output, self.n_members)
            return output.reshape(self.n_members, x.shape[0], *output.shape[1:])
        outputs = []
        for generator in generators:
            with self.masks([generator]):
                outputs.append(self.network(x))
        return torch.stack(outputs)

    def generators(self, device: torch.device | str = "cpu") -> list[torch.Generator]:
        """One generator per pass, seeded by ``seed`` and the pass number: pass ``s`` draws
        its masks from the ``s``-th, layer after layer."""
        return [
            torch.Generator(device=device).manual_seed(self.seed * 100_003 + sample)
            for sample in range(self.n_members)
        ]

    @contextmanager
    def masks(
        self,
        generators: list[torch.Generator],
        calls: list[tuple[nn.Module, torch.Tensor | None]] | None = None,
    ) -> Iterator[Passes]:
        """Within, in this thread (or task) only: every dropout layer of the network in eval
        mode applies one mask per generator (per pass), each drawn for the layer's call and
        shared by the rows (:class:`Passes`).

        Other threads predicting with the same network at the same time draw their own
        masks: the masks in force are a context variable's, not a hook on the shared layers.

        Parameters
        ----------
        generators : list of torch.Generator
            One per pass (:meth:`generators`).
        calls : list, optional
            Each dropout call's layer and masks are appended to it.

        Yields
        ------
        Passes
            Whose ``forked`` says, after the forward, whether any layer forked.
        """
        if not all(isinstance(layer, SeededDropout) for layer in self.dropouts):
            self.dropouts = self._seeded_dropouts()  # a network pickled before SeededDropout
        passes = Passes({id(layer) for layer in self.dropouts}, generators, calls)
        token = _PASSES.set(passes)
        try:
            yield passes
        finally:
            _PASSES.reset(token)

    def check_forking(self, example: torch.Tensor) -> bool:
        """Whether the passes can run as one forward that forks at the first dropout layer
        (every layer treats rows apart; nothing after the fork mixes in rows from before it):
        tried on ``example`` against the passes one after another. Sets :attr:`forks`.

        Parameters
        ----------
        example : Tensor of shape (n_rows, ...)
            Rows of the network's input, two or more.

        Returns
        -------
        bool
            :attr:`forks`.
        """
        was_training = self.training
        self.eval()
        self.forks = False
        try:
            with torch.no_grad():
                passes = self(example)
                self.forks = True
                forked = self(example)
            self.forks = forked.shape == passes.shape and torch.allclose(
                forked, passes, rtol=1e-4, atol=1e-5
            )
        except Exception:  # shapes that do not add up (rows mixed across the fork), or a
            # network that does not take the example: the passes one after another
            self.forks = False
        finally:
            self.train(was_training)
        return self.forks

    def with_fixed_masks(self, example: torch.Tensor) -> FixedMaskNetworks:
        """This network's prediction with its masks drawn in advance: a module of plain
        tensor operations (every pass in one forward, forked as :meth:`forward` forks), which
        torch's exporters take.

        Parameters
        ----------
        example : Tensor of shape (n_rows, ...)
            Rows of the network's input (their values do not matter; the masks' shapes are
            those of each dropout layer's input).

        Returns
        -------
        FixedMaskNetworks
            A copy of the network; it predicts as this one does, up to rounding.

        Raises
        ------
        ValueError
            A dropout layer that one forward pass calls more than once (its masks would
            differ per call).
        """
        masks: dict[str, list[torch.Tensor | None]] = {}
        first = ""
        names = {id(module): name for name, module in self.network.named_modules()}
        was_training = self.training
        self.eval()
        try:
            for generator in self.generators(example.device):
                calls: list[tuple[nn.Module, torch.Tensor | None]] = []
                with torch.no_grad(), self.masks([generator], calls):
                    self.network(example[:1])
                seen = [names[id(module)] for module, _ in calls]
                for name in seen:
                    if seen.count(name) > 1:
                        raise ValueError(
                            f"the dropout layer {name!r} is called {seen.count(name)} times in "
                            "one forward pass; fixed masks (the exporters) need each dropout "
                            "layer called once"
                        )
                for (_, keep), name in zip(calls, seen, strict=True):
                    masks.setdefault(name, []).append(None if keep is None else keep[0])
                    if keep is not None and not first:
                        first = name  # the layer where the passes fork
        finally:
            self.train(was_training)
        network = copy.deepcopy(self.network)
        for name, module in self.network.named_modules():
            if not isinstance(module, nn.Dropout):
                continue
            keeps = masks.get(name)
            if keeps is None or keeps[0] is None:  # never called, or p=0: the identity
                replace_module(network, name, nn.Identity())
                continue
            p = float(module.p)
            scale = 0.0 if p >= 1 else 1.0 / (1 - p)
            stacked = torch.stack(cast(list[torch.Tensor], keeps)).float() * scale
            fork = self.forks and name == first
            replace_module(network, name, FixedMask(stacked, fork=fork))
        forked = self.forks and bool(first)
        return FixedMaskNetworks(network, self.n_members, repeat_input=not forked)

    @override
    def training_outputs(
        self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One pass of the network, dropout drawn per row as in any training (none in eval
        mode: the divergence check after training)."""
        output = self.network(x).unsqueeze(0)
        return output, repeat(y, 1), None if weight is None else repeat(weight, 1)


class FixedMask(nn.Module):
    """A dropout layer with one fixed mask per pass: pass ``s``'s rows (the ``s``-th block of
    its input) multiplied by ``masks[s]``; with ``fork``, its input is one block, which it
    forks into one per pass.

    Parameters
    ----------
    masks : Tensor of shape (n_passes, ...)
        Each pass's multiplier: 0 where dropped, ``1 / (1 - p)`` where kept.
    fork : bool, default=False
        The input is ``(batch, ...)``, the output ``(n_passes * batch, ...)``.
    """

    masks: torch.Tensor

    def __init__(self, masks: torch.Tensor, *, fork: bool = False) -> None:
        super().__init__()
        self.register_buffer("masks", masks)
        self.fork = fork

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.unsqueeze(0) if self.fork else x.reshape(self.masks.shape[0], -1, *x.shape[1:])
        return (rows * self.masks.unsqueeze(1).to(x.dtype)).reshape(-1, *x.shape[1:])


class FixedMaskNetworks(SubNetworks):
    """MC-Dropout's passes as one network of fixed masks (:class:`FixedMask`); built by
    :meth:`MCDropoutNetworks.with_fixed_masks` for prediction and export, never trained.

    Parameters
    ----------
    network : nn.Module
        The network, its dropout layers replaced by :class:`FixedMask` layers.
    n_members : int
        Passes.
    repeat_input : bool
        The batch is repeated once per pass before the network (when it cannot fork at its
        first dropout layer).
    """

    def __init__(self, network: nn.Module, n_members: int, *, repeat_input: bool) -> None:
        super().__init__(n_members)
        self.network = network
        self.repeat_input = repeat_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat_input:
            x = x.repeat(self.n_members, *([1] * (x.dim() - 1)))
        output = self.network(x)
        return output.reshape(self.n_members, -1, *output.shape[1:])


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
        networks = MCDropoutNetworks(network, self.n_members, self.seed)
        # tried on rows of a generator of its own: the global random state is left alone
        example = torch.randn(3, n_features, generator=torch.Generator().manual_seed(0))
        networks.check_forking(example)
        return networks
