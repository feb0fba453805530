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
        key = joblib.hash((type(estimator).__qualname__, params, *data))
    except Exception:  # parameters that cannot be hashed (a lambda, say): no reuse
        logger.warning("%s cannot be checkpointed: its parameters do not hash", file_stem)
        return None
    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{file_stem}-{key[:16]}"


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
    """The member stored at ``path``, or ``None`` when there is none or it cannot be read."""
    if path is None or not path.exists():
        return None
    try:
        estimator = persistence.load(path, trusted=own_types(like))
        seconds = float(persistence.read_manifest(path)["metadata"]["fit_seconds"])
        if type(estimator) is not type(like):
            raise TypeError(f"holds a {type(estimator).__name__}, not a {type(like).__name__}")
    except Exception as error:  # any damaged or foreign entry is a cache miss, never a crash
        warnings.warn(
            f"checkpoint {path} cannot be reused ({type(error).__name__}: {error}); "
            "training the member again",
            stacklevel=3,
        )
        return None
    return FittedMember(estimator, seconds, reused=True)


def store_cached(path: Path | None, estimator: Any, seconds: float) -> None:
    if path is None:
        return
    try:
        # the fit time travels in the manifest: one atomic save holds all of the entry
        persistence.save(estimator, path, metadata={"fit_seconds": seconds})
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
