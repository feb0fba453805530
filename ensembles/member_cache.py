"""The members' cache (``checkpoint_dir``): where a trained member is kept and found again.

An entry is keyed by the member's class, its parameters (all but logging ones) and its
training data (:func:`checkpoint_path`), and holds the member in the safe format of
:mod:`members.persistence` (safetensors, skops, JSON; no pickle). Reading it trusts only the
types of the member about to be trained, taken from the estimator in memory, never from the
file (:func:`own_types`), so a crafted or replaced entry runs no code; an entry that cannot be
read (damaged, crafted, from another version) is a miss: the member is trained again, with a
warning naming the folder (:func:`load_cached`).
"""

from __future__ import annotations

import inspect
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from members import persistence

logger = logging.getLogger(__name__)

# parameters that do not change what a member learns: left out of its cache key
_NOT_IN_KEY = ("verbose", "log_dir")


@dataclass
class FittedMember:
    """A trained member, the seconds its training took, and whether it came from the cache.

    With ``run_tasks(..., failures="record")``, a member whose training raised comes back with
    ``estimator=None`` and ``error`` saying what was raised (``"FloatingPointError: ..."``).
    """

    estimator: Any
    fit_seconds: float
    reused: bool = False
    error: str | None = None


def checkpoint_path(
    checkpoint_dir: str | os.PathLike[str] | None,
    file_stem: str,
    estimator: Any,
    X: np.ndarray,
    y: np.ndarray,
    fit_params: dict[str, Any] | None = None,
) -> Path | None:
    """Where ``estimator`` trained on ``(X, y)`` (and ``fit_params``: sample weights...) is
    stored: keyed by its class, its parameters (all but logging ones) and the data. ``None``
    without a directory or when the parameters cannot be hashed (a lambda, say)."""
    if checkpoint_dir is None:
        return None
    params = {
        key: value
        for key, value in estimator.get_params(deep=True).items()
        if key.rsplit("__", 1)[-1] not in _NOT_IN_KEY
    }
    try:
        data = (X, y, fit_params) if fit_params else (X, y)  # unweighted keys as before
        key = stable_hash((type(estimator).__qualname__, params, *data))
    except Exception:  # parameters that cannot be hashed (a lambda, say): no reuse
        logger.warning("%s cannot be checkpointed: its parameters do not hash", file_stem)
        return None
    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{file_stem}-{key[:16]}"


def stable_hash(value: Any) -> str:
    """``joblib.hash`` of ``value`` that is the same for equal values in every run: torch
    tensors (a callback's ``best_score``) are hashed by their values, not by their pickle, and
    other objects (callbacks, estimators) by their class and attributes or parameters, and a
    fitted network estimator (the ``init`` a fine-tune starts from) by its weights too."""
    return joblib.hash(_by_value(value))  # type: ignore[no-any-return]


def _by_value(value: Any) -> Any:
    if value is None or isinstance(value, str | bytes | int | float | bool | np.ndarray):
        return value
    if isinstance(value, list | tuple):
        return type(value)(_by_value(item) for item in value)
    if isinstance(value, dict):
        return {key: _by_value(item) for key, item in value.items()}
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        return ("tensor", value.detach().cpu().numpy())
    if isinstance(value, type) or inspect.isroutine(value):  # hashed by name, as pickled
        return value
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if hasattr(value, "get_params"):
        params = _by_value(value.get_params(deep=False))
        network: Any = getattr(value, "model_", None)
        # a fitted network (the init a fine-tune starts from): its weights too
        if network is not None and hasattr(network, "state_dict"):
            return (kind, params, _by_value(dict(network.state_dict())))
        return (kind, params)
    if hasattr(value, "__dict__"):
        return (kind, _by_value(vars(value)))
    return value


def own_types(estimator: Any) -> list[str]:
    """The full names of ``estimator``'s class and of the classes and functions among its
    parameters: the only types a cache entry for it may hold beyond the library's own."""
    values = [estimator, *estimator.get_params(deep=True).values()]
    names = []
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            kind = item if callable(item) and not hasattr(item, "get_params") else type(item)
            names.append(f"{kind.__module__}.{kind.__qualname__}")
    return names


def load_cached(path: Path | None, like: Any) -> FittedMember | None:
    """The member stored at ``path``, or ``None`` when there is none or it cannot be read.

    The entry must prove what it is: its manifest records the entry it was written as (the
    folder's name: the member's name and the hash of its parameters and data), so a folder
    replaced by another member's complete save is a miss, not a wrong member. The callbacks a
    save leaves out are given back from ``like`` (the member about to be trained)."""
    if path is None or not path.exists():
        return None
    try:
        metadata = persistence.read_manifest(path).get("metadata", {})
        if metadata.get("entry") != path.name:
            written = metadata.get("entry")
            raise ValueError(
                f"it was written as the entry {written!r}, not as {path.name!r}"
                if written is not None
                else "it does not record which entry it was written as (an older version)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", persistence.CallbacksNotSavedWarning)
            estimator = persistence.load(path, trusted=own_types(like))
        if type(estimator) is not type(like):
            raise TypeError(f"holds a {type(estimator).__name__}, not a {type(like).__name__}")
        _give_back_callbacks(estimator, like)
        seconds = float(metadata["fit_seconds"])
    except Exception as error:  # any damaged or foreign entry is a cache miss, never a crash
        warnings.warn(
            f"checkpoint {path} cannot be reused ({type(error).__name__}: {error}); "
            "training the member again",
            stacklevel=3,
        )
        return None
    return FittedMember(estimator, seconds, reused=True)


def _give_back_callbacks(estimator: Any, like: Any) -> None:
    """Set the ``callbacks`` parameters (its own and its members') that a save leaves out to
    those of ``like``, the equal estimator the entry stands for."""
    callbacks = {
        name: value
        for name, value in like.get_params(deep=True).items()
        if name.rsplit("__", 1)[-1] == "callbacks" and value is not None
    }
    if callbacks:
        estimator.set_params(**callbacks)


def store_cached(path: Path | None, estimator: Any, seconds: float) -> None:
    if path is None:
        return
    try:
        # the fit time and the entry's name travel in the manifest: one atomic save holds all
        # of the entry, and it says which entry it is (load_cached checks)
        metadata = {"fit_seconds": seconds, "entry": path.name}
        persistence.save(estimator, path, metadata=metadata)
    except Exception as error:  # e.g. a parameter the safe format cannot hold (a lambda)
        warnings.warn(
            f"{type(estimator).__name__} cannot be kept in checkpoint_dir ({error}); it is "
            "not reused by a later fit",
            stacklevel=3,
        )
        return


def load_or_train(path: Path | None, train: Callable[[], Any], like: Any) -> FittedMember:
    """``train()`` timed and stored at ``path`` at once; or, when ``path`` holds a readable
    estimator of ``like``'s types, what is stored there (with the time it took then)."""
    cached = load_cached(path, like)
    if cached is not None:
        return cached
    start = time.perf_counter()
    estimator = train()
    seconds = time.perf_counter() - start
    store_cached(path, estimator, seconds)
    return FittedMember(estimator, seconds)
