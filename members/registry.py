"""Backbones registered by name, built from ``(n_features, n_outputs)`` known at fit time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

BackboneFactory = Callable[..., nn.Module]

#: The backbone factories by name (:func:`register_backbone` adds one).
BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory under ``name``.

    The factory is called as ``f(n_features, n_outputs, **module_kwargs)`` and returns an
    ``nn.Module``.

    Parameters
    ----------
    name : str
        The name :func:`build_backbone` and ``NeuralClassifier(module=name)`` take.

    Returns
    -------
    callable
        A decorator that registers the factory and returns it unchanged.

    Examples
    --------
    >>> from torch import nn
    >>> @register_backbone("linear-example")
    ... def linear(n_features, n_outputs):
    ...     return nn.Linear(n_features, n_outputs)
    >>> build_backbone("linear-example", 4, 3)
    Linear(in_features=4, out_features=3, bias=True)
    >>> del BACKBONES["linear-example"]
    """

    def decorator(factory: BackboneFactory) -> BackboneFactory:
        if name in BACKBONES:
            raise ValueError(f"a backbone named {name!r} is already registered")
        BACKBONES[name] = factory
        return factory

    return decorator


def get_backbone(name: str) -> BackboneFactory:
    """Return the backbone factory registered under ``name``.

    Parameters
    ----------
    name : str
        A registered name (``"mlp"``, ``"cnn1d"``, ``"cnn2d"``, ``"resnet"``, or one of
        :func:`register_backbone`).

    Returns
    -------
    callable
        ``f(n_features, n_outputs, **module_kwargs) -> nn.Module``.

    Examples
    --------
    >>> get_backbone("mlp").__name__
    'MLP'
    """
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"module={name!r} is not a known backbone; expected one of {sorted(BACKBONES)}, "
            "a backbone class, or a callable f(n_features, n_outputs) -> nn.Module"
        ) from None


def build_backbone(
    module: str | BackboneFactory,
    n_features: int,
    n_outputs: int,
    module_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """Build a network from a registry name, a class or a factory callable.

    Parameters
    ----------
    module : str or callable
        A registered name, or a factory ``f(n_features, n_outputs, **module_kwargs)``.
    n_features : int
        Inputs per row.
    n_outputs : int
        Outputs per row.
    module_kwargs : dict, optional
        Extra arguments of the factory.

    Returns
    -------
    nn.Module
        The untrained network.

    Examples
    --------
    >>> import torch
    >>> network = build_backbone("mlp", 4, 3, {"hidden": (8,)})
    >>> network(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """
    if isinstance(module, str):
        factory = get_backbone(module)
    elif callable(module):
        factory = module
    else:
        raise TypeError(
            "module must be a registry name, a backbone class or a callable "
            f"f(n_features, n_outputs) -> nn.Module; got {type(module).__name__}"
        )
    kwargs = dict(module_kwargs or {})
    try:
        network = factory(n_features, n_outputs, **kwargs)
    except TypeError as exc:
        if kwargs and "unexpected keyword" in str(exc):
            raise ValueError(
                f"module_kwargs {sorted(kwargs)} do not fit {module!r}: {exc}"
            ) from exc
        raise
    if not isinstance(network, nn.Module):
        raise TypeError(
            f"module {module!r} must return a torch.nn.Module; got {type(network).__name__}"
        )
    return network


@dataclass(frozen=True)
class NetworkSpec:
    """A network to build, as a value: a training plan's network factory.

    Parameters
    ----------
    module : str or callable
        A registered backbone name or a factory (``NeuralClassifier(module=...)``).
    n_features : int
    n_columns : int
        Output columns: one per target column, two for a Gaussian head.
    module_kwargs : dict, optional
    owner : str
        The estimator's class name, for the messages of :meth:`check`.

    Examples
    --------
    >>> spec = NetworkSpec("mlp", 4, 3, {"hidden": (8,)}, "NeuralClassifier")
    >>> spec.build()(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    module: Any
    n_features: int
    n_columns: int
    module_kwargs: dict[str, Any] | None
    owner: str

    def build(self) -> nn.Module:
        """A fresh network (seed it with :func:`members.training.seeded`), checked by
        :meth:`check`."""
        network = build_backbone(self.module, self.n_features, self.n_columns, self.module_kwargs)
        self.check(network)
        return network

    def check(self, network: nn.Module) -> None:
        """Run ``network`` on two rows of zeros and check that it returns ``(2, n_columns)``,
        so that a custom ``module`` of the wrong width fails before training, by name, not
        deep inside the loss. Eval mode and no gradients: nothing in the network changes."""
        from members.subnetworks import SubNetworks  # it builds on this module

        expected: tuple[int, ...] = (2, self.n_columns)
        if isinstance(network, SubNetworks):  # an ensemble in one network: one output per member
            expected = (network.n_members, *expected)
        who = f"the network of {self.owner}(module={self.module!r})"
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                output = network(torch.zeros(2, self.n_features))
        except Exception as error:
            raise ValueError(
                f"{who} fails on a batch of shape (2, {self.n_features}) ({self.n_features} "
                f"features): {type(error).__name__}: {error}"
            ) from error
        finally:
            network.train(was_training)
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
        if shape != expected:
            got = f"shape {shape}" if shape is not None else type(output).__name__
            raise ValueError(
                f"{who} must map a batch (2, {self.n_features}) to a tensor {expected} (a "
                f"column per output of this data); it returned {got}"
            )
