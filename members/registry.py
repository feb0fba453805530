"""Backbones registered by name, built from ``(n_features, n_outputs)`` known at fit time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

BackboneFactory = Callable[..., nn.Module]

BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Register a backbone factory ``f(n_features, n_outputs, **kwargs) -> nn.Module``.

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
    """Return the backbone factory registered under ``name``."""
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
    """Build a network from a registry name, a class or a factory callable."""
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
