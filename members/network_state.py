"""How a neural estimator's state is saved and loaded.

:class:`NetworkStateMixin` gives the estimators their ``__getstate__`` / ``__setstate__``: the
network's weights leave the state for ``safetensors`` (:func:`members.persistence.save`); a
TorchScript network (what ``members.compress`` made before it moved to torchao; pickles of it
still load) travels as TorchScript bytes (:class:`ScriptBytes`) for pickle only, and
:func:`members.persistence.load` refuses it; a loaded estimator's parameters and sizes are
type-checked before its network is rebuilt from them.
"""

from __future__ import annotations

import io
import warnings
from numbers import Integral
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from members.persistence import (
    CallbacksNotSavedWarning,
    NetworkRef,
    export_network,
    import_network,
    loading,
    saving,
)
from members.trainer import TRAINER_DEFAULTS

if TYPE_CHECKING:
    from members.tasks import Task


class ScriptBytes:
    """A TorchScript network saved to bytes, for pickling."""

    def __init__(self, data: bytes) -> None:
        self.data = data


# the state key under which a save records the names of the callbacks it left out
DROPPED_CALLBACKS = "callbacks_not_saved"


def _without_callbacks(state: dict[str, Any]) -> dict[str, Any]:
    """The state :func:`members.persistence.save` stores: without the Lightning callbacks (the
    ``callbacks`` parameter, and the fitted copies in ``callbacks_``, which load empty), which
    are training-time objects; their class names are recorded so that a load can say what to
    pass again."""
    callbacks = state.get("callbacks") or []
    if "callbacks_" in state:
        state = {**state, "callbacks_": []}
    if callbacks:
        state["callbacks"] = None
        state[DROPPED_CALLBACKS] = [type(callback).__name__ for callback in callbacks]
    return state


class NetworkStateMixin:
    """Pickling and safe loading of an estimator with a network in ``model_``; it comes
    before :class:`sklearn.base.BaseEstimator` in the bases, whose state methods it extends."""

    if TYPE_CHECKING:  # what the estimator provides
        task: Task
        module: Any
        n_features_in_: int
        model_: nn.Module

        def build_network(self, n_features: int, n_outputs: int | None = None) -> nn.Module: ...

        def _validate_params(self) -> None: ...

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()  # type: ignore[misc,assignment]
        if saving():
            state = _without_callbacks(state)
        network = state.get("model_")
        ref = None if network is None else export_network(network)
        if ref is not None:
            # members.persistence.save: the weights go to safetensors, not into this state
            state = {**state, "model_": ref}
        elif isinstance(network, torch.jit.ScriptModule):
            # a TorchScript network (compress before torchao) travels as TorchScript bytes
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                # TorchScript is deprecated upstream but is what pickles a quantised network
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.jit.save(state["model_"], buffer)
            state = {**state, "model_": ScriptBytes(buffer.getvalue())}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("model_"), ScriptBytes) and loading():
            raise ValueError(
                "the file holds a TorchScript network; members.persistence.load never runs "
                "TorchScript (save() refuses quantised networks, so a save never holds one)"
            )
        if isinstance(state.get("model_"), ScriptBytes):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                network = torch.jit.load(io.BytesIO(state["model_"].data))
            state = {**state, "model_": network}
        dropped = state.pop(DROPPED_CALLBACKS, None)
        if dropped and loading():
            warnings.warn(
                f"this {type(self).__name__} was given the callbacks {dropped}, which a save "
                "does not hold (they are training-time objects); pass them again with "
                "set_params(callbacks=[...]) before fitting it again",
                CallbacksNotSavedWarning,
                stacklevel=2,
            )
        # saves from before devices, strategy and precision existed trained with their
        # defaults, and saves from before init started from no network
        state = {**TRAINER_DEFAULTS, "init": None, **state}
        super().__setstate__(state)  # type: ignore[misc]
        if isinstance(state.get("model_"), NetworkRef):
            self._check_loaded_architecture()
            self.model_ = import_network(
                state["model_"], lambda: self.build_network(self.n_features_in_).double()
            )

    def _check_loaded_architecture(self) -> None:
        """Type-check what rebuilds a loaded network before anything is called with it: the
        parameters, a ``module`` that is a registered name or a ``torch.nn.Module`` class (a
        function only if the caller trusted it by name), and the input and output sizes."""
        self._validate_params()
        module = self.module
        if isinstance(module, type) and not issubclass(module, nn.Module):
            raise ValueError(
                f"the saved module {module.__module__}.{module.__qualname__} is not a "
                "torch.nn.Module class; refusing to build it"
            )
        sizes = {"n_features_in_": getattr(self, "n_features_in_", None)}
        sizes["n_outputs"] = self.task.n_outputs(self)
        for name, value in sizes.items():
            if not (
                isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 1
            ):
                raise ValueError(f"the saved {name} must be an int >= 1; got {value!r}")
